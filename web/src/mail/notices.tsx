// The notices badge: unread messages in the INBOX of the hub's "mailkeep" account (failed
// outbox messages, accounts that need sign-in).
import { useEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import * as jmap from "../jmap";
import { href } from "../app";
import { Icon } from "../icons";
import { mailboxes, noticesAccount, byRole, onMailChange } from "./store";

export function NoticeBadge() {
  const [info, setInfo] = useState<{ accountId: string; inbox: string; unread: number } | null>(null);
  useEffect(() => {
    let alive = true;
    const load = async () => {
      try {
        const s = await jmap.session();
        const acct = noticesAccount(s);
        if (!acct) return;
        const inbox = byRole(await mailboxes(acct.id), "inbox");
        if (alive && inbox) setInfo({ accountId: acct.id, inbox: inbox.id, unread: inbox.unreadEmails });
      } catch {
        /* the badge stays as it was */
      }
    };
    void load();
    const off = onMailChange(() => void load());
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
      href={href("mail", info.accountId, info.inbox)}
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
