// The trust pages: accounts, devices and sessions, the audit log, and what
import "./trust.css";
// the hub keeps. Imported once from ../pages.ts.
import { registerRoute } from "../app";
import { register } from "../i18n";
import en from "../locales/trust.en";
import de from "../locales/trust.de";
import { AccountsPage } from "./accounts";
import { DevicesPage } from "./devices";
import { AuditPage } from "./audit";
import { PrivacyPage } from "./privacy";

register("en", en);
register("de", de);

registerRoute("accounts", AccountsPage, { label: "nav.accounts" });
registerRoute("devices", DevicesPage, { label: "nav.devices" });
registerRoute("audit", AuditPage, { label: "nav.audit" });
registerRoute("privacy", PrivacyPage, { label: "nav.privacy" });
