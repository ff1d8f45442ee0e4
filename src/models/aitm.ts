/**
 * AITM — Adaptive Information Transfer Multi-task (Xi et al., KDD 2021, arXiv:2105.08489).
 *
 * Two tasks on the impression space, click (t−1) and conversion (t), each with its own tower on the
 * shared embeddings (q = tower output). The click tower's information is transferred to the
 * conversion tower through the AIT module:
 *   p_{t−1} = g_{t−1}(q_{t−1})                                  transfer: one dense layer + ReLU
 *   z_t     = Σ_{u ∈ {p_{t−1}, q_t}} w_u · h1(u)                attention over the two vectors
 *   w_u     = softmax_u( ⟨h2(u), h3(u)⟩ / √k )                  h1, h2, h3: k×k projections
 *   pCTR    = σ(head(q_{t−1})),  pCTCVR = σ(head(z_t))
 * with the behavioural expectation calibrator, a penalty where the conversion probability exceeds
 * the click probability:
 *   L = w_ctr·BCE(pCTR, click) + w_ctcvr·BCE(pCTCVR, conversion) + α · Σ_batch max(pCTCVR − pCTR, 0)
 * (α = 0.6 and the sum over the batch, not the mean, as the paper's code.)
 *
 * AITM predicts the conversion probability per impression (our pCTCVR) directly. Its `p_cvr` is
 * derived for evaluation: clip(pCTCVR / max(pCTR, 1e-7), 0, 1) — it gets no loss of its own.
 */
import * as ops from "../graph/ops.js";
import type { Value } from "../graph/ir.js";
import type { ModelContext, ModelDefinition, ModelOutputs } from "../train/model.js";
import { COMMON_RULES, commonDefaults, embeddedInput, nonEmptyLayerSizes, nonNegativeNumber, registered, type CommonConfig, lossOptions } from "./config.js";
import { labelInputs } from "./inputs.js";
import { type Activation, PROBABILITY_EPS, binaryCrossEntropy, mlp, probabilityHead, weighted, reduceLoss } from "./layers.js";

export interface AitmConfig extends CommonConfig {
  /** Hidden sizes of the click and of the conversion tower; the last is the attention width k. Default [128, 64, 32] (the paper's code). */
  towerSizes: number[];
  /** w_ctr: weight of BCE(pCTR, click). Default 1. */
  ctrWeight: number;
  /** w_ctcvr: weight of BCE(pCTCVR, conversion). Default 1. */
  ctcvrWeight: number;
  /** α, the calibrator's weight. Default 0.6. */
  calibrationWeight: number;
}

export function aitmDefaults(): AitmConfig {
  return { ...commonDefaults(), towerSizes: [128, 64, 32], ctrWeight: 1, ctcvrWeight: 1, calibrationWeight: 0.6 };
}

/** u ↦ u·W with W [k, k] and no bias (the AIT module's projections h1, h2, h3, shared by both candidates). */
function projection(ctx: ModelContext, name: string, k: number): (u: Activation) => Value {
  const w = ctx.param(`${name}.weight`, [k, k], { kind: "glorot_uniform", fanIn: k, fanOut: k });
  return (u) => ops.MatMul(u.value, w);
}

/** The AIT module: attention-weighted sum of h1(p_{t−1}) and h1(q_t). */
function adaptiveInformationTransfer(ctx: ModelContext, transferred: Activation, own: Activation): Activation {
  const k = own.width;
  const [h1, h2, h3] = [projection(ctx, "ait.value", k), projection(ctx, "ait.query", k), projection(ctx, "ait.key", k)];
  const candidates = [transferred, own];
  const values = candidates.map(h1); // h1(u)
  // ⟨h2(u), h3(u)⟩ / √k per candidate: [batch, 1] each, then a softmax over the two.
  const scores = candidates.map((u) => ops.Mul(ops.ReduceSum(ops.Mul(h2(u), h3(u)), { axes: [1], keepdims: 1 }), 1 / Math.sqrt(k)));
  const w = ops.Softmax(ops.Concat(scores, { axis: 1 }), { axis: 1 }); // w_u
  const z = ops.Add(ops.Mul(ops.Slice(w, [0], [1], [1]), values[0]!), ops.Mul(ops.Slice(w, [1], [2], [1]), values[1]!)); // z_t
  return { value: z, width: k };
}

export function buildAitm(ctx: ModelContext, config: AitmConfig): ModelOutputs {
  const x = embeddedInput(ctx, config);
  const { click, conversion } = labelInputs(ctx);
  const qClick = mlp(ctx, "ctr", x, config.towerSizes, config); // q_{t−1}
  const qConversion = mlp(ctx, "ctcvr", x, config.towerSizes, config); // q_t
  const transferred = mlp(ctx, "transfer", qClick, [qClick.width], config); // p_{t−1} = g_{t−1}(q_{t−1})
  // The projections are shared by both candidates, so the shapes must agree: the transfer layer keeps width k.
  const z = adaptiveInformationTransfer(ctx, transferred, qConversion);
  const pCtr = probabilityHead(ctx, "ctr.out", qClick);
  const pCtcvr = probabilityHead(ctx, "ctcvr.out", z);
  const pCvr = ops.Clip(ops.Div(pCtcvr, ops.Max(pCtr, PROBABILITY_EPS)), 0, 1);

  const loss = lossOptions(ctx, config);
  const ctrLoss = binaryCrossEntropy(pCtr, click, loss);
  const ctcvrLoss = binaryCrossEntropy(pCtcvr, conversion, loss);
  // Σ max(pCTCVR − pCTR, 0): a sum by the paper's definition, whatever the reduction; sample weights apply
  const calibration = reduceLoss(ops.Relu(ops.Sub(pCtcvr, pCtr)), { ...loss, reduction: "sum" });
  return {
    predictions: { p_ctr: pCtr, p_cvr: pCvr, p_ctcvr: pCtcvr },
    losses: { ctr: ctrLoss, ctcvr: ctcvrLoss, calibration },
    loss: ops.Sum(weighted(ctrLoss, config.ctrWeight), weighted(ctcvrLoss, config.ctcvrWeight), weighted(calibration, config.calibrationWeight)),
  };
}

export const aitm: ModelDefinition<AitmConfig> = { name: "aitm", build: buildAitm };

export const aitmEntry = registered(aitm, aitmDefaults, {
  ...COMMON_RULES, towerSizes: nonEmptyLayerSizes, ctrWeight: nonNegativeNumber, ctcvrWeight: nonNegativeNumber, calibrationWeight: nonNegativeNumber,
}, "AITM (KDD 2021): attention transfer from the click tower to the conversion tower, with the calibration penalty");
