// Builds the web app: node web/build.mjs OUTDIR
// Output: OUTDIR/index.html, OUTDIR/app-[hash].js, OUTDIR/app-[hash].css (served as
// /assets/<name> by `mailkeep serve`; index.html refers to them relatively).
import * as esbuild from "esbuild";
import { mkdirSync, readFileSync, writeFileSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, "..", "build", "web"));
mkdirSync(out, { recursive: true });
// Only our own outputs are removed: index.html and earlier app-*.js/css.
for (const f of readdirSync(out)) {
  if (f === "index.html" || /^app-[A-Za-z0-9]+\.(js|css)(\.map)?$/.test(f)) rmSync(join(out, f));
}

const result = await esbuild.build({
  entryPoints: { app: join(here, "src", "main.tsx") },
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  outdir: out,
  entryNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  jsx: "automatic",
  jsxImportSource: "preact",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});

const files = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = files.find((f) => f.endsWith(".js"));
const css = files.find((f) => f.endsWith(".css"));
if (!js || !css) throw new Error("build: expected one .js and one .css output, got " + files.join(", "));
const html = readFileSync(join(here, "src", "index.html"), "utf8")
  .replace("%CSS%", "assets/" + css)
  .replace("%JS%", "assets/" + js);
writeFileSync(join(out, "index.html"), html);

let total = 0;
for (const f of [js, css, "index.html"]) {
  const bytes = readFileSync(join(out, f));
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  console.log(`${f.padEnd(24)} ${String(bytes.length).padStart(8)} B  ${String(gz).padStart(7)} B gzip`);
}
console.log(`${"total".padEnd(24)} ${"".padStart(8)}    ${String(total).padStart(7)} B gzip`);
