// Which message the hash route has open. h-webmail's routes are
// #/mail/<accountId|all>/<mailboxId|inbox>/<emailId>/<accountId> and
// #/search/<text>/<emailId>/<accountId>; SPEC-13's #/mail/<accountId>/
// <mailboxId>/<emailId> is understood too.

export interface OpenMessage {
  accountId: string;
  emailId: string;
  /** The hash of the list the message was opened from. */
  listHash: string;
}

function parts(): string[] {
  return location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
}

function hashOf(list: string[]): string {
  return "#/" + list.map(encodeURIComponent).join("/");
}

export function openMessage(): OpenMessage | null {
  const p = parts();
  const n = p.length;
  if ((p[0] === "mail" || p[0] === "search") && n >= (p[0] === "mail" ? 5 : 4) && /^E/.test(p[n - 2]) && /^A/.test(p[n - 1]))
    return { emailId: p[n - 2], accountId: p[n - 1], listHash: hashOf(p.slice(0, n - 2)) };
  if (p[0] === "mail" && n === 4 && /^A/.test(p[1]) && p[3])
    return { emailId: p[3], accountId: p[1], listHash: hashOf(p.slice(0, 3)) };
  return null;
}

/** The account the current list shows, when it is one account's. */
export function listAccount(): string | null {
  const p = parts();
  return p[0] === "mail" && /^A/.test(p[1] ?? "") ? p[1] : null;
}
