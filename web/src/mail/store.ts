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

function isNoticesAccount(acct: any): boolean {
  return acct?.name === "mailkeep" || !!acct?.accountCapabilities?.[jmap.MANAGE];
}

/** The user's mail accounts: the primary first, then by name; the notices account last. */
export function mailAccounts(s: jmap.Session): Account[] {
  const primary = s.primaryAccounts[jmap.MAIL];
  return Object.entries(s.accounts)
    .filter(([, a]) => a.accountCapabilities && a.accountCapabilities[jmap.MAIL])
    .map(([id, a]) => ({ id, name: String(a.name || id), notices: isNoticesAccount(a) }))
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

export const MAILBOX_PROPS = [
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

// The app's one cache of the mailbox lists (the folder tree, the unified inbox, the badge,
// the reader's move menu, compose's Drafts): each account's list until a change of that
// account that is not the app's own (onMailChange), a change made here, or sign-out.
const boxes = new Map<string, Mailbox[]>();
const inflight = new Map<string, Promise<Mailbox[]>>();
let watching: (() => void) | null = null;
let generation = 0; // a fetch started before forgetMailboxes() keeps nothing

// The cache is dropped by onMailChange; one listener of its own keeps that going when no
// screen listens.
function watchBoxes(): void {
  if (!watching) watching = onMailChange(() => undefined);
}

/** Forgets the mailbox lists (at sign-out: the next user's ids may be the same). */
export function forgetMailboxes(): void {
  generation++;
  boxes.clear();
  inflight.clear();
}

function parse(list: any[], accountId: string): Mailbox[] {
  return sortMailboxes(list.map((m) => ({ ...m, accountId, sortOrder: m.sortOrder || 0 })));
}

// One request for the mailboxes of several accounts (each account's promise is in inflight
// until it is there); when it fails as a whole, each account is asked on its own.
function fetchBatch(ids: string[]): void {
  const gen = generation;
  const all = jmap.call(
    ids.map((accountId, i) => ["Mailbox/get", { accountId, ids: null, properties: MAILBOX_PROPS }, "m" + i]),
  );
  ids.forEach((accountId, i) => {
    const p = all
      .then((r) => parse(jmap.one(r, "m" + i).list, accountId))
      .catch((e) => {
        if (ids.length === 1) throw e;
        return jmap
          .call([["Mailbox/get", { accountId, ids: null, properties: MAILBOX_PROPS }, "m"]])
          .then((r) => parse(jmap.one(r, "m").list, accountId));
      })
      .then((list) => {
        if (gen === generation) boxes.set(accountId, list);
        return list;
      })
      .finally(() => inflight.get(accountId) === p && inflight.delete(accountId));
    inflight.set(accountId, p);
  });
}

/** All mailboxes of an account (cached until the next StateChange of that account). */
export function mailboxes(accountId: string, force = false): Promise<Mailbox[]> {
  watchBoxes();
  const running = inflight.get(accountId);
  if (running) return running;
  const have = boxes.get(accountId);
  if (have && !force) return Promise.resolve(have);
  fetchBatch([accountId]);
  return inflight.get(accountId)!;
}

/** The mailboxes of several accounts, those not cached in one request ([] for a failure). */
export async function mailboxesOf(ids: string[], force?: Set<string>): Promise<Record<string, Mailbox[]>> {
  watchBoxes();
  const need = ids.filter((id) => !inflight.has(id) && (!boxes.has(id) || (force && force.has(id))));
  if (need.length) fetchBatch(need);
  const out: Record<string, Mailbox[]> = {};
  await Promise.all(
    ids.map(async (id) => {
      out[id] = await (inflight.get(id) || Promise.resolve(boxes.get(id) || [])).catch(() => [] as Mailbox[]);
    }),
  );
  return out;
}

export function cachedMailboxes(accountId: string): Mailbox[] | undefined {
  return boxes.get(accountId);
}

export function byRole(list: Mailbox[] | undefined, role: string): Mailbox | undefined {
  return list?.find((m) => m.role === role);
}

// States a change made here led to, already shown (patchRows, mailboxesFetched): a
// StateChange that names only these is that change coming back, not news.
const own: string[] = [];
export function ownChange(newState: string | undefined): void {
  if (!newState) return;
  own.push(newState);
  if (own.length > 50) own.shift();
}

/** True when every state of this StateChange entry is one a change made here led to. */
export function ownOnly(types: Record<string, string> | undefined): boolean {
  const states = Object.values(types || {});
  return states.length > 0 && states.every((s) => own.includes(s));
}

// Requests of our own that change things (the reader's mark-read): a StateChange that
// arrives while one is in flight may be its own change coming back before the response,
// so it waits for them (the response notes the new states: ownChange, jmap.call).
const pending = new Set<Promise<unknown>>();
export function ownRequest<T>(p: Promise<T>): Promise<T> {
  pending.add(p);
  const done = () => void pending.delete(p);
  p.then(done, done);
  return p;
}
function afterOwn(fn: () => void): void {
  if (!pending.size) fn();
  else void Promise.allSettled([...pending]).then(fn);
}

type Changed = Record<string, Record<string, string>>;
/** StateChanges less the entries that are only changes made here (after those requests). */
export function onForeignChange(fn: (changed: Changed) => void): () => void {
  return jmap.onStateChange((changed) =>
    afterOwn(() => {
      const out: Changed = {};
      for (const [acct, types] of Object.entries(changed)) if (!ownOnly(types)) out[acct] = types;
      if (Object.keys(out).length) fn(out);
    }),
  );
}

// Changes: one subscription to the event stream; listeners get the accounts that changed.
const listeners = new Set<(accounts: Set<string>) => void>();
let unsubscribe: (() => void) | null = null;

export function onMailChange(fn: (accounts: Set<string>) => void): () => void {
  listeners.add(fn);
  if (!unsubscribe)
    unsubscribe = jmap.onStateChange((changed) => afterOwn(() => {
      // Only accounts where a type the app has read moved on (the stream's first event
      // names the states as they are, usually what the app has just read).
      const accounts = new Set<string>();
      for (const [acct, types] of Object.entries(changed)) {
        for (const [type, state] of Object.entries(types || {})) {
          const had = jmap.seenState(acct, type);
          if (had !== undefined && had !== state && !own.includes(state)) accounts.add(acct);
          jmap.noteState(acct, type, state);
        }
      }
      if (!accounts.size) return;
      accounts.forEach((a) => boxes.delete(a));
      listeners.forEach((l) => l(accounts));
    }));
  return () => {
    listeners.delete(fn);
    if (listeners.size === 0 && unsubscribe) {
      unsubscribe();
      unsubscribe = null;
    }
  };
}

// Mailbox counts only (the folder tree, the notices badge): an action here that changed
// counts without changing what the lists show.
const countListeners = new Set<(accounts: Set<string>) => void>();
export function onMailboxChange(fn: (accounts: Set<string>) => void): () => void {
  countListeners.add(fn);
  const off = onMailChange(fn);
  return () => {
    countListeners.delete(fn);
    off();
  };
}
/** Mailboxes read along with a request of the app's own (Mailbox/get, MAILBOX_PROPS): kept,
 * and the counts show them at once (no refetch). */
export function mailboxesFetched(accountId: string, list: any[]): void {
  boxes.set(accountId, parse(list, accountId));
  countListeners.forEach((l) => l(new Set()));
}

// Rows changed here (keywords), shown at once; the server's StateChange follows.
export interface RowPatch {
  accountId: string;
  ids: string[];
  keywords?: Record<string, boolean>; // set (true) or removed (false)
}
const patchListeners = new Set<(p: RowPatch) => void>();
export function onRowPatch(fn: (p: RowPatch) => void): () => void {
  patchListeners.add(fn);
  return () => void patchListeners.delete(fn);
}
export function patchRows(p: RowPatch): void {
  patchListeners.forEach((l) => l(p));
}

// Opened messages: what the reader shows of a message (its body, its thread's headers),
// kept for the last few opened and fetched ahead for the rows next to the open one and the
// row under the pointer (prefetchOpen), so that opening them is a render, not a round trip.
// Bodies do not change; the headers (keywords) are read again by the open's own request.
export const HEAD_PROPS = [
  "id", "threadId", "mailboxIds", "keywords", "from", "to", "cc", "subject", "receivedAt", "sentAt",
  "preview", "hasAttachment",
];
export const BODY_PROPS = [...HEAD_PROPS, "replyTo", "htmlBody", "textBody", "attachments", "bodyValues"];
export const PART_PROPS = ["partId", "blobId", "size", "name", "type", "cid", "disposition"];

export interface Opened {
  full: any; // the message: BODY_PROPS
  thread: any[]; // its thread's messages: HEAD_PROPS, oldest first
}
const OPENED_MAX = 40; // messages
const OPENED_BYTES = 8 * 1024 * 1024; // of body text, about
const PREFETCH_BODY = 256 * 1024; // a longer body is fetched when opened
const opened = new Map<string, { data: Opened; bytes: number }>();
let openedBytes = 0;
// Bodies on their way (fetched ahead, or by the reader): not asked for twice.
const prefetching = new Map<string, Promise<unknown>>();

/** The request fetching this message ahead (or the reader's own), if one is on its way. */
export function fetchingOpen(accountId: string, id: string): Promise<unknown> | undefined {
  return prefetching.get(accountId + "/" + id);
}

/** Notes the reader's own request for a message's body (not fetched ahead meanwhile). */
export function noteFetching(accountId: string, id: string, p: Promise<unknown>): void {
  const k = accountId + "/" + id;
  const done = () => {
    if (prefetching.get(k) === q) prefetching.delete(k);
  };
  const q = p.then(done, done);
  prefetching.set(k, q);
}

function bodyBytes(full: any): number {
  let n = 0;
  for (const v of Object.values(full?.bodyValues || {})) n += (v as any)?.value?.length || 0;
  return n + 2048;
}

/** Keeps what the reader showed of a message (the least recently used go first). */
export function keepOpened(accountId: string, data: Opened): void {
  const k = accountId + "/" + data.full.id;
  const old = opened.get(k);
  if (old) {
    openedBytes -= old.bytes;
    opened.delete(k);
  }
  const bytes = bodyBytes(data.full);
  opened.set(k, { data, bytes });
  openedBytes += bytes;
  for (const [key, v] of opened) {
    if (opened.size <= OPENED_MAX && openedBytes <= OPENED_BYTES) break;
    if (key === k) continue;
    opened.delete(key);
    openedBytes -= v.bytes;
  }
}

/** What is kept of a message, or undefined. */
export function openedOf(accountId: string, id: string): Opened | undefined {
  return opened.get(accountId + "/" + id)?.data;
}

export function forgetOpened(): void {
  opened.clear();
  openedBytes = 0;
}

function sortThread(list: any[]): any[] {
  return list.sort((x, y) => (x.receivedAt < y.receivedAt ? -1 : x.receivedAt > y.receivedAt ? 1 : 0));
}

/** The thread of `full` from a Thread/get list and the headers read with it. */
export function threadOf(full: any, threads: any[], heads: any[]): any[] | null {
  const th = threads.find((x) => x.id === full.threadId);
  if (!th) return null;
  const ids = new Set<string>(th.emailIds);
  return sortThread(heads.filter((h) => ids.has(h.id)));
}

/**
 * Fetches ahead what opening these messages shows, in one request (nothing is marked read):
 * the ones kept or on their way already are left out. After the app's own changes in flight
 * (the open's mark-read), so that it does not wait behind these.
 */
export function prefetchOpen(accountId: string, ids: string[]): void {
  const want = ids.filter((id) => id && !opened.has(accountId + "/" + id) && !prefetching.has(accountId + "/" + id)).slice(0, 4);
  if (!want.length) return;
  let go: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (go = resolve));
  const p = started.then(() =>
    jmap
      .call([
        [
          "Email/get",
          {
            accountId,
            ids: want,
            properties: BODY_PROPS,
            bodyProperties: PART_PROPS,
            fetchHTMLBodyValues: true,
            fetchTextBodyValues: true,
            maxBodyValueBytes: PREFETCH_BODY,
          },
          "a",
        ],
        ["Thread/get", { accountId, "#ids": { resultOf: "a", name: "Email/get", path: "/list/*/threadId" } }, "t"],
        [
          "Email/get",
          { accountId, "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" }, properties: HEAD_PROPS },
          "e",
        ],
      ])
      .then((r) => {
        const threads = jmap.one(r, "t").list || [];
        const heads = jmap.one(r, "e").list || [];
        for (const full of jmap.one(r, "a").list || []) {
          // A body cut at the prefetch's limit is fetched whole when opened.
          if (Object.values(full.bodyValues || {}).some((v: any) => v?.isTruncated)) continue;
          const thread = threadOf(full, threads, heads);
          if (thread && thread.some((h) => h.id === full.id)) keepOpened(accountId, { full, thread });
        }
      })
      .catch(() => undefined), // only ahead of time: the open asks again
  );
  want.forEach((id) => {
    const k = accountId + "/" + id;
    prefetching.set(k, p);
    void p.then(() => prefetching.get(k) === p && prefetching.delete(k));
  });
  afterOwn(go);
}
