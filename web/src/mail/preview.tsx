// PDF attachments shown in place: a dialog framing the server's preview route
// (GET /jmap/preview/{accountId}/{blobId}/{name}, src/daemon/daemon-blob.c),
// which serves a blob only when its bytes start with "%PDF-", with a CSP
// sandbox and frame-ancestors 'self'. The browser's own PDF viewer renders
// it; the frame has NO sandbox attribute on purpose: Chromium refuses to run
// its viewer in a frame with one (any flags), while the response's own CSP
// sandbox gives the document an opaque origin without stopping the viewer.
import { useEffect, useRef } from "preact/hooks";
import { register, t } from "../i18n";
import * as jmap from "../jmap";
import "./preview.css";

register("en", {
  "preview.button": "Preview",
  "preview.buttonLabel": "Preview {name}",
  "preview.title": "Preview of {name}",
  "preview.frameTitle": "PDF: {name}",
  "preview.newTab": "Open in new tab",
  "preview.download": "Download",
  "preview.close": "Close",
});
register("de", {
  "preview.button": "Vorschau",
  "preview.buttonLabel": "Vorschau von {name}",
  "preview.title": "Vorschau von {name}",
  "preview.frameTitle": "PDF: {name}",
  "preview.newTab": "In neuem Tab öffnen",
  "preview.download": "Herunterladen",
  "preview.close": "Schließen",
});

/** Whether an attachment may be a PDF worth a Preview button. The server
 * decides for real (it sniffs the bytes); this only avoids offering the
 * button on what is plainly something else. */
export function maybePdf(type: string, name: string | null): boolean {
  const ty = (type || "").toLowerCase();
  if (ty === "application/pdf" || ty === "application/x-pdf") return true;
  const generic = ty === "" || ty === "application/octet-stream" || ty === "binary/octet-stream";
  return generic && /\.pdf$/i.test(name || "");
}

/** The preview route of a blob: the session's download URL with the route
 * swapped (so a hub served under a path prefix keeps it) and no query. */
export function previewUrl(accountId: string, blobId: string, name: string): string {
  const dl = jmap.downloadUrl(accountId, blobId, name || "document.pdf", "application/pdf");
  const path = dl.split("?")[0];
  const i = path.lastIndexOf("/jmap/download/");
  if (i < 0) return "/jmap/preview/" + [accountId, blobId, name || "document.pdf"].map(encodeURIComponent).join("/");
  return path.slice(0, i) + "/jmap/preview/" + path.slice(i + "/jmap/download/".length);
}

/** The viewer: a modal native <dialog> (focus moves in; Escape and Close
 * close it, and focus goes back to the button that opened it). */
export function PdfViewer(props: { url: string; name: string; downloadUrl: string; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const closeRef = useRef<HTMLButtonElement>(null);
  const titleId = "pdf-preview-title";
  useEffect(() => {
    const d = ref.current;
    const before = document.activeElement as HTMLElement | null;
    if (d && !d.open) {
      if (typeof d.showModal === "function") d.showModal();
      else d.setAttribute("open", "");
    }
    closeRef.current?.focus();
    return () => {
      // Closed before it leaves the document (removing an open modal dialog
      // leaves focus nowhere), then focus goes back, also once the removal
      // is done.
      if (d && d.open) d.close();
      const back = () => {
        if (before && before.isConnected && document.activeElement !== before) before.focus();
      };
      back();
      setTimeout(back, 0);
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class="pdf-viewer"
      aria-labelledby={titleId}
      data-testid="pdf-viewer"
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
    >
      <div class="pdf-viewer-bar">
        <h2 id={titleId} class="pdf-viewer-title">
          {t("preview.title", { name: props.name })}
        </h2>
        <a href={props.url} target="_blank" rel="noopener noreferrer" data-testid="pdf-open-tab">
          {t("preview.newTab")}
        </a>
        <a href={props.downloadUrl} download={props.name} data-testid="pdf-download">
          {t("preview.download")}
        </a>
        <button type="button" ref={closeRef} onClick={props.onClose} data-testid="pdf-close">
          {t("preview.close")}
        </button>
      </div>
      <iframe
        class="pdf-viewer-frame"
        src={props.url}
        title={t("preview.frameTitle", { name: props.name })}
        referrerpolicy="no-referrer"
        data-testid="pdf-frame"
      />
    </dialog>
  );
}
