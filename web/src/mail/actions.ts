// Mail actions: flag, read/unread, move, archive, delete, spam (Email/set),
// and the ActionBar the reader and the list show. Owned by h-compose.
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { call, session } from "../jmap";
import { onForeignChange } from "./store";
import { mailboxes, roleMailbox, type MailboxInfo } from "../compose/mailboxes";
import { openCompose } from "../compose/compose";
import { openMessage } from "../compose/route";
import { icon } from "../compose/icons";
import { t } from "../i18n";
import { errorText } from "../errors";
import { navigate, toast } from "../app";

export { mailboxes, roleMailbox };
export type { MailboxInfo };

export type ActionKind = "flag" | "unflag" | "read" | "unread" | "archive" | "delete" | "spam" | "move";

async function maxPerSet(): Promise<number> {
  try {
    const s = await session();
    const n = s.capabilities?.["urn:ietf:params:jmap:core"]?.maxObjectsInSet;
    return typeof n === "number" && n > 0 ? Math.min(n, 500) : 100;
  } catch {
    return 100;
  }
}

/** Email/set updates in chunks; returns the ids not updated with why. */
async function update(accountId: string, patches: Record<string, any>): Promise<string[]> {
  const ids = Object.keys(patches);
  const chunk = await maxPerSet();
  const failed: string[] = [];
  for (let i = 0; i < ids.length; i += chunk) {
    const part: Record<string, any> = {};
    for (const id of ids.slice(i, i + chunk)) part[id] = patches[id];
    const r = await call([["Email/set", { accountId, update: part }, "u"]]);
    const res = r[0][1];
    for (const [id, err] of Object.entries(res.notUpdated ?? {})) failed.push(`${id}: ${errorText(err)}`);
  }
  return failed;
}

async function destroy(accountId: string, emailIds: string[]): Promise<string[]> {
  const chunk = await maxPerSet();
  const failed: string[] = [];
  for (let i = 0; i < emailIds.length; i += chunk) {
    const r = await call([["Email/set", { accountId, destroy: emailIds.slice(i, i + chunk) }, "d"]]);
    for (const [id, err] of Object.entries(r[0][1].notDestroyed ?? {})) failed.push(`${id}: ${errorText(err)}`);
  }
  return failed;
}

/** Leave the reader when the open message went away (moved or deleted). */
function leaveIfOpen(emailIds: string[]): void {
  const open = openMessage();
  if (open && emailIds.includes(open.emailId)) navigate(open.listHash);
}

function announce(kind: string, accountId: string, emailIds: string[]): void {
  window.dispatchEvent(new CustomEvent("mailkeep:acted", { detail: { kind, accountId, emailIds } }));
}

/**
 * Act on Emails of one account. Resolves true when every Email was
 * changed; errors are shown as a toast (and resolve false).
 */
export async function act(
  kind: ActionKind,
  accountId: string,
  emailIds: string[],
  toMailboxId?: string,
): Promise<boolean> {
  if (emailIds.length === 0) return true;
  try {
    const kw = (name: string, on: boolean) => {
      const p: Record<string, any> = {};
      for (const id of emailIds) p[id] = { [`keywords/${name}`]: on ? true : null };
      return p;
    };
    const moveTo = (box: string, extra: Record<string, any> = {}) => {
      const p: Record<string, any> = {};
      for (const id of emailIds) p[id] = { mailboxIds: { [box]: true }, ...extra };
      return p;
    };
    let failed: string[] = [];
    let done = "";
    switch (kind) {
      case "flag":
      case "unflag":
        failed = await update(accountId, kw("$flagged", kind === "flag"));
        break;
      case "read":
      case "unread":
        failed = await update(accountId, kw("$seen", kind === "read"));
        break;
      case "move": {
        const box = (await mailboxes(accountId)).find((m) => m.id === toMailboxId);
        if (!box) {
          toast(t("action.noMailbox"), "error");
          return false;
        }
        failed = await update(accountId, moveTo(box.id));
        done = t("action.done.move", { name: box.name });
        break;
      }
      case "archive": {
        const box = await roleMailbox(accountId, "archive");
        if (!box) {
          toast(t("action.noRole.archive"), "error");
          return false;
        }
        failed = await update(accountId, moveTo(box.id));
        done = t("action.done.archive");
        break;
      }
      case "spam": {
        const box = await roleMailbox(accountId, "junk");
        if (!box) {
          toast(t("action.noRole.junk"), "error");
          return false;
        }
        failed = await update(accountId, moveTo(box.id, { "keywords/$junk": true, "keywords/$notjunk": null }));
        done = t("action.done.spam");
        break;
      }
      case "delete": {
        const trash = await roleMailbox(accountId, "trash");
        const r = await call([["Email/get", { accountId, ids: emailIds, properties: ["id", "mailboxIds"] }, "g"]]);
        const list: any[] = r[0][1].list ?? [];
        const inTrash = list.filter((e) => trash && e.mailboxIds?.[trash.id]).map((e) => e.id);
        const toTrash = list.filter((e) => !inTrash.includes(e.id)).map((e) => e.id);
        const gone = trash ? inTrash : list.map((e) => e.id);
        if (gone.length > 0) {
          if (!confirm(t("action.destroyConfirm", { n: gone.length }))) return false;
          failed = await destroy(accountId, gone);
          done = t("action.done.destroy");
        }
        if (trash && toTrash.length > 0) {
          const p: Record<string, any> = {};
          for (const id of toTrash) p[id] = { mailboxIds: { [trash.id]: true } };
          failed = failed.concat(await update(accountId, p));
          done = t("action.done.delete");
        }
        break;
      }
    }
    if (failed.length > 0) {
      toast(t("action.failed", { error: failed.slice(0, 3).join("; ") }), "error");
      return false;
    }
    if (kind === "move" || kind === "archive" || kind === "spam" || kind === "delete") leaveIfOpen(emailIds);
    announce(kind, accountId, emailIds);
    if (done) toast(done);
    return true;
  } catch (e) {
    toast(t("action.failed", { error: errorText(e) }), "error");
    return false;
  }
}

interface BarState {
  flagged: boolean;
  seen: boolean;
  draft: boolean;
}

async function readState(accountId: string, emailIds: string[]): Promise<BarState> {
  if (emailIds.length === 0) return { flagged: false, seen: true, draft: false };
  const r = await call([["Email/get", { accountId, ids: emailIds.slice(0, 500), properties: ["id", "keywords"] }, "k"]]);
  return barState(r[0][1].list ?? []);
}

function barState(list: any[]): BarState {
  return {
    flagged: list.length > 0 && list.every((e) => e.keywords?.$flagged),
    seen: list.every((e) => e.keywords?.$seen),
    draft: list.length === 1 && !!list[0].keywords?.$draft,
  };
}

/** The toolbar of actions for the given Emails (the open one, or the selection). */
export function ActionBar(props: {
  accountId: string;
  emailIds: string[];
  keywords?: Record<string, boolean>; // of the one Email, as the reader has just read them
}) {
  const { accountId, emailIds } = props;
  const key = accountId + ":" + emailIds.join(",");
  const [st, setSt] = useState<BarState>(() =>
    props.keywords ? barState([{ keywords: props.keywords }]) : { flagged: false, seen: true, draft: false },
  );
  const [boxes, setBoxes] = useState<MailboxInfo[]>([]);
  const [busy, setBusy] = useState(false);
  const [tick, setTick] = useState(0);
  const readAt = useRef(0);

  useEffect(() => {
    let live = true;
    // The keywords the reader read with the message need no request of their own; a
    // change since (tick) does.
    if (props.keywords && readAt.current === tick) setSt(barState([{ keywords: props.keywords }]));
    else {
      readAt.current = tick;
      readState(accountId, emailIds).then((s) => live && setSt(s)).catch(() => {});
    }
    return () => {
      live = false;
    };
  }, [key, tick]);

  useEffect(() => {
    let live = true;
    mailboxes(accountId).then((b) => live && setBoxes(b)).catch(() => {});
    const off = onForeignChange((changed) => {
      if (changed[accountId]) {
        setTick((n) => n + 1);
        if ("Mailbox" in changed[accountId]) mailboxes(accountId).then((b) => live && setBoxes(b)).catch(() => {});
      }
    });
    const onActed = () => setTick((n) => n + 1);
    window.addEventListener("mailkeep:acted", onActed);
    return () => {
      live = false;
      off();
      window.removeEventListener("mailkeep:acted", onActed);
    };
  }, [accountId]);

  const none = emailIds.length === 0;
  const run = async (kind: ActionKind, to?: string) => {
    setBusy(true);
    try {
      const ok = await act(kind, accountId, emailIds, to);
      if (ok && (kind === "flag" || kind === "unflag")) setSt((s) => ({ ...s, flagged: kind === "flag" }));
      if (ok && (kind === "read" || kind === "unread")) setSt((s) => ({ ...s, seen: kind === "read" }));
    } finally {
      setBusy(false);
    }
  };
  const has = (role: string) => boxes.some((b) => b.role === role);
  const dis = none || busy;
  return h(
    "div",
    { class: "mk-actionbar", role: "toolbar", "aria-label": t("action.toolbar") },
    emailIds.length === 1 && st.draft
      ? h(
          "button",
          {
            type: "button",
            "data-testid": "compose-edit-draft",
            class: "mk-act",
            onClick: () => openCompose({ mode: "new", accountId, emailId: emailIds[0], draft: true }),
          },
          icon("pen"),
          h("span", { class: "mk-act-label" }, t("compose.editDraft")),
        )
      : null,
    emailIds.length === 1 && !st.draft
      ? ([
          ["reply", "compose-reply", "compose.reply", "reply", "r"],
          ["replyAll", "compose-reply-all", "compose.replyAll", "replyAll", "a"],
          ["forward", "compose-forward", "compose.forward", "forward", "f"],
        ] as const).map(([mode, id, label, ic, key]) =>
          h(
            "button",
            {
              type: "button",
              key: id,
              "data-testid": id,
              title: `${t(label)} (${key})`,
              class: "mk-act",
              onClick: () => openCompose({ mode, accountId, emailId: emailIds[0] }),
            },
            icon(ic),
            h("span", { class: "mk-act-label" }, t(label)),
          ),
        )
      : null,
    h(
      "button",
      {
        type: "button",
        "data-testid": "action-flag",
        "aria-pressed": st.flagged ? "true" : "false",
        title: (st.flagged ? t("action.unflag") : t("action.flag")) + " (s)",
        class: st.flagged ? "mk-act on" : "mk-act",
        disabled: dis,
        onClick: () => run(st.flagged ? "unflag" : "flag"),
      },
      icon(st.flagged ? "star" : "starOutline"),
      h("span", { class: "mk-act-label" }, st.flagged ? t("action.unflag") : t("action.flag")),
    ),
    h(
      "button",
      {
        type: "button",
        "data-testid": "action-read",
        "data-seen": st.seen ? "true" : "false",
        title: st.seen ? t("action.unread") + " (U)" : t("action.read") + " (I)",
        class: "mk-act",
        disabled: dis,
        onClick: () => run(st.seen ? "unread" : "read"),
      },
      icon(st.seen ? "unread" : "read"),
      h("span", { class: "mk-act-label" }, st.seen ? t("action.unread") : t("action.read")),
    ),
    has("archive")
      ? h(
          "button",
          {
            type: "button",
            "data-testid": "action-archive",
            title: t("action.archive") + " (e)",
            class: "mk-act",
            disabled: dis,
            onClick: () => run("archive"),
          },
          icon("archive"),
          h("span", { class: "mk-act-label" }, t("action.archive")),
        )
      : null,
    h(
      "button",
      {
        type: "button",
        "data-testid": "action-delete",
        title: t("action.delete") + " (#)",
        class: "mk-act",
        disabled: dis,
        onClick: () => run("delete"),
      },
      icon("trash"),
      h("span", { class: "mk-act-label" }, t("action.delete")),
    ),
    has("junk")
      ? h(
          "button",
          {
            type: "button",
            "data-testid": "action-spam",
            title: t("action.spam") + " (!)",
            class: "mk-act",
            disabled: dis,
            onClick: () => run("spam"),
          },
          icon("spam"),
          h("span", { class: "mk-act-label" }, t("action.spam")),
        )
      : null,
    h(
      "select",
      {
        "data-testid": "action-move",
        class: "mk-act-move",
        "aria-label": t("action.move"),
        disabled: dis,
        value: "",
        onChange: (ev: Event) => {
          const sel = ev.currentTarget as HTMLSelectElement;
          const to = sel.value;
          sel.value = "";
          if (to) run("move", to);
        },
      },
      h("option", { value: "" }, t("action.move")),
      boxes
        .filter((b) => b.mayAddItems)
        .map((b) => h("option", { value: b.id, key: b.id, "data-role": b.role ?? "" }, "\u00a0\u00a0".repeat(b.depth) + b.name)),
    ),
  );
}
