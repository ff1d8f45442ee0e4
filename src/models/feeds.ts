/**
 * The feeds contract: a data batch (src/features/batch.ts) as the named inputs of a model graph, per
 * the input contract (src/models/inputs.ts), and the graph's predictions back as per-row scores. One
 * function serves the trainer (int32 ids, labels), the Node scorer, `mtl serve` and `mtl/web` (int64
 * ids, no labels). Pure TypeScript: the browser builds feeds with this same code.
 */
import type { Batch, Layout } from "../features/batch.js";
import type { FloatDType } from "../train/model.js";
import { CLICK_INPUT, CONVERSION_INPUT, DENSE_INPUT, SAMPLE_WEIGHT_INPUT, idsInput, tableNeedsWeights, weightsInput } from "./inputs.js";

/** Training graphs take int32 ids (the trainer indexes rows with them); inference graphs take int64. */
export type IdsDType = "int32" | "int64";

/** A tensor to feed: what onnxruntime-node, onnxruntime-web and mtl's Session all take. */
export type FeedTensor =
  | { dtype: "int32"; dims: number[]; data: Int32Array }
  | { dtype: "int64"; dims: number[]; data: BigInt64Array }
  | { dtype: "float32"; dims: number[]; data: Float32Array }
  | { dtype: "float64"; dims: number[]; data: Float64Array };

export interface FeedOptions {
  /** The ids' dtype: "int32" for training programs, "int64" for inference.onnx. */
  ids: IdsDType;
  /** Include the click and conversion labels (training and eval programs take them; inference does not). */
  labels: boolean;
  /** Float dtype of weights, dense values and labels (default float32). */
  dtype?: FloatDType;
}

export const PREDICTIONS = ["p_ctr", "p_cvr", "p_ctcvr"] as const;
export type PredictionName = (typeof PREDICTIONS)[number];
export type Scores = Record<PredictionName, Float32Array>;

/**
 * int32 ids widened to int64 without a BigInt per value: ids are non-negative, so each int64 is the
 * id in its low word and 0 in its high word (little-endian, as every platform onnxruntime runs on).
 */
export function widenIds(ids: Int32Array, n: number, out?: BigInt64Array): BigInt64Array {
  const wide = out && out.length === n ? out : new BigInt64Array(n);
  const words = new Int32Array(wide.buffer, wide.byteOffset, 2 * n);
  for (let i = 0; i < n; i++) {
    words[2 * i] = ids[i]!;
    words[2 * i + 1] = 0;
  }
  return wide;
}

function floatTensor(dtype: FloatDType, dims: number[]): FeedTensor & { data: Float32Array | Float64Array } {
  const n = dims.reduce((a, b) => a * b, 1);
  return dtype === "float64" ? { dtype, dims, data: new Float64Array(n) } : { dtype, dims, data: new Float32Array(n) };
}

/**
 * The model inputs of a batch's first `batch.size` rows: ids per table, weights where the graph takes
 * them (given weights, else 1 per id and 0 for padding), dense, and the labels when asked. int32 ids
 * are not copied when the batch is exactly full.
 */
export function batchFeeds(batch: Batch, layout: Layout, opts: FeedOptions): Record<string, FeedTensor> {
  const n = batch.size;
  const dtype = opts.dtype ?? "float32";
  const feeds: Record<string, FeedTensor> = {};
  layout.tables.forEach((t, i) => {
    const ids = batch.ids[i]!;
    const count = n * t.width;
    const dims = [n, t.width];
    feeds[idsInput(t.name)] = opts.ids === "int64"
      ? { dtype: "int64", dims, data: widenIds(ids, count) }
      : { dtype: "int32", dims, data: ids.length === count ? ids : ids.subarray(0, count) };
    if (tableNeedsWeights(t)) {
      const w = floatTensor(dtype, dims);
      const given = batch.weights[i];
      if (given) w.data.set(given.subarray(0, count));
      else for (let j = 0; j < count; j++) w.data[j] = ids[j] === 0 ? 0 : 1;
      feeds[weightsInput(t.name)] = w;
    }
  });
  if (layout.denseWidth > 0) {
    const d = floatTensor(dtype, [n, layout.denseWidth]);
    d.data.set(batch.dense.subarray(0, n * layout.denseWidth));
    feeds[DENSE_INPUT] = d;
  }
  if (opts.labels) {
    const click = floatTensor(dtype, [n]), conversion = floatTensor(dtype, [n]);
    for (let r = 0; r < n; r++) {
      click.data[r] = batch.click[r]!;
      conversion.data[r] = batch.conversion[r]!;
    }
    feeds[CLICK_INPUT] = click;
    feeds[CONVERSION_INPUT] = conversion;
    if (layout.schema.sampleWeight !== null) {
      // The losses' per-row weights (models/layers.ts reduceLoss); a batch without them weighs 1.
      const w = floatTensor(dtype, [n]);
      for (let r = 0; r < n; r++) w.data[r] = batch.sampleWeight ? batch.sampleWeight[r]! : 1;
      feeds[SAMPLE_WEIGHT_INPUT] = w;
    }
  }
  return feeds;
}

/**
 * The trainer's feeds (Trainer.step, fit, evaluate) for a data batch: int32 ids and the labels, as
 * typed arrays by input name (the program's signature gives the dims).
 */
export function stepFeeds(batch: Batch, layout: Layout, dtype: FloatDType = "float32"): Record<string, FeedTensor["data"]> {
  const feeds = batchFeeds(batch, layout, { ids: "int32", labels: true, dtype });
  return Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, t.data]));
}
