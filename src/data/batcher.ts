/**
 * Batches for training: rows from a shard (or any source of batches) in a seeded shuffled order,
 * with a deterministic train/valid split by the hash of each row's sample id.
 *
 * Shuffle: per epoch the row groups are visited in a seeded random order; rows of consecutive
 * groups fill a window of `shuffleRows` rows (default 262,144), the window is permuted, and full
 * batches are cut from it (rows left over carry into the next window). Same seed and epoch, same
 * batches — so a resumed run sees the same data order.
 *
 * Split: a row is in "valid" when mix(sampleKey) / 2^32 < validFraction, where
 * mix(k) = (k * 0x9e3779b1) mod 2^32 scrambles FNV's low bits; it depends only on the sample id,
 * so the split is the same across shuffles, epochs, formats and machines.
 */
import { BatchBuilder, type Batch, type Layout } from "../features/batch.js";
import { Rng } from "../util/prng.js";
import type { ShardReader } from "./shard.js";

export type SplitPart = "train" | "valid" | "all";

export interface BatcherOptions {
  batchSize: number;
  seed?: number;
  /** Epoch number (mixed into the seed: each epoch gets its own order). Default 0. */
  epoch?: number;
  /** Default true. */
  shuffle?: boolean;
  shuffleRows?: number;
  /** Fraction of sample ids held out for validation (default 0: no split). */
  validFraction?: number;
  /** Which side of the split to yield (default "all"). */
  part?: SplitPart;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** Whether a row with this sample key belongs to the validation part. */
export function isValidRow(sampleKey: number, validFraction: number): boolean {
  return (Math.imul(sampleKey, 0x9e3779b1) >>> 0) / 4294967296 < validFraction;
}

/**
 * Shuffled, split batches over the row groups of one shard or of several (the groups of all shards
 * are shuffled together; unshuffled, shard after shard in the order given).
 */
export async function* shardBatches(shards: ShardReader | readonly ShardReader[], opts: BatcherOptions): AsyncGenerator<Batch> {
  const list = Array.isArray(shards) ? shards : [shards as ShardReader];
  const groupsOf: [number, number][] = list.flatMap((s, si) => Array.from({ length: s.rowGroups }, (_, g): [number, number] => [si, g]));
  // A permutation of group numbers (one shard: the same order as a single shard always had).
  const order = Array.from({ length: groupsOf.length }, (_, i) => i);
  const shuffle = opts.shuffle ?? true;
  if (shuffle) new Rng(opts.seed ?? 0, 1000 + (opts.epoch ?? 0)).shuffle(order);
  const read = (k: number) => list[groupsOf[k]![0]]!.readGroup(groupsOf[k]![1]);
  async function* groups(): AsyncGenerator<Batch> {
    // read one group ahead so file I/O overlaps the shuffling
    let next: Promise<Batch> | null = order.length ? read(order[0]!) : null;
    for (let i = 0; i < order.length; i++) {
      const current = next!;
      next = i + 1 < order.length ? read(order[i + 1]!) : null;
      next?.catch(() => undefined); // a consumer that stops early must not leave an unhandled rejection
      yield await current;
    }
  }
  yield* rebatch(list[0]!.layout, groups(), { ...opts, truth: list.every((s) => s.truth) });
}

/** Per-row scalars of a window packed row-major: click, conversion, sample key, true CTR, true CVR, potential conversion, task, sample weight. */
const PACK = 8;

/**
 * Copy window rows perm[start..start+count) into dst (row k is row refs[2k + 1] of
 * pending[refs[2k]]), column by column; the scalars come from `pack`, one cache line per row
 * instead of one per column (random gathers are bound by cache misses).
 */
function gatherRows(layout: Layout, pending: readonly Batch[], refs: Int32Array, pack: Float64Array, perm: Int32Array, start: number, count: number, dst: BatchBuilder): void {
  const copyWide = (srcs: (Int32Array | Float32Array)[], d: Int32Array | Float32Array, w: number) => {
    for (let i = 0; i < count; i++) {
      const k = perm[start + i]!;
      const s = srcs[refs[2 * k]!]!;
      const a = refs[2 * k + 1]! * w;
      // set(subarray()) is a memcpy: it wins for wide rows, an element loop for narrow ones
      if (w >= 16) d.set(s.subarray(a, a + w), i * w);
      else for (let j = 0; j < w; j++) d[i * w + j] = s[a + j]!;
    }
  };
  layout.tables.forEach((t, ti) => {
    copyWide(pending.map((b) => b.ids[ti]!), dst.ids[ti]!, t.width);
    if (t.weighted) copyWide(pending.map((b) => b.weights[ti]!), dst.weights[ti]!, t.width);
  });
  if (layout.denseWidth) copyWide(pending.map((b) => b.dense), dst.dense, layout.denseWidth);
  const truth = dst.truthCtr !== null;
  const task = dst.task;
  for (let i = 0; i < count; i++) {
    const p = perm[start + i]! * PACK;
    dst.click[i] = pack[p]!;
    dst.conversion[i] = pack[p + 1]!;
    dst.sampleKey[i] = pack[p + 2]!;
    if (task) task[i] = pack[p + 6]!;
    if (dst.sampleWeight) dst.sampleWeight[i] = pack[p + 7]!;
    if (truth) {
      dst.truthCtr![i] = pack[p + 3]!;
      dst.truthCvr![i] = pack[p + 4]!;
      dst.truthConversion![i] = pack[p + 5]!;
    }
  }
  dst.size = count;
}

/**
 * Re-cut any stream of batches (a text reader's blocks, synthBatches(), shard row groups) into
 * shuffled, split batches of `batchSize`.
 */
export async function* rebatch(layout: Layout, source: AsyncIterable<Batch> | Iterable<Batch>, opts: BatcherOptions & { truth: boolean }): AsyncGenerator<Batch> {
  const { batchSize } = opts;
  const shuffle = opts.shuffle ?? true;
  const part = opts.part ?? "all";
  const validFraction = opts.validFraction ?? 0;
  const windowRows = Math.max(opts.shuffleRows ?? 262_144, batchSize);
  const rng = new Rng(opts.seed ?? 0, 2000 + (opts.epoch ?? 0));
  const keep = (key: number) => part === "all" || isValidRow(key, validFraction) === (part === "valid");
  // The window: up to windowRows + one group of rows, stored as references (batch, row).
  let pending: Batch[] = [];
  let pendingRows = 0;
  const out = new BatchBuilder(layout, batchSize, { truth: opts.truth });
  async function* flush(final: boolean): AsyncGenerator<Batch> {
    // refs: kept row j is row refs[2j + 1] of pending[refs[2j]]; pack: its scalars, row-major
    const refs = new Int32Array(pendingRows * 2);
    const pack = new Float64Array(pendingRows * PACK);
    let n = 0;
    for (let bi = 0; bi < pending.length; bi++) {
      const b = pending[bi]!;
      for (let r = 0; r < b.size; r++) {
        const key = b.sampleKey[r]!;
        if (!keep(key)) continue;
        refs[2 * n] = bi;
        refs[2 * n + 1] = r;
        const p = n * PACK;
        pack[p] = b.click[r]!;
        pack[p + 1] = b.conversion[r]!;
        pack[p + 2] = key;
        if (b.truth) {
          pack[p + 3] = b.truth.ctr[r]!;
          pack[p + 4] = b.truth.cvr[r]!;
          pack[p + 5] = b.truth.conversion[r]!;
        }
        if (b.task) pack[p + 6] = b.task[r]!;
        pack[p + 7] = b.sampleWeight ? b.sampleWeight[r]! : 1;
        n++;
      }
    }
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    if (shuffle) rng.shuffle(perm);
    const full = Math.floor(n / batchSize) * batchSize;
    for (let i = 0; i < full; i += batchSize) {
      gatherRows(layout, pending, refs, pack, perm, i, batchSize, out);
      yield out.take();
    }
    // rows that do not fill a batch: carry them (as one small batch) into the next window
    const rest = new BatchBuilder(layout, Math.max(n - full, 1), { truth: opts.truth });
    gatherRows(layout, pending, refs, pack, perm, full, n - full, rest);
    pending = [];
    pendingRows = 0;
    if (rest.size > 0) {
      if (final) {
        if (!opts.dropLast) yield rest.take();
      } else {
        // rows short of a batch join the next window (they pass the split filter again unchanged)
        const carried = rest.take();
        pending.push(carried);
        pendingRows = carried.size;
      }
    }
  }
  for await (const b of source) {
    pending.push(b);
    pendingRows += b.size;
    if (pendingRows >= windowRows) yield* flush(false);
  }
  yield* flush(true);
}
