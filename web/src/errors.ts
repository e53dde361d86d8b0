// The text a person sees for an error: what a call threw (a JmapError with the
// server's description, a fetch that failed), a /set call's SetError
// ({type, description}), or a plain string. The one helper for all screens.
import { t } from "./i18n";

export function errorText(e: unknown): string {
  if (e == null || e === "") return t("error.unknown");
  if (typeof e === "string") return e;
  // fetch() rejects with a TypeError when the hub cannot be reached.
  if (e instanceof TypeError) return t("error.network");
  const x = e as { description?: unknown; message?: unknown; type?: unknown };
  for (const v of [x.description, x.message, x.type]) if (typeof v === "string" && v) return v;
  return String(e);
}
