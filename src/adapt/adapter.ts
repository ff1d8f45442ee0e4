/**
 * MetaHeac's stage 2: fine-tune a copy of the meta-learned weights on one campaign's seed users and
 * score its candidates (PaddleRec's infer_meta.py: Adam at `local_test_learning_rate`, the seeds
 * shuffled once, `infer_train_epoch` passes of `batch_size` minibatches in that order).
 *
 * Pure TypeScript over a `run(program, feeds)` callback, so `mtl adapt` (onnxruntime-node) and the
 * browser (onnxruntime-web) run exactly this code and get the same scores. The host keeps the
 * weights and Adam's moments; each step passes only the rows its batch touches (as the Trainer
 * does, without the Trainer's pipelining, which needs Node's worker threads).
 */
import { MtlError } from "../errors.js";
import type { TypedArray } from "../graph/dtype.js";
import type { ProgramSignature } from "../train/program.js";
import { localName, newName, rowsName, slotName } from "../train/program.js";
import { RowIndexer, gatherRows, scatterRows } from "../train/sparse.js";
import { Rng } from "../util/prng.js";

/** A tensor as both onnxruntime bindings take and give it (the web wrapper converts to ort.Tensor). */
export interface PlainTensor {
  dtype: "float32" | "int32" | "int64";
  dims: readonly number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

export type ProgramRunner = (program: "train" | "eval", feeds: Record<string, PlainTensor>) => Promise<Record<string, PlainTensor>>;

/** A trainer-contract batch: named inputs (ids int32, floats float32), as stepFeeds() makes them. */
export type AdaptBatch = Readonly<Record<string, TypedArray>>;

/** How the adaptation runs (the meta model's config carries the defaults). */
export interface AdaptationPlan {
  epochs: number;
  lr: number;
  batchSize: number;
  /** Seeds the one shuffle of the seed users. */
  seed: number;
}

/** The meta-learned weights: dense parameters and tables ([rows, dim], weights only). */
export interface AdaptationWeights {
  params: Map<string, Float32Array>;
  tables: Map<string, Float32Array>;
}

/** The order PaddleRec trains the seeds in: one shuffle (sample(frac=1)), then contiguous minibatches. */
export function seedOrder(rows: number, seed: number): Int32Array {
  return new Rng(seed).shuffle(Int32Array.from({ length: rows }, (_, i) => i));
}

export class Adapter {
  readonly weights: AdaptationWeights;
  /** Adam's moments per weight (same layout as the weight), zero at the start. */
  private readonly slots = new Map<string, Float32Array[]>();
  private step = 0;
  private readonly indexer = new RowIndexer();

  /** The weights are copied: the meta-learned ones stay as they were. */
  constructor(
    private readonly train: ProgramSignature,
    private readonly evaluation: ProgramSignature,
    weights: AdaptationWeights,
    private readonly run: ProgramRunner,
  ) {
    if (train.dtype !== "float32" || evaluation.dtype !== "float32") throw new MtlError("E_MODEL", "adaptation programs must be float32");
    this.weights = {
      params: new Map([...weights.params].map(([k, v]) => [k, v.slice()])),
      tables: new Map([...weights.tables].map(([k, v]) => [k, v.slice()])),
    };
    for (const p of train.params) if (!this.weights.params.has(p.name)) throw new MtlError("E_STATE", `the weights have no parameter '${p.name}'`, { where: { field: p.name } });
    for (const t of train.tables) if (!this.weights.tables.has(t.name)) throw new MtlError("E_STATE", `the weights have no table '${t.name}'`, { where: { field: t.name } });
  }

  private slotsOf(name: string, size: number): Float32Array[] {
    let s = this.slots.get(name);
    if (!s) this.slots.set(name, (s = this.train.slots.map(() => new Float32Array(size))));
    return s;
  }

  /** Row blocks and local ids for a batch: per table, its unique ids (feeds filled in place). */
  private rowFeeds(sig: ProgramSignature, batch: AdaptBatch, rows: number, feeds: Record<string, PlainTensor>, withSlots: boolean): Map<string, Int32Array> {
    const blocks = new Map<string, Int32Array>();
    for (const t of sig.tables) {
      const lookups = sig.lookups.filter((l) => l.table === t.name);
      const inputs = lookups.map((l) => {
        const ids = batch[l.input];
        if (!(ids instanceof Int32Array)) throw new MtlError("E_BATCH", `the batch has no int32 ids '${l.input}'`, { where: { field: l.input } });
        return ids;
      });
      const locals = inputs.map((ids, i) => {
        const local = new Int32Array(ids.length);
        feeds[localName(lookups[i]!.input)] = { dtype: "int32", dims: [rows, ids.length / rows], data: local };
        return local;
      });
      this.indexer.index(inputs, locals, t.rows, lookups[0]?.input ?? t.name);
      const ids = this.indexer.unique.slice();
      blocks.set(t.name, ids);
      const names = [rowsName(t.name), ...(withSlots ? sig.slots.map((s) => slotName(rowsName(t.name), s)) : [])];
      const parts = names.map(() => new Float32Array(ids.length * t.dim));
      gatherRows(this.weights.tables.get(t.name)!, t.dim, t.dim, ids, parts.slice(0, 1));
      if (withSlots) this.slotsOf(t.name, t.rows * t.dim).forEach((slot, k) => gatherRows(slot, t.dim, t.dim, ids, [parts[k + 1]!]));
      names.forEach((n, k) => (feeds[n] = { dtype: "float32", dims: [ids.length, t.dim], data: parts[k]! }));
    }
    return blocks;
  }

  private batchFeeds(sig: ProgramSignature, batch: AdaptBatch, rows: number, feeds: Record<string, PlainTensor>): void {
    for (const b of sig.batchInputs) {
      const data = batch[b.name];
      if (!(data instanceof Float32Array)) throw new MtlError("E_BATCH", `the batch has no float32 '${b.name}'`, { where: { field: b.name } });
      feeds[b.name] = { dtype: "float32", dims: b.shape.map((d) => (d === "batch" ? rows : (d as number))), data };
    }
  }

  /** One Adam step on a batch; returns its loss (before the update). */
  async fitBatch(batch: AdaptBatch, rows: number, lr: number): Promise<number> {
    const sig = this.train;
    const feeds: Record<string, PlainTensor> = {};
    const blocks = this.rowFeeds(sig, batch, rows, feeds, true);
    this.batchFeeds(sig, batch, rows, feeds);
    for (const p of sig.params) {
      feeds[p.name] = { dtype: "float32", dims: p.shape, data: this.weights.params.get(p.name)! };
      this.slotsOf(p.name, this.weights.params.get(p.name)!.length).forEach((s, k) => (feeds[slotName(p.name, sig.slots[k]!)] = { dtype: "float32", dims: p.shape, data: s }));
    }
    this.step++;
    feeds["step"] = { dtype: "int64", dims: [], data: BigInt64Array.of(BigInt(this.step)) };
    feeds["lr"] = { dtype: "float32", dims: [], data: Float32Array.of(lr) };
    const out = await this.run("train", feeds);
    for (const p of sig.params) {
      this.weights.params.set(p.name, out[newName(p.name)]!.data as Float32Array);
      this.slots.set(p.name, sig.slots.map((s) => out[newName(slotName(p.name, s))]!.data as Float32Array));
    }
    for (const t of sig.tables) {
      const ids = blocks.get(t.name)!;
      scatterRows(this.weights.tables.get(t.name)!, t.dim, t.dim, ids, [out[newName(rowsName(t.name))]!.data as Float32Array], t.paddingRow0);
      this.slotsOf(t.name, t.rows * t.dim).forEach((slot, k) => scatterRows(slot, t.dim, t.dim, ids, [out[newName(slotName(rowsName(t.name), sig.slots[k]!))]!.data as Float32Array], t.paddingRow0));
    }
    return Number(out["loss"]!.data[0]);
  }

  /** The eval program's predictions for a batch (labels may be anything: they only enter the loss). */
  async predict(batch: AdaptBatch, rows: number): Promise<Record<string, Float32Array>> {
    const sig = this.evaluation;
    const feeds: Record<string, PlainTensor> = {};
    this.rowFeeds(sig, batch, rows, feeds, false);
    this.batchFeeds(sig, batch, rows, feeds);
    for (const p of sig.params) feeds[p.name] = { dtype: "float32", dims: p.shape, data: this.weights.params.get(p.name)! };
    const out = await this.run("eval", feeds);
    return Object.fromEntries(sig.predictions.map((p) => [p, out[p]!.data as Float32Array]));
  }
}

/**
 * Fine-tunes on the seeds (`slice(order, from, to)` gives a minibatch of the seed rows in that
 * order) for `plan.epochs` passes; returns the mean loss of each epoch.
 */
export async function adaptOnSeeds(
  adapter: Adapter,
  seedRows: number,
  plan: AdaptationPlan,
  slice: (rows: Int32Array) => AdaptBatch,
  onStep?: (done: number, total: number) => void,
): Promise<number[]> {
  if (seedRows === 0) throw new MtlError("E_DATA", "there are no seed rows to adapt on");
  const order = seedOrder(seedRows, plan.seed);
  const perEpoch = Math.ceil(seedRows / plan.batchSize);
  const losses: number[] = [];
  for (let e = 0; e < plan.epochs; e++) {
    let sum = 0;
    for (let b = 0; b < perEpoch; b++) {
      const rows = order.subarray(b * plan.batchSize, Math.min(seedRows, (b + 1) * plan.batchSize));
      sum += await adapter.fitBatch(slice(rows), rows.length, plan.lr);
      onStep?.(e * perEpoch + b + 1, plan.epochs * perEpoch);
    }
    losses.push(sum / perEpoch);
  }
  return losses;
}
