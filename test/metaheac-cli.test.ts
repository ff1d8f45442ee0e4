/**
 * MetaHeac end to end on fixtures/lookalike (a tiny world in PaddleRec's look-alike columns, made by
 * scripts/make-lookalike-fixture.mjs): PaddleRec's config keys, `mtl train` (stage 1), `mtl adapt`
 * from the run and from its exported bundle (the same scores), the sampler's draws; and the real
 * sample (../shared/data) through the built-in look-alike schema.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readRunConfig } from "../src/flow/config.js";
import { drawEpisode, groupCampaigns } from "../src/flow/meta-run.js";
import { REPO_ROOT, SHARED_DATA, tempDir } from "./helpers/data.js";

const FIX = join(REPO_ROOT, "fixtures", "lookalike");
const BIN = join(REPO_ROOT, "bin", "mtl.js");

function mtl(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function scores(file: string): number[] {
  return readFileSync(file, "utf8").trim().split("\n").slice(1).map((l) => Number(l.split(",").at(-1)));
}

test("PaddleRec's MetaHeac keys map onto the model, the schema and the training settings", () => {
  const c = readRunConfig(join(FIX, "config.yaml"));
  assert.equal(c.model, "metaheac");
  assert.deepEqual(c.modelConfig, { expertSizes: [8], gateHidden: 8, localLr: 0.0002, expertCount: 3, criticCount: 2, taskCount: 3, metaBatchSize: 8, adaptBatchSize: 8, adaptLr: 0.001, adaptEpochs: 2 });
  assert.equal(c.schemaOverrides.dim, 4);
  assert.deepEqual(c.schemaOverrides.maxIds, [3, 2, 9, 5, 7, 2, 1, 11, 9, 5, 13, 11, 9, 7, 7, 9, 4, 5, 6, 3]);
  assert.equal(c.training.lr, 0.001);
  assert.equal(c.optimizer.kind, "adam");
});

test("campaigns are drawn in proportion to their size, with replacement; a step's draw depends only on (seed, step)", () => {
  const aid = Int32Array.from([...new Array(90).fill(1), ...new Array(10).fill(2)]);
  const c = groupCampaigns(aid);
  let big = 0, n = 0;
  for (let s = 1; s <= 400; s++) for (const e of drawEpisode(c, 5, 4, 7, s)) {
    n++;
    if (e.campaign === 1) big++;
    for (const r of [...e.support, ...e.query]) assert.equal(aid[r], e.campaign, "rows come from their campaign");
    assert.equal(new Set(e.support).size, 4, "a support batch draws without replacement from a large enough campaign");
  }
  assert.ok(Math.abs(big / n - 0.9) < 0.03, `campaign 1 drawn ${big} of ${n} times`);
  assert.deepEqual(drawEpisode(c, 5, 4, 7, 3), drawEpisode(c, 5, 4, 7, 3));
  assert.notDeepEqual(drawEpisode(c, 5, 4, 7, 3), drawEpisode(c, 5, 4, 7, 4));
});

test("mtl train (stage 1) on the fixture, mtl adapt from the run and from its exported bundle: the same scores", { timeout: 120_000 }, () => {
  const dir = tempDir("mtl-metaheac-");
  const run = join(dir, "run");
  const t = mtl("train", "--config", join(FIX, "config.yaml"), "--train", join(FIX, "train.jsonl"), "--out", run);
  assert.equal(t.code, 0, t.err);
  const summary = JSON.parse(readFileSync(join(run, "summary.json"), "utf8")) as { steps: number; campaigns: number };
  assert.equal(summary.steps, Math.ceil(192 / 8), "an epoch is ceil(rows / batch_size) outer steps");
  assert.equal(summary.campaigns, 5);
  const a = mtl("adapt", run, "--seeds", join(FIX, "seeds.jsonl"), "--candidates", join(FIX, "candidates.jsonl"), "-o", join(dir, "a.csv"));
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /adapted .* on 40 seed rows: 2 epochs of Adam \(lr 0\.001, batch 8\)/);
  const fromRun = scores(join(dir, "a.csv"));
  assert.equal(fromRun.length, 30);
  assert.ok(fromRun.every((p) => p > 0 && p < 1));

  const e = mtl("export", "--checkpoint", run, "--out", join(dir, "bundle"));
  assert.equal(e.code, 0, e.err);
  for (const f of ["adapt.json", "adapt_step.onnx", "adapt_eval.onnx", "weights.bin", "inference.onnx"]) assert.ok(existsSync(join(dir, "bundle", f)), f);
  const b = mtl("adapt", join(dir, "bundle"), "--seeds", join(FIX, "seeds.jsonl"), "--candidates", join(FIX, "candidates.jsonl"), "-o", join(dir, "b.csv"));
  assert.equal(b.code, 0, b.err);
  assert.deepEqual(scores(join(dir, "b.csv")), fromRun);

  // Adaptation moves the scores: zero epochs is refused, more epochs change them.
  const c = mtl("adapt", run, "--seeds", join(FIX, "seeds.jsonl"), "--candidates", join(FIX, "candidates.jsonl"), "-o", join(dir, "c.csv"), "--epochs", "5");
  assert.equal(c.code, 0, c.err);
  assert.notDeepEqual(scores(join(dir, "c.csv")), fromRun);
  const bad = mtl("adapt", run, "--seeds", join(FIX, "seeds.jsonl"), "--candidates", join(FIX, "candidates.jsonl"), "-o", join(dir, "d.csv"), "--epochs", "0");
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--epochs must be a positive integer/);
});

const sample = join(SHARED_DATA, "lookalike-sample", "stage1.jsonl");
test("mtl train --model metaheac reads the real look-alike sample with the built-in schema", { skip: existsSync(sample) ? false : `no ${sample} (set MTL_SHARED_DATA)`, timeout: 240_000 }, () => {
  const dir = tempDir("mtl-metaheac-sample-");
  const t = mtl("train", "--model", "metaheac", "--train", sample, "--out", join(dir, "run"));
  assert.equal(t.code, 0, t.err);
  const summary = JSON.parse(readFileSync(join(dir, "run", "summary.json"), "utf8")) as { steps: number; campaigns: number; data: { trainRows: number } };
  assert.deepEqual([summary.data.trainRows, summary.campaigns, summary.steps], [586, 5, Math.ceil(586 / 32)]);
});
