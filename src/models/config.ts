/**
 * Model configs: the registry entry's shape, the knobs every model shares (schema, embeddings,
 * BatchNorm, Dropout) and the checks a user's config goes through. Each model lists its keys with a
 * rule; `validateConfig` refuses unknown keys and bad values with an MtlError naming the field.
 */
import { MtlError } from "../errors.js";
import { layoutOf, type Layout } from "../features/batch.js";
import { defaultAliccpSchema, isValidatedSchema, validateSchema, type FeatureSchema } from "../features/schema.js";
import type { ModelContext, ModelDefinition } from "../train/model.js";
import { SAMPLE_WEIGHT_INPUT, embedInput } from "./inputs.js";
import { BATCH_NORM_PLACEMENTS, type Activation, type BatchNormPlacement, type LayerOptions, type LossOptions, type Reduction } from "./layers.js";

export interface RegisteredModel<C = unknown> {
  definition: ModelDefinition<C>;
  defaults: C;
  /** Checks a user's config (merged over the defaults) and returns it typed. */
  validate(config: Record<string, unknown>, source: string): C;
  /** One line for `--help` and docs: what the model is. */
  summary?: string;
}

/** Knobs of the input layer and of every hidden layer, shared by all schema-driven models. */
export interface CommonConfig extends LayerOptions {
  /** The feature schema: tables, fields and pooling (default: the built-in Ali-CCP schema, PaddleRec's 737,946 × 12). */
  schema: FeatureSchema;
  /** Row 0 of every table is padding (PaddleRec's padding_idx=0). Default true. */
  paddingRow0: boolean;
  /** Embeddings start uniform in [-embeddingInit, embeddingInit]. Default 0.05. */
  embeddingInit: number;
  /** BatchNorm in each hidden layer: false, true (= "before-activation"), or a placement (layers.ts). Default false (PaddleRec's towers have none). */
  batchNorm: boolean | BatchNormPlacement;
  /** Dropout at the end of each hidden layer: one rate, or one per layer. Default 0. */
  dropout: number | number[];
  /** How every loss term reduces over a batch: "mean" (default) or "sum" (PyTorch's reduction='sum'). */
  reduction: Reduction;
}

export function commonDefaults(): CommonConfig {
  return { schema: defaultAliccpSchema(), paddingRow0: true, embeddingInit: 0.05, batchNorm: false, dropout: 0, reduction: "mean" };
}

/** Every loss term's options: the schema's sample weights (the sample_weight input) and the reduction. Call once per build. */
export function lossOptions(ctx: ModelContext, config: CommonConfig): LossOptions {
  return {
    ...(config.schema.sampleWeight !== null ? { weight: ctx.input(SAMPLE_WEIGHT_INPUT, ctx.dtype, ["batch"]) } : {}),
    reduction: config.reduction ?? "mean",
  };
}

/** The shared input layer: the schema's pooled embeddings and dense columns, [batch, width]. */
export function embeddedInput(ctx: ModelContext, config: CommonConfig): Activation {
  const layout: Layout = layoutOf(config.schema);
  return embedInput(ctx, layout, { paddingRow0: config.paddingRow0, embeddingInit: config.embeddingInit });
}

/** Checks one value; returns what was expected when it does not fit, or null. */
export type Rule = (value: unknown) => string | null;

export const positiveInt: Rule = (v) => (typeof v === "number" && Number.isInteger(v) && v > 0 ? null : "a positive integer");
export const nonNegativeNumber: Rule = (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? null : "a finite number >= 0");
export const positiveNumber: Rule = (v) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? null : "a finite number > 0");
export const probability: Rule = (v) => (typeof v === "number" && v > 0 && v < 1 ? null : "a number in (0, 1)");
export const rate: Rule = (v) => (typeof v === "number" && v >= 0 && v < 1 ? null : "a rate in [0, 1)");
export const boolean: Rule = (v) => (typeof v === "boolean" ? null : "true or false");
export const layerSizes: Rule = (v) => (Array.isArray(v) && v.every((s) => Number.isInteger(s) && s > 0) ? null : "a list of positive integers");
export const nonEmptyLayerSizes: Rule = (v) => (layerSizes(v) === null && (v as unknown[]).length > 0 ? null : "a non-empty list of positive integers");
/** The rule, or nothing at all (the key may be left out). */
export const optional = (rule: Rule): Rule => (v) => (v === undefined ? null : rule(v));
export const oneOf = (...choices: readonly string[]): Rule => (v) => (typeof v === "string" && choices.includes(v) ? null : `one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`);

/** A FeatureSchema (already validated) or schema JSON (validated here). */
const schemaRule: Rule = (v) => (typeof v === "object" && v !== null && Array.isArray((v as { features?: unknown }).features) ? null : "a feature schema (an object with a 'features' list)");

export const COMMON_RULES: Readonly<Record<keyof CommonConfig, Rule>> = {
  schema: schemaRule,
  paddingRow0: boolean,
  embeddingInit: positiveNumber,
  batchNorm: (v) => (typeof v === "boolean" || BATCH_NORM_PLACEMENTS.includes(v as BatchNormPlacement) ? null : `true, false or one of ${BATCH_NORM_PLACEMENTS.map((p) => JSON.stringify(p)).join(", ")}`),
  // absent in runs written before the key: "mean"
  reduction: (v) => (v === undefined || v === "mean" || v === "sum" ? null : 'one of "mean", "sum"'),
  dropout: (v) => (rate(v) === null || (Array.isArray(v) && v.length > 0 && v.every((r) => rate(r) === null)) ? null : "a rate in [0, 1) or a non-empty list of them (one per hidden layer)"),
};

/** Sizes of a second tower that defaults to the first: a list, or null for "the same as towerSizes" (absent in runs from before the key). */
export const optionalLayerSizes: Rule = (v) => (v === null || v === undefined || layerSizes(v) === null ? null : "a list of positive integers, or null (the same as towerSizes)");

/**
 * Checks `config` (the user's keys merged over the defaults) against `rules`: unknown keys, missing
 * keys and bad values fail with the field named. A schema given as JSON is validated into a FeatureSchema.
 */
export function validateConfig<C>(model: string, rules: Readonly<Record<string, Rule>>, config: Record<string, unknown>, source: string): C {
  const known = Object.keys(rules);
  for (const key of Object.keys(config)) {
    if (!(key in rules)) {
      throw new MtlError("E_CONFIG", `unknown key '${key}' for model ${model}`, { where: { file: source, field: key }, hint: `known keys: ${known.join(", ")}` });
    }
  }
  const out: Record<string, unknown> = { ...config };
  for (const key of known) {
    const v = config[key];
    const expected = rules[key]!(v);
    if (expected !== null) {
      const got = v === undefined ? "nothing (the key is missing)" : JSON.stringify(v);
      throw new MtlError("E_CONFIG", `'${key}' of model ${model} must be ${expected}, got ${got}`, { where: { file: source, field: key } });
    }
  }
  if ("schema" in rules) {
    const s = config["schema"] as { features: object[] };
    const schema = isValidatedSchema(s) ? s : validateSchema(s, source);
    try {
      layoutOf(schema);
    } catch (err) {
      if (err instanceof MtlError) throw err;
      throw new MtlError("E_CONFIG", `the schema of model ${model} has no usable layout: ${(err as Error).message}`, { where: { file: source, field: "schema" }, cause: err });
    }
    out["schema"] = schema;
  }
  return out as C;
}

/** A registry entry from a definition, its defaults and its rules (the common rules included). */
export function registered<C extends object>(definition: ModelDefinition<C>, defaults: () => C, rules: Readonly<Record<string, Rule>>, summary: string): RegisteredModel<C> {
  return {
    definition,
    get defaults() {
      return defaults();
    },
    validate: (config, source) => validateConfig<C>(definition.name, rules, config, source),
    summary,
  };
}
