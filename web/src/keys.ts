// Keyboard shortcuts over the list and reader (h-webmail's DOM, through its
// stable selectors) and the help dialog. Owned by h-compose.
//
//   j / k      next / previous message (opens it when one is open)
//   o, Enter   open the selected message
//   u          back to the list          U  mark unread    I  mark read
//   r / a / f  reply / reply all / forward
//   c          new message
//   #          delete      e  archive      s  flag      !  spam
//   /          search      ?  this help    Esc  close the help or the message
import { h, render } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { t } from "./i18n";
import { call } from "./jmap";
import { navigate } from "./app";
import { act, type ActionKind } from "./mail/actions";
import { isComposeOpen, openCompose } from "./compose/compose";
import { primarySubmissionAccount } from "./compose/service";
import { listAccount, openMessage } from "./compose/route";

export const SHORTCUTS: [string, string][] = [
  ["j", "keys.next"],
  ["k", "keys.prev"],
  ["o / Enter", "keys.open"],
  ["u", "keys.back"],
  ["r", "keys.reply"],
  ["a", "keys.replyAll"],
  ["f", "keys.forward"],
  ["c", "keys.compose"],
  ["#", "keys.delete"],
  ["e", "keys.archive"],
  ["s", "keys.flag"],
  ["!", "keys.spam"],
  ["U", "keys.unread"],
  ["I", "keys.read"],
  ["/", "keys.search"],
  ["?", "keys.help"],
  ["Ctrl+Enter", "keys.send"],
  ["Esc", "keys.escape"],
];

function rows(): HTMLElement[] {
  return Array.from(document.querySelectorAll<HTMLElement>('[data-testid="msg-row"]'));
}

/** The row the keyboard is on: focused, else the one marked current/selected, else the open message's. */
function currentRow(list: HTMLElement[]): number {
  const active = document.activeElement?.closest?.('[data-testid="msg-row"]');
  if (active) return list.indexOf(active as HTMLElement);
  const marked = list.findIndex(
    (r) => r.getAttribute("aria-current") === "true" || r.getAttribute("aria-selected") === "true" || r.classList.contains("selected"),
  );
  if (marked >= 0) return marked;
  const open = openMessage();
  return open ? list.findIndex((r) => r.dataset.id === open.emailId) : -1;
}

/** The message the keys act on: the open one, else the row the keyboard is on. */
function target(): { accountId: string; emailId: string } | null {
  const open = openMessage();
  if (open) return { accountId: open.accountId, emailId: open.emailId };
  const list = rows();
  const i = currentRow(list);
  if (i < 0) return null;
  const acc = list[i].dataset.account ?? listAccount();
  const id = list[i].dataset.id;
  return acc && id ? { accountId: acc, emailId: id } : null;
}

function openRow(row: HTMLElement): void {
  const link = row.matches("a[href]") ? row : (row.querySelector<HTMLElement>("a[href]") ?? row);
  link.click();
}

/** j/k: the list's own arrow-key handling moves (it scrolls its virtual
 * window); with a message open, the next one opens. */
function move(step: number): void {
  const list = rows();
  if (list.length === 0) return;
  const i = currentRow(list);
  const wasOpen = openMessage() !== null;
  let row: HTMLElement;
  if (i < 0) {
    row = list[0];
    row.focus();
  } else {
    row = list[i];
    if (document.activeElement !== row) row.focus();
    const ev = new KeyboardEvent("keydown", { key: step > 0 ? "ArrowDown" : "ArrowUp", bubbles: true, cancelable: true });
    row.dispatchEvent(ev);
    if (!ev.defaultPrevented) {
      const next = list[Math.max(0, Math.min(list.length - 1, i + step))];
      next.focus();
      next.scrollIntoView({ block: "nearest" });
    }
  }
  if (!wasOpen) return;
  // The list focuses the next row after a frame or two.
  let tries = 30;
  const start = row;
  const poll = () => {
    const now = document.activeElement as HTMLElement | null;
    if (i < 0 || (now && now !== start && now.matches('[data-testid="msg-row"]'))) {
      if (now?.matches('[data-testid="msg-row"]')) openRow(now);
    } else if (tries-- > 0) setTimeout(poll, 30);
  };
  poll();
}

let helpHost: HTMLElement | null = null;

function Help(props: { onClose: () => void }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const opener = document.activeElement;
    ref.current?.querySelector<HTMLElement>("button")?.focus();
    return () => {
      if (opener instanceof HTMLElement && document.contains(opener)) opener.focus();
    };
  }, []);
  return h(
    "div",
    { class: "mk-keys-backdrop", onClick: (ev: MouseEvent) => ev.target === ev.currentTarget && props.onClose() },
    h(
      "div",
      {
        class: "mk-keys",
        role: "dialog",
        "aria-modal": "true",
        "aria-labelledby": "mk-keys-title",
        "data-testid": "keys-help",
        ref,
        onKeyDown: (ev: KeyboardEvent) => {
          if (ev.key === "Escape" || ev.key === "?") {
            ev.preventDefault();
            ev.stopPropagation();
            props.onClose();
          } else if (ev.key === "Tab") {
            ev.preventDefault(); // one control: focus stays in the dialog
          }
        },
      },
      h("h2", { id: "mk-keys-title" }, t("keys.title")),
      h(
        "table",
        null,
        h(
          "tbody",
          null,
          SHORTCUTS.map(([k, label]) => h("tr", { key: k }, h("th", { scope: "row" }, h("kbd", null, k)), h("td", null, t(label)))),
        ),
      ),
      h("button", { type: "button", class: "mk-keys-close", onClick: props.onClose }, t("keys.close")),
    ),
  );
}

export function showHelp(): void {
  if (!helpHost) {
    helpHost = document.createElement("div");
    helpHost.id = "mk-keys-host";
    document.body.appendChild(helpHost);
  }
  render(h(Help, { onClose: hideHelp }), helpHost);
}

export function hideHelp(): void {
  if (helpHost) render(null, helpHost);
}

function helpOpen(): boolean {
  return !!helpHost && helpHost.childElementCount > 0;
}

function typing(el: EventTarget | null): boolean {
  if (!(el instanceof HTMLElement)) return false;
  return el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) || !!el.closest("[role=dialog], dialog");
}

function actOn(kind: ActionKind): void {
  const tg = target();
  if (tg) void act(kind, tg.accountId, [tg.emailId]);
}

async function flagToggle(): Promise<void> {
  const tg = target();
  if (!tg) return;
  const r = await call([["Email/get", { accountId: tg.accountId, ids: [tg.emailId], properties: ["keywords"] }, "k"]]);
  const flagged = !!r[0][1].list?.[0]?.keywords?.$flagged;
  await act(flagged ? "unflag" : "flag", tg.accountId, [tg.emailId]);
}

/** The keydown handler (exported for tests). */
export function handleKey(ev: KeyboardEvent): void {
  if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (helpOpen()) return; // the dialog handles its own keys
  // A modal <dialog> (a confirmation, the PDF viewer) owns the keyboard:
  // nothing behind it may act (it handles Escape itself).
  if (document.querySelector("dialog[open]")) return;
  if (typing(ev.target) || isComposeOpen()) return;
  const k = ev.key;
  const open = openMessage();
  let handled = true;
  switch (k) {
    case "j":
      move(1);
      break;
    case "k":
      move(-1);
      break;
    case "o":
    case "Enter": {
      // Enter on a focused button or link keeps its own meaning.
      if (k === "Enter" && ev.target instanceof HTMLElement && ev.target.matches("a,button")) {
        handled = false;
        break;
      }
      const list = rows();
      const i = currentRow(list);
      if (i >= 0) openRow(list[i]);
      else handled = false;
      break;
    }
    case "u":
    case "Escape":
      if (open) navigate(open.listHash);
      else handled = false;
      break;
    case "U":
      actOn("unread");
      break;
    case "I":
      actOn("read");
      break;
    case "r":
    case "a":
    case "f": {
      const tg = target();
      if (tg) openCompose({ mode: k === "r" ? "reply" : k === "a" ? "replyAll" : "forward", accountId: tg.accountId, emailId: tg.emailId });
      else handled = false;
      break;
    }
    case "c":
      void primarySubmissionAccount().then((acc) => openCompose({ mode: "new", accountId: open?.accountId ?? listAccount() ?? acc ?? "" }));
      break;
    case "#":
      actOn("delete");
      break;
    case "e":
      actOn("archive");
      break;
    case "!":
      actOn("spam");
      break;
    case "s":
      void flagToggle();
      break;
    case "/": {
      const search = document.querySelector<HTMLInputElement>('[data-testid="search-input"]');
      if (search) {
        search.focus();
        search.select();
      } else handled = false;
      break;
    }
    case "?":
      showHelp();
      break;
    default:
      handled = false;
  }
  if (handled) ev.preventDefault();
}

let installed = false;

/** Listen for shortcuts on the document (once). */
export function installKeys(): void {
  if (installed || typeof document === "undefined") return;
  installed = true;
  document.addEventListener("keydown", handleKey);
}
