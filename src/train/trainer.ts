/**
 * Drives the training-step and eval programs on onnxruntime. Per step: unique the batch's ids per
 * table, gather those rows and their optimizer slots from the state, run the step, scatter the new
 * rows back, take the new dense parameters and slots, advance the step count. The trainer knows
 * nothing about the model beyond the program's signature.
 */
import { MtlError } from "../errors.js";
import { type TypedArray, dtypeOfArray } from "../graph/dtype.js";
import type { Shape } from "../graph/ir.js";
import { encodeGraph } from "../onnx/serialize.js";
import { type Device, Session, type Tensor } from "../runtime/session.js";
import { Prng } from "../util/prng.js";
import type { FloatDType } from "./model.js";
import { type Program, type ProgramSignature, localName, newName, rowsName, slotName } from "./program.js";
import { RowIndexer, gatherRows, scatterRows, type IdArray } from "./sparse.js";
import type { FloatArray, TrainingState } from "./state.js";

/** A batch: each lookup input's global ids, flat row-major (Int32Array or BigInt64Array), and the other batch inputs. */
export type Batch = Readonly<Record<string, TypedArray>>;

export interface StepResult {
  loss: number;
  losses: Record<string, number>;
  predictions: Record<string, FloatArray>;
  gradNorm?: number;
}

export interface TrainerOptions {
  device?: Device;
  intraOpThreads?: number;
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
}

/** Bytes that crossed into and out of onnxruntime in the last run. */
export interface StepBytes {
  fed: number;
  fetched: number;
}

export class Trainer {
  private readonly indexers = new Map<string, RowIndexer>();
  lastStepBytes: StepBytes = { fed: 0, fetched: 0 };

  private constructor(
    readonly state: TrainingState,
    readonly train: { session: Session; signature: ProgramSignature } | null,
    readonly evaluation: { session: Session; signature: ProgramSignature } | null,
  ) {}

  /** Sessions for the programs given (built graphs or encoded bytes with their signature). */
  static async create(
    state: TrainingState,
    programs: { train?: Program | { bytes: Uint8Array; signature: ProgramSignature }; eval?: Program | { bytes: Uint8Array; signature: ProgramSignature } },
    opts: TrainerOptions = {},
  ): Promise<Trainer> {
    const open = async (p: Program | { bytes: Uint8Array; signature: ProgramSignature } | undefined, what: string) => {
      if (!p) return null;
      const bytes = "bytes" in p ? p.bytes : encodeGraph(p.graph);
      const session = await Session.create(bytes, { ...opts, source: `<${p.signature.model} ${what} program>` });
      return { session, signature: p.signature };
    };
    const t = new Trainer(state, await open(programs.train, "train_step"), await open(programs.eval, "eval"));
    for (const p of [t.train, t.evaluation]) if (p) checkState(state, p.signature);
    return t;
  }

  /** One update: returns the losses and predictions computed before the update. */
  async step(batch: Batch, lr: number): Promise<StepResult> {
    if (!this.train) throw new MtlError("E_TRAIN", "this trainer has no training-step program");
    if (!(Number.isFinite(lr) && lr >= 0)) throw new MtlError("E_CONFIG", `learning rate must be a finite number >= 0, got ${lr}`, { where: { field: "lr" } });
    const sig = this.train.signature;
    const { feeds, blocks } = this.commonFeeds(sig, batch);
    const Arr = sig.dtype === "float64" ? Float64Array : Float32Array;
    for (const p of sig.params) {
      for (const s of sig.slots) feeds[slotName(p.name, s)] = tensorOf(this.state.require(slotName(p.name, s)).data, this.state.require(p.name).dims);
    }
    if (sig.dropouts.length) {
      const rng = new Prng(this.state.rng);
      const size = batchSize(sig, batch);
      for (const d of sig.dropouts) {
        const dims = concreteDims(d.shape, size, d.input);
        const mask = new Uint8Array(dims.reduce((a, b) => a * b, 1));
        for (let i = 0; i < mask.length; i++) mask[i] = rng.uniform() >= d.rate ? 1 : 0;
        feeds[d.input] = { dtype: "bool", dims, data: mask };
      }
      this.state.rng = rng.state;
    }
    feeds["step"] = { dtype: "int64", dims: [], data: BigInt64Array.of(BigInt(this.state.step + 1)) };
    feeds["lr"] = { dtype: sig.dtype, dims: [], data: Arr.of(lr) };

    const out = await this.run(this.train.session, feeds);

    for (const p of sig.params) {
      this.state.require(p.name).data = out[newName(p.name)]!.data as FloatArray;
      for (const s of sig.slots) this.state.require(slotName(p.name, s)).data = out[newName(slotName(p.name, s))]!.data as FloatArray;
    }
    for (const t of sig.tables) {
      const ids = blocks.get(t.name)!;
      scatterRows(this.state.require(t.name).data, t.dim * (1 + sig.slots.length), ids, out[newName(rowsName(t.name))]!.data as FloatArray, t.paddingRow0);
    }
    for (const x of sig.states) this.state.require(x.name).data = out[newName(x.name)]!.data as FloatArray;
    this.state.step += 1;
    const result = resultOf(sig, out);
    if (out["grad_norm"]) result.gradNorm = Number(out["grad_norm"].data[0]);
    return result;
  }

  /** Forward and loss on a batch with the current state; nothing changes. */
  async evaluate(batch: Batch): Promise<StepResult> {
    if (!this.evaluation) throw new MtlError("E_TRAIN", "this trainer has no eval program");
    const sig = this.evaluation.signature;
    const { feeds } = this.commonFeeds(sig, batch);
    return resultOf(sig, await this.run(this.evaluation.session, feeds));
  }

  async release(): Promise<void> {
    await this.train?.session.release();
    await this.evaluation?.session.release();
  }

  /** Feeds shared by both programs: lookups (local ids + row blocks), dense params, states, batch inputs. */
  private commonFeeds(sig: ProgramSignature, batch: Batch): { feeds: Record<string, Tensor>; blocks: Map<string, Int32Array> } {
    const feeds: Record<string, Tensor> = {};
    const size = batchSize(sig, batch);
    const blocks = new Map<string, Int32Array>();
    const Arr = sig.dtype === "float64" ? Float64Array : Float32Array;
    for (const t of sig.tables) {
      const lookups = sig.lookups.filter((l) => l.table === t.name);
      const inputs = lookups.map((l) => idsOf(batch, l.input));
      const locals = lookups.map((l, i) => {
        const dims = concreteDims(l.shape, size, l.input);
        if (dims.reduce((a, b) => a * b, 1) !== inputs[i]!.length) {
          throw new MtlError("E_BATCH", `'${l.input}' has ${inputs[i]!.length} ids; expected ${dims.join(" x ")}`, { where: { field: l.input } });
        }
        const local = new Int32Array(inputs[i]!.length);
        feeds[localName(l.input)] = { dtype: "int32", dims, data: local };
        return local;
      });
      let indexer = this.indexers.get(t.name);
      if (!indexer) this.indexers.set(t.name, (indexer = new RowIndexer()));
      indexer.index(inputs, locals, t.rows, lookups[0]?.input ?? t.name);
      const ids = indexer.unique.slice();
      blocks.set(t.name, ids);
      // The train step takes each row with its optimizer slots; eval takes the weights only.
      const stride = this.state.require(t.name).dims[1]!;
      const width = sig.kind === "train_step" ? t.dim * (1 + sig.slots.length) : t.dim;
      const block = new Arr(ids.length * width);
      gatherRows(this.state.require(t.name).data, stride, width, ids, block);
      feeds[rowsName(t.name)] = tensorOf(block, [ids.length, width]);
    }
    for (const p of sig.params) feeds[p.name] = tensorOf(this.state.require(p.name).data, p.shape);
    for (const x of sig.states) feeds[x.name] = tensorOf(this.state.require(x.name).data, x.shape);
    for (const b of sig.batchInputs) {
      const data = batch[b.name];
      if (!data) throw new MtlError("E_BATCH", `the batch has no '${b.name}'`, { where: { field: b.name }, hint: `a batch holds ${[...sig.lookups.map((l) => l.input), ...sig.batchInputs.map((x) => x.name)].join(", ")}` });
      const want = b.dtype === "bool" ? "uint8" : b.dtype;
      if (dtypeOfArray(data) !== want) throw new MtlError("E_BATCH", `'${b.name}' must be ${b.dtype}, got ${data.constructor.name}`, { where: { field: b.name } });
      feeds[b.name] = { dtype: b.dtype, dims: concreteDims(b.shape, size, b.name), data };
    }
    return { feeds, blocks };
  }

  private async run(session: Session, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    let fed = 0;
    for (const t of Object.values(feeds)) fed += t.data.byteLength;
    const out = await session.run(feeds);
    let fetched = 0;
    for (const t of Object.values(out)) fetched += t.data.byteLength;
    this.lastStepBytes = { fed, fetched };
    return out;
  }
}

function tensorOf(data: FloatArray, dims: readonly number[]): Tensor {
  return { dtype: data instanceof Float64Array ? "float64" : "float32", dims, data };
}

function idsOf(batch: Batch, name: string): IdArray {
  const ids = batch[name];
  if (!ids) throw new MtlError("E_BATCH", `the batch has no ids '${name}'`, { where: { field: name } });
  if (!(ids instanceof Int32Array || ids instanceof BigInt64Array)) {
    throw new MtlError("E_BATCH", `ids '${name}' must be an Int32Array or BigInt64Array, got ${ids.constructor.name}`, { where: { field: name } });
  }
  return ids;
}

/** The batch size, from the first lookup (or batch input) whose shape has the symbolic batch dim. */
function batchSize(sig: ProgramSignature, batch: Batch): number {
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
  return { loss: Number(out["loss"]!.data[0]), losses, predictions };
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
