/** The training workflow: a run directory, exact resume, NaN stop, early stopping, eval. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultRunConfig, type RunConfig } from "../src/train/config.js";
import { trainRun } from "../src/train/run.js";
import { TEST_MODELS } from "./helpers/tiny_model.js";

export const SYNTH = "synth:rows=3000,seed=3,users=300,items=400";

export function tinyConfig(over: Partial<RunConfig["training"]> = {}, model = "tiny"): RunConfig {
  const c = defaultRunConfig();
  c.model = model;
  c.data.train = SYNTH;
  c.training = { ...c.training, batchSize: 128, epochs: 2, lr: 0.01, checkpointEvery: 7, logEvery: 5, validFraction: 0.2, ...over };
  return c;
}

test("trainRun writes the run directory", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-run-"));
  try {
    const t0 = Date.now();
    const summary = await trainRun({ config: tinyConfig(), out: dir, models: TEST_MODELS });
    console.log("took", Date.now() - t0, "ms", JSON.stringify(summary.best?.metrics));
    for (const f of ["run.json", "checkpoint.mtlstate", "progress.json", "best.mtlstate", "metrics.jsonl", "summary.json", "curves.json"]) assert.ok(existsSync(join(dir, f)), f);
    const lines = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.type === "step"));
    assert.equal(lines.filter((l) => l.type === "epoch").length, 2);
    assert.equal(summary.epochs, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
