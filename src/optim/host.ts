/**
 * The update rules of index.ts done on the host, for embedding-table rows: the training step hands
 * out a row block's gradient, and the session applies the rule to each row in place in the packed
 * table (weights, then each slot, `dim` values apiece: train/state.ts), in the pass that used to copy
 * the step's updated rows back. One read and one write per row instead of the slots gathered into
 * blocks, fed to onnxruntime, updated there by a dozen elementwise nodes and copied back.
 *
 * Bit-identical to the graph's rule: each operation is done in the graph's order and rounded to the
 * table's precision (float32: Math.fround of the float64 result, which is the correctly rounded
 * float32 result of +, -, ×, ÷ and √), the constants are the graph's (rounded the same way), and the
 * step's scalars (the learning rate, Adam's bias corrections) are the graph's own outputs.
 * test/host-update.test.ts checks it against the graph for every optimizer and both precisions.
 */
import type { ResolvedOptimizer } from "./index.js";
import { adamRowsSimd, type SharedMemory } from "./simd.js";

type FloatArray = Float32Array | Float64Array;
type Round = (x: number) => number;
const exact: Round = (x) => x;

/**
 * Applies `opt` to rows `ids` of `table` (stride values a row), `grads` holding row u's gradient at
 * [u * dim, (u + 1) * dim). `scalars` is the step's Updater.scalars() output. With skipRow0, row 0
 * (padding) is left alone.
 */
export function updateRows(table: FloatArray, stride: number, dim: number, ids: Int32Array, grads: FloatArray, opt: ResolvedOptimizer, scalars: FloatArray, skipRow0: boolean, simd?: { memory: SharedMemory; region: 0 | 1 }): void {
  const f = table instanceof Float32Array ? Math.fround : exact;
  switch (opt.kind) {
    case "adam":
    case "adamw": {
      const lrDecay = opt.kind === "adamw" && opt.weightDecay ? scalars[2]! : 0;
      // A table on the kernel's memory (simd.ts's tableMemory) is updated in WebAssembly SIMD.
      if (simd && table instanceof Float32Array && grads instanceof Float32Array) adamRowsSimd(simd.memory, simd.region, table, stride, dim, ids, grads, opt, lrDecay, scalars, skipRow0);
      else adamRows(table, stride, dim, ids, grads, opt, lrDecay, scalars, skipRow0, f);
      return;
    }
    case "sgd":
      sgdRows(table, stride, dim, ids, grads, opt.momentum, opt.weightDecay, scalars[0]!, skipRow0, f);
      return;
    case "adagrad":
      adagradRows(table, stride, dim, ids, grads, opt.epsilon, scalars[0]!, skipRow0, f);
      return;
  }
}

// Rows are random in a table far larger than the caches: each block of BLOCK rows is touched first
// in a tight loop (many cache misses in flight), then updated from cache (as runtime/rows.ts).
const BLOCK = 64;
let sink = 0;

/** Calls `row(s, o)` for each row u of `ids` (but the padding row): s its offset in the table, o its gradient's. */
function eachRow(table: FloatArray, stride: number, dim: number, ids: Int32Array, skipRow0: boolean, row: (s: number, o: number) => void): void {
  for (let u0 = 0; u0 < ids.length; u0 += BLOCK) {
    const u1 = Math.min(u0 + BLOCK, ids.length);
    let t = 0;
    for (let u = u0; u < u1; u++) {
      const s = ids[u]! * stride;
      t += table[s]! + table[s + stride - 1]! + table[s + (stride >> 1)]!;
    }
    sink = t;
    for (let u = u0; u < u1; u++) {
      const id = ids[u]!;
      if (!(skipRow0 && id === 0)) row(id * stride, u * dim);
    }
  }
}

function adamRows(table: FloatArray, stride: number, dim: number, ids: Int32Array, grads: FloatArray, c: { beta1: number; beta2: number; epsilon: number }, lrDecay: number, scalars: FloatArray, skipRow0: boolean, f: Round): void {
  const b1 = f(c.beta1), c1 = f(1 - c.beta1), b2 = f(c.beta2), c2 = f(1 - c.beta2), eps = f(c.epsilon);
  const stepSize = scalars[0]!, sqrtBc2 = scalars[1]!;
  eachRow(table, stride, dim, ids, skipRow0, (s, o) => {
    const sm = s + dim, sv = s + 2 * dim;
    for (let d = 0; d < dim; d++) {
      const g = grads[o + d]!;
      const m = f(f(table[sm + d]! * b1) + f(g * c1));
      const v = f(f(table[sv + d]! * b2) + f(f(g * g) * c2));
      const denom = f(f(f(Math.sqrt(v)) / sqrtBc2) + eps);
      let w = table[s + d]!;
      if (lrDecay !== 0) w = f(w - f(w * lrDecay)); // AdamW: decoupled decay before the step
      table[s + d] = f(w - f(stepSize * f(m / denom)));
      table[sm + d] = m;
      table[sv + d] = v;
    }
  });
}

function sgdRows(table: FloatArray, stride: number, dim: number, ids: Int32Array, grads: FloatArray, momentum: number, weightDecay: number, lr: number, skipRow0: boolean, f: Round): void {
  const mu = f(momentum), wd = f(weightDecay);
  eachRow(table, stride, dim, ids, skipRow0, (s, o) => {
    const sb = s + dim;
    for (let d = 0; d < dim; d++) {
      const w = table[s + d]!;
      const g = weightDecay ? f(grads[o + d]! + f(w * wd)) : grads[o + d]!;
      if (momentum) {
        const buf = f(f(table[sb + d]! * mu) + g);
        table[sb + d] = buf;
        table[s + d] = f(w - f(buf * lr));
      } else {
        table[s + d] = f(w - f(g * lr));
      }
    }
  });
}

function adagradRows(table: FloatArray, stride: number, dim: number, ids: Int32Array, grads: FloatArray, epsilon: number, lr: number, skipRow0: boolean, f: Round): void {
  const eps = f(epsilon);
  eachRow(table, stride, dim, ids, skipRow0, (s, o) => {
    const sa = s + dim;
    for (let d = 0; d < dim; d++) {
      const g = grads[o + d]!;
      const acc = f(table[sa + d]! + f(g * g));
      table[sa + d] = acc;
      table[s + d] = f(table[s + d]! - f(f(g * lr) / f(f(Math.sqrt(acc)) + eps)));
    }
  });
}
