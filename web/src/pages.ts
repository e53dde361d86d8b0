// Every page module registers its route(s) with registerRoute() when imported.
// One line per area (each helper adds its own); the order is the order of the navigation.
// An area's strings (web/src/locales/<area>.en.ts/.de.ts, calling register()) are
// imported from its page module or here.
import "./mail/index";
import "./compose/index";
import "./trust/index";
