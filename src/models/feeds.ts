/**
 * The feeds contract: a data batch (src/features/batch.ts) as the named inputs of a model graph, per
 * the input contract (src/models/inputs.ts), and the graph's predictions back as per-row scores. One
 * function serves the trainer (int32 ids, labels), the Node scorer, `mtl serve` and `mtl/web` (int64
 * ids, no labels). Pure TypeScript: the browser builds feeds with this same code.
 */
import type { Batch, Layout } from "../features/batch.js";
import type { FloatDType } from "../train/model.js";
import { CLICK_INPUT, CONTEXT_INDEX_INPUT, CONVERSION_INPUT, DENSE_INPUT, SAMPLE_WEIGHT_INPUT, contextIdsInput, contextSplitOf, contextWeightsInput, idsInput, tableNeedsWeights, weightsInput, type ContextSplit, type SideTable } from "./inputs.js";

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
  /**
   * Feed a scoring graph split by the schema's `context` features (one that takes `context.index`;
   * see embedInput): consecutive rows with the same context features share one context row.
   */
  contextSplit?: boolean;
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
 * Feeds `names.ids` (and `names.weights` where the graph takes them) for table `at` of the layout:
 * all its columns of the first `n` rows, or, for one side of a context split, that side's columns of
 * the batch rows `rows` (null: the first `n`). int32 ids are not copied when the batch is exactly
 * full and nothing is selected.
 */
function tableFeeds(feeds: Record<string, FeedTensor>, batch: Batch, layout: Layout, at: number, side: SideTable | null, rows: readonly number[] | null, n: number, names: { ids: string; weights: string }, opts: FeedOptions): void {
  const full = layout.tables[at]!.width;
  const table = side ? side.table : layout.tables[at]!;
  const ids = batch.ids[at]!;
  const given = batch.weights[at];
  const m = rows ? rows.length : n;
  const width = table.width;
  const count = m * width;
  const dims = [m, width];
  const w = tableNeedsWeights(table) ? floatTensor(opts.dtype ?? "float32", dims) : null;
  const weights = w?.data ?? null;
  if (!side) {
    const picked = ids.length === count ? ids : ids.subarray(0, count);
    if (weights) {
      if (given) weights.set(given.subarray(0, count));
      else for (let j = 0; j < count; j++) weights[j] = ids[j] === 0 ? 0 : 1;
    }
    feeds[names.ids] = opts.ids === "int64" ? { dtype: "int64", dims, data: widenIds(picked, count) } : { dtype: "int32", dims, data: picked };
  } else {
    // Picked straight into the feed: an int64 is the id in its low word, 0 in its high word (see widenIds).
    const wide = opts.ids === "int64" ? new BigInt64Array(count) : null;
    const out = wide ? new Int32Array(wide.buffer) : new Int32Array(count);
    const step = wide ? 2 : 1;
    const { columns: cols, run } = side;
    for (let i = 0; i < m; i++) {
      const src = (rows ? rows[i]! : i) * full;
      const dst = i * width;
      if (run >= 0 && !weights) {
        for (let j = 0, c = src + run, o = dst * step; j < width; j++, c++, o += step) out[o] = ids[c]!;
        continue;
      }
      for (let j = 0; j < width; j++) {
        const c = src + cols[j]!;
        out[(dst + j) * step] = ids[c]!;
        if (weights) weights[dst + j] = given ? given[c]! : ids[c] === 0 ? 0 : 1;
      }
    }
    feeds[names.ids] = wide ? { dtype: "int64", dims, data: wide } : { dtype: "int32", dims, data: out };
  }
  if (w) feeds[names.weights] = w;
}

/**
 * Each row's context row for a split graph: a row whose context columns (ids and any weights) equal
 * those of the previous row's context row shares it (a request's candidates all do). Returns the
 * first batch row of each context row and each row's context row.
 */
function contextRows(batch: Batch, layout: Layout, split: ContextSplit): { first: number[]; index: Int32Array } {
  const n = batch.size;
  const first: number[] = [];
  const index = new Int32Array(n);
  const sides = split.context.map((s) => ({ w: layout.tables[s.at]!.width, ids: batch.ids[s.at]!, weights: batch.weights[s.at] ?? null, columns: s.columns }));
  const same = (r: number, q: number): boolean => {
    for (const { w, ids, weights, columns } of sides) {
      const a = r * w, b = q * w;
      for (let j = 0; j < columns.length; j++) {
        const c = columns[j]!;
        if (ids[a + c] !== ids[b + c]) return false;
        if (weights && weights[a + c] !== weights[b + c]) return false;
      }
    }
    return true;
  };
  for (let r = 0; r < n; r++) {
    if (r === 0 || !same(r, first[first.length - 1]!)) first.push(r);
    index[r] = first.length - 1;
  }
  return { first, index };
}

/**
 * The model inputs of a batch's first `batch.size` rows: ids per table, weights where the graph takes
 * them (given weights, else 1 per id and 0 for padding), dense, and the labels when asked; for a
 * split scoring graph (`contextSplit`), the context-side features once per context row.
 */
export function batchFeeds(batch: Batch, layout: Layout, opts: FeedOptions): Record<string, FeedTensor> {
  const n = batch.size;
  const dtype = opts.dtype ?? "float32";
  const feeds: Record<string, FeedTensor> = {};
  const split = opts.contextSplit ? contextSplitOf(layout) : null;
  if (split) {
    const { first, index } = contextRows(batch, layout, split);
    for (const s of split.context) tableFeeds(feeds, batch, layout, s.at, s, first, n, { ids: contextIdsInput(s.table.name), weights: contextWeightsInput(s.table.name) }, opts);
    for (const s of split.candidate) tableFeeds(feeds, batch, layout, s.at, s, null, n, { ids: idsInput(s.table.name), weights: weightsInput(s.table.name) }, opts);
    feeds[CONTEXT_INDEX_INPUT] = { dtype: "int64", dims: [n], data: widenIds(index, n) };
  } else {
    layout.tables.forEach((t, i) => tableFeeds(feeds, batch, layout, i, null, null, n, { ids: idsInput(t.name), weights: weightsInput(t.name) }, opts));
  }
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
