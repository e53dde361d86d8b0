// The shell: sign-in gate, hash router (#/<route>/<path...>), navigation, toasts and the
// notices badge. Pages register themselves with registerRoute() from web/src/pages.ts.
import { render } from "preact";
import { useEffect, useState, useRef } from "preact/hooks";
import { t, locale, setLocale } from "./i18n";
import * as jmap from "./jmap";
import { SignIn } from "./mail/signin";
import { NoticeBadge } from "./mail/notices";
import { Icon } from "./icons";
import { errorText } from "./errors";

type Page = (props: { path: string[] }) => any;
interface Route {
  prefix: string;
  component: Page;
  nav?: { label: string; icon?: string };
}
const routes: Route[] = [];

export function registerRoute(prefix: string, component: Page, nav?: { label: string; icon?: string }): void {
  const i = routes.findIndex((r) => r.prefix === prefix);
  if (i >= 0) routes[i] = { prefix, component, nav };
  else routes.push({ prefix, component, nav });
}

// What pages keep in this browser for the signed-in user, dropped at sign-out.
const forgetLocal: (() => void)[] = [];
export function onSignOut(fn: () => void): void {
  forgetLocal.push(fn);
}

/** Goes to a hash route: navigate("#/mail/A1/M3") or navigate("mail/A1/M3"). */
export function navigate(hash: string): void {
  const h = hash.startsWith("#") ? hash : "#/" + hash.replace(/^\//, "");
  if (location.hash === h) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = h;
}

/** The current route as decoded segments: "#/mail/A1/M3" → ["mail", "A1", "M3"]. */
export function currentPath(): string[] {
  return location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .filter((s) => s !== "")
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

/** Builds a hash from segments (each encoded). */
export function href(...segments: string[]): string {
  return "#/" + segments.map((s) => encodeURIComponent(s)).join("/");
}

interface Toast {
  id: number;
  message: string;
  kind: "info" | "error";
}
let toastSeq = 0;
const toastListeners = new Set<(list: Toast[]) => void>();
let toasts: Toast[] = [];

export function toast(message: string, kind: "info" | "error" = "info"): void {
  const item = { id: ++toastSeq, message, kind };
  toasts = [...toasts, item].slice(-4);
  toastListeners.forEach((fn) => fn(toasts));
  window.setTimeout(
    () => {
      toasts = toasts.filter((x) => x.id !== item.id);
      toastListeners.forEach((fn) => fn(toasts));
    },
    kind === "error" ? 8000 : 4000,
  );
}

function Toasts() {
  const [list, setList] = useState<Toast[]>(toasts);
  useEffect(() => {
    toastListeners.add(setList);
    return () => void toastListeners.delete(setList);
  }, []);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {list.map((x) => (
        <div key={x.id} class={"toast toast-" + x.kind} role={x.kind === "error" ? "alert" : undefined}>
          {x.message}
        </div>
      ))}
    </div>
  );
}

function usePath(): string[] {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const on = () => setPath(currentPath());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return path;
}

function Shell(props: { onSignOut: () => void; onLocale: () => void }) {
  const path = usePath();
  const mainRef = useRef<HTMLElement>(null);
  const route = routes.find((r) => r.prefix === path[0]) || routes.find((r) => r.prefix === "mail") || routes[0];
  const user = jmap.webSession()?.user || jmap.sessionNow()?.username || "";
  if (!route) return <main id="main">{t("app.noPages")}</main>;
  const Page = route.component;
  const rest = path[0] === route.prefix ? path.slice(1) : [];
  const signOut = async () => {
    forgetLocal.forEach((fn) => fn());
    try {
      await jmap.signOut();
    } catch (e) {
      toast(errorText(e), "error");
    }
    props.onSignOut();
  };
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), mainRef.current?.focus())}>
        {t("app.skip")}
      </a>
      <header class="topbar">
        <a class="brand" href="#/mail">
          mailkeep
        </a>
        <nav id="topnav" class="topnav" aria-label={t("app.nav")}>
          <ul>
            {routes
              .filter((r) => r.nav)
              .map((r) => (
                <li key={r.prefix}>
                  <a
                    href={"#/" + r.prefix}
                    data-testid={"nav-" + r.prefix}
                    aria-current={r === route ? "page" : undefined}
                  >
                    {r.nav!.icon ? <Icon name={r.nav!.icon} /> : null}
                    {t(r.nav!.label)}
                  </a>
                </li>
              ))}
          </ul>
        </nav>
        <div class="topbar-end">
          <NoticeBadge />
          <button
            type="button"
            class="link-btn"
            onClick={props.onLocale}
            lang={locale() === "de" ? "en" : "de"}
            title={t("app.language")}
          >
            {locale() === "de" ? "EN" : "DE"}
          </button>
          <span class="user" title={user}>
            {user}
          </span>
          <button type="button" class="link-btn" data-testid="signout" onClick={signOut}>
            {t("app.signOut")}
          </button>
        </div>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1}>
        <Page path={rest} />
      </main>
    </div>
  );
}

type State = "loading" | "signedOut" | "signedIn" | "error";

function App() {
  const [state, setState] = useState<State>("loading");
  const [err, setErr] = useState("");
  const [, setTick] = useState(0);
  const start = () => {
    setState("loading");
    jmap
      .session()
      .then(() => setState("signedIn"))
      .catch((e) => {
        if (e instanceof jmap.JmapError && e.status === 401) setState("signedOut");
        else {
          setErr(errorText(e));
          setState("error");
        }
      });
  };
  useEffect(() => {
    start();
    return jmap.onUnauthorized(() => {
      toast(t("app.sessionEnded"), "error");
      setState("signedOut");
    });
  }, []);
  const switchLocale = () => {
    setLocale(locale() === "de" ? "en" : "de");
    setTick((n) => n + 1);
  };
  let body;
  if (state === "loading")
    body = (
      <div class="center" role="status">
        {t("app.loading")}
      </div>
    );
  else if (state === "error")
    body = (
      <div class="center" role="alert">
        <p>{err}</p>
        <button type="button" onClick={start}>
          {t("app.retry")}
        </button>
      </div>
    );
  else if (state === "signedOut") body = <SignIn onDone={() => setState("signedIn")} onLocale={switchLocale} />;
  else body = <Shell onSignOut={() => setState("signedOut")} onLocale={switchLocale} />;
  return (
    <>
      {body}
      <Toasts />
    </>
  );
}

export function mount(el: HTMLElement): void {
  document.documentElement.lang = locale();
  render(<App />, el);
}
