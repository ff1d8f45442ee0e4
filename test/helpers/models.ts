/**
 * Runs a model's eval program (float64) in onnxruntime-node on a tiny batch, with weights the test
 * controls, and returns every prediction, loss term and any requested gradient. Shares nothing with
 * the model code beyond the program builder: the tests compare against plain TypeScript formulas.
 */
import { validateSchema, type FeatureSchema } from "../../src/features/schema.js";
import * as ops from "../../src/graph/ops.js";
import type { Value } from "../../src/graph/ir.js";
import { gradients } from "../../src/autodiff/index.js";
import { encodeGraph } from "../../src/onnx/serialize.js";
import { Session } from "../../src/runtime/session.js";
import { buildEvalProgram, describeModel, initialState, localName, rowsName, type ModelDefinition, type TrainingState } from "../../src/train/index.js";
import { rng } from "./rng.js";

/** Three 2-id sum-pooled fields in one table of 30 × 3: the pooled input is 9 wide. */
export const TINY_FIELDS = 3;
export const TINY_IDS_PER_FIELD = 2;
export const TINY_DIM = 3;
export const TINY_VOCAB = 30;
export function tinySchema(): FeatureSchema {
  return validateSchema({
    features: Array.from({ length: TINY_FIELDS }, (_, f) => ({ name: `f${f}`, kind: "ids", max_len: TINY_IDS_PER_FIELD, pooling: "sum", vocab_size: TINY_VOCAB, table: "shared", dim: TINY_DIM })),
  });
}

export interface TinyBatch {
  /** [batch, fields * idsPerField] global ids, 0 = padding. */
  ids: Int32Array;
  click: number[];
  conversion: number[];
}

/** Eight impressions covering every (click, conversion) case, with a padding id or two. */
export function tinyBatch(seed = 7): TinyBatch {
  const r = rng(seed);
  const click = [1, 0, 1, 1, 0, 0, 1, 0];
  const conversion = [1, 0, 0, 1, 0, 0, 0, 0];
  const width = TINY_FIELDS * TINY_IDS_PER_FIELD;
  const ids = Int32Array.from({ length: click.length * width }, () => 1 + Math.floor(r() * (TINY_VOCAB - 1)));
  ids[1] = 0;
  ids[width + 3] = 0;
  return { ids, click, conversion };
}

/** Every parameter uniform in ±scale (biases included, so a dropped bias shows), table rows in ±0.5 except padding row 0. */
export function tinyState<C>(model: ModelDefinition<C>, config: C, seed = 3, scale = 0.4): TrainingState {
  const layout = describeModel(model, config, "float64");
  const state = initialState(layout, { kind: "sgd" }, { seed, dtype: "float64" });
  const r = rng(seed * 7919 + 1);
  for (const p of layout.params) {
    const data = state.get(p.name)!;
    // BatchNorm scales stay near 1.
    for (let i = 0; i < data.length; i++) data[i] = (p.name.endsWith(".scale") ? 1 : 0) + scale * (2 * r() - 1);
  }
  for (const t of layout.tables) {
    const data = state.get(t.name)!;
    for (let i = t.dim; i < data.length; i++) data[i] = 0.5 * (2 * r() - 1);
  }
  return state;
}

export interface GradientRequest {
  /** A name for the result. */
  name: string;
  /** The scalar to differentiate, from the program's outputs by name (`loss`, `loss_<term>`, predictions). */
  of: (outputs: Record<string, Value>) => Value;
  params: string[];
}

export interface ModelRun {
  /** Every output of the eval program: predictions, `loss`, `loss_<term>`. */
  outputs: Record<string, number[]>;
  /** Per request, per parameter: d of / d param, flattened. */
  gradients: Record<string, Record<string, number[]>>;
  /** Names of the program's dense parameters. */
  params: string[];
}

export async function runTiny<C>(model: ModelDefinition<C>, config: C, state: TrainingState, batch: TinyBatch, requests: GradientRequest[] = []): Promise<ModelRun> {
  const program = buildEvalProgram(model, config, { dtype: "float64" });
  const g = program.graph;
  const named: Record<string, Value> = Object.fromEntries(g.outputs.map((o) => [o.name, o]));
  const gradNames: [string, string, string][] = [];
  for (const req of requests) {
    const params = req.params.map((n) => {
      const v = g.inputs.find((i) => i.name === n);
      if (!v) throw new Error(`no parameter input '${n}'`);
      return v;
    });
    const grads = gradients(req.of(named), params);
    grads.forEach((d, i) => {
      const out = `grad__${req.name}__${req.params[i]}`;
      g.output(ops.Identity(d), out);
      gradNames.push([req.name, req.params[i]!, out]);
    });
  }
  const sig = program.signature;
  const n = batch.click.length;
  const feeds: Record<string, { dtype: "float64" | "int32"; dims: number[]; data: Float64Array | Int32Array }> = {};
  for (const p of sig.params) feeds[p.name] = { dtype: "float64", dims: p.shape, data: state.get(p.name) as Float64Array };
  for (const s of sig.states) feeds[s.name] = { dtype: "float64", dims: s.shape, data: state.get(s.name) as Float64Array };
  // The whole table as the row block, global ids as local indices.
  for (const t of sig.tables) feeds[rowsName(t.name)] = { dtype: "float64", dims: [t.rows, t.dim], data: state.get(t.name) as Float64Array };
  for (const l of sig.lookups) feeds[localName(l.input)] = { dtype: "int32", dims: [n, batch.ids.length / n], data: batch.ids };
  for (const b of sig.batchInputs) {
    if (b.name === "click") feeds[b.name] = { dtype: "float64", dims: [n], data: Float64Array.from(batch.click) };
    else if (b.name === "conversion") feeds[b.name] = { dtype: "float64", dims: [n], data: Float64Array.from(batch.conversion) };
    else throw new Error(`tiny batches have no '${b.name}'`);
  }
  const session = await Session.create(encodeGraph(g));
  const result = await session.run(feeds);
  await session.release();
  const outputs: Record<string, number[]> = {};
  const grads: Record<string, Record<string, number[]>> = {};
  for (const [name, t] of Object.entries(result)) {
    const values = Array.from(t.data as Float64Array, Number);
    const g = gradNames.find((x) => x[2] === name);
    if (g) (grads[g[0]] ??= {})[g[1]] = values;
    else outputs[name] = values;
  }
  return { outputs, gradients: grads, params: sig.params.map((p) => p.name) };
}

/** |a − b| ≤ tol·(1 + |b|) element-wise, with the first offending index named. */
export function assertClose(got: readonly number[] | number, want: readonly number[] | number, what: string, tol = 1e-9): void {
  const a = typeof got === "number" ? [got] : got;
  const b = typeof want === "number" ? [want] : want;
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length}, want ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)))) throw new Error(`${what}[${i}] = ${a[i]}, want ${b[i]} (diff ${a[i]! - b[i]!})`);
  }
}

/** Running BatchNorm statistics away from (0, 1), so a BatchNorm that ignored them would show. */
export function spreadRunningStats(state: TrainingState, seed: number): void {
  const r = rng(seed);
  for (const [name] of state.tensors) {
    const data = state.get(name)!;
    if (name.endsWith(".running_mean")) for (let i = 0; i < data.length; i++) data[i] = r() - 0.5;
    if (name.endsWith(".running_var")) for (let i = 0; i < data.length; i++) data[i] = 0.5 + r();
  }
}
