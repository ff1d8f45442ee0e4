/**
 * MetaHeac against an independent TypeScript reference (test/helpers/metaheac_ref.ts) on a tiny
 * four-table schema, float64: the forward pass and both gates, the inner step's fast weights, the
 * first-order outer update (with SGD, and driven by the ordinary Trainer with Adam), the inner step
 * repeated, and the config's checks.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MtlError } from "../src/errors.js";
import { getModel } from "../src/models/index.js";
import { metaheac, metaheacDefaults, splitFields, type MetaheacConfig } from "../src/models/metaheac.js";
import { layoutOf } from "../src/features/batch.js";
import { encodeGraph } from "../src/onnx/serialize.js";
import { Session, type Tensor } from "../src/runtime/session.js";
import { buildEvalProgram, describeModel, initialState, localName, newName, rowsName, Trainer, type ProgramSignature, type TrainingState } from "../src/train/index.js";
import { buildMetaTrainingStep, fastName, queryInput, supportInput } from "../src/train/meta.js";
import { rng } from "./helpers/rng.js";
import { REF_AD, REF_FIELDS, refForward, refGradient, refFastWeights, refMetaGradient, refSchema, refSecondOrderGradient, axpy, type RefBatch, type RefShape, type Weights } from "./helpers/metaheac_ref.js";
import { assertClose } from "./helpers/models.js";

const shape: RefShape = { experts: 3, expertUnits: 4, gateHidden: 3, critics: 2 };
const config: MetaheacConfig = {
  ...metaheacDefaults(), schema: refSchema(), adFeatures: REF_AD, paddingRow0: false,
  expertCount: shape.experts, expertSizes: [shape.expertUnits], gateHidden: shape.gateHidden, criticCount: shape.critics,
};

/** Every weight uniform in ±0.6 (tables included; no padding rows: `ub` masks its zeros by weight). */
function tinyWeights(seed: number): { state: TrainingState; weights: Weights } {
  const layout = describeModel(metaheac, config, "float64");
  const state = initialState(layout, { kind: "sgd" }, { seed, dtype: "float64" });
  const r = rng(seed);
  const weights: Weights = new Map();
  for (const name of [...layout.params.map((p) => p.name), ...layout.tables.map((t) => t.name)]) {
    const data = state.get(name) as Float64Array;
    for (let i = 0; i < data.length; i++) data[i] = 0.6 * (2 * r() - 1);
    weights.set(name, data.slice());
  }
  return { state, weights };
}

function tinyBatch(seed: number, n = 6): RefBatch {
  const r = rng(seed);
  const ids: Record<string, Int32Array> = {};
  for (const f of REF_FIELDS) {
    ids[f.name] = Int32Array.from({ length: n * f.width }, () => (f.kind === "id" ? Math.floor(r() * f.vocab) : (r() < 0.3 ? 0 : 1 + Math.floor(r() * (f.vocab - 1)))));
  }
  return { ids, label: Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 1 : Number(r() < 0.5))) };
}

/** Feeds for a program over the whole tables (global ids are the local indices): `batches[suffix]`, suffix "" for the plain program. */
function feeds(sig: ProgramSignature, weights: Weights, batches: Record<string, RefBatch>, extra: Record<string, Tensor> = {}): Record<string, Tensor> {
  const out: Record<string, Tensor> = { ...extra };
  for (const p of sig.params) out[p.name] = { dtype: "float64", dims: p.shape, data: weights.get(p.name)!.slice() };
  for (const t of sig.tables) out[rowsName(t.name)] = { dtype: "float64", dims: [t.rows, t.dim], data: weights.get(t.name)!.slice() };
  const split = (name: string) => {
    const at = name.indexOf("@");
    return at < 0 ? { base: name, batch: batches[""]! } : { base: name.slice(0, at), batch: batches[name.slice(at + 1)]! };
  };
  for (const l of sig.lookups) {
    const { batch } = split(l.input);
    const ids = batch.ids[l.table]!;
    out[localName(l.input)] = { dtype: "int32", dims: [batch.label.length, ids.length / batch.label.length], data: ids };
  }
  for (const b of sig.batchInputs) {
    const { base, batch } = split(b.name);
    const n = batch.label.length;
    if (base === "click") out[b.name] = { dtype: "float64", dims: [n], data: Float64Array.from(batch.label) };
    else if (base.startsWith("weights.")) {
      const ids = batch.ids[base.slice("weights.".length)]!;
      out[b.name] = { dtype: "float64", dims: [n, ids.length / n], data: Float64Array.from(ids, (id) => (id === 0 ? 0 : 1)) };
    } else throw new Error(`no feed for '${b.name}'`);
  }
  return out;
}

async function runGraph(bytes: Uint8Array, input: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await Session.create(bytes);
  try {
    return await session.run(input);
  } finally {
    await session.release();
  }
}

const values = (t: Tensor | undefined): number[] => Array.from(t!.data as Float64Array, Number);
const flat = (rows: number[][]): number[] => rows.flat();

test("MetaHeac forward: ŷ = Σ_j β_j c_j over critics and experts gated by the task vector; BCE; both gates sum to 1 (Eqs. 3–8)", async () => {
  const { weights } = tinyWeights(11);
  const batch = tinyBatch(5);
  const program = buildEvalProgram(metaheac, config, { dtype: "float64" });
  const out = await runGraph(encodeGraph(program.graph), feeds(program.signature, weights, { "": batch }));
  const ref = refForward(weights, shape, batch);
  assertClose(values(out["p_lookalike"]), ref.p, "p_lookalike", 1e-12);
  assertClose(values(out["expert_gate"]), flat(ref.expertGate), "expert_gate", 1e-12);
  assertClose(values(out["critic_gate"]), flat(ref.criticGate), "critic_gate", 1e-12);
  assertClose(values(out["loss"]), ref.loss, "loss", 1e-12);
  for (const gate of ["expert_gate", "critic_gate"]) {
    const v = values(out[gate]), width = gate === "expert_gate" ? shape.experts : shape.critics;
    for (let r = 0; r < batch.label.length; r++) {
      const s = v.slice(r * width, (r + 1) * width).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(s - 1) < 1e-12, `${gate} row ${r} sums to ${s}`);
    }
  }
});

const T = 2;
const tasks = [0, 1].map((t) => ({ support: tinyBatch(100 + t), query: tinyBatch(200 + t) }));
const taskFeeds = () => Object.fromEntries(tasks.flatMap((x, t) => [[`support${t}`, x.support], [`query${t}`, x.query]]));

for (const innerSteps of [1, 2]) {
  test(`meta step, ${innerSteps} inner step(s): fast weights θ'_t = θ − α∇L(S_t) and the first-order outer SGD update θ − β·(1/T)Σ_t ∇L(Q_t; θ'_t)`, async () => {
    const { weights } = tinyWeights(12);
    const alpha = 0.3, beta = 0.05;
    const program = buildMetaTrainingStep(metaheac, config, { dtype: "float64", optimizer: { kind: "sgd" }, tasks: T, localLr: alpha, innerSteps, outputFastWeights: true });
    const extra: Record<string, Tensor> = { step: { dtype: "int64", dims: [], data: BigInt64Array.of(1n) }, lr: { dtype: "float64", dims: [], data: Float64Array.of(beta) } };
    const out = await runGraph(encodeGraph(program.graph), feeds(program.signature, weights, taskFeeds(), extra));
    tasks.forEach((task, t) => {
      const fast = refFastWeights(weights, shape, task.support, alpha, innerSteps);
      for (const [name, v] of fast) assertClose(values(out[fastName(name, t)]), Array.from(v), `${name} fast weights of task ${t}`, 1e-7);
    });
    const meanQuery = tasks.reduce((s, task) => s + refForward(refFastWeights(weights, shape, task.support, alpha, innerSteps), shape, task.query).loss, 0) / T;
    assertClose(values(out["loss"]), meanQuery, "mean query loss", 1e-7);
    const updated = axpy(weights, refMetaGradient(weights, shape, tasks, alpha, innerSteps), -beta);
    for (const p of program.signature.params) assertClose(values(out[newName(p.name)]), Array.from(updated.get(p.name)!), `${p.name} after the outer step`, 1e-7);
    for (const tb of program.signature.tables) assertClose(values(out[newName(rowsName(tb.name))]), Array.from(updated.get(tb.name)!), `${tb.name} rows after the outer step`, 1e-7);
  });
}

test("second-order meta step (firstOrder false): the outer update differentiates through the inner step", async () => {
  const { weights } = tinyWeights(15);
  const alpha = 0.5, beta = 1;
  const task = tasks[0]!;
  const program = buildMetaTrainingStep(metaheac, config, { dtype: "float64", optimizer: { kind: "sgd" }, tasks: 1, localLr: alpha, firstOrder: false });
  const out = await runGraph(encodeGraph(program.graph), feeds(program.signature, weights, { support0: task.support, query0: task.query }, {
    step: { dtype: "int64", dims: [], data: BigInt64Array.of(1n) }, lr: { dtype: "float64", dims: [], data: Float64Array.of(beta) },
  }));
  const second = refSecondOrderGradient(weights, shape, task, alpha);
  const first = refMetaGradient(weights, shape, [task], alpha);
  let gap = 0;
  for (const p of program.signature.params) {
    const got = values(out[newName(p.name)]).map((x, i) => weights.get(p.name)![i]! - x); // = β·g with β = 1
    assertClose(got, Array.from(second.get(p.name)!), `second-order d L / d ${p.name}`, 1e-5);
    gap = Math.max(gap, ...got.map((x, i) => Math.abs(x - first.get(p.name)![i]!)));
  }
  for (const tb of program.signature.tables) {
    const got = values(out[newName(rowsName(tb.name))]).map((x, i) => weights.get(tb.name)![i]! - x);
    assertClose(got, Array.from(second.get(tb.name)!), `second-order d L / d ${tb.name}`, 1e-5);
  }
  assert.ok(gap > 1e-4, `second- and first-order gradients should differ here (max gap ${gap})`);
});

test("meta step through the Trainer (row blocks from the union of 2T batches, Adam outer step) equals the reference", async () => {
  const { state, weights } = tinyWeights(13);
  const adam = { kind: "adam" as const, epsilon: 1e-2 };
  const adamState = initialState(describeModel(metaheac, config, "float64"), adam, { seed: 13, dtype: "float64" });
  // The same weights in the Adam state (tables packed with their two slots, which start at 0).
  for (const [name, v] of weights) {
    const data = adamState.get(name)!;
    if (data.length === v.length) data.set(v);
    else for (let r = 0; r < v.length / 2; r++) data.set(v.subarray(r * 2, r * 2 + 2), r * 6);
  }
  void state;
  const alpha = 0.3, lr = 0.01;
  const program = buildMetaTrainingStep(metaheac, config, { dtype: "float64", optimizer: adam, tasks: T, localLr: alpha });
  const trainer = await Trainer.create(adamState, { train: program }, { worker: false });
  const batch: Record<string, Int32Array | Float64Array> = {};
  tasks.forEach((task, t) => {
    for (const [which, b, rename] of [["support", task.support, supportInput], ["query", task.query, queryInput]] as const) {
      void which;
      for (const f of REF_FIELDS) {
        batch[rename(`ids.${f.name}`, t)] = b.ids[f.name]!;
        if (f.kind === "ids") batch[rename(`weights.${f.name}`, t)] = Float64Array.from(b.ids[f.name]!, (id) => (id === 0 ? 0 : 1));
      }
      batch[rename("click", t)] = Float64Array.from(b.label);
    }
  });
  try {
    const result = await trainer.step(batch, lr);
    const g = refMetaGradient(weights, shape, tasks, alpha);
    const meanQuery = tasks.reduce((s, task) => s + refForward(refFastWeights(weights, shape, task.support, alpha), shape, task.query).loss, 0) / T;
    assertClose(result.loss, meanQuery, "loss", 1e-7);
    // Adam's first step: θ − lr·g / (|g| + ε) (both bias corrections cancel at t = 1).
    const touched = new Map<string, Set<number>>(REF_FIELDS.map((f) => [f.name, new Set<number>(tasks.flatMap((x) => [...x.support.ids[f.name]!, ...x.query.ids[f.name]!]))]));
    for (const [name, v] of weights) {
      const grad = g.get(name)!;
      const got = adamState.get(name)!;
      const isTable = touched.has(name);
      const want = Array.from(v, (x, i) => (isTable && !touched.get(name)!.has(Math.floor(i / 2)) ? x : x - (lr * grad[i]!) / (Math.abs(grad[i]!) + 1e-2)));
      const weightsNow = isTable ? Array.from({ length: v.length }, (_, i) => got[Math.floor(i / 2) * 6 + (i % 2)]!) : Array.from(got);
      assertClose(weightsNow, want, `${name} after one meta step`, 1e-6);
    }
  } finally {
    await trainer.release();
  }
});

test("the reference's finite differences agree with the graph's own gradient of the support loss", async () => {
  // Guards the reference itself: a plain eval-program gradient (autodiff) against refGradient.
  const { weights } = tinyWeights(14);
  const batch = tinyBatch(9);
  const program = buildMetaTrainingStep(metaheac, config, { dtype: "float64", optimizer: { kind: "sgd" }, tasks: 1, localLr: 1, outputFastWeights: true });
  const out = await runGraph(encodeGraph(program.graph), feeds(program.signature, weights, { support0: batch, query0: batch }, {
    step: { dtype: "int64", dims: [], data: BigInt64Array.of(1n) }, lr: { dtype: "float64", dims: [], data: Float64Array.of(0) },
  }));
  // With α = 1, θ' = θ − ∇L(S): the fast weights carry the graph's gradient.
  const g = refGradient(weights, shape, batch);
  for (const [name, v] of weights) assertClose(values(out[fastName(name, 0)]).map((x, i) => v[i]! - x), Array.from(g.get(name)!), `d L / d ${name}`, 1e-7);
});

test("MetaHeac config: ad features must exist, fields share one dim; registered with PaddleRec's defaults", () => {
  const entry = getModel("metaheac");
  const d = entry.defaults as MetaheacConfig;
  assert.deepEqual([d.expertCount, d.expertSizes, d.criticCount, d.taskCount, d.localLr, d.adaptEpochs, d.adaptLr], [8, [64], 5, 5, 2e-4, 2, 1e-3]);
  assert.throws(() => splitFields(layoutOf(refSchema()), ["nope"]), (e: unknown) => e instanceof MtlError && /ad feature 'nope'/.test(e.message));
  assert.throws(() => splitFields(layoutOf(refSchema()), ["ua", "ub", "ada", "adb"]), (e: unknown) => e instanceof MtlError && /user feature/.test(e.message));
  const mixed = { ...refSchema(), features: refSchema().features.map((f) => (f.name === "ua" ? { ...f, dim: 3 } : f)) };
  assert.throws(() => splitFields(layoutOf(mixed), REF_AD), (e: unknown) => e instanceof MtlError && /embeds in dim 2, the others in 3/.test(e.message));
});
