/**
 * Rows held in memory for MetaHeac: a campaign's seeds, its candidates, the meta-training pool.
 * Look-alike sets are small (a campaign's seed list, a few thousand rows per campaign), so both
 * stages sample rows by index from one columnar batch. Pure TypeScript (the browser adapts too).
 */
import { MtlError } from "../errors.js";
import { BatchBuilder, copyRow, type Batch, type Layout } from "../features/batch.js";
import type { TypedArray } from "../graph/dtype.js";
import { stepFeeds } from "../models/feeds.js";
import { METAHEAC_PREDICTION } from "../models/metaheac.js";
import type { Adapter } from "./adapter.js";

/** Concatenates batches (one layout) into one batch; the task ids travel with their rows. */
export function concatRows(layout: Layout, batches: readonly Batch[]): Batch {
  const total = batches.reduce((n, b) => n + b.size, 0);
  const builder = new BatchBuilder(layout, Math.max(total, 1));
  for (const b of batches) for (let r = 0; r < b.size; r++) copyRow(layout, b, r, builder, builder.size++);
  return builder.take();
}

/** Rows `which` of `rows` (in that order, repeats allowed) as a new batch. */
export function selectRows(layout: Layout, rows: Batch, which: ArrayLike<number>): Batch {
  const builder = new BatchBuilder(layout, Math.max(which.length, 1));
  for (let i = 0; i < which.length; i++) {
    const r = which[i]!;
    if (!(r >= 0 && r < rows.size)) throw new MtlError("E_DATA", `row ${r} is outside the ${rows.size} rows held`);
    copyRow(layout, rows, r, builder, builder.size++);
  }
  return builder.take();
}

/** The trainer-contract inputs of rows `which`, each name passed through `rename`. */
export function feedsOfRows(layout: Layout, rows: Batch, which: ArrayLike<number>, rename: (input: string) => string = (x) => x): Record<string, TypedArray> {
  const fed = stepFeeds(selectRows(layout, rows, which), layout);
  return Object.fromEntries(Object.entries(fed).map(([k, v]) => [rename(k), v]));
}

/** The adapted model's p_lookalike for every row, scored in chunks. */
export async function scoreRows(adapter: Adapter, layout: Layout, rows: Batch, chunk = 4096): Promise<Float32Array> {
  const scores = new Float32Array(rows.size);
  for (let at = 0; at < rows.size; at += chunk) {
    const which = Int32Array.from({ length: Math.min(chunk, rows.size - at) }, (_, i) => at + i);
    scores.set((await adapter.predict(feedsOfRows(layout, rows, which), which.length))[METAHEAC_PREDICTION]!, at);
  }
  return scores;
}
