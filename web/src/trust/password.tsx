// Changing the hub password (User/changePassword). A zero-access user's
// password also wraps their accounts' keys: the hub rewraps them, and the
// form says so (and that a forgotten one cannot be recovered).
import { useState } from "preact/hooks";
import { t } from "../i18n";
import { webSession } from "../jmap";
import { manage } from "./util";
import { errorText } from "../errors";

export function HubPassword() {
  const [old, setOld] = useState("");
  const [pw, setPw] = useState("");
  const [again, setAgain] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [done, setDone] = useState(false);
  const zeroAccess = webSession()?.zeroAccess === true;
  const mismatch = again !== "" && pw !== again;
  // Typing again clears the last outcome.
  const edit = (set: (v: string) => void) => (e: Event) => {
    set((e.target as HTMLInputElement).value);
    setDone(false);
    setError("");
  };

  async function submit(e: Event) {
    e.preventDefault();
    if (!old || pw.length < 8 || pw !== again) return;
    setBusy(true);
    setError("");
    setDone(false);
    try {
      await manage("User/changePassword", { old, new: pw });
      setOld("");
      setPw("");
      setAgain("");
      setDone(true);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="trust-hubpw-h2">
      <h2 id="trust-hubpw-h2">{t("trust.hubpw.title")}</h2>
      <form class="trust-panel" onSubmit={submit} data-testid="hubpw-form">
        <p class="trust-hint">{t("trust.hubpw.intro")}</p>
        {zeroAccess ? (
          <p class="trust-hint" data-testid="hubpw-zero-access">
            {t("trust.hubpw.zeroAccess")}
          </p>
        ) : null}
        <div class="trust-field">
          <label for="trust-hubpw-old">{t("trust.hubpw.old")}</label>
          <input
            id="trust-hubpw-old"
            type="password"
            autocomplete="current-password"
            required
            value={old}
            onInput={edit(setOld)}
          />
        </div>
        <div class="trust-field">
          <label for="trust-hubpw-new">{t("trust.hubpw.new")}</label>
          <input
            id="trust-hubpw-new"
            type="password"
            autocomplete="new-password"
            required
            minLength={8}
            maxLength={1024}
            aria-describedby="trust-hubpw-new-hint"
            value={pw}
            onInput={edit(setPw)}
          />
          <p id="trust-hubpw-new-hint" class="trust-hint">
            {t("trust.hubpw.newHint")}
          </p>
        </div>
        <div class="trust-field">
          <label for="trust-hubpw-again">{t("trust.hubpw.again")}</label>
          <input
            id="trust-hubpw-again"
            type="password"
            autocomplete="new-password"
            required
            aria-invalid={mismatch}
            aria-describedby={mismatch ? "trust-hubpw-mismatch" : undefined}
            value={again}
            onInput={edit(setAgain)}
          />
          {mismatch && (
            <p id="trust-hubpw-mismatch" class="trust-error">
              {t("trust.hubpw.mismatch")}
            </p>
          )}
        </div>
        <div class="trust-actions">
          <button
            type="submit"
            class="primary"
            disabled={busy || !old || pw.length < 8 || pw !== again}
            data-testid="hubpw-submit"
          >
            {busy ? t("trust.working") : t("trust.hubpw.submit")}
          </button>
        </div>
        <div role="status" aria-live="polite">
          {done && (
            <p class="trust-ok" data-testid="hubpw-done">
              {t("trust.hubpw.done")}
            </p>
          )}
        </div>
        {error && (
          <p class="trust-error" role="alert">
            {error}
          </p>
        )}
      </form>
    </section>
  );
}
