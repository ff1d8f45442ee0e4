/**
 * On-device adaptation in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
 * the page of examples/adapt loads the bundle `mtl export` writes for a meta-trained MetaHeac run,
 * fine-tunes it on the fixture campaign's seed rows with onnxruntime-web and scores the candidates;
 * every score equals `mtl adapt`'s (onnxruntime-node) within 1e-4. Skips, saying why, without Chromium.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { adaptCampaign } from "../src/flow/adapt.js";
import { REPO_ROOT } from "./helpers/data.js";
import { openChromium, serveStatic, skipWithoutChromium } from "./helpers/browser.js";

const skip = skipWithoutChromium;
const FIX = join(REPO_ROOT, "fixtures", "lookalike");

test("a meta-trained MetaHeac bundle adapts in the browser to the same scores as mtl adapt in Node (1e-4)", { skip, timeout: 300_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), "mtl-browser-adapt-"));
  const site = join(work, "site");
  let server: Server | null = null;
  let context: import("playwright-core").BrowserContext | null = null;
  try {
    const bin = join(REPO_ROOT, "bin", "mtl.js");
    const run = join(work, "run");
    const train = spawnSync(process.execPath, [bin, "train", "--config", join(FIX, "config.yaml"), "--train", join(FIX, "train.jsonl"), "--out", run], { encoding: "utf8" });
    assert.equal(train.status, 0, train.stderr);
    const { build } = await import("vite");
    await build({ configFile: join(REPO_ROOT, "examples", "adapt", "vite.config.mjs"), logLevel: "warn", build: { outDir: site, emptyOutDir: true } });
    const exported = spawnSync(process.execPath, [bin, "export", "--checkpoint", run, "--out", join(site, "bundle")], { encoding: "utf8" });
    assert.equal(exported.status, 0, exported.stderr);
    for (const f of ["seeds.jsonl", "candidates.jsonl"]) copyFileSync(join(FIX, f), join(site, f));

    const want = await adaptCampaign({ model: join(site, "bundle"), seeds: join(FIX, "seeds.jsonl"), candidates: join(FIX, "candidates.jsonl"), output: join(work, "node.csv") });

    server = await serveStatic(site);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const opened = await openChromium(work, 120_000);
    context = opened.context;
    const { page, pageErrors } = opened;
    await page.goto(`${url}/?bundle=bundle/&seeds=seeds.jsonl&candidates=candidates.jsonl`);
    await page.waitForSelector("body[data-state=adapted], body[data-state=error]");
    assert.equal(await page.getAttribute("body", "data-state"), "adapted", await page.textContent("#error") ?? "");
    const got = JSON.parse(await page.textContent("#result") ?? "{}") as { scores: number[]; epochLosses: number[]; adaptMs: number };
    assert.equal(got.scores.length, want.scores.length);
    let worst = 0;
    got.scores.forEach((s, i) => {
      worst = Math.max(worst, Math.abs(s - want.scores[i]!));
      assert.ok(Math.abs(s - want.scores[i]!) <= 1e-4, `candidate ${i}: browser ${s}, node ${want.scores[i]}`);
    });
    got.epochLosses.forEach((l, e) => assert.ok(Math.abs(l - want.epochLosses[e]!) <= 1e-4, `epoch ${e + 1} loss: browser ${l}, node ${want.epochLosses[e]}`));
    // The adaptation must have moved the scores, or the comparison proves nothing about fine-tuning.
    const before = await adaptCampaign({ model: join(site, "bundle"), seeds: join(FIX, "seeds.jsonl"), candidates: join(FIX, "candidates.jsonl"), output: join(work, "lr0.csv"), lr: 1e-12 });
    assert.ok(want.scores.some((s, i) => Math.abs(s - before.scores[i]!) > 1e-3), "adaptation changed no score by more than 1e-3");
    t.diagnostic(`max |browser - node| = ${worst.toExponential(2)}; browser adaptation ${got.adaptMs.toFixed(0)} ms, node ${(want.adaptSeconds * 1000).toFixed(0)} ms (40 seeds)`);
    assert.deepEqual(pageErrors, []);
  } finally {
    await context?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    rmSync(work, { recursive: true, force: true });
  }
});
