// Devices (mail apps with their own revocable tokens) and the web sessions
// of this user: add a device (its token shown once, as text and as a QR
// code), when each was last used, revoke.
import { useState, useRef, useEffect } from "preact/hooks";
import { t } from "../i18n";
import { session, signOut } from "../jmap";
import { toast } from "../app";
import { errorText } from "../errors";
import { manage, setFailure, useLoad, LoadState, PageTitle, When, Confirm, CopyButton } from "./util";
import { QrCode } from "./qr";
import { HubPassword } from "./password";

interface Device {
  id: string | number;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

interface WebSession {
  id: string | number;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string;
  userAgent: string;
  address: string;
  isCurrent: boolean;
}

// A short, readable name for a browser from its user agent.
export function browserName(ua: string): string {
  if (!ua) return t("trust.sessions.unknownBrowser");
  const m =
    /(Edg|OPR|Firefox|Chrome|Chromium|Safari)\/([0-9]+)/.exec(ua.replace("HeadlessChrome", "Chrome")) ?? null;
  const os = /Android|iPhone|iPad|Windows|Mac OS X|Linux/.exec(ua)?.[0]?.replace("Mac OS X", "macOS");
  if (!m) return ua.length > 60 ? ua.slice(0, 57) + "..." : ua;
  const names: Record<string, string> = { Edg: "Edge", OPR: "Opera" };
  const b = `${names[m[1]] ?? m[1]} ${m[2]}`;
  return os ? `${b}, ${os}` : b;
}

export function DevicesPage() {
  return (
    <section class="trust-page" aria-labelledby="trust-devices-title">
      <PageTitle>
        <span id="trust-devices-title">{t("trust.devices.title")}</span>
      </PageTitle>
      <p class="trust-intro">{t("trust.devices.intro")}</p>
      <Devices />
      <Sessions />
      <HubPassword />
    </section>
  );
}

function Devices() {
  const devices = useLoad(async () => {
    const r = await manage<{ list: Device[] }>("Device/get", { ids: null });
    return r.list ?? [];
  });
  const [name, setName] = useState("");
  const [adding, setAdding] = useState(false);
  const [error, setError] = useState("");
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const [revoke, setRevoke] = useState<Device | null>(null);
  const [revoking, setRevoking] = useState(false);
  const [revokeError, setRevokeError] = useState("");

  async function add(e: Event) {
    e.preventDefault();
    const n = name.trim();
    if (!n) return;
    setAdding(true);
    setError("");
    try {
      const r = await manage("Device/set", { create: { d: { name: n } } });
      const f = setFailure(r, "d");
      if (f) throw f;
      const c = r.created?.d;
      if (!c?.token) throw new Error(t("error.unknown"));
      setCreated({ name: c.name ?? n, token: c.token });
      setName("");
      devices.reload();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setAdding(false);
    }
  }

  async function doRevoke() {
    if (!revoke) return;
    setRevoking(true);
    setRevokeError("");
    try {
      const id = String(revoke.id);
      const r = await manage("Device/set", { destroy: [String(revoke.id)] });
      const f = setFailure(r, id);
      if (f) throw f;
      toast(t("trust.devices.revoked", { name: revoke.name }));
      setRevoke(null);
      devices.reload();
    } catch (err) {
      setRevokeError(errorText(err));
    } finally {
      setRevoking(false);
    }
  }

  const list = devices.data ?? [];
  return (
    <section aria-labelledby="trust-devices-h2">
      <h2 id="trust-devices-h2">{t("trust.devices.h2")}</h2>
      <form class="trust-panel trust-inline" onSubmit={add}>
        <div class="trust-field">
          <label for="trust-device-name">{t("trust.devices.name")}</label>
          <input
            id="trust-device-name"
            value={name}
            maxLength={64}
            required
            autocomplete="off"
            placeholder={t("trust.devices.namePlaceholder")}
            data-testid="device-name"
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
        </div>
        <button type="submit" class="primary" disabled={adding || !name.trim()} data-testid="device-add">
          {adding ? t("trust.working") : t("trust.devices.add")}
        </button>
        {error && (
          <p class="trust-error" role="alert">
            {error}
          </p>
        )}
      </form>
      {created && <NewToken created={created} onDone={() => setCreated(null)} />}
      <LoadState state={devices} label={t("trust.devices.h2")} />
      {devices.data && list.length === 0 && <p class="trust-empty">{t("trust.devices.none")}</p>}
      {list.length > 0 && (
        <table class="trust-table">
          <caption class="sr-only">{t("trust.devices.h2")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("trust.devices.name")}</th>
              <th scope="col">{t("trust.devices.added")}</th>
              <th scope="col">{t("trust.devices.lastUsed")}</th>
              <th scope="col">
                <span class="sr-only">{t("trust.actions")}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((d) => (
              <tr key={String(d.id)} data-testid="device-row" data-id={String(d.id)} data-name={d.name}>
                <th scope="row">{d.name}</th>
                <td data-label={t("trust.devices.added")}>
                  <When at={d.createdAt} />
                </td>
                <td data-label={t("trust.devices.lastUsed")}>
                  {d.lastUsedAt ? <When at={d.lastUsedAt} /> : t("trust.devices.neverUsed")}
                </td>
                <td>
                  <button
                    type="button"
                    class="danger"
                    data-testid="device-revoke"
                    aria-label={t("trust.devices.revokeNamed", { name: d.name })}
                    onClick={() => {
                      setRevokeError("");
                      setRevoke(d);
                    }}
                  >
                    {t("trust.devices.revoke")}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={revoke != null}
        title={t("trust.devices.revokeTitle", { name: revoke?.name ?? "" })}
        confirmLabel={t("trust.devices.revoke")}
        danger
        busy={revoking}
        testid="device-revoke-dialog"
        onConfirm={doRevoke}
        onCancel={() => setRevoke(null)}
      >
        <p>{t("trust.devices.revokeText")}</p>
        {revokeError && (
          <p class="trust-error" role="alert">
            {revokeError}
          </p>
        )}
      </Confirm>
    </section>
  );
}

function NewToken(props: { created: { name: string; token: string }; onDone: () => void }) {
  const ref = useRef<HTMLHeadingElement>(null);
  const [user, setUser] = useState("");
  useEffect(() => {
    ref.current?.focus();
    session().then(
      (s) => setUser(s.username),
      () => undefined,
    );
  }, [props.created.token]);
  const server = location.origin;
  return (
    <section class="trust-panel trust-ok" aria-labelledby="trust-token-title" data-testid="device-created">
      <h3 id="trust-token-title" ref={ref} tabIndex={-1}>
        {t("trust.token.title", { name: props.created.name })}
      </h3>
      <p>
        <strong>{t("trust.token.once")}</strong>
      </p>
      <div class="trust-token">
        <div>
          <dl class="trust-facts">
            <dt>{t("trust.token.server")}</dt>
            <dd>
              <code>{server}</code>
            </dd>
            <dt>{t("trust.token.session")}</dt>
            <dd>
              <code>{server + "/.well-known/jmap"}</code>
            </dd>
            {user && (
              <>
                <dt>{t("trust.token.user")}</dt>
                <dd>
                  <code>{user}</code>
                </dd>
              </>
            )}
            <dt>{t("trust.token.token")}</dt>
            <dd>
              <code class="trust-secret" data-testid="device-token">
                {props.created.token}
              </code>
            </dd>
          </dl>
          <div class="trust-actions">
            <CopyButton text={props.created.token} label={t("trust.token.copy")} />
          </div>
          <p class="trust-hint">{t("trust.token.how")}</p>
        </div>
        <figure class="trust-qr-box">
          <QrCode text={props.created.token} label={t("trust.token.qr")} testid="device-qr" />
          <figcaption class="trust-hint">{t("trust.token.qrCaption")}</figcaption>
        </figure>
      </div>
      <div class="trust-actions">
        <button type="button" class="primary" onClick={props.onDone} data-testid="device-token-done">
          {t("trust.token.done")}
        </button>
      </div>
    </section>
  );
}

function Sessions() {
  const sessions = useLoad(async () => {
    const r = await manage<{ list: WebSession[] }>("WebSession/get", { ids: null });
    return r.list ?? [];
  });
  const [revoke, setRevoke] = useState<WebSession | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  async function doRevoke() {
    if (!revoke) return;
    setBusy(true);
    setError("");
    try {
      const r = await manage("WebSession/set", { destroy: [String(revoke.id)] });
      const f = setFailure(r, String(revoke.id));
      if (f) throw f;
      const current = revoke.isCurrent;
      setRevoke(null);
      if (current) {
        // This browser's own session is gone: sign out here too.
        await signOut().catch(() => undefined);
        location.hash = "#/";
        location.reload();
        return;
      }
      toast(t("trust.sessions.revoked"));
      sessions.reload();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }
  const list = sessions.data ?? [];
  return (
    <section aria-labelledby="trust-sessions-h2">
      <h2 id="trust-sessions-h2">{t("trust.sessions.title")}</h2>
      <p class="trust-intro">{t("trust.sessions.intro")}</p>
      <LoadState state={sessions} label={t("trust.sessions.title")} />
      {list.length > 0 && (
        <table class="trust-table">
          <caption class="sr-only">{t("trust.sessions.title")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("trust.sessions.browser")}</th>
              <th scope="col">{t("trust.sessions.address")}</th>
              <th scope="col">{t("trust.sessions.signedIn")}</th>
              <th scope="col">{t("trust.sessions.lastUsed")}</th>
              <th scope="col">{t("trust.sessions.expires")}</th>
              <th scope="col">
                <span class="sr-only">{t("trust.actions")}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr
                key={String(s.id)}
                data-testid="session-row"
                data-id={String(s.id)}
                data-current={String(!!s.isCurrent)}
                aria-current={s.isCurrent ? "true" : undefined}
              >
                <th scope="row">
                  <span title={s.userAgent}>{browserName(s.userAgent)}</span>
                  {s.isCurrent && <span class="badge ok">{t("trust.sessions.this")}</span>}
                </th>
                <td data-label={t("trust.sessions.address")}>{s.address || "-"}</td>
                <td data-label={t("trust.sessions.signedIn")}>
                  <When at={s.createdAt} />
                </td>
                <td data-label={t("trust.sessions.lastUsed")}>
                  <When at={s.lastUsedAt} />
                </td>
                <td data-label={t("trust.sessions.expires")}>
                  <When at={s.expiresAt} />
                </td>
                <td>
                  <button
                    type="button"
                    class="danger"
                    data-testid="session-revoke"
                    aria-label={
                      s.isCurrent
                        ? t("trust.sessions.revokeThis")
                        : t("trust.sessions.revokeNamed", { name: browserName(s.userAgent) })
                    }
                    onClick={() => {
                      setError("");
                      setRevoke(s);
                    }}
                  >
                    {s.isCurrent ? t("trust.sessions.signOut") : t("trust.sessions.revoke")}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={revoke != null}
        title={revoke?.isCurrent ? t("trust.sessions.revokeThisTitle") : t("trust.sessions.revokeTitle")}
        confirmLabel={revoke?.isCurrent ? t("trust.sessions.signOut") : t("trust.sessions.revoke")}
        danger
        busy={busy}
        onConfirm={doRevoke}
        onCancel={() => setRevoke(null)}
      >
        <p>{revoke?.isCurrent ? t("trust.sessions.revokeThisText") : t("trust.sessions.revokeText")}</p>
        {error && (
          <p class="trust-error" role="alert">
            {error}
          </p>
        )}
      </Confirm>
    </section>
  );
}
