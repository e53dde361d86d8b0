// The mailboxes of an account with their roles in tree order (for actions, drafts and the
// move menu): a view of the mail store's one cache of the mailbox lists.
import { mailboxes as storeMailboxes } from "../mail/store";

export interface MailboxInfo {
  id: string;
  name: string;
  role: string | null;
  parentId: string | null;
  sortOrder: number;
  depth: number; // in the tree, for indenting
  path: string; // "Parent/Child"
  mayAddItems: boolean;
}

/** The mailboxes of an account in tree order (from the mail store's cache). */
export async function mailboxes(accountId: string): Promise<MailboxInfo[]> {
  return treeOrder(await storeMailboxes(accountId));
}

function treeOrder(list: readonly any[]): MailboxInfo[] {
  const children = new Map<string | null, any[]>();
  const ids = new Set(list.map((m) => m.id));
  for (const m of list) {
    const parent = m.parentId && ids.has(m.parentId) ? m.parentId : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent)!.push(m);
  }
  const roleRank = (r: string | null) =>
    r ? ["inbox", "drafts", "sent", "archive", "junk", "trash"].indexOf(r) + 1 || 7 : 8;
  const out: MailboxInfo[] = [];
  const walk = (parent: string | null, depth: number, prefix: string) => {
    const kids = (children.get(parent) ?? []).slice().sort(
      (a, b) =>
        (depth === 0 ? roleRank(a.role) - roleRank(b.role) : 0) ||
        (a.sortOrder ?? 0) - (b.sortOrder ?? 0) ||
        String(a.name).localeCompare(String(b.name)),
    );
    for (const m of kids) {
      const path = prefix ? prefix + "/" + m.name : m.name;
      out.push({
        id: m.id,
        name: m.name,
        role: m.role ?? null,
        parentId: m.parentId ?? null,
        sortOrder: m.sortOrder ?? 0,
        depth,
        path,
        mayAddItems: m.myRights ? m.myRights.mayAddItems !== false : true,
      });
      if (depth < 20) walk(m.id, depth + 1, path);
    }
  };
  walk(null, 0, "");
  return out;
}

export async function roleMailbox(accountId: string, role: string): Promise<MailboxInfo | null> {
  return (await mailboxes(accountId)).find((m) => m.role === role) ?? null;
}

