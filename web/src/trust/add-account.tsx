// Adding an external account: the settings (looked up by address or typed
// in), then the hub's exact disclosure for those settings and an explicit,
// unticked consent; Add stays disabled until it is ticked. The hub tests
// the connection before it adds anything; "Test connection" does the same
// test on its own first.
//
// With a provider the hub has an OAuth app for (found by the lookup, or
// picked as the sign-in method), the same page takes the OAuth path: no
// password; after the consent, the sign-in happens at the provider (a new
// tab, or a code on another device: ./oauth.tsx) and the hub adds the
// account when the provider sends the user back.
import { useState, useRef, useEffect } from "preact/hooks";
import { t } from "../i18n";
import { navigate, toast } from "../app";
import { manage, setFailure, PageTitle } from "./util";
import { errorText } from "../errors";
import { OAuthSignIn, loadProviders, type OAuthProviderInfo } from "./oauth";

interface Discovered {
  imapUrl: string;
  smtpUrl: string | null;
  login: string;
  sources: string[];
  oauthProvider: string | null;
  oauthConfigured?: boolean;
}

interface Fields {
  email: string;
  imapUrl: string;
  smtpUrl: string;
  login: string;
  password: string;
}

const empty: Fields = { email: "", imapUrl: "", smtpUrl: "", login: "", password: "" };

function Field(props: {
  id: string;
  label: string;
  hint?: string;
  type?: string;
  value: string;
  required?: boolean;
  autocomplete?: string;
  placeholder?: string;
  testid?: string;
  disabled?: boolean;
  onInput: (v: string) => void;
}) {
  const hintId = props.hint ? props.id + "-hint" : undefined;
  return (
    <div class="trust-field">
      <label for={props.id}>
        {props.label}
        {props.required && <span aria-hidden="true"> *</span>}
      </label>
      <input
        id={props.id}
        type={props.type ?? "text"}
        value={props.value}
        required={props.required}
        autocomplete={props.autocomplete ?? "off"}
        placeholder={props.placeholder}
        spellcheck={false}
        disabled={props.disabled}
        aria-describedby={hintId}
        data-testid={props.testid}
        onInput={(e) => props.onInput((e.target as HTMLInputElement).value)}
      />
      {props.hint && (
        <p id={hintId} class="trust-hint">
          {props.hint}
        </p>
      )}
    </div>
  );
}

export function AddAccount() {
  const [f, setF] = useState<Fields>(empty);
  const [discovering, setDiscovering] = useState(false);
  const [found, setFound] = useState<Discovered | null>(null);
  const [discoverError, setDiscoverError] = useState("");
  const [disclosure, setDisclosure] = useState<{ text: string; disclosureId: string } | null>(null);
  const [disclosing, setDisclosing] = useState(false);
  const [consent, setConsent] = useState(false);
  const [testing, setTesting] = useState(false);
  const [test, setTest] = useState<{ ok: boolean; error: string | null } | null>(null);
  const [adding, setAdding] = useState(false);
  const [error, setError] = useState("");
  // The providers this hub has an OAuth app for, and the one chosen ("":
  // a password account).
  const [providers, setProviders] = useState<OAuthProviderInfo[]>([]);
  const [oauth, setOauth] = useState("");
  // An OAuth sign-in is under way: what it was started with stays as it is.
  const [flowActive, setFlowActive] = useState(false);
  const disclosureRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    let gone = false;
    loadProviders().then((list) => {
      if (!gone) setProviders(list);
    });
    return () => {
      gone = true;
    };
  }, []);

  const provider = providers.find((p) => p.id === oauth) ?? null;

  function chooseMethod(v: string) {
    setOauth(v);
    setDisclosure(null);
    setConsent(false);
    setTest(null);
    setError("");
  }

  // Any change to what the disclosure describes withdraws it and the consent.
  function set(k: keyof Fields, v: string) {
    setF((old) => ({ ...old, [k]: v }));
    if (k !== "email" && k !== "password") {
      setDisclosure(null);
      setConsent(false);
    }
    if (k !== "email") setTest(null);
    setError("");
  }

  useEffect(() => {
    if (disclosure) disclosureRef.current?.focus();
  }, [disclosure]);

  async function discover(e: Event) {
    e.preventDefault();
    if (!f.email) return;
    setDiscovering(true);
    setDiscoverError("");
    setFound(null);
    try {
      const d = await manage<Discovered>("ExternalAccount/discover", { email: f.email.trim() });
      setFound(d);
      setF((old) => ({
        ...old,
        imapUrl: d.imapUrl ?? "",
        smtpUrl: d.smtpUrl ?? "",
        login: d.login || old.email.trim(),
      }));
      setDisclosure(null);
      setConsent(false);
      setTest(null);
      // The provider's own sign-in when this hub has an app for it.
      const known = d.oauthProvider && d.oauthConfigured ? d.oauthProvider : "";
      if (known && (providers.length === 0 || providers.some((p) => p.id === known))) setOauth(known);
      else setOauth("");
    } catch (err) {
      setDiscoverError(errorText(err));
      setF((old) => (old.login ? old : { ...old, login: old.email.trim() }));
    } finally {
      setDiscovering(false);
    }
  }

  const ready = f.imapUrl.trim() !== "" && f.login.trim() !== "";

  async function disclose(e: Event) {
    e.preventDefault();
    if (!ready) return;
    setDisclosing(true);
    setError("");
    setConsent(false);
    try {
      const d = await manage<{ text: string; disclosureId: string }>("ExternalAccount/disclose", {
        imapUrl: f.imapUrl.trim(),
        smtpUrl: f.smtpUrl.trim() || null,
        login: f.login.trim(),
        ...(oauth ? { kind: "oauth", oauthProvider: oauth } : { kind: "password" }),
      });
      setDisclosure(d);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setDisclosing(false);
    }
  }

  async function testConnection() {
    setTesting(true);
    setTest(null);
    try {
      setTest(
        await manage("ExternalAccount/test", {
          imapUrl: f.imapUrl.trim(),
          login: f.login.trim(),
          password: f.password,
        }),
      );
    } catch (err) {
      setTest({ ok: false, error: errorText(err) });
    } finally {
      setTesting(false);
    }
  }

  async function add(e: Event) {
    e.preventDefault();
    if (oauth || !disclosure || !consent || !f.password) return;
    setAdding(true);
    setError("");
    try {
      const r = await manage("ExternalAccount/set", {
        create: {
          new: {
            imapUrl: f.imapUrl.trim(),
            smtpUrl: f.smtpUrl.trim() || null,
            login: f.login.trim(),
            password: f.password,
            disclosureId: disclosure.disclosureId,
            consent: true,
          },
        },
      });
      const fail = setFailure(r, "new");
      if (fail) throw fail;
      setF(empty);
      toast(t("trust.add.done", { account: f.login.trim() }));
      navigate("#/accounts");
    } catch (err) {
      setError(errorText(err));
    } finally {
      setAdding(false);
    }
  }

  return (
    <section class="trust-page" aria-labelledby="trust-add-title">
      <PageTitle>
        <span id="trust-add-title">{t("trust.add.title")}</span>
      </PageTitle>
      <p>
        <a href="#/accounts">{t("trust.add.back")}</a>
      </p>

      <form class="trust-panel" onSubmit={discover} aria-labelledby="trust-add-step1">
        <h2 id="trust-add-step1">{t("trust.add.step1")}</h2>
        <Field
          id="trust-add-email"
          label={t("trust.add.email")}
          hint={t("trust.add.emailHint")}
          type="email"
          autocomplete="email"
          value={f.email}
          testid="account-email"
          disabled={flowActive}
          onInput={(v) => set("email", v)}
        />
        <div class="trust-actions">
          <button type="submit" disabled={!f.email || discovering || flowActive} data-testid="account-discover">
            {discovering ? t("trust.add.discovering") : t("trust.add.discover")}
          </button>
        </div>
        <div role="status" aria-live="polite">
          {found && (
            <p class="trust-ok" data-testid="account-discovered">
              {t("trust.add.found", { sources: (found.sources ?? []).join(", ") || "-" })}
            </p>
          )}
          {found?.oauthProvider && found.oauthConfigured && (
            <p class="trust-hint" data-testid="account-oauth-found">
              {t("trust.add.oauthFound", { provider: found.oauthProvider })}
            </p>
          )}
          {found?.oauthProvider && !found.oauthConfigured && (
            <p class="trust-hint" data-testid="account-oauth-noapp">
              {t("trust.add.oauthNoApp", { provider: found.oauthProvider })}
            </p>
          )}
        </div>
        {discoverError && (
          <p class="trust-error" role="alert">
            {t("trust.add.discoverFailed", { error: discoverError })}
          </p>
        )}
      </form>

      <form class="trust-panel" onSubmit={disclose} aria-labelledby="trust-add-step2">
        <h2 id="trust-add-step2">{t("trust.add.step2")}</h2>
        {(providers.length > 0 || oauth !== "") && (
          <div class="trust-field">
            <label for="trust-add-method">{t("trust.add.method")}</label>
            <select
              id="trust-add-method"
              value={oauth}
              disabled={flowActive}
              aria-describedby="trust-add-method-hint"
              data-testid="account-method"
              onChange={(e) => chooseMethod((e.target as HTMLSelectElement).value)}
            >
              <option value="">{t("trust.add.methodPassword")}</option>
              {providers.map((p) => (
                <option key={p.id} value={p.id}>
                  {t("trust.add.methodOauth", { provider: p.id })}
                </option>
              ))}
              {oauth !== "" && !providers.some((p) => p.id === oauth) && (
                <option value={oauth}>{t("trust.add.methodOauth", { provider: oauth })}</option>
              )}
            </select>
            <p id="trust-add-method-hint" class="trust-hint">
              {oauth ? t("trust.add.methodOauthHint", { provider: oauth }) : t("trust.add.methodHint")}
            </p>
          </div>
        )}
        <Field
          id="trust-add-imap"
          label={t("trust.add.imap")}
          hint={t("trust.add.imapHint")}
          value={f.imapUrl}
          required
          placeholder="imaps://imap.example.org"
          testid="account-imap"
          disabled={flowActive}
          onInput={(v) => set("imapUrl", v)}
        />
        <Field
          id="trust-add-smtp"
          label={t("trust.add.smtp")}
          hint={t("trust.add.smtpHint")}
          value={f.smtpUrl}
          placeholder="smtps://smtp.example.org"
          testid="account-smtp"
          disabled={flowActive}
          onInput={(v) => set("smtpUrl", v)}
        />
        <Field
          id="trust-add-login"
          label={t("trust.add.login")}
          value={f.login}
          required
          autocomplete="username"
          testid="account-login"
          disabled={flowActive}
          onInput={(v) => set("login", v)}
        />
        {!oauth && (
          <Field
            id="trust-add-password"
            label={t("trust.add.password")}
            hint={t("trust.add.passwordHint")}
            type="password"
            value={f.password}
            required
            autocomplete="off"
            testid="account-password-input"
            onInput={(v) => set("password", v)}
          />
        )}
        <div class="trust-actions">
          {!oauth && (
            <button
              type="button"
              onClick={testConnection}
              disabled={!ready || !f.password || testing}
              data-testid="account-add-test"
            >
              {testing ? t("trust.accounts.testing") : t("trust.accounts.test")}
            </button>
          )}
          <button
            type="submit"
            class="primary"
            disabled={!ready || disclosing || flowActive}
            data-testid="account-disclose"
          >
            {disclosing ? t("trust.working") : t("trust.add.continue")}
          </button>
        </div>
        <div role="status" aria-live="polite">
          {test && (
            <p class={test.ok ? "trust-ok" : "trust-error"} data-testid="account-test-result" data-ok={String(test.ok)}>
              {test.ok ? t("trust.test.ok") : t("trust.test.failed", { error: test.error ?? "" })}
            </p>
          )}
        </div>
      </form>

      {disclosure && (
        <form class="trust-panel" onSubmit={oauth ? (e) => e.preventDefault() : add} aria-labelledby="trust-add-step3">
          <h2 id="trust-add-step3" ref={disclosureRef} tabIndex={-1}>
            {t("trust.add.step3")}
          </h2>
          <p>{t("trust.add.discloseIntro")}</p>
          <pre class="trust-pre trust-disclosure" data-testid="disclosure-text" id="trust-disclosure" tabIndex={0}>
            {disclosure.text}
          </pre>
          <p class="trust-hint">{t("trust.add.disclosureId", { id: disclosure.disclosureId })}</p>
          <div class="trust-check">
            <input
              id="trust-consent"
              type="checkbox"
              checked={consent}
              disabled={flowActive}
              aria-describedby="trust-disclosure"
              data-testid="consent-check"
              onChange={(e) => setConsent((e.target as HTMLInputElement).checked)}
            />
            <label for="trust-consent">{t("trust.add.consent")}</label>
          </div>
          {oauth && (
            <>
              {!consent && <p class="trust-hint">{t("trust.add.needConsent")}</p>}
              <OAuthSignIn
                provider={oauth}
                flows={provider?.flows}
                disabled={!consent}
                args={{
                  oauthProvider: oauth,
                  imapUrl: f.imapUrl.trim(),
                  smtpUrl: f.smtpUrl.trim() || null,
                  login: f.login.trim(),
                  consent: true,
                  disclosureId: disclosure.disclosureId,
                  test: true,
                }}
                onActive={setFlowActive}
                onDone={() => {
                  const who = f.login.trim();
                  setF(empty);
                  toast(t("trust.add.done", { account: who }));
                  navigate("#/accounts");
                }}
              />
              <p class="trust-hint">{t("trust.add.oauthTestNote")}</p>
            </>
          )}
          {!oauth && !f.password && <p class="trust-hint">{t("trust.add.needPassword")}</p>}
          {!oauth && (
            <div class="trust-actions">
              <button
                type="submit"
                class="primary"
                disabled={!consent || !f.password || adding}
                aria-disabled={!consent || !f.password || adding}
                data-testid="account-add-submit"
              >
                {adding ? t("trust.add.adding") : t("trust.add.submit")}
              </button>
            </div>
          )}
          {!oauth && <p class="trust-hint">{t("trust.add.testNote")}</p>}
        </form>
      )}
      {error && (
        <p class="trust-error" role="alert" data-testid="account-add-error">
          {error}
        </p>
      )}
    </section>
  );
}
