// The sign-in page: user name + hub password → POST /mailkeep/session (cookie).
import { useState, useRef, useEffect } from "preact/hooks";
import { t, locale } from "../i18n";
import * as jmap from "../jmap";
import { errorText } from "../errors";

export function SignIn(props: { onDone: () => void; onLocale: () => void }) {
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const userRef = useRef<HTMLInputElement>(null);
  useEffect(() => userRef.current?.focus(), []);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError("");
    try {
      await jmap.signIn(user.trim(), password);
      setPassword("");
      props.onDone();
    } catch (err) {
      if (err instanceof jmap.JmapError && err.status === 401) setError(t("signin.wrong"));
      else if (err instanceof jmap.JmapError && err.status === 429) setError(t("signin.tooMany"));
      else setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <h1 id="signin-title">{t("signin.title")}</h1>
        <p class="muted">{t("signin.intro")}</p>
        <label for="signin-user">{t("signin.user")}</label>
        <input
          id="signin-user"
          ref={userRef}
          data-testid="signin-user"
          name="username"
          autocomplete="username"
          autocapitalize="none"
          spellcheck={false}
          required
          value={user}
          onInput={(e) => setUser((e.target as HTMLInputElement).value)}
        />
        <label for="signin-password">{t("signin.password")}</label>
        <input
          id="signin-password"
          data-testid="signin-password"
          type="password"
          name="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        {error ? (
          <p class="form-error" role="alert" data-testid="signin-error">
            {error}
          </p>
        ) : null}
        <button type="submit" class="primary" data-testid="signin-submit" disabled={busy || !user || !password}>
          {busy ? t("signin.busy") : t("signin.submit")}
        </button>
        <button type="button" class="link-btn" onClick={props.onLocale} lang={locale() === "de" ? "en" : "de"}>
          {locale() === "de" ? "English" : "Deutsch"}
        </button>
      </form>
    </main>
  );
}
