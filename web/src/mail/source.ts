// Where a message list's rows come from, a window at a time (Email/query position+limit,
// never the whole folder):
//  - WindowSource: one account (a mailbox, or a search): random access by position, pages
//    of PAGE rows, each page one request (Email/query + Email/get [+ Thread/get]
//    [+ SearchSnippet/get]); at most KEEP pages are kept.
//  - MergedSource: several accounts (the unified inbox, a search across accounts): each
//    account is read in order, page by page, and the rows merged by date as far as the
//    list has been scrolled.
// The number of rows: calculateTotal costs the server a walk over the whole folder (about
// half a second for 100,000 messages), so no page waits for it. A mailbox view starts from
// the mailbox's count (exact without collapsed threads, an upper bound with them) and asks
// for the exact number in a request of its own after the rows are shown; a page that comes
// back short tells the end exactly.
import * as jmap from "../jmap";

export const PAGE = 60;
const KEEP = 40;

export interface Row {
  accountId: string;
  id: string;
  threadId: string;
  mailboxIds: Record<string, boolean>;
  keywords: Record<string, boolean>;
  from: { name: string | null; email: string }[] | null;
  to: { name: string | null; email: string }[] | null;
  subject: string | null;
  receivedAt: string;
  preview: string;
  hasAttachment: boolean;
  threadSize: number;
  snippet?: { subject: string | null; preview: string | null } | null;
}

export interface Source {
  readonly accounts: string[];
  /** The number of rows (an estimate until exact() says otherwise; null: not known yet). */
  total(): number | null;
  exact(): boolean;
  row(i: number): Row | undefined;
  /** Loads rows [from, to); resolves when they are there (or failed). */
  ensure(from: number, to: number): Promise<void>;
  /** Marks everything stale: the next ensure() fetches again (rows stay shown meanwhile). */
  invalidate(): void;
  /** The position of an email among the rows loaded, or -1. */
  indexOf(accountId: string, id: string): number;
  /** Changes loaded rows in place (a keyword set here, before the server's change comes). */
  patch(accountId: string, ids: string[], fn: (r: Row) => void): boolean;
  /** Called when something arrived outside ensure() (the exact total). */
  onUpdate: (() => void) | null;
}

export const ROW_PROPS = [
  "id", "threadId", "mailboxIds", "keywords", "from", "to", "subject", "receivedAt", "preview",
  "hasAttachment",
];

export interface Query {
  accountId: string;
  filter: any;
  collapseThreads: boolean;
  snippets: boolean; // the filter has text conditions: ask SearchSnippet/get
  /** The mailbox's message count, when the query is a mailbox (see above). */
  hint?: () => number | undefined;
}

const SORT = [{ property: "receivedAt", isAscending: false }];

function queryArgs(q: Query, position: number, limit: number, total: boolean) {
  return {
    accountId: q.accountId,
    filter: q.filter,
    sort: SORT,
    collapseThreads: q.collapseThreads,
    position,
    limit,
    calculateTotal: total,
  };
}

async function fetchPage(
  q: Query,
  position: number,
  limit: number,
  wantTotal: boolean,
): Promise<{ rows: Row[]; total: number | null }> {
  const calls: [string, any, string][] = [
    ["Email/query", queryArgs(q, position, limit, wantTotal), "q"],
    [
      "Email/get",
      {
        accountId: q.accountId,
        "#ids": { resultOf: "q", name: "Email/query", path: "/ids" },
        properties: ROW_PROPS,
      },
      "g",
    ],
  ];
  if (q.collapseThreads)
    calls.push([
      "Thread/get",
      {
        accountId: q.accountId,
        "#ids": { resultOf: "g", name: "Email/get", path: "/list/*/threadId" },
      },
      "t",
    ]);
  if (q.snippets)
    calls.push([
      "SearchSnippet/get",
      {
        accountId: q.accountId,
        filter: q.filter,
        "#emailIds": { resultOf: "q", name: "Email/query", path: "/ids" },
      },
      "s",
    ]);
  const r = await jmap.call(calls);
  const query = jmap.one(r, "q");
  const got = new Map<string, any>((jmap.one(r, "g").list as any[]).map((e) => [e.id, e]));
  const threads = new Map<string, number>();
  if (q.collapseThreads)
    for (const th of jmap.one(r, "t").list as any[]) threads.set(th.id, (th.emailIds || []).length);
  const snippets = new Map<string, any>();
  if (q.snippets) for (const s of jmap.one(r, "s").list as any[]) if (s) snippets.set(s.emailId, s);
  const rows: Row[] = [];
  for (const id of query.ids as string[]) {
    const e = got.get(id);
    if (!e) continue;
    rows.push({
      accountId: q.accountId,
      id,
      threadId: e.threadId,
      mailboxIds: e.mailboxIds || {},
      keywords: e.keywords || {},
      from: e.from,
      to: e.to,
      subject: e.subject,
      receivedAt: e.receivedAt,
      preview: e.preview || "",
      hasAttachment: !!e.hasAttachment,
      threadSize: threads.get(e.threadId) || 1,
      snippet: snippets.get(id) || null,
    });
  }
  let total: number | null = typeof query.total === "number" ? query.total : null;
  if (total === null && (query.ids as string[]).length < limit) total = position + (query.ids as string[]).length;
  return { rows, total };
}

async function fetchTotal(q: Query): Promise<number> {
  const r = await jmap.call([["Email/query", queryArgs(q, 0, 1, true), "q"]]);
  return jmap.one(r, "q").total as number;
}

// The exact total, asked for in a request of its own a little after the rows came.
class TotalLater {
  private timer: number | undefined;
  private gen = 0;
  value: number | null = null;
  constructor(private q: Query, private done: () => void) {}
  stale() {
    this.gen++;
    this.value = null;
  }
  schedule() {
    if (this.value !== null || this.timer !== undefined) return;
    const gen = this.gen;
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      fetchTotal(this.q)
        .then((n) => {
          if (gen !== this.gen) return this.schedule();
          this.value = n;
          this.done();
        })
        .catch(() => undefined);
    }, 400);
  }
}

interface Page {
  rows: Row[];
  stale: boolean;
  used: number;
}

export class WindowSource implements Source {
  readonly accounts: string[];
  onUpdate: (() => void) | null = null;
  private pages = new Map<number, Page>();
  private loading = new Map<number, Promise<void>>();
  private count: number | null = null; // known so far (a short page, or a calculated total)
  private isExact = false;
  private clock = 0;
  private generation = 0;
  private later: TotalLater;
  constructor(private q: Query) {
    this.accounts = [q.accountId];
    this.later = new TotalLater(q, () => {
      if (this.later.value !== null && !this.isExact) {
        this.count = this.later.value;
        this.isExact = true;
        this.onUpdate?.();
      }
    });
  }
  total() {
    if (this.isExact) return this.count;
    const hint = this.q.hint?.();
    if (hint === undefined) return this.count;
    return Math.max(hint, this.count || 0);
  }
  exact() {
    return this.isExact;
  }
  row(i: number) {
    const p = this.pages.get(Math.floor(i / PAGE));
    if (!p) return undefined;
    p.used = ++this.clock;
    return p.rows[i % PAGE];
  }
  indexOf(accountId: string, id: string) {
    if (accountId !== this.q.accountId) return -1;
    for (const [n, p] of this.pages) {
      const k = p.rows.findIndex((r) => r.id === id);
      if (k >= 0) return n * PAGE + k;
    }
    return -1;
  }
  patch(accountId: string, ids: string[], fn: (r: Row) => void) {
    let hit = false;
    if (accountId !== this.q.accountId) return false;
    for (const p of this.pages.values())
      for (const r of p.rows)
        if (ids.includes(r.id)) {
          fn(r);
          hit = true;
        }
    return hit;
  }
  invalidate() {
    this.generation++;
    this.pages.forEach((p) => (p.stale = true));
    this.isExact = false;
    this.later.stale();
  }
  async ensure(from: number, to: number) {
    const known = this.total();
    if (known !== null && this.isExact) to = Math.min(to, known);
    const first = Math.floor(Math.max(0, from) / PAGE);
    const last = Math.max(first, Math.floor((Math.max(to, from + 1) - 1) / PAGE));
    const waits: Promise<void>[] = [];
    for (let n = first; n <= last; n++) {
      const have = this.pages.get(n);
      if (have && !have.stale) continue;
      if (this.isExact && this.count !== null && n * PAGE >= this.count && n > 0) continue;
      let p = this.loading.get(n);
      if (!p) {
        const gen = this.generation;
        // Without a hint (a search) the first page asks for the total: there is no other.
        const wantTotal = !this.q.hint && this.count === null;
        p = fetchPage(this.q, n * PAGE, PAGE, wantTotal)
          .then(({ rows, total }) => {
            const fresh = gen === this.generation;
            if (!fresh && this.pages.get(n) && !this.pages.get(n)!.stale) return;
            this.pages.set(n, { rows, stale: !fresh, used: ++this.clock });
            if (!fresh) return;
            if (total !== null) {
              this.count = total;
              this.isExact = true;
            } else if (!this.isExact) {
              this.count = Math.max(this.count || 0, n * PAGE + rows.length);
            }
          })
          .finally(() => this.loading.delete(n));
        this.loading.set(n, p);
      }
      waits.push(p);
    }
    await Promise.all(waits);
    if (!this.isExact && this.q.hint) this.later.schedule();
    // Stale pages out of view are dropped; the oldest pages beyond KEEP too.
    for (const [n, p] of this.pages) if (p.stale && (n < first || n > last)) this.pages.delete(n);
    if (this.pages.size > KEEP) {
      const order = [...this.pages.entries()].sort((a, b) => a[1].used - b[1].used);
      for (const [n] of order.slice(0, this.pages.size - KEEP)) if (n < first || n > last) this.pages.delete(n);
    }
  }
}

interface Cursor {
  q: Query;
  buf: Row[];
  next: number; // the position of the next page to fetch
  total: number | null; // exact, from a short page or calculateTotal
  done: boolean;
}

interface MergeState {
  cursors: Cursor[];
  merged: Row[];
}

export class MergedSource implements Source {
  readonly accounts: string[];
  onUpdate: (() => void) | null = null;
  private st: MergeState;
  private running: Promise<void> | null = null;
  private stale = false;
  constructor(private queries: Query[]) {
    this.accounts = queries.map((q) => q.accountId);
    this.st = this.fresh();
  }
  private fresh(): MergeState {
    return { cursors: this.queries.map((q) => ({ q, buf: [], next: 0, total: null, done: false })), merged: [] };
  }
  total() {
    const cs = this.st.cursors;
    if (!cs.length) return 0;
    if (cs.every((c) => c.done)) return this.st.merged.length + cs.reduce((n, c) => n + c.buf.length, 0);
    let sum = 0;
    for (const c of cs) {
      const n = c.total ?? c.q.hint?.() ?? null;
      if (n === null) return this.st.merged.length || null;
      sum += n;
    }
    return Math.max(sum, this.st.merged.length);
  }
  exact() {
    return this.st.cursors.every((c) => c.done || c.total !== null);
  }
  row(i: number) {
    return this.st.merged[i];
  }
  indexOf(accountId: string, id: string) {
    return this.st.merged.findIndex((r) => r.accountId === accountId && r.id === id);
  }
  patch(accountId: string, ids: string[], fn: (r: Row) => void) {
    let hit = false;
    for (const r of this.st.merged)
      if (r.accountId === accountId && ids.includes(r.id)) {
        fn(r);
        hit = true;
      }
    return hit;
  }
  invalidate() {
    // Merging needs every account's order from the top: the next ensure() starts again
    // (the old rows stay shown until the new ones are there).
    this.stale = true;
  }
  async ensure(_from: number, to: number) {
    while (this.running) await this.running;
    if (this.stale) {
      this.stale = false;
      const st = this.fresh();
      this.running = fill(st, Math.max(to, PAGE))
        .then(() => void (this.st = st))
        .finally(() => (this.running = null));
      await this.running;
      return;
    }
    if (this.st.merged.length >= to || this.st.cursors.every((c) => c.done && !c.buf.length)) return;
    this.running = fill(this.st, to).finally(() => (this.running = null));
    await this.running;
  }
}

async function fill(st: MergeState, to: number): Promise<void> {
  for (;;) {
    // Every account that may still have rows needs one buffered to compare.
    const need = st.cursors.filter((c) => !c.done && c.buf.length === 0);
    if (need.length) {
      await Promise.all(
        need.map(async (c) => {
          const want = Math.min(PAGE * 2, Math.max(PAGE, to - st.merged.length));
          const { rows, total } = await fetchPage(c.q, c.next, want, !c.q.hint && c.next === 0);
          if (total !== null) c.total = total;
          c.next += rows.length;
          c.buf.push(...rows);
          if (rows.length < want || (c.total !== null && c.next >= c.total)) {
            c.done = true;
            c.total = c.next;
          }
        }),
      );
    }
    if (st.merged.length >= to) return;
    let best: Cursor | null = null;
    for (const c of st.cursors) if (c.buf.length && (!best || c.buf[0].receivedAt > best.buf[0].receivedAt)) best = c;
    if (!best) return; // every account exhausted
    // Take from the newest account while it stays the newest and the others stay buffered.
    while (best.buf.length && st.merged.length < to) {
      const head = best.buf[0];
      if (st.cursors.some((c) => c !== best && !c.done && c.buf.length === 0)) break;
      if (st.cursors.some((c) => c !== best && c.buf.length && c.buf[0].receivedAt > head.receivedAt)) break;
      st.merged.push(best.buf.shift()!);
    }
  }
}
