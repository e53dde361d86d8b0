// Mail data shared by the mail screens: the user's mail accounts and their mailboxes,
// refreshed on StateChanges.
import * as jmap from "../jmap";

export interface Account {
  id: string;
  name: string;
  notices: boolean; // the hub's own "mailkeep" account (its INBOX holds the notices)
}

export interface Mailbox {
  id: string;
  accountId: string;
  name: string;
  parentId: string | null;
  role: string | null;
  sortOrder: number;
  totalEmails: number;
  unreadEmails: number;
  totalThreads?: number;
  unreadThreads?: number;
  myRights?: Record<string, boolean>;
}

export function isNoticesAccount(id: string, acct: any): boolean {
  return acct?.name === "mailkeep" || !!acct?.accountCapabilities?.[jmap.MANAGE];
}

/** The user's mail accounts: the primary first, then by name; the notices account last. */
export function mailAccounts(s: jmap.Session): Account[] {
  const primary = s.primaryAccounts[jmap.MAIL];
  return Object.entries(s.accounts)
    .filter(([, a]) => a.accountCapabilities && a.accountCapabilities[jmap.MAIL])
    .map(([id, a]) => ({ id, name: String(a.name || id), notices: isNoticesAccount(id, a) }))
    .sort((a, b) => {
      if (a.notices !== b.notices) return a.notices ? 1 : -1;
      if (a.id === primary) return -1;
      if (b.id === primary) return 1;
      return a.name.localeCompare(b.name);
    });
}

export function noticesAccount(s: jmap.Session): Account | undefined {
  return mailAccounts(s).find((a) => a.notices);
}

const MAILBOX_PROPS = [
  "id", "name", "parentId", "role", "sortOrder", "totalEmails", "unreadEmails", "totalThreads",
  "unreadThreads", "myRights",
];

const roleOrder = ["inbox", "drafts", "sent", "archive", "junk", "trash"];

function sortMailboxes(list: Mailbox[]): Mailbox[] {
  const rank = (m: Mailbox) => {
    const i = m.role ? roleOrder.indexOf(m.role) : -1;
    return i < 0 ? roleOrder.length : i;
  };
  return list.sort((a, b) => rank(a) - rank(b) || a.sortOrder - b.sortOrder || a.name.localeCompare(b.name));
}

const boxes = new Map<string, Mailbox[]>();
const inflight = new Map<string, Promise<Mailbox[]>>();

/** All mailboxes of an account (cached until the next StateChange of that account). */
export function mailboxes(accountId: string, force = false): Promise<Mailbox[]> {
  const have = boxes.get(accountId);
  if (have && !force) return Promise.resolve(have);
  const running = inflight.get(accountId);
  if (running) return running;
  const p = jmap
    .call([["Mailbox/get", { accountId, ids: null, properties: MAILBOX_PROPS }, "m"]])
    .then((r) => {
      const list = sortMailboxes(
        (jmap.one(r, "m").list as any[]).map((m) => ({ ...m, accountId, sortOrder: m.sortOrder || 0 })),
      );
      boxes.set(accountId, list);
      return list;
    })
    .finally(() => inflight.delete(accountId));
  inflight.set(accountId, p);
  return p;
}

export function cachedMailboxes(accountId: string): Mailbox[] | undefined {
  return boxes.get(accountId);
}

export function byRole(list: Mailbox[] | undefined, role: string): Mailbox | undefined {
  return list?.find((m) => m.role === role);
}

// Changes: one subscription to the event stream; listeners get the accounts that changed.
const listeners = new Set<(accounts: Set<string>) => void>();
let unsubscribe: (() => void) | null = null;

export function onMailChange(fn: (accounts: Set<string>) => void): () => void {
  listeners.add(fn);
  if (!unsubscribe)
    unsubscribe = jmap.onStateChange((changed) => {
      const accounts = new Set(Object.keys(changed));
      accounts.forEach((a) => boxes.delete(a));
      listeners.forEach((l) => l(accounts));
    });
  return () => {
    listeners.delete(fn);
    if (listeners.size === 0 && unsubscribe) {
      unsubscribe();
      unsubscribe = null;
    }
  };
}

/** Tells the mail screens that something changed here (an action), without waiting for push. */
export function changed(accountIds: string[]): void {
  const s = new Set(accountIds);
  s.forEach((a) => boxes.delete(a));
  listeners.forEach((l) => l(s));
}
