// Pure functions of composing: addresses, reply/forward drafts, the JMAP
// Email create object. No DOM, no network: tests/web/compose-model.test.mjs
// runs them under node.

export interface Address {
  name?: string | null;
  email: string;
}

export interface Identity {
  id: string;
  accountId: string;
  name: string;
  email: string;
  textSignature?: string;
}

export interface Attachment {
  blobId: string;
  name: string;
  type: string;
  size: number;
}

/** What the compose form holds. */
export interface Draft {
  to: string;
  cc: string;
  bcc: string;
  subject: string;
  body: string;
  attachments: Attachment[];
  inReplyTo: string[] | null;
  references: string[] | null;
}

/** The original of a reply or forward, as Email/get gives it. */
export interface Original {
  id: string;
  from?: Address[] | null;
  to?: Address[] | null;
  cc?: Address[] | null;
  replyTo?: Address[] | null;
  subject?: string | null;
  messageId?: string[] | null;
  references?: string[] | null;
  sentAt?: string | null;
  receivedAt?: string | null;
  text: string; // the body as plain text
  attachments?: { blobId: string; name?: string | null; type: string; size: number }[] | null;
}

export type Mode = "new" | "reply" | "replyAll" | "forward";

const EMAIL_RE = /^[^\s@<>()[\],;:\\"]+@[^\s@<>()[\],;:\\"]+$/;

export function validEmail(s: string): boolean {
  return s.length <= 254 && EMAIL_RE.test(s);
}

/** "Name" <a@b> with the name quoted when it needs it. */
export function formatAddress(a: Address): string {
  if (!a.name) return a.email;
  const name = /[",;<>@()[\]\\:]/.test(a.name) ? `"${a.name.replace(/(["\\])/g, "\\$1")}"` : a.name;
  return `${name} <${a.email}>`;
}

export function formatAddresses(list: Address[] | null | undefined): string {
  return (list ?? []).map(formatAddress).join(", ");
}

/** Split a recipient field on commas/semicolons outside quotes and <>. */
function splitList(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  let angle = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && quoted && i + 1 < text.length) {
      cur += c + text[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (c === "<" && !quoted) angle = true;
    else if (c === ">" && !quoted) angle = false;
    if ((c === "," || c === ";") && !quoted && !angle) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== "");
}

/**
 * Parse a recipient field ("Ann <ann@x.org>, bob@y.org"). Returns the
 * addresses and the entries that are not addresses.
 */
export function parseAddresses(text: string): { list: Address[]; bad: string[] } {
  const list: Address[] = [];
  const bad: string[] = [];
  for (const item of splitList(text)) {
    const m = /^(.*)<([^<>]*)>$/.exec(item);
    let name: string | null = null;
    let email: string;
    if (m) {
      name = m[1].trim();
      if (name.startsWith('"') && name.endsWith('"') && name.length >= 2)
        name = name.slice(1, -1).replace(/\\(.)/g, "$1");
      email = m[2].trim();
    } else {
      email = item;
    }
    if (!validEmail(email)) {
      bad.push(item);
      continue;
    }
    list.push(name ? { name, email } : { email });
  }
  return { list, bad };
}

function sameEmail(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function dedupe(list: Address[], exclude: string[]): Address[] {
  const seen = new Set(exclude.map((e) => e.toLowerCase()));
  const out: Address[] = [];
  for (const a of list) {
    const k = a.email.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(a);
  }
  return out;
}

const REPLY_PREFIX = /^\s*((re|aw|sv|antw|vs)(\[\d+\])?\s*:\s*)+/i;
const FWD_PREFIX = /^\s*((fwd?|wg|tr|vs)(\[\d+\])?\s*:\s*)+/i;

export function replySubject(subject: string | null | undefined): string {
  const s = (subject ?? "").trim();
  return REPLY_PREFIX.test(s) ? "Re: " + s.replace(REPLY_PREFIX, "") : "Re: " + s;
}

export function forwardSubject(subject: string | null | undefined): string {
  const s = (subject ?? "").trim();
  return FWD_PREFIX.test(s) ? "Fwd: " + s.replace(FWD_PREFIX, "") : "Fwd: " + s;
}

export function quote(text: string): string {
  const lines = text.replace(/\r\n/g, "\n").replace(/\n+$/, "").split("\n");
  return lines.map((l) => (l.startsWith(">") ? ">" + l : "> " + l)).join("\n");
}

/** The recipients of a reply: to the Reply-To (else From); reply-all adds
 * the other To and Cc, never one of my own addresses. */
export function replyRecipients(
  orig: Original,
  all: boolean,
  mine: string[],
): { to: Address[]; cc: Address[] } {
  const hasReplyTo = !!orig.replyTo && orig.replyTo.length > 0;
  const fromMe = (orig.from ?? []).some((a) => mine.some((m) => sameEmail(m, a.email)));
  // A reply to my own message goes to its recipients again.
  let to = dedupe(hasReplyTo ? orig.replyTo! : fromMe ? (orig.to ?? []) : (orig.from ?? []), []);
  if (to.length === 0) to = dedupe(orig.from ?? [], []);
  if (!all) return { to, cc: [] };
  const cc = dedupe(
    [...(orig.to ?? []), ...(orig.cc ?? [])],
    [...mine, ...to.map((a) => a.email)],
  );
  return { to, cc };
}

export interface Strings {
  wrote: (date: string, who: string) => string;
  forwarded: string;
  from: string;
  date: string;
  subject: string;
  to: string;
  cc: string;
}

function signature(id: Identity | null): string {
  const sig = id?.textSignature?.trim();
  return sig ? "\n\n-- \n" + sig : "";
}

/** The draft a mode starts with. */
export function startDraft(
  mode: Mode,
  orig: Original | null,
  identity: Identity | null,
  mine: string[],
  s: Strings,
  formatDate: (iso: string) => string,
): Draft {
  const d: Draft = {
    to: "",
    cc: "",
    bcc: "",
    subject: "",
    body: signature(identity),
    attachments: [],
    inReplyTo: null,
    references: null,
  };
  if (mode === "new" || orig === null) return d;
  const when = orig.sentAt ?? orig.receivedAt ?? "";
  const date = when ? formatDate(when) : "";
  if (mode === "forward") {
    d.subject = forwardSubject(orig.subject);
    const head = [
      `---------- ${s.forwarded} ----------`,
      `${s.from}: ${formatAddresses(orig.from)}`,
      date ? `${s.date}: ${date}` : "",
      `${s.subject}: ${orig.subject ?? ""}`,
      `${s.to}: ${formatAddresses(orig.to)}`,
      orig.cc && orig.cc.length ? `${s.cc}: ${formatAddresses(orig.cc)}` : "",
    ].filter((l) => l !== "");
    d.body = (signature(identity) || "") + "\n\n" + head.join("\n") + "\n\n" + orig.text;
    d.attachments = (orig.attachments ?? []).map((a) => ({
      blobId: a.blobId,
      name: a.name ?? "attachment",
      type: a.type,
      size: a.size,
    }));
    return d;
  }
  const r = replyRecipients(orig, mode === "replyAll", mine);
  d.to = formatAddresses(r.to);
  d.cc = formatAddresses(r.cc);
  d.subject = replySubject(orig.subject);
  const who = orig.from && orig.from.length ? formatAddress(orig.from[0]) : "";
  d.body = "\n\n" + s.wrote(date, who) + "\n" + quote(orig.text) + signature(identity);
  const mid = orig.messageId ?? [];
  if (mid.length > 0) {
    d.inReplyTo = [mid[0]];
    d.references = [...(orig.references ?? []), mid[0]].slice(-20);
  }
  return d;
}

/**
 * The JMAP Email create object (RFC 8621 4.6) for a draft in mailboxId.
 * Plain text body; attachments by blobId.
 */
export function emailObject(d: Draft, from: Identity | null, mailboxId: string, draft = true): Record<string, any> {
  const to = parseAddresses(d.to).list;
  const cc = parseAddresses(d.cc).list;
  const bcc = parseAddresses(d.bcc).list;
  const e: Record<string, any> = {
    mailboxIds: { [mailboxId]: true },
    keywords: draft ? { $draft: true, $seen: true } : { $seen: true },
    subject: d.subject,
    // The text as typed plus one line end: a text part ends with a line end (the server
    // adds one only where it is missing), so draftFromEmail takes exactly this one off
    // again and a draft round-trips what was typed, trailing line ends included.
    bodyValues: { body: { value: d.body + "\n" } },
    textBody: [{ partId: "body", type: "text/plain" }],
  };
  // An identity whose address the server cannot write (alice@[192.0.2.1])
  // gets no From here: the caller asks for one before sending.
  if (from && validEmail(from.email)) e.from = [from.name ? { name: from.name, email: from.email } : { email: from.email }];
  if (to.length) e.to = to;
  if (cc.length) e.cc = cc;
  if (bcc.length) e.bcc = bcc;
  if (d.inReplyTo && d.inReplyTo.length) e.inReplyTo = d.inReplyTo;
  if (d.references && d.references.length) e.references = d.references;
  if (d.attachments.length)
    e.attachments = d.attachments.map((a) => ({
      blobId: a.blobId,
      type: a.type || "application/octet-stream",
      name: a.name,
      disposition: "attachment",
    }));
  return e;
}

/** A draft as stored (Email/get) back into the form, to go on editing. */
export function draftFromEmail(e: Original & { inReplyTo?: string[] | null; bcc?: Address[] | null }): Draft {
  return {
    to: formatAddresses(e.to),
    cc: formatAddresses(e.cc),
    bcc: formatAddresses(e.bcc),
    subject: e.subject ?? "",
    // The stored text part ends with the line end emailObject added.
    body: e.text.replace(/\r?\n$/, ""),
    attachments: (e.attachments ?? []).map((a) => ({
      blobId: a.blobId,
      name: a.name ?? "attachment",
      type: a.type,
      size: a.size,
    })),
    inReplyTo: e.inReplyTo ?? null,
    references: e.references ?? null,
  };
}

/** Problems that stop sending: no recipient, or entries that are not addresses. */
export function checkDraft(d: Draft): { bad: string[]; count: number } {
  const parts = [d.to, d.cc, d.bcc].map(parseAddresses);
  return {
    bad: parts.flatMap((p) => p.bad),
    count: parts.reduce((n, p) => n + p.list.length, 0),
  };
}

export function isEmpty(d: Draft, signatureOnly: string): boolean {
  return (
    d.to.trim() === "" &&
    d.cc.trim() === "" &&
    d.bcc.trim() === "" &&
    d.subject.trim() === "" &&
    (d.body.trim() === "" || d.body === signatureOnly) &&
    d.attachments.length === 0
  );
}

export function humanSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
