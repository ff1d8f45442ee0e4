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
import type { Activation } from "./layers.js";

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
  return ops.Squeeze(ops.addAll(ops.Split(x, { axis: 2, split: new Array<number>(k).fill(1) })), [2]);
}

/** The scoring graph's context-side inputs (see embedFeatures): ids and weights per context row, and each row's context. */
export const contextIdsInput = (table: string): string => `context.ids.${table}`;
export const contextWeightsInput = (table: string): string => `context.weights.${table}`;
/** int64 [batch]: the context row (of `context.ids.*`) each row is scored with. */
export const CONTEXT_INDEX_INPUT = "context.index";

/** One side of a context split: a table's features on that side, re-based, and each side column's column in the full id matrix. */
export interface SideTable {
  readonly table: TableLayout;
  /** The table's index in `Layout.tables` (the batch's id and weight matrices). */
  readonly at: number;
  readonly columns: readonly number[];
  /** The first column when `columns` are one consecutive run (each row a plain offset copy), else -1. */
  readonly run: number;
}

/** The schema's context-side features and the rest, per table (tables without a feature on a side are left out of it). */
export interface ContextSplit {
  readonly context: readonly SideTable[];
  readonly candidate: readonly SideTable[];
}

const SPLITS = new WeakMap<Layout, ContextSplit | null>();

/** The layout split by the schema's `context` (once per layout); null when the schema names no context features. */
export function contextSplitOf(layout: Layout): ContextSplit | null {
  let split = SPLITS.get(layout);
  if (split === undefined) SPLITS.set(layout, (split = splitLayout(layout)));
  return split;
}

function splitLayout(layout: Layout): ContextSplit | null {
  const context = new Set(layout.schema.context);
  if (context.size === 0) return null;
  const side = (inContext: boolean): SideTable[] =>
    layout.tables.flatMap((t, at) => {
      const features = t.features.filter((f) => context.has(f.feature.name) === inContext);
      if (!features.length) return [];
      const columns: number[] = [];
      const rebased = features.map((f) => {
        const offset = columns.length;
        for (let j = 0; j < f.feature.maxLen; j++) columns.push(f.offset + j);
        return { ...f, offset };
      });
      const run = columns.every((c, j) => c === columns[0]! + j) ? columns[0]! : -1;
      return [{ table: { ...t, width: columns.length, features: rebased }, at, columns, run }];
    });
  return { context: side(true), candidate: side(false) };
}

/**
 * The pooled id features of `tables` from inputs `ids(t)` (and `weights(t)` where the table needs
 * them) with `rows` rows: per table, its features in order (one block for a table that one reshape
 * pools), so concatenated they run table by table, feature by feature.
 */
function poolTables(ctx: ModelContext, tables: readonly TableLayout[], ids: (t: string) => string, weights: (t: string) => string, rows: string, opts: EmbeddingOptions): Value[] {
  const parts: Value[] = [];
  for (const t of tables) {
    const spec: TableSpec = {
      name: t.name, rows: t.rows, dim: t.dim,
      init: { kind: "uniform", limit: opts.embeddingInit ?? 0.05 }, paddingRow0: opts.paddingRow0 ?? true,
    };
    const emb = ctx.lookup(spec, ids(t.name), [rows, t.width]); // [rows, width, dim]
    if (!tableNeedsWeights(t)) {
      const k = t.features[0]!.feature.maxLen;
      // Every feature sums k ids: one reshape pools the whole table.
      const n = t.features.length;
      parts.push(ops.Reshape(sumPool(ops.Reshape(emb, [-1, n, k, t.dim]), k), [-1, n * t.dim]));
      continue;
    }
    const w = ctx.input(weights(t.name), ctx.dtype, [rows, t.width]);
    const weighted = ops.Mul(emb, ops.Unsqueeze(w, [-1]));
    for (const f of t.features) {
      const cols = [f.offset, f.offset + f.feature.maxLen];
      const sum = ops.ReduceSum(ops.Slice(weighted, [cols[0]!], [cols[1]!], [1]), { axes: [1], keepdims: 0 }); // [rows, dim]
      if (f.feature.kind === "ids" && f.feature.pooling === "mean") {
        // Mean over the ids present; a row without any keeps a zero vector. Clip(count, 1) is max(count, 1)
        // (same values, same gradient) in an op that onnxruntime-web's WebGPU backend has; it lacks Max.
        const count = ops.ReduceSum(ops.Slice(w, [cols[0]!], [cols[1]!], [1]), { axes: [1], keepdims: 1 });
        parts.push(ops.Div(sum, ops.Clip(count, 1)));
      } else {
        parts.push(sum);
      }
    }
  }
  return parts;
}

/** [batch, inputWidth] of pooled embeddings and dense features: embedInput's full value, for a model that uses it whole. */
export function embedFeatures(ctx: ModelContext, layout: Layout, opts: EmbeddingOptions = {}): Value {
  return embedInput(ctx, layout, opts).value;
}

const concat = (parts: readonly Value[]): Value => (parts.length === 1 ? parts[0]! : ops.Concat(parts, { axis: 1 }));

/**
 * The input split into its context side, [contexts, contextColumns.length], computed once per
 * context row, and its candidate side, [batch, candidateColumns.length]; `index` [batch] names each
 * row's context row. The columns say where each side's columns sit in the full input, so a linear
 * layer splits its weight rows the same way (src/models/layers.ts `linear`).
 */
export interface SplitInput {
  context: Value;
  candidate: Value;
  index: Value;
  contextColumns: readonly number[];
  candidateColumns: readonly number[];
}

/**
 * The model input: [batch, inputWidth] of pooled embeddings and dense features (see the module
 * comment for the order).
 *
 * A scoring graph (`ctx.contextSplit`) of a schema with `context` features takes those features once
 * per context (`context.ids.<table>` [contexts, width], `context.weights.<table>`) and the others
 * per row (`ids.<table>` [batch, width], `weights.<table>`, `dense`), with `context.index` [batch]
 * naming each row's context: the first layers multiply the context's share once per context, not
 * once per candidate. Plain rows score as rows that are each their own context. Training and eval
 * graphs never split.
 */
export function embedInput(ctx: ModelContext, layout: Layout, opts: EmbeddingOptions = {}): Activation {
  const width = embeddedWidth(layout);
  const split = ctx.contextSplit ? contextSplitOf(layout) : null;
  if (!split) {
    const parts = poolTables(ctx, layout.tables, idsInput, weightsInput, "batch", opts);
    if (layout.schema.products.length) {
      // Element-wise products of pooled vectors, sliced out of the pooled features.
      const pooled = concat(parts);
      parts.length = 0;
      parts.push(pooled);
      for (const names of layout.schema.products) {
        parts.push(names.map((n) => {
          const { offset, dim } = pooledColumns(layout, n);
          return ops.Slice(pooled, [offset], [offset + dim], [1]);
        }).reduce((a, b) => ops.Mul(a, b)));
      }
    }
    if (layout.denseWidth > 0) parts.push(ctx.input(DENSE_INPUT, ctx.dtype, ["batch", layout.denseWidth]));
    return { value: concat(parts), width };
  }
  const contextTables = split.context.map((s) => s.table);
  const candidateTables = split.candidate.map((s) => s.table);
  const context = concat(poolTables(ctx, contextTables, contextIdsInput, contextWeightsInput, "contexts", opts));
  const index = ctx.input(CONTEXT_INDEX_INPUT, "int64", ["batch"]);
  // Where each side's pooled columns sit in the full input: feature by feature, table by table.
  const columnsOf = (tables: readonly TableLayout[]): number[] => tables.flatMap((t) => t.features.flatMap((f) => {
    const { offset, dim } = pooledColumns(layout, f.feature.name);
    return Array.from({ length: dim }, (_, j) => offset + j);
  }));
  const contextColumns = columnsOf(contextTables);
  const candidateColumns = columnsOf(candidateTables);
  const candidateParts = candidateTables.length ? [concat(poolTables(ctx, candidateTables, idsInput, weightsInput, "batch", opts))] : [];
  // A feature's pooled vector per row: sliced from its side, a context one gathered to the rows.
  const pooledFeature = (name: string): Value => {
    const { offset, dim } = pooledColumns(layout, name);
    const at = contextColumns.indexOf(offset);
    if (at >= 0) return ops.Gather(ops.Slice(context, [at], [at + dim], [1]), index, { axis: 0 });
    const c = candidateColumns.indexOf(offset);
    return ops.Slice(candidateParts[0]!, [c], [c + dim], [1]);
  };
  let next = layout.tables.reduce((w, t) => w + t.features.length * t.dim, 0);
  for (const names of layout.schema.products) {
    candidateParts.push(names.map(pooledFeature).reduce((a, b) => ops.Mul(a, b)));
    const dim = pooledColumns(layout, names[0]!).dim;
    for (let j = 0; j < dim; j++) candidateColumns.push(next++);
  }
  if (layout.denseWidth > 0) {
    candidateParts.push(ctx.input(DENSE_INPUT, ctx.dtype, ["batch", layout.denseWidth]));
    for (let j = 0; j < layout.denseWidth; j++) candidateColumns.push(next++);
  }
  const candidate = candidateParts.length ? concat(candidateParts) : null;
  // The full input, for any layer that is not a linear one: both sides per row, columns back in order.
  const sides = [ops.Gather(context, index, { axis: 0 }), ...(candidate ? [candidate] : [])];
  const order = [...contextColumns, ...candidateColumns];
  const inverse = new Array<number>(width);
  order.forEach((col, i) => (inverse[col] = i));
  const value = ops.Gather(concat(sides), ctx.graph.ints(inverse), { axis: 1 });
  if (!candidate) return { value, width };
  return { value, width, split: { context, candidate, index, contextColumns, candidateColumns } };
}

/** The two labels of the contract, float [batch]: click, and conversion (= click AND buy, the CTCVR label). */
export function labelInputs(ctx: ModelContext): { click: Value; conversion: Value } {
  return { click: ctx.input(CLICK_INPUT, ctx.dtype, ["batch"]), conversion: ctx.input(CONVERSION_INPUT, ctx.dtype, ["batch"]) };
}
