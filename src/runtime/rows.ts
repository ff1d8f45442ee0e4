/**
 * Rows of packed embedding tables (weights, then each optimizer slot, `dim` values apiece per row):
 * the gather and scatter kernels, and the row traffic a session does around a training run.
 *
 * A training step's row block goes into onnxruntime and its updated rows come out. Writing them
 * back is done by the session on its own thread, right after the run (`writeBackRows`), on a table
 * shared with the caller (a SharedArrayBuffer when the session runs in a worker): the caller's
 * thread, which gathers the next step's rows meanwhile, does not also scatter the last step's.
 * The rows of the next block that the step in flight updates are re-read from the table just before
 * the next run (`refreshRows`), after the write-back: a gather that raced with the write-back is
 * corrected there, so the result is bit-identical to running the steps one at a time.
 *
 * The write-back can be shared with the caller (`TableRows.share`): the session copies the updated
 * rows from block position `share.from` on into the caller's staging blocks (SharedArrayBuffers; a
 * sequential copy) before it hands the result back, then writes back the positions before `from`
 * itself while the caller writes back the staged ones (`writeBackShare`): the two threads scatter
 * disjoint rows at once. The session counts its parts done on a SharedArrayBuffer; the caller waits
 * for its count (`awaitShare`) before it next reads the table. The session's own next run comes after its
 * part, so the caller may launch it before that. The session keeps a shared block's updated rows:
 * they are not in the run's result.
 *
 * With the rows' update rule on the host (`TableRows.update`; TrainingOptions.rowUpdate "host") the
 * block is the rows' weights alone, and what comes out of the run is its gradient — or, with
 * `lookups`, each lookup's gradient, summed here into the block's (`sumLookupGrads`). The write-back
 * then applies the optimizer to each row in place (optim/host.ts; in WebAssembly SIMD where the
 * table is on that kernel's memory, optim/simd.ts), the shared part on the caller's thread as before.
 */
import { MtlError } from "../errors.js";
import type { ResolvedOptimizer } from "../optim/index.js";
import { updateRows } from "../optim/host.js";
import { SUM_ROWS, gatherRowsSimd, sumRowsSimd, type SharedMemory } from "../optim/simd.js";
import type { Tensor } from "./session.js";

export type FloatArray = Float32Array | Float64Array;

/** One table's row traffic around a run. */
export interface TableRows {
  /** The packed table [rows, stride]. In a worker session it must live on a SharedArrayBuffer. */
  table: FloatArray;
  stride: number;
  dim: number;
  /** The block's unique row ids, in block order. */
  ids: Int32Array;
  /** Feed names of the block's parts (weights, then each slot), in packed column order. */
  feeds: readonly string[];
  /** Output names of the updated parts, in the same order; with `update`, the one output of the block's gradient. */
  outputs: readonly string[];
  /**
   * The rows' update rule runs here, not in the step (TrainingOptions.rowUpdate "host"): the block
   * feeds only the weights, the step returns its gradient, and the write-back applies `optimizer`
   * to each row in place (optim/host.ts) with the step's scalars from output `scalars`.
   */
  update?: { optimizer: ResolvedOptimizer; scalars: string };
  /** The shared WebAssembly.Memory `table` lives on, where it was made by optim/simd.ts's tableMemory: the update runs in its kernel. */
  memory?: SharedMemory;
  /**
   * The block's gradient (output `outputs[0]`) is summed here, after the run, from each lookup's
   * gradient (output `grad`, one row of `dim` values per id) at the block positions of its ids
   * (feed `local`), in order: what the step's ScatterND(add) did on one thread (sumLookupGrads).
   */
  lookups?: readonly { grad: string; local: string }[];
  /** Block positions to re-read from the table before the run (rows a step before this one updated). */
  refresh: Int32Array;
  /** Row 0 is padding: never written back. */
  skipRow0: boolean;
  /**
   * Block positions from `from` on are written back by the caller: the session copies their updated
   * rows into `parts` (one per output, [>= ids.length - from, dim], on SharedArrayBuffers) instead.
   */
  share?: RowShare;
}

/** The caller's part of a shared write-back (see the top of this file). */
export interface RowShare {
  from: number;
  parts: FloatArray[];
  /** [0]: the number of the session's parts written so far (a counter: the caller waits for its own count). */
  done: Int32Array;
}

/** Before a run: re-reads the `refresh` rows of each block from its table into the feeds. */
export function refreshRows(rows: readonly TableRows[], feeds: Readonly<Record<string, Tensor>>): void {
  for (const r of rows) {
    if (r.refresh.length === 0) continue;
    const parts = r.feeds.map((n) => feeds[n]!.data as FloatArray);
    if (r.table instanceof Float32Array) refresh32(r.table, r.stride, r.dim, r.ids, r.refresh, parts as Float32Array[]);
    else refresh64(r.table, r.stride, r.dim, r.ids, r.refresh, parts as Float64Array[]);
  }
}

// As gather32/gather64 below: monomorphic, and each block of rows touched first (misses in flight).
function refresh32(table: Float32Array, stride: number, dim: number, ids: Int32Array, at: Int32Array, parts: Float32Array[]): void {
  let touched = 0;
  for (let i0 = 0; i0 < at.length; i0 += BLOCK) {
    const i1 = Math.min(i0 + BLOCK, at.length);
    for (let i = i0; i < i1; i++) {
      const s = ids[at[i]!]! * stride;
      touched += table[s]! + table[s + stride - 1]! + table[s + (stride >> 1)]!;
    }
    for (let i = i0; i < i1; i++) {
      const u = at[i]!, s = ids[u]! * stride, o = u * dim;
      for (let k = 0; k < parts.length; k++) {
        const out = parts[k]!, c = s + k * dim;
        for (let d = 0; d < dim; d++) out[o + d] = table[c + d]!;
      }
    }
  }
  sink = touched;
}

function refresh64(table: Float64Array, stride: number, dim: number, ids: Int32Array, at: Int32Array, parts: Float64Array[]): void {
  let touched = 0;
  for (let i0 = 0; i0 < at.length; i0 += BLOCK) {
    const i1 = Math.min(i0 + BLOCK, at.length);
    for (let i = i0; i < i1; i++) {
      const s = ids[at[i]!]! * stride;
      touched += table[s]! + table[s + stride - 1]! + table[s + (stride >> 1)]!;
    }
    for (let i = i0; i < i1; i++) {
      const u = at[i]!, s = ids[u]! * stride, o = u * dim;
      for (let k = 0; k < parts.length; k++) {
        const out = parts[k]!, c = s + k * dim;
        for (let d = 0; d < dim; d++) out[o + d] = table[c + d]!;
      }
    }
  }
  sink = touched;
}

/**
 * After a run, first: each block with `lookups` gets its gradient, summed from the lookups'
 * gradients in id order (so bit-identical to a one-thread ScatterND(add) from zeros), in place of them in `out`.
 */
export function sumLookupGrads(rows: readonly TableRows[], feeds: Readonly<Record<string, Tensor>>, out: Record<string, Tensor>): void {
  for (const r of rows) {
    if (!r.lookups) continue;
    if (r.memory && r.table instanceof Float32Array && r.ids.length <= SUM_ROWS) {
      const lookups = r.lookups.map((l) => ({ grads: out[l.grad]!.data as Float32Array, at: feeds[l.local]!.data as Int32Array }));
      for (const l of r.lookups) delete out[l.grad];
      out[r.outputs[0]!] = { dtype: "float32", dims: [r.ids.length, r.dim], data: sumRowsSimd(r.memory, r.table, r.dim, r.ids.length, lookups) };
      continue;
    }
    const dim = r.dim, n = r.ids.length * dim;
    const sum = r.table instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
    for (const l of r.lookups) {
      const g = out[l.grad]!.data as FloatArray, at = feeds[l.local]!.data as Int32Array;
      if (r.table instanceof Float32Array) sum32(sum as Float32Array, g as Float32Array, at, dim);
      else sum64(sum as Float64Array, g as Float64Array, at, dim);
      delete out[l.grad];
    }
    out[r.outputs[0]!] = { dtype: sum instanceof Float32Array ? "float32" : "float64", dims: [r.ids.length, dim], data: sum };
  }
}

function sum32(sum: Float32Array, g: Float32Array, at: Int32Array, dim: number): void {
  for (let i = 0; i < at.length; i++) {
    const o = at[i]! * dim, s = i * dim;
    for (let d = 0; d < dim; d++) sum[o + d] += g[s + d]!;
  }
}

function sum64(sum: Float64Array, g: Float64Array, at: Int32Array, dim: number): void {
  for (let i = 0; i < at.length; i++) {
    const o = at[i]! * dim, s = i * dim;
    for (let d = 0; d < dim; d++) sum[o + d] += g[s + d]!;
  }
}

/** After a run, before the result goes back: copies the caller's share of each block's updated rows into its staging parts. */
export function stageRows(rows: readonly TableRows[], out: Readonly<Record<string, Tensor>>): void {
  for (const r of rows) {
    if (!r.share) continue;
    const { from, parts } = r.share;
    r.outputs.forEach((n, k) => parts[k]!.set((out[n]!.data as FloatArray).subarray(from * r.dim, r.ids.length * r.dim)));
  }
}

/**
 * After a run: writes each block's updated rows back into its table (with a share: the positions
 * before `share.from`, then flags the session's part done, even when the write-back fails).
 */
export function writeBackRows(rows: readonly TableRows[], out: Readonly<Record<string, Tensor>>): void {
  try {
    for (const r of rows) {
      const n = r.share ? r.share.from : r.ids.length;
      writeRows(r, r.ids.subarray(0, n), r.outputs.map((o) => out[o]!.data as FloatArray), out, 1);
    }
  } finally {
    for (const r of rows) {
      if (!r.share) continue;
      Atomics.add(r.share.done, 0, 1);
      Atomics.notify(r.share.done, 0);
    }
  }
}

/**
 * The caller's side of a shared write-back, after the run resolved with `out`: writes the staged rows
 * (positions from `share.from` on) into the tables.
 */
export function writeBackShare(rows: readonly TableRows[], out: Readonly<Record<string, Tensor>>): void {
  for (const r of rows) if (r.share) writeRows(r, r.ids.subarray(r.share.from), r.share.parts, out, 0);
}

/**
 * Rows `ids` of a block into its table: the updated parts copied, or (`update`) the rule applied
 * with the gradient in parts[0]; `region`: the kernel's scratch of this side of the write-back.
 */
function writeRows(r: TableRows, ids: Int32Array, parts: readonly FloatArray[], out: Readonly<Record<string, Tensor>>, region: 0 | 1): void {
  if (!r.update) return scatterRows(r.table, r.stride, r.dim, ids, parts, r.skipRow0);
  const scalars = out[r.update.scalars];
  if (!scalars) throw new MtlError("E_TRAIN", `the step returned no '${r.update.scalars}' for the rows' update`);
  updateRows(r.table, r.stride, r.dim, ids, parts[0]!, r.update.optimizer, scalars.data as FloatArray, r.skipRow0, r.memory ? { memory: r.memory, region } : undefined);
}

/**
 * Waits until the session has written `count` parts of shared write-backs into `share.done`'s table
 * in all. A part takes milliseconds; one that never comes (a dead worker) is an error after `timeoutMs`.
 */
export function awaitShare(share: RowShare, count: number, timeoutMs = 60_000): void {
  const deadline = Date.now() + timeoutMs;
  for (let seen = Atomics.load(share.done, 0); seen < count; seen = Atomics.load(share.done, 0)) {
    if (Date.now() > deadline) throw new MtlError("E_WORKER", `the session did not finish writing its rows back within ${timeoutMs / 1000} s`, { hint: "the session worker may have died; the table is incomplete" });
    Atomics.wait(share.done, 0, seen, 1000);
  }
}

/**
 * Copies rows `ids` of a packed table (rows of `stride` values: weights, then each slot, `dim`
 * values apiece) into one block per part: `parts[k]` ([ids.length, dim]) receives columns
 * k*dim..(k+1)*dim. One pass over the table: each row is read once, wherever its slots are.
 */
export function gatherRows(table: FloatArray, stride: number, dim: number, ids: Int32Array, parts: readonly FloatArray[], memory?: SharedMemory): void {
  // The weights alone, from a table on the SIMD kernel's memory: the kernel gathers them (the caller's thread's region).
  if (memory && parts.length === 1 && table instanceof Float32Array) gatherRowsSimd(memory, table, stride, dim, ids, parts[0] as Float32Array);
  else if (table instanceof Float32Array) gather32(table, stride, dim, ids, parts as Float32Array[]);
  else gather64(table, stride, dim, ids, parts as Float64Array[]);
}

// Two copies of each loop, one per array type, keep each monomorphic (several times faster in V8).
// Rows are random in a table far larger than the caches, so the copy is bound by memory latency:
// blocks of BLOCK rows are first touched in a tight loop, which keeps many cache misses in flight
// (measured 16 ms -> 9 ms for 66,000 rows of 36 floats), then copied.
const BLOCK = 64;
let sink = 0;
function gather32(table: Float32Array, stride: number, dim: number, ids: Int32Array, parts: Float32Array[]): void {
  let touched = 0;
  for (let u0 = 0; u0 < ids.length; u0 += BLOCK) {
    const u1 = Math.min(u0 + BLOCK, ids.length);
    // Touch each row's cache lines first in a tight loop (many misses in flight), then copy from cache.
    for (let u = u0; u < u1; u++) {
      const s = ids[u]! * stride;
      touched += table[s]! + table[s + stride - 1]! + table[s + (stride >> 1)]!;
    }
    for (let u = u0; u < u1; u++) {
      const s = ids[u]! * stride, o = u * dim;
      for (let k = 0; k < parts.length; k++) {
        const out = parts[k]!, c = s + k * dim;
        for (let d = 0; d < dim; d++) out[o + d] = table[c + d]!;
      }
    }
  }
  sink = touched;
}

function gather64(table: Float64Array, stride: number, dim: number, ids: Int32Array, parts: Float64Array[]): void {
  let touched = 0;
  for (let u0 = 0; u0 < ids.length; u0 += BLOCK) {
    const u1 = Math.min(u0 + BLOCK, ids.length);
    // Touch each row's cache lines first in a tight loop (many misses in flight), then copy from cache.
    for (let u = u0; u < u1; u++) {
      const s = ids[u]! * stride;
      touched += table[s]! + table[s + stride - 1]! + table[s + (stride >> 1)]!;
    }
    for (let u = u0; u < u1; u++) {
      const s = ids[u]! * stride, o = u * dim;
      for (let k = 0; k < parts.length; k++) {
        const out = parts[k]!, c = s + k * dim;
        for (let d = 0; d < dim; d++) out[o + d] = table[c + d]!;
      }
    }
  }
  sink = touched;
}

/** The inverse of gatherRows: writes each part's rows back into the packed table; with skipRow0, row 0 (padding) is left alone. */
export function scatterRows(table: FloatArray, stride: number, dim: number, ids: Int32Array, parts: readonly FloatArray[], skipRow0: boolean): void {
  if (table instanceof Float32Array) scatter32(table, stride, dim, ids, parts as Float32Array[], skipRow0);
  else scatter64(table, stride, dim, ids, parts as Float64Array[], skipRow0);
}

function scatter32(table: Float32Array, stride: number, dim: number, ids: Int32Array, parts: Float32Array[], skipRow0: boolean): void {
  let touched = 0;
  for (let u0 = 0; u0 < ids.length; u0 += BLOCK) {
    const u1 = Math.min(u0 + BLOCK, ids.length);
    for (let u = u0; u < u1; u++) {
      const s = ids[u]! * stride;
      touched += table[s]! + table[s + stride - 1]! + table[s + (stride >> 1)]!;
    }
    for (let u = u0; u < u1; u++) {
      const id = ids[u]!;
      if (skipRow0 && id === 0) continue;
      const s = id * stride, o = u * dim;
      for (let k = 0; k < parts.length; k++) {
        const src = parts[k]!, c = s + k * dim;
        for (let d = 0; d < dim; d++) table[c + d] = src[o + d]!;
      }
    }
  }
  sink = touched;
}

function scatter64(table: Float64Array, stride: number, dim: number, ids: Int32Array, parts: Float64Array[], skipRow0: boolean): void {
  let touched = 0;
  for (let u0 = 0; u0 < ids.length; u0 += BLOCK) {
    const u1 = Math.min(u0 + BLOCK, ids.length);
    for (let u = u0; u < u1; u++) {
      const s = ids[u]! * stride;
      touched += table[s]! + table[s + stride - 1]! + table[s + (stride >> 1)]!;
    }
    for (let u = u0; u < u1; u++) {
      const id = ids[u]!;
      if (skipRow0 && id === 0) continue;
      const s = id * stride, o = u * dim;
      for (let k = 0; k < parts.length; k++) {
        const src = parts[k]!, c = s + k * dim;
        for (let d = 0; d < dim; d++) table[c + d] = src[o + d]!;
      }
    }
  }
  sink = touched;
}
