// The audit log: every use of the user's credentials and every change to
// accounts, devices and consents, newest first, with filters, paging and
// whether the log's hash chain verifies.
import { useState } from "preact/hooks";
import { t } from "../i18n";
import { manage, useLoad, LoadState, PageTitle, When } from "./util";
import { errorText } from "../errors";
import { loadAccounts } from "./accounts";

export interface AuditEntry {
  at: string;
  event: string;
  account: string | null;
  details: Record<string, string>;
}

interface AuditPage {
  entries: AuditEntry[];
  total: number;
  verified: boolean;
  verifyError: string | null;
  verifyNote?: string | null; // verification repaired a crash's leftover
}

// The events the hub writes (src/audit/audit.h), for the filter.
export const AUDIT_EVENTS = [
  "credential.decrypt",
  "provider.login",
  "consent.given",
  "account.added",
  "account.changed",
  "account.removed",
  "device.added",
  "device.revoked",
  "user.created",
  "user.signin",
  "user.password",
  "web.signin",
  "web.signout",
  "api.change",
  "oauth.refresh",
  "oauth.signin",
  "lease.unlocked",
  "lease.wiped",
  "lifecycle.warning",
  "lifecycle.purge",
];

// A sentence for an event; its raw name when there is none.
export function eventLabel(event: string): string {
  const key = "trust.event." + event;
  const s = t(key);
  return s === key ? event : s;
}

const PAGE = 50;

interface Filter {
  event: string;
  account: string;
  after: string; // yyyy-mm-dd, local day
  before: string;
}

const noFilter: Filter = { event: "", account: "", after: "", before: "" };

// The start of a local day as a JMAP UTCDate ("...Z", no fraction).
function dayStart(day: string, plus = 0): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return undefined;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plus);
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function AuditPage() {
  const [draft, setDraft] = useState<Filter>(noFilter);
  const [filter, setFilter] = useState<Filter>(noFilter);
  const [position, setPosition] = useState(0);
  const accounts = useLoad(loadAccounts);
  const log = useLoad<AuditPage>(
    async () => {
      const f: Record<string, string> = {};
      if (filter.event) f.event = filter.event;
      if (filter.account) f.account = filter.account;
      const after = dayStart(filter.after);
      const before = dayStart(filter.before, 1); // the whole "before" day is included
      if (after) f.after = after;
      if (before) f.before = before;
      return manage<AuditPage>("AuditLog/get", { filter: f, position, limit: PAGE });
    },
    [filter, position],
  );

  function apply(e: Event) {
    e.preventDefault();
    setFilter(draft);
    setPosition(0);
  }
  function clear() {
    setDraft(noFilter);
    setFilter(noFilter);
    setPosition(0);
  }

  const page = log.data;
  const entries = page?.entries ?? [];
  const total = page?.total ?? 0;
  const filtered = filter.event !== "" || filter.account !== "" || filter.after !== "" || filter.before !== "";
  return (
    <section class="trust-page" aria-labelledby="trust-audit-title">
      <PageTitle>
        <span id="trust-audit-title">{t("trust.audit.title")}</span>
      </PageTitle>
      <p class="trust-intro">{t("trust.audit.intro")}</p>
      {page && <Verified verified={page.verified} error={page.verifyError} note={page.verifyNote ?? null} />}

      <form class="trust-panel trust-filters" onSubmit={apply} aria-label={t("trust.audit.filters")}>
        <div class="trust-field">
          <label for="trust-audit-event">{t("trust.audit.event")}</label>
          <select
            id="trust-audit-event"
            value={draft.event}
            data-testid="audit-filter-event"
            onChange={(e) => setDraft({ ...draft, event: (e.target as HTMLSelectElement).value })}
          >
            <option value="">{t("trust.audit.allEvents")}</option>
            {AUDIT_EVENTS.map((ev) => (
              <option value={ev} key={ev}>
                {eventLabel(ev)} ({ev})
              </option>
            ))}
          </select>
        </div>
        <div class="trust-field">
          <label for="trust-audit-account">{t("trust.audit.account")}</label>
          <select
            id="trust-audit-account"
            value={draft.account}
            data-testid="audit-filter-account"
            onChange={(e) => setDraft({ ...draft, account: (e.target as HTMLSelectElement).value })}
          >
            <option value="">{t("trust.audit.allAccounts")}</option>
            {(accounts.data ?? []).map((a) => (
              <option value={String(a.hubId)} key={a.id}>
                {a.email || a.login}
              </option>
            ))}
          </select>
        </div>
        <div class="trust-field">
          <label for="trust-audit-after">{t("trust.audit.after")}</label>
          <input
            id="trust-audit-after"
            type="date"
            value={draft.after}
            data-testid="audit-filter-after"
            onInput={(e) => setDraft({ ...draft, after: (e.target as HTMLInputElement).value })}
          />
        </div>
        <div class="trust-field">
          <label for="trust-audit-before">{t("trust.audit.before")}</label>
          <input
            id="trust-audit-before"
            type="date"
            value={draft.before}
            data-testid="audit-filter-before"
            onInput={(e) => setDraft({ ...draft, before: (e.target as HTMLInputElement).value })}
          />
        </div>
        <div class="trust-actions">
          <button type="submit" class="primary" data-testid="audit-filter-apply">
            {t("trust.audit.apply")}
          </button>
          {filtered && (
            <button type="button" onClick={clear}>
              {t("trust.audit.clear")}
            </button>
          )}
        </div>
      </form>

      <LoadState state={log} label={t("trust.audit.title")} />
      <p role="status" aria-live="polite" class="trust-hint" data-testid="audit-count">
        {page &&
          (total === 0
            ? t("trust.audit.none")
            : t("trust.audit.showing", {
                from: position + 1,
                to: Math.min(position + entries.length, total),
                total,
              }))}
      </p>
      {entries.length > 0 && (
        <table class="trust-table trust-audit" aria-busy={log.loading}>
          <caption class="sr-only">{t("trust.audit.title")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("trust.audit.when")}</th>
              <th scope="col">{t("trust.audit.event")}</th>
              <th scope="col">{t("trust.audit.account")}</th>
              <th scope="col">{t("trust.audit.details")}</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e, i) => (
              <tr key={`${position + i}`} data-testid="audit-row" data-event={e.event}>
                <td data-label={t("trust.audit.when")}>
                  <When at={e.at} />
                </td>
                <td data-label={t("trust.audit.event")}>
                  {eventLabel(e.event)}
                  <br />
                  <code class="trust-hint">{e.event}</code>
                </td>
                <td data-label={t("trust.audit.account")}>{accountName(e.account, accounts.data)}</td>
                <td data-label={t("trust.audit.details")}>
                  <Details d={e.details} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {total > PAGE && (
        <nav class="trust-actions" aria-label={t("trust.audit.paging")}>
          <button
            type="button"
            disabled={position === 0 || log.loading}
            onClick={() => setPosition(Math.max(0, position - PAGE))}
            data-testid="audit-newer"
          >
            {t("trust.audit.newer")}
          </button>
          <button
            type="button"
            disabled={position + PAGE >= total || log.loading}
            onClick={() => setPosition(position + PAGE)}
            data-testid="audit-older"
          >
            {t("trust.audit.older")}
          </button>
        </nav>
      )}
    </section>
  );
}

function accountName(id: string | null, accounts: { hubId: number; email: string | null; login: string }[] | undefined) {
  if (id == null || id === "") return <span class="trust-hint">{t("trust.audit.userLevel")}</span>;
  const a = accounts?.find((x) => String(x.hubId) === String(id) || `A${x.hubId}` === String(id));
  return a ? `${a.email || a.login} (${id})` : t("trust.audit.accountId", { id });
}

function Details(props: { d: Record<string, string> | null | undefined }) {
  const keys = Object.keys(props.d ?? {});
  if (keys.length === 0) return null;
  return (
    <dl class="trust-kv">
      {keys.map((k) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{String(props.d![k])}</dd>
        </div>
      ))}
    </dl>
  );
}

function Verified(props: { verified: boolean; error: string | null; note: string | null }) {
  return (
    <div
      class={"trust-panel trust-verify " + (props.verified ? "trust-ok" : "trust-bad")}
      role={props.verified ? "status" : "alert"}
      data-testid="audit-verified"
      data-verified={String(props.verified)}
    >
      <strong>{props.verified ? t("trust.audit.verified") : t("trust.audit.notVerified")}</strong>
      <p>
        {props.verified
          ? t("trust.audit.verifiedText")
          : t("trust.audit.notVerifiedText", { error: props.error ? errorText(props.error) : "" })}
      </p>
      {props.note && <p class="trust-hint">{props.note}</p>}
    </div>
  );
}
