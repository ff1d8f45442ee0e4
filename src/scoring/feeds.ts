/**
 * Encoded rows (a Batch from the shared encoder or a reader) → the inference graph's inputs, per the
 * models' input contract (src/models/inputs.ts), and its outputs back to per-row scores. Pure
 * TypeScript: Node (run, serve) and the browser build feeds with this same code.
 */
import { BatchBuilder, type Batch, type Layout } from "../features/batch.js";
import { encodeRecord, type RawValue } from "../features/encode.js";
import { DENSE_INPUT, idsInput, tableNeedsWeights, weightsInput } from "../models/inputs.js";

/** A tensor to feed: what onnxruntime-node and onnxruntime-web both take. */
export interface FeedTensor {
  dtype: "int64" | "float32";
  dims: number[];
  data: BigInt64Array | Float32Array;
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

/** The feeds of a batch's first `batch.size` rows. */
export function scoringFeeds(batch: Batch, layout: Layout): Record<string, FeedTensor> {
  const n = batch.size;
  const feeds: Record<string, FeedTensor> = {};
  layout.tables.forEach((t, i) => {
    const ids = batch.ids[i]!;
    feeds[idsInput(t.name)] = { dtype: "int64", dims: [n, t.width], data: widenIds(ids, n * t.width) };
    if (tableNeedsWeights(t)) {
      const given = batch.weights[i];
      const w = new Float32Array(n * t.width);
      if (given) w.set(given.subarray(0, n * t.width));
      else for (let j = 0; j < n * t.width; j++) w[j] = ids[j] === 0 ? 0 : 1;
      feeds[weightsInput(t.name)] = { dtype: "float32", dims: [n, t.width], data: w };
    }
  });
  if (layout.denseWidth > 0) feeds[DENSE_INPUT] = { dtype: "float32", dims: [n, layout.denseWidth], data: batch.dense.slice(0, n * layout.denseWidth) };
  return feeds;
}

/** Concatenate batches (one per request) into one, for one session run. */
export function concatBatches(layout: Layout, batches: readonly Batch[]): Batch {
  if (batches.length === 1) return batches[0]!;
  const size = batches.reduce((s, b) => s + b.size, 0);
  const ids = layout.tables.map((t, i) => {
    const out = new Int32Array(size * t.width);
    let at = 0;
    for (const b of batches) {
      out.set(b.ids[i]!.subarray(0, b.size * t.width), at);
      at += b.size * t.width;
    }
    return out;
  });
  const weights = layout.tables.map((t, i) => {
    if (!batches[0]!.weights[i]) return null;
    const out = new Float32Array(size * t.width);
    let at = 0;
    for (const b of batches) {
      out.set(b.weights[i]!.subarray(0, b.size * t.width), at);
      at += b.size * t.width;
    }
    return out;
  });
  const dense = new Float32Array(size * layout.denseWidth);
  let at = 0;
  for (const b of batches) {
    dense.set(b.dense.subarray(0, b.size * layout.denseWidth), at);
    at += b.size * layout.denseWidth;
  }
  return {
    size, ids, weights, dense,
    click: new Uint8Array(size), conversion: new Uint8Array(size), truth: null, userId: null, sampleKey: new Uint32Array(size),
  };
}

/**
 * Encode one context and its candidates as rows (context ∪ candidate each) without building the
 * merged objects: a candidate's own value wins the lookup, then the context's. A bad value throws
 * RowError with `line` = candidate index + 1. Shared by the server and the browser scorer.
 */
export function encodeCandidates(layout: Layout, context: Readonly<Record<string, RawValue | undefined>>, candidates: readonly Readonly<Record<string, RawValue | undefined>>[]): Batch {
  const b = new BatchBuilder(layout, Math.max(candidates.length, 1));
  for (let i = 0; i < candidates.length; i++) {
    const cand = candidates[i]!;
    const get = (k: string): RawValue | undefined => {
      const v = cand[k];
      return v === undefined ? context[k] : v;
    };
    encodeRecord(b, get, String(i + 1), i + 1, { labels: false });
  }
  return b.take();
}
