// Signing in to a mail provider with OAuth from the web app: one button per
// flow the hub offers for the provider ("redirect": the provider's sign-in
// page in a new tab, which comes back to the hub's callback; "device": a
// code to enter on any device), then the flow's state, polled every 1.5 s
// (ExternalAccount/oauthStatus) until it ends, with Cancel while it waits.
// Used by the add page (a new account) and the accounts page (sign in
// again). The hub does the exchange, the login check and the add; the
// tokens never reach the browser.
import { useEffect, useRef, useState } from "preact/hooks";
import { t, locale } from "../i18n";
import { manage } from "./util";
import { errorText } from "../errors";

export interface OAuthProviderInfo {
  id: string;
  flows: string[];
  scopes: string;
}

// The providers this hub has an OAuth app for ([] when it has none, or
// when it is a hub that does not know the method).
export async function loadProviders(): Promise<OAuthProviderInfo[]> {
  try {
    const r = await manage<{ list: OAuthProviderInfo[] }>("OAuthProvider/get", {});
    return (r.list ?? []).filter((p) => p && typeof p.id === "string");
  } catch {
    return [];
  }
}

interface Started {
  flowId: string;
  flow: "redirect" | "device";
  expiresAt: string | null;
  authorizationUrl: string | null;
  verificationUri: string | null;
  verificationUriComplete: string | null;
  userCode: string | null;
}

type FlowState = "waiting" | "finishing" | "added" | "signedIn" | "failed" | "expired" | "cancelled";

interface Status {
  state: FlowState;
  error: string | null;
  account: string | null;
}

const FINAL: FlowState[] = ["added", "signedIn", "failed", "expired", "cancelled"];
const POLL_MS = 1500;

// Only http(s) addresses become links or get opened (the hub makes them
// from mailkeep.conf; this keeps a mistyped or hostile URL from becoming a
// javascript: link).
function safeUrl(u: string | null | undefined): string | null {
  if (!u) return null;
  try {
    const p = new URL(u);
    return p.protocol === "https:" || p.protocol === "http:" ? p.href : null;
  } catch {
    return null;
  }
}

function fmtTime(v: string | null): string {
  if (!v) return "";
  const d = new Date(v);
  if (isNaN(d.getTime())) return v;
  try {
    return new Intl.DateTimeFormat(document.documentElement.lang || locale(), { timeStyle: "short" }).format(d);
  } catch {
    return d.toISOString();
  }
}

export function OAuthSignIn(props: {
  provider: string;
  // The flows to offer; undefined: looked up with OAuthProvider/get.
  flows?: string[];
  // The oauthStart arguments besides flow: a new account's settings and
  // consent, or {signIn: "A<n>"}.
  args: Record<string, unknown>;
  disabled?: boolean;
  // Told when a flow starts (true) and when it ended (false), so that the
  // page can lock what the flow was started with.
  onActive?: (active: boolean) => void;
  // The flow ended with the account added or signed in again.
  onDone: (state: "added" | "signedIn", account: string | null) => void;
}) {
  const [flows, setFlows] = useState<string[] | null>(props.flows ?? null);
  const [starting, setStarting] = useState<"" | "redirect" | "device">("");
  const [started, setStarted] = useState<Started | null>(null);
  const [status, setStatus] = useState<Status | null>(null);
  const [error, setError] = useState("");
  const [cancelling, setCancelling] = useState(false);
  const live = useRef(true);
  const timer = useRef<number | undefined>(undefined);
  // The flow being watched; a poll answer for another (cancelled) one is dropped.
  const current = useRef("");
  const waitRef = useRef<HTMLDivElement>(null);
  const { provider } = props;

  useEffect(() => {
    live.current = true;
    return () => {
      live.current = false;
      if (timer.current !== undefined) window.clearTimeout(timer.current);
    };
  }, []);

  useEffect(() => {
    if (props.flows) {
      setFlows(props.flows);
      return;
    }
    let gone = false;
    loadProviders().then((list) => {
      if (!gone) setFlows(list.find((p) => p.id === provider)?.flows ?? []);
    });
    return () => {
      gone = true;
    };
  }, [provider, props.flows?.join(",")]);

  useEffect(() => {
    if (started) waitRef.current?.focus();
  }, [started?.flowId]);

  function stopPolling() {
    current.current = "";
    if (timer.current !== undefined) window.clearTimeout(timer.current);
    timer.current = undefined;
  }

  function end() {
    stopPolling();
    props.onActive?.(false);
  }

  function poll(flowId: string) {
    timer.current = window.setTimeout(async () => {
      timer.current = undefined;
      if (!live.current || current.current !== flowId) return;
      let s: Status;
      try {
        s = await manage<Status>("ExternalAccount/oauthStatus", { flowId });
      } catch (e) {
        if (!live.current || current.current !== flowId) return;
        const type = (e as any)?.type;
        if (type === "notFound") {
          // serve restarted (pending flows live in its memory only).
          setStatus({ state: "failed", error: t("trust.oauth.lost"), account: null });
          end();
          return;
        }
        // A network hiccup: keep asking.
        poll(flowId);
        return;
      }
      if (!live.current || current.current !== flowId) return;
      take(flowId, s);
    }, POLL_MS);
  }

  // A state the hub answered: keep polling, or the end.
  function take(flowId: string, s: Status) {
    setStatus(s);
    if (!FINAL.includes(s.state)) {
      poll(flowId);
      return;
    }
    end();
    if (s.state === "added" || s.state === "signedIn") props.onDone(s.state, s.account);
  }

  async function start(flow: "redirect" | "device") {
    setStarting(flow);
    setError("");
    setStatus(null);
    setStarted(null);
    try {
      const r = await manage<Started>("ExternalAccount/oauthStart", { ...props.args, flow });
      if (!live.current) return;
      setStarted(r);
      setStatus({ state: "waiting", error: null, account: null });
      props.onActive?.(true);
      if (r.flow === "redirect") {
        // Within the click's user activation: the browser lets it open.
        // "noopener": the provider's page gets no handle on this one.
        const url = safeUrl(r.authorizationUrl);
        if (url) window.open(url, "_blank", "noopener");
      }
      current.current = r.flowId;
      poll(r.flowId);
    } catch (e) {
      if (live.current) setError(errorText(e));
    } finally {
      if (live.current) setStarting("");
    }
  }

  async function cancel() {
    if (!started) return;
    const flowId = started.flowId;
    setCancelling(true);
    stopPolling();
    let r: { state?: FlowState } = {};
    try {
      r = await manage<{ state: FlowState }>("ExternalAccount/oauthCancel", { flowId });
    } catch {
      /* gone (serve restarted): nothing waits any more */
    }
    if (!live.current) return;
    setCancelling(false);
    if (r.state && r.state !== "cancelled") {
      // Too late: the sign-in came back meanwhile and is finishing (or
      // done); it is not undone, so follow it to its end.
      current.current = flowId;
      take(flowId, { state: r.state, error: null, account: null });
      return;
    }
    setStarted(null);
    setStatus(null);
    props.onActive?.(false);
  }

  function again() {
    setStarted(null);
    setStatus(null);
    setError("");
  }

  const state = status?.state;
  const waiting = started !== null && (state === "waiting" || state === "finishing");
  // "cancelled" seen here: not by this page's Cancel (that goes back to
  // the buttons) but by a newer sign-in of the user's that dropped this one.
  const failed = state === "failed" || state === "expired" || state === "cancelled";

  if (flows === null) return <p class="trust-loading">{t("trust.loading")}</p>;
  if (flows.length === 0)
    return (
      <p class="trust-error" role="alert" data-testid="oauth-unconfigured">
        {t("trust.oauth.noApp", { provider })}
      </p>
    );

  return (
    <div class="trust-oauth" data-testid="oauth-flow" data-state={state ?? "idle"}>
      {!started && (
        <div class="trust-actions">
          {flows.includes("redirect") && (
            <button
              type="button"
              class="primary"
              disabled={props.disabled || starting !== ""}
              data-testid="oauth-signin"
              onClick={() => start("redirect")}
            >
              {starting === "redirect" ? t("trust.working") : t("trust.oauth.redirect", { provider })}
            </button>
          )}
          {flows.includes("device") && (
            <button
              type="button"
              disabled={props.disabled || starting !== ""}
              data-testid="oauth-device"
              onClick={() => start("device")}
            >
              {starting === "device" ? t("trust.working") : t("trust.oauth.device")}
            </button>
          )}
        </div>
      )}
      {error && (
        <p class="trust-error" role="alert" data-testid="oauth-error">
          {error}
        </p>
      )}
      {started && waiting && (
        <div class="trust-panel" ref={waitRef} tabIndex={-1} data-testid="oauth-waiting">
          {started.flow === "device" ? (
            <DeviceCode started={started} />
          ) : (
            <RedirectNote started={started} provider={provider} />
          )}
          <p role="status" aria-live="polite" class="trust-hint">
            {state === "finishing" ? t("trust.oauth.finishing") : t("trust.oauth.waiting", { provider })}
          </p>
          <div class="trust-actions">
            <button type="button" onClick={cancel} disabled={cancelling} data-testid="oauth-cancel">
              {cancelling ? t("trust.working") : t("trust.cancel")}
            </button>
          </div>
        </div>
      )}
      {started && failed && (
        <div class="trust-panel" role="alert">
          <p class="trust-error" data-testid="oauth-error">
            {state === "expired"
              ? t("trust.oauth.expired")
              : state === "cancelled"
                ? t("trust.oauth.cancelled")
                : t("trust.oauth.failed")}{" "}
            {status?.error ?? ""}
          </p>
          <div class="trust-actions">
            <button type="button" class="primary" onClick={again} data-testid="oauth-retry">
              {t("trust.retry")}
            </button>
          </div>
        </div>
      )}
      {started && (state === "added" || state === "signedIn") && (
        <p class="trust-ok" role="status" data-testid="oauth-done">
          {state === "added" ? t("trust.oauth.added") : t("trust.oauth.signedIn")}
        </p>
      )}
    </div>
  );
}

function RedirectNote(props: { started: Started; provider: string }) {
  const url = safeUrl(props.started.authorizationUrl);
  return (
    <>
      <p>{t("trust.oauth.redirectOpened", { provider: props.provider })}</p>
      {url && (
        <p>
          <a href={url} target="_blank" rel="noopener noreferrer" data-testid="oauth-authorization-link">
            {t("trust.oauth.openAgain", { provider: props.provider })}
          </a>
        </p>
      )}
      {props.started.expiresAt && (
        <p class="trust-hint">{t("trust.oauth.expiresAt", { time: fmtTime(props.started.expiresAt) })}</p>
      )}
    </>
  );
}

function DeviceCode(props: { started: Started }) {
  const s = props.started;
  const uri = safeUrl(s.verificationUri);
  const complete = safeUrl(s.verificationUriComplete);
  return (
    <>
      <p>
        {t("trust.oauth.deviceGo")}{" "}
        {uri ? (
          <a href={uri} target="_blank" rel="noopener noreferrer" data-testid="oauth-verification">
            {s.verificationUri}
          </a>
        ) : (
          <span>{s.verificationUri}</span>
        )}
      </p>
      <p>{t("trust.oauth.deviceEnter")}</p>
      <p class="trust-usercode" data-testid="oauth-user-code">
        {s.userCode}
      </p>
      {complete && (
        <p>
          {t("trust.oauth.deviceComplete")}{" "}
          <a href={complete} target="_blank" rel="noopener noreferrer" data-testid="oauth-verification-complete">
            {t("trust.oauth.deviceCompleteLink")}
          </a>
        </p>
      )}
      {s.expiresAt && <p class="trust-hint">{t("trust.oauth.codeExpiresAt", { time: fmtTime(s.expiresAt) })}</p>}
    </>
  );
}
