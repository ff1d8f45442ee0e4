/**
 * Encoded rows (a Batch from the shared encoder or a reader) → the inference graph's inputs, per the
 * models' input contract (src/models/inputs.ts), and its outputs back to per-row scores. Pure
 * TypeScript: Node (run, serve) and the browser build feeds with this same code.
 */
import { BatchBuilder, type Batch, type Layout } from "../features/batch.js";
import { encodeDense, encodeIds, encodeRecord, RowError, type RawValue } from "../features/encode.js";
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
    click: new Uint8Array(size), conversion: new Uint8Array(size), truth: null, userId: null, sampleKey: new Uint32Array(size), task: null,
  };
}

/**
 * Encode one context and its candidates as rows (context ∪ candidate each) without building the
 * merged objects: a candidate's own value wins the lookup, then the context's. Features that come
 * from the context for every candidate are encoded once (row 0, by the shared encoder) and their
 * columns copied to the other rows; the rest go through the same per-feature encoders
 * (encodeIds/encodeDense) as encodeRecord. A bad value throws RowError with `line` = candidate
 * index + 1. Shared by the server and the browser scorer.
 */
export function encodeCandidates(layout: Layout, context: Readonly<Record<string, RawValue | undefined>>, candidates: readonly Readonly<Record<string, RawValue | undefined>>[]): Batch {
  const n = candidates.length;
  const b = new BatchBuilder(layout, Math.max(n, 1));
  if (n === 0) return b.take();
  const fromContext = (source: string | null): boolean => source === null || (context[source] !== undefined && candidates.every((c) => c[source] === undefined));
  const sharedIds = layout.idFeatures.map((c) => fromContext(c.feature.source) && fromContext(c.feature.weightSource) && fromContext(c.feature.lengthSource));
  const sharedDense = layout.dense.map((d) => fromContext(d.feature.source));
  const row0 = candidates[0]!;
  encodeRecord(b, (k) => (row0[k] === undefined ? context[k] : row0[k]), "1", 1, { labels: false });
  for (let i = 1; i < n; i++) {
    const cand = candidates[i]!;
    const line = i + 1;
    const need = (source: string, field: string, optional: boolean): RawValue | undefined => {
      const v = cand[source] === undefined ? context[source] : cand[source];
      if (v === undefined && !optional) throw new RowError("missing_column", `the record has no '${source}'`, { line, field }, "mark the feature optional in the schema if it may be absent");
      return v;
    };
    b.clearRow(i);
    layout.idFeatures.forEach((c, k) => {
      const f = c.feature;
      const w = layout.tables[c.table]!.width;
      if (sharedIds[k]) {
        b.ids[c.table]!.copyWithin(i * w + c.offset, c.offset, c.offset + f.maxLen);
        b.weights[c.table]?.copyWithin(i * w + c.offset, c.offset, c.offset + f.maxLen);
        return;
      }
      const v = need(f.source, f.name, f.optional);
      const weights = f.weightSource ? need(f.weightSource, f.name, f.optional) : null;
      const length = f.lengthSource !== null && v !== undefined ? need(f.lengthSource, f.name, false)! : null;
      if (v !== undefined) encodeIds(b, i, c.table, c.offset, f, v, weights ?? null, line, length);
    });
    layout.dense.forEach((d, k) => {
      const dw = layout.denseWidth;
      if (sharedDense[k]) {
        b.dense.copyWithin(i * dw + d.offset, d.offset, d.offset + d.feature.size);
        return;
      }
      const v = need(d.feature.source, d.feature.name, d.feature.optional);
      if (v !== undefined) encodeDense(b, i, d.offset, d.feature, v, line);
    });
    b.size = i + 1;
  }
  return b.take();
}
