/** The models mtl can build, by name, each with its defaults and config checks. */
import { MtlError } from "../errors.js";
import type { RegisteredModel } from "./config.js";
import { esmmEntry } from "./esmm.js";
import { escm2Entry } from "./escm2.js";
import { aitmEntry } from "./aitm.js";
import { ctrOnlyEntry, naiveEntry } from "./baselines.js";
import { mmoeEntry, pleEntry, sharedBottomEntry } from "./multitask.js";
import { ESMM_REFERENCE, twoTower, type TwoTowerConfig } from "./two_tower.js";

export type { RegisteredModel } from "./config.js";

function positiveInt(config: Record<string, unknown>, key: string, source: string): void {
  const v = config[key];
  if (!(typeof v === "number" && Number.isInteger(v) && v > 0)) {
    throw new MtlError("E_CONFIG", `'${key}' must be a positive integer, got ${JSON.stringify(v)}`, { where: { file: source, field: key } });
  }
}

const twoTowerEntry: RegisteredModel<TwoTowerConfig> = {
  definition: twoTower,
  defaults: ESMM_REFERENCE,
  validate(config, source) {
    const known = ["vocabSize", "embeddingDim", "fields", "idsPerField", "towerSizes", "paddingRow0", "batchNorm", "dropout", "embeddingInit"];
    for (const k of Object.keys(config)) {
      if (!known.includes(k)) throw new MtlError("E_CONFIG", `unknown key '${k}' for model two-tower`, { where: { file: source, field: k }, hint: `known keys: ${known.join(", ")}` });
    }
    for (const k of ["vocabSize", "embeddingDim", "fields", "idsPerField"]) positiveInt(config, k, source);
    const sizes = config["towerSizes"];
    if (!Array.isArray(sizes) || !sizes.every((s) => Number.isInteger(s) && s > 0)) {
      throw new MtlError("E_CONFIG", `'towerSizes' must be a list of positive integers, got ${JSON.stringify(sizes)}`, { where: { file: source, field: "towerSizes" } });
    }
    const dropout = config["dropout"];
    if (dropout !== undefined && !(typeof dropout === "number" && dropout >= 0 && dropout < 1)) {
      throw new MtlError("E_CONFIG", `'dropout' must be in [0, 1), got ${JSON.stringify(dropout)}`, { where: { file: source, field: "dropout" } });
    }
    return config as unknown as TwoTowerConfig;
  },
};

export const MODELS: Readonly<Record<string, RegisteredModel>> = {
  naive: naiveEntry as RegisteredModel,
  "ctr-only": ctrOnlyEntry as RegisteredModel,
  esmm: esmmEntry as RegisteredModel,
  escm2: escm2Entry as RegisteredModel,
  "shared-bottom": sharedBottomEntry as RegisteredModel,
  mmoe: mmoeEntry as RegisteredModel,
  ple: pleEntry as RegisteredModel,
  aitm: aitmEntry as RegisteredModel,
  "two-tower": twoTowerEntry as RegisteredModel,
};

export function getModel(name: string): RegisteredModel {
  const m = MODELS[name];
  if (!m) throw new MtlError("E_CONFIG", `unknown model '${name}'`, { where: { field: "model" }, hint: `models: ${Object.keys(MODELS).join(", ")}` });
  return m;
}
