/**
 * ESMM — Entire Space Multi-task Model (Ma et al., SIGIR 2018, arXiv:1804.07931).
 *
 *   shared embeddings ─┬─ CTR tower ── pCTR ─┐
 *                      └─ CVR tower ── pCVR ─┴─ pCTCVR = pCTR × pCVR         (eq. 1)
 *   L = w_ctr · BCE(pCTR, click) + w_ctcvr · BCE(pCTCVR, conversion)        (eq. 3)
 *
 * Both losses are over all impressions; the CVR tower gets no direct loss, only the CTCVR one.
 * Defaults are PaddleRec's models/multitask/esmm: towers 256→64 (`ctr_fc_sizes`), unit weights.
 */
import type { ModelContext, ModelDefinition, ModelOutputs } from "../train/model.js";
import { COMMON_RULES, commonDefaults, embeddedInput, layerSizes, lossOptions, nonNegativeNumber, optionalLayerSizes, registered, type CommonConfig } from "./config.js";
import { labelInputs } from "./inputs.js";
import { funnelObjective } from "./backbones.js";
import { tower } from "./layers.js";

export interface EsmmConfig extends CommonConfig {
  /** Hidden layer sizes of the CTR tower (PaddleRec `ctr_fc_sizes`), and of the CVR tower unless cvrTowerSizes is set. Default [256, 64]. */
  towerSizes: number[];
  /** Hidden layer sizes of the CVR tower (PaddleRec `cvr_fc_sizes`); null: the same as towerSizes. Default null. */
  cvrTowerSizes: number[] | null;
  /** w_ctr: weight of BCE(pCTR, click). Default 1. */
  ctrWeight: number;
  /** w_ctcvr: weight of BCE(pCTCVR, conversion). Default 1. */
  ctcvrWeight: number;
}

export function esmmDefaults(): EsmmConfig {
  return { ...commonDefaults(), towerSizes: [256, 64], cvrTowerSizes: null, ctrWeight: 1, ctcvrWeight: 1 };
}

export function buildEsmm(ctx: ModelContext, config: EsmmConfig): ModelOutputs {
  const x = embeddedInput(ctx, config);
  const labels = labelInputs(ctx);
  const pCtr = tower(ctx, "ctr", x, config.towerSizes, config);
  const pCvr = tower(ctx, "cvr", x, config.cvrTowerSizes ?? config.towerSizes, config);
  // pCTCVR = pCTR × pCVR (eq. 1); L = w_ctr·BCE(pCTR, click) + w_ctcvr·BCE(pCTCVR, conversion) (eq. 3):
  // the funnel objective with no clicked-only CVR term (cvrWeight 0), so the CVR tower learns only through pCTCVR.
  return funnelObjective(pCtr, pCvr, labels, { ctrWeight: config.ctrWeight, cvrWeight: 0, ctcvrWeight: config.ctcvrWeight }, lossOptions(ctx, config));
}

export const esmm: ModelDefinition<EsmmConfig> = { name: "esmm", build: buildEsmm };

export const ESMM_RULES = { ...COMMON_RULES, towerSizes: layerSizes, cvrTowerSizes: optionalLayerSizes, ctrWeight: nonNegativeNumber, ctcvrWeight: nonNegativeNumber };

export const esmmEntry = registered(esmm, esmmDefaults, ESMM_RULES, "ESMM (SIGIR 2018): CTR and CVR towers on shared embeddings, trained on CTR and CTCVR over all impressions");
