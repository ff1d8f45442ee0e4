import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { twoTower, type TwoTowerConfig } from "../src/models/two_tower.js";
import { Trainer, TrainingState, buildEvalProgram, buildTrainingStep } from "../src/train/index.js";
import { cudaInstalled } from "../src/runtime/session.js";
import { MtlError } from "../src/errors.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const mtl = join(root, "bin", "mtl.js");
const example = join(root, "docs", "examples", "one-step.mjs");
const config: TwoTowerConfig = { vocabSize: 60, embeddingDim: 4, fields: 3, idsPerField: 2, towerSizes: [8, 4], paddingRow0: true };

test("mtl export --training writes artifacts that plain onnxruntime-node and onnxruntime-web run like mtl's trainer", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-export-"));
  try {
    writeFileSync(join(dir, "model.json"), JSON.stringify(config));
    const out = join(dir, "art");
    execFileSync(process.execPath, [mtl, "export", "--model", "two-tower", "--training", "-o", out, "--config", join(dir, "model.json"), "--seed", "3"], { stdio: "pipe" });
    assert.deepEqual(readdirSync(out).sort(), ["eval.onnx", "inference.onnx", "signature.json", "state.mtlstate", "train_step.onnx"]);

    // The documented recipe, with no mtl code, in two bindings.
    const runs = ["onnxruntime-node", "onnxruntime-web"].map((binding) =>
      JSON.parse(execFileSync(process.execPath, [example, out], { env: { ...process.env, ORT: binding }, cwd: root }).toString()) as { loss: number; p: number[] });
    assert.equal(runs[0]!.loss, runs[1]!.loss);

    // mtl's trainer on the same state and batch gives the same loss.
    const state = TrainingState.load(join(out, "state.mtlstate"));
    const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, config, { optimizer: { kind: "adam" } }), eval: buildEvalProgram(twoTower, config) });
    const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 7) % 50);
    const r = await trainer.step({ "ids.embedding": ids, click: Float32Array.of(1, 0), conversion: Float32Array.of(1, 0) }, 0.001);
    assert.ok(Math.abs(r.loss - runs[0]!.loss) < 1e-6, `${r.loss} vs ${runs[0]!.loss}`);
    assert.deepEqual(Array.from(r.predictions["p_ctr"]!), runs[0]!.p);
    await trainer.release();

    const sig = JSON.parse(readFileSync(join(out, "signature.json"), "utf8"));
    assert.equal(sig.train_step.optimizer.kind, "adam");
    assert.deepEqual(sig.train_step.slots, ["m", "v"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("mtl export with a bad config prints one line and exits 1", () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-export-bad-"));
  try {
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ ...config, towerSizes: [8, -1] }));
    const r = spawnSync(process.execPath, [mtl, "export", "--model", "two-tower", "--training", "-o", join(dir, "o"), "--config", join(dir, "bad.json")]);
    assert.equal(r.status, 1);
    const err = r.stderr.toString().trim().split("\n").filter((l) => l.startsWith("mtl:"));
    assert.equal(err.length, 1);
    assert.match(err[0]!, /bad\.json: towerSizes: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("device cuda without the CUDA provider fails with one clear error", { skip: cudaInstalled() ? "the CUDA provider is installed here" : false }, async () => {
  const state = new TrainingState();
  await assert.rejects(
    Trainer.create(state, { train: buildTrainingStep(twoTower, config, { optimizer: { kind: "sgd" } }) }, { device: "cuda" }),
    (e: unknown) => e instanceof MtlError && e.code === "E_DEVICE" && /CUDA/.test(e.message) && /cpu/.test(e.hint ?? ""),
  );
});

test("mtl export without --training writes a fresh inference model taking only ids", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-export-inf-"));
  try {
    writeFileSync(join(dir, "model.json"), JSON.stringify(config));
    const file = join(dir, "model.onnx");
    execFileSync(process.execPath, [mtl, "export", "--model", "two-tower", "-o", file, "--config", join(dir, "model.json")], { stdio: "pipe" });
    const { Session, makeTensor } = await import("../src/runtime/session.js");
    const s = await Session.create(file);
    assert.deepEqual([...s.inputNames], ["ids.embedding"]);
    const out = await s.run({ "ids.embedding": makeTensor(new BigInt64Array(12), [2, 6]) });
    const p = out["p_ctcvr"]!.data as Float32Array;
    assert.equal(p.length, 2);
    assert.ok(p.every((v) => v > 0 && v < 1));
    await s.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a state that does not fit the program is refused, naming the tensor", async () => {
  const { initialState, describeModel } = await import("../src/train/index.js");
  const state = initialState(describeModel(twoTower, { ...config, towerSizes: [5, 4] }), { kind: "adam" });
  await assert.rejects(
    Trainer.create(state, { train: buildTrainingStep(twoTower, config, { optimizer: { kind: "adam" } }) }, { worker: false }),
    (e: unknown) => e instanceof MtlError && e.code === "E_STATE" && e.where.field === "ctr.0.weight",
  );
});
