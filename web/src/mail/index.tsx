// The mail screens: #/mail/<accountId|all>/<mailboxId|inbox>[/<emailId>/<accountId>] and
// #/search/<text>[/<emailId>/<accountId>]: folders | message list | reader.
import { Component } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { t, locale } from "../i18n";
import * as jmap from "../jmap";
import { registerRoute, navigate, href, onSignOut } from "../app";
import { errorText } from "../errors";
import { Folders, ALL, INBOX, mailboxLabel } from "./folders";
import { MessageList } from "./list";
import { Reader } from "./reader";
import { ActionBar } from "./actions";
import { ComposeButton } from "../compose/compose";
import { Source, WindowSource, MergedSource, Query } from "./source";
import {
  Account,
  mailAccounts,
  mailboxes,
  mailboxesOf,
  byRole,
  cachedMailboxes,
  forgetOpened,
  forgetMailboxes,
} from "./store";
import { Icon } from "../icons";
import "../locales/mail.en";
import "../locales/mail.de";

interface View {
  key: string;
  source: Source | null;
  title: string;
  base: string;
  sent: boolean;
  multi: boolean; // rows of several accounts: name the account on each row
  threads: boolean;
  error?: string;
  info?: string;
}

function SearchBox(props: { initial: string }) {
  const [text, setText] = useState(props.initial);
  useEffect(() => setText(props.initial), [props.initial]);
  return (
    <form
      class="search"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        const q = text.trim();
        navigate(q ? href("search", q) : href("mail"));
      }}
    >
      <label for="search-input" class="sr-only">
        {t("search.label")}
      </label>
      <input
        id="search-input"
        data-testid="search-input"
        type="search"
        placeholder={t("search.placeholder")}
        value={text}
        onInput={(e) => setText((e.target as HTMLInputElement).value)}
      />
      <button type="submit" class="icon-btn" aria-label={t("search.submit")}>
        <Icon name="search" />
      </button>
    </form>
  );
}

const NONE: View = { key: "none", source: null, title: "", base: "#/mail", sent: false, multi: false, threads: false };

// A mailbox's message count as last read (the list's size before the exact count comes).
function hintOf(accountId: string, mailboxId: string): () => number | undefined {
  let last: number | undefined;
  return () => {
    const m = cachedMailboxes(accountId)?.find((x) => x.id === mailboxId);
    if (m) last = m.totalEmails;
    return last;
  };
}

// The inbox ids of the user's accounts, remembered in this browser: the first screen after
// sign-in asks for its rows at once, without waiting for the mailboxes (one round trip less).
// Checked against the mailboxes when they come; wrong ones rebuild the view.
const INBOXES_KEY = "mk.inboxes";
function rememberedInboxes(user: string): Record<string, string> {
  try {
    const all = JSON.parse(localStorage.getItem(INBOXES_KEY) || "{}");
    return (all && all[user]) || {};
  } catch {
    return {};
  }
}
function rememberInboxes(user: string, ids: Record<string, string>): void {
  try {
    localStorage.setItem(INBOXES_KEY, JSON.stringify({ [user]: ids }));
  } catch {
    /* storage off: no shortcut next time */
  }
}
export function forgetInboxes(): void {
  try {
    localStorage.removeItem(INBOXES_KEY);
  } catch {
    /* nothing kept */
  }
}

async function inboxIds(scope: Account[], onWrong: () => void): Promise<Record<string, string>> {
  const user = jmap.sessionNow()?.username || "";
  const known = rememberedInboxes(user);
  const fetched = mailboxesOf(scope.map((a) => a.id)).then((all) => {
    const ids: Record<string, string> = {};
    for (const a of scope) {
      const inbox = byRole(all[a.id], "inbox");
      if (inbox) ids[a.id] = inbox.id;
    }
    rememberInboxes(user, ids);
    return ids;
  });
  if (scope.length && scope.every((a) => known[a.id])) {
    void fetched.then((ids) => {
      if (scope.some((a) => ids[a.id] !== known[a.id])) onWrong();
    });
    return known;
  }
  return fetched;
}

async function buildView(route: string, path: string[], accounts: Account[], onWrong: () => void): Promise<View> {
  const mail = accounts.filter((a) => !a.notices);
  if (route === "search") {
    const q = path[0] || "";
    const scope = mail.length ? mail : accounts;
    const queries: Query[] = scope.map((a) => ({
      accountId: a.id,
      filter: { text: q },
      collapseThreads: false,
      snippets: true,
    }));
    return {
      key: "search/" + q,
      source: queries.length === 1 ? new WindowSource(queries[0]) : new MergedSource(queries),
      title: t("search.title", { q }),
      base: href("search", q),
      sent: false,
      multi: queries.length > 1,
      threads: false,
    };
  }
  const acct = path[0] || ALL;
  const box = path[1] || INBOX;
  if (acct === ALL) {
    const scope = mail.length ? mail : accounts;
    const ids = await inboxIds(scope, onWrong);
    const queries: Query[] = [];
    scope.forEach((a) => {
      const inbox = ids[a.id];
      if (inbox)
        queries.push({
          accountId: a.id,
          filter: { inMailbox: inbox },
          collapseThreads: true,
          snippets: false,
          hint: hintOf(a.id, inbox),
        });
    });
    return {
      key: "all/inbox/" + queries.map((q) => q.accountId + ":" + q.filter.inMailbox).join(","),
      source: queries.length === 1 ? new WindowSource(queries[0]) : new MergedSource(queries),
      title: queries.length === 1 ? t("role.inbox") : t("folders.allInboxes"),
      base: href("mail", ALL, INBOX),
      sent: false,
      multi: queries.length > 1,
      threads: true,
    };
  }
  const a = accounts.find((x) => x.id === acct);
  if (!a) return { ...NONE, error: t("mail.noAccount") };
  const list = await mailboxes(a.id);
  const m = box === INBOX ? byRole(list, "inbox") : list.find((x) => x.id === box);
  // The notices account has no mailbox before its first notice.
  if (!m) return a.notices && box === INBOX ? { ...NONE, info: t("folders.noNotices") } : { ...NONE, error: t("mail.noMailbox") };
  return {
    key: a.id + "/" + m.id,
    source: new WindowSource({
      accountId: a.id,
      filter: { inMailbox: m.id },
      collapseThreads: true,
      snippets: false,
      hint: hintOf(a.id, m.id),
    }),
    title: mailboxLabel(m),
    base: href("mail", a.id, box),
    sent: m.role === "sent" || m.role === "drafts",
    multi: false,
    threads: true,
  };
}

// The folder tree renders again only when its folder or the language changes (it follows
// the counts itself): opening a message does not render it.
class FolderTree extends Component<{ accountId: string; mailboxId: string; lang: string }> {
  shouldComponentUpdate(n: { accountId: string; mailboxId: string; lang: string }) {
    const o = this.props;
    return o.accountId !== n.accountId || o.mailboxId !== n.mailboxId || o.lang !== n.lang;
  }
  render() {
    return <Folders accountId={this.props.accountId} mailboxId={this.props.mailboxId} />;
  }
}

function MailPage(props: { path: string[]; route: string }) {
  const { path, route } = props;
  const [accounts, setAccounts] = useState<Account[] | null>(null);
  const [view, setView] = useState<View | null>(null);
  const [error, setError] = useState("");
  const [folders, setFolders] = useState(false);
  const [epoch, setEpoch] = useState(0);
  const listRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let alive = true;
    const load = () =>
      jmap
        .session()
        .then((s) => alive && setAccounts(mailAccounts(s)))
        .catch((e) => alive && setError(errorText(e)));
    void load();
    const off = jmap.onSession((s) => setAccounts(mailAccounts(s)));
    return () => {
      alive = false;
      off();
    };
  }, []);

  // The list's path: everything before the email id.
  const listPath = route === "search" ? path.slice(0, 1) : path.slice(0, 2);
  const rest = route === "search" ? path.slice(1) : path.slice(2);
  const listKey = route + "/" + listPath.join("/");
  const emailId = rest[0] || null;
  const emailAccount = rest[1] || (route === "mail" && path[0] && path[0] !== ALL ? path[0] : "");

  useEffect(() => {
    if (!accounts) return;
    let alive = true;
    buildView(route, listPath, accounts, () => setEpoch((n) => n + 1))
      .then((v) => {
        if (!alive) return;
        setView((old) => (old && old.key === v.key && old.source && v.source ? { ...v, source: old.source } : v));
        document.title = (v.title ? v.title + " · " : "") + "mailkeep";
      })
      .catch((e) => alive && setError(errorText(e)));
    return () => void (alive = false);
  }, [listKey, accounts, epoch]);

  useEffect(() => setFolders(false), [listKey]);

  const names = useMemo(() => new Map((accounts || []).map((a) => [a.id, a.name])), [accounts]);
  if (error)
    return (
      <p class="form-error page-error" role="alert">
        {error}
      </p>
    );
  if (!accounts) return <p class="muted page-pad">{t("app.loading")}</p>;
  if (!accounts.length) return <p class="empty page-pad">{t("mail.noAccounts")}</p>;

  const selected = emailId && emailAccount ? { accountId: emailAccount, id: emailId } : null;
  const folderAcct = route === "search" ? "" : path[0] || ALL;
  const folderBox = route === "search" ? "" : path[1] || INBOX;
  const closeReader = () => {
    navigate(view ? view.base : href("mail"));
    requestAnimationFrame(() => {
      const row = listRef.current?.querySelector<HTMLElement>(`a[data-id="${CSS.escape(emailId || "")}"]`);
      row?.focus();
    });
  };
  return (
    <div class={"mail" + (selected ? " reading" : "") + (folders ? " folders-open" : "")}>
      <div class="folders-pane" id="folders-pane">
        <FolderTree accountId={folderAcct} mailboxId={folderBox} lang={locale()} />
      </div>
      <div class="list-col" ref={listRef}>
        <div class="list-head">
          <button
            type="button"
            class="icon-btn folders-btn"
            aria-expanded={folders}
            aria-controls="folders-pane"
            onClick={() => setFolders(!folders)}
          >
            <Icon name="menu" />
            {t("folders.label")}
          </button>
          <h1 class="list-title">{view ? view.title || "" : ""}</h1>
          <ComposeButton accountId={folderAcct && folderAcct !== ALL ? folderAcct : undefined} />
          <SearchBox initial={route === "search" ? path[0] || "" : ""} />
        </div>
        {view?.error ? (
          <p class="form-error page-pad" role="alert">
            {view.error}
          </p>
        ) : view?.info ? (
          <p class="empty">{view.info}</p>
        ) : view && view.source ? (
          <MessageList
            source={view.source}
            base={view.base}
            selected={selected}
            label={view.title}
            sent={view.sent}
            threads={view.threads}
            empty={route === "search" ? t("search.none") : undefined}
            showAccount={view.multi ? (id) => names.get(id) || id : undefined}
          />
        ) : (
          <p class="muted page-pad">{t("app.loading")}</p>
        )}
      </div>
      <div class="reader-col">
        {selected ? (
          <Reader
            accountId={selected.accountId}
            emailId={selected.id}
            onClose={closeReader}
            actions={(a, ids, keywords) => <ActionBar accountId={a} emailIds={ids} keywords={keywords} />}
          />
        ) : (
          <p class="empty reader-empty">{t("reader.none")}</p>
        )}
      </div>
    </div>
  );
}

onSignOut(forgetInboxes);
onSignOut(forgetOpened);
onSignOut(forgetMailboxes);
registerRoute("mail", (p) => <MailPage path={p.path} route="mail" />, { label: "nav.mail", icon: "mail" });
registerRoute("search", (p) => <MailPage path={p.path} route="search" />);
