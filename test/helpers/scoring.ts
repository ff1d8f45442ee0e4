/** A small schema-based ESMM (hashed, integer, list, weighted and dense features) exported for scoring tests. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { validateSchema, toSchemaJson, type FeatureSchema } from "../../src/features/schema.js";
import { exportInferenceModel, type InferenceExportOptions, type InferenceExportResult } from "../../src/export/inference.js";

export const CONTEXT_KEYS = ["user", "age", "hist"];

export function scoringSchema(): FeatureSchema {
  return validateSchema({
    name: "shop",
    features: [
      { name: "user", kind: "id", hash_buckets: 97, table: "user", dim: 4 },
      { name: "age", kind: "id", vocab_size: 10, table: "age", dim: 4 },
      { name: "hist", kind: "ids", hash_buckets: 61, max_len: 3, pooling: "mean", table: "item", dim: 4 },
      { name: "item", kind: "id", hash_buckets: 61, table: "item", dim: 4 },
      { name: "tags", kind: "weighted_ids", weight_source: "tag_w", hash_buckets: 13, max_len: 2, table: "tag", dim: 4 },
      { name: "price", kind: "dense", transform: "log1p" },
    ],
    labels: { click: "click", conversion: "buy" },
    // The scoring graph takes these once per context (docs/serving.md): every scoring test runs the split.
    context: CONTEXT_KEYS,
  });
}

/** Records of the schema above (context and item fields in one object). */
export function scoringRecords(n: number, seed = 1): Record<string, string | number | (string | number)[]>[] {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: n }, (_, i) => ({
    user: `u${Math.floor(next() * 40)}`,
    age: Math.floor(next() * 10),
    hist: Array.from({ length: Math.floor(next() * 5) }, () => `i${Math.floor(next() * 90)}`),
    item: `i${Math.floor(next() * 90)}`,
    tags: i % 3 === 0 ? [] : ["sale", "new"].slice(0, 1 + (i % 2)),
    tag_w: i % 3 === 0 ? [] : [0.5, 2].slice(0, 1 + (i % 2)),
    price: Math.round(next() * 1000) / 10,
  }));
}

export function exportScoringModel(dir: string, name = "model.onnx", opts: Partial<InferenceExportOptions> = {}): InferenceExportResult {
  mkdirSync(dir, { recursive: true });
  return exportInferenceModel(join(dir, name), {
    model: "esmm", seed: 3, ...opts, config: { schema: toSchemaJson(scoringSchema()), towerSizes: [16, 8], ...(opts.config ?? {}) },
  });
}
