// Turns a message body into the srcdoc of the reader's sandboxed iframe.
//
// Layers, each enough on its own against scripts:
//  1. DOMPurify (no script, no event handler, no javascript: URL, no iframe/object/embed);
//  2. the iframe's sandbox has no allow-scripts;
//  3. the app's own CSP (script-src 'self'), which the srcdoc document inherits.
// Remote content: a CSP <meta> first in the document allows images only from data:, blob:
// and cid: unless the user allowed remote images for this message or sender.
//
// The inherited CSP (style-src 'self') also refuses the mail's inline styles, so they are
// taken out here (style attributes → data-mk-style, <style> texts collected) and applied by
// the reader through the CSSOM after load (which CSP does not govern); the <meta> still
// keeps CSS from loading remote images or fonts.
import DOMPurify from "dompurify";

export interface Prepared {
  html: string; // the srcdoc
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
    body = DOMPurify.sanitize(disarmStyles(bodyHtml), {
      FORCE_BODY: true,
      FORBID_TAGS: ["style", "form", "input", "button", "select", "textarea", "base", "link", "meta", "title"],
      FORBID_ATTR: ["srcdoc", "formaction", "action"],
      ADD_ATTR: ["target"],
      ALLOW_UNKNOWN_PROTOCOLS: false,
    }) as string;
  } finally {
    DOMPurify.removeAllHooks();
  }
  const html =
    "<!doctype html><html><head>" +
    `<meta http-equiv="Content-Security-Policy" content="${frameCsp(allowRemote)}">` +
    '<meta charset="utf-8"><meta name="referrer" content="no-referrer"><base target="_blank">' +
    "</head><body>" +
    body +
    "</body></html>";
  return { html, css, remote, cids };
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
