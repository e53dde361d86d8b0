// The folder tree: the unified inbox, then each account's mailboxes (nested by parentId)
// with unread counts.
import { useEffect, useState } from "preact/hooks";
import { t, fmtNumber } from "../i18n";
import * as jmap from "../jmap";
import { href } from "../app";
import { errorText } from "../errors";
import { Account, Mailbox, mailAccounts, mailboxesOf, onMailboxChange, byRole } from "./store";

export const ALL = "all";
export const INBOX = "inbox";

function roleName(m: Mailbox): string {
  if (m.role && m.parentId === null) {
    const k = "role." + m.role;
    const s = t(k);
    if (s !== k) return s;
  }
  return m.name;
}

export function mailboxLabel(m: Mailbox): string {
  return roleName(m);
}

function Unread(props: { n: number }) {
  if (!props.n) return null;
  return (
    <span class="unread-count" aria-label={t("folders.unread", { n: props.n })}>
      {fmtNumber(props.n)}
    </span>
  );
}

function Tree(props: { acct: Account; list: Mailbox[]; parent: string | null; sel: string; depth: number; inboxSel?: boolean }) {
  // A mailbox whose parent is not listed is shown at the top.
  const ids = new Set(props.list.map((m) => m.id));
  const kids = props.list.filter((m) => (m.parentId && ids.has(m.parentId) ? m.parentId : null) === props.parent);
  if (!kids.length) return null;
  return (
    <ul class={props.depth ? "subtree" : "tree"}>
      {kids.map((m) => {
        const selected = props.sel === props.acct.id + "/" + m.id || (!!props.inboxSel && m.role === "inbox");
        return (
          <li key={m.id}>
            <a
              href={href("mail", props.acct.id, m.id)}
              class={"folder" + (m.unreadEmails ? " has-unread" : "")}
              data-testid="mailbox"
              data-name={m.name}
              data-role={m.role || ""}
              data-account={props.acct.id}
              data-unread={m.unreadEmails}
              aria-current={selected ? "page" : undefined}
              style={{ paddingInlineStart: 0.75 + props.depth * 0.9 + "rem" }}
            >
              <span class="folder-name">{roleName(m)}</span>
              <Unread n={m.unreadEmails} />
            </a>
            <Tree acct={props.acct} list={props.list} parent={m.id} sel={props.sel} depth={props.depth + 1} inboxSel={props.inboxSel} />
          </li>
        );
      })}
    </ul>
  );
}

export function Folders(props: { accountId: string; mailboxId: string }) {
  const [accounts, setAccounts] = useState<Account[]>([]);
  const [lists, setLists] = useState<Record<string, Mailbox[]>>({});
  const [error, setError] = useState("");
  useEffect(() => {
    let alive = true;
    const load = async (only?: Set<string>) => {
      try {
        const s = await jmap.session();
        const accts = mailAccounts(s);
        const map = await mailboxesOf(
          accts.map((a) => a.id),
          only,
        );
        if (!alive) return;
        setAccounts(accts);
        setLists(map);
        setError("");
      } catch (e) {
        if (alive) setError(errorText(e));
      }
    };
    void load();
    const off = onMailboxChange((changed) => void load(changed));
    const offSession = jmap.onSession(() => void load());
    return () => {
      alive = false;
      off();
      offSession();
    };
  }, []);
  const sel = props.accountId + "/" + props.mailboxId;
  const mail = accounts.filter((a) => !a.notices);
  const allUnread = mail.reduce((n, a) => n + (byRole(lists[a.id], "inbox")?.unreadEmails || 0), 0);
  return (
    <nav class="folders" aria-label={t("folders.label")}>
      {error ? (
        <p class="form-error" role="alert">
          {error}
        </p>
      ) : null}
      {mail.length > 1 || (mail.length === 0 && accounts.length) ? (
        <ul class="tree">
          <li>
            <a
              href={href("mail", ALL, INBOX)}
              class={"folder unified" + (allUnread ? " has-unread" : "")}
              data-testid="mailbox"
              data-name="*"
              data-role="inbox"
              data-account={ALL}
              data-unread={allUnread}
              aria-current={sel === ALL + "/" + INBOX ? "page" : undefined}
            >
              <span class="folder-name">{t("folders.allInboxes")}</span>
              <Unread n={allUnread} />
            </a>
          </li>
        </ul>
      ) : null}
      {accounts.map((a) => (
        <section key={a.id} class="account-folders" aria-labelledby={"acct-" + a.id}>
          <h2 id={"acct-" + a.id} class="account-name" title={a.name}>
            {a.notices ? t("folders.notices") : a.name}
          </h2>
          {lists[a.id] ? (
            lists[a.id].length ? (
              <Tree
                acct={a}
                list={lists[a.id]}
                parent={null}
                sel={sel}
                depth={0}
                // With one mail account, "all inboxes" is its inbox.
                inboxSel={sel === ALL + "/" + INBOX && mail.length === 1 && mail[0].id === a.id}
              />
            ) : (
              <p class="muted small folder-none">{a.notices ? t("folders.noNotices") : t("folders.none")}</p>
            )
          ) : (
            <p class="muted small">{t("app.loading")}</p>
          )}
        </section>
      ))}
    </nav>
  );
}
