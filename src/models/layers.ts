/**
 * The building blocks every model shares: MLP towers (ReLU, optional BatchNorm and Dropout per
 * layer), probability heads, experts and softmax gates for mixture models, and the losses (BCE over
 * the batch, BCE over a mask, per-impression log-loss). Model files compose these and read like the
 * paper's figure; nothing below is repeated in a model file.
 */
import { MtlError } from "../errors.js";
import * as ops from "../graph/ops.js";
import type { Value } from "../graph/ir.js";
import type { ModelContext } from "../train/model.js";
import type { SplitInput } from "./inputs.js";

/**
 * Where BatchNorm sits in a hidden layer: "before-activation" Gemm → BN → ReLU (true means this),
 * "after-activation" Gemm → ReLU → BN, "no-activation" Gemm → BN with no ReLU (the PyTorch
 * notebook's Linear → BatchNorm → Dropout towers). Dropout always comes last.
 */
export type BatchNormPlacement = "before-activation" | "after-activation" | "no-activation";
export const BATCH_NORM_PLACEMENTS: readonly BatchNormPlacement[] = ["before-activation", "after-activation", "no-activation"];

/** Per hidden layer: BatchNorm (placement above) and Dropout at the end of the layer. */
export interface LayerOptions {
  /** false: none; true: "before-activation". */
  batchNorm?: boolean | BatchNormPlacement;
  /** Dropout rate at the end of each hidden layer (0 = none), or one rate per layer (PyTorch's `dropouts=[0.5, 0.5]`). */
  dropout?: number | readonly number[];
}

/** The dropout rate of hidden layer `i` of an MLP `name` of `layers` layers. */
export function dropoutRate(dropout: LayerOptions["dropout"], i: number, layers: number, name: string): number {
  if (dropout === undefined || typeof dropout === "number") return dropout ?? 0;
  if (dropout.length < layers) {
    throw new MtlError("E_CONFIG", `'dropout' lists ${dropout.length} rates, but ${name} has ${layers} hidden layers`, { where: { field: "dropout" }, hint: "give one rate per hidden layer of the deepest MLP, or one number for all" });
  }
  return dropout[i]!;
}

/**
 * A [batch, width] activation and its width (the builder's shapes carry "batch" symbolically); the
 * model input of a scoring graph also carries its context split (see embedInput).
 */
export interface Activation {
  value: Value;
  width: number;
  split?: SplitInput;
}

/** Clipping of probabilities inside log-losses: p is held in [eps, 1 - eps]. */
export const PROBABILITY_EPS = 1e-7;

/**
 * x·W + b with W [inputWidth, units] (Glorot uniform) and b zeros; parameters `${name}.weight`,
 * `${name}.bias`. On a split input, x·W + b is x_context·W[context rows] + b, once per context row
 * and gathered to the rows, plus x_candidate·W[candidate rows] (the row selections are constants
 * onnxruntime folds into weights when it loads the model).
 */
export function linear(ctx: ModelContext, name: string, x: Activation, units: number): Activation {
  const w = ctx.param(`${name}.weight`, [x.width, units], { kind: "glorot_uniform", fanIn: x.width, fanOut: units });
  const b = ctx.param(`${name}.bias`, [units], { kind: "zeros" });
  const s = x.split;
  if (!s) return { value: ops.Gemm(x.value, w, b), width: units };
  const rows = (columns: readonly number[]) => ops.Gather(w, ctx.graph.ints(columns), { axis: 0 });
  const perContext = ops.Gemm(s.context, rows(s.contextColumns), b); // [contexts, units], the bias once per context
  return { value: ops.Gemm(s.candidate, rows(s.candidateColumns), ops.Gather(perContext, s.index, { axis: 0 })), width: units };
}

/** BatchNorm over [batch, units]: batch statistics in training (running statistics updated, momentum 0.9), running statistics otherwise. */
export function batchNorm(ctx: ModelContext, name: string, x: Value, units: number): Value {
  const scale = ctx.param(`${name}.scale`, [units], { kind: "ones" });
  const bias = ctx.param(`${name}.bias`, [units], { kind: "zeros" });
  const mean = ctx.state({ name: `${name}.running_mean`, shape: [units], init: { kind: "zeros" } });
  const variance = ctx.state({ name: `${name}.running_var`, shape: [units], init: { kind: "ones" } });
  if (ctx.mode !== "train") return ops.BatchNormalization(x, scale, bias, mean.value, variance.value)[0]!;
  const [y, runningMean, runningVar] = ops.BatchNormalization(x, scale, bias, mean.value, variance.value, { training_mode: 1, momentum: 0.9 });
  mean.update(runningMean!);
  variance.update(runningVar!);
  return y!;
}

/** Hidden layers `${name}.${i}`: Gemm → ReLU with BatchNorm placed as asked → [Dropout], one per entry of `sizes`. */
export function mlp(ctx: ModelContext, name: string, x: Activation, sizes: readonly number[], opts: LayerOptions = {}): Activation {
  let h = x;
  const placement: BatchNormPlacement | null = opts.batchNorm === true ? "before-activation" : opts.batchNorm || null;
  sizes.forEach((units, i) => {
    const layer = `${name}.${i}`;
    let v = linear(ctx, layer, h, units).value;
    if (placement === "before-activation" || placement === "no-activation") v = batchNorm(ctx, `${layer}.bn`, v, units);
    if (placement !== "no-activation") v = ops.Relu(v);
    if (placement === "after-activation") v = batchNorm(ctx, `${layer}.bn`, v, units);
    const rate = dropoutRate(opts.dropout, i, sizes.length, name);
    if (rate) v = ctx.dropout(`${layer}.dropout`, v, rate);
    h = { value: v, width: units };
  });
  return h;
}

/** A 1-unit layer `${name}` and a sigmoid: a probability per example, [batch]. */
export function probabilityHead(ctx: ModelContext, name: string, h: Activation): Value {
  return ops.Squeeze(ops.Sigmoid(linear(ctx, name, h, 1).value), [1]);
}

/** An MLP tower ending in a probability: hidden layers `${name}.${i}`, head `${name}.out`. [batch] */
export function tower(ctx: ModelContext, name: string, x: Activation, sizes: readonly number[], opts: LayerOptions = {}): Value {
  return probabilityHead(ctx, `${name}.out`, mlp(ctx, name, x, sizes, opts));
}

/** `count` experts `${name}.${e}`, each an MLP of `sizes` on x (MMoE's f_e). */
export function experts(ctx: ModelContext, name: string, x: Activation, count: number, sizes: readonly number[], opts: LayerOptions = {}): Activation[] {
  return Array.from({ length: count }, (_, e) => mlp(ctx, `${name}.${e}`, x, sizes, opts));
}

/** A softmax gate over `count` choices from x: softmax(x·W + b), [batch, count] (MMoE eq. 5). */
export function softmaxGate(ctx: ModelContext, name: string, x: Activation, count: number): Value {
  return ops.Softmax(linear(ctx, name, x, count).value, { axis: 1 });
}

/** Σ_e gate[:, e] · expert_e: the gate-weighted sum of equally wide experts (MMoE eq. 4). */
export function mixExperts(gate: Value, expertOutputs: readonly Activation[]): Activation {
  const width = expertOutputs[0]!.width;
  const terms = expertOutputs.map((e, i) => ops.Mul(ops.Slice(gate, [i], [i + 1], [1]), e.value));
  return { value: ops.addAll(terms), width };
}

/** Per-example log-loss −(y·log p + (1 − y)·log(1 − p)), p clipped to [eps, 1 − eps]: [batch]. */
export function logLoss(p: Value, label: Value, eps = PROBABILITY_EPS): Value {
  const q = ops.Clip(p, eps, 1 - eps);
  return ops.Neg(ops.Add(ops.Mul(label, ops.Log(q)), ops.Mul(ops.Sub(1, label), ops.Log(ops.Sub(1, q)))));
}

/** How a loss term reduces its per-example values over a batch (PyTorch's `reduction`). */
export type Reduction = "mean" | "sum";

/** Per-row sample weights (the `sample_weight` input, [batch]) and the reduction of every loss term. */
export interface LossOptions {
  weight?: Value;
  /** Default "mean". */
  reduction?: Reduction;
}

/**
 * A batch's loss term from per-example values ℓ: Σ w·m·ℓ, divided ("mean") by the row count, or by
 * Σ m when masked (at least 1, so a batch without masked rows gives 0, not NaN), or not at all
 * ("sum"). w (sample weights) and m (mask) default to 1. Weighted means divide by rows, not by Σ w,
 * as PyTorch's BCELoss(weight) and Keras' sample_weight do.
 */
export function reduceLoss(perExample: Value, opts: LossOptions = {}, mask?: Value): Value {
  let v = opts.weight ? ops.Mul(opts.weight, perExample) : perExample;
  if (mask) v = ops.Mul(mask, v);
  if (opts.reduction === "sum") return ops.ReduceSum(v, { keepdims: 0 });
  if (!mask) return ops.ReduceMean(v, { keepdims: 0 });
  return ops.Div(ops.ReduceSum(v, { keepdims: 0 }), ops.Max(ops.ReduceSum(mask, { keepdims: 0 }), 1));
}

/** Binary cross-entropy on probabilities over the batch (mean by default; see reduceLoss); p is clipped to [eps, 1 - eps]. */
export function binaryCrossEntropy(p: Value, label: Value, opts: LossOptions = {}): Value {
  return reduceLoss(logLoss(p, label), opts);
}

/**
 * BCE over the examples where mask = 1 (e.g. the clicked impressions): Σ mask·ℓ / Σ mask (mean) or
 * Σ mask·ℓ (sum). A batch without any such example gives 0, not NaN.
 */
export function maskedBinaryCrossEntropy(p: Value, label: Value, mask: Value, opts: LossOptions = {}): Value {
  return reduceLoss(logLoss(p, label), opts, mask);
}

/** w·x, leaving x as it is when w = 1 (so a default weight adds no node). */
export function weighted(x: Value, w: number): Value {
  return w === 1 ? x : ops.Mul(x, w);
}
