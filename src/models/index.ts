/** The models mtl can build, by name, each with its defaults and config checks. */
import { MtlError } from "../errors.js";
import { boolean, layerSizes, optional, positiveInt, positiveNumber, rate, registered, type RegisteredModel } from "./config.js";
import { esmmEntry } from "./esmm.js";
import { escm2Entry } from "./escm2.js";
import { aitmEntry } from "./aitm.js";
import { ctrOnlyEntry, naiveEntry } from "./baselines.js";
import { metaheacEntry } from "./metaheac.js";
import { mmoeEntry, pleEntry, sharedBottomEntry } from "./multitask.js";
import { ESMM_REFERENCE, twoTower, type TwoTowerConfig } from "./two_tower.js";

export type { RegisteredModel } from "./config.js";

/** The engine's fixed-layout reference model (one table, F fields of K ids): the bench and export tests use it. */
const twoTowerEntry: RegisteredModel<TwoTowerConfig> = registered(twoTower, () => ({ ...ESMM_REFERENCE }), {
  vocabSize: positiveInt, embeddingDim: positiveInt, fields: positiveInt, idsPerField: positiveInt, towerSizes: layerSizes,
  paddingRow0: optional(boolean), batchNorm: optional(boolean), dropout: optional(rate), embeddingInit: optional(positiveNumber),
}, "the engine's reference two-tower model on a fixed id layout (bench, export tests)");

export const MODELS: Readonly<Record<string, RegisteredModel>> = {
  naive: naiveEntry as RegisteredModel,
  "ctr-only": ctrOnlyEntry as RegisteredModel,
  esmm: esmmEntry as RegisteredModel,
  escm2: escm2Entry as RegisteredModel,
  "shared-bottom": sharedBottomEntry as RegisteredModel,
  mmoe: mmoeEntry as RegisteredModel,
  ple: pleEntry as RegisteredModel,
  aitm: aitmEntry as RegisteredModel,
  metaheac: metaheacEntry as RegisteredModel,
  "two-tower": twoTowerEntry as RegisteredModel,
};

export function getModel(name: string): RegisteredModel {
  const m = MODELS[name];
  if (!m) throw new MtlError("E_CONFIG", `unknown model '${name}'`, { where: { field: "model" }, hint: `models: ${Object.keys(MODELS).join(", ")}` });
  return m;
}
