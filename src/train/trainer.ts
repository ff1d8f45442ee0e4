/**
 * Drives the training-step and eval programs on onnxruntime. Per step: unique the batch's ids per
 * table, gather those rows and their optimizer slots from the state, run the step (the session
 * writes the new rows back into the tables, on its own thread: runtime/rows.ts), take the new dense
 * parameters and slots, advance the step count. The trainer knows
 * nothing about the model beyond the program's signature.
 */
import { MtlError } from "../errors.js";
import { type TypedArray, dtypeOfArray } from "../graph/dtype.js";
import type { Shape } from "../graph/ir.js";
import { decodeModel } from "../onnx/proto.js";
import { encodeGraph, graphFromProto } from "../onnx/serialize.js";
import { refuseHeavyCpuNodes } from "../runtime/placement.js";
import { openSession, type ModelSession } from "../runtime/model-session.js";
import { awaitShare, writeBackShare, type RowShare, type TableRows } from "../runtime/rows.js";
import type { Device, SessionOptions, Tensor } from "../runtime/session.js";
import { Rng } from "../util/prng.js";
import type { FloatDType } from "./model.js";
import { type Program, type ProgramSignature, ROW_SCALARS, gradName, localName, newName, rowsName, slotName } from "./program.js";
import { RowIndexer, gatherRows, type IdArray } from "./sparse.js";
import type { FloatArray, TrainingState } from "./state.js";
import { kernelMemory, tableMemory } from "../optim/simd.js";

/**
 * A step's inputs by name: each lookup input's global ids, flat row-major (Int32Array or
 * BigInt64Array), and the other batch inputs (labels, dense, weights); the program's signature gives
 * the dims. `stepFeeds` (src/models/feeds.ts) makes them from a data batch.
 */
export type StepFeeds = Readonly<Record<string, TypedArray>>;

export interface StepResult {
  loss: number;
  losses: Record<string, number>;
  predictions: Record<string, FloatArray>;
  gradNorm?: number;
}

export interface TrainerOptions extends Pick<SessionOptions, "spinning" | "executionMode" | "interOpThreads" | "profile"> {
  device?: Device;
  intraOpThreads?: number;
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /**
   * Run the training step in a worker thread (default true). onnxruntime-node blocks the thread
   * that calls run(); in a worker, fit() overlaps the host's row gathering and scattering with it.
   */
  worker?: boolean;
  /**
   * With the step in a worker: the share of each step's row write-back this thread does, while the
   * worker writes back the rest (default ROW_SHARE; 0: the worker writes back every row).
   */
  rowShare?: number;
}

/** Bytes that crossed into and out of onnxruntime in the last run. */
export interface StepBytes {
  fed: number;
  fetched: number;
}

/** A step's host-side work in progress: its feeds and, per table, the unique ids of its row block. */
interface Prepared {
  feeds: Record<string, Tensor>;
  blocks: Map<string, Int32Array>;
  /** Per table (train step only): the rows the session refreshes before the run and writes back after it. */
  rows: TableRows[];
  /** Buffers the trainer allocated for this step (row blocks, local ids, masks): moved, not copied, to a worker. */
  owned: ArrayBuffer[];
  /** The 1-based number of this update, set at launch. */
  step: number;
}

type ProgramSession = { session: ModelSession; signature: ProgramSignature };

export interface FitOptions {
  /** Learning rate, or a schedule of the 1-based step number. */
  lr: number | ((step: number) => number);
  /**
   * Called with each step's result and number, in order. The state is mid-pipeline while fit()
   * runs: checkpoint or evaluate after fit() returns (fit over chunks of batches), not in here.
   */
  onStep?: (result: StepResult, step: number) => void | Promise<void>;
}

export class Trainer {
  /** Per table, the id -> block position map, reused from step to step. */
  private readonly indexers = new Map<string, RowIndexer>();
  /** Spare buffers (returned step inputs, scattered step outputs) reused for the next blocks: no page faults per step. */
  private readonly pool: ArrayBuffer[] = [];
  /** Per table, a bitset of the ids of the step in flight (fit only): the next step's rows to refresh. */
  private readonly inFlight = new Map<string, Uint32Array>();
  /** Per table, the staging blocks of this thread's share of the write-back (a worker session only). */
  private readonly shares = new Map<string, RowShare>();
  /** Per table, the session parts of shared write-backs launched so far (what `done` counts up to). */
  private readonly sharesLaunched = new Map<RowShare["done"], number>();
  /** Shares of finished steps whose session part may still be being written: awaited before the tables are next read. */
  private pendingShares: { share: RowShare; count: number }[] = [];
  lastStepBytes: StepBytes = { fed: 0, fetched: 0 };

  private constructor(
    readonly state: TrainingState,
    readonly train: ProgramSession | null,
    readonly evaluation: ProgramSession | null,
    /** The share of each step's row write-back done on this thread (0 when the step runs on it). */
    private readonly rowShare = 0,
  ) {}

  /** Sessions for the programs given (built graphs or encoded bytes with their signature). */
  static async create(
    state: TrainingState,
    programs: { train?: Program | { bytes: Uint8Array; signature: ProgramSignature }; eval?: Program | { bytes: Uint8Array; signature: ProgramSignature } },
    opts: TrainerOptions = {},
  ): Promise<Trainer> {
    const { worker = true, rowShare = ROW_SHARE, ...sessionOptions } = opts;
    if (!(rowShare >= 0 && rowShare <= 1)) throw new MtlError("E_CONFIG", `rowShare must be between 0 and 1, got ${rowShare}`, { where: { field: "rowShare" } });
    const open = async (p: Program | { bytes: Uint8Array; signature: ProgramSignature } | undefined, what: string, inWorker: boolean) => {
      if (!p) return null;
      const bytes = "bytes" in p ? p.bytes : encodeGraph(p.graph);
      const source = `<${p.signature.model} ${what} program>`;
      // On webgpu the step's int64 scalars (its count's Cast, a Mean's batch size) stay on the CPU, so
      // its session allows CPU nodes; the measured placement then refuses anything heavier there.
      // The eval program loads only if it runs wholly on the device.
      const cpuFallback = what === "train_step" && sessionOptions.device === "webgpu";
      if (cpuFallback) await refuseHeavyCpuNodes(bytes, "bytes" in p ? graphFromProto(decodeModel(bytes, source)) : p.graph, "webgpu", source);
      const options = { ...sessionOptions, cpuFallback, source };
      const session = await openSession(bytes, { ...options, worker: inWorker });
      return { session, signature: p.signature };
    };
    const train = await open(programs.train, "train_step", worker);
    const evaluation = await open(programs.eval, "eval", false);
    const t = new Trainer(state, train, evaluation, worker ? rowShare : 0);
    try {
      for (const p of [t.train, t.evaluation]) if (p) checkState(state, p.signature);
      if (t.train) for (const table of t.train.signature.tables) t.sharedTable(table.name);
    } catch (err) {
      await t.release();
      throw err;
    }
    return t;
  }

  /** One update: returns the losses and predictions computed before the update. */
  async step(batch: StepFeeds, lr: number): Promise<StepResult> {
    const train = this.requireTrain();
    const p = this.prepare(train.signature, batch);
    const out = await this.launch(train, p, lr);
    this.settleShares();
    this.recycleRows(train.signature, out);
    return resultOf(train.signature, out);
  }

  /**
   * Trains on every batch in order, overlapping the host's row work with onnxruntime: while step t
   * runs (and its session writes its rows back), the rows of step t+1 are gathered; the rows of
   * t+1's block that step t updates are re-read from the table by the session just before t+1 runs.
   * The result is bit-identical to calling step() on each batch. Returns the number of steps taken.
   */
  async fit(batches: Iterable<StepFeeds> | AsyncIterable<StepFeeds>, opts: FitOptions): Promise<number> {
    const train = this.requireTrain();
    const sig = train.signature;
    const lrAt = typeof opts.lr === "number" ? () => opts.lr as number : opts.lr;
    type Done = { prepared: Prepared; out: Record<string, Tensor> };
    let running: { prepared: Prepared; result: Promise<Record<string, Tensor>> } | null = null;
    let finished: Done | null = null;
    let failed = false;
    let steps = 0;
    const settle = async (): Promise<Done> => {
      const r = running!;
      running = null;
      return { prepared: r.prepared, out: await r.result };
    };
    try {
      for await (const batch of batches) {
        const prepared = this.prepare(sig, batch); // overlaps the running step
        if (running) {
          finished = await settle();
          this.markInFlight(sig, finished.prepared, false);
        }
        const lr = lrAt(this.state.step + 1);
        this.markInFlight(sig, prepared, true);
        running = { prepared, result: this.launch(train, prepared, lr) };
        if (finished) {
          const done: Done = finished;
          finished = null;
          this.recycleRows(sig, done.out);
          if (opts.onStep) await opts.onStep(resultOf(sig, done.out), done.prepared.step);
        }
        steps++;
      }
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      // On success and on error alike, the step in flight finishes (its session writes its rows
      // back) before fit() returns.
      let error: unknown = null;
      if (running) {
        try {
          const done = await settle();
          this.markInFlight(sig, done.prepared, false);
          this.recycleRows(sig, done.out);
          if (!failed && opts.onStep) await opts.onStep(resultOf(sig, done.out), done.prepared.step);
        } catch (err) {
          error = err;
        }
      }
      // The tables are whole when fit() returns or throws (the sessions' parts of the write-backs are in).
      try {
        this.settleShares();
      } catch (err) {
        error ??= err;
      }
      if (error !== null && !failed) throw error; // else the first error is the one to report
    }
    return steps;
  }

  /** Forward and loss on a batch with the current state; nothing changes. */
  async evaluate(batch: StepFeeds): Promise<StepResult> {
    if (!this.evaluation) throw new MtlError("E_TRAIN", "this trainer has no eval program");
    const sig = this.evaluation.signature;
    const p = this.prepare(sig, batch);
    this.denseFeeds(sig, p.feeds);
    return resultOf(sig, await this.run(this.evaluation.session, p.feeds));
  }

  async release(): Promise<void> {
    await this.train?.session.release();
    await this.evaluation?.session.release();
  }

  /** A typed array of exactly n elements, on a pooled buffer where one fits (contents undefined). */
  private take<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(Ctor: { new (b: ArrayBuffer, o: number, n: number): T; new (n: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
    const bytes = n * Ctor.BYTES_PER_ELEMENT;
    for (let i = 0; i < this.pool.length; i++) {
      const b = this.pool[i]!;
      if (b.byteLength >= bytes && b.byteLength <= 2 * bytes + 4096) {
        this.pool.splice(i, 1);
        return new Ctor(b, 0, n);
      }
    }
    return new Ctor(n);
  }

  private recycle(buffers: Iterable<ArrayBufferLike>): void {
    for (const b of buffers) {
      if (!(b instanceof ArrayBuffer) || b.byteLength < 65536 || this.pool.includes(b)) continue;
      this.pool.push(b);
      if (this.pool.length > 24) this.pool.shift();
    }
  }

  private requireTrain(): ProgramSession {
    if (!this.train) throw new MtlError("E_TRAIN", "this trainer has no training-step program");
    return this.train;
  }

  /**
   * Host work that needs no result of the step before: unique ids and local indices per table,
   * the row blocks gathered from the tables, batch inputs, dropout masks (advancing the PRNG).
   */
  private prepare(sig: ProgramSignature, batch: StepFeeds): Prepared {
    this.settleShares(); // the tables are read below
    const feeds: Record<string, Tensor> = {};
    const size = batchSize(sig, batch);
    const blocks = new Map<string, Int32Array>();
    const rows: TableRows[] = [];
    const owned: ArrayBuffer[] = [];
    const Arr = sig.dtype === "float64" ? Float64Array : Float32Array;
    const training = sig.kind === "train_step";
    for (const t of sig.tables) {
      const lookups = sig.lookups.filter((l) => l.table === t.name);
      const inputs = lookups.map((l) => idsOf(batch, l.input));
      const locals = lookups.map((l, i) => {
        const dims = concreteDims(l.shape, size, l.input);
        if (dims.reduce((a, b) => a * b, 1) !== inputs[i]!.length) {
          throw new MtlError("E_BATCH", `'${l.input}' has ${inputs[i]!.length} ids; expected ${dims.join(" x ")}`, { where: { field: l.input } });
        }
        const local = this.take(Int32Array, inputs[i]!.length);
        owned.push(local.buffer);
        feeds[localName(l.input)] = { dtype: "int32", dims, data: local };
        return local;
      });
      let indexer = this.indexers.get(t.name);
      if (!indexer) this.indexers.set(t.name, (indexer = new RowIndexer()));
      indexer.index(inputs, locals, t.rows, lookups[0]?.input ?? t.name);
      const ids = indexer.unique.slice();
      blocks.set(t.name, ids);
      // The train step takes each row's weights and optimizer slots (the slots stay in the table when
      // the rows' update runs on the host); eval the weights only.
      const table = training ? this.sharedTable(t.name) : this.state.require(t.name).data;
      const stride = this.state.require(t.name).dims[1]!;
      const host = sig.rowUpdate === "host";
      const names = [rowsName(t.name), ...(training && !host ? sig.slots.map((s) => slotName(rowsName(t.name), s)) : [])];
      const parts = names.map(() => (training ? this.take(Arr as Float32ArrayConstructor, ids.length * t.dim) : new Arr(ids.length * t.dim)));
      const memory = training ? kernelMemory(table) : undefined;
      gatherRows(table, stride, t.dim, ids, parts, memory);
      names.forEach((name, k) => {
        owned.push(parts[k]!.buffer);
        feeds[name] = tensorOf(parts[k]!, [ids.length, t.dim]);
      });
      if (training) {
        const share = this.shareOf(t.name, ids.length, t.dim, names.length, sig.dtype);
        const sums = sig.lookupGrads ? { lookups: lookups.map((l) => ({ grad: gradName(l.input), local: localName(l.input) })) } : {};
        const update = host ? { outputs: [gradName(rowsName(t.name))], update: { optimizer: sig.optimizer!, scalars: ROW_SCALARS }, ...sums } : { outputs: names.map(newName) };
        rows.push({ table, stride, dim: t.dim, ids, feeds: names, ...update, ...(memory ? { memory } : {}), refresh: this.inFlightPositions(t.name, ids, t.paddingRow0), skipRow0: t.paddingRow0, ...(share ? { share } : {}) });
      }
    }
    for (const b of sig.batchInputs) {
      const data = batch[b.name];
      if (!data) throw new MtlError("E_BATCH", `the batch has no '${b.name}'`, { where: { field: b.name }, hint: `a batch holds ${[...sig.lookups.map((l) => l.input), ...sig.batchInputs.map((x) => x.name)].join(", ")}` });
      const want = b.dtype === "bool" ? "uint8" : b.dtype;
      if (dtypeOfArray(data) !== want) throw new MtlError("E_BATCH", `'${b.name}' must be ${b.dtype}, got ${data.constructor.name}`, { where: { field: b.name } });
      feeds[b.name] = { dtype: b.dtype, dims: concreteDims(b.shape, size, b.name), data };
    }
    if (sig.dropouts.length) {
      const rng = Rng.fromWords(this.state.rng);
      for (const d of sig.dropouts) {
        const dims = concreteDims(d.shape, size, d.input);
        const mask = new Uint8Array(dims.reduce((a, b) => a * b, 1));
        for (let i = 0; i < mask.length; i++) mask[i] = rng.next() >= d.rate ? 1 : 0;
        owned.push(mask.buffer);
        feeds[d.input] = { dtype: "bool", dims, data: mask };
      }
      this.state.rng = rng.words();
    }
    return { feeds, blocks, rows, owned, step: 0 };
  }

  /**
   * Table `name`'s data on a SharedArrayBuffer (moved there once): the session writes rows back into
   * it from its own thread. A table the caller replaced since is moved again. Where the session
   * updates its rows with Adam, the buffer is the memory of the rows' SIMD kernel (optim/simd.ts).
   */
  private sharedTable(name: string): FloatArray {
    const t = this.state.require(name);
    const sig = this.train?.signature, dim = sig?.tables.find((x) => x.name === name)?.dim ?? 0;
    const adam = sig?.rowUpdate === "host" && (sig.optimizer?.kind === "adam" || sig.optimizer?.kind === "adamw");
    const simd = adam && t.data instanceof Float32Array && !kernelMemory(t.data) ? tableMemory(t.data.length, dim) : null;
    if (simd) {
      simd.data.set(t.data);
      t.data = simd.data;
    } else if (!(t.data.buffer instanceof SharedArrayBuffer)) {
      const buffer = new SharedArrayBuffer(t.data.byteLength);
      const shared = t.data instanceof Float64Array ? new Float64Array(buffer) : new Float32Array(buffer);
      shared.set(t.data);
      t.data = shared;
    }
    return t.data;
  }

  /**
   * This thread's share of a block's write-back: the last `rowShare` of its rows, staged by the
   * session into blocks on SharedArrayBuffers (reused from step to step: a step's share is written
   * before the next step is launched, and the session stages a step's rows only after its run).
   */
  private shareOf(table: string, n: number, dim: number, parts: number, dtype: FloatDType): RowShare | null {
    const count = Math.round(n * this.rowShare);
    if (count === 0) return null;
    let share = this.shares.get(table);
    if (!share || share.parts[0]!.length < count * dim) {
      // Room for 25% more rows than this block: block sizes vary a little from batch to batch.
      const values = Math.ceil(count * 1.25) * dim;
      const block = (): FloatArray => (dtype === "float64" ? new Float64Array(new SharedArrayBuffer(values * 8)) : new Float32Array(new SharedArrayBuffer(values * 4)));
      share = { from: 0, parts: Array.from({ length: parts }, block), done: share?.done ?? new Int32Array(new SharedArrayBuffer(4)) };
      this.shares.set(table, share);
    }
    return { ...share, from: n - count };
  }

  /** Waits until the sessions' parts of the finished steps' write-backs are written: the tables are whole after it. */
  private settleShares(): void {
    for (const { share, count } of this.pendingShares) awaitShare(share, count);
    this.pendingShares = [];
  }

  /** Positions in a block whose rows the step in flight (fit only) updates: the session re-reads them after its write-back. */
  private inFlightPositions(table: string, ids: Int32Array, paddingRow0: boolean): Int32Array {
    const bits = this.inFlight.get(table);
    if (!bits) return new Int32Array(0);
    let n = 0;
    const at = this.take(Int32Array, ids.length);
    for (let u = 0; u < ids.length; u++) {
      const id = ids[u]!;
      if ((bits[id >>> 5]! & (1 << (id & 31))) !== 0 && !(paddingRow0 && id === 0)) at[n++] = u;
    }
    return at.subarray(0, n);
  }

  /** Marks (or clears) the ids of a launched step's blocks as in flight. */
  private markInFlight(sig: ProgramSignature, p: Prepared, on: boolean): void {
    for (const t of sig.tables) {
      let bits = this.inFlight.get(t.name);
      if (!bits) this.inFlight.set(t.name, (bits = new Uint32Array((t.rows + 31) >>> 5)));
      const ids = p.blocks.get(t.name)!;
      if (on) for (let u = 0; u < ids.length; u++) bits[ids[u]! >>> 5]! |= 1 << (ids[u]! & 31);
      else for (let u = 0; u < ids.length; u++) bits[ids[u]! >>> 5] = 0;
    }
  }

  /** Dense parameters, slots and states from the state (as the previous step left them). */
  private denseFeeds(sig: ProgramSignature, feeds: Record<string, Tensor>): void {
    for (const p of sig.params) {
      feeds[p.name] = tensorOf(this.state.require(p.name).data, p.shape);
      if (sig.kind === "train_step") for (const s of sig.slots) feeds[slotName(p.name, s)] = tensorOf(this.state.require(slotName(p.name, s)).data, p.shape);
    }
    for (const x of sig.states) feeds[x.name] = tensorOf(this.state.require(x.name).data, x.shape);
  }

  /** Completes the feeds, runs the step, and takes its dense results; the rows are scattered by the caller. */
  private async launch(train: ProgramSession, p: Prepared, lr: number): Promise<Record<string, Tensor>> {
    const sig = train.signature;
    if (!(Number.isFinite(lr) && lr >= 0)) throw new MtlError("E_CONFIG", `learning rate must be a finite number >= 0, got ${lr}`, { where: { field: "lr" } });
    const Arr = sig.dtype === "float64" ? Float64Array : Float32Array;
    this.denseFeeds(sig, p.feeds);
    p.step = this.state.step + 1;
    p.feeds["step"] = { dtype: "int64", dims: [], data: BigInt64Array.of(BigInt(p.step)) };
    p.feeds["lr"] = { dtype: sig.dtype, dims: [], data: Arr.of(lr) };
    const out = await this.run(train.session, p.feeds, p.owned, p.rows);
    // This thread's share of the row write-back, beside the session's (awaited before the tables are next read).
    writeBackShare(p.rows, out);
    for (const r of p.rows) {
      if (!r.share) continue;
      const count = (this.sharesLaunched.get(r.share.done) ?? 0) + 1;
      this.sharesLaunched.set(r.share.done, count);
      this.pendingShares.push({ share: r.share, count });
    }
    for (const param of sig.params) {
      this.state.require(param.name).data = out[newName(param.name)]!.data as FloatArray;
      for (const s of sig.slots) this.state.require(slotName(param.name, s)).data = out[newName(slotName(param.name, s))]!.data as FloatArray;
    }
    for (const x of sig.states) this.state.require(x.name).data = out[newName(x.name)]!.data as FloatArray;
    this.state.step += 1;
    return out;
  }

  /** A finished step's updated row blocks (written back by its session) go to the pool. */
  private recycleRows(sig: ProgramSignature, out: Record<string, Tensor>): void {
    for (const t of sig.tables) {
      // A block whose write-back was shared stays with its session: not in the result.
      const names = sig.rowUpdate === "host" ? [gradName(rowsName(t.name))] : [rowsName(t.name), ...sig.slots.map((s) => slotName(rowsName(t.name), s))].map(newName);
      const parts = names.flatMap((n) => (out[n] ? [out[n]!.data as FloatArray] : []));
      // Only arrays that span their whole buffer: nothing else can live in it.
      this.recycle(parts.filter((x) => x.byteOffset === 0 && x.byteLength === x.buffer.byteLength).map((x) => x.buffer as ArrayBuffer));
    }
  }

  /** Runs a session; the feed buffers it hands back (the step's own, and a worker's returned inputs) go to the pool. */
  private async run(session: ModelSession, feeds: Record<string, Tensor>, transfer: ArrayBuffer[] = [], rows: TableRows[] = []): Promise<Record<string, Tensor>> {
    let fed = 0;
    for (const t of Object.values(feeds)) fed += t.data.byteLength;
    const out = await session.run(feeds, { transfer, onInputs: (buffers) => this.recycle(buffers), rows });
    let fetched = 0;
    for (const t of Object.values(out)) fetched += t.data.byteLength;
    this.lastStepBytes = { fed, fetched };
    return out;
  }
}

/**
 * The share of each step's row write-back the trainer's thread does when the step runs in a worker:
 * the worker writes back the rest at the same time. Balanced against the thread's own per-step work
 * (gathering the next block) by measurement (docs/bench.md).
 */
const ROW_SHARE = 0.4;

function tensorOf(data: FloatArray, dims: readonly number[]): Tensor {
  return { dtype: data instanceof Float64Array ? "float64" : "float32", dims, data };
}

function idsOf(batch: StepFeeds, name: string): IdArray {
  const ids = batch[name];
  if (!ids) throw new MtlError("E_BATCH", `the batch has no ids '${name}'`, { where: { field: name } });
  if (!(ids instanceof Int32Array || ids instanceof BigInt64Array)) {
    throw new MtlError("E_BATCH", `ids '${name}' must be an Int32Array or BigInt64Array, got ${ids.constructor.name}`, { where: { field: name } });
  }
  return ids;
}

/** The batch size, from the first lookup (or batch input) whose shape has the symbolic batch dim. */
function batchSize(sig: ProgramSignature, batch: StepFeeds): number {
  for (const s of [...sig.lookups.map((l) => ({ name: l.input, shape: l.shape })), ...sig.batchInputs]) {
    const data = batch[s.name];
    if (!data) continue;
    const known = s.shape.filter((d): d is number => typeof d === "number").reduce((a, b) => a * b, 1);
    if (data.length % known !== 0) throw new MtlError("E_BATCH", `'${s.name}' has ${data.length} values, not a multiple of ${known}`, { where: { field: s.name } });
    return data.length / known;
  }
  throw new MtlError("E_BATCH", "the batch is empty");
}

function concreteDims(shape: Shape, size: number, what: string): number[] {
  return shape.map((d) => {
    if (typeof d === "number") return d;
    if (d === "batch") return size;
    throw new MtlError("E_BATCH", `'${what}' has a dimension '${String(d)}' the trainer cannot fill`);
  });
}

function resultOf(sig: ProgramSignature, out: Record<string, Tensor>): StepResult {
  const losses: Record<string, number> = {};
  for (const l of sig.losses) losses[l] = Number(out[`loss_${l}`]!.data[0]);
  const predictions: Record<string, FloatArray> = {};
  for (const p of sig.predictions) predictions[p] = out[p]!.data as FloatArray;
  const result: StepResult = { loss: Number(out["loss"]!.data[0]), losses, predictions };
  if (out["grad_norm"]) result.gradNorm = Number(out["grad_norm"].data[0]);
  return result;
}

/** Fails early, naming the tensor, when a state does not fit a program. */
function checkState(state: TrainingState, sig: ProgramSignature): void {
  const expect = (name: string, n: number) => {
    const t = state.require(name);
    if (t.data.length !== n) throw new MtlError("E_STATE", `state tensor '${name}' has ${t.data.length} values; the program needs ${n}`, { where: { field: name } });
    const dt: FloatDType = t.data instanceof Float64Array ? "float64" : "float32";
    if (dt !== sig.dtype) throw new MtlError("E_STATE", `state tensor '${name}' is ${dt}; the program is ${sig.dtype}`, { where: { field: name } });
  };
  const count = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  for (const p of sig.params) {
    expect(p.name, count(p.shape));
    for (const s of sig.slots) expect(slotName(p.name, s), count(p.shape));
  }
  for (const t of sig.tables) {
    const width = state.require(t.name).dims[1]!;
    if (sig.kind === "train_step") expect(t.name, t.rows * t.dim * (1 + sig.slots.length));
    else if (width % t.dim !== 0) expect(t.name, t.rows * t.dim);
    else expect(t.name, t.rows * width);
  }
  for (const x of sig.states) expect(x.name, count(x.shape));
}
