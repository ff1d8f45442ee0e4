/** The shared input layer: sum, mean and weighted pooling and dense columns, by hand; data batches as trainer feeds. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateSchema, layoutOf, type Batch as DataBatch } from "../src/index.js";
import { embedFeatures, embeddedWidth, idsInput, weightsInput } from "../src/models/inputs.js";
import { stepFeeds } from "../src/models/feeds.js";
import { buildInferenceGraph, buildTrainingStep, describeModel, initialState, Trainer, type ModelDefinition } from "../src/train/index.js";
import * as ops from "../src/graph/ops.js";
import { Session } from "../src/runtime/session.js";
import { encodeGraph } from "../src/onnx/serialize.js";

const schema = validateSchema({
  features: [
    { name: "item", kind: "id", vocab_size: 10, table: "item", dim: 2 },
    { name: "hist", kind: "ids", vocab_size: 10, max_len: 3, pooling: "mean", table: "item", dim: 2 },
    { name: "tags", kind: "weighted_ids", weight_source: "tag_w", vocab_size: 6, max_len: 2, table: "tag", dim: 2 },
    { name: "cat", kind: "ids", vocab_size: 5, max_len: 2, table: "cat", dim: 2 },
    { name: "price", kind: "dense" },
  ],
});
const layout = layoutOf(schema);

// Two rows. item table columns: [item | hist hist hist]; tag: [t t] with weights; cat: [c c]; dense: price.
const batch: DataBatch = {
  size: 2,
  ids: [Int32Array.of(1, 2, 3, 0, 0, 4, 5, 0), Int32Array.of(1, 2, 3, 0), Int32Array.of(1, 2, 4, 4)],
  weights: [null, Float32Array.of(0.5, 2, 1.5, 0), null],
  dense: Float32Array.of(0.25, -1),
  click: Uint8Array.of(1, 0),
  conversion: Uint8Array.of(1, 0),
  truth: null,
  userId: null,
  sampleKey: Uint32Array.of(1, 2),
  task: null,
};

const probe: ModelDefinition<null> = {
  name: "probe",
  build(ctx) {
    const x = embedFeatures(ctx, layout, { paddingRow0: true });
    const loss = ops.ReduceMean(ops.Mul(x, x), { keepdims: 0 });
    return { predictions: { x }, losses: { l2: loss }, loss };
  },
};

test("pooling by hand: sum, mean over present ids, weighted sum, then dense", async () => {
  const state = initialState(describeModel(probe, null), { kind: "sgd" }, { seed: 3 });
  const g = buildInferenceGraph(probe, null, state);
  const feeds = stepFeeds(batch, layout);
  const s = await Session.create(encodeGraph(g));
  const int64 = (a: Int32Array) => BigInt64Array.from(a, (v) => BigInt(v));
  const out = await s.run({
    [idsInput("item")]: { dtype: "int64", dims: [2, 4], data: int64(feeds[idsInput("item")] as Int32Array) },
    [weightsInput("item")]: { dtype: "float32", dims: [2, 4], data: feeds[weightsInput("item")] as Float32Array },
    [idsInput("tag")]: { dtype: "int64", dims: [2, 2], data: int64(feeds[idsInput("tag")] as Int32Array) },
    [weightsInput("tag")]: { dtype: "float32", dims: [2, 2], data: feeds[weightsInput("tag")] as Float32Array },
    [idsInput("cat")]: { dtype: "int64", dims: [2, 2], data: int64(feeds[idsInput("cat")] as Int32Array) },
    dense: { dtype: "float32", dims: [2, 1], data: feeds.dense as Float32Array },
  });
  const x = out.x!;
  assert.deepEqual(x.dims, [2, embeddedWidth(layout)]);
  assert.equal(embeddedWidth(layout), 4 * 2 + 1);
  const row = (t: string, id: number) => Array.from(state.get(t)!.subarray(id * 2, id * 2 + 2));
  const add = (a: number[], b: number[], w = 1) => a.map((v, i) => v + w * b[i]!);
  const zero = [0, 0];
  const want = [
    // row 0: item 1; hist mean(2, 3) (the 0 is padding); tags 0.5·e1 + 2·e2; cat e1 + e2; price
    [...row("item", 1), ...add(row("item", 2), row("item", 3)).map((v) => v / 2), ...add(add(zero, row("tag", 1), 0.5), row("tag", 2), 2), ...add(row("cat", 1), row("cat", 2)), 0.25],
    // row 1: item 0 (padding: zero row); hist mean(4, 5); tags 1.5·e3; cat 2·e4; price
    [...zero, ...add(row("item", 4), row("item", 5)).map((v) => v / 2), ...add(zero, row("tag", 3), 1.5), ...add(row("cat", 4), row("cat", 4)), -1],
  ].flat();
  assert.deepEqual(row("item", 0), [0, 0], "row 0 is padding");
  Array.from(x.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `x[${i}] = ${v}, want ${want[i]}`));
});

test("a training step on trainer feeds from a data batch updates only the rows it used", async () => {
  const optimizer = { kind: "sgd" as const };
  const state = initialState(describeModel(probe, null), optimizer, { seed: 3 });
  const before = new Float32Array(state.get("cat")!);
  const trainer = await Trainer.create(state, { train: buildTrainingStep(probe, null, { optimizer }) }, { worker: false });
  const r = await trainer.step(stepFeeds(batch, layout), 0.1);
  assert.ok(Number.isFinite(r.loss));
  const after = state.get("cat")!;
  const stride = after.length / 5;
  for (let id = 0; id < 5; id++) {
    const changed = [0, 1].some((d) => after[id * stride + d] !== before[id * stride + d]);
    assert.equal(changed, id === 1 || id === 2 || id === 4, `cat row ${id}`);
  }
  await trainer.release();
});

test("a model config holding an already validated schema with dense features validates again (run.json round trips)", async () => {
  const { getModel } = await import("../src/models/index.js");
  const entry = getModel("esmm");
  const once = entry.validate({ ...(entry.defaults as Record<string, unknown>), schema }, "test") as { schema: unknown };
  const twice = entry.validate({ ...(entry.defaults as Record<string, unknown>), ...(once as Record<string, unknown>) }, "test") as { schema: unknown };
  assert.deepEqual(twice.schema, schema);
});
