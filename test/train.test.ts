import { test } from "node:test";
import assert from "node:assert/strict";
import * as ops from "../src/graph/ops.js";
import { Graph } from "../src/graph/ir.js";
import { encodeGraph } from "../src/onnx/serialize.js";
import { Session, makeTensor } from "../src/runtime/session.js";
import { gradients } from "../src/autodiff/index.js";
import { type OptimizerConfig, clipByGlobalNorm, createUpdater, optimizerSlots } from "../src/optim/index.js";
import { twoTower, type TwoTowerConfig } from "../src/models/two_tower.js";
import {
  Trainer, TrainingState, buildEvalProgram, buildInferenceGraph, buildTrainingStep, describeModel, initialState, tableWeights,
} from "../src/train/index.js";
import { Rng } from "../src/util/prng.js";
import { makeBatch } from "./batches.js";
import { adamStep, backward, forward, type AdamState, type Params, type RefBatch } from "./two_tower_reference.js";

// ---------------------------------------------------------------- optimizer rules

/** TS formulas, one step, for a dense parameter. */
function refUpdate(c: OptimizerConfig, p: number[], g: number[], slots: number[][], t: number, lr: number): void {
  for (let i = 0; i < p.length; i++) {
    switch (c.kind) {
      case "sgd": {
        const gi = g[i]! + (c.weightDecay ?? 0) * p[i]!;
        if (c.momentum) {
          slots[0]![i] = c.momentum * slots[0]![i]! + gi;
          p[i] = p[i]! - lr * slots[0]![i]!;
        } else p[i] = p[i]! - lr * gi;
        break;
      }
      case "adam":
      case "adamw": {
        const [b1, b2, eps] = [c.beta1 ?? 0.9, c.beta2 ?? 0.999, c.epsilon ?? 1e-8];
        if (c.kind === "adamw") p[i] = p[i]! * (1 - lr * (c.weightDecay ?? 0.01));
        slots[0]![i] = b1 * slots[0]![i]! + (1 - b1) * g[i]!;
        slots[1]![i] = b2 * slots[1]![i]! + (1 - b2) * g[i]! ** 2;
        const mhat = slots[0]![i]! / (1 - b1 ** t), vhat = slots[1]![i]! / (1 - b2 ** t);
        p[i] = p[i]! - (lr * mhat) / (Math.sqrt(vhat) + eps);
        break;
      }
      case "adagrad":
        slots[0]![i] = slots[0]![i]! + g[i]! ** 2;
        p[i] = p[i]! - (lr * g[i]!) / (Math.sqrt(slots[0]![i]!) + (c.epsilon ?? 1e-10));
        break;
    }
  }
}

const optimizers: OptimizerConfig[] = [
  { kind: "sgd" },
  { kind: "sgd", momentum: 0.9, weightDecay: 0.01 },
  { kind: "adam" },
  { kind: "adam", beta1: 0.8, beta2: 0.99, epsilon: 1e-6 },
  { kind: "adamw", weightDecay: 0.1 },
  { kind: "adagrad", initialAccumulator: 0.1 },
];

for (const config of optimizers) {
  test(`optimizer ${JSON.stringify(config)} in the graph equals its formula over 4 steps`, async () => {
    const g = new Graph({ opset: 17 });
    const p = g.input("p", "float64", [5]);
    const grad = g.input("g", "float64", [5]);
    const step = g.input("step", "int64", []);
    const lr = g.input("lr", "float64", []);
    // loss = sum(p * g) so d loss / d p = g exactly: the autodiff feeds the rule as in a real step.
    const [dp] = gradients(ops.ReduceSum(ops.Mul(p, grad)), [p]);
    const names = optimizerSlots(config);
    const slotIns = names.map((s) => g.input(s.name, "float64", [5]));
    const next = createUpdater(config, step, lr)(p, dp!, slotIns);
    g.output(next.param, "p_new");
    next.slots.forEach((v, i) => g.output(v, `${names[i]!.name}_new`));
    const session = await Session.create(encodeGraph(g));
    const rng = new Rng(3);
    let pv = Array.from({ length: 5 }, () => rng.normal());
    let sv = names.map((s) => new Array<number>(5).fill(s.initial));
    const rp = [...pv], rs = sv.map((s) => [...s]);
    for (let t = 1; t <= 4; t++) {
      const gv = Array.from({ length: 5 }, () => rng.normal() * 0.1);
      const feeds: Record<string, ReturnType<typeof makeTensor>> = {
        p: makeTensor(Float64Array.from(pv), [5]), g: makeTensor(Float64Array.from(gv), [5]),
        step: makeTensor(BigInt64Array.of(BigInt(t)), []), lr: makeTensor(Float64Array.of(0.05), []),
      };
      names.forEach((s, i) => (feeds[s.name] = makeTensor(Float64Array.from(sv[i]!), [5])));
      const out = await session.run(feeds);
      pv = Array.from(out["p_new"]!.data as Float64Array);
      sv = names.map((s) => Array.from(out[`${s.name}_new`]!.data as Float64Array));
      refUpdate(config, rp, gv, rs, t, 0.05);
    }
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(pv[i]! - rp[i]!) < 1e-12, `param ${i}: ${pv[i]} vs ${rp[i]}`);
    rs.forEach((s, k) => s.forEach((v, i) => assert.ok(Math.abs(sv[k]![i]! - v) < 1e-12, `slot ${names[k]!.name}[${i}]`)));
  });
}

test("clipping by global norm scales all gradients by min(1, max / ||g||)", async () => {
  const g = new Graph({ opset: 17 });
  const a = g.input("a", "float64", [2]), b = g.input("b", "float64", [1, 2]);
  const { grads, norm } = clipByGlobalNorm([a, b], 2.5);
  g.output(grads[0]!, "a_c");
  g.output(grads[1]!, "b_c");
  g.output(norm, "norm");
  const s = await Session.create(encodeGraph(g));
  const r = await s.run({ a: makeTensor(new Float64Array([3, 0]), [2]), b: makeTensor(new Float64Array([0, 4]), [1, 2]) });
  assert.equal(Number(r["norm"]!.data[0]), 5);
  assert.deepEqual(Array.from(r["a_c"]!.data as Float64Array), [1.5, 0]);
  assert.deepEqual(Array.from(r["b_c"]!.data as Float64Array), [0, 2]);
  const small = await s.run({ a: makeTensor(new Float64Array([1, 0]), [2]), b: makeTensor(new Float64Array([0, 1]), [1, 2]) });
  assert.deepEqual(Array.from(small["a_c"]!.data as Float64Array), [1, 0]);
});

// ---------------------------------------------------------------- the two-tower step against plain TypeScript

const small: TwoTowerConfig = { vocabSize: 50, embeddingDim: 3, fields: 2, idsPerField: 2, towerSizes: [6, 4], paddingRow0: true, embeddingInit: 0.5 };

function toParams(state: TrainingState, names: string[]): Params {
  return new Map(names.map((n) => [n, Float64Array.from(weightsOf(state, n))]));
}

/** A tensor's weights: for the table, the first dim columns of its packed [weights | slots] rows. */
function weightsOf(state: TrainingState, name: string): Float32Array | Float64Array {
  const data = state.require(name).data;
  return name === "embedding" ? tableWeights(data, describeModel(twoTower, small).tables[0]!) : data;
}

for (const dtype of ["float64", "float32"] as const) {
  test(`two-tower + Adam, 5 steps in onnxruntime (${dtype}) equals the TypeScript reference within 1e-5`, async () => {
    const optimizer: OptimizerConfig = { kind: "adam" };
    const state = initialState(describeModel(twoTower, small, dtype), optimizer, { seed: 11, dtype });
    const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, small, { optimizer, dtype }) });
    const names = [...state.tensors.keys()].filter((k) => !k.includes("__"));
    const ref = toParams(state, names);
    const adam: AdamState = { m: new Map(), v: new Map(), t: 0 };
    const lr = 0.01;
    for (let s = 0; s < 5; s++) {
      const b = makeBatch(100 + s, 16, small);
      const refBatch: RefBatch = { ids: b["ids.embedding"], click: Float64Array.from(b.click), buy: Float64Array.from(b.conversion) };
      const expected = forward({ vocab: 50, dim: 3, fields: 2, k: 2, sizes: [6, 4] }, ref, refBatch);
      const before = state.clone();
      const Arr = dtype === "float64" ? Float64Array : Float32Array;
      const r = await trainer.step({ "ids.embedding": b["ids.embedding"], click: Arr.from(b.click), conversion: Arr.from(b.conversion) }, lr);
      assert.ok(Math.abs(r.loss - expected.loss) < 1e-5, `step ${s} loss ${r.loss} vs ${expected.loss}`);
      const grads = backward({ vocab: 50, dim: 3, fields: 2, k: 2, sizes: [6, 4] }, ref, refBatch);
      const touched = new Set(b["ids.embedding"]);
      adamStep(ref, grads, adam, lr, touched, 3);
      // Dense parameters and touched rows follow the formula; untouched rows and row 0 do not move at all.
      for (const name of names) {
        const got = weightsOf(state, name), want = ref.get(name)!;
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        assert.ok(worst <= 1e-5, `step ${s} ${name}: max |diff| ${worst}`);
      }
      // Packed rows: [weights (3) | Adam m (3) | Adam v (3)].
      const table = state.require("embedding").data, old = before.require("embedding").data;
      assert.deepEqual(state.require("embedding").dims, [50, 9]);
      for (let row = 0; row < 50; row++) {
        if (touched.has(row) && row !== 0) continue;
        for (let d = 0; d < 9; d++) assert.ok(Object.is(table[row * 9 + d], old[row * 9 + d]), `untouched row ${row} (weights or Adam slots) changed`);
      }
      for (let d = 0; d < 9; d++) assert.equal(table[d], 0, "padding row 0 and its slots stay zero");
    }
    assert.equal(state.step, 5);
    await trainer.release();
  });
}

test("lazy Adam on a touched row equals the dense Adam formula for that row's gradient", async () => {
  // Step 1 touches rows {1,2}; step 2 touches {2,3}. Row 3 starts its moments at step 2 with t = 2
  // bias correction (PaddleRec lazy_mode); row 1 keeps its step-1 moments untouched in step 2.
  const cfg: TwoTowerConfig = { ...small, fields: 1, idsPerField: 2 };
  const optimizer: OptimizerConfig = { kind: "adam" };
  const state = initialState(describeModel(twoTower, cfg, "float64"), optimizer, { seed: 5, dtype: "float64" });
  const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, cfg, { optimizer, dtype: "float64" }) });
  const refCfg = { vocab: 50, dim: 3, fields: 1, k: 2, sizes: [6, 4] };
  const names = [...state.tensors.keys()].filter((k) => !k.includes("__"));
  const ref = toParams(state, names);
  const adam: AdamState = { m: new Map(), v: new Map(), t: 0 };
  for (const [i, ids] of [[1, 2], [2, 3]].entries()) {
    const batch = { "ids.embedding": Int32Array.from(ids), click: Float64Array.of(1), conversion: Float64Array.of(i) };
    const grads = backward(refCfg, ref, { ids: batch["ids.embedding"], click: batch.click, buy: batch.conversion });
    adamStep(ref, grads, adam, 0.1, new Set(ids), 3);
    await trainer.step(batch, 0.1);
  }
  const table = weightsOf(state, "embedding"), want = ref.get("embedding")!;
  for (const row of [1, 2, 3]) for (let d = 0; d < 3; d++) assert.ok(Math.abs(table[row * 3 + d]! - want[row * 3 + d]!) < 1e-12, `row ${row}`);
  // Row 1 was not in step 2: its weights and moments are exactly those after step 1.
  const m = state.require("embedding").data;
  assert.ok(Math.abs(m[1 * 9 + 3]! - adam.m.get("embedding")![3]!) < 1e-12, "row 1's first moment kept from step 1");
  await trainer.release();
});

test("the loss falls on data with a learnable signal", async () => {
  const optimizer: OptimizerConfig = { kind: "adam" };
  const state = initialState(describeModel(twoTower, small), optimizer, { seed: 2 });
  const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, small, { optimizer }), eval: buildEvalProgram(twoTower, small) });
  const held = makeBatch(999, 512, small);
  const before = (await trainer.evaluate(held)).loss;
  for (let s = 0; s < 300; s++) await trainer.step(makeBatch(s, 64, small), 0.01);
  const after = (await trainer.evaluate(held)).loss;
  assert.ok(after < before * 0.85, `held-out loss ${before.toFixed(4)} -> ${after.toFixed(4)}`);
  await trainer.release();
});

// ---------------------------------------------------------------- row-sparse: independent of the vocabulary

test("step bytes do not depend on the vocabulary: 1,000 vs 10,000,000 rows", async () => {
  const bytes: number[] = [];
  for (const vocabSize of [1_000, 10_000_000]) {
    // No hidden layer: with zero embeddings a ReLU layer would pass no gradient back to the rows.
    const cfg: TwoTowerConfig = { vocabSize, embeddingDim: 4, fields: 3, idsPerField: 2, towerSizes: [], paddingRow0: true };
    const optimizer: OptimizerConfig = { kind: "sgd" };
    // Zero-initialised: the 10M-row table is allocated but its pages are never touched.
    const layout = describeModel(twoTower, cfg);
    layout.tables[0]!.init = { kind: "zeros" };
    const state = initialState(layout, optimizer, { seed: 1 });
    const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, cfg, { optimizer }) });
    const b = makeBatch(7, 32, { ...small, fields: 3, idsPerField: 2 });
    // Use high ids in the big table so the rows really come from far inside it.
    const ids = vocabSize > 1000 ? b["ids.embedding"].map((x) => (x === 0 ? 0 : vocabSize - x)) : b["ids.embedding"];
    await trainer.step({ "ids.embedding": ids, click: b.click, conversion: b.conversion }, 0.5);
    bytes.push(trainer.lastStepBytes.fed + trainer.lastStepBytes.fetched);
    const table = state.require("embedding").data;
    const moved = [...new Set(ids)].filter((x) => x !== 0).some((id) => table[id * 4] !== 0 || table[id * 4 + 1] !== 0);
    assert.ok(moved, "rows in the batch were updated");
    await trainer.release();
  }
  assert.equal(bytes[0], bytes[1], `bytes per step: ${bytes.join(" vs ")}`);
  assert.ok(bytes[1]! < 100_000, `a 32-example step moves ${bytes[1]} bytes`);
});

test("an id outside the table fails with the input named", async () => {
  const optimizer: OptimizerConfig = { kind: "sgd" };
  const state = initialState(describeModel(twoTower, small), optimizer);
  const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, small, { optimizer }) });
  const b = makeBatch(1, 4, small);
  b["ids.embedding"][5] = 50;
  await assert.rejects(trainer.step(b, 0.1), (e: Error & { code?: string; where?: { field?: string } }) => e.code === "E_BATCH" && e.where?.field === "ids.embedding" && /50/.test(e.message));
  await trainer.release();
});

// ---------------------------------------------------------------- train / eval behaviour and the inference graph

const bnDrop: TwoTowerConfig = { ...small, batchNorm: true, dropout: 0.3 };

test("BatchNorm + dropout: train updates running statistics; eval and inference agree and use them", async () => {
  const optimizer: OptimizerConfig = { kind: "adam" };
  const layout = describeModel(twoTower, bnDrop);
  assert.equal(layout.states.length, 8, "running mean and variance for each of the 2 x 2 hidden layers");
  const state = initialState(layout, optimizer, { seed: 4 });
  const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, bnDrop, { optimizer, clipNorm: 1 }), eval: buildEvalProgram(twoTower, bnDrop) });
  const rng0 = state.rng;
  for (let s = 0; s < 5; s++) {
    const r = await trainer.step(makeBatch(s, 32, small), 0.01);
    assert.ok(r.gradNorm !== undefined && r.gradNorm > 0);
  }
  assert.notDeepEqual(state.rng, rng0, "dropout masks advance the PRNG kept in the state");
  const mean = state.require("ctr.0.bn.running_mean").data;
  assert.ok(mean.some((v) => v !== 0), "running mean moved");

  const batch = makeBatch(77, 8, small);
  const ev = await trainer.evaluate(batch);
  // In eval, one example alone scores as it does inside the batch (running, not batch, statistics).
  const one = await trainer.evaluate({ "ids.embedding": batch["ids.embedding"].slice(0, 4), click: batch.click.slice(0, 1), conversion: batch.conversion.slice(0, 1) });
  assert.ok(Math.abs(one.predictions["p_ctr"]![0]! - ev.predictions["p_ctr"]![0]!) < 1e-6);
  const inference = await Session.create(encodeGraph(buildInferenceGraph(twoTower, bnDrop, state)));
  assert.deepEqual([...inference.inputNames], ["ids.embedding"]);
  const out = await inference.run({ "ids.embedding": makeTensor(BigInt64Array.from(batch["ids.embedding"], (v) => BigInt(v)), [8, 4]) });
  for (const k of ["p_ctr", "p_cvr", "p_ctcvr"]) {
    const a = out[k]!.data as Float32Array, b = ev.predictions[k]!;
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6, `${k}[${i}]`);
  }
  await trainer.release();
});

test("fit() (pipelined, step in a worker) is bit-identical to step() on each batch", async () => {
  const cfg: TwoTowerConfig = { ...small, dropout: 0.2, batchNorm: true };
  const optimizer: OptimizerConfig = { kind: "adam" };
  const program = buildTrainingStep(twoTower, cfg, { optimizer });
  // Few distinct ids, so consecutive batches share many rows (the patched case).
  const batches = Array.from({ length: 7 }, (_, s) => makeBatch(500 + s, 24, { ...cfg, vocabSize: 12 }));
  const a = initialState(describeModel(twoTower, cfg), optimizer, { seed: 8 });
  const b = a.clone();
  const stepper = await Trainer.create(a, { train: program }, { worker: false });
  const losses: number[] = [];
  for (const [i, batch] of batches.entries()) losses.push((await stepper.step(batch, 0.01 * (i + 1))).loss);
  const fitter = await Trainer.create(b, { train: program });
  const seen: [number, number][] = [];
  const n = await fitter.fit(batches, { lr: (step) => 0.01 * step, onStep: (r, step) => void seen.push([step, r.loss]) });
  assert.equal(n, 7);
  assert.deepEqual(seen, losses.map((l, i) => [i + 1, l]));
  assert.equal(a.step, b.step);
  assert.deepEqual(a.rng, b.rng);
  for (const [name, t] of a.tensors) {
    const u = b.require(name).data;
    assert.ok(t.data.every((v, i) => Object.is(v, u[i])), `tensor ${name} differs`);
  }
  await stepper.release();
  await fitter.release();
});

test("the row write-back shared between the trainer's thread and the worker, in any proportion, leaves the state bit-identical", async () => {
  const optimizer: OptimizerConfig = { kind: "adam" };
  const program = buildTrainingStep(twoTower, small, { optimizer });
  const batches = Array.from({ length: 6 }, (_, s) => makeBatch(900 + s, 24, { ...small, vocabSize: 12 }));
  const reference = initialState(describeModel(twoTower, small), optimizer, { seed: 5 });
  const states = [0, 0.5, 1].map(() => reference.clone());
  const stepper = await Trainer.create(reference, { train: program }, { worker: false });
  for (const batch of batches) await stepper.step(batch, 0.01);
  await stepper.release();
  for (const [k, rowShare] of [0, 0.5, 1].entries()) {
    const state = states[k]!;
    const trainer = await Trainer.create(state, { train: program }, { rowShare });
    await trainer.fit(batches.slice(0, 4), { lr: 0.01 });
    for (const batch of batches.slice(4)) await trainer.step(batch, 0.01); // step() in a worker shares too
    await trainer.release();
    for (const [name, t] of reference.tensors) assert.ok(t.data.every((v, i) => Object.is(v, state.require(name).data[i])), `rowShare ${rowShare}: tensor ${name} differs`);
  }
  await assert.rejects(Trainer.create(reference.clone(), { train: program }, { rowShare: 2 }), (e: Error & { code?: string }) => e.code === "E_CONFIG");
});

test("fit() stopped by a bad batch leaves the state as step() would after the good ones", async () => {
  const optimizer: OptimizerConfig = { kind: "adam" };
  const program = buildTrainingStep(twoTower, small, { optimizer });
  const good = Array.from({ length: 3 }, (_, s) => makeBatch(700 + s, 16, { ...small, vocabSize: 12 }));
  const bad = makeBatch(799, 16, small);
  bad["ids.embedding"][3] = 1_000;
  const a = initialState(describeModel(twoTower, small), optimizer, { seed: 3 });
  const b = a.clone();
  const stepper = await Trainer.create(a, { train: program }, { worker: false });
  for (const batch of good) await stepper.step(batch, 0.01);
  const fitter = await Trainer.create(b, { train: program });
  await assert.rejects(fitter.fit([...good, bad, good[0]!], { lr: 0.01 }), (e: Error & { code?: string }) => e.code === "E_BATCH");
  assert.equal(b.step, 3);
  for (const [name, t] of a.tensors) assert.ok(t.data.every((v, i) => Object.is(v, b.require(name).data[i])), `tensor ${name} differs`);
  await stepper.release();
  await fitter.release();
});
