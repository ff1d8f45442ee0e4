/**
 * Row-sparse embeddings on the host: the ids of a batch become a compact block of unique rows plus
 * local indices into it; after the step, the block's new rows are scattered back into the table.
 * Work and memory are O(ids in the batch); nothing here is sized by the vocabulary.
 */
import { MtlError } from "../errors.js";
import type { FloatArray } from "./state.js";

export type IdArray = Int32Array | BigInt64Array | Float64Array | Uint32Array;

/** Unique ids -> local index, by open addressing; reused across steps (a generation stamp clears it). */
export class RowIndexer {
  private keys = new Int32Array(0);
  private slots = new Int32Array(0);
  private stamps = new Uint32Array(0);
  private generation = 0;
  private mask = 0;
  /** The unique ids of the last batch, in first-seen order (a view; valid until the next call). */
  unique = new Int32Array(0);
  private uniqueStore = new Int32Array(0);

  /**
   * Maps every id in `inputs` (each a flat array) to its index in the unique list. `locals[i]`
   * receives the local indices of `inputs[i]`. Ids must lie in [0, rows).
   */
  index(inputs: readonly IdArray[], locals: readonly Int32Array[], rows: number, what: string): number {
    let total = 0;
    for (const a of inputs) total += a.length;
    if (this.keys.length < 2 * total) {
      let cap = 16;
      while (cap < 2 * total) cap *= 2;
      this.keys = new Int32Array(cap);
      this.slots = new Int32Array(cap);
      this.stamps = new Uint32Array(cap);
      this.mask = cap - 1;
      this.generation = 0;
      this.uniqueStore = new Int32Array(total);
    }
    if (++this.generation === 0xffffffff) {
      this.stamps.fill(0);
      this.generation = 1;
    }
    const gen = this.generation, keys = this.keys, slots = this.slots, stamps = this.stamps, mask = this.mask;
    const uniq = this.uniqueStore;
    let count = 0;
    for (let k = 0; k < inputs.length; k++) {
      const src = inputs[k]!, dst = locals[k]!;
      const big = src instanceof BigInt64Array;
      for (let i = 0; i < src.length; i++) {
        const id = big ? Number((src as BigInt64Array)[i]) : (src as Int32Array)[i]!;
        if (!(id >= 0 && id < rows) || id !== Math.floor(id)) {
          throw new MtlError("E_BATCH", `id ${id} at position ${i} is outside table rows [0, ${rows})`, { where: { field: what }, hint: "ids must be pre-indexed integers below the vocabulary size" });
        }
        let h = Math.imul(id, 0x9e3779b1) & mask;
        for (;;) {
          if (stamps[h] !== gen) {
            stamps[h] = gen;
            keys[h] = id;
            slots[h] = count;
            uniq[count++] = id;
            dst[i] = count - 1;
            break;
          }
          if (keys[h] === id) {
            dst[i] = slots[h]!;
            break;
          }
          h = (h + 1) & mask;
        }
      }
    }
    this.unique = uniq.subarray(0, count);
    return count;
  }

  /** The local index of `id` in the last batch indexed, or -1. */
  find(id: number): number {
    if (this.mask === 0) return -1;
    const gen = this.generation, keys = this.keys, stamps = this.stamps, mask = this.mask;
    let h = Math.imul(id, 0x9e3779b1) & mask;
    for (;;) {
      if (stamps[h] !== gen) return -1;
      if (keys[h] === id) return this.slots[h]!;
      h = (h + 1) & mask;
    }
  }
}

/**
 * Copies rows `ids` of a packed table (rows of `stride` values: weights, then each slot, `dim`
 * values apiece) into one block per part: `parts[k]` ([ids.length, dim]) receives columns
 * k*dim..(k+1)*dim. One pass over the table: each row is read once, wherever its slots are.
 */
export function gatherRows(table: FloatArray, stride: number, dim: number, ids: Int32Array, parts: readonly FloatArray[]): void {
  if (table instanceof Float32Array) gather32(table, stride, dim, ids, parts as Float32Array[]);
  else gather64(table, stride, dim, ids, parts as Float64Array[]);
}

// Two copies of each loop, one per array type, keep each monomorphic (several times faster in V8).
function gather32(table: Float32Array, stride: number, dim: number, ids: Int32Array, parts: Float32Array[]): void {
  for (let u = 0; u < ids.length; u++) {
    const s = ids[u]! * stride, o = u * dim;
    for (let k = 0; k < parts.length; k++) {
      const out = parts[k]!, c = s + k * dim;
      for (let d = 0; d < dim; d++) out[o + d] = table[c + d]!;
    }
  }
}

function gather64(table: Float64Array, stride: number, dim: number, ids: Int32Array, parts: Float64Array[]): void {
  for (let u = 0; u < ids.length; u++) {
    const s = ids[u]! * stride, o = u * dim;
    for (let k = 0; k < parts.length; k++) {
      const out = parts[k]!, c = s + k * dim;
      for (let d = 0; d < dim; d++) out[o + d] = table[c + d]!;
    }
  }
}

/** The inverse of gatherRows: writes each part's rows back into the packed table; with skipRow0, row 0 (padding) is left alone. */
export function scatterRows(table: FloatArray, stride: number, dim: number, ids: Int32Array, parts: readonly FloatArray[], skipRow0: boolean): void {
  if (table instanceof Float32Array) scatter32(table, stride, dim, ids, parts as Float32Array[], skipRow0);
  else scatter64(table, stride, dim, ids, parts as Float64Array[], skipRow0);
}

function scatter32(table: Float32Array, stride: number, dim: number, ids: Int32Array, parts: Float32Array[], skipRow0: boolean): void {
  for (let u = 0; u < ids.length; u++) {
    const id = ids[u]!;
    if (skipRow0 && id === 0) continue;
    const s = id * stride, o = u * dim;
    for (let k = 0; k < parts.length; k++) {
      const src = parts[k]!, c = s + k * dim;
      for (let d = 0; d < dim; d++) table[c + d] = src[o + d]!;
    }
  }
}

function scatter64(table: Float64Array, stride: number, dim: number, ids: Int32Array, parts: Float64Array[], skipRow0: boolean): void {
  for (let u = 0; u < ids.length; u++) {
    const id = ids[u]!;
    if (skipRow0 && id === 0) continue;
    const s = id * stride, o = u * dim;
    for (let k = 0; k < parts.length; k++) {
      const src = parts[k]!, c = s + k * dim;
      for (let d = 0; d < dim; d++) table[c + d] = src[o + d]!;
    }
  }
}
