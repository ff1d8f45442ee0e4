/**
 * How an inference graph stores its embedding tables: float32 (or the model's dtype) in one
 * initializer, or float16 with a Cast after the lookup, and split into pieces so that no
 * initializer exceeds a byte limit (WebGPU caps one buffer at 128 MB–1 GB; protobuf caps a file at
 * 2 GB).
 *
 * Splitting, measured on the ESMM reference table (scripts/bench-export.mjs):
 * - by columns when one column fits the limit: piece k holds columns [k·c, (k+1)·c) of every row;
 *   a lookup gathers the same ids from every piece and Concats along the last axis. It moves the
 *   same bytes as one Gather, so it scores about as fast as an unsplit table.
 * - by rows otherwise (a single column over the limit): each piece gathers every id clamped into
 *   its own range, and `Where(piece == k)` keeps the rows it owns: K gathers of the whole batch,
 *   about K times the lookup cost (3.2x slower scoring with 5 pieces).
 * Concat-ing the pieces back into one table before a single Gather would be constant-folded by
 * onnxruntime into one big buffer again, which is exactly what the split avoids.
 */
import { tensor, type Graph, type Value } from "../graph/ir.js";
import * as ops from "../graph/ops.js";
import type { TableSpec } from "./model.js";

export interface TableStorage {
  /** Store tables as float16 (half the bytes; a Cast to float32 follows each lookup). */
  float16?: boolean;
  /** Largest initializer of a table, in bytes (default: no limit). */
  maxPieceBytes?: number;
}

/** float32 → IEEE 754 binary16 bits, round to nearest even; overflow to ±Inf, NaN stays NaN. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // a carry into the exponent is still right
  return sign | h;
}

/** binary16 bits → number (for tests and for reading fp16 models back). */
export function float16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toFloat16(data: Float32Array | Float64Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = float16Bits(data[i]!);
  return out;
}

/** Rows per piece for a table under a byte limit (all rows when there is no limit). */
export function rowsPerPiece(table: Pick<TableSpec, "rows" | "dim">, bytesPerValue: number, maxPieceBytes?: number): number {
  if (!maxPieceBytes) return table.rows;
  return Math.max(1, Math.min(table.rows, Math.floor(maxPieceBytes / (table.dim * bytesPerValue))));
}

/**
 * Adds table `spec` (weights [rows, dim]) to the graph as initializers and returns its lookup:
 * ids (int64, any shape) → [...ids.shape, dim] in `dtype`.
 */
export function storeTable(g: Graph, spec: TableSpec, weights: Float32Array | Float64Array, dtype: "float32" | "float64", storage: TableStorage = {}): (ids: Value) => Value {
  const half = storage.float16 === true;
  const stored = half ? toFloat16(weights) : weights;
  const storedDtype = half ? "float16" : dtype;
  const bytes = half ? 2 : dtype === "float64" ? 8 : 4;
  const finish = (v: Value): Value => (half ? ops.Cast(v, { to: dtype }) : v);
  const columnsPerPiece = storage.maxPieceBytes ? Math.floor(storage.maxPieceBytes / (spec.rows * bytes)) : spec.dim;
  if (columnsPerPiece >= spec.dim) {
    const table = g.initializer(spec.name, tensor(storedDtype, [spec.rows, spec.dim], stored));
    return (ids) => finish(ops.Gather(table, ids));
  }
  if (columnsPerPiece >= 1) {
    const pieces: Value[] = [];
    for (let c0 = 0, k = 0; c0 < spec.dim; c0 += columnsPerPiece, k++) {
      const cols = Math.min(columnsPerPiece, spec.dim - c0);
      const data = new (stored.constructor as { new (n: number): typeof stored })(spec.rows * cols);
      for (let r = 0; r < spec.rows; r++) data.set(stored.subarray(r * spec.dim + c0, r * spec.dim + c0 + cols), r * cols);
      pieces.push(g.initializer(`${spec.name}.cols${k}`, tensor(storedDtype, [spec.rows, cols], data)));
    }
    return (ids) => finish(ops.Concat(pieces.map((p) => ops.Gather(p, ids)), { axis: -1 }));
  }
  const perPiece = rowsPerPiece(spec, bytes, storage.maxPieceBytes);
  const pieces: Value[] = [];
  for (let start = 0, k = 0; start < spec.rows; start += perPiece, k++) {
    const rows = Math.min(perPiece, spec.rows - start);
    pieces.push(g.initializer(`${spec.name}.part${k}`, tensor(storedDtype, [rows, spec.dim], stored.subarray(start * spec.dim, (start + rows) * spec.dim))));
  }
  return (ids) => {
    const piece = ops.Unsqueeze(ops.Div(ids, perPiece), [-1]); // integer division: which piece owns each id
    const local = ops.Sub(ids, ops.Mul(ops.Div(ids, perPiece), perPiece));
    let out: Value | null = null;
    pieces.forEach((p, k) => {
      const rows = p.shape[0] as number;
      const rowsOfPiece = ops.Gather(p, rows === perPiece ? local : ops.Min(local, rows - 1));
      out = out === null ? rowsOfPiece : ops.Where(ops.Equal(piece, k), rowsOfPiece, out);
    });
    return finish(out!);
  };
}

/** How many initializers `storeTable` splits a table into. */
export function tablePieces(table: Pick<TableSpec, "rows" | "dim">, bytesPerValue: number, maxPieceBytes?: number): { pieces: number; by: "none" | "columns" | "rows" } {
  const columnsPerPiece = maxPieceBytes ? Math.floor(maxPieceBytes / (table.rows * bytesPerValue)) : table.dim;
  if (columnsPerPiece >= table.dim) return { pieces: 1, by: "none" };
  if (columnsPerPiece >= 1) return { pieces: Math.ceil(table.dim / columnsPerPiece), by: "columns" };
  return { pieces: Math.ceil(table.rows / rowsPerPiece(table, bytesPerValue, maxPieceBytes)), by: "rows" };
}
