// The JMAP side of composing: identities, the original of a reply or
// forward, attachments (upload, re-upload of an original's parts), saving
// drafts and sending (Email/set + EmailSubmission/set).
import { call, downloadUrl, session, upload, MAIL, SUBMISSION } from "../jmap";
import { errorText } from "../errors";
import { roleMailbox } from "./mailboxes";
import type { Attachment, Draft, Identity, Original } from "./model";
import { emailObject } from "./model";

/** Every identity of every account that can send, with its account. */
export async function identities(): Promise<Identity[]> {
  const s = await session();
  const accounts = Object.keys(s.accounts).filter((id) => s.accounts[id]?.accountCapabilities?.[SUBMISSION] !== undefined);
  if (accounts.length === 0) return [];
  const r = await call(accounts.map((accountId, i) => ["Identity/get", { accountId }, "i" + i] as [string, any, string]));
  const out: Identity[] = [];
  for (const [name, res] of r) {
    if (name !== "Identity/get") continue;
    for (const it of res.list ?? [])
      out.push({
        id: it.id,
        accountId: res.accountId,
        name: it.name ?? "",
        email: it.email,
        textSignature: it.textSignature ?? "",
      });
  }
  return out;
}

export async function setDisplayName(id: Identity, name: string): Promise<void> {
  const r = await call([["Identity/set", { accountId: id.accountId, update: { [id.id]: { name } } }, "n"]]);
  const bad = r[0][1].notUpdated?.[id.id];
  if (bad) throw new Error(errorText(bad));
}

export async function primarySubmissionAccount(): Promise<string | null> {
  const s = await session();
  return s.primaryAccounts?.[SUBMISSION] ?? s.primaryAccounts?.[MAIL] ?? null;
}

const BLOCKS = new Set([
  "P", "DIV", "BR", "LI", "TR", "H1", "H2", "H3", "H4", "H5", "H6", "BLOCKQUOTE", "PRE", "TABLE", "UL", "OL", "HR", "SECTION", "ARTICLE",
]);

/** Text of an HTML body (an inert document: nothing runs, nothing loads). */
export function htmlToText(html: string): string {
  const doc = new DOMParser().parseFromString(html, "text/html");
  doc.querySelectorAll("script,style,head,title").forEach((e) => e.remove());
  let out = "";
  const walk = (n: Node) => {
    if (n.nodeType === Node.TEXT_NODE) {
      out += (n.nodeValue ?? "").replace(/\s+/g, " ");
      return;
    }
    if (n.nodeType !== Node.ELEMENT_NODE) return;
    const tag = (n as Element).tagName;
    if (tag === "BR") {
      out += "\n";
      return;
    }
    const block = BLOCKS.has(tag);
    if (block && out && !out.endsWith("\n")) out += "\n";
    n.childNodes.forEach(walk);
    if (block && !out.endsWith("\n")) out += "\n";
  };
  if (doc.body) walk(doc.body);
  return out
    .split("\n")
    .map((l) => l.trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

export type Loaded = Original & { accountId: string; inReplyTo?: string[] | null; bcc?: any; mailboxIds?: Record<string, boolean>; keywords?: Record<string, boolean> };

/** The original of a reply/forward (or a draft to go on with), body as text. */
export async function loadOriginal(accountId: string, emailId: string): Promise<Loaded> {
  const r = await call([
    [
      "Email/get",
      {
        accountId,
        ids: [emailId],
        properties: [
          "id", "from", "to", "cc", "bcc", "replyTo", "subject", "messageId", "references", "inReplyTo",
          "sentAt", "receivedAt", "textBody", "attachments", "bodyValues", "mailboxIds", "keywords",
        ],
        fetchTextBodyValues: true,
        maxBodyValueBytes: 262144,
      },
      "o",
    ],
  ]);
  const e = r[0][1].list?.[0];
  if (!e) throw new Error("not found");
  const parts: string[] = [];
  for (const p of e.textBody ?? []) {
    const v = e.bodyValues?.[p.partId]?.value;
    if (typeof v !== "string") continue;
    parts.push(p.type === "text/html" ? htmlToText(v) : v.replace(/\r\n/g, "\n"));
  }
  return {
    ...e,
    accountId,
    text: parts.join("\n\n"),
    attachments: (e.attachments ?? []).filter((a: any) => a.blobId),
  };
}

export async function maxUpload(): Promise<number> {
  const s = await session();
  const n = s.capabilities?.["urn:ietf:params:jmap:core"]?.maxSizeUpload;
  return typeof n === "number" && n > 0 ? n : 50_000_000;
}

export async function uploadFile(accountId: string, file: Blob, name: string): Promise<Attachment> {
  const r = await upload(accountId, file);
  return { blobId: r.blobId, type: r.type || file.type || "application/octet-stream", name, size: r.size };
}

/**
 * A part of a stored message becomes an upload of its own (the server
 * builds messages from whole blobs only): download it, upload it again.
 */
export async function reupload(accountId: string, a: Attachment): Promise<Attachment> {
  const res = await fetch(downloadUrl(accountId, a.blobId, a.name, a.type), { credentials: "same-origin" });
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
  const blob = await res.blob();
  return uploadFile(accountId, new Blob([blob], { type: a.type }), a.name);
}

export async function draftsMailbox(accountId: string): Promise<string | null> {
  return (await roleMailbox(accountId, "drafts"))?.id ?? null;
}

/** A mailbox an Email to be sent can be made in: Drafts, else Sent, else the inbox. */
async function holdingMailbox(accountId: string): Promise<string | null> {
  for (const role of ["drafts", "sent", "inbox"]) {
    const m = await roleMailbox(accountId, role);
    if (m) return m.id;
  }
  return null;
}

export interface Saved {
  id: string;
  accountId: string;
}

/**
 * Save the draft as a new Email in the Drafts mailbox of the identity's
 * account, then destroy the one saved before (replaced on each save). Two
 * requests: a refused create must not take the previous draft with it.
 */
export async function saveDraft(d: Draft, from: Identity, prev: Saved | null, mailboxId: string): Promise<Saved> {
  const accountId = from.accountId;
  const r = await call([["Email/set", { accountId, create: { draft: emailObject(d, from, mailboxId) } }, "s"]]);
  const res = r.find((x) => x[0] === "Email/set" && x[2] === "s")?.[1];
  const created = res?.created?.draft;
  if (!created) throw new Error(errorText(res?.notCreated?.draft));
  if (prev && prev.id !== created.id)
    await call([["Email/set", { accountId: prev.accountId, destroy: [prev.id] }, "d"]]).catch(() => undefined);
  return { id: created.id, accountId };
}

export async function destroyDraft(prev: Saved): Promise<void> {
  await call([["Email/set", { accountId: prev.accountId, destroy: [prev.id] }, "d"]]);
}

/**
 * Send: the final Email replaces the saved draft (one request), then its
 * submission (a second one, so that a refused submission still leaves the
 * Email known as the draft: nothing typed is lost, no orphan is left). The
 * outbox files the Sent copy itself (docs/outbox.md), so the draft is
 * destroyed once the submission is accepted (onSuccessDestroyEmail): moving
 * it to Sent as well would file the message twice.
 */
export async function send(d: Draft, from: Identity, prev: Saved | null): Promise<{ submissionId: string }> {
  const accountId = from.accountId;
  const box = await holdingMailbox(accountId);
  if (!box) throw new Error("no mailbox to hold the message");
  const draft = await saveDraft(d, from, prev, box);
  let r: [string, any, string][];
  try {
    r = await call([
      [
        "EmailSubmission/set",
        { accountId, create: { sub: { identityId: from.id, emailId: draft.id } }, onSuccessDestroyEmail: ["#sub"] },
        "1",
      ],
    ]);
  } catch (e) {
    throw Object.assign(e instanceof Error ? e : new Error(errorText(e)), { draft });
  }
  const sub = r.find((x) => x[0] === "EmailSubmission/set")?.[1];
  const created = sub?.created?.sub;
  if (!created) throw Object.assign(new Error(errorText(sub?.notCreated?.sub)), { draft });
  return { submissionId: created.id };
}

/** $answered / $forwarded on the original once the reply is on its way. */
export async function markOriginal(accountId: string, emailId: string, keyword: "$answered" | "$forwarded"): Promise<void> {
  await call([["Email/set", { accountId, update: { [emailId]: { [`keywords/${keyword}`]: true } } }, "a"]]);
}

export type SendOutcome =
  | { kind: "sent" }
  | { kind: "failed"; reply: string }
  | { kind: "retrying"; reply: string }
  | { kind: "unknown" };

/**
 * What became of a submission once the hub's outbox tried it (the outbox
 * runs within seconds): sent (the SMTP server took it), failed (refused for
 * good: its reply; the hub also leaves a notice), retrying (a temporary
 * refusal: its reply; the outbox tries again with backoff), or unknown
 * (still waiting after `waitMs`, e.g. the hub cannot reach the server).
 */
export async function submissionOutcome(accountId: string, id: string, waitMs = 60000): Promise<SendOutcome> {
  const until = Date.now() + waitMs;
  for (let delay = 300; Date.now() < until; delay = Math.min(delay * 2, 3000)) {
    await new Promise((r) => window.setTimeout(r, delay));
    let sub: any;
    try {
      const r = await call([["EmailSubmission/get", { accountId, ids: [id] }, "s"]]);
      sub = r[0]?.[1]?.list?.[0];
    } catch {
      continue; // offline for a moment: ask again
    }
    if (!sub) return { kind: "unknown" }; // cancelled or removed elsewhere
    const status = Object.values(sub.deliveryStatus ?? {}) as { smtpReply?: string; delivered?: string }[];
    const reply = status.map((x) => x.smtpReply ?? "").find((x) => x !== "") ?? "";
    if (sub.undoStatus === "final")
      return status.some((x) => x.delivered === "no") ? { kind: "failed", reply } : { kind: "sent" };
    if (reply !== "") return { kind: "retrying", reply };
  }
  return { kind: "unknown" };
}
