// The JMAP client of the web app: cookie session (POST /mailkeep/session), API calls with
// the CSRF header, uploads, download URLs, and one shared EventSource for StateChanges.

export const MANAGE = "urn:mailkeep:manage";
export const MAIL = "urn:ietf:params:jmap:mail";
export const SUBMISSION = "urn:ietf:params:jmap:submission";

export interface Session {
  accounts: Record<string, any>;
  primaryAccounts: Record<string, string>;
  username: string;
  apiUrl: string;
  downloadUrl: string;
  uploadUrl: string;
  eventSourceUrl: string;
  capabilities: Record<string, any>;
  state: string;
}

/** An HTTP error (status > 0) or a JMAP method/request error (status 0 for method errors). */
export class JmapError extends Error {
  status: number;
  type: string;
  constructor(message: string, status: number, type: string) {
    super(message);
    this.name = "JmapError";
    this.status = status;
    this.type = type;
  }
}

interface WebSession {
  user: string;
  sessionId: number | string;
  csrf: string;
  zeroAccess: boolean;
  unlockedUntil: string | null;
}

let csrf = "";
let web: WebSession | null = null;
let cached: Session | null = null;
let pending: Promise<Session> | null = null;
let stale = false;
const unauthorized = new Set<() => void>();

/** Called when the server answers 401 to a signed-in request (the session ended). */
export function onUnauthorized(fn: () => void): () => void {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

function lost(): void {
  const had = web !== null;
  forget();
  if (had) unauthorized.forEach((fn) => fn());
}

function forget(): void {
  csrf = "";
  web = null;
  cached = null;
  pending = null;
  closeEvents();
}

/** The web session of the signed-in user (null before sign-in). */
export function webSession(): WebSession | null {
  return web;
}

// The server's URLs may carry its public origin; the app always talks to its own origin
// (connect-src 'self'), so only the path is kept.
function local(url: string): string {
  return url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "");
}

async function problem(res: Response): Promise<JmapError> {
  let detail = res.statusText || "HTTP " + res.status;
  let type = "http";
  try {
    const body = await res.json();
    if (body && typeof body.detail === "string") detail = body.detail;
    if (body && typeof body.type === "string") type = body.type;
  } catch {
    /* not JSON */
  }
  return new JmapError(detail, res.status, type);
}

export async function signIn(user: string, password: string): Promise<void> {
  forget();
  const post = () =>
    fetch("/mailkeep/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: user, password }),
    });
  let res = await post();
  for (let tries = 0; res.status === 503 && tries < 3; tries++) {
    // Too many sign-ins being checked at once: again after the time the server asks.
    const wait = Math.min(10, Number(res.headers.get("Retry-After")) || 2);
    await new Promise((r) => setTimeout(r, wait * 1000));
    res = await post();
  }
  if (!res.ok) throw await problem(res);
  web = (await res.json()) as WebSession;
  csrf = web.csrf;
  await session();
}

export async function signOut(): Promise<void> {
  const token = csrf;
  forget();
  const res = await fetch("/mailkeep/session/signout", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-Mailkeep-CSRF": token },
  });
  if (!res.ok && res.status !== 401) throw await problem(res);
}

/** Whether a cookie session exists (GET /mailkeep/session); fills the CSRF token. */
export async function resume(): Promise<boolean> {
  const res = await fetch("/mailkeep/session", { credentials: "same-origin" });
  if (res.status === 401) return false;
  if (!res.ok) throw await problem(res);
  web = (await res.json()) as WebSession;
  csrf = web.csrf;
  return true;
}

async function load(): Promise<Session> {
  if (!csrf && !(await resume())) throw new JmapError("not signed in", 401, "unauthorized");
  const res = await fetch("/.well-known/jmap", { credentials: "same-origin" });
  if (res.status === 401) {
    lost();
    throw await problem(res);
  }
  if (!res.ok) throw await problem(res);
  const s = (await res.json()) as Session;
  s.apiUrl = local(s.apiUrl);
  s.downloadUrl = local(s.downloadUrl);
  s.uploadUrl = local(s.uploadUrl);
  s.eventSourceUrl = local(s.eventSourceUrl);
  cached = s;
  stale = false;
  sessionListeners.forEach((fn) => fn(s));
  return s;
}

/** The JMAP session object, cached; refetched when an API response says it changed. */
export async function session(): Promise<Session> {
  if (cached && !stale) return cached;
  if (!pending) pending = load().finally(() => (pending = null));
  return pending;
}

/** The cached session, or null (no request). */
export function sessionNow(): Session | null {
  return cached;
}

const sessionListeners = new Set<(s: Session) => void>();
/** Called with each newly fetched session object (accounts added or removed...). */
export function onSession(fn: (s: Session) => void): () => void {
  sessionListeners.add(fn);
  return () => sessionListeners.delete(fn);
}

// mailkeep's session state is "<change counter>.<hash of the accounts>": only the part
// after the dot says that the session object changed (any other server: the whole string).
function sessionPart(state: string): string {
  const dot = state.indexOf(".");
  return dot >= 0 ? state.slice(dot + 1) : state;
}

export async function call(calls: [string, any, string][]): Promise<[string, any, string][]> {
  const s = await session();
  const res = await fetch(s.apiUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Mailkeep-CSRF": csrf },
    body: JSON.stringify({ using: Object.keys(s.capabilities), methodCalls: calls }),
  });
  if (res.status === 401) {
    const e = await problem(res);
    lost();
    throw e;
  }
  if (!res.ok) throw await problem(res);
  const body = await res.json();
  if (body.sessionState && cached && sessionPart(body.sessionState) !== sessionPart(cached.state)) {
    stale = true;
    void session().catch(() => undefined);
  }
  const out = body.methodResponses as [string, any, string][];
  for (const [name, args] of out) {
    if (name === "error") {
      throw new JmapError(args.description || args.type, 0, args.type || "serverFail");
    }
    const st = args && (typeof args.newState === "string" ? args.newState : args.state);
    if (args && typeof args.accountId === "string" && typeof st === "string" && !name.endsWith("/query")) {
      (seen[args.accountId] ||= {})[name.slice(0, name.indexOf("/"))] = st;
    }
  }
  return out;
}

// The newest state of each data type the app has read, per account ("A1" → "Email" → state).
const seen: Record<string, Record<string, string>> = {};
/** The state of a type the app last read or was told of (undefined: never read). */
export function seenState(accountId: string, type: string): string | undefined {
  return seen[accountId]?.[type];
}
/** Remembers a state a StateChange announced (so the same change is not taken twice). */
export function noteState(accountId: string, type: string, state: string): void {
  (seen[accountId] ||= {})[type] = state;
}

/** The response of the call with this id (the first one when a call answered twice). */
export function one<T = any>(responses: [string, any, string][], tag: string): T {
  const r = responses.find((x) => x[2] === tag);
  if (!r) throw new JmapError("no response for " + tag, 0, "serverFail");
  return r[1] as T;
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? encodeURIComponent(vars[k]) : m));
}

export async function upload(
  accountId: string,
  file: Blob,
): Promise<{ blobId: string; type: string; size: number }> {
  const s = await session();
  const res = await fetch(fill(s.uploadUrl, { accountId }), {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": file.type || "application/octet-stream", "X-Mailkeep-CSRF": csrf },
    body: file,
  });
  if (res.status === 401) lost();
  if (!res.ok) throw await problem(res);
  const r = await res.json();
  return { blobId: r.blobId, type: r.type, size: r.size };
}

export function downloadUrl(accountId: string, blobId: string, name: string, type: string): string {
  const s = cached;
  const template = s ? s.downloadUrl : "/jmap/download/{accountId}/{blobId}/{name}?accept={type}";
  return fill(template, { accountId, blobId, name: name || "download", type: type || "application/octet-stream" });
}

// One EventSource for the whole app, opened with the first listener, closed with the last.
type Changed = Record<string, Record<string, string>>;
const stateListeners = new Set<(changed: Changed) => void>();
let events: EventSource | null = null;
let retry: number | undefined;

function closeEvents(): void {
  if (events) events.close();
  events = null;
  if (retry !== undefined) clearTimeout(retry);
  retry = undefined;
}

async function openEvents(): Promise<void> {
  if (events || stateListeners.size === 0) return;
  let s: Session;
  try {
    s = await session();
  } catch {
    return;
  }
  if (events || stateListeners.size === 0) return;
  const url = fill(s.eventSourceUrl, { types: "*", closeafter: "no", ping: "30" });
  const es = new EventSource(url, { withCredentials: true });
  events = es;
  es.addEventListener("state", (ev) => {
    let msg: any;
    try {
      msg = JSON.parse((ev as MessageEvent).data);
    } catch {
      return;
    }
    const changed: Changed = msg && msg.changed ? msg.changed : {};
    stateListeners.forEach((fn) => fn(changed));
  });
  es.onerror = () => {
    if (es.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
    if (events === es) events = null;
    // Closed for good (e.g. 401 after sign-out elsewhere): check the session, retry later.
    retry = window.setTimeout(() => {
      retry = undefined;
      resume()
        .then((ok) => (ok ? openEvents() : lost()))
        .catch(() => undefined);
    }, 5000);
  };
}

export function onStateChange(fn: (changed: Changed) => void): () => void {
  stateListeners.add(fn);
  void openEvents();
  return () => {
    stateListeners.delete(fn);
    if (stateListeners.size === 0) closeEvents();
  };
}
