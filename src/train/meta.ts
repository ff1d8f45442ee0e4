/**
 * The meta-training step (MAML over campaigns, MetaHeac's stage 1) as one training-step graph, so
 * one session run is one outer step:
 *
 *   for each sampled task t = 1..T (a campaign) with a support batch S_t and a query batch Q_t:
 *     θ'_t = θ − α ∇_θ L(S_t; θ)                (inner SGD step, repeated `innerSteps` times; Eq. 9)
 *   θ ← Adam(θ, ∇_θ (1/T) Σ_t L(Q_t; θ'_t))     (outer step; Eq. 10)
 *
 * First-order by default (PaddleRec's): ∇_θ L(S_t; θ) enters θ'_t through a stop-gradient, so the
 * outer gradient is (1/T) Σ_t ∇_θ' L(Q_t; θ'_t). Second-order differentiates the inner gradient too,
 * which needs a gradient rule for every op of the backward graph.
 *
 * The model function is built 2T (or (innerSteps + 1)·T) times in one graph; each build sees a
 * context whose parameters are θ or some task's fast weights. Embedding tables are fast weights too
 * (net.py's Meta_Embedding): all 2T batches share one block of rows per table (the union of their
 * ids, gathered by the ordinary Trainer), θ'_t updates the whole block, and the outer step updates it
 * row-sparse as any training step does. The batch inputs of task t are the model's inputs renamed
 * `<input>@support<t>` and `<input>@query<t>`; every support and query batch has the same row count.
 */
import { MtlError } from "../errors.js";
import type { DType } from "../graph/dtype.js";
import { Graph, type Shape, type Value } from "../graph/ir.js";
import * as ops from "../graph/ops.js";
import { gradients, stopGradient } from "../autodiff/index.js";
import { optimizerSlots, resolveOptimizer } from "../optim/index.js";
import type { Init, ModelContext, ModelDefinition, StateSpec, TableSpec } from "./model.js";
import { type Program, type TrainingOptions, Recorder, appendUpdate, signatureOf } from "./program.js";

export interface MetaTrainingOptions extends TrainingOptions {
  /** T: tasks (campaigns) per outer step. */
  tasks: number;
  /** α: the inner SGD learning rate. */
  localLr: number;
  /** Inner SGD steps on each support batch. Default 1. */
  innerSteps?: number;
  /** Stop the gradient at the inner step (first-order MAML). Default true. */
  firstOrder?: boolean;
  /** Also output each task's final fast weights as `<name>@fast<t>` (tests). */
  outputFastWeights?: boolean;
}

export const supportInput = (input: string, task: number): string => `${input}@support${task}`;
export const queryInput = (input: string, task: number): string => `${input}@query${task}`;
export const fastName = (name: string, task: number): string => `${name}@fast${task}`;

/** Weights one build of the model reads: per parameter name and per table name. */
interface Weights {
  params: Map<string, Value>;
  rows: Map<string, Value>;
}

/** A model context over the step's shared recorder: inputs renamed for one batch, parameters from `weights`. */
class TaskContext implements ModelContext {
  readonly graph: Graph;
  readonly dtype;
  readonly mode = "train" as const;
  readonly contextSplit = false;

  constructor(
    private readonly base: Recorder,
    private readonly rename: (input: string) => string,
    private readonly weights: Weights | null,
    /** Inputs already made, by their renamed name (an inner step's rebuild reuses its batch). */
    private readonly made: Map<string, Value>,
  ) {
    this.graph = base.graph;
    this.dtype = base.dtype;
  }

  param(name: string, shape: number[], init: Init): Value {
    const fast = this.weights?.params.get(name);
    if (fast) return fast;
    const i = this.base.params.findIndex((p) => p.name === name);
    return i >= 0 ? this.base.paramValues[i]! : this.base.param(name, shape, init);
  }

  lookup(table: TableSpec, input: string, shape: Shape): Value {
    const name = this.rename(input);
    let local = this.made.get(`lookup:${name}`);
    if (!local) {
      local = this.base.lookupIds(table, name, shape).local;
      this.made.set(`lookup:${name}`, local);
    }
    const t = this.base.tables.findIndex((x) => x.name === table.name);
    return ops.Gather(this.weights?.rows.get(table.name) ?? this.base.rowValues[t]!, local);
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const renamed = this.rename(name);
    let v = this.made.get(renamed);
    if (!v) this.made.set(renamed, (v = this.base.input(renamed, dtype, shape)));
    return v;
  }

  state(spec: StateSpec): { value: Value; update(next: Value): void } {
    throw new MtlError("E_MODEL", `meta-training cannot carry running state ('${spec.name}'): turn BatchNorm off`, { where: { field: spec.name } });
  }

  dropout(name: string, x: Value, rate: number): Value {
    if (rate === 0) return x;
    throw new MtlError("E_MODEL", `meta-training does not support dropout ('${name}'): set dropout to 0`, { where: { field: name } });
  }
}

/** The weights a recorder has declared so far, as a Weights map (θ itself). */
function baseWeights(r: Recorder): Weights {
  return {
    params: new Map(r.params.map((p, i) => [p.name, r.paramValues[i]!])),
    rows: new Map(r.tables.map((t, i) => [t.name, r.rowValues[i]!])),
  };
}

/** θ − α·g for every weight (g's dependency on θ cut when first-order). */
function innerStep(w: Weights, names: { params: string[]; tables: string[] }, grads: Value[], localLr: number, firstOrder: boolean): Weights {
  const step = (v: Value, g: Value) => ops.Sub(v, ops.Mul(firstOrder ? stopGradient(g) : g, localLr));
  const np = names.params.length;
  return {
    params: new Map(names.params.map((n, i) => [n, step(w.params.get(n)!, grads[i]!)])),
    rows: new Map(names.tables.map((n, i) => [n, step(w.rows.get(n)!, grads[np + i]!)])),
  };
}

export function buildMetaTrainingStep<C>(model: ModelDefinition<C>, config: C, opts: MetaTrainingOptions): Program {
  const dtype = opts.dtype ?? "float32";
  const tasks = opts.tasks, innerSteps = opts.innerSteps ?? 1, firstOrder = opts.firstOrder ?? true;
  if (!(Number.isInteger(tasks) && tasks >= 1)) throw new MtlError("E_CONFIG", `tasks per meta step must be a positive integer, got ${tasks}`, { where: { field: "taskCount" } });
  if (!(Number.isInteger(innerSteps) && innerSteps >= 1)) throw new MtlError("E_CONFIG", `inner steps must be a positive integer, got ${innerSteps}`, { where: { field: "innerSteps" } });
  if (!(opts.localLr > 0)) throw new MtlError("E_CONFIG", `the inner learning rate must be > 0, got ${opts.localLr}`, { where: { field: "localLr" } });
  const g = new Graph({ name: `${model.name}_meta_step`, opset: opts.opset });
  const slots = optimizerSlots(opts.optimizer).map((s) => s.name);
  const r = new Recorder(g, dtype, "train", undefined, slots);
  const made = new Map<string, Value>();

  const supportLosses: Value[] = [];
  const queryLosses: Value[] = [];
  for (let t = 0; t < tasks; t++) {
    let w: Weights | null = null;
    for (let k = 0; k < innerSteps; k++) {
      const support = model.build(new TaskContext(r, (x) => supportInput(x, t), w, made), config);
      if (k === 0) supportLosses.push(support.loss);
      const current = w ?? baseWeights(r);
      const names = { params: r.params.map((p) => p.name), tables: r.tables.map((x) => x.name) };
      const grads = gradients(support.loss, [...names.params.map((n) => current.params.get(n)!), ...names.tables.map((n) => current.rows.get(n)!)]);
      w = innerStep(current, names, grads, opts.localLr, firstOrder); // θ'_t (Eq. 9)
    }
    const query = model.build(new TaskContext(r, (x) => queryInput(x, t), w, made), config);
    queryLosses.push(query.loss);
    if (opts.outputFastWeights) {
      for (const [n, v] of w!.params) g.output(v, fastName(n, t));
      for (const [n, v] of w!.rows) g.output(v, fastName(n, t));
    }
  }
  const mean = (xs: Value[]) => ops.Mul(xs.length === 1 ? xs[0]! : ops.Sum(...xs), 1 / xs.length);
  const loss = mean(queryLosses); // (1/T) Σ_t L(Q_t; θ'_t) (Eq. 10)
  g.output(loss, "loss");
  g.output(mean(supportLosses), "loss_support");
  g.output(loss, "loss_query");
  appendUpdate(r, gradients(loss, [...r.paramValues, ...r.rowValues]), opts);

  const signature = signatureOf("train_step", model.name, dtype, r, { predictions: [], losses: ["support", "query"] });
  signature.optimizer = resolveOptimizer(opts.optimizer);
  signature.slots = slots;
  if (opts.clipNorm !== undefined) signature.clipNorm = opts.clipNorm;
  g.metadata.set("mtl.signature", JSON.stringify(signature));
  g.metadata.set("mtl.meta", JSON.stringify({ tasks, innerSteps, localLr: opts.localLr, firstOrder }));
  return { graph: g, signature };
}
