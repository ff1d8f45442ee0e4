/** The feeds contract (src/models/feeds.ts): a data batch as model inputs for training and scoring alike. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateSchema, toSchemaJson } from "../src/features/schema.js";
import { layoutOf } from "../src/features/batch.js";
import { encodeRecords } from "../src/features/encode.js";
import { getModel } from "../src/models/index.js";
import { batchFeeds } from "../src/models/feeds.js";
import { tableNeedsWeights } from "../src/models/inputs.js";
import { twoTower, twoTowerSchema, type TwoTowerConfig } from "../src/models/two_tower.js";
import { stepFeeds } from "../src/models/feeds.js";
import { buildTrainingStep, describeModel, initialState, Trainer } from "../src/train/index.js";
import { exportInferenceModel } from "../src/export/inference.js";
import { Scorer } from "../src/scoring/scorer.js";

const dir = mkdtempSync(join(tmpdir(), "mtl-feeds-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** One table whose sum-pooled features differ in max_len (1 and 3): the graph pools them with weights. */
const mixedSchema = validateSchema({
  features: [
    { name: "item", kind: "id", hash_buckets: 31, table: "item", dim: 3 },
    { name: "hist", kind: "ids", hash_buckets: 31, max_len: 3, table: "item", dim: 3 },
    { name: "user", kind: "id", hash_buckets: 17, table: "user", dim: 3 },
  ],
  labels: { click: "click", conversion: "buy" },
});
const mixedRecords = Array.from({ length: 12 }, (_, i) => ({
  item: `i${i % 5}`, hist: Array.from({ length: i % 4 }, (_, k) => `i${(i + k) % 7}`), user: `u${i % 3}`, click: i % 2, buy: i % 4 === 1 ? 1 : 0,
}));

test("a table of sum-pooled features with different max_len trains a step and scores", async () => {
  const layout = layoutOf(mixedSchema);
  const entry = getModel("esmm");
  const config = entry.validate({ ...(entry.defaults as Record<string, unknown>), schema: toSchemaJson(mixedSchema), towerSizes: [4] }, "test");
  const optimizer = { kind: "adam" as const };
  const state = initialState(describeModel(entry.definition, config), optimizer, { seed: 1 });
  const trainer = await Trainer.create(state, { train: buildTrainingStep(entry.definition, config, { optimizer }) }, { worker: false });
  try {
    const r = await trainer.step(stepFeeds(encodeRecords(layout, mixedRecords, { labels: true }), layout), 0.01);
    assert.ok(Number.isFinite(r.loss));
  } finally {
    await trainer.release();
  }
  const file = join(dir, "mixed.onnx");
  exportInferenceModel(file, { model: "esmm", seed: 3, config: { schema: toSchemaJson(mixedSchema), towerSizes: [4] } });
  const scorer = await Scorer.open(file, { worker: false });
  try {
    const s = await scorer.score(encodeRecords(scorer.info.layout, mixedRecords, { labels: false }));
    assert.equal(s.p_ctcvr.length, mixedRecords.length);
    assert.ok(s.p_ctcvr.every((p) => p > 0 && p < 1));
  } finally {
    await scorer.release();
  }
});

test("batchFeeds: int64 ids without labels for inference, int32 ids (not copied) with labels for training, derived weights", () => {
  const layout = layoutOf(mixedSchema);
  const batch = encodeRecords(layout, mixedRecords.slice(0, 3), { labels: true });
  assert.equal(tableNeedsWeights(layout.tables[0]!), true, "sums over max_len 1 and 3 pool through weights");
  assert.equal(tableNeedsWeights(layout.tables[1]!), false);
  assert.equal(layout.tables[0]!.weighted, false, "the data carries no weight values for it");
  const inference = batchFeeds(batch, layout, { ids: "int64", labels: false });
  assert.deepEqual(Object.keys(inference).sort(), ["ids.item", "ids.user", "weights.item"]);
  assert.equal(inference["ids.item"]!.dtype, "int64");
  assert.deepEqual(inference["ids.item"]!.dims, [3, 4]);
  assert.deepEqual(Array.from(inference["ids.item"]!.data as BigInt64Array, Number), Array.from(batch.ids[0]!));
  assert.deepEqual(Array.from(inference["weights.item"]!.data as Float32Array), Array.from(batch.ids[0]!, (id) => (id === 0 ? 0 : 1)));
  const training = batchFeeds(batch, layout, { ids: "int32", labels: true, dtype: "float64" });
  assert.equal(training["ids.item"]!.data, batch.ids[0], "a full batch's ids are fed as they are");
  assert.ok(training["weights.item"]!.data instanceof Float64Array);
  assert.deepEqual(Array.from(training["conversion"]!.data as Float32Array), Array.from(batch.conversion));
  assert.deepEqual(Object.keys(stepFeeds(batch, layout)).sort(), ["click", "conversion", "ids.item", "ids.user", "weights.item"]);
});

test("two-tower follows the input contract: its schema's data batches train it through stepFeeds", async () => {
  const config: TwoTowerConfig = { vocabSize: 20, embeddingDim: 3, fields: 2, idsPerField: 2, towerSizes: [4] };
  const layout = layoutOf(twoTowerSchema(config));
  const records = Array.from({ length: 8 }, (_, i) => ({ f0: [i % 19, (i + 3) % 19], f1: [i % 5], click: i % 2, conversion: i % 4 === 1 ? 1 : 0 }));
  const optimizer = { kind: "sgd" as const };
  const state = initialState(describeModel(twoTower, config), optimizer, { seed: 1 });
  assert.deepEqual(describeModel(twoTower, config).tables.map((t) => [t.name, t.rows, t.dim]), [[layout.tables[0]!.name, layout.tables[0]!.rows, layout.tables[0]!.dim]]);
  const trainer = await Trainer.create(state, { train: buildTrainingStep(twoTower, config, { optimizer }) }, { worker: false });
  try {
    const r = await trainer.step(stepFeeds(encodeRecords(layout, records, { labels: true }), layout), 0.1);
    assert.ok(Number.isFinite(r.loss));
  } finally {
    await trainer.release();
  }
});
