/**
 * ESCM² — Entire Space Counterfactual Multi-task Model (Wang et al., SIGIR 2022, arXiv:2204.05125).
 *
 * ESMM's pCTCVR = pCTR × pCVR and CTCVR loss, plus a counterfactual risk on the CVR tower that
 * corrects the selection bias of clicks with the CTR tower's propensity (o = click):
 *
 *   δ   = −(r·log pCVR + (1 − r)·log(1 − pCVR))     per-impression CVR log-loss, r = conversion label
 *   ô   = stopGradient(max(pCTR, floor))             propensity; the CVR risk never trains the CTR tower
 *   IPW: R_IPS = 1/|D| Σ o·δ/ô                       (1/ô clipped at `propensityClip`)
 *   DR:  R_err = 1/|D| Σ [δ̂ + o·(δ − δ̂)/ô]           (δ̂ = ê, the imputation tower's output)
 *        R_imp = 1/|D| Σ o·(δ − δ̂)²/ô                 (trains the imputation tower)
 *        R_DR  = R_err + R_imp
 *   L = L_ctr + λ_cf·R_cvr + λ_g·L_ctcvr              (the paper's final objective)
 *
 * DR gradients (`drGradients`): "alternating" (default) trains as doubly robust joint learning does
 * (Wang et al., ICML 2019): the CVR tower learns from R_err with δ̂ held fixed, the imputation tower
 * from R_imp with δ held fixed. "joint" lets both risks reach both towers; then R_imp also pulls each
 * clicked impression's δ toward the imputed δ̂ (a sigmoid, so bounded in (0, 1)), which raises pCVR on
 * clicked negatives: measured on the synthetic funnel (bias 1, ESMM towers, seeds 1–2) the mean
 * CVR bias was +0.21 with "joint" and +0.065 with "alternating" (ESMM: +0.058).
 *
 * (Equation numbers are left out: they differ between the arXiv and SIGIR versions and were not
 * checked here; the symbols are the paper's.)
 *
 * Defaults are PaddleRec's models/multitask/escm2: MMoE backbone (8 experts of 16, one softmax gate
 * per task, towers 16→8→1), DR, floor 1e-6, clip 15, λ_cf = λ_g = 0.5 (static_model.py's defaults).
 *
 * IPW normalisation (`ipwNormalization`):
 *   "batch"  (default) R_IPS = 1/|D| Σ o·δ/ô — the paper's estimator: E[o/ô] = 1 makes it an
 *            unbiased estimate of the entire-space CVR risk (the mean of δ over ALL impressions),
 *            on the same scale as L_ctr and L_ctcvr, so λ_cf means the same on any data set.
 *   "clicks" R_IPS = 1/Σo · Σ o·δ/ô — PaddleRec's IPW (it divides ô by the batch's click count and
 *            multiplies by the batch size). This is ≈ the batch version ÷ CTR: ~12× larger at 8% CTR,
 *            and it moves with each batch's click count. (PaddleRec also applies its clip to
 *            1/(ô·clicks), which leaves the clip nearly inactive; here the clip is on 1/ô in both.)
 */
import * as ops from "../graph/ops.js";
import type { Value } from "../graph/ir.js";
import { stopGradient } from "../autodiff/index.js";
import type { ModelContext, ModelDefinition, ModelOutputs } from "../train/model.js";
import { mmoe, separateTowers } from "./backbones.js";
import { COMMON_RULES, commonDefaults, embeddedInput, layerSizes, nonEmptyLayerSizes, nonNegativeNumber, oneOf, optionalLayerSizes, positiveInt, positiveNumber, probability, registered, type CommonConfig, lossOptions } from "./config.js";
import { labelInputs } from "./inputs.js";
import { binaryCrossEntropy, logLoss, weighted, reduceLoss } from "./layers.js";

export type CounterfactualMode = "IPW" | "DR";
export type IpwNormalization = "batch" | "clicks";
export type DrGradients = "alternating" | "joint";

export interface Escm2Config extends CommonConfig {
  /** "DR" (doubly robust, with an imputation tower) or "IPW" (PaddleRec `counterfact_mode`). Default "DR". */
  counterfactualMode: CounterfactualMode;
  /** λ_cf, the weight of the counterfactual CVR risk (PaddleRec `counterfactual_w`). Default 0.5. */
  counterfactualWeight: number;
  /** λ_g, the weight of the CTCVR loss (PaddleRec `global_w`). Default 0.5. */
  globalWeight: number;
  /** ô = max(pCTR, propensityFloor). Default 1e-6. */
  propensityFloor: number;
  /** The inverse-propensity weight 1/ô is clipped at this value. Default 15. */
  propensityClip: number;
  /** How the IPW risk is averaged: over the batch (the paper) or over its clicks (PaddleRec). Default "batch". */
  ipwNormalization: IpwNormalization;
  /** DR only: "alternating" (each risk trains its own tower; see above) or "joint". Default "alternating". */
  drGradients: DrGradients;
  /** "mmoe" (PaddleRec's ESCM2) or "towers" (ESMM's separate CTR/CVR towers on the shared embeddings). Default "mmoe". */
  backbone: "mmoe" | "towers";
  /** The CTR tower of the "towers" backbone (PaddleRec `ctr_fc_sizes`), and the others unless cvrTowerSizes is set. Default [256, 64]. */
  towerSizes: number[];
  /** The CVR (and imputation) towers of the "towers" backbone (PaddleRec `cvr_fc_sizes`); null: towerSizes. Default null. */
  cvrTowerSizes: number[] | null;
  /** MMoE backbone: experts (PaddleRec `expert_num`). Default 8. */
  expertCount: number;
  /** MMoE backbone: hidden sizes of each expert (PaddleRec `expert_size`). Default [16]. */
  expertSizes: number[];
  /** MMoE backbone: hidden sizes of each task tower after the gate (PaddleRec `tower_size`). Default [8]. */
  mmoeTowerSizes: number[];
}

export function escm2Defaults(): Escm2Config {
  return {
    ...commonDefaults(),
    counterfactualMode: "DR", counterfactualWeight: 0.5, globalWeight: 0.5,
    propensityFloor: 1e-6, propensityClip: 15, ipwNormalization: "batch", drGradients: "alternating",
    backbone: "mmoe", towerSizes: [256, 64], cvrTowerSizes: null, expertCount: 8, expertSizes: [16], mmoeTowerSizes: [8],
  };
}

/** The inverse-propensity weights min(1/ô, clip) with ô = stopGradient(max(pCTR, floor)): no gradient reaches pCTR. */
export function inversePropensity(pCtr: Value, floor: number, clip: number): Value {
  const oHat = stopGradient(ops.Max(pCtr, floor)); // ô
  return ops.Clip(ops.Reciprocal(oHat), null, clip); // 1/ô, clipped
}

export function buildEscm2(ctx: ModelContext, config: Escm2Config): ModelOutputs {
  const x = embeddedInput(ctx, config);
  const { click: o, conversion } = labelInputs(ctx);
  const tasks = config.counterfactualMode === "DR" ? ["ctr", "cvr", "imputation"] : ["ctr", "cvr"];
  const p = config.backbone === "mmoe"
    ? mmoe(ctx, x, tasks, { expertCount: config.expertCount, expertSizes: config.expertSizes, towerSizes: config.mmoeTowerSizes }, config)
    : separateTowers(ctx, x, tasks, (task) => (task === "ctr" ? config.towerSizes : config.cvrTowerSizes ?? config.towerSizes), config);
  const pCtr = p["ctr"]!, pCvr = p["cvr"]!;
  const pCtcvr = ops.Mul(pCtr, pCvr); // ESMM eq. 1

  const loss = lossOptions(ctx, config); // sample weights and the reduction, in every term
  const ctrLoss = binaryCrossEntropy(pCtr, o, loss); // L_ctr
  const ctcvrLoss = binaryCrossEntropy(pCtcvr, conversion, loss); // L_ctcvr
  const delta = logLoss(pCvr, conversion); // δ, per impression
  const invPropensity = inversePropensity(pCtr, config.propensityFloor, config.propensityClip); // 1/ô
  const mean = (v: Value) => reduceLoss(v, loss); // 1/|D| Σ (or Σ with reduction "sum")
  const losses: Record<string, Value> = { ctr: ctrLoss };
  let cvrRisk: Value;
  if (config.counterfactualMode === "IPW") {
    const weightedLoss = ops.Mul(ops.Mul(o, delta), invPropensity); // o·δ/ô
    cvrRisk = config.ipwNormalization === "batch"
      ? mean(weightedLoss) // R_IPS
      : reduceLoss(ops.Mul(delta, invPropensity), loss, o); // PaddleRec: Σ o·δ/ô ÷ clicks
    losses["cvr"] = cvrRisk;
  } else {
    const deltaHat = p["imputation"]!; // δ̂ = ê, the imputed CVR loss
    const oOverOHat = ops.Mul(o, invPropensity); // o/ô
    const alternating = config.drGradients === "alternating";
    const fixedDeltaHat = alternating ? stopGradient(deltaHat) : deltaHat; // δ̂, fixed for the CVR tower
    const fixedDelta = alternating ? stopGradient(delta) : delta; // δ, fixed for the imputation tower
    const errRisk = mean(ops.Add(fixedDeltaHat, ops.Mul(oOverOHat, ops.Sub(delta, fixedDeltaHat)))); // R_err
    const e = ops.Sub(fixedDelta, deltaHat); // δ − δ̂
    const impRisk = mean(ops.Mul(oOverOHat, ops.Mul(e, e))); // R_imp
    cvrRisk = ops.Add(errRisk, impRisk); // R_DR
    Object.assign(losses, { cvr: cvrRisk, cvr_err: errRisk, cvr_imp: impRisk });
  }
  losses["ctcvr"] = ctcvrLoss;
  return {
    predictions: { p_ctr: pCtr, p_cvr: pCvr, p_ctcvr: pCtcvr },
    losses,
    loss: ops.Sum(ctrLoss, weighted(cvrRisk, config.counterfactualWeight), weighted(ctcvrLoss, config.globalWeight)), // L_ctr + λ_cf·R_cvr + λ_g·L_ctcvr
  };
}

export const escm2: ModelDefinition<Escm2Config> = { name: "escm2", build: buildEscm2 };

export const ESCM2_RULES = {
  ...COMMON_RULES,
  counterfactualMode: oneOf("IPW", "DR"),
  counterfactualWeight: nonNegativeNumber,
  globalWeight: nonNegativeNumber,
  propensityFloor: probability,
  propensityClip: positiveNumber,
  ipwNormalization: oneOf("batch", "clicks"),
  drGradients: oneOf("alternating", "joint"),
  backbone: oneOf("mmoe", "towers"),
  towerSizes: layerSizes,
  cvrTowerSizes: optionalLayerSizes,
  expertCount: positiveInt,
  expertSizes: nonEmptyLayerSizes,
  mmoeTowerSizes: layerSizes,
};

export const escm2Entry = registered(escm2, escm2Defaults, ESCM2_RULES, "ESCM² (SIGIR 2022): ESMM plus a counterfactual CVR risk (IPW or doubly robust) on the entire impression space");
