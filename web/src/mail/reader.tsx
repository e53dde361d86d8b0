// The reader: the thread of the opened message (Thread/get), the opened message expanded,
// its body shown in a sandboxed iframe (see sanitize.ts), attachments with download links
// and image previews, remote images behind a per-message or per-sender permission.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { t, fmtDate, fmtSize, locale } from "../i18n";
import * as jmap from "../jmap";
import { errorText } from "../errors";
import { prepare, textToHtml, baseCss, writeFrame } from "./sanitize";
import {
  MAILBOX_PROPS, HEAD_PROPS, BODY_PROPS, PART_PROPS, mailboxesFetched, ownChange, ownRequest, patchRows,
  keepOpened, openedOf, threadOf, fetchingOpen, noteFetching,
} from "./store";
import { Icon } from "../icons";
import { PdfViewer, maybePdf, previewUrl } from "./preview";

interface Addr {
  name: string | null;
  email: string;
}
interface Part {
  partId: string | null;
  blobId: string | null;
  size: number;
  name: string | null;
  type: string;
  cid: string | null;
  disposition: string | null;
}
interface Head {
  id: string;
  threadId: string;
  mailboxIds: Record<string, boolean>;
  keywords: Record<string, boolean>;
  from: Addr[] | null;
  to: Addr[] | null;
  cc: Addr[] | null;
  subject: string | null;
  receivedAt: string;
  sentAt: string | null;
  preview: string;
  hasAttachment: boolean;
}
interface Full extends Head {
  replyTo: Addr[] | null;
  htmlBody: Part[];
  textBody: Part[];
  attachments: Part[];
  bodyValues: Record<string, { value: string; isTruncated: boolean; isEncodingProblem: boolean }>;
}


// Remote images allowed: per message ("A1/M42") and per sender address, in localStorage
// (per hub user: another user of the same browser starts blocked).
const MSG_KEY = "mk.images.messages";
const SENDER_KEY = "mk.images.senders";
function userKey(key: string): string {
  return key + "." + (jmap.sessionNow()?.username || "");
}
function listGet(key: string): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(userKey(key)) || "[]");
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}
function listAdd(key: string, item: string): void {
  const list = listGet(key).filter((x) => x !== item);
  list.push(item);
  try {
    localStorage.setItem(userKey(key), JSON.stringify(list.slice(-1000)));
  } catch {
    /* storage full or off: allowed for this view only */
  }
}
export function imagesAllowed(accountId: string, emailId: string, sender: string | undefined): boolean {
  if (listGet(MSG_KEY).includes(accountId + "/" + emailId)) return true;
  return !!sender && listGet(SENDER_KEY).includes(sender.toLowerCase());
}

// A message's date as shown (Intl formatting costs; a reader shows the same dates again).
const dates = new Map<string, string>();
function dateOf(iso: string): string {
  const k = locale() + iso;
  let v = dates.get(k);
  if (v === undefined) {
    if (dates.size > 1000) dates.clear();
    v = fmtDate(iso);
    dates.set(k, v);
  }
  return v;
}

function addrText(list: Addr[] | null): string {
  if (!list || !list.length) return "";
  return list.map((a) => (a.name ? `${a.name} <${a.email}>` : a.email)).join(", ");
}

function prefersDark(): boolean {
  return typeof matchMedia === "function" && matchMedia("(prefers-color-scheme: dark)").matches;
}

const NO_CIDS: Record<string, string> = {};

/** The body of one message in its iframe. */
function Body(props: { accountId: string; email: Full }) {
  const { email, accountId } = props;
  const sender = email.from?.[0]?.email;
  const html = email.htmlBody.some((p) => p.type === "text/html");
  const hasInline = html && [...email.attachments, ...email.htmlBody].some((p) => p.cid && p.blobId && p.type.startsWith("image/"));
  // The component (and its frame) stays when the reader shows another message: its state
  // is per message. Without inline images the frame is written at once (no extra render
  // waiting for blob URLs).
  const fresh = () => ({ id: email.id, allowed: imagesAllowed(accountId, email.id, sender), cidUrls: hasInline ? null : NO_CIDS });
  const [st, setSt] = useState<{ id: string; allowed: boolean; cidUrls: Record<string, string> | null }>(fresh);
  const cur = st.id === email.id ? st : fresh();
  const { allowed, cidUrls } = cur;
  const setAllowed = (v: boolean) => setSt((s) => ({ ...(s.id === email.id ? s : fresh()), allowed: v }));
  const setCidUrls = (v: Record<string, string>) => setSt((s) => ({ ...(s.id === email.id ? s : fresh()), cidUrls: v }));
  const frame = useRef<HTMLIFrameElement>(null);

  const parts = html ? email.htmlBody : email.textBody;
  let source = "";
  let truncated = false;
  for (const p of parts) {
    const v = p.partId ? email.bodyValues[p.partId] : undefined;
    if (!v) continue;
    truncated ||= v.isTruncated;
    if (p.type === "text/html") source += v.value;
    else if (p.type.startsWith("text/")) source += textToHtml(v.value);
  }
  if (!parts.length) source = textToHtml(email.preview || "");

  // Inline images (cid:) come from the server as blobs, shown through blob: URLs.
  useEffect(() => {
    let alive = true;
    const urls: string[] = [];
    const inline = [...email.attachments, ...email.htmlBody].filter((p) => p.cid && p.blobId && p.type.startsWith("image/"));
    if (!html || !inline.length) return; // cidUrls started as {} (no blob URLs to wait for)
    Promise.all(
      inline.map(async (p) => {
        const res = await fetch(jmap.downloadUrl(accountId, p.blobId!, p.name || "image", p.type), {
          credentials: "same-origin",
        });
        if (!res.ok) return null;
        const url = URL.createObjectURL(await res.blob());
        urls.push(url);
        return [p.cid!.replace(/^<|>$/g, ""), url] as [string, string];
      }),
    )
      .then((pairs) => alive && setCidUrls(Object.fromEntries(pairs.filter((x): x is [string, string] => !!x))))
      .catch(() => alive && setCidUrls({}));
    return () => {
      alive = false;
      urls.forEach((u) => URL.revokeObjectURL(u));
    };
  }, [accountId, email.id]);

  const prepared = useMemo(() => (cidUrls ? prepare(source, allowed, cidUrls) : null), [source, allowed, cidUrls]);

  // The frame's document is written as soon as the frame is in the page (before the paint):
  // the CSP and the mail's body, the frame's look and the mail's own CSS (through the CSSOM),
  // then its height. A frame refused (its document allows remote images and this one must
  // not) is made anew by its key.
  // Checked on every render: a frame moved in the page (a thread's messages reordered) has
  // a new, empty document.
  const written = useRef<{ doc: Document | null; prepared: unknown; dark: boolean }>({ doc: null, prepared: null, dark: false });
  useLayoutEffect(() => {
    const f = frame.current;
    if (!f || !prepared) return;
    const dark = prefersDark();
    const w = written.current;
    if (w.doc === f.contentDocument && w.prepared === prepared && w.dark === dark) return;
    if (writeFrame(f, prepared, baseCss(dark, !html) + "\n" + prepared.css, email.id))
      written.current = { doc: f.contentDocument, prepared, dark };
  });

  const allowMessage = () => {
    listAdd(MSG_KEY, accountId + "/" + email.id);
    setAllowed(true);
  };
  const allowSender = () => {
    if (sender) listAdd(SENDER_KEY, sender.toLowerCase());
    setAllowed(true);
  };

  return (
    <div class="body">
      {prepared && prepared.remote && !allowed ? (
        <div class="images-bar" role="region" aria-label={t("reader.imagesBlocked")}>
          <span>{t("reader.imagesBlocked")}</span>
          <button type="button" data-testid="allow-images" onClick={allowMessage}>
            {t("reader.showImages")}
          </button>
          {sender ? (
            <button type="button" data-testid="allow-images-sender" onClick={allowSender}>
              {t("reader.alwaysFrom", { sender })}
            </button>
          ) : null}
        </div>
      ) : null}
      {truncated ? <p class="muted small">{t("reader.truncated")}</p> : null}
      {prepared ? (
        <iframe
          key={allowed ? "open" : "closed"}
          ref={frame}
          class="reader-frame"
          data-testid="reader-frame"
          title={t("reader.frameTitle", { subject: email.subject || t("list.noSubject") })}
          sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
          referrerpolicy="no-referrer"
        />
      ) : (
        <p class="muted">{t("app.loading")}</p>
      )}
    </div>
  );
}

function Attachments(props: { accountId: string; email: Full }) {
  const [viewing, setViewing] = useState<{ url: string; name: string; downloadUrl: string; index: number } | null>(null);
  const section = useRef<HTMLElement>(null);
  // The reader is reused from message to message: a viewer belongs to one.
  useEffect(() => setViewing(null), [props.email.id]);
  // Focus goes back to the Preview button the viewer was opened from (found
  // again: the reader may have rendered the list anew meanwhile).
  const closeViewer = () => {
    const index = viewing ? viewing.index : -1;
    setViewing(null);
    setTimeout(() => section.current?.querySelector<HTMLElement>(`[data-preview-index="${index}"]`)?.focus(), 0);
  };
  const list = props.email.attachments.filter((p) => p.blobId && !(p.cid && p.disposition === "inline" && p.type.startsWith("image/")));
  if (!list.length) return null;
  return (
    <section class="attachments" aria-label={t("reader.attachments")} ref={section}>
      <h3 class="sr-only">{t("reader.attachments")}</h3>
      <ul>
        {list.map((p, i) => {
          const name = p.name || t("reader.unnamed");
          const url = jmap.downloadUrl(props.accountId, p.blobId!, name, p.type);
          const image = /^image\/(png|jpe?g|gif|webp|avif|bmp)$/i.test(p.type) && p.size < 20 * 1024 * 1024;
          const download = jmap.downloadUrl(props.accountId, p.blobId!, name, "application/octet-stream");
          const pdf = maybePdf(p.type, p.name);
          return (
            <li key={i} class="attachment" data-testid="attachment">
              {image ? <img class="preview" src={url} alt={name} loading="lazy" /> : null}
              <span class="att-name">{name}</span>
              <span class="muted small">
                {p.type} · {fmtSize(p.size)}
              </span>
              <span class="att-actions">
                {pdf ? (
                  <button
                    type="button"
                    aria-label={t("preview.buttonLabel", { name })}
                    data-testid="attachment-preview"
                    data-preview-index={i}
                    onClick={() => setViewing({ url: previewUrl(props.accountId, p.blobId!, name), name, downloadUrl: download, index: i })}
                  >
                    {t("preview.button")}
                  </button>
                ) : null}
                <a href={download} download={name} data-testid="attachment-download">
                  {t("reader.download")}
                </a>
              </span>
            </li>
          );
        })}
      </ul>
      {viewing ? <PdfViewer url={viewing.url} name={viewing.name} downloadUrl={viewing.downloadUrl} onClose={closeViewer} /> : null}
    </section>
  );
}

function Message(props: {
  accountId: string;
  head: Head;
  preloaded?: Full;
  open: boolean;
  onToggle: () => void;
  actions?: (accountId: string, ids: string[], keywords?: Record<string, boolean>) => any;
}) {
  const { head, accountId } = props;
  // The opened message's component stays when the reader shows another (its frame is
  // reused): its state is per message.
  const [st, setSt] = useState({ id: head.id, full: props.preloaded || null, error: "" });
  const cur = st.id === head.id ? st : { id: head.id, full: props.preloaded || null, error: "" };
  const full = cur.full || props.preloaded || null;
  const error = cur.error;
  const setFull = (f: Full) => setSt((s) => (s.id === head.id ? { ...s, full: f } : { id: head.id, full: f, error: "" }));
  const setError = (e: string) => setSt((s) => ({ id: head.id, full: s.id === head.id ? s.full : null, error: e }));
  useEffect(() => {
    if (!props.open || full) return;
    let alive = true;
    jmap
      .call([
        [
          "Email/get",
          {
            accountId,
            ids: [head.id],
            properties: BODY_PROPS,
            bodyProperties: PART_PROPS,
            fetchHTMLBodyValues: true,
            fetchTextBodyValues: true,
            maxBodyValueBytes: 2 * 1024 * 1024,
          },
          "b",
        ],
      ])
      .then((r) => {
        const e = jmap.one(r, "b").list[0];
        if (!alive) return;
        if (!e) setError(t("reader.gone"));
        else setFull(e);
      })
      .catch((e) => alive && setError(errorText(e)));
    return () => void (alive = false);
  }, [props.open, head.id, accountId]);

  const from = head.from?.[0];
  const unread = !head.keywords["$seen"];
  return (
    <article class={"message" + (props.open ? " open" : "") + (unread ? " unread" : "")} aria-label={from ? from.name || from.email : undefined}>
      <header class="msg-head">
        <button type="button" class="msg-toggle" aria-expanded={props.open} onClick={props.onToggle}>
          <span class="msg-from">{from ? from.name || from.email : t("list.noSender")}</span>
          <time class="muted small" dateTime={head.receivedAt}>
            {dateOf(head.sentAt || head.receivedAt)}
          </time>
          {!props.open ? <span class="msg-preview muted">{head.preview}</span> : null}
        </button>
        {props.open ? (
          <dl class="addr">
            {from ? (
              <>
                <dt>{t("reader.from")}</dt>
                <dd>{addrText(head.from)}</dd>
              </>
            ) : null}
            {head.to?.length ? (
              <>
                <dt>{t("reader.to")}</dt>
                <dd>{addrText(head.to)}</dd>
              </>
            ) : null}
            {head.cc?.length ? (
              <>
                <dt>{t("reader.cc")}</dt>
                <dd>{addrText(head.cc)}</dd>
              </>
            ) : null}
          </dl>
        ) : null}
      </header>
      {props.open ? (
        error ? (
          <p class="form-error" role="alert">
            {error}
          </p>
        ) : full ? (
          <>
            {props.actions ? props.actions(accountId, [head.id], head.keywords) : null}
            <Body accountId={accountId} email={full} />
            <Attachments accountId={accountId} email={full} />
          </>
        ) : (
          <p class="muted" role="status">
            {t("app.loading")}
          </p>
        )
      ) : null}
    </article>
  );
}

interface Shown {
  key: string; // accountId/emailId
  accountId: string;
  id: string;
  thread: Head[] | null;
  full: Full | null;
  open: Set<string>;
  error: string;
  kept: boolean; // shown from what was kept or fetched ahead (store.openedOf)
}

function shownOf(accountId: string, emailId: string): Shown {
  const kept = openedOf(accountId, emailId);
  return {
    key: accountId + "/" + emailId,
    accountId,
    id: emailId,
    thread: kept ? (kept.thread as Head[]) : null,
    full: kept ? (kept.full as Full) : null,
    open: new Set([emailId]),
    error: "",
    kept: !!kept,
  };
}

export function Reader(props: {
  accountId: string;
  emailId: string;
  onClose: () => void;
  actions?: (accountId: string, ids: string[], keywords?: Record<string, boolean>) => any;
}) {
  const { accountId, emailId } = props;
  const key = accountId + "/" + emailId;
  // A message kept or fetched ahead is shown in the render that opens it; others after
  // their request.
  const [state, setState] = useState<Shown>(() => shownOf(accountId, emailId));
  const now = state.key === key ? state : shownOf(accountId, emailId);
  // Until a message not kept is there, the one before stays (marked busy): its frame is
  // reused rather than removed and made again.
  const last = useRef<Shown | null>(null);
  if (now.thread && !now.error) last.current = now;
  const busy = !now.thread && !now.error && !!last.current;
  const shown = busy ? last.current! : now;
  const { thread, full, open, error } = shown;
  const shownId = shown.id;
  const shownAccount = shown.accountId;
  const update = (fn: (s: Shown) => Shown) => setState((s) => fn(s.key === key ? s : shownOf(accountId, emailId)));
  const setOpen = (o: Set<string>) => update((s) => ({ ...s, open: o }));
  const heading = useRef<HTMLHeadingElement>(null);

  // Started in the render's commit (not after the paint): the requests go out at once.
  useLayoutEffect(() => {
    let alive = true;
    const start = shownOf(accountId, emailId);
    setState(start);
    const kept = start.full;
    // A message not kept: its body, its thread and the thread's headers, read only (the
    // reader shows it when this comes, without waiting for the mark-read below).
    const fetchBody = (): Promise<Full | null> =>
      jmap
          .call([
            [
              "Email/get",
              {
                accountId,
                ids: [emailId],
                properties: BODY_PROPS,
                bodyProperties: PART_PROPS,
                fetchHTMLBodyValues: true,
                fetchTextBodyValues: true,
                maxBodyValueBytes: 2 * 1024 * 1024,
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
            const got: Full | undefined = jmap.one(r, "a").list[0];
            const list = got ? (threadOf(got, jmap.one(r, "t").list || [], jmap.one(r, "e").list || []) as Head[] | null) : null;
            if (!got || !list || !list.some((e) => e.id === emailId)) return null;
            keepOpened(accountId, { full: got, thread: list });
            show(got, list);
            return got;
          });
    const show = (got: Full, list: Head[]) => {
      if (alive) update((s) => (s.full ? s : { ...s, full: got, thread: list }));
    };
    // Fetched ahead and on its way (the row under the pointer): that request, not another.
    const ahead = kept ? undefined : fetchingOpen(accountId, emailId);
    const body: Promise<Full | null> = kept
      ? Promise.resolve(kept)
      : ahead
        ? ahead.then(() => {
            const o = openedOf(accountId, emailId);
            if (!o) return fetchBody();
            show(o.full as Full, o.thread as Head[]);
            return o.full as Full;
          })
        : fetchBody();
    if (!kept && !ahead) noteFetching(accountId, emailId, body);
    // And in parallel: the message marked read (a no-op on the server when it is read
    // already), its thread's headers read after the mark and the mailboxes' counts after it
    // (the folder tree shows them without a refetch). Its StateChange then names only
    // states this response has shown (store.ownRequest).
    const mark = ownRequest(
      jmap
        .call([
          ["Email/get", { accountId, ids: [emailId], properties: HEAD_PROPS }, "a"],
          ["Email/set", { accountId, update: { [emailId]: { "keywords/$seen": true } } }, "s"],
          ["Thread/get", { accountId, "#ids": { resultOf: "a", name: "Email/get", path: "/list/*/threadId" } }, "t"],
          [
            "Email/get",
            {
              accountId,
              "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" },
              properties: HEAD_PROPS,
            },
            "e",
          ],
          ["Mailbox/get", { accountId, ids: null, properties: MAILBOX_PROPS }, "m"],
        ])
        .then((r) => {
          const set = jmap.one(r, "s");
          const first: Head | undefined = jmap.one(r, "a").list[0];
          const marked = !!first && !first.keywords["$seen"] && !set.notUpdated?.[emailId];
          if (marked) {
            ownChange(set.newState);
            ownChange(jmap.one(r, "m").state);
          }
          return r;
        }),
    ).then((r) => {
      const set = jmap.one(r, "s");
      const got: Head | undefined = jmap.one(r, "a").list[0];
      const wasUnread = !!got && !got.keywords["$seen"];
      // Read now: the list shows it at once. The mailboxes as they are now go into the one
      // cache (the counts, the ActionBar's move menu), without a request of their own.
      if (wasUnread && !set.notUpdated?.[emailId])
        patchRows({ accountId, ids: [emailId], keywords: { $seen: true } });
      mailboxesFetched(accountId, jmap.one(r, "m").list);
      return got ? (threadOf(got, jmap.one(r, "t").list || [], jmap.one(r, "e").list || []) as Head[] | null) : null;
    });
    Promise.all([body, mark])
      .then(([full, list]) => {
        const me = list?.find((e) => e.id === emailId);
        if (!full || !list || !me) {
          if (alive) update((s) => ({ ...s, error: t("reader.gone") }));
          return;
        }
        // The body as read, the headers as they are now (keywords, mailboxes).
        const first: Full = { ...full, ...me };
        keepOpened(accountId, { full: first, thread: list });
        if (alive) update((s) => ({ ...s, full: first, thread: list }));
      })
      .catch((e) => alive && update((s) => ({ ...s, error: errorText(e) })));
    return () => void (alive = false);
  }, [accountId, emailId]);

  useEffect(() => {
    if (thread) heading.current?.focus({ preventScroll: true });
  }, [thread !== null, emailId]);

  const me = thread?.find((e) => e.id === shownId);
  return (
    <section
      class={"reader" + (busy ? " busy" : "")}
      aria-labelledby="reader-subject"
      aria-busy={busy ? "true" : undefined}
      data-shown={busy ? undefined : shown.kept ? "kept" : "fetched"}
    >
      <div class="reader-bar">
        <button type="button" class="link-btn back" onClick={props.onClose} data-testid="reader-close">
          <Icon name="back" /> {t("reader.back")}
        </button>
        {busy ? (
          <span class="muted small" role="status">
            {t("app.loading")}
          </span>
        ) : thread && thread.length > 1 ? (
          <span class="muted small">{t("reader.threadCount", { n: thread.length })}</span>
        ) : null}
      </div>
      {error ? (
        <p class="form-error" role="alert">
          {error}
        </p>
      ) : !thread ? (
        <p class="muted" role="status">
          {t("app.loading")}
        </p>
      ) : (
        <>
          <h1 id="reader-subject" class="reader-subject" data-testid="reader-subject" tabIndex={-1} ref={heading}>
            {me?.subject || t("list.noSubject")}
          </h1>
          {thread.map((h) => (
            <Message
              key={h.id === shownId ? "opened" : h.id}
              accountId={shownAccount}
              head={h}
              preloaded={h.id === shownId && full && full.id === h.id ? full : undefined}
              open={open.has(h.id)}
              actions={props.actions}
              onToggle={() => {
                const next = new Set(open);
                if (next.has(h.id)) next.delete(h.id);
                else next.add(h.id);
                setOpen(next);
              }}
            />
          ))}
        </>
      )}
    </section>
  );
}
