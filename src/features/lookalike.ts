/**
 * The built-in look-alike schema: the Tencent look-alike columns (2018 Tencent Ads algorithm
 * competition) as PaddleRec's MetaHeac example ships them (models/multitask/metaheac: reader_train.py
 * for the column order, config.yaml's `max_idxs` for the vocabularies, `embed_dim` 64).
 *
 * One row: `label` (0/1), the task id `aid` (the campaign), then
 * - static user fields, one id each: carrier, consumptionAbility, LBS, age, education, gender, house;
 * - dynamic user fields, padded lists with their true lengths in `<field>_length`: interest1..3
 *   (10 ids), kw1..2 and topic1..2 (5 ids); masked mean pooling over the first `length` ids;
 * - ad fields, one id each: advertiserId, campaignId, creativeSize, adCategoryId, productId, productType.
 * Ids are 0..max_idx and 0 is a real value (`house = 0`): every feature has padding_id null, so raw
 * id v is stored on row v + 1 and row 0 stays the padding row (max_idx + 2 rows per table; PaddleRec's
 * `Embedding(max_idx + 1)` plus that row). Each field has its own table, as PaddleRec's per-field
 * embeddings. The single label goes to `Batch.click` (labels.conversion is null), the task id to
 * `Batch.task`.
 */
import { validateSchema, type FeatureSchema } from "./schema.js";

/** Static user fields (PaddleRec's static_context_col) and their max ids (max_idxs[0]). */
export const LOOKALIKE_USER_STATIC: readonly (readonly [string, number])[] = [
  ["carrier", 3], ["consumptionAbility", 2], ["LBS", 855], ["age", 5], ["education", 7], ["gender", 2], ["house", 1],
];
/** Dynamic user fields (dynamic_context_col), max ids (max_idxs[1]) and padded list lengths (net.py's DyEmb slices). */
export const LOOKALIKE_USER_DYNAMIC: readonly (readonly [string, number, number])[] = [
  ["interest1", 124, 10], ["interest2", 82, 10], ["interest3", 12, 10], ["kw1", 263312, 5], ["kw2", 49780, 5], ["topic1", 10002, 5], ["topic2", 9984, 5],
];
/** Ad fields (ad_col) and their max ids (max_idxs[2]). */
export const LOOKALIKE_AD: readonly (readonly [string, number])[] = [
  ["advertiserId", 78], ["campaignId", 137], ["creativeSize", 14], ["adCategoryId", 39], ["productId", 32], ["productType", 3],
];
export const LOOKALIKE_LABEL = "label";
export const LOOKALIKE_TASK = "aid";
/** PaddleRec's MetaHeac embed_dim. */
export const LOOKALIKE_DIM = 64;

/** Feature names by role, in schema order: what MetaHeac's input layer splits into user and ad embeddings. */
export const LOOKALIKE_USER_FIELDS: readonly string[] = [...LOOKALIKE_USER_STATIC.map(([n]) => n), ...LOOKALIKE_USER_DYNAMIC.map(([n]) => n)];
export const LOOKALIKE_AD_FIELDS: readonly string[] = LOOKALIKE_AD.map(([n]) => n);

/** PaddleRec's `max_idxs` of the built-in schema: [static user, dynamic user, ad] max ids. */
export const LOOKALIKE_MAX_IDXS: readonly (readonly number[])[] = [
  LOOKALIKE_USER_STATIC.map(([, m]) => m), LOOKALIKE_USER_DYNAMIC.map(([, m]) => m), LOOKALIKE_AD.map(([, m]) => m),
];

/**
 * The built-in look-alike schema (see the module comment); `dim` overrides the embedding size of
 * every field (PaddleRec's `embed_dim`). A config's `max_idxs` resizes any schema's tables
 * (src/flow/config.ts), this one included.
 */
export function defaultLookalikeSchema(opts: { dim?: number } = {}): FeatureSchema {
  const dim = opts.dim ?? LOOKALIKE_DIM;
  const single = ([name, maxIdx]: readonly [string, number]) => ({ name, kind: "id" as const, vocab_size: maxIdx + 1, padding_id: null, dim });
  return validateSchema({
    version: 1,
    name: "lookalike",
    features: [
      ...LOOKALIKE_USER_STATIC.map(single),
      ...LOOKALIKE_USER_DYNAMIC.map(([name, maxIdx, maxLen]) => ({
        name, kind: "ids" as const, max_len: maxLen, pooling: "mean" as const, length: `${name}_length`, vocab_size: maxIdx + 1, padding_id: null, dim,
      })),
      ...LOOKALIKE_AD.map(single),
    ],
    labels: { click: LOOKALIKE_LABEL, conversion: null },
    task: LOOKALIKE_TASK,
  });
}
