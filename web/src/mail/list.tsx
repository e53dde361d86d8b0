// The message list: a virtual list over a Source. Only the rows in view (plus a margin)
// are in the DOM and only their pages are fetched, so a 100,000-message folder costs what
// a 60-message one does.
import { Component } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { t, fmtShortDate, locale } from "../i18n";
import { errorText } from "../errors";
import { Row, Source, PAGE } from "./source";
import { onMailChange, onRowPatch, prefetchOpen } from "./store";
import { Icon } from "../icons";

export const ROW_HEIGHT = 72;
const OVERSCAN = 8;

export function sender(r: Row, sent: boolean): string {
  const list = sent ? r.to : r.from;
  if (!list || !list.length) return t("list.noSender");
  const names = list.map((a) => a.name || a.email);
  return (sent ? t("list.to") + " " : "") + names.join(", ");
}

/** Renders a SearchSnippet (HTML with <mark>) as text + <mark> elements, nothing else. */
export function Highlighted(props: { html: string }) {
  const doc = new DOMParser().parseFromString("<body>" + props.html, "text/html");
  const out: any[] = [];
  doc.body.childNodes.forEach((n, i) => {
    if (n.nodeType === 1 && (n as Element).tagName === "MARK") out.push(<mark key={i}>{n.textContent}</mark>);
    else out.push(n.textContent);
  });
  return <>{out}</>;
}

export function rowHref(base: string, r: Row): string {
  return base + "/" + encodeURIComponent(r.id) + "/" + encodeURIComponent(r.accountId);
}

// A row's date as shown (the Intl formatting is the costliest part of a row's render);
// per locale and day, so "today" moves on.
const dates = new Map<string, string>();
function shortDate(iso: string): string {
  const k = locale() + new Date().toDateString() + iso;
  let v = dates.get(k);
  if (v === undefined) {
    if (dates.size > 2000) dates.clear();
    v = fmtShortDate(iso);
    dates.set(k, v);
  }
  return v;
}

interface RowProps {
  r: Row | undefined;
  i: number;
  total: number;
  base: string;
  selected: boolean;
  sent: boolean;
  showAccount: (id: string) => string | null;
}

// A row renders again only when it changed (its row object, keywords or snippet, its place,
// being selected, the list's total): opening a message renders two rows, not the window.
class RowItem extends Component<RowProps & { keywords: unknown; lang: string }> {
  shouldComponentUpdate(n: RowProps & { keywords: unknown; lang: string }) {
    const o = this.props;
    return (
      o.r !== n.r || o.keywords !== n.keywords || o.r?.snippet !== n.r?.snippet || o.i !== n.i || o.total !== n.total ||
      o.base !== n.base || o.selected !== n.selected || o.sent !== n.sent || o.showAccount !== n.showAccount || o.lang !== n.lang
    );
  }
  render() {
    return RowView(this.props);
  }
}
const NO_ACCOUNT = () => null;

function RowView(props: RowProps) {
  const { r, i } = props;
  const style = { transform: `translateY(${i * ROW_HEIGHT}px)` };
  if (!r)
    return (
      <li class="msg-row placeholder" style={style} aria-posinset={i + 1} aria-setsize={props.total} aria-busy="true">
        <span class="skeleton" />
        <span class="skeleton short" />
      </li>
    );
  const unread = !r.keywords["$seen"];
  const flagged = !!r.keywords["$flagged"];
  const subject = r.snippet?.subject ? <Highlighted html={r.snippet.subject} /> : r.subject || t("list.noSubject");
  const preview = r.snippet?.preview ? <Highlighted html={r.snippet.preview} /> : r.preview;
  const acct = props.showAccount(r.accountId);
  return (
    <li
      class={"msg-row" + (unread ? " unread" : "") + (props.selected ? " selected" : "")}
      style={style}
      aria-posinset={i + 1}
      aria-setsize={props.total}
    >
      <a
        href={rowHref(props.base, r)}
        data-testid="msg-row"
        data-id={r.id}
        data-account={r.accountId}
        data-unread={unread ? "true" : "false"}
        data-index={i}
        aria-current={props.selected ? "true" : undefined}
      >
        <span class="row-top">
          <span class="row-from">
            {unread ? <span class="sr-only">{t("list.unread")} </span> : null}
            {sender(r, props.sent)}
          </span>
          {r.threadSize > 1 ? (
            <span class="thread-count" aria-label={t("list.inThread", { n: r.threadSize })}>
              {r.threadSize}
            </span>
          ) : null}
          {flagged ? <Icon name="star" class="flag" label={t("list.flagged")} /> : null}
          {r.hasAttachment ? <Icon name="clip" class="clip" label={t("list.attachment")} /> : null}
          <time class="row-date" dateTime={r.receivedAt}>
            {shortDate(r.receivedAt)}
          </time>
        </span>
        <span class="row-subject">{subject}</span>
        <span class="row-preview">
          {acct ? <span class="row-account">{acct}</span> : null}
          {preview}
        </span>
      </a>
    </li>
  );
}

// Fetches ahead what opening these rows shows (store.prefetchOpen), one request per account.
function aheadOf(rows: (Row | undefined)[]): void {
  const by = new Map<string, string[]>();
  for (const r of rows) if (r) by.set(r.accountId, [...(by.get(r.accountId) || []), r.id]);
  by.forEach((ids, accountId) => prefetchOpen(accountId, ids));
}

export function MessageList(props: {
  source: Source;
  base: string; // the hash of this list; a row links to base/<emailId>/<accountId>
  selected: { accountId: string; id: string } | null;
  label: string;
  sent?: boolean;
  threads?: boolean; // rows are conversations (collapsed threads)
  showAccount?: (id: string) => string | null;
  empty?: string;
}) {
  const { source } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [range, setRange] = useState({ from: 0, to: PAGE });
  const [, setVersion] = useState(0);
  const [error, setError] = useState("");
  const [loaded, setLoaded] = useState(false);
  const bump = () => setVersion((v) => v + 1);

  // A new source: back to the top.
  useLayoutEffect(() => {
    if (scroller.current) scroller.current.scrollTop = 0;
    setLoaded(false);
    setError("");
    measure();
  }, [source]);

  const measure = () => {
    const el = scroller.current;
    if (!el) return;
    const from = Math.max(0, Math.floor(el.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const to = Math.ceil((el.scrollTop + (el.clientHeight || 600)) / ROW_HEIGHT) + OVERSCAN;
    setRange((r) => (r.from === from && r.to === to ? r : { from, to }));
  };

  // Fetch what is in view, shortly after scrolling settles (a fast drag over 100,000 rows
  // does not fetch every page it passes).
  useEffect(() => {
    let alive = true;
    const timer = window.setTimeout(() => {
      source
        .ensure(range.from, range.to)
        .then(() => {
          if (!alive) return;
          setLoaded(true);
          setError("");
          bump();
        })
        .catch((e) => alive && (setError(errorText(e)), setLoaded(true)));
    }, loaded ? 60 : 0);
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [source, range.from, range.to]);

  // Live updates: a change in one of the list's accounts refetches what is in view.
  useEffect(
    () =>
      onMailChange((accounts) => {
        if (!source.accounts.some((a) => accounts.has(a))) return;
        source.invalidate();
        const el = scroller.current;
        const from = el ? Math.max(0, Math.floor(el.scrollTop / ROW_HEIGHT) - OVERSCAN) : 0;
        const to = el ? Math.ceil((el.scrollTop + el.clientHeight) / ROW_HEIGHT) + OVERSCAN : PAGE;
        source
          .ensure(from, to)
          .then(bump)
          .catch(() => undefined);
      }),
    [source],
  );

  // The exact total arriving later, and rows changed here (read, flagged) before the server says so.
  useEffect(() => {
    source.onUpdate = bump;
    const off = onRowPatch((p) => {
      const hit = source.patch(p.accountId, p.ids, (r) => {
        const kw = { ...r.keywords };
        for (const [k, v] of Object.entries(p.keywords || {})) {
          if (v) kw[k] = true;
          else delete kw[k];
        }
        r.keywords = kw;
      });
      if (hit) bump();
    });
    return () => {
      source.onUpdate = null;
      off();
    };
  }, [source]);

  useEffect(() => {
    const on = () => measure();
    window.addEventListener("resize", on);
    return () => window.removeEventListener("resize", on);
  }, []);

  // Keep the selected row in view when it changes (keyboard, j/k).
  useEffect(() => {
    if (!props.selected || !scroller.current) return;
    const i = source.indexOf(props.selected.accountId, props.selected.id);
    if (i < 0) return;
    const el = scroller.current;
    const top = i * ROW_HEIGHT;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_HEIGHT - el.clientHeight;
  }, [props.selected?.id, props.selected?.accountId, source]);

  // The messages next to the open one are fetched ahead (after the open's own request):
  // the next and the previous row are opened at once.
  useEffect(() => {
    const sel = props.selected;
    if (!sel) return;
    const timer = window.setTimeout(() => {
      const i = source.indexOf(sel.accountId, sel.id);
      if (i < 0) return;
      aheadOf([source.row(i + 1), source.row(i - 1)]);
    }, 0);
    return () => clearTimeout(timer);
  }, [props.selected?.id, props.selected?.accountId, source]);

  // And the row under the pointer or focused (the keyboard), once it has stayed there a moment.
  const hover = useRef(0);
  useEffect(() => () => clearTimeout(hover.current), []);
  const onHover = (e: Event) => {
    const a = (e.target as HTMLElement | null)?.closest?.<HTMLElement>('a[data-testid="msg-row"]');
    const i = Number(a?.getAttribute("data-index"));
    if (!a || isNaN(i)) return;
    clearTimeout(hover.current);
    hover.current = window.setTimeout(() => aheadOf([source.row(i)]), 40);
  };

  let frame = 0;
  const onScroll = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      measure();
    });
  };

  // Arrow keys move between rows (the focused link), scrolling as needed.
  const onKeyDown = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement;
    const idx = Number(target.getAttribute?.("data-index"));
    if (target.getAttribute?.("data-testid") !== "msg-row" || isNaN(idx)) return;
    let next = -1;
    const total = source.total() || 0;
    const pageRows = Math.max(1, Math.floor((scroller.current?.clientHeight || 600) / ROW_HEIGHT) - 1);
    if (e.key === "ArrowDown") next = idx + 1;
    else if (e.key === "ArrowUp") next = idx - 1;
    else if (e.key === "PageDown") next = idx + pageRows;
    else if (e.key === "PageUp") next = idx - pageRows;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = total - 1;
    else return;
    e.preventDefault();
    next = Math.max(0, Math.min(total - 1, next));
    const el = scroller.current!;
    const top = next * ROW_HEIGHT;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_HEIGHT - el.clientHeight;
    measure();
    const focus = (tries: number) => {
      const a = el.querySelector<HTMLElement>(`a[data-index="${next}"]`);
      if (a) a.focus();
      else if (tries > 0) setTimeout(() => focus(tries - 1), 50);
    };
    requestAnimationFrame(() => focus(20));
  };

  const total = source.total();
  const count = total === null ? 0 : total;
  const rows = [];
  const show = props.showAccount || NO_ACCOUNT;
  for (let i = range.from; i < Math.min(range.to, count); i++) {
    const r = source.row(i);
    rows.push(
      <RowItem
        key={r ? r.accountId + "/" + r.id : "p" + i}
        r={r}
        keywords={r?.keywords}
        lang={locale()}
        i={i}
        total={count}
        base={props.base}
        sent={!!props.sent}
        showAccount={show}
        selected={!!r && !!props.selected && props.selected.id === r.id && props.selected.accountId === r.accountId}
      />,
    );
  }
  return (
    <div class="list-pane">
      <div class="list-status" aria-live="polite">
        {error ? (
          <span class="form-error" role="alert">
            {error}
          </span>
        ) : total === null || !loaded ? (
          t("app.loading")
        ) : source.exact() && props.threads ? (
          t("list.countThreads", { n: total })
        ) : (
          t("list.count", { n: total })
        )}
      </div>
      <div
        class="list-scroll"
        ref={scroller}
        onScroll={onScroll}
        onKeyDown={onKeyDown}
        onPointerOver={onHover}
        onFocusIn={onHover}
        data-testid="msg-list"
      >
        {loaded && count === 0 && !error ? (
          <p class="empty">{props.empty || t("list.empty")}</p>
        ) : (
          <ul class="msg-list" aria-label={props.label} style={{ height: count * ROW_HEIGHT + "px" }}>
            {rows}
          </ul>
        )}
      </div>
    </div>
  );
}

