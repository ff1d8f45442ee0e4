/**
 * Three input-layer defects the look-alike data exposed (issue 10), fixed for every model:
 * several tables of the same dim in one training step, mean pooling masked by a length column, and
 * a configurable padding id so that a real raw id 0 lands on a real row.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSchema, toSchemaJson, schemaHash, validateSchema, defaultAliccpSchema } from "../src/features/schema.js";
import { BatchBuilder, layoutOf } from "../src/features/batch.js";
import { encodeRecord, encodeRecords, RowError } from "../src/features/encode.js";
import { embedFeatures } from "../src/models/inputs.js";
import { stepFeeds } from "../src/models/feeds.js";
import { buildTrainingStep, describeModel, initialState, Trainer, type ModelDefinition } from "../src/train/index.js";
import * as ops from "../src/graph/ops.js";
import type { FeatureSchema } from "../src/features/schema.js";
import type { RawValue } from "../src/features/encode.js";

function probeOf(schema: FeatureSchema): ModelDefinition<null> {
  const layout = layoutOf(schema);
  return {
    name: "probe",
    build(ctx) {
      const x = embedFeatures(ctx, layout, { paddingRow0: true });
      const loss = ops.ReduceMean(ops.Mul(x, x), { keepdims: 0 });
      return { predictions: { x }, losses: { l2: loss }, loss };
    },
  };
}

function encode(schema: FeatureSchema, records: Record<string, RawValue>[]) {
  return encodeRecords(layoutOf(schema), records);
}

test("several tables of the same dim train in one step (each table's rows input has its own symbolic dim)", async () => {
  // Three tables of dim 8 whose batches touch 40, 2 and 1 distinct rows: with one shared "rows"
  // dimension onnxruntime re-used one table's buffer for another ("Shape mismatch attempting to re-use buffer").
  const schema = validateSchema({
    features: [
      { name: "user", kind: "id", vocab_size: 200, dim: 8 },
      { name: "gender", kind: "id", vocab_size: 3, dim: 8 },
      { name: "tags", kind: "ids", vocab_size: 50, max_len: 3, pooling: "mean", dim: 8 },
      { name: "country", kind: "id", vocab_size: 5, dim: 8 },
    ],
  });
  const records = Array.from({ length: 40 }, (_, i) => ({ click: i % 2, conversion: 0, user: 1 + i * 3, gender: 1 + (i % 2), tags: [1 + (i % 7), 9], country: 2 }));
  const model = probeOf(schema);
  const program = buildTrainingStep(model, null, { optimizer: { kind: "adam" } });
  const rowDims = program.graph.inputs.filter((v) => v.name.endsWith("__rows")).map((v) => v.shape[0]);
  assert.equal(new Set(rowDims).size, 4, `one symbolic dim per table, got ${JSON.stringify(rowDims)}`);
  const state = initialState(describeModel(model, null), { kind: "adam" }, { seed: 1 });
  const trainer = await Trainer.create(state, { train: program }, { worker: false });
  const layout = layoutOf(schema);
  for (let s = 0; s < 3; s++) {
    const r = await trainer.step(stepFeeds(encode(schema, records), layout), 0.01);
    assert.ok(Number.isFinite(r.loss));
  }
  await trainer.release();
});

const lengthSchema = validateSchema({
  labels: { click: "label", conversion: null },
  task: "aid",
  features: [
    { name: "interest1", kind: "ids", vocab_size: 125, max_len: 10, pooling: "mean", length: "interest1_length", padding_id: null, dim: 2 },
    { name: "house", kind: "id", vocab_size: 2, padding_id: null, dim: 2 },
  ],
});

test("a length column masks the padded positions: only the first `length` ids count, whatever the pad values", () => {
  const b = encode(lengthSchema, [
    { label: 1, aid: 7, interest1: [69, 75, 27, 80, 80, 80, 80, 80, 80, 80], interest1_length: 3, house: 0 },
    { label: 0, aid: 9, interest1: [10, 10, 10, 10, 10, 10, 10, 10, 10, 10], interest1_length: 0, house: 1 },
    { label: 1, aid: 7, interest1: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], interest1_length: 10, house: 1 },
  ]);
  const layout = layoutOf(lengthSchema);
  const t = layout.tables.findIndex((x) => x.name === "interest1");
  // raw ids are shifted by one (padding_id null: raw 0 is real), the positions past `length` stay 0
  assert.deepEqual(Array.from(b.ids[t]!.subarray(0, 10)), [70, 76, 28, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(b.ids[t]!.subarray(10, 20)), new Array(10).fill(0));
  assert.deepEqual(Array.from(b.ids[t]!.subarray(20, 30)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  // the model's mean divides by the true length: the weights the feeds derive are 1 exactly on the kept ids
  const feeds = stepFeeds(b, layout);
  const w = Array.from(feeds["weights.interest1"] as Float32Array);
  assert.deepEqual(w.slice(0, 10), [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(w.slice(10, 20).reduce((a, x) => a + x, 0), 0);
  assert.equal(w.slice(20, 30).reduce((a, x) => a + x, 0), 10);
  // the task id and the single label
  assert.deepEqual(Array.from(b.task!), [7, 9, 7]);
  assert.deepEqual(Array.from(b.click), [1, 0, 1]);
  assert.deepEqual(Array.from(b.conversion), [0, 0, 0]);
});

test("a bad length is one clear row error naming the length column", () => {
  const bad = (interest1_length: RawValue) => () => encode(lengthSchema, [{ label: 1, aid: 1, interest1: [1, 2, 3], interest1_length, house: 0 }]);
  assert.throws(bad(4), (e: unknown) => e instanceof RowError && e.reason === "bad_length" && e.where.field === "interest1_length" && /length 4 .*holds 3/.test(e.message));
  assert.throws(bad(-1), (e: unknown) => e instanceof RowError && e.reason === "bad_length");
  assert.throws(bad("x"), (e: unknown) => e instanceof RowError && e.reason === "bad_length");
  assert.throws(() => encode(lengthSchema, [{ label: 1, aid: -3, interest1: [1], interest1_length: 1, house: 0 }]), (e: unknown) => e instanceof RowError && e.reason === "bad_task" && e.where.field === "aid");
  assert.throws(() => validateSchema({ features: [{ name: "a", kind: "id", vocab_size: 3, length: "a_len" }] }), /'length' applies to ids and weighted_ids/);
});

test("padding id: raw 0 is a real row unless padding_id is 0 (the default); -1 pads are dropped, never hashed or counted", async () => {
  const schema = validateSchema({
    features: [
      { name: "house", kind: "id", vocab_size: 2, padding_id: null, dim: 2 },
      { name: "legacy", kind: "id", vocab_size: 4, dim: 2 },
      { name: "tf", kind: "ids", vocab_size: 10, max_len: 3, pooling: "mean", padding_id: -1, dim: 2 },
      { name: "tags", kind: "ids", hash_buckets: 100, max_len: 3, pooling: "mean", padding_id: -1, dim: 2 },
    ],
  });
  const layout = layoutOf(schema);
  const rows = Object.fromEntries(layout.tables.map((t) => [t.name, t.rows]));
  assert.deepEqual(rows, { house: 3, legacy: 4, tf: 11, tags: 101 }, "a real raw 0 needs one more row; the default keeps vocab_size rows");
  const builder = new BatchBuilder(layout, 2, { rawIdCounts: true });
  const rec1: Record<string, RawValue> = { click: 1, conversion: 0, house: 0, legacy: 0, tf: [5, -1, -1], tags: [5, -1, -1] };
  const rec2: Record<string, RawValue> = { click: 0, conversion: 0, house: 1, legacy: 3, tf: ["0", "-1", "2"], tags: "x|-1|y" };
  encodeRecord(builder, (k) => rec1[k], "1", 1);
  encodeRecord(builder, (k) => rec2[k], "2", 2);
  const b = builder.take();
  const ids = (name: string) => Array.from(b.ids[layout.tables.findIndex((t) => t.name === name)]!);
  assert.deepEqual(ids("house"), [1, 2], "house = 0 is row 1, a real trainable row; row 0 stays padding");
  assert.deepEqual(ids("legacy"), [0, 3], "the default padding_id 0: raw 0 is the padding row, as before");
  assert.deepEqual(ids("tf"), [6, 0, 0, 1, 3, 0], "-1 pads dropped, raw ids shifted by one");
  const tags = ids("tags");
  assert.equal(tags.slice(0, 3).filter((x) => x !== 0).length, 1, "[5,-1,-1] holds one hashed id, not three");
  assert.equal(tags.slice(3).filter((x) => x !== 0).length, 2);
  assert.deepEqual(Array.from(b.rawIdCounts!), [1, 1, 1, 1, 1, 1, 2, 2], "pads are not counted");
  // raw 0 trains its own row under paddingRow0
  const model = probeOf(schema);
  const state = initialState(describeModel(model, null), { kind: "sgd" }, { seed: 2 });
  const before = Array.from(state.get("house")!);
  const trainer = await Trainer.create(state, { train: buildTrainingStep(model, null, { optimizer: { kind: "sgd" } }) }, { worker: false });
  await trainer.step(stepFeeds(b, layout), 0.5);
  await trainer.release();
  const after = Array.from(state.get("house")!);
  const stride = after.length / 3;
  assert.deepEqual(after.slice(0, 2), [0, 0], "the padding row stays zero");
  assert.notDeepEqual(after.slice(stride, stride + 2), before.slice(stride, stride + 2), "house = 0 (row 1) was trained");
});

test("padding_id and length round-trip through the schema file; schemas without them keep their JSON and hash", () => {
  const round = parseSchema(JSON.stringify(toSchemaJson(lengthSchema)));
  assert.deepEqual(round, lengthSchema);
  const aliccp = defaultAliccpSchema();
  const json = JSON.stringify(toSchemaJson(aliccp));
  assert.ok(!/padding_id|"length"|"task"/.test(json), json.slice(0, 200));
  assert.equal(schemaHash(aliccp), schemaHash(parseSchema(json)));
  assert.throws(() => validateSchema({ features: [{ name: "a", kind: "id", vocab_size: 3, padding_id: "z" }] }), /padding_id is an integer/);
  assert.throws(() => validateSchema({ features: [{ name: "a", kind: "id", vocab_size: 3, padding_id: 1.5 }] }), /expected an integer, a string or null/);
});

test("serving: encodeCandidates honours a candidate's length column as encodeRecords does", async () => {
  const { encodeCandidates } = await import("../src/features/encode.js");
  const layout = layoutOf(lengthSchema);
  const context = { interest1: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], interest1_length: 2 };
  const candidates = [{ house: 0 }, { house: 1, interest1_length: 5 }, { house: 1 }];
  const got = encodeCandidates(layout, context, candidates);
  const want = encodeRecords(layout, candidates.map((c) => ({ ...context, ...c })), { labels: false });
  assert.deepEqual(got.ids.map((a) => Array.from(a)), want.ids.map((a) => Array.from(a)));
  assert.deepEqual(Array.from(got.ids[0]!.subarray(10, 20)), [2, 3, 4, 5, 6, 0, 0, 0, 0, 0]);
});
