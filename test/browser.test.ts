/**
 * The example page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
 * every score the page shows equals onnxruntime-node's within 1e-5, and a file that is not an mtl
 * model gets a clear message on the page. Skips, saying why, when Chromium is not installed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { encodeCandidates } from "../src/features/encode.js";
import { Scorer } from "../src/scoring/scorer.js";
import { Graph, ops, encodeGraph } from "../src/index.js";
import { CONTEXT_KEYS, exportScoringModel, scoringRecords } from "./helpers/scoring.js";
import { openChromium, serveStatic, skipWithoutChromium } from "./helpers/browser.js";

const skip = skipWithoutChromium;
const root = fileURLToPath(new URL("../../", import.meta.url));

test("the example page ranks candidates with the same scores as onnxruntime-node (1e-5), and names a file that is not an mtl model", { skip, timeout: 240_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), "mtl-browser-"));
  const site = join(work, "site");
  let server: Server | null = null;
  let context: import("playwright-core").BrowserContext | null = null;
  try {
    const { build } = await import("vite");
    await build({ configFile: join(root, "examples", "web", "vite.config.mjs"), logLevel: "warn", build: { outDir: site, emptyOutDir: true } });
    const model = exportScoringModel(site, "model.onnx").file;
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

    server = await serveStatic(site);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const opened = await openChromium(work, 60_000);
    context = opened.context;
    const { page, pageErrors } = opened;
    await page.goto(`${url}/?model=model.onnx`);
    await page.waitForSelector("body[data-state=ready], body[data-state=error]");
    assert.equal(await page.getAttribute("body", "data-state"), "ready", await page.textContent("#error") ?? "");
    await page.fill("#context", JSON.stringify(ctx));
    await page.fill("#candidates", JSON.stringify(candidates));
    await page.click("#rank");
    await page.waitForSelector("body[data-state=ranked], body[data-state=error]");
    assert.equal(await page.getAttribute("body", "data-state"), "ranked", await page.textContent("#error") ?? "");
    // (These callbacks run in the page; this file is compiled without the DOM library, hence the casts.)
    const rows = await page.$$eval("#results tbody tr", (trs) => trs.map((tr) => {
      const d = (tr as unknown as { dataset: Record<string, string> }).dataset;
      return { index: Number(d["index"]), p_ctr: Number(d["pCtr"]), p_cvr: Number(d["pCvr"]), p_ctcvr: Number(d["pCtcvr"]) };
    }));
    assert.equal(rows.length, candidates.length);
    assert.deepEqual(rows.map((r) => r.index).sort((a, b) => a - b), candidates.map((_, i) => i));
    for (const r of rows) {
      for (const p of ["p_ctr", "p_cvr", "p_ctcvr"] as const) {
        assert.ok(Math.abs(r[p] - want[p][r.index]!) <= 1e-5, `candidate ${r.index} ${p}: browser ${r[p]}, node ${want[p][r.index]}`);
      }
    }
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1]!.p_ctcvr >= rows[i]!.p_ctcvr, "ranked by pCTCVR");

    await page.setInputFiles("#model-file", join(work, "plain.onnx"));
    await page.waitForSelector("body[data-state=error]");
    assert.match(await page.textContent("#error") ?? "", /plain\.onnx: not an mtl scoring model: it has no mtl metadata/);
    await page.setInputFiles("#model-file", join(work, "notes.onnx"));
    await page.waitForFunction(() => /notes\.onnx/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById("error")?.textContent ?? ""));
    assert.match(await page.textContent("#error") ?? "", /notes\.onnx: not an ONNX model/);
    assert.deepEqual(pageErrors, []);
  } finally {
    await context?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    rmSync(work, { recursive: true, force: true });
  }
});
