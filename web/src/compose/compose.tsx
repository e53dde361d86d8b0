// The compose window: new message, reply, reply-all, forward; attachments;
// drafts saved as you type; identities with display names.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../i18n";
import { icon } from "./icons";
import { toast } from "../app";
import { errorText } from "../errors";
import type { Attachment, Draft, Identity, Mode } from "./model";
import { checkDraft, draftFromEmail, humanSize, isEmpty, startDraft, validEmail } from "./model";
import {
  destroyDraft,
  draftsMailbox,
  identities,
  loadOriginal,
  markOriginal,
  maxUpload,
  primarySubmissionAccount,
  reupload,
  saveDraft,
  send,
  setDisplayName,
  submissionOutcome,
  uploadFile,
  type Loaded,
  type Saved,
} from "./service";

/** Tells what became of a message once the outbox tried it (a toast each way). */
async function reportOutcome(accountId: string, submissionId: string, subject: string): Promise<void> {
  const what = subject.trim() || t("compose.noSubject");
  const o = await submissionOutcome(accountId, submissionId);
  if (o.kind === "sent") toast(t("compose.sent"));
  else if (o.kind === "failed") toast(t("compose.refused", { subject: what, reply: o.reply }), "error");
  else if (o.kind === "retrying") toast(t("compose.retrying", { subject: what, reply: o.reply }), "error");
  else toast(t("compose.stillWaiting", { subject: what }));
}

export interface ComposeOptions {
  mode: Mode;
  emailId?: string;
  accountId: string;
  /** emailId is a draft to go on editing (mode "new"). */
  draft?: boolean;
  /** Prefilled recipients (e.g. from a mailto: link). */
  to?: string;
  subject?: string;
}

const SAVE_DELAY_MS = 1500;

let host: HTMLElement | null = null;
let current: ComposeOptions | null = null;
let serial = 0;
let closeCurrent: (() => Promise<void>) | null = null;

function mount(opts: ComposeOptions | null): void {
  if (!host) {
    host = document.createElement("div");
    host.id = "mk-compose-host";
    document.body.appendChild(host);
  }
  current = opts;
  serial++;
  render(opts ? <Compose key={serial} opts={opts} /> : null, host);
}

/** Open the compose window (an open one is closed first, its draft kept). */
export function openCompose(opts: ComposeOptions): void {
  const prev = closeCurrent;
  if (prev) prev().finally(() => mount(opts));
  else mount(opts);
}

export function isComposeOpen(): boolean {
  return current !== null;
}

export function ComposeButton(props: { accountId?: string; class?: string }) {
  return (
    <button
      type="button"
      class={props.class ?? "primary mk-compose-button"}
      data-testid="compose-open"
      title={t("compose.new") + " (c)"}
      onClick={async () => {
        const accountId = props.accountId ?? (await primarySubmissionAccount()) ?? "";
        openCompose({ mode: "new", accountId });
      }}
    >
      {icon("pen")} {t("compose.new")}
    </button>
  );
}

function formatDate(iso: string): string {
  try {
    const lang = document.documentElement.lang || navigator.language || "en";
    return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
  } catch {
    return iso;
  }
}

function timeNow(): string {
  try {
    const lang = document.documentElement.lang || navigator.language || "en";
    return new Intl.DateTimeFormat(lang, { timeStyle: "short" }).format(new Date());
  } catch {
    return "";
  }
}

function addressKey(i: Identity): string {
  return "mk.fromAddress." + i.accountId + "." + i.id;
}

function storedAddress(i: Identity): string {
  try {
    return localStorage.getItem(addressKey(i)) ?? "";
  } catch {
    return "";
  }
}

function rememberAddress(i: Identity, address: string): void {
  try {
    localStorage.setItem(addressKey(i), address);
  } catch {
    /* storage unavailable */
  }
}

interface Upload {
  key: number;
  name: string;
  size: number;
  error?: string;
}

type Status = { kind: "idle" | "saving" | "saved" | "error" | "info"; text: string };

function Compose({ opts }: { opts: ComposeOptions }) {
  const [ids, setIds] = useState<Identity[] | null>(null);
  const [identity, setIdentity] = useState<Identity | null>(null);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [showCc, setShowCc] = useState(false);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [status, setStatus] = useState<Status>({ kind: "idle", text: "" });
  const [sending, setSending] = useState(false);
  const [editName, setEditName] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  // The sender address when the identity's own is none the server can
  // write (an account whose login is no address, on an IP literal host).
  const [fromAddr, setFromAddr] = useState("");

  const saved = useRef<Saved | null>(null);
  const dirty = useRef(false);
  const timer = useRef<number | undefined>(undefined);
  const chain = useRef<Promise<void>>(Promise.resolve());
  const draftRef = useRef<Draft | null>(null);
  const identityRef = useRef<Identity | null>(null);
  const signatureOnly = useRef("");
  const closed = useRef(false);
  const uploadKey = useRef(0);
  const root = useRef<HTMLDivElement>(null);
  const toRef = useRef<HTMLInputElement>(null);
  const bodyRef = useRef<HTMLTextAreaElement>(null);
  const opener = useRef<Element | null>(document.activeElement);
  const original = useRef<Loaded | null>(null);

  draftRef.current = draft;
  const needsAddress = !!identity && !validEmail(identity.email);
  identityRef.current = identity && needsAddress ? { ...identity, email: fromAddr.trim() } : identity;

  useEffect(() => {
    if (!identity || validEmail(identity.email)) return;
    setFromAddr(storedAddress(identity));
  }, [identity?.accountId, identity?.id]);

  // Load identities, the original and the starting draft.
  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const all = await identities();
        if (!live) return;
        setIds(all);
        const mine = all.flatMap((i) => [i.email, storedAddress(i)]).filter((a) => a !== "");
        let orig: Loaded | null = null;
        if (opts.emailId) orig = await loadOriginal(opts.accountId, opts.emailId);
        original.current = orig && !opts.draft ? orig : null;
        // The identity: the account's own; for a reply, the one the
        // original was addressed to when there are several.
        const inAccount = all.filter((i) => i.accountId === opts.accountId);
        let pick = inAccount[0] ?? null;
        if (orig) {
          const addressed = [...(orig.to ?? []), ...(orig.cc ?? []), ...(opts.draft ? (orig.from ?? []) : [])].map((a) => a.email.toLowerCase());
          pick = all.find((i) => addressed.includes(i.email.toLowerCase()) && i.accountId === opts.accountId) ?? pick;
        }
        if (!pick) {
          const primary = await primarySubmissionAccount();
          pick = all.find((i) => i.accountId === primary) ?? all[0] ?? null;
        }
        let d: Draft;
        if (opts.draft && orig) {
          d = draftFromEmail(orig);
          saved.current = { id: orig.id, accountId: opts.accountId };
          if (d.cc || d.bcc) setShowCc(true);
        } else {
          d = startDraft(
            opts.mode,
            orig,
            pick,
            mine,
            {
              wrote: (date, who) => t("compose.wrote", { date, who }),
              forwarded: t("compose.forwarded"),
              from: t("compose.hdr.from"),
              date: t("compose.hdr.date"),
              subject: t("compose.hdr.subject"),
              to: t("compose.hdr.to"),
              cc: t("compose.hdr.cc"),
            },
            formatDate,
          );
          if (d.cc) setShowCc(true);
        }
        if (opts.to) d.to = opts.to;
        if (opts.subject) d.subject = opts.subject;
        signatureOnly.current = opts.mode === "new" ? d.body : "";
        // Parts of a stored message are uploaded again as blobs of their own.
        const parts = d.attachments;
        d.attachments = [];
        if (!live) return;
        setIdentity(pick);
        setDraft(d);
        for (const a of parts) addAttachment(() => reupload(opts.accountId, a), a.name, a.size);
      } catch (e) {
        if (live) setLoadError(errorText(e));
      }
    })();
    return () => {
      live = false;
    };
  }, []);

  // Focus: To for a new message or forward, the top of the body for a reply.
  useEffect(() => {
    if (!draft || !ids) return;
    if (opts.mode === "reply" || opts.mode === "replyAll") {
      const b = bodyRef.current;
      if (b) {
        b.focus();
        b.setSelectionRange(0, 0);
        b.scrollTop = 0;
      }
    } else toRef.current?.focus();
  }, [ids !== null && draft !== null]);

  function doSave(): Promise<void> {
    chain.current = chain.current.then(async () => {
      const d = draftRef.current;
      const from = identityRef.current;
      if (!d || !from || !dirty.current || closed.current) return;
      if (isEmpty(d, signatureOnly.current) && !saved.current) {
        dirty.current = false;
        return;
      }
      const box = await draftsMailbox(from.accountId);
      if (!box) {
        setStatus({ kind: "info", text: t("compose.noDrafts") });
        dirty.current = false;
        return;
      }
      dirty.current = false;
      setStatus({ kind: "saving", text: t("compose.saving") });
      try {
        saved.current = await saveDraft(d, from, saved.current, box);
        setStatus({ kind: "saved", text: t("compose.saved", { time: timeNow() }) });
      } catch (e) {
        dirty.current = true;
        setStatus({ kind: "error", text: t("compose.saveFailed", { error: errorText(e) }) });
      }
    });
    return chain.current;
  }

  function schedule() {
    dirty.current = true;
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => void doSave(), SAVE_DELAY_MS);
  }

  async function flush(): Promise<void> {
    window.clearTimeout(timer.current);
    if (dirty.current) await doSave();
    else await chain.current;
  }

  function change(patch: Partial<Draft>) {
    setDraft((d) => (d ? { ...d, ...patch } : d));
    setProblem(null);
    schedule();
  }

  function addAttachment(get: () => Promise<Attachment>, name: string, size: number) {
    const key = ++uploadKey.current;
    setUploads((u) => [...u, { key, name, size }]);
    get()
      .then((a) => {
        if (closed.current) return;
        setUploads((u) => u.filter((x) => x.key !== key));
        setDraft((d) => (d ? { ...d, attachments: [...d.attachments, a] } : d));
        schedule();
      })
      .catch((e) => {
        setUploads((u) => u.map((x) => (x.key === key ? { ...x, error: errorText(e) } : x)));
      });
  }

  async function addFiles(files: FileList | File[] | null) {
    if (!files || !identityRef.current) return;
    const max = await maxUpload();
    const accountId = identityRef.current.accountId;
    for (const f of Array.from(files)) {
      if (f.size > max) {
        toast(t("compose.tooLarge", { name: f.name, max: humanSize(max) }), "error");
        continue;
      }
      addAttachment(() => uploadFile(accountId, f, f.name), f.name, f.size);
    }
  }

  async function close(keep = true): Promise<void> {
    if (closed.current) return;
    if (keep) await flush().catch(() => {});
    else await chain.current.catch(() => {});
    closed.current = true;
    window.clearTimeout(timer.current);
    closeCurrent = null;
    const back = opener.current;
    mount(null);
    if (back instanceof HTMLElement && document.contains(back)) back.focus();
  }

  useEffect(() => {
    closeCurrent = () => close(true);
    const unload = (ev: BeforeUnloadEvent) => {
      if (dirty.current || uploads.length > 0) ev.preventDefault();
    };
    window.addEventListener("beforeunload", unload);
    return () => {
      window.removeEventListener("beforeunload", unload);
      if (closeCurrent && !closed.current) closeCurrent = null;
    };
  });

  async function discard() {
    if (!confirm(t("compose.discardConfirm"))) return;
    window.clearTimeout(timer.current);
    dirty.current = false;
    await chain.current.catch(() => {});
    const prev = saved.current;
    saved.current = null;
    if (prev) await destroyDraft(prev).catch((e) => toast(errorText(e), "error"));
    toast(t("compose.discarded"));
    await close(false);
  }

  async function doSend() {
    const d = draftRef.current;
    const from = identityRef.current;
    if (!d || !from || sending) return;
    if (!validEmail(from.email)) {
      setProblem(t("compose.needAddress"));
      document.getElementById("mk-compose-fromaddr")?.focus();
      return;
    }
    const check = checkDraft(d);
    if (check.bad.length > 0) {
      setProblem(t("compose.badAddresses", { list: check.bad.join(", ") }));
      return;
    }
    if (check.count === 0) {
      setProblem(t("compose.noRecipients"));
      toRef.current?.focus();
      return;
    }
    if (uploads.some((u) => !u.error)) return; // the button is disabled meanwhile
    if (d.subject.trim() === "" && !confirm(t("compose.emptySubject"))) return;
    setSending(true);
    setStatus({ kind: "saving", text: t("compose.sending") });
    window.clearTimeout(timer.current);
    dirty.current = false;
    try {
      await chain.current.catch(() => {});
      const { submissionId } = await send(d, from, saved.current);
      saved.current = null;
      void reportOutcome(from.accountId, submissionId, d.subject);
      const orig = original.current;
      if (orig && opts.mode !== "new")
        await markOriginal(orig.accountId, orig.id, opts.mode === "forward" ? "$forwarded" : "$answered").catch(() => {});
      toast(t("compose.queued"));
      await close(false);
    } catch (e) {
      const kept = (e as { draft?: Saved }).draft;
      if (kept) saved.current = kept;
      setSending(false);
      setStatus({ kind: "error", text: t("compose.sendFailed", { error: errorText(e) }) });
      toast(t("compose.sendFailed", { error: errorText(e) }), "error");
    }
  }

  async function saveName() {
    const from = identity; // the identity itself, not the one with a typed From address
    if (!from || editName === null) return;
    try {
      await setDisplayName(from, editName.trim());
      const updated = { ...from, name: editName.trim() };
      setIds((all) => (all ? all.map((i) => (i.id === from.id && i.accountId === from.accountId ? updated : i)) : all));
      setIdentity(updated);
      setEditName(null);
      toast(t("compose.nameSaved"));
      schedule();
    } catch (e) {
      toast(errorText(e), "error");
    }
  }

  function onKeyDown(ev: KeyboardEvent) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      void doSend();
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      if (editName !== null) setEditName(null);
      else void close(true);
    }
  }

  const title = t("compose.title." + opts.mode);
  const busyUploads = uploads.filter((u) => !u.error).length > 0;

  return (
    <div
      class={"mk-compose" + (dragging ? " dragging" : "")}
      role="dialog"
      aria-labelledby="mk-compose-title"
      data-testid="compose"
      ref={root}
      onKeyDown={onKeyDown}
      onDragOver={(ev) => {
        if (ev.dataTransfer?.types.includes("Files")) {
          ev.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={(ev) => {
        if (ev.target === root.current) setDragging(false);
      }}
      onDrop={(ev) => {
        ev.preventDefault();
        setDragging(false);
        void addFiles(ev.dataTransfer?.files ?? null);
      }}
    >
      <div class="mk-compose-head">
        <h2 id="mk-compose-title">{title}</h2>
        <button type="button" class="mk-compose-x" aria-label={t("compose.close")} title={t("compose.close")} onClick={() => void close(true)}>
          ×
        </button>
      </div>
      {loadError ? (
        <p class="mk-compose-error" role="alert">
          {t("compose.loadFailed", { error: loadError })}
        </p>
      ) : !draft || !ids ? (
        <p class="mk-compose-loading" aria-busy="true">
          {t("compose.loading")}
        </p>
      ) : ids.length === 0 ? (
        <p class="mk-compose-error" role="alert">
          {t("compose.noIdentity")}
        </p>
      ) : (
        <form
          class="mk-compose-form"
          onSubmit={(ev) => {
            ev.preventDefault();
            void doSend();
          }}
        >
          <div class="mk-compose-row">
            <label for="mk-compose-from">{t("compose.from")}</label>
            <select
              id="mk-compose-from"
              data-testid="compose-from"
              value={identity ? identity.accountId + "|" + identity.id : ""}
              onChange={(ev) => {
                const [acc, id] = (ev.currentTarget as HTMLSelectElement).value.split("|");
                const next = ids.find((i) => i.accountId === acc && i.id === id) ?? null;
                setIdentity(next);
                schedule();
              }}
            >
              {ids.map((i) => (
                <option key={i.accountId + "|" + i.id} value={i.accountId + "|" + i.id}>
                  {i.name ? `${i.name} <${i.email}>` : i.email}
                </option>
              ))}
            </select>
            <button
              type="button"
              class="mk-compose-small"
              data-testid="compose-edit-name"
              aria-expanded={editName !== null ? "true" : "false"}
              onClick={() => setEditName(editName === null ? (identity?.name ?? "") : null)}
            >
              {t("compose.editName")}
            </button>
          </div>
          {editName !== null ? (
            <div class="mk-compose-row">
              <label for="mk-compose-name">{t("compose.displayName")}</label>
              <input
                id="mk-compose-name"
                data-testid="compose-name"
                value={editName}
                maxLength={200}
                onInput={(ev) => setEditName((ev.currentTarget as HTMLInputElement).value)}
                onKeyDown={(ev) => {
                  if (ev.key === "Enter") {
                    ev.preventDefault();
                    void saveName();
                  }
                }}
              />
              <button type="button" class="mk-compose-small" data-testid="compose-name-save" onClick={() => void saveName()}>
                {t("compose.saveName")}
              </button>
            </div>
          ) : null}
          {needsAddress ? (
            <div class="mk-compose-row">
              <label for="mk-compose-fromaddr">{t("compose.fromAddress")}</label>
              <input
                id="mk-compose-fromaddr"
                data-testid="compose-from-address"
                type="email"
                autoComplete="email"
                aria-describedby="mk-compose-fromaddr-hint"
                value={fromAddr}
                onInput={(ev) => {
                  const v = (ev.currentTarget as HTMLInputElement).value;
                  setFromAddr(v);
                  if (identity && validEmail(v.trim())) rememberAddress(identity, v.trim());
                  setProblem(null);
                  schedule();
                }}
              />
            </div>
          ) : null}
          {needsAddress ? (
            <p id="mk-compose-fromaddr-hint" class="mk-compose-hint">
              {t("compose.fromAddressHint", { login: identity?.email ?? "" })}
            </p>
          ) : null}
          <div class="mk-compose-row">
            <label for="mk-compose-to">{t("compose.to")}</label>
            <input
              id="mk-compose-to"
              ref={toRef}
              data-testid="compose-to"
              type="text"
              inputMode="email"
              autoComplete="off"
              value={draft.to}
              onInput={(ev) => change({ to: (ev.currentTarget as HTMLInputElement).value })}
            />
            {!showCc ? (
              <button type="button" class="mk-compose-small" onClick={() => setShowCc(true)}>
                {t("compose.showCcBcc")}
              </button>
            ) : null}
          </div>
          {showCc ? (
            <>
              <div class="mk-compose-row">
                <label for="mk-compose-cc">{t("compose.cc")}</label>
                <input
                  id="mk-compose-cc"
                  data-testid="compose-cc"
                  type="text"
                  autoComplete="off"
                  value={draft.cc}
                  onInput={(ev) => change({ cc: (ev.currentTarget as HTMLInputElement).value })}
                />
              </div>
              <div class="mk-compose-row">
                <label for="mk-compose-bcc">{t("compose.bcc")}</label>
                <input
                  id="mk-compose-bcc"
                  data-testid="compose-bcc"
                  type="text"
                  autoComplete="off"
                  value={draft.bcc}
                  onInput={(ev) => change({ bcc: (ev.currentTarget as HTMLInputElement).value })}
                />
              </div>
            </>
          ) : null}
          <div class="mk-compose-row">
            <label for="mk-compose-subject">{t("compose.subject")}</label>
            <input
              id="mk-compose-subject"
              data-testid="compose-subject"
              type="text"
              value={draft.subject}
              maxLength={998}
              onInput={(ev) => change({ subject: (ev.currentTarget as HTMLInputElement).value })}
            />
          </div>
          <label for="mk-compose-body" class="mk-visually-hidden">
            {t("compose.body")}
          </label>
          <textarea
            id="mk-compose-body"
            ref={bodyRef}
            data-testid="compose-body"
            class="mk-compose-body"
            value={draft.body}
            onInput={(ev) => change({ body: (ev.currentTarget as HTMLTextAreaElement).value })}
          />
          {draft.attachments.length > 0 || uploads.length > 0 ? (
            <ul class="mk-compose-atts" aria-label={t("compose.attachments")}>
              {draft.attachments.map((a, i) => (
                <li key={a.blobId + i} data-testid="compose-attachment" data-name={a.name}>
                  <span class="mk-att-name">{a.name}</span> <span class="mk-att-size">{humanSize(a.size)}</span>
                  <button
                    type="button"
                    class="mk-compose-small"
                    aria-label={t("compose.removeAttachment", { name: a.name })}
                    onClick={() => change({ attachments: draft.attachments.filter((_, k) => k !== i) })}
                  >
                    ×
                  </button>
                </li>
              ))}
              {uploads.map((u) => (
                <li key={"u" + u.key} class={u.error ? "error" : "uploading"} aria-busy={u.error ? "false" : "true"}>
                  {u.error ? t("compose.uploadFailed", { name: u.name, error: u.error }) : t("compose.uploading", { name: u.name })}
                  {u.error ? (
                    <button
                      type="button"
                      class="mk-compose-small"
                      aria-label={t("compose.removeAttachment", { name: u.name })}
                      onClick={() => setUploads((all) => all.filter((x) => x.key !== u.key))}
                    >
                      ×
                    </button>
                  ) : null}
                </li>
              ))}
            </ul>
          ) : null}
          {problem ? (
            <p class="mk-compose-error" role="alert">
              {problem}
            </p>
          ) : null}
          <div class="mk-compose-foot">
            <button type="submit" class="mk-compose-send" data-testid="compose-send" disabled={sending || busyUploads} title={t("compose.sendShortcut")}>
              {sending ? t("compose.sending") : t("compose.send")}
            </button>
            <label class="mk-compose-attach-label">
              {icon("clip")} {t("compose.attach")}
              <input
                type="file"
                multiple
                data-testid="compose-attach"
                class="mk-visually-hidden"
                onChange={(ev) => {
                  const input = ev.currentTarget as HTMLInputElement;
                  void addFiles(input.files).finally(() => (input.value = ""));
                }}
              />
            </label>
            <span class={"mk-compose-status " + status.kind} role="status" aria-live="polite" data-testid="compose-status">
              {status.text}
            </span>
            <button type="button" class="mk-compose-discard" data-testid="compose-discard" onClick={() => void discard()} disabled={sending}>
              {t("compose.discard")}
            </button>
          </div>
          {dragging ? <div class="mk-compose-drop">{t("compose.dropHere")}</div> : null}
        </form>
      )}
    </div>
  );
}
