// The accounts page: each external account with its status, the actions on
// it (test, change password, make primary, remove from all devices with
// the receipt), and the removal receipts.
import { useState, useRef, useEffect } from "preact/hooks";
import { t } from "../i18n";
import { navigate, toast } from "../app";
import { webSession } from "../jmap";
import { errorText } from "../errors";
import {
  manage,
  setFailure,
  useLoad,
  LoadState,
  PageTitle,
  When,
  Confirm,
  TextDownload,
  fmtDate,
} from "./util";
import { AddAccount } from "./add-account";
import { OAuthSignIn } from "./oauth";

export interface ExternalAccount {
  id: string;
  hubId: number;
  login: string;
  email: string | null;
  imapUrl: string;
  smtpUrl: string | null;
  kind: "password" | "oauth";
  oauthProvider: string | null;
  needsSignIn: boolean;
  needsSignInSince: string | null;
  isPrimary: boolean;
  addedAt: string;
  lastSyncAt: string | null;
  lastError: string | null;
  syncProgress: { downloaded: number; total: number } | null;
  pushState: string | null;
}

export interface Receipt {
  id: string | number;
  created: string;
  text: string;
}

export async function loadAccounts(): Promise<ExternalAccount[]> {
  const r = await manage<{ list: ExternalAccount[] }>("ExternalAccount/get", { ids: null });
  return r.list ?? [];
}

function hostOf(url: string | null): string {
  if (!url) return "";
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export function AccountsPage(props: { path: string[] }) {
  const rest = props.path[0] === "accounts" ? props.path.slice(1) : props.path;
  if (rest[0] === "add") return <AddAccount />;
  return <AccountList />;
}

// A just-removed account's receipt, kept here so that it survives the page
// being left and opened again; only ever shown to the user who removed it.
let lastReceipt: { user: string; account: string; text: string } | null = null;
const me = () => webSession()?.user ?? "";

const ACCOUNTS_LIVE_MS = 4000;

function AccountList() {
  // An account's status (synced, held, an error, push) changes as it syncs: a StateChange
  // reloads the list, at most every few seconds. The receipts change only by a removal here.
  const accounts = useLoad(loadAccounts, [], ACCOUNTS_LIVE_MS);
  const receipts = useLoad(async () => {
    const r = await manage<{ list: Receipt[] }>("Receipt/get", {});
    return r.list ?? [];
  });
  const [receipt, setReceipt] = useState(lastReceipt && lastReceipt.user === me() ? lastReceipt : null);
  const list = accounts.data ?? [];
  return (
    <section class="trust-page" aria-labelledby="trust-accounts-title">
      <div class="trust-head">
        <PageTitle>
          <span id="trust-accounts-title">{t("trust.accounts.title")}</span>
        </PageTitle>
        <button type="button" class="primary" data-testid="account-add" onClick={() => navigate("#/accounts/add")}>
          {t("trust.accounts.add")}
        </button>
      </div>
      <p class="trust-intro">{t("trust.accounts.intro")}</p>
      {receipt && (
        <ReceiptPanel
          account={receipt.account}
          text={receipt.text}
          onClose={() => {
            lastReceipt = null;
            setReceipt(null);
          }}
        />
      )}
      <LoadState state={accounts} label={t("trust.accounts.title")} />
      {accounts.data && list.length === 0 && <p class="trust-empty">{t("trust.accounts.none")}</p>}
      {list.length > 0 && (
        <ul class="trust-list" aria-label={t("trust.accounts.title")}>
          {list.map((a) => (
            <AccountRow
              key={a.id}
              account={a}
              onRemoved={(text) => {
                lastReceipt = { user: me(), account: a.email || a.login, text };
                setReceipt(lastReceipt);
                accounts.reload();
                receipts.reload();
              }}
              onChanged={accounts.reload}
            />
          ))}
        </ul>
      )}
      <h2>{t("trust.receipts.title")}</h2>
      <p class="trust-intro">{t("trust.receipts.intro")}</p>
      <LoadState state={receipts} label={t("trust.receipts.title")} />
      {receipts.data && receipts.data.length === 0 && <p class="trust-empty">{t("trust.receipts.none")}</p>}
      {receipts.data && receipts.data.length > 0 && (
        <ul class="trust-list">
          {receipts.data.map((r) => (
            <li key={String(r.id)} class="trust-item" data-testid="receipt-row">
              <details>
                <summary>
                  {t("trust.receipts.item")} <When at={r.created} />
                </summary>
                <pre class="trust-pre" data-testid="receipt-list-text">
                  {r.text}
                </pre>
                <TextDownload
                  text={r.text}
                  filename={`mailkeep-receipt-${r.id}.txt`}
                  label={t("trust.receipts.download")}
                />
              </details>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function ReceiptPanel(props: { account: string; text: string; onClose: () => void }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, [props.text]);
  const safe = props.account.replace(/[^A-Za-z0-9@._-]+/g, "_");
  return (
    <section class="trust-panel trust-ok" aria-labelledby="trust-receipt-title">
      <h2 id="trust-receipt-title" ref={ref} tabIndex={-1}>
        {t("trust.receipt.title", { account: props.account })}
      </h2>
      <p>{t("trust.receipt.intro")}</p>
      <pre class="trust-pre" data-testid="receipt-text">
        {props.text}
      </pre>
      <div class="trust-actions">
        <TextDownload
          text={props.text}
          filename={`mailkeep-receipt-${safe}.txt`}
          label={t("trust.receipts.download")}
          testid="receipt-download"
        />
        <button type="button" onClick={props.onClose}>
          {t("trust.close")}
        </button>
      </div>
    </section>
  );
}

function Status(props: { a: ExternalAccount }) {
  const a = props.a;
  const items = [];
  if (a.needsSignIn)
    items.push(
      <span class="badge warn" data-status="needs-sign-in">
        {a.needsSignInSince
          ? t("trust.status.needsSignInSince", { since: fmtDate(a.needsSignInSince) })
          : t("trust.status.needsSignIn")}
      </span>,
    );
  if (a.lastError)
    items.push(
      <span class="badge error" data-status="error">
        {t("trust.status.error", { error: a.lastError })}
      </span>,
    );
  const p = a.syncProgress;
  if (p && p.total > 0 && p.downloaded < p.total)
    items.push(
      <span class="badge" data-status="syncing">
        {t("trust.status.syncing", { done: p.downloaded, total: p.total })}
      </span>,
    );
  else if (a.lastSyncAt)
    // After a failed attempt, when it last synced is no "ok" any more.
    items.push(
      <span class={a.lastError ? "badge" : "badge ok"} data-status="synced">
        {t("trust.status.synced")} <When at={a.lastSyncAt} />
      </span>,
    );
  else if (p)
    items.push(
      <span class="badge ok" data-status="synced">
        {t("trust.status.held", { n: p.downloaded })}
      </span>,
    );
  else
    items.push(
      <span class="badge" data-status="never-synced">
        {t("trust.status.notSynced")}
      </span>,
    );
  if (a.pushState === "idle") items.push(<span class="badge ok">{t("trust.status.live")}</span>);
  // data-held: the messages the hub holds of it (tests see the status follow a sync).
  return (
    <div class="trust-badges" data-testid="account-status" data-held={p ? p.downloaded : undefined}>
      {items}
    </div>
  );
}

type Panel = "" | "password" | "remove" | "signin";

function AccountRow(props: { account: ExternalAccount; onRemoved: (receipt: string) => void; onChanged: () => void }) {
  const a = props.account;
  const [panel, setPanel] = useState<Panel>("");
  const [testing, setTesting] = useState(false);
  const [test, setTest] = useState<{ ok: boolean; error: string | null } | null>(null);
  const [busy, setBusy] = useState(false);
  const [removeError, setRemoveError] = useState("");
  const name = a.email || a.login;
  const headId = `trust-acc-${a.id}`;

  async function runTest() {
    setTesting(true);
    setTest(null);
    try {
      setTest(await manage("ExternalAccount/test", { id: a.id }));
    } catch (e) {
      setTest({ ok: false, error: errorText(e) });
    } finally {
      setTesting(false);
    }
  }

  async function makePrimary() {
    try {
      const r = await manage("ExternalAccount/set", { update: { [a.id]: { isPrimary: true } } });
      const f = setFailure(r, a.id);
      if (f) throw f;
      toast(t("trust.accounts.primaryDone", { account: name }));
      props.onChanged();
    } catch (e) {
      toast(errorText(e), "error");
    }
  }

  async function remove() {
    setBusy(true);
    setRemoveError("");
    try {
      const r = await manage("ExternalAccount/set", { destroy: [a.id] });
      const f = setFailure(r, a.id);
      if (f) throw f;
      const text: string = r.receipts?.[a.id] ?? "";
      setPanel("");
      props.onRemoved(text || t("trust.receipt.missing"));
    } catch (e) {
      setRemoveError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <li class="trust-item" data-testid="account-row" data-id={a.id} data-login={a.login} aria-labelledby={headId}>
      <div class="trust-row">
        <div class="trust-main">
          <h2 id={headId} class="trust-name">
            {name}
            {a.isPrimary && <span class="badge">{t("trust.accounts.primary")}</span>}
          </h2>
          <dl class="trust-facts">
            <dt>{t("trust.accounts.login")}</dt>
            <dd>{a.login}</dd>
            <dt>{t("trust.accounts.imap")}</dt>
            <dd>{hostOf(a.imapUrl)}</dd>
            {a.smtpUrl && (
              <>
                <dt>{t("trust.accounts.smtp")}</dt>
                <dd>{hostOf(a.smtpUrl)}</dd>
              </>
            )}
            <dt>{t("trust.accounts.kind")}</dt>
            <dd>
              {a.kind === "oauth"
                ? t("trust.accounts.kindOauth", { provider: a.oauthProvider ?? "" })
                : t("trust.accounts.kindPassword")}
            </dd>
            <dt>{t("trust.accounts.added")}</dt>
            <dd>
              <When at={a.addedAt} />
            </dd>
          </dl>
          <Status a={a} />
          {a.needsSignIn && (
            <p class="trust-hint">
              {a.kind === "oauth"
                ? t("trust.accounts.oauthSignInHint", { provider: a.oauthProvider ?? "" })
                : t("trust.accounts.passwordSignInHint")}
            </p>
          )}
        </div>
        <div class="trust-actions" role="group" aria-label={t("trust.accounts.actionsFor", { account: name })}>
          <button type="button" onClick={runTest} disabled={testing} data-testid="account-test">
            {testing ? t("trust.accounts.testing") : t("trust.accounts.test")}
          </button>
          {a.kind === "password" && (
            <button
              type="button"
              aria-expanded={panel === "password"}
              onClick={() => setPanel(panel === "password" ? "" : "password")}
              data-testid="account-password"
            >
              {t("trust.accounts.changePassword")}
            </button>
          )}
          {a.kind === "oauth" && a.needsSignIn && a.oauthProvider && (
            <button
              type="button"
              class="primary"
              aria-expanded={panel === "signin"}
              onClick={() => setPanel(panel === "signin" ? "" : "signin")}
              data-testid="oauth-signin-again"
            >
              {t("trust.accounts.signInAgain")}
            </button>
          )}
          {!a.isPrimary && (
            <button type="button" onClick={makePrimary}>
              {t("trust.accounts.makePrimary")}
            </button>
          )}
          <button type="button" class="danger" data-testid="account-remove" onClick={() => setPanel("remove")}>
            {t("trust.accounts.remove")}
          </button>
        </div>
      </div>
      <div role="status" aria-live="polite">
        {test && (
          <p class={test.ok ? "trust-ok" : "trust-error"} data-testid="account-test-result" data-ok={String(test.ok)}>
            {test.ok ? t("trust.test.ok") : t("trust.test.failed", { error: test.error ?? "" })}
          </p>
        )}
      </div>
      {panel === "password" && (
        <ChangePassword
          account={a}
          onDone={() => {
            setPanel("");
            props.onChanged();
          }}
          onCancel={() => setPanel("")}
        />
      )}
      {panel === "signin" && a.oauthProvider && (
        <section class="trust-panel" aria-labelledby={`trust-signin-${a.id}`}>
          <h3 id={`trust-signin-${a.id}`}>{t("trust.accounts.signInAgainTitle", { provider: a.oauthProvider })}</h3>
          <OAuthSignIn
            provider={a.oauthProvider}
            args={{ signIn: a.id }}
            onDone={() => {
              setPanel("");
              toast(t("trust.accounts.signedInAgain", { account: name }));
              props.onChanged();
            }}
          />
        </section>
      )}
      <Confirm
        open={panel === "remove"}
        title={t("trust.remove.title", { account: name })}
        confirmLabel={t("trust.remove.confirm")}
        danger
        busy={busy}
        testid="account-remove-dialog"
        onConfirm={remove}
        onCancel={() => {
          setPanel("");
          setRemoveError("");
        }}
      >
        <p>{t("trust.remove.what")}</p>
        <ul>
          <li>{t("trust.remove.mail")}</li>
          <li>{t("trust.remove.credentials")}</li>
          <li>{t("trust.remove.devices")}</li>
          <li>{t("trust.remove.provider")}</li>
        </ul>
        <p>{t("trust.remove.receipt")}</p>
        {removeError && (
          <p class="trust-error" role="alert">
            {removeError}
          </p>
        )}
      </Confirm>
    </li>
  );
}

function ChangePassword(props: { account: ExternalAccount; onDone: () => void; onCancel: () => void }) {
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const id = `trust-pw-${props.account.id}`;
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => ref.current?.focus(), []);
  async function submit(e: Event) {
    e.preventDefault();
    if (!password) return;
    setBusy(true);
    setError("");
    try {
      const r = await manage("ExternalAccount/set", { update: { [props.account.id]: { password } } });
      const f = setFailure(r, props.account.id);
      if (f) throw f;
      setPassword("");
      toast(t("trust.password.done", { account: props.account.email || props.account.login }));
      props.onDone();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form class="trust-panel" onSubmit={submit} aria-labelledby={id + "-h"}>
      <h3 id={id + "-h"}>{t("trust.password.title")}</h3>
      <p class="trust-hint">{t("trust.password.intro")}</p>
      <label for={id}>{t("trust.password.label", { login: props.account.login })}</label>
      <input
        id={id}
        ref={ref}
        type="password"
        autocomplete="off"
        required
        value={password}
        onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
      />
      {error && (
        <p class="trust-error" role="alert">
          {error}
        </p>
      )}
      <div class="trust-actions">
        <button type="submit" class="primary" disabled={busy || !password}>
          {busy ? t("trust.password.testing") : t("trust.password.save")}
        </button>
        <button type="button" onClick={props.onCancel}>
          {t("trust.cancel")}
        </button>
      </div>
    </form>
  );
}
