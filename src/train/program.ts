/**
 * The programs a model is run as, all plain ONNX models of standard ai.onnx ops:
 *   - the training step: forward + loss + backward + optimizer update, state in, new state out;
 *   - the eval program: forward + loss, parameters in;
 *   - the inference graph: raw ids in, predictions out, parameters and tables as initializers.
 * Embedding tables never enter the step or eval program whole: the host passes the rows a batch
 * touches (`<table>__rows`, [rows, dim]) and the batch's ids rewritten as indices into that block
 * (`<input>__local`, int32), so what crosses the boundary is O(batch), not O(vocabulary).
 *
 * Names (the signature; also stored as JSON in the model's metadata, key `mtl.signature`):
 *   dense parameter p:   input `p`, output `p__new`; its slot s: input `p__s`, output `p__s__new`
 *   table t:             input `t__rows` ([rows, dim], the batch's rows), output `t__rows__new`;
 *                        slot s of those rows: input `t__rows__s`, output `t__rows__s__new`
 *                        (the host state keeps each row packed with its slots; see state.ts)
 *   state x (BatchNorm): input `x`, output `x__new`
 *   step: int64 scalar, the 1-based number of this update; lr: float scalar
 *   outputs: `loss`, `loss_<term>` per loss term, each prediction, and `grad_norm` when clipping
 */
import { MtlError } from "../errors.js";
import type { DType } from "../graph/dtype.js";
import { Graph, type Node, type Shape, type Value, tensor } from "../graph/ir.js";
import * as ops from "../graph/ops.js";
import { storeTable, type TableStorage } from "./tables.js";
import { gradients } from "../autodiff/index.js";
import { type OptimizerConfig, type ResolvedOptimizer, clipByGlobalNorm, createUpdater, optimizerSlots, resolveOptimizer } from "../optim/index.js";
import type {
  DropoutSpec, FloatDType, LookupSpec, ModelContext, ModelDefinition, ModelOutputs, Mode, ParamSpec, StateSpec, TableSpec,
} from "./model.js";

export interface ProgramOptions {
  dtype?: FloatDType;
  opset?: number;
}

export interface InferenceOptions extends ProgramOptions {
  /** How the inference graph stores its tables: float16, split into pieces (see tables.ts). */
  tableStorage?: TableStorage;
  /** Split the input layer by the schema's `context` features (ModelContext.contextSplit); default false. */
  contextSplit?: boolean;
}

export interface TrainingOptions extends ProgramOptions {
  optimizer: OptimizerConfig;
  /** Clip gradients by their global L2 norm (dense and row gradients together). */
  clipNorm?: number;
  /**
   * Where the table rows' update rule runs. "graph" (default): in the step, which then takes each
   * row block's slots and returns the new rows and slots; a self-contained training graph (what
   * `mtl export` writes). "host": the step returns each block's gradient and the step's scalars
   * (`rows__scalars`), and the Trainer's session applies the same rule to the rows in place
   * (optim/host.ts), bit-identical and cheaper: no slots cross into onnxruntime.
   */
  rowUpdate?: "graph" | "host";
}

/** Everything a host needs to drive a program; JSON-serialisable. */
export interface ProgramSignature {
  kind: "train_step" | "eval";
  model: string;
  dtype: FloatDType;
  params: ParamSpec[];
  tables: TableSpec[];
  states: StateSpec[];
  lookups: LookupSpec[];
  dropouts: DropoutSpec[];
  /** Batch inputs other than lookups (labels, dense features). */
  batchInputs: { name: string; dtype: DType; shape: Shape }[];
  predictions: string[];
  losses: string[];
  optimizer?: ResolvedOptimizer;
  slots: string[];
  clipNorm?: number;
  /** "host": the step returns row gradients (`t__rows__grad`) and `rows__scalars`, not new rows (TrainingOptions.rowUpdate). */
  rowUpdate?: "host";
  /**
   * With rowUpdate "host": the step returns each lookup's gradient (`<input>__grad`, the lookup's
   * shape × dim) instead of the blocks', and the host sums them into `t__rows__grad` (runtime/rows.ts).
   */
  lookupGrads?: boolean;
}

export interface Program {
  graph: Graph;
  signature: ProgramSignature;
}

export const localName = (input: string) => `${input}__local`;
export const rowsName = (table: string) => `${table}__rows`;
/**
 * The symbolic first dim of table t's row block (and its slots): one per table, because the tables
 * of a batch touch different numbers of rows; a dim name shared by two same-dim tables lets
 * onnxruntime's memory planner re-use one's buffer for the other and fail ("Shape mismatch
 * attempting to re-use buffer").
 */
export const rowsDim = (table: string) => `rows.${table}`;
export const slotName = (base: string, slot: string) => `${base}__${slot}`;
export const newName = (base: string) => `${base}__new`;
export const gradName = (base: string) => `${base}__grad`;
/** The step's scalars of the rows' host update rule (Updater.scalars), one 1-D output. */
export const ROW_SCALARS = "rows__scalars";

/** Builds the model once with a context of the given mode, recording what it asks for. */
export class Recorder implements ModelContext {
  readonly params: ParamSpec[] = [];
  readonly paramValues: Value[] = [];
  readonly tables: TableSpec[] = [];
  readonly rowValues: Value[] = [];
  /** Inference: per table, its lookup (ids → embeddings) over the stored initializers. */
  private readonly tableLookups: ((ids: Value) => Value)[] = [];
  /** Per table, its optimizer slots' rows (train step only). */
  readonly rowSlots: Value[][] = [];
  /** Train and eval: each lookup's gathered rows (whose gradient the host can sum into its table's block). */
  readonly gathers: { input: string; rows: Value }[] = [];
  readonly lookups: LookupSpec[] = [];
  readonly states: StateSpec[] = [];
  readonly stateValues: Value[] = [];
  readonly stateUpdates = new Map<string, Value>();
  readonly dropouts: DropoutSpec[] = [];
  readonly batchInputs: { name: string; dtype: DType; shape: Shape }[] = [];

  constructor(
    readonly graph: Graph,
    readonly dtype: FloatDType,
    readonly mode: Mode,
    private readonly source?: InferenceSource,
    /** The optimizer's slot names: each table's rows get one input per slot in the train step. */
    private readonly slotNames: readonly string[] = [],
    private readonly tableStorage: TableStorage = {},
    readonly contextSplit = false,
  ) {}

  private array(spec: { name: string; shape: number[] }, kind: "param" | "state"): Value {
    const t = this.source!.get(spec.name);
    if (!t) throw new MtlError("E_STATE", `the state has no ${kind} '${spec.name}'`, { where: { field: spec.name } });
    return this.graph.initializer(spec.name, tensor(this.dtype, spec.shape, t));
  }

  param(name: string, shape: number[], init: ParamSpec["init"]): Value {
    if (this.params.some((p) => p.name === name)) throw new MtlError("E_MODEL", `parameter '${name}' is declared twice`);
    const spec = { name, shape: [...shape], init };
    this.params.push(spec);
    const v = this.mode === "inference" ? this.array(spec, "param") : this.graph.input(name, this.dtype, shape);
    this.paramValues.push(v);
    return v;
  }

  lookup(table: TableSpec, input: string, shape: Shape): Value {
    if (this.mode === "inference") return this.lookupIds(table, input, shape).embed!;
    const { table: t, local } = this.lookupIds(table, input, shape);
    const rows = ops.Gather(this.rowValues[t]!, local);
    this.gathers.push({ input, rows });
    return rows;
  }

  /**
   * Records a lookup of batch input `input` in `table` (declaring the table on first sight). Train
   * and eval: the index of the table and its local-ids input, for the caller to gather from the
   * rows it chooses (the meta-training step gathers from fast weights); inference: the embeddings.
   */
  lookupIds(table: TableSpec, input: string, shape: Shape): { table: number; local: Value; embed?: Value } {
    let t = this.tables.findIndex((x) => x.name === table.name);
    if (t < 0) {
      this.tables.push({ ...table });
      t = this.tables.length - 1;
      if (this.mode === "inference") {
        const data = this.source!.get(table.name);
        if (!data) throw new MtlError("E_STATE", `the state has no table '${table.name}'`, { where: { field: table.name } });
        this.tableLookups[t] = storeTable(this.graph, table, tableWeights(data, table), this.dtype, this.tableStorage);
        this.rowSlots.push([]);
      } else {
        // Each table's block has its own symbolic row count: onnxruntime plans buffers by dim name,
        // so two tables sharing one ("rows") could be given one buffer for different shapes.
        this.rowValues.push(this.graph.input(rowsName(table.name), this.dtype, [rowsDim(table.name), table.dim]));
        const slots = this.mode === "train" ? this.slotNames : [];
        this.rowSlots.push(slots.map((s) => this.graph.input(slotName(rowsName(table.name), s), this.dtype, [rowsDim(table.name), table.dim])));
      }
    }
    this.lookups.push({ input, table: table.name, shape: [...shape] });
    if (this.mode === "inference") {
      const ids = this.graph.input(input, "int64", shape);
      return { table: t, local: ids, embed: this.tableLookups[t]!(ids) };
    }
    return { table: t, local: this.graph.input(localName(input), "int32", shape) };
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    this.batchInputs.push({ name, dtype, shape: [...shape] });
    return this.graph.input(name, dtype, shape);
  }

  state(spec: StateSpec): { value: Value; update(next: Value): void } {
    this.states.push({ ...spec, shape: [...spec.shape] });
    const value = this.mode === "inference" ? this.array(spec, "state") : this.graph.input(spec.name, this.dtype, spec.shape);
    this.stateValues.push(value);
    return { value, update: (next) => void this.stateUpdates.set(spec.name, next) };
  }

  dropout(name: string, x: Value, rate: number): Value {
    if (!(rate >= 0 && rate < 1)) throw new MtlError("E_CONFIG", `dropout rate must be in [0, 1), got ${rate}`, { where: { field: name } });
    if (this.mode !== "train" || rate === 0) return x;
    // The mask comes from the host's seeded PRNG (kept in the checkpoint), so a resumed run draws
    // the same masks; y = x * mask / (1 - rate).
    const input = `${name}__mask`;
    const mask = this.graph.input(input, "bool", x.shape);
    this.dropouts.push({ input, rate, shape: [...x.shape] });
    return ops.Where(mask, ops.Mul(x, 1 / (1 - rate)), 0);
  }
}

/**
 * A table's weights as [rows, dim]: the array itself, or, where the state keeps optimizer slots
 * packed beside each row ([rows, dim * (1 + slots)]), a copy of the first dim columns.
 */
export function tableWeights<T extends Float32Array | Float64Array>(data: T, table: TableSpec): T {
  const width = data.length / table.rows;
  if (width === table.dim) return data;
  if (!Number.isInteger(width) || width % table.dim !== 0) {
    throw new MtlError("E_STATE", `table '${table.name}' holds ${data.length} values, not ${table.rows} rows of a multiple of ${table.dim}`, { where: { field: table.name } });
  }
  const out = new (data.constructor as { new (n: number): T })(table.rows * table.dim);
  for (let r = 0; r < table.rows; r++) out.set(data.subarray(r * width, r * width + table.dim), r * table.dim);
  return out;
}

/** Where the inference graph's initializers come from (a TrainingState, or initial values). */
export interface InferenceSource {
  get(name: string): Float32Array | Float64Array | undefined;
}

export function outputs(g: Graph, out: ModelOutputs, withLosses: boolean): { predictions: string[]; losses: string[] } {
  const predictions = Object.keys(out.predictions);
  for (const [name, v] of Object.entries(out.predictions)) g.output(v, name);
  const losses = withLosses ? Object.keys(out.losses) : [];
  if (withLosses) {
    g.output(out.loss, "loss");
    for (const [name, v] of Object.entries(out.losses)) g.output(v, `loss_${name}`);
  }
  return { predictions, losses };
}

export function signatureOf(kind: ProgramSignature["kind"], model: string, dtype: FloatDType, r: Recorder, names: { predictions: string[]; losses: string[] }): ProgramSignature {
  return {
    kind, model, dtype,
    params: r.params, tables: r.tables, states: r.states, lookups: r.lookups, dropouts: r.dropouts, batchInputs: r.batchInputs,
    predictions: names.predictions, losses: names.losses, slots: [],
  };
}

export function buildTrainingStep<C>(model: ModelDefinition<C>, config: C, opts: TrainingOptions): Program {
  const dtype = opts.dtype ?? "float32";
  const g = new Graph({ name: `${model.name}_train_step`, opset: opts.opset });
  const slots = optimizerSlots(opts.optimizer).map((s) => s.name);
  // With the rows' update on the host, the row blocks come without their slots.
  const r = new Recorder(g, dtype, "train", undefined, opts.rowUpdate === "host" ? [] : slots);
  const out = model.build(r, config);
  const names = outputs(g, out, true);

  // With the rows' update on the host, the host also sums each lookup's gradient into its table's
  // block, when the blocks are used by lookups only and no clipping needs the blocks' norm: then
  // the step has no ScatterND(add), whose result varies from run to run on several onnxruntime
  // threads, so the step is reproducible on any number of them.
  const lookupGrads = opts.rowUpdate === "host" && opts.clipNorm === undefined && onlyGathered(r);
  const targets = lookupGrads ? r.gathers.map((x) => x.rows) : r.rowValues;
  appendUpdate(r, gradients(out.loss, [...r.paramValues, ...targets]), opts, lookupGrads);
  const signature = signatureOf("train_step", model.name, dtype, r, names);
  signature.optimizer = resolveOptimizer(opts.optimizer);
  signature.slots = slots;
  if (opts.clipNorm !== undefined) signature.clipNorm = opts.clipNorm;
  if (opts.rowUpdate === "host") signature.rowUpdate = "host";
  if (lookupGrads) signature.lookupGrads = true;
  g.metadata.set("mtl.signature", JSON.stringify(signature));
  return { graph: g, signature };
}

/**
 * The optimizer's half of a training step: given d loss / d (params, then table rows), adds the
 * `step` and `lr` inputs, the slot inputs and every `__new` output (and `grad_norm` when clipping).
 */
export function appendUpdate(r: Recorder, gradsIn: Value[], opts: TrainingOptions, lookupGrads = false): void {
  const g = r.graph, dtype = r.dtype;
  const slots = optimizerSlots(opts.optimizer).map((s) => s.name);
  const step = g.input("step", "int64", []);
  const lr = g.input("lr", dtype, []);
  let grads = gradsIn;
  if (opts.clipNorm !== undefined) {
    const clipped = clipByGlobalNorm(grads, opts.clipNorm);
    grads = clipped.grads;
    g.output(clipped.norm, "grad_norm");
  }
  const update = createUpdater(opts.optimizer, step, lr);
  r.params.forEach((p, i) => {
    const slotValues = slots.map((s) => g.input(slotName(p.name, s), dtype, p.shape));
    const next = update(r.paramValues[i]!, grads[i]!, slotValues);
    g.output(next.param, newName(p.name));
    next.slots.forEach((v, k) => g.output(v, newName(slotName(p.name, slots[k]!))));
  });
  if (opts.rowUpdate === "host" && r.tables.length) {
    if (lookupGrads) r.gathers.forEach((x, i) => g.output(grads[r.params.length + i]!, gradName(x.input)));
    else r.tables.forEach((t, i) => g.output(grads[r.params.length + i]!, gradName(rowsName(t.name))));
    g.output(ops.Concat(update.scalars().map((x) => ops.Unsqueeze(x, [0])), { axis: 0 }), ROW_SCALARS);
  }
  if (opts.rowUpdate !== "host") r.tables.forEach((t, i) => {
    const base = rowsName(t.name);
    const next = update(r.rowValues[i]!, grads[r.params.length + i]!, r.rowSlots[i]!);
    g.output(next.param, newName(base));
    next.slots.forEach((v, k) => g.output(v, newName(slotName(base, slots[k]!))));
  });
  for (const s of r.states) {
    const next = r.stateUpdates.get(s.name);
    if (!next) throw new MtlError("E_MODEL", `state '${s.name}' was declared but never updated in training`);
    g.output(next, newName(s.name));
  }
}

export function buildEvalProgram<C>(model: ModelDefinition<C>, config: C, opts: ProgramOptions = {}): Program {
  const dtype = opts.dtype ?? "float32";
  const g = new Graph({ name: `${model.name}_eval`, opset: opts.opset });
  const r = new Recorder(g, dtype, "eval");
  const out = model.build(r, config);
  const signature = signatureOf("eval", model.name, dtype, r, outputs(g, out, true));
  g.metadata.set("mtl.signature", JSON.stringify(signature));
  return { graph: g, signature };
}

/** The inference graph: global int64 ids (and any non-label inputs) in, predictions out. */
export function buildInferenceGraph<C>(model: ModelDefinition<C>, config: C, source: InferenceSource, opts: InferenceOptions = {}): Graph {
  const dtype = opts.dtype ?? "float32";
  const g = new Graph({ name: model.name, opset: opts.opset });
  const r = new Recorder(g, dtype, "inference", source, [], opts.tableStorage, opts.contextSplit === true);
  outputs(g, model.build(r, config), false);
  pruneUnusedInputs(g);
  g.metadata.set("mtl.model", model.name);
  return g;
}

/** The parameters, tables and states a model declares (builds it once in training mode). */
export function describeModel<C>(model: ModelDefinition<C>, config: C, dtype: FloatDType = "float32"): Pick<ProgramSignature, "params" | "tables" | "states" | "lookups"> {
  const r = new Recorder(new Graph({ name: model.name }), dtype, "train");
  model.build(r, config);
  return { params: r.params, tables: r.tables, states: r.states, lookups: r.lookups };
}

/** Whether every use of every table's row block is one of the recorded lookups' Gathers. */
function onlyGathered(r: Recorder): boolean {
  const blocks = new Set(r.rowValues);
  const gathered = new Set(r.gathers.map((x) => x.rows));
  return r.graph.nodes.every((n) => !n.inputs.some((v) => v && blocks.has(v)) || gathered.has(n.outputs[0]!));
}

/** Drops graph inputs no output depends on (labels, in an inference graph). */
function pruneUnusedInputs(g: Graph): void {
  const live = new Set<Value>(g.outputs);
  for (const n of g.liveNodes()) for (const v of n.inputs) if (v) live.add(v);
  for (let i = g.inputs.length - 1; i >= 0; i--) if (!live.has(g.inputs[i]!)) g.inputs.splice(i, 1);
}

