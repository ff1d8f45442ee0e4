/**
 * The building blocks every model shares: MLP towers (ReLU, optional BatchNorm and Dropout per
 * layer), probability heads, experts and softmax gates for mixture models, and the losses (BCE over
 * the batch, BCE over a mask, per-impression log-loss). Model files compose these and read like the
 * paper's figure; nothing below is repeated in a model file.
 */
import * as ops from "../graph/ops.js";
import type { Value } from "../graph/ir.js";
import type { ModelContext } from "../train/model.js";

/** Per hidden layer: BatchNorm after the Gemm (before ReLU) and/or Dropout after the ReLU. */
export interface LayerOptions {
  batchNorm?: boolean;
  /** Dropout rate after each hidden layer's ReLU (0 = none). */
  dropout?: number;
}

/** A [batch, width] activation and its width (the builder's shapes carry "batch" symbolically). */
export interface Activation {
  value: Value;
  width: number;
}

/** Clipping of probabilities inside log-losses: p is held in [eps, 1 - eps]. */
export const PROBABILITY_EPS = 1e-7;

/** x·W + b with W [inputWidth, units] (Glorot uniform) and b zeros; parameters `${name}.weight`, `${name}.bias`. */
export function linear(ctx: ModelContext, name: string, x: Activation, units: number): Activation {
  const w = ctx.param(`${name}.weight`, [x.width, units], { kind: "glorot_uniform", fanIn: x.width, fanOut: units });
  const b = ctx.param(`${name}.bias`, [units], { kind: "zeros" });
  return { value: ops.Gemm(x.value, w, b), width: units };
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

/** Hidden layers `${name}.${i}`: Gemm → [BatchNorm] → ReLU → [Dropout], one per entry of `sizes`. */
export function mlp(ctx: ModelContext, name: string, x: Activation, sizes: readonly number[], opts: LayerOptions = {}): Activation {
  let h = x;
  sizes.forEach((units, i) => {
    const layer = `${name}.${i}`;
    let v = linear(ctx, layer, h, units).value;
    if (opts.batchNorm) v = batchNorm(ctx, `${layer}.bn`, v, units);
    v = ops.Relu(v);
    if (opts.dropout) v = ctx.dropout(`${layer}.dropout`, v, opts.dropout);
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

/** Binary cross-entropy on probabilities, mean over the batch; p is clipped to [eps, 1 - eps]. */
export function binaryCrossEntropy(p: Value, label: Value, eps = PROBABILITY_EPS): Value {
  return ops.ReduceMean(logLoss(p, label, eps), { keepdims: 0 });
}

/**
 * BCE averaged over the examples where mask = 1 (e.g. the clicked impressions): Σ mask·ℓ / Σ mask.
 * A batch without any such example gives 0 (the denominator is held at least 1), not NaN.
 */
export function maskedBinaryCrossEntropy(p: Value, label: Value, mask: Value, eps = PROBABILITY_EPS): Value {
  const total = ops.ReduceSum(ops.Mul(mask, logLoss(p, label, eps)), { keepdims: 0 });
  return ops.Div(total, ops.Max(ops.ReduceSum(mask, { keepdims: 0 }), 1));
}

/** w·x, leaving x as it is when w = 1 (so a default weight adds no node). */
export function weighted(x: Value, w: number): Value {
  return w === 1 ? x : ops.Mul(x, w);
}
