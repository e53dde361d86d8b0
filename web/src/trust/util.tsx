// Shared pieces of the trust pages: the management calls, loading state,
// dates, the load error, a confirm dialog and a text download.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { call, one, onStateChange } from "../jmap";
import { t } from "../i18n";
import { errorText } from "../errors";

// Every management method takes the notices account's id.
export const MANAGE_ACCOUNT = "mailkeep";

// One management method call; throws what call() throws (a JmapError for a
// method error, with the server's description).
export async function manage<T = any>(method: string, args: Record<string, unknown> = {}): Promise<T> {
  const responses = await call([[method, { accountId: MANAGE_ACCOUNT, ...args }, "m"]]);
  return one<T>(responses, "m");
}

// A /set call's refusal (notCreated/notUpdated/notDestroyed) as an Error.
export function setFailure(res: any, key: string): Error | null {
  for (const field of ["notCreated", "notUpdated", "notDestroyed"]) {
    const e = res?.[field]?.[key];
    if (e) return new Error(e.description || e.type || t("error.unknown"));
  }
  return null;
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

// Runs load() now and again on reload() (after the page's own actions). Most of what the
// trust pages show changes only by such actions, not by new mail, so a StateChange reloads
// nothing unless live is given (ms): then a StateChange (new mail, a sync) reloads at
// once when the last load is at least live ms ago, else once when it is, so that a burst
// of changes costs one request per live ms and the last one is still shown.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = [], live = 0): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const last = useRef(0);
  const run = useCallback(() => {
    const mine = ++seq.current;
    last.current = Date.now();
    setLoading(true);
    load().then(
      (d) => {
        if (mine !== seq.current) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (mine !== seq.current) return;
        setError(e);
        setLoading(false);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    run();
    let timer: number | undefined;
    const off = live
      ? onStateChange(() => {
          if (timer === undefined)
            timer = window.setTimeout(
              () => {
                timer = undefined;
                run();
              },
              Math.max(0, last.current + live - Date.now()),
            );
        })
      : undefined;
    return () => {
      ++seq.current;
      off?.();
      window.clearTimeout(timer);
    };
  }, [run]);
  return { data, error, loading, reload: run };
}

function locale(): string {
  return document.documentElement.lang || navigator.language || "en";
}

// A UTCDate (or seconds since the epoch) as local date and time.
export function fmtDate(v: string | number | null | undefined): string {
  if (v == null || v === "") return t("trust.never");
  const d = typeof v === "number" ? new Date(v * 1000) : new Date(v);
  if (isNaN(d.getTime())) return String(v);
  try {
    return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(d);
  } catch {
    return d.toISOString();
  }
}

// <time> with the machine-readable value for assistive tech.
export function When(props: { at: string | number | null | undefined }) {
  const v = props.at;
  if (v == null || v === "") return <span>{t("trust.never")}</span>;
  const d = typeof v === "number" ? new Date(v * 1000) : new Date(v);
  const iso = isNaN(d.getTime()) ? undefined : d.toISOString();
  return <time dateTime={iso}>{fmtDate(v)}</time>;
}

// Loading and error states for a Loaded value.
export function LoadState(props: { state: Loaded<unknown>; label: string }) {
  const { state } = props;
  if (state.error)
    return (
      <div class="trust-error" role="alert">
        <p>
          {t("trust.loadFailed", { what: props.label })} {errorText(state.error)}
        </p>
        <button type="button" onClick={state.reload}>
          {t("trust.retry")}
        </button>
      </div>
    );
  if (state.loading && state.data === undefined)
    return (
      <p class="trust-loading" role="status">
        {t("trust.loading")}
      </p>
    );
  return null;
}

// The page heading, focused when the page opens so that a screen reader
// announces it and keyboard focus starts at the page.
export function PageTitle(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1} class="trust-title">
      {props.children}
    </h1>
  );
}

// A modal confirmation (native <dialog>: focus moves in, Escape cancels).
export function Confirm(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
  testid?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useRef("trust-dlg-" + Math.random().toString(36).slice(2)).current;
  useEffect(() => {
    const d = ref.current;
    if (!props.open || !d) return;
    // Focus goes back where it was when the dialog goes away.
    const before = document.activeElement as HTMLElement | null;
    if (!d.open) {
      if (typeof d.showModal === "function") d.showModal();
      else d.setAttribute("open", "");
    }
    return () => {
      if (before && before.isConnected) before.focus();
    };
  }, [props.open]);
  // Only an open dialog is in the document (one per page, not one per row).
  if (!props.open) return null;
  return (
    <dialog
      ref={ref}
      class="trust-dialog"
      aria-labelledby={titleId}
      data-testid={props.testid}
      onCancel={(e) => {
        e.preventDefault();
        props.onCancel();
      }}
    >
      <h2 id={titleId}>{props.title}</h2>
      <div>{props.children}</div>
      <div class="trust-actions">
        <button type="button" onClick={props.onCancel} disabled={props.busy}>
          {t("trust.cancel")}
        </button>
        <button
          type="button"
          class={props.danger ? "danger" : "primary"}
          onClick={props.onConfirm}
          disabled={props.busy}
          data-testid={props.testid ? props.testid + "-confirm" : undefined}
        >
          {props.busy ? t("trust.working") : props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

// A link that downloads text as a .txt file (blob URL, revoked when the
// link goes away).
export function TextDownload(props: { text: string; filename: string; label: string; testid?: string }) {
  const [url, setUrl] = useState<string>("");
  useEffect(() => {
    const u = URL.createObjectURL(new Blob([props.text], { type: "text/plain;charset=utf-8" }));
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [props.text]);
  return (
    <a class="button" href={url || undefined} download={props.filename} data-testid={props.testid}>
      {props.label}
    </a>
  );
}

// Copies text to the clipboard; says whether it worked.
export function CopyButton(props: { text: string; label: string }) {
  const [done, setDone] = useState<"" | "ok" | "failed">("");
  return (
    <>
      <button
        type="button"
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(props.text);
            setDone("ok");
          } catch {
            setDone("failed");
          }
        }}
      >
        {props.label}
      </button>
      <span role="status" class="trust-hint">
        {done === "ok" ? t("trust.copied") : done === "failed" ? t("trust.copyFailed") : ""}
      </span>
    </>
  );
}
