/**
 * Row-sparse embeddings on the host: the ids of a batch become a compact block of unique rows plus
 * local indices into it; after the step, the block's new rows are written back into the table (by
 * the session, on its own thread: src/runtime/rows.ts).
 * Work and memory are O(ids in the batch); nothing here is sized by the vocabulary.
 */
import { MtlError } from "../errors.js";

export { gatherRows, scatterRows } from "../runtime/rows.js";

export type IdArray = Int32Array | BigInt64Array | Float64Array | Uint32Array;

/**
 * Unique ids -> local index, by open addressing; reused across steps (a generation stamp clears it).
 * A bucket is 4 int32s [stamp, id, local index, -] in one array: one cache line per probe.
 */
export class RowIndexer {
  private buckets = new Int32Array(0);
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
    if (this.mask + 1 < 2 * total) {
      let cap = 16;
      while (cap < 2 * total) cap *= 2;
      this.buckets = new Int32Array(cap * 4);
      this.mask = cap - 1;
      this.generation = 0;
      this.uniqueStore = new Int32Array(total);
    }
    if (++this.generation === 0x7fffffff) {
      this.buckets.fill(0);
      this.generation = 1;
    }
    const gen = this.generation, b = this.buckets, mask = this.mask;
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
          const at = h << 2;
          if (b[at] !== gen) {
            b[at] = gen;
            b[at + 1] = id;
            b[at + 2] = count;
            uniq[count] = id;
            dst[i] = count++;
            break;
          }
          if (b[at + 1] === id) {
            dst[i] = b[at + 2]!;
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
    if (this.generation === 0) return -1;
    const gen = this.generation, b = this.buckets, mask = this.mask;
    let h = Math.imul(id, 0x9e3779b1) & mask;
    for (;;) {
      const at = h << 2;
      if (b[at] !== gen) return -1;
      if (b[at + 1] === id) return b[at + 2]!;
      h = (h + 1) & mask;
    }
  }
}

