// Bundles the dashboard (src/ → static/) with esbuild, offline: chart.js comes from node_modules.
// Run with `npm run build:dashboard`; `make setup` runs it when a source file changes.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const out = join(here, "static");

await rm(out, { recursive: true, force: true });
await mkdir(join(out, "assets"), { recursive: true });
await build({
  entryPoints: { dashboard: join(src, "main.js"), styles: join(src, "styles.css") },
  outdir: join(out, "assets"),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2020"],
  logLevel: "warning",
  legalComments: "linked",
});
await copyFile(join(src, "index.html"), join(out, "index.html"));
console.log(`dashboard built into ${out}`);
