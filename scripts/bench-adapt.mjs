#!/usr/bin/env node
/**
 * Adaptation speed: MetaHeac's stage 2 on a 1,000-row seed list in Node (mtl adapt's code on
 * onnxruntime-node) and in headless Chromium (the same code on onnxruntime-web, wasm, 1 thread),
 * alternating, with PaddleRec's defaults (embed_dim 64, the built-in look-alike schema, 2 epochs of
 * Adam in batches of 32). Also meta-training outer steps/s of the run it adapts. Build first.
 *
 *   node scripts/bench-adapt.mjs [--seeds 1000] [--rounds 3]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { adaptCampaign } from "../dist/src/flow/adapt.js";

const { values } = parseArgs({ options: { seeds: { type: "string", default: "1000" }, rounds: { type: "string", default: "3" }, chromium: { type: "string", default: "/usr/bin/chromium" } } });
const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin", "mtl.js");
const work = mkdtempSync(join(tmpdir(), "mtl-bench-adapt-"));
const mtl = (...args) => {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mtl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
try {
  mtl("data", "synth", "--kind", "lookalike", "--out", join(work, "world"), "--campaigns", "40", "--scale", "0.01", "--seed", "1");
  mtl("train", "--model", "metaheac", "--train", join(work, "world", "train_stage1.jsonl"), "--out", join(work, "run"));
  const summary = JSON.parse(readFileSync(join(work, "run", "summary.json"), "utf8"));
  mtl("export", "--checkpoint", join(work, "run"), "--out", join(work, "site", "bundle"));
  const rows = readFileSync(join(work, "world", "train_stage1.jsonl"), "utf8").trim().split("\n");
  const n = Number(values.seeds);
  const seeds = Array.from({ length: n }, (_, i) => rows[i % rows.length]).join("\n") + "\n";
  writeFileSync(join(work, "site", "seeds.jsonl"), seeds);
  writeFileSync(join(work, "site", "candidates.jsonl"), rows.slice(0, 1000).join("\n") + "\n");
  const { build } = await import("vite");
  await build({ configFile: join(root, "examples", "adapt", "vite.config.mjs"), logLevel: "warn", build: { outDir: join(work, "site"), emptyOutDir: false } });
  const site = join(work, "site");
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0])).replace(/^(\.\.[/\\])+/, "");
    const file = join(site, path.endsWith("/") ? `${path}index.html` : path);
    if (!file.startsWith(site) || !existsSync(file)) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" }[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { chromium } = await import("playwright-core");
  const context = await chromium.launchPersistentContext(join(work, "profile"), { executablePath: values.chromium, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(600_000);
  const nodeMs = [], webMs = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const a = await adaptCampaign({ model: join(site, "bundle"), seeds: join(site, "seeds.jsonl"), candidates: join(site, "candidates.jsonl"), output: join(work, "node.csv") });
    nodeMs.push(a.adaptSeconds * 1000);
    await page.goto(`http://127.0.0.1:${server.address().port}/?bundle=bundle/&seeds=seeds.jsonl&candidates=candidates.jsonl`);
    await page.waitForSelector("body[data-state=adapted], body[data-state=error]");
    const got = JSON.parse((await page.textContent("#result")) || "{}");
    if (!got.adaptMs) throw new Error(await page.textContent("#error"));
    webMs.push(got.adaptMs);
    process.stderr.write(`round ${r + 1}: node ${nodeMs.at(-1).toFixed(0)} ms, chromium ${webMs.at(-1).toFixed(0)} ms\n`);
  }
  await context.close();
  server.close();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ratios = webMs.map((w, i) => w / nodeMs[i]);
  process.stdout.write([
    `adaptation on ${n} seed rows (2 epochs, ${Math.ceil(n / 32) * 2} Adam steps of 32, dim 64, built-in look-alike schema):`,
    `  node     median ${median(nodeMs).toFixed(0)} ms  (${nodeMs.map((x) => x.toFixed(0)).join(", ")})`,
    `  chromium median ${median(webMs).toFixed(0)} ms  (${webMs.map((x) => x.toFixed(0)).join(", ")}; wasm, 1 thread)`,
    `  chromium / node, per round: ${ratios.map((x) => x.toFixed(2)).join(", ")}`,
    `meta-training of that run: ${summary.outerStepsPerSecond.toFixed(2)} outer steps/s (T = 5, support and query batches of 32, ${summary.steps} steps)`,
  ].join("\n") + "\n");
} finally {
  rmSync(work, { recursive: true, force: true });
}
