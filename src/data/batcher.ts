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
import { BatchBuilder, copyRow, type Batch, type Layout } from "../features/batch.js";
import { Rng } from "./random.js";
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

/** Shuffled, split batches over a shard's row groups. */
export async function* shardBatches(shard: ShardReader, opts: BatcherOptions): AsyncGenerator<Batch> {
  const order = Array.from({ length: shard.rowGroups }, (_, i) => i);
  const shuffle = opts.shuffle ?? true;
  if (shuffle) new Rng(opts.seed ?? 0, 1000 + (opts.epoch ?? 0)).shuffle(order);
  async function* groups(): AsyncGenerator<Batch> {
    // read one group ahead so file I/O overlaps the shuffling
    let next: Promise<Batch> | null = order.length ? shard.readGroup(order[0]!) : null;
    for (let i = 0; i < order.length; i++) {
      const current = next!;
      next = i + 1 < order.length ? shard.readGroup(order[i + 1]!) : null;
      next?.catch(() => undefined); // a consumer that stops early must not leave an unhandled rejection
      yield await current;
    }
  }
  yield* rebatch(shard.layout, groups(), { ...opts, truth: shard.truth });
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
    const refs = new Int32Array(pendingRows * 2);
    let n = 0;
    pending.forEach((b, bi) => {
      for (let r = 0; r < b.size; r++) if (keep(b.sampleKey[r]!)) ((refs[2 * n] = bi), (refs[2 * n + 1] = r), n++);
    });
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    if (shuffle) rng.shuffle(perm);
    let i = 0;
    const full = Math.floor(n / batchSize) * batchSize;
    for (; i < full; i++) {
      const k = perm[i]!;
      copyRow(layout, pending[refs[2 * k]!]!, refs[2 * k + 1]!, out, out.size++);
      if (out.full) yield out.take();
    }
    // rows that do not fill a batch: carry them (as one small batch) into the next window
    const rest = new BatchBuilder(layout, Math.max(n - full, 1), { truth: opts.truth });
    for (; i < n; i++) {
      const k = perm[i]!;
      copyRow(layout, pending[refs[2 * k]!]!, refs[2 * k + 1]!, rest, rest.size++);
    }
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
