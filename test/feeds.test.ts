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
