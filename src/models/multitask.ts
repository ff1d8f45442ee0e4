/**
 * General multi-task backbones as CVR models: Shared-Bottom, MMoE, PLE. Each has a CTR task and a
 * CVR task on the shared input layer, and the funnel objective (backbones.ts):
 *   L = w_ctr · BCE(pCTR, click)                           over impressions
 *     + w_cvr · BCE(pCVR, conversion)                      over clicked impressions
 *     + w_ctcvr · BCE(pCTR·pCVR, conversion)               over impressions
 * Defaults (w_ctr, w_cvr, w_ctcvr) = (1, 1, 0): the way the ESMM and ESCM² papers train these as
 * baselines (the CVR task on clicks). Setting cvrWeight 0 and ctcvrWeight 1 gives the ESMM
 * objective on that backbone. pCTCVR = pCTR × pCVR in every case.
 */
import type { ModelContext, ModelDefinition, ModelOutputs } from "../train/model.js";
import { type FunnelWeights, type TaskProbabilities, funnelObjective, mmoe, ple, sharedBottom } from "./backbones.js";
import type { Activation } from "./layers.js";
import { COMMON_RULES, commonDefaults, embeddedInput, layerSizes, nonEmptyLayerSizes, nonNegativeNumber, positiveInt, registered, type CommonConfig, type Rule, lossOptions } from "./config.js";
import { labelInputs } from "./inputs.js";

const TASKS = ["ctr", "cvr"];
const FUNNEL_DEFAULTS: FunnelWeights = { ctrWeight: 1, cvrWeight: 1, ctcvrWeight: 0 };
const FUNNEL_RULES: Record<keyof FunnelWeights, Rule> = { ctrWeight: nonNegativeNumber, cvrWeight: nonNegativeNumber, ctcvrWeight: nonNegativeNumber };

/** The shared input layer, a backbone's CTR and CVR probabilities, and the funnel objective. */
function funnel(ctx: ModelContext, config: CommonConfig & FunnelWeights, backbone: (x: Activation) => TaskProbabilities): ModelOutputs {
  const x = embeddedInput(ctx, config);
  const labels = labelInputs(ctx);
  const p = backbone(x);
  return funnelObjective(p["ctr"]!, p["cvr"]!, labels, config, lossOptions(ctx, config));
}

// ---------------------------------------------------------------- Shared-Bottom

export interface SharedBottomConfig extends CommonConfig, FunnelWeights {
  /** Hidden sizes of the shared bottom MLP (PaddleRec `bottom_size`). Default [117], PaddleRec's share_bottom. */
  bottomSizes: number[];
  /** Hidden sizes of each task tower on the bottom (PaddleRec `tower_size`). Default [8]. */
  towerSizes: number[];
}

export function sharedBottomDefaults(): SharedBottomConfig {
  return { ...commonDefaults(), ...FUNNEL_DEFAULTS, bottomSizes: [117], towerSizes: [8] };
}

export const sharedBottomModel: ModelDefinition<SharedBottomConfig> = {
  name: "shared-bottom",
  build: (ctx, c) => funnel(ctx, c, (x) => sharedBottom(ctx, x, TASKS, c.bottomSizes, c.towerSizes, c)),
};

export const sharedBottomEntry = registered(sharedBottomModel, sharedBottomDefaults, { ...COMMON_RULES, ...FUNNEL_RULES, bottomSizes: nonEmptyLayerSizes, towerSizes: layerSizes },
  "Shared-Bottom: one shared MLP, then CTR and CVR towers");

// ---------------------------------------------------------------- MMoE

export interface MmoeConfig extends CommonConfig, FunnelWeights {
  /** Experts (PaddleRec `expert_num`). Default 8. */
  expertCount: number;
  /** Hidden sizes of each expert (PaddleRec `expert_size`). Default [16]. */
  expertSizes: number[];
  /** Hidden sizes of each task tower (PaddleRec `tower_size`). Default [8]. */
  towerSizes: number[];
}

export function mmoeDefaults(): MmoeConfig {
  return { ...commonDefaults(), ...FUNNEL_DEFAULTS, expertCount: 8, expertSizes: [16], towerSizes: [8] };
}

export const mmoeModel: ModelDefinition<MmoeConfig> = {
  name: "mmoe",
  build: (ctx, c) => funnel(ctx, c, (x) => mmoe(ctx, x, TASKS, c, c)),
};

export const mmoeEntry = registered(mmoeModel, mmoeDefaults, { ...COMMON_RULES, ...FUNNEL_RULES, expertCount: positiveInt, expertSizes: nonEmptyLayerSizes, towerSizes: layerSizes },
  "MMoE (KDD 2018): shared experts, one softmax gate per task, CTR and CVR towers");

// ---------------------------------------------------------------- PLE

export interface PleConfig extends CommonConfig, FunnelWeights {
  /** Extraction levels (PaddleRec `level_number`). Default 1 as PaddleRec's config (one CGC level); 2 or more stack them progressively. */
  levels: number;
  /** Task-specific experts per task per level (PaddleRec `exp_per_task`). Default 3. */
  taskExperts: number;
  /** Shared experts per level (PaddleRec `shared_num`). Default 2. */
  sharedExperts: number;
  /** Hidden sizes of every expert (PaddleRec `expert_size`). Default [16]. */
  expertSizes: number[];
  /** Hidden sizes of each task tower (PaddleRec `tower_size`). Default [8]. */
  towerSizes: number[];
}

export function pleDefaults(): PleConfig {
  return { ...commonDefaults(), ...FUNNEL_DEFAULTS, levels: 1, taskExperts: 3, sharedExperts: 2, expertSizes: [16], towerSizes: [8] };
}

export const pleModel: ModelDefinition<PleConfig> = {
  name: "ple",
  build: (ctx, c) => funnel(ctx, c, (x) => ple(ctx, x, TASKS, c, c)),
};

export const pleEntry = registered(pleModel, pleDefaults, {
  ...COMMON_RULES, ...FUNNEL_RULES, levels: positiveInt, taskExperts: positiveInt, sharedExperts: positiveInt, expertSizes: nonEmptyLayerSizes, towerSizes: layerSizes,
}, "PLE (RecSys 2020): task-specific and shared experts over stacked extraction levels, CTR and CVR towers");
