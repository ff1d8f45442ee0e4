/**
 * The example page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
 * every score the page shows equals onnxruntime-node's within 1e-5, on wasm and on WebGPU (Chromium's
 * SwiftShader adapter where there is no GPU), and a file that is not an mtl model gets a clear message
 * on the page. Skips, saying why, when Chromium is not installed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { encodeCandidates } from "../src/features/encode.js";
import { Scorer } from "../src/scoring/scorer.js";
import type { Scores } from "../src/models/feeds.js";
import { Graph, ops, encodeGraph } from "../src/index.js";
import { CONTEXT_KEYS, exportScoringModel, scoringRecords } from "./helpers/scoring.js";

const CHROMIUM = process.env["MTL_CHROMIUM"] ?? "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (.ci/run installs it with apt-get install chromium; or set MTL_CHROMIUM)`;
const root = fileURLToPath(new URL("../../", import.meta.url));
const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream", ".css": "text/css" };

function serveStatic(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0]!)).replace(/^(\.\.[/\\])+/, "");
    const file = join(dir, path.endsWith("/") ? `${path}index.html` : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** The built example page, an mtl model and two files that are not mtl models, served once for every test here. */
interface Site {
  work: string;
  url: string;
  server: Server;
  ctx: Record<string, unknown>;
  candidates: Record<string, unknown>[];
  want: Scores;
}

let site: Promise<Site> | null = null;
function buildSite(): Promise<Site> {
  site ??= (async () => {
    const work = mkdtempSync(join(tmpdir(), "mtl-browser-"));
    const dir = join(work, "site");
    const { build } = await import("vite");
    await build({ configFile: join(root, "examples", "web", "vite.config.mjs"), logLevel: "warn", build: { outDir: dir, emptyOutDir: true } });
    const model = exportScoringModel(dir, "model.onnx").file;
    const g = new Graph({ name: "plain" });
    g.output(ops.Relu(g.input("x", "float32", [2])), "y");
    writeFileSync(join(work, "plain.onnx"), encodeGraph(g));
    writeFileSync(join(work, "notes.onnx"), "these are my notes, not a model\n");
    const records = scoringRecords(48, 31);
    const ctx = Object.fromEntries(CONTEXT_KEYS.map((k) => [k, records[0]![k]]));
    const candidates = records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !CONTEXT_KEYS.includes(k))));
    const node = await Scorer.open(model, { worker: false });
    const want = await node.score(encodeCandidates(node.info.layout, ctx as never, candidates as never));
    await node.release();
    const server = await serveStatic(dir);
    return { work, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, ctx, candidates, want };
  })();
  return site;
}

test.after(async () => {
  if (!site) return;
  const s = await site;
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
  rmSync(s.work, { recursive: true, force: true });
});

const BASE_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

async function launch(s: Site, name: string, args: string[]): Promise<import("playwright-core").BrowserContext> {
  const { chromium } = await import("playwright-core");
  return chromium.launchPersistentContext(join(s.work, `profile-${name}`), { executablePath: CHROMIUM, headless: true, timeout: 60_000, args: [...BASE_ARGS, ...args] });
}

/** Loads the page on `device`, ranks the candidates, checks every score against onnxruntime-node's within 1e-5. */
async function rankOnPage(s: Site, page: import("playwright-core").Page, device: "wasm" | "webgpu"): Promise<void> {
  await page.goto(`${s.url}/?model=model.onnx&device=${device}`);
  await page.waitForSelector("body[data-state=ready], body[data-state=error]");
  assert.equal(await page.getAttribute("body", "data-state"), "ready", await page.textContent("#error") ?? "");
  assert.match(await page.textContent("#model-info") ?? "", new RegExp(` on ${device} `), "the scorer runs on the device asked for");
  await page.fill("#context", JSON.stringify(s.ctx));
  await page.fill("#candidates", JSON.stringify(s.candidates));
  await page.click("#rank");
  await page.waitForSelector("body[data-state=ranked], body[data-state=error]");
  assert.equal(await page.getAttribute("body", "data-state"), "ranked", await page.textContent("#error") ?? "");
  // (These callbacks run in the page; this file is compiled without the DOM library, hence the casts.)
  const rows = await page.$$eval("#results tbody tr", (trs) => trs.map((tr) => {
    const d = (tr as unknown as { dataset: Record<string, string> }).dataset;
    return { index: Number(d["index"]), p_ctr: Number(d["pCtr"]), p_cvr: Number(d["pCvr"]), p_ctcvr: Number(d["pCtcvr"]) };
  }));
  assert.equal(rows.length, s.candidates.length);
  assert.deepEqual(rows.map((r) => r.index).sort((a, b) => a - b), s.candidates.map((_, i) => i));
  for (const r of rows) {
    for (const p of ["p_ctr", "p_cvr", "p_ctcvr"] as const) {
      assert.ok(Math.abs(r[p] - s.want[p][r.index]!) <= 1e-5, `${device} candidate ${r.index} ${p}: browser ${r[p]}, node ${s.want[p][r.index]}`);
    }
  }
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1]!.p_ctcvr >= rows[i]!.p_ctcvr, "ranked by pCTCVR");
}

test("the example page ranks candidates with the same scores as onnxruntime-node (1e-5), and names a file that is not an mtl model", { skip, timeout: 240_000 }, async () => {
  const s = await buildSite();
  const context = await launch(s, "wasm", ["--disable-gpu"]);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(60_000);
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await rankOnPage(s, page, "wasm");

    await page.setInputFiles("#model-file", join(s.work, "plain.onnx"));
    await page.waitForSelector("body[data-state=error]");
    assert.match(await page.textContent("#error") ?? "", /plain\.onnx: not an mtl scoring model: it has no mtl metadata/);
    await page.setInputFiles("#model-file", join(s.work, "notes.onnx"));
    await page.waitForFunction(() => /notes\.onnx/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById("error")?.textContent ?? ""));
    assert.match(await page.textContent("#error") ?? "", /notes\.onnx: not an ONNX model/);
    assert.deepEqual(pageErrors, []);
  } finally {
    await context.close();
  }
});

// WebGPU in headless Chromium: without a GPU, its own software adapter (SwiftShader) runs the shaders.
// These flags let a headless, GPU-less Chromium offer it; a real GPU would be picked first.
const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--enable-unsafe-swiftshader"];

test("mtl/web with device \"webgpu\" in headless Chromium ranks with onnxruntime-node's scores (1e-5)", { skip, timeout: 240_000 }, async (t) => {
  const s = await buildSite();
  const context = await launch(s, "webgpu", WEBGPU_ARGS);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(120_000);
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${s.url}/`);
    const adapter = await page.evaluate(async () => {
      const gpu = (globalThis as unknown as { navigator: { gpu?: { requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string } } | null> } } }).navigator.gpu;
      if (!gpu) return null;
      const a = await gpu.requestAdapter();
      return a ? `${a.info?.vendor ?? "?"} ${a.info?.architecture ?? ""}`.trim() : null;
    });
    if (!adapter) {
      t.skip(`this Chromium offers no WebGPU adapter with ${WEBGPU_ARGS.join(" ")}`);
      return;
    }
    t.diagnostic(`WebGPU adapter: ${adapter}${/swiftshader/i.test(adapter) ? " (software)" : ""}`);
    await rankOnPage(s, page, "webgpu");
    assert.deepEqual(pageErrors, []);
  } finally {
    await context.close();
  }
});
