// The notices badge: unread messages in the INBOX of the hub's "mailkeep" account (failed
// outbox messages, accounts that need sign-in).
import { useEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import * as jmap from "../jmap";
import { href } from "../app";
import { Icon } from "../icons";
import { mailboxes, noticesAccount, byRole, onMailboxChange } from "./store";

export function NoticeBadge() {
  const [info, setInfo] = useState<{ accountId: string; inbox: string | null; unread: number } | null>(null);
  useEffect(() => {
    let alive = true;
    const load = async () => {
      try {
        const s = await jmap.session();
        const acct = noticesAccount(s);
        if (!acct) return;
        // Before the first notice the account may have no mailbox yet: the badge shows 0.
        const inbox = byRole(await mailboxes(acct.id).catch(() => []), "inbox");
        if (alive) setInfo({ accountId: acct.id, inbox: inbox ? inbox.id : null, unread: inbox ? inbox.unreadEmails : 0 });
      } catch {
        /* the badge stays as it was */
      }
    };
    void load();
    const off = onMailboxChange(() => void load());
    return () => {
      alive = false;
      off();
    };
  }, []);
  if (!info) return null;
  const label = t("notices.label", { n: info.unread });
  return (
    <a
      class={"notice-badge" + (info.unread ? " has-unread" : "")}
      href={href("mail", info.accountId, info.inbox || "inbox")}
      data-testid="notice-badge"
      data-count={info.unread}
      aria-label={label}
      title={label}
    >
      <Icon name="bell" />
      {info.unread ? <span class="count">{info.unread}</span> : null}
    </a>
  );
}
