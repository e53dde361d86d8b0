// Turns a message body into what the reader writes into its sandboxed iframe.
//
// The reader's frame has no src: its document is the frame's initial about:blank one, made
// at once when the frame is inserted (no navigation, no srcdoc document to parse and load,
// which cost a message open ~100 ms). The reader writes into it (writeFrame): first the
// head (the CSP <meta>, the referrer policy, <base target=_blank>), then the sanitised body.
//
// Layers, each enough on its own against scripts:
//  1. DOMPurify (no script, no event handler, no javascript: URL, no iframe/object/embed);
//  2. the iframe's sandbox has no allow-scripts (set before the frame is inserted, so its
//     document is made without scripting; allow-same-origin lets the app write into it);
//  3. the app's own CSP (script-src 'self'), which the frame's about:blank document inherits.
// Remote content: a CSP <meta> in the frame's head, written before any of the mail, allows
// images only from data:, blob: and cid: unless the user allowed remote images for this
// message or sender. A document's CSP can only tighten, so allowing images makes a new frame.
//
// The inherited CSP (style-src 'self') also refuses the mail's inline styles, so they are
// taken out here (style attributes → data-mk-style, <style> texts collected) and applied by
// the reader through the CSSOM after load (which CSP does not govern); the <meta> still
// keeps CSS from loading remote images or fonts.
import DOMPurify from "dompurify";

export interface Prepared {
  body: string; // the sanitised body (the frame's <body> innerHTML)
  allowRemote: boolean; // the CSP the frame's head must have (frameCsp)
  css: string; // the mail's <style> texts, applied through a constructed stylesheet
  remote: boolean; // the mail refers to remote images (shown when allowed)
  cids: string[]; // Content-IDs the mail shows inline (img src="cid:...")
}

const REMOTE = /^\s*(https?:)?\/\//i;
const CSS_REMOTE = /url\(\s*['"]?\s*(https?:)?\/\//i;
const CSS_REMOTE_ALL = /url\(\s*(['"]?)\s*(https?:)?\/\/[^)]*\)/gi;

// While remote images are blocked they are not even asked for (the CSP would refuse them
// anyway, with a console report each): CSS url()s become none, img src moves aside.
function unlinkCss(css: string, allowRemote: boolean): string {
  return allowRemote ? css : css.replace(CSS_REMOTE_ALL, "none");
}

export function frameCsp(allowRemote: boolean): string {
  return (
    "default-src 'none'; img-src data: blob: cid:" +
    (allowRemote ? " https: http:" : "") +
    "; style-src 'unsafe-inline'"
  );
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
}

/** Plain text as HTML: escaped, URLs made links, quoted lines marked. */
export function textToHtml(text: string): string {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const out = lines.map((line) => {
    const esc = escapeHtml(line).replace(
      /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g,
      (u) => `<a href="${u}">${u}</a>`,
    );
    return /^\s*&#62;/.test(esc) ? `<span class="mk-quote">${esc}</span>` : esc;
  });
  return `<div class="mk-plain">${out.join("\n")}</div>`;
}

// Any HTML parsed in the app's window (DOMParser, <template>) falls under the app's CSP, and
// Chromium reports each inline style it refuses as a console error: style elements and
// attributes are renamed in the source first (DOMPurify then works on mk-style elements and
// data-mk-style attributes; the renaming is no security boundary, DOMPurify is).
function disarmStyles(html: string): string {
  return html
    .replace(/<(\/?)style\b/gi, "<$1mk-style")
    .replace(/(<[a-z][^>]*?\s)style(\s*=)/gi, "$1data-mk-style$2");
}

const CONFIG = {
  FORCE_BODY: true,
  FORBID_TAGS: ["style", "form", "input", "button", "select", "textarea", "base", "link", "meta", "title"],
  FORBID_ATTR: ["srcdoc", "formaction", "action"],
  ADD_ATTR: ["target"],
  ALLOW_UNKNOWN_PROTOCOLS: false,
};
let configured = false;

export function prepare(bodyHtml: string, allowRemote: boolean, cidUrls: Record<string, string>): Prepared {
  let remote = false;
  let css = "";
  const cids: string[] = [];
  const own = location.origin;
  DOMPurify.addHook("uponSanitizeElement", (node, data) => {
    if (data.tagName === "style" || data.tagName === "mk-style") {
      const text = node.textContent || "";
      if (CSS_REMOTE.test(text)) remote = true;
      // @import cannot be in a constructed stylesheet (and would load from afar).
      css += unlinkCss(text.replace(/@import[^;]*;?/gi, ""), allowRemote) + "\n";
      node.textContent = "";
    }
  });
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    const el = node as Element;
    if (!el.getAttribute) return;
    const style = el.getAttribute("style");
    if (style !== null) {
      el.removeAttribute("style");
      el.setAttribute("data-mk-style", style);
    }
    const mkStyle = el.getAttribute("data-mk-style");
    if (mkStyle !== null && CSS_REMOTE.test(mkStyle)) {
      remote = true;
      el.setAttribute("data-mk-style", unlinkCss(mkStyle, allowRemote));
    }
    const bg = el.getAttribute("background");
    if (bg !== null) {
      if (REMOTE.test(bg)) {
        remote = true;
        if (!allowRemote) el.removeAttribute("background");
      } else el.removeAttribute("background");
    }
    el.removeAttribute("ping");
    const tag = el.tagName;
    if (tag === "A" || tag === "AREA") {
      const href = el.getAttribute("href");
      if (href !== null) {
        let target: URL | null = null;
        try {
          target = new URL(href, own + "/");
        } catch {
          /* not a URL */
        }
        // A link into the hub itself would run with the user's cookie: not followed.
        if (!target || target.origin === own || !/^(https?|mailto):$/.test(target.protocol)) el.removeAttribute("href");
        else {
          el.setAttribute("target", "_blank");
          el.setAttribute("rel", "noopener noreferrer");
        }
      }
    }
    if (tag !== "IMG" && tag !== "A" && tag !== "AREA") {
      // video/audio/source/svg image...: a remote reference counts as a remote image.
      for (const name of ["src", "poster", "href", "xlink:href"]) {
        const v = el.getAttribute(name);
        if (v !== null && REMOTE.test(v)) {
          remote = true;
          if (!allowRemote) el.removeAttribute(name);
        }
      }
    }
    if (tag === "IMG") {
      const src = el.getAttribute("src") || "";
      if (/^cid:/i.test(src)) {
        const cid = decodeURIComponent(src.slice(4)).replace(/^<|>$/g, "");
        cids.push(cid);
        if (cidUrls[cid]) el.setAttribute("src", cidUrls[cid]);
        else el.setAttribute("data-mk-cid", cid);
      } else if (REMOTE.test(src)) {
        remote = true;
        if (!allowRemote) {
          el.removeAttribute("src");
          el.setAttribute("data-mk-src", src);
        }
      } else if (!/^(data|blob):/i.test(src)) el.removeAttribute("src");
      const set = el.getAttribute("srcset");
      if (set !== null && REMOTE.test(set)) {
        remote = true;
        if (!allowRemote) el.removeAttribute("srcset");
      }
      el.setAttribute("loading", "lazy");
    }
  });
  let body: string;
  try {
    // The configuration is set once (DOMPurify parses a configuration given to each call).
    if (!configured) {
      DOMPurify.setConfig(CONFIG);
      configured = true;
    }
    body = DOMPurify.sanitize(disarmStyles(bodyHtml)) as string;
  } finally {
    DOMPurify.removeAllHooks();
  }
  return { body, allowRemote, css, remote, cids };
}

// The frames written so far: the CSP each document was given, its stylesheet, its
// ResizeObserver (one per document, the frame follows its content's height).
interface FrameState {
  doc: Document;
  allowRemote: boolean;
  sheet: CSSStyleSheet | null;
}
const frames = new WeakMap<HTMLIFrameElement, FrameState>();

/**
 * Shows a prepared message in the reader's frame (an <iframe sandbox> without src, in the
 * document). The frame's document gets its head once (CSP before anything else); a frame
 * whose document has a looser CSP than this message needs is refused (the caller makes a
 * new frame when remote images are allowed). Returns false when nothing was written.
 */
export function writeFrame(f: HTMLIFrameElement, p: Prepared, css: string, id: string): boolean {
  const doc = f.contentDocument;
  const win = f.contentWindow as (Window & typeof globalThis) | null;
  if (!doc || !win || !doc.head || !doc.body) return false;
  let st = frames.get(f);
  if (!st || st.doc !== doc) {
    // A fresh document: its head first (the CSP applies from its insertion on).
    const meta = doc.createElement("meta");
    meta.httpEquiv = "Content-Security-Policy";
    meta.content = frameCsp(p.allowRemote);
    doc.head.appendChild(meta);
    const ref = doc.createElement("meta");
    ref.name = "referrer";
    ref.content = "no-referrer";
    doc.head.appendChild(ref);
    const base = doc.createElement("base");
    base.target = "_blank";
    doc.head.appendChild(base);
    st = { doc, allowRemote: p.allowRemote, sheet: null };
    frames.set(f, st);
    const fit = () => {
      const h = Math.max(80, doc.documentElement.scrollHeight) + "px";
      if (f.style.height !== h) f.style.height = h;
    };
    if (typeof win.ResizeObserver === "function") new win.ResizeObserver(fit).observe(doc.documentElement);
    else if (typeof ResizeObserver === "function") new ResizeObserver(fit).observe(doc.documentElement);
  } else if (st.allowRemote && !p.allowRemote) {
    // Never another message under this one's CSP, nor the last one left showing.
    doc.body.textContent = "";
    f.removeAttribute("data-email-id");
    return false;
  }
  try {
    if (!st.sheet) st.sheet = new win.CSSStyleSheet();
    st.sheet.replaceSync(css);
    doc.adoptedStyleSheets = [st.sheet];
  } catch {
    /* CSS the browser refuses: the mail is shown without it */
  }
  doc.body.innerHTML = p.body;
  doc.querySelectorAll<HTMLElement>("[data-mk-style]").forEach((el) => {
    el.style.cssText = el.getAttribute("data-mk-style") || "";
    el.removeAttribute("data-mk-style");
  });
  // Its height at once (the observer follows later changes: images, fonts).
  f.style.height = Math.max(80, doc.documentElement.scrollHeight) + "px";
  f.setAttribute("data-email-id", id);
  return true;
}

// The reader's own look inside the frame (applied with the mail's CSS, before it).
export function baseCss(dark: boolean, plain: boolean): string {
  const fg = dark && plain ? "#e6e6e6" : "#1b1b1b";
  const bg = dark && plain ? "#1d1f23" : "#ffffff";
  const link = dark && plain ? "#8ab4ff" : "#0b57d0";
  return `html{color-scheme:${dark && plain ? "dark" : "light"}}
body{margin:0;padding:12px 16px;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:${fg};background:${bg};overflow-wrap:anywhere;word-break:break-word}
a{color:${link}}
img{max-width:100%;height:auto}
table{max-width:100%}
pre{white-space:pre-wrap}
.mk-plain{white-space:pre-wrap;font:inherit}
.mk-quote{color:${dark && plain ? "#a9b1bd" : "#5f6368"}}
blockquote{margin:0 0 0 .5em;padding-left:.8em;border-left:3px solid #c7ccd1}`;
}
