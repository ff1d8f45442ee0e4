/**
 * Baselines the CVR models are measured against.
 *
 * naive — the ESMM paper's BASE: a CVR tower trained on the clicked impressions only, with a CTR
 *   tower trained on all impressions beside it on the same embeddings, and pCTCVR = pCTR × pCVR:
 *     L = w_ctr · BCE(pCTR, click) + w_cvr · (1/Σo) Σ o·BCE(pCVR, conversion)
 *   (The paper's BASE trains the CVR network alone; sharing the embedding table with the CTR
 *   tower, as here, lets the embeddings see every impression while the CVR tower still learns from
 *   clicks only: the selection bias ESMM addresses is in that tower's training space.)
 *
 * ctr-only — one CTR tower: L = BCE(pCTR, click). It predicts `p_ctr` only: no `p_cvr` or
 *   `p_ctcvr` output exists, and evaluators report those tasks as missing for it.
 */
import type { ModelContext, ModelDefinition, ModelOutputs } from "../train/model.js";
import { funnelObjective, separateTowers } from "./backbones.js";
import { COMMON_RULES, commonDefaults, embeddedInput, layerSizes, lossOptions, nonNegativeNumber, optionalLayerSizes, registered, type CommonConfig } from "./config.js";
import { CLICK_INPUT, labelInputs } from "./inputs.js";
import { binaryCrossEntropy, tower } from "./layers.js";

export interface NaiveConfig extends CommonConfig {
  /** Hidden sizes of the CTR tower, and of the CVR tower unless cvrTowerSizes is set. Default [256, 64] (as ESMM's). */
  towerSizes: number[];
  /** Hidden sizes of the CVR tower (PaddleRec `cvr_fc_sizes`); null: the same as towerSizes. Default null. */
  cvrTowerSizes: number[] | null;
  /** Weight of BCE(pCTR, click) over impressions. Default 1. */
  ctrWeight: number;
  /** Weight of BCE(pCVR, conversion) over clicked impressions. Default 1. */
  cvrWeight: number;
}

export function naiveDefaults(): NaiveConfig {
  return { ...commonDefaults(), towerSizes: [256, 64], cvrTowerSizes: null, ctrWeight: 1, cvrWeight: 1 };
}

export function buildNaive(ctx: ModelContext, config: NaiveConfig): ModelOutputs {
  const x = embeddedInput(ctx, config);
  const labels = labelInputs(ctx);
  const p = separateTowers(ctx, x, ["ctr", "cvr"], (task) => (task === "ctr" ? config.towerSizes : config.cvrTowerSizes ?? config.towerSizes), config);
  return funnelObjective(p["ctr"]!, p["cvr"]!, labels, { ctrWeight: config.ctrWeight, cvrWeight: config.cvrWeight, ctcvrWeight: 0 }, lossOptions(ctx, config));
}

export const naive: ModelDefinition<NaiveConfig> = { name: "naive", build: buildNaive };

export const naiveEntry = registered(naive, naiveDefaults, { ...COMMON_RULES, towerSizes: layerSizes, cvrTowerSizes: optionalLayerSizes, ctrWeight: nonNegativeNumber, cvrWeight: nonNegativeNumber },
  "naive CVR (ESMM's BASE): a CVR tower trained on clicked impressions only, a CTR tower on all");

export interface CtrOnlyConfig extends CommonConfig {
  /** Hidden sizes of the CTR tower. Default [256, 64]. */
  towerSizes: number[];
}

export function ctrOnlyDefaults(): CtrOnlyConfig {
  return { ...commonDefaults(), towerSizes: [256, 64] };
}

export function buildCtrOnly(ctx: ModelContext, config: CtrOnlyConfig): ModelOutputs {
  const x = embeddedInput(ctx, config);
  const click = ctx.input(CLICK_INPUT, ctx.dtype, ["batch"]);
  const pCtr = tower(ctx, "ctr", x, config.towerSizes, config);
  const ctrLoss = binaryCrossEntropy(pCtr, click, lossOptions(ctx, config));
  return { predictions: { p_ctr: pCtr }, losses: { ctr: ctrLoss }, loss: ctrLoss };
}

export const ctrOnly: ModelDefinition<CtrOnlyConfig> = { name: "ctr-only", build: buildCtrOnly };

export const ctrOnlyEntry = registered(ctrOnly, ctrOnlyDefaults, { ...COMMON_RULES, towerSizes: layerSizes },
  "CTR only: one tower, BCE on clicks; predicts p_ctr only (no p_cvr, no p_ctcvr)");
