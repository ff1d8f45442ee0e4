/**
 * The input layer every model shares: a feature schema's layout becomes embedding lookups, pooling
 * and one dense vector per example. This is the contract between models, the trainer's batches
 * (src/models/feeds.ts) and scoring (run, serve, browser):
 *
 *   ids.<table>      [batch, table.width]  global ids (int64 in inference.onnx), 0 = padding
 *   weights.<table>  [batch, table.width]  float: per-id weights (weighted_ids), 1 for a plain id,
 *                                           0 for padding; present where tableNeedsWeights (a
 *                                           table that one reshape cannot sum-pool)
 *   dense            [batch, denseWidth]    float, already transformed; present when denseWidth > 0
 *   click, conversion [batch]              float labels (conversion = click AND buy: the CTCVR label)
 *
 * The pooled vector is, per table in layout order, each of its features in schema order (sum, mean
 * over non-padding ids, or weighted sum: `dim` values each), then the schema's `products` (the
 * element-wise product of the named features' pooled vectors, `dim` values each, as the Keras ESMM
 * article multiplies the adid and device embeddings), then the dense columns.
 */
import type { Layout, TableLayout } from "../features/batch.js";
import * as ops from "../graph/ops.js";
import type { Value } from "../graph/ir.js";
import type { ModelContext, TableSpec } from "../train/model.js";

export const idsInput = (table: string): string => `ids.${table}`;
export const weightsInput = (table: string): string => `weights.${table}`;
export const DENSE_INPUT = "dense";
export const CLICK_INPUT = "click";
export const CONVERSION_INPUT = "conversion";
/** Per-row sample weights [batch] of training and eval programs, present when the schema names a sample_weight column. */
export const SAMPLE_WEIGHT_INPUT = "sample_weight";

export interface EmbeddingOptions {
  /** Row 0 of every table is padding: zero, never updated (PaddleRec's padding_idx=0). Default true. */
  paddingRow0?: boolean;
  /** Embeddings start uniform in [-limit, limit]. Default 0.05. */
  embeddingInit?: number;
}

/**
 * Whether the graph takes `weights.<table>` for this table: the one answer that the input layer and
 * the feeds (src/models/feeds.ts) both ask. A table whose features are all plain sums of the same
 * number of ids pools with one reshape and needs none; weighted ids, mean pooling, or sums over
 * different `max_len` pool per feature through the weights (1 per id, 0 for padding where the data
 * has no weight values: see `TableLayout.weighted`).
 */
export function tableNeedsWeights(t: TableLayout): boolean {
  const k = t.features[0]!.feature.maxLen;
  return !t.features.every((f) => (f.feature.kind === "id" || (f.feature.kind === "ids" && f.feature.pooling !== "mean")) && f.feature.maxLen === k);
}

/** The width of `embedFeatures`'s output for a layout. */
export function embeddedWidth(layout: Layout): number {
  const products = layout.schema.products.reduce((w, p) => w + pooledColumns(layout, p[0]!).dim, 0);
  return layout.tables.reduce((w, t) => w + t.features.length * t.dim, 0) + products + layout.denseWidth;
}

/** Where a feature's pooled vector sits in embedFeatures' output: [offset, offset + dim). */
function pooledColumns(layout: Layout, name: string): { offset: number; dim: number } {
  let offset = 0;
  for (const t of layout.tables) {
    for (const f of t.features) {
      if (f.feature.name === name) return { offset, dim: t.dim };
      offset += t.dim;
    }
  }
  throw new Error(`no id feature '${name}' in the layout (the schema validator checks products)`);
}

/** Sum over axis 2 of [batch, F, K, D] as Split + Sum (onnxruntime's middle-axis ReduceSum is ~4x slower on CPU). */
export function sumPool(x: Value, k: number): Value {
  if (k === 1) return ops.Squeeze(x, [2]);
  return ops.Squeeze(ops.Sum(...ops.Split(x, { axis: 2, split: new Array<number>(k).fill(1) })), [2]);
}

/** [batch, inputWidth] of pooled embeddings and dense features (see the module comment for the order). */
export function embedFeatures(ctx: ModelContext, layout: Layout, opts: EmbeddingOptions = {}): Value {
  const parts: Value[] = [];
  for (const t of layout.tables) {
    const spec: TableSpec = {
      name: t.name, rows: t.rows, dim: t.dim,
      init: { kind: "uniform", limit: opts.embeddingInit ?? 0.05 }, paddingRow0: opts.paddingRow0 ?? true,
    };
    const emb = ctx.lookup(spec, idsInput(t.name), ["batch", t.width]); // [batch, width, dim]
    if (!tableNeedsWeights(t)) {
      const k = t.features[0]!.feature.maxLen;
      // Every feature sums k ids: one reshape pools the whole table.
      const n = t.features.length;
      parts.push(ops.Reshape(sumPool(ops.Reshape(emb, [-1, n, k, t.dim]), k), [-1, n * t.dim]));
      continue;
    }
    const weights = ctx.input(weightsInput(t.name), ctx.dtype, ["batch", t.width]);
    const weighted = ops.Mul(emb, ops.Unsqueeze(weights, [-1]));
    for (const f of t.features) {
      const cols = [f.offset, f.offset + f.feature.maxLen];
      const sum = ops.ReduceSum(ops.Slice(weighted, [cols[0]!], [cols[1]!], [1]), { axes: [1], keepdims: 0 }); // [batch, dim]
      if (f.feature.kind === "ids" && f.feature.pooling === "mean") {
        // Mean over the ids present; a row without any keeps a zero vector.
        const count = ops.ReduceSum(ops.Slice(weights, [cols[0]!], [cols[1]!], [1]), { axes: [1], keepdims: 1 });
        parts.push(ops.Div(sum, ops.Max(count, 1)));
      } else {
        parts.push(sum);
      }
    }
  }
  if (layout.schema.products.length) {
    // Element-wise products of pooled vectors, sliced out of the pooled features.
    const pooled = parts.length === 1 ? parts[0]! : ops.Concat(parts, { axis: 1 });
    parts.length = 0;
    parts.push(pooled);
    for (const names of layout.schema.products) {
      const vectors = names.map((n) => {
        const { offset, dim } = pooledColumns(layout, n);
        return ops.Slice(pooled, [offset], [offset + dim], [1]);
      });
      parts.push(vectors.reduce((a, b) => ops.Mul(a, b)));
    }
  }
  if (layout.denseWidth > 0) parts.push(ctx.input(DENSE_INPUT, ctx.dtype, ["batch", layout.denseWidth]));
  return parts.length === 1 ? parts[0]! : ops.Concat(parts, { axis: 1 });
}

/** The two labels of the contract, float [batch]: click, and conversion (= click AND buy, the CTCVR label). */
export function labelInputs(ctx: ModelContext): { click: Value; conversion: Value } {
  return { click: ctx.input(CLICK_INPUT, ctx.dtype, ["batch"]), conversion: ctx.input(CONVERSION_INPUT, ctx.dtype, ["batch"]) };
}
