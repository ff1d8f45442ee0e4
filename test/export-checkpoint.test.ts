/** mtl export --training --checkpoint <run>: the run's trained state, not fresh weights; flags that do not apply are refused. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TrainingState } from "../src/train/state.js";
import { REPO_ROOT, tempDir } from "./helpers/data.js";

const dir = tempDir("mtl-export-ckpt-");
test.after(() => rmSync(dir, { recursive: true, force: true }));

function mtl(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, "bin", "mtl.js"), ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("--training --checkpoint writes the run's best state (every tensor equal) with the run's optimizer", () => {
  const config = join(dir, "c.yaml");
  writeFileSync(config, "model: esmm\nmodelConfig: { towerSizes: [8] }\noptimizer: { kind: adagrad }\nhyper_parameters: { sparse_feature_dim: 4 }\ntraining: { batchSize: 128, epochs: 2, lr: 0.01 }\n");
  const run = join(dir, "run");
  let r = mtl("train", "--config", config, "--train", "synth:rows=2000,seed=2,users=200,items=200", "--out", run);
  assert.equal(r.code, 0, r.stderr);
  const out = join(dir, "artifacts");
  r = mtl("export", "--training", "--checkpoint", run, "-o", out);
  assert.equal(r.code, 0, r.stderr);
  const best = TrainingState.load(join(run, "best.mtlstate"));
  const exported = TrainingState.load(join(out, "state.mtlstate"));
  // a fresh state has step 0: the exported one is the run's
  assert.ok(best.step > 0);
  assert.equal(exported.step, best.step);
  assert.deepEqual([...exported.tensors.keys()].sort(), [...best.tensors.keys()].sort());
  for (const [name, t] of best.tensors) {
    const u = exported.tensors.get(name)!;
    assert.deepEqual(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), `tensor ${name}`);
  }
  assert.equal((exported.info["optimizer"] as { kind: string }).kind, "adagrad");
});

test("flags that do not apply to an export mode are refused, all of them in one message", () => {
  let r = mtl("export", "--training", "--model", "esmm", "--fp16", "--max-piece-mb", "4", "-o", join(dir, "x"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /flags that do not apply to --training: --fp16 \(.*\); --max-piece-mb \(.*\)/);
  r = mtl("export", "--model", "esmm", "--optimizer", "sgd", "--clip-norm", "1", "-o", join(dir, "x.onnx"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /flags that do not apply to the scoring-model export: --optimizer .*; --clip-norm/);
  r = mtl("export", "--training", "--checkpoint", join(dir, "run"), "--seed", "3", "--optimizer", "sgd", "-o", join(dir, "y"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /to --training from --checkpoint: --seed \(the run's trained weights are exported, not fresh ones\); --optimizer \(the run's state carries the slots of its own optimizer\)/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});
