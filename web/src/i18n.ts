// Strings: t("key", {name: "x"}) looks the key up in the current locale, then in English,
// then gives the key itself. Locale files register their strings: web/src/locales/en.ts and
// de.ts here; each area adds web/src/locales/<area>.en.ts and <area>.de.ts that call
// register("en", {...}) / register("de", {...}) and are imported from web/src/pages.ts.
// Placeholders are {name}; a number placeholder may pick a plural form with
// "{n, one {# message} other {# messages}}".

export type Locale = "en" | "de";
const tables: Record<Locale, Record<string, string>> = { en: {}, de: {} };

function pick(): Locale {
  let want = "";
  try {
    want = localStorage.getItem("mk.locale") || "";
  } catch {
    /* storage unavailable */
  }
  if (want === "en" || want === "de") return want;
  const langs = (typeof navigator !== "undefined" && (navigator.languages || [navigator.language])) || [];
  for (const l of langs) {
    const base = (l || "").toLowerCase().slice(0, 2);
    if (base === "de") return "de";
    if (base === "en") return "en";
  }
  return "en";
}

let current: Locale = pick();

export function locale(): Locale {
  return current;
}

/** Switches the language (remembered); the caller re-renders. */
export function setLocale(l: Locale): void {
  current = l;
  try {
    localStorage.setItem("mk.locale", l);
  } catch {
    /* storage unavailable */
  }
  if (typeof document !== "undefined") document.documentElement.lang = l;
}

export function register(loc: Locale, strings: Record<string, string>): void {
  Object.assign(tables[loc], strings);
}

export function t(key: string, vars?: Record<string, string | number>): string {
  const s = tables[current][key] ?? tables.en[key] ?? key;
  if (!vars) return s;
  return s.replace(/\{(\w+)(?:, one \{([^}]*)\} other \{([^}]*)\})?\}/g, (m, name, one, other) => {
    if (!(name in vars)) return m;
    const v = vars[name];
    if (one === undefined) return String(v);
    return (v === 1 ? one : other).replace(/#/g, fmtNumber(Number(v)));
  });
}

export function fmtNumber(n: number): string {
  return n.toLocaleString(current === "de" ? "de-DE" : "en-GB");
}

/** A date for a list: time today, day and month this year, else the full date. */
export function fmtShortDate(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "";
  const now = new Date();
  const tag = current === "de" ? "de-DE" : "en-GB";
  if (d.toDateString() === now.toDateString())
    return d.toLocaleTimeString(tag, { hour: "2-digit", minute: "2-digit" });
  if (d.getFullYear() === now.getFullYear())
    return d.toLocaleDateString(tag, { day: "numeric", month: "short" });
  return d.toLocaleDateString(tag, { day: "numeric", month: "short", year: "numeric" });
}

export function fmtDate(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "";
  return d.toLocaleString(current === "de" ? "de-DE" : "en-GB", { dateStyle: "medium", timeStyle: "short" });
}

export function fmtSize(bytes: number): string {
  if (bytes < 1024) return t("size.bytes", { n: bytes });
  if (bytes < 1024 * 1024) return t("size.kb", { n: (bytes / 1024).toFixed(0) });
  return t("size.mb", { n: (bytes / 1024 / 1024).toFixed(1) });
}
