/**
 * The feature schema: which features a model reads, where each comes from in the input, how its
 * values become embedding-table ids, and which columns hold the labels. A JSON file (see
 * `parseSchema`) or an object; `validateSchema` fills defaults and checks every field, naming the
 * one at fault. Pure TypeScript (no Node API): the browser scorer shares it.
 *
 * Kinds:
 * - `id`            one id per row (a `max_len` of 1).
 * - `ids`           a list of ids; the first `max_len` in input order are kept, the rest dropped
 *                   (PaddleRec's ESMM keeps 3); `pooling` `sum` (default) or `mean`.
 * - `weighted_ids`  ids plus a parallel list of weights (`weight_source`), pooled by weighted sum.
 * - `dense`         `size` numbers (default 1), optional `transform`: `log1p` (log(1 + max(x, 0)))
 *                   or `standardize` ((x - mean) / std).
 *
 * Vocabulary (id kinds): `vocab_size` for pre-indexed integer ids (valid ids are 0..vocab_size-1,
 * 0 is padding) or `hash_buckets` for raw strings (id = 1 + fnv1a32(value) % hash_buckets, see
 * hash.ts). `table` names the embedding table (default: the feature's own name); features sharing a
 * table share its rows and must agree on `dim`. A table has max over its features of
 * `featureRows` rows (vocab_size, vocab_size + 1 with a non-zero padding_id, hash_buckets + 1).
 *
 * Padding (id kinds): row 0 of every table is the padding row, and a batch's id matrix holds 0 where
 * a feature has fewer ids than its max_len. `padding_id` names the raw value that means "no id":
 * - vocab_size features: default 0 (raw id 0 is padding; ids 1..vocab_size-1 are stored as they
 *   are, so existing schemas keep their rows and digits). Any other value, e.g. -1 (TensorFlow's
 *   convention), or null (no padding value at all), makes every raw id 0..vocab_size-1 real: it is
 *   stored as raw + 1 (the feature's `idOffset`), so a real `house = 0` lands on row 1, never on
 *   the padding row.
 * - hash_buckets features: default null (every value is hashed); with a padding_id the values equal
 *   to it (compared as strings: -1 matches "-1") are dropped before hashing, so `[5,-1,-1]` holds
 *   one id, not three.
 * Padding values (other than a vocab_size feature's default 0, which stays in place on row 0 as it
 * always did) are dropped wherever they stand and never counted (mean pooling divides by the ids kept).
 *
 * `length` (ids, weighted_ids): the column holding the true length of a list padded to a fixed
 * size (the Tencent look-alike data's `interest1` with `interest1_length`): only the first
 * `length` values are read, whatever the values after them are (then padding_id and max_len apply
 * as usual). So mean pooling divides by the true length.
 *
 * `task` (schema): the column holding each row's task id (the campaign `aid` of look-alike data), a
 * non-negative integer: the batch carries it per row (`Batch.task`) for meta-learning.
 * `labels.conversion: null`: the data has one label (`labels.click`'s column, e.g. look-alike's
 * `label`); `Batch.click` holds it and `Batch.conversion` is 0.
 */
import { MtlError } from "../errors.js";
import { fnv1a32 } from "../util/hash.js";

export type FeatureKind = "id" | "ids" | "weighted_ids" | "dense";
export type Pooling = "sum" | "mean" | "weighted_sum";
export type DenseTransform = "none" | "log1p" | "standardize";

/** One feature as written in a schema file (optional fields get defaults in `validateSchema`). */
export interface FeatureSpecInput {
  name: string;
  kind: FeatureKind;
  /** Input column (CSV/JSONL) or field name (Ali-CCP); default `name`. */
  source?: string;
  /** weighted_ids: the column holding the weights list. */
  weight_source?: string;
  max_len?: number;
  pooling?: "sum" | "mean";
  vocab_size?: number;
  hash_buckets?: number;
  table?: string;
  dim?: number;
  /** dense: how many numbers (default 1). */
  size?: number;
  transform?: DenseTransform;
  mean?: number;
  std?: number;
  /** A row may lack this feature (CSV/JSONL): it is then all padding / zeros. Default false. */
  optional?: boolean;
  /** ids / weighted_ids: the column holding the true length of a fixed-size padded list. */
  length?: string;
  /** The raw value that means "no id" (see the module comment); null: none. */
  padding_id?: number | string | null;
  /** A hashed cross of these id features (TF's crossed_column): needs hash_buckets; read from no column. */
  cross?: string[];
}

export interface SchemaInput {
  /** Schema file format version; 1. */
  version?: number;
  name?: string;
  features: FeatureSpecInput[];
  /** Source columns of the labels (CSV/JSONL). Ali-CCP's are positional (columns 2 and 3). */
  labels?: { click?: string; conversion?: string | null };
  /** Column holding each row's task id (look-alike: the campaign `aid`), a non-negative integer. */
  task?: string;
  /** Column holding the sample id (CSV/JSONL); when absent the line number is the sample id. */
  sample_id?: string;
  /** Name of an id feature whose first id is the user key for GAUC (Ali-CCP: field 101). */
  user_id?: string;
  /** Ground-truth columns (synthetic data). */
  truth?: { ctr?: string; cvr?: string; conversion?: string };
  /** Separator of list values inside one CSV cell; default "|". */
  list_separator?: string;
  /** Default embedding dim for features that name none; default 8. */
  default_dim?: number;
  /** Column of each row's sample weight (a number ≥ 0) for every loss term (PyTorch's BCELoss weight, Keras' sample_weight). */
  sample_weight?: string;
  /** Element-wise products of pooled embeddings appended to the input (the Keras ESMM article's adid × device): lists of ≥ 2 id features of one dim. */
  products?: string[][];
  /**
   * The id features that describe the request's context (the user, the page) rather than the
   * candidate: the exported scoring model computes their share of the first layer once per context,
   * not once per candidate (see src/models/inputs.ts). Training is unchanged.
   */
  context?: string[];
}

export interface IdFeature {
  readonly name: string;
  readonly kind: "id" | "ids" | "weighted_ids";
  readonly source: string;
  readonly weightSource: string | null;
  readonly maxLen: number;
  readonly pooling: Pooling;
  /** Exactly one of vocabSize / hashBuckets is set. */
  readonly vocabSize: number | null;
  readonly hashBuckets: number | null;
  readonly table: string;
  readonly dim: number;
  readonly optional: boolean;
  /** The column of the true list length (ids, weighted_ids), or null. */
  readonly lengthSource: string | null;
  /** The raw value that means "no id", or null. */
  readonly paddingId: number | string | null;
  /** Added to a raw vocab_size id to give its row: 1 when raw 0 is a real id (padding_id not 0), else 0. */
  readonly idOffset: 0 | 1;
  /** A hashed cross: the id features it crosses (its ids are computed from theirs, see crossIds in batch.ts), or null. */
  readonly cross: readonly string[] | null;
}

export interface DenseFeature {
  readonly name: string;
  readonly kind: "dense";
  readonly source: string;
  readonly size: number;
  readonly transform: DenseTransform;
  readonly mean: number;
  readonly std: number;
  readonly optional: boolean;
}

export type Feature = IdFeature | DenseFeature;

/** A validated schema with every default filled in. */
export interface FeatureSchema {
  readonly version: 1;
  readonly name: string;
  readonly features: readonly Feature[];
  /** `conversion` null: a single-label schema (look-alike). */
  readonly labels: { readonly click: string; readonly conversion: string | null };
  /** The task id column, or null. */
  readonly task: string | null;
  readonly sampleId: string | null;
  readonly userId: string | null;
  readonly truth: { readonly ctr: string; readonly cvr: string; readonly conversion: string } | null;
  readonly listSeparator: string;
  /** The sample-weight column, or null (every row weighs 1). */
  readonly sampleWeight: string | null;
  /** Element-wise products of pooled embeddings appended to the model input, each a list of id feature names. */
  readonly products: readonly (readonly string[])[];
  /** The context-side id features (schema order); empty: every feature is per candidate. */
  readonly context: readonly string[];
}

/**
 * Whether `v` is a validated FeatureSchema (camelCase, e.g. `listSeparator`) rather than the schema
 * file's JSON form (snake_case, `list_separator`, possibly absent).
 */
export function isValidatedSchema(v: unknown): v is FeatureSchema {
  return typeof v === "object" && v !== null && "listSeparator" in v && Array.isArray((v as { features?: unknown }).features);
}

const KINDS: readonly FeatureKind[] = ["id", "ids", "weighted_ids", "dense"];
const TRANSFORMS: readonly DenseTransform[] = ["none", "log1p", "standardize"];
/** int32 ids: the largest table mtl's shards can index. */
export const MAX_VOCAB = 2 ** 31 - 1;

function schemaError(field: string, message: string, hint?: string, file?: string): MtlError {
  return new MtlError("E_SCHEMA", message, { where: { ...(file === undefined ? {} : { file }), field }, ...(hint === undefined ? {} : { hint }) });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function positiveInt(v: unknown, field: string, max: number, file?: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max)
    throw schemaError(field, `expected an integer from 1 to ${max}, got ${JSON.stringify(v)}`, undefined, file);
  return v;
}

function optString(v: unknown, field: string, file?: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.length === 0) throw schemaError(field, `expected a non-empty string, got ${JSON.stringify(v)}`, undefined, file);
  return v;
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], where: string, file?: string): void {
  for (const k of Object.keys(obj))
    if (!allowed.includes(k)) throw schemaError(`${where}${k}`, `unknown key '${k}'`, `allowed keys: ${allowed.join(", ")}`, file);
}

const FEATURE_KEYS = ["name", "kind", "source", "weight_source", "max_len", "pooling", "vocab_size", "hash_buckets", "table", "dim", "size", "transform", "mean", "std", "optional", "length", "padding_id", "cross"] as const;
const SCHEMA_KEYS = ["version", "name", "features", "labels", "sample_id", "user_id", "truth", "list_separator", "default_dim", "task", "products", "sample_weight", "context"] as const;

/** Rows an id feature needs in its table: vocab_size (+ 1 when raw 0 is real), or hash_buckets + 1. */
export function featureRows(f: IdFeature): number {
  return f.vocabSize !== null ? f.vocabSize + f.idOffset : f.hashBuckets! + 1;
}

/** Check a schema object (parsed JSON or written in code) and fill its defaults. `file` goes into errors. */
export function validateSchema(input: unknown, file?: string): FeatureSchema {
  if (!isRecord(input)) throw schemaError("(root)", "a schema is a JSON object with a 'features' list", undefined, file);
  checkKeys(input, SCHEMA_KEYS, "", file);
  if (input.version !== undefined && input.version !== 1)
    throw schemaError("version", `unsupported schema version ${JSON.stringify(input.version)}`, "this mtl reads version 1", file);
  const defaultDim = input.default_dim === undefined ? 8 : positiveInt(input.default_dim, "default_dim", 4096, file);
  if (!Array.isArray(input.features) || input.features.length === 0)
    throw schemaError("features", "expected a non-empty list of features", undefined, file);
  const names = new Set<string>();
  const tableDims = new Map<string, { dim: number; by: string }>();
  const features: Feature[] = input.features.map((raw: unknown, i: number): Feature => {
    const at = `features[${i}]`;
    if (!isRecord(raw)) throw schemaError(at, "expected an object", undefined, file);
    checkKeys(raw, FEATURE_KEYS, `${at}.`, file);
    const name = optString(raw.name, `${at}.name`, file);
    if (name === undefined) throw schemaError(`${at}.name`, "every feature needs a name", undefined, file);
    const where = `features.${name}`;
    if (names.has(name)) throw schemaError(`${where}.name`, `duplicate feature name '${name}'`, undefined, file);
    names.add(name);
    const kind = raw.kind;
    if (typeof kind !== "string" || !KINDS.includes(kind as FeatureKind))
      throw schemaError(`${where}.kind`, `expected one of ${KINDS.join(", ")}, got ${JSON.stringify(kind)}`, undefined, file);
    let cross: string[] | null = null;
    if (raw.cross !== undefined) {
      if (!Array.isArray(raw.cross) || raw.cross.length < 2 || !raw.cross.every((s) => typeof s === "string" && s.length > 0) || new Set(raw.cross).size !== raw.cross.length)
        throw schemaError(`${where}.cross`, "expected a list of two or more distinct feature names", undefined, file);
      if (kind !== "ids" && kind !== "id") throw schemaError(`${where}.kind`, "a cross is kind ids (every combination of the sources' ids) or id (the first one)", undefined, file);
      for (const k of ["source", "vocab_size", "weight_source", "length", "padding_id", "optional"])
        if (raw[k] !== undefined) throw schemaError(`${where}.${k}`, `'${k}' does not apply to a cross: its ids come from the crossed features`, undefined, file);
      if (raw.hash_buckets === undefined) throw schemaError(`${where}.hash_buckets`, "a cross needs hash_buckets (its ids are hashed)", undefined, file);
      cross = raw.cross as string[];
    }
    // A cross reads no input column (and is never missing from one).
    const source = cross ? `cross:${name}` : optString(raw.source, `${where}.source`, file) ?? name;
    const optional = cross ? true : raw.optional === undefined ? false : raw.optional === true ? true : raw.optional === false ? false :
      (() => { throw schemaError(`${where}.optional`, "expected true or false", undefined, file); })();
    if (kind === "dense") {
      for (const k of ["max_len", "pooling", "vocab_size", "hash_buckets", "table", "dim", "weight_source", "length", "padding_id"])
        if (raw[k] !== undefined) throw schemaError(`${where}.${k}`, `'${k}' does not apply to a dense feature`, undefined, file);
      const size = raw.size === undefined ? 1 : positiveInt(raw.size, `${where}.size`, 65536, file);
      const transform = (raw.transform ?? "none") as DenseTransform;
      if (!TRANSFORMS.includes(transform)) throw schemaError(`${where}.transform`, `expected one of ${TRANSFORMS.join(", ")}`, undefined, file);
      let mean = 0, std = 1;
      if (transform === "standardize") {
        if (typeof raw.mean !== "number" || !Number.isFinite(raw.mean)) throw schemaError(`${where}.mean`, "standardize needs a finite 'mean'", undefined, file);
        if (typeof raw.std !== "number" || !(raw.std > 0) || !Number.isFinite(raw.std)) throw schemaError(`${where}.std`, "standardize needs a positive finite 'std'", undefined, file);
        mean = raw.mean; std = raw.std;
      } else if (raw.mean !== undefined || raw.std !== undefined) {
        throw schemaError(`${where}.mean`, "'mean' and 'std' apply only with transform 'standardize'", undefined, file);
      }
      return { name, kind: "dense", source, size, transform, mean, std, optional };
    }
    if (raw.size !== undefined || raw.transform !== undefined || raw.mean !== undefined || raw.std !== undefined)
      throw schemaError(`${where}`, "size/transform/mean/std apply only to dense features", undefined, file);
    const maxLen = kind === "id" ? (raw.max_len === undefined ? 1 : positiveInt(raw.max_len, `${where}.max_len`, 1, file))
      : raw.max_len === undefined ? 3 : positiveInt(raw.max_len, `${where}.max_len`, 65536, file);
    if (raw.vocab_size !== undefined && raw.hash_buckets !== undefined)
      throw schemaError(`${where}.hash_buckets`, "give either vocab_size (integer ids) or hash_buckets (raw strings), not both", undefined, file);
    if (raw.vocab_size === undefined && raw.hash_buckets === undefined)
      throw schemaError(`${where}.vocab_size`, "an id feature needs vocab_size (integer ids) or hash_buckets (raw strings)", undefined, file);
    const vocabSize = raw.vocab_size === undefined ? null : positiveInt(raw.vocab_size, `${where}.vocab_size`, MAX_VOCAB, file);
    const hashBuckets = raw.hash_buckets === undefined ? null : positiveInt(raw.hash_buckets, `${where}.hash_buckets`, MAX_VOCAB - 1, file);
    let pooling: Pooling = "sum";
    if (kind === "weighted_ids") {
      if (raw.pooling !== undefined) throw schemaError(`${where}.pooling`, "weighted_ids always pool by weighted sum", undefined, file);
      pooling = "weighted_sum";
    } else if (raw.pooling !== undefined) {
      if (raw.pooling !== "sum" && raw.pooling !== "mean") throw schemaError(`${where}.pooling`, `expected sum or mean, got ${JSON.stringify(raw.pooling)}`, undefined, file);
      pooling = raw.pooling;
    }
    const weightSource = optString(raw.weight_source, `${where}.weight_source`, file) ?? null;
    if (kind === "weighted_ids" && weightSource === null) throw schemaError(`${where}.weight_source`, "weighted_ids needs the column of its weights", undefined, file);
    if (kind !== "weighted_ids" && weightSource !== null) throw schemaError(`${where}.weight_source`, "only weighted_ids take weights", undefined, file);
    const table = optString(raw.table, `${where}.table`, file) ?? name;
    const dim = raw.dim === undefined ? (tableDims.get(table)?.dim ?? defaultDim) : positiveInt(raw.dim, `${where}.dim`, 4096, file);
    const prior = tableDims.get(table);
    if (prior && prior.dim !== dim)
      throw schemaError(`${where}.dim`, `table '${table}' has dim ${prior.dim} (from ${prior.by}), this feature asks for ${dim}`, "features sharing a table need the same dim", file);
    if (!prior) tableDims.set(table, { dim, by: name });
    const lengthSource = optString(raw.length, `${where}.length`, file) ?? null;
    if (lengthSource !== null && kind === "id") throw schemaError(`${where}.length`, "'length' applies to ids and weighted_ids (lists), not to a single id", undefined, file);
    let paddingId: number | string | null = vocabSize !== null ? 0 : null;
    if (raw.padding_id !== undefined) {
      const p = raw.padding_id;
      if (p !== null && !(typeof p === "number" && Number.isInteger(p)) && !(typeof p === "string" && p.length > 0))
        throw schemaError(`${where}.padding_id`, `expected an integer, a string or null, got ${JSON.stringify(p)}`, "e.g. -1 (TensorFlow), 0 (PaddleRec), null (no padding value)", file);
      if (vocabSize !== null && p !== null && typeof p !== "number")
        throw schemaError(`${where}.padding_id`, `a vocab_size feature's padding_id is an integer, got ${JSON.stringify(p)}`, undefined, file);
      paddingId = p;
    }
    const idOffset = vocabSize !== null && paddingId !== 0 ? 1 : 0;
    return { name, kind: kind as IdFeature["kind"], source, weightSource, maxLen, pooling, vocabSize, hashBuckets, table, dim, optional, lengthSource, paddingId, idOffset, cross };
  });
  checkCrosses(features, input.features as Record<string, unknown>[], file);
  const products = checkProducts(input.products, features, file);
  const context = checkContext(input.context, features, file);
  let labels: FeatureSchema["labels"] = { click: "click", conversion: "conversion" };
  if (input.labels !== undefined) {
    if (!isRecord(input.labels)) throw schemaError("labels", "expected {click, conversion}", undefined, file);
    checkKeys(input.labels, ["click", "conversion"], "labels.", file);
    labels = {
      click: optString(input.labels.click, "labels.click", file) ?? "click",
      conversion: input.labels.conversion === null ? null : optString(input.labels.conversion, "labels.conversion", file) ?? "conversion",
    };
  }
  const task = optString(input.task, "task", file) ?? null;
  const userId = optString(input.user_id, "user_id", file) ?? null;
  if (userId !== null) {
    const f = features.find((x) => x.name === userId);
    if (!f || f.kind === "dense") throw schemaError("user_id", `'${userId}' is not an id feature of this schema`, "user_id names the id feature whose first id is the user key", file);
  }
  let truth: FeatureSchema["truth"] = null;
  if (input.truth !== undefined) {
    if (!isRecord(input.truth)) throw schemaError("truth", "expected {ctr, cvr, conversion}", undefined, file);
    checkKeys(input.truth, ["ctr", "cvr", "conversion"], "truth.", file);
    truth = {
      ctr: optString(input.truth.ctr, "truth.ctr", file) ?? "true_ctr",
      cvr: optString(input.truth.cvr, "truth.cvr", file) ?? "true_cvr",
      conversion: optString(input.truth.conversion, "truth.conversion", file) ?? "conversion_potential",
    };
  }
  const listSeparator = optString(input.list_separator, "list_separator", file) ?? "|";
  return {
    version: 1,
    name: optString(input.name, "name", file) ?? "schema",
    features,
    labels,
    sampleId: optString(input.sample_id, "sample_id", file) ?? null,
    userId,
    truth,
    listSeparator,
    task,
    products,
    sampleWeight: optString(input.sample_weight, "sample_weight", file) ?? null,
    context,
  };
}

/** Parse and validate a schema file's text (JSON). */
export function parseSchema(text: string, file?: string): FeatureSchema {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new MtlError("E_SCHEMA", `not valid JSON: ${(err as Error).message}`, { where: file === undefined ? {} : { file }, hint: "a schema is a JSON file", cause: err });
  }
  return validateSchema(parsed, file);
}

/** The schema in the file format (snake_case keys), every default written out. parseSchema(JSON.stringify(toSchemaJson(s))) equals s. */
export function toSchemaJson(s: FeatureSchema): SchemaInput {
  return {
    version: 1,
    name: s.name,
    features: s.features.map((f): FeatureSpecInput => f.kind !== "dense" && f.cross
      ? { name: f.name, kind: f.kind, cross: [...f.cross], max_len: f.maxLen, ...(f.pooling === "weighted_sum" ? {} : { pooling: f.pooling }), hash_buckets: f.hashBuckets!, table: f.table, dim: f.dim }
      : f.kind === "dense"
      ? { name: f.name, kind: f.kind, source: f.source, size: f.size, transform: f.transform, ...(f.transform === "standardize" ? { mean: f.mean, std: f.std } : {}), optional: f.optional }
      : {
          name: f.name, kind: f.kind, source: f.source, ...(f.weightSource ? { weight_source: f.weightSource } : {}), max_len: f.maxLen,
          ...(f.pooling === "weighted_sum" ? {} : { pooling: f.pooling }),
          ...(f.vocabSize !== null ? { vocab_size: f.vocabSize } : { hash_buckets: f.hashBuckets! }),
          table: f.table, dim: f.dim, optional: f.optional,
          // written only when set, so the schemas (and hashes) from before these keys stay the same
          ...(f.lengthSource !== null ? { length: f.lengthSource } : {}),
          ...(f.paddingId !== (f.vocabSize !== null ? 0 : null) ? { padding_id: f.paddingId } : {}),
        }),
    labels: { ...s.labels },
    ...(s.sampleId ? { sample_id: s.sampleId } : {}),
    ...(s.userId ? { user_id: s.userId } : {}),
    ...(s.truth ? { truth: { ...s.truth } } : {}),
    list_separator: s.listSeparator,
    ...(s.task !== null ? { task: s.task } : {}),
    ...(s.products.length ? { products: s.products.map((p) => [...p]) } : {}),
    ...(s.sampleWeight !== null ? { sample_weight: s.sampleWeight } : {}),
    ...(s.context.length ? { context: [...s.context] } : {}),
  };
}

/** Crossed features name id features of the schema that are not crosses themselves; a cross's default max_len is the product of theirs. */
function checkCrosses(features: Feature[], raw: Record<string, unknown>[], file?: string): void {
  features.forEach((f, i) => {
    if (f.kind === "dense" || !f.cross) return;
    const where = `features.${f.name}.cross`;
    let combos = 1;
    for (const name of f.cross) {
      const s = features.find((x) => x.name === name);
      if (!s || s.kind === "dense") throw schemaError(where, `'${name}' is not an id feature of this schema`, "a cross names id features (id, ids, weighted_ids)", file);
      if (s.cross) throw schemaError(where, `'${name}' is a cross itself`, "cross the original features instead", file);
      combos *= s.maxLen;
    }
    if (f.kind === "ids" && raw[i]!["max_len"] === undefined) features[i] = { ...f, maxLen: Math.min(combos, 65536) };
  });
}

function checkProducts(input: unknown, features: readonly Feature[], file?: string): string[][] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) throw schemaError("products", "expected a list of lists of feature names, e.g. [[\"adid\", \"device\"]]", undefined, file);
  return input.map((p: unknown, i: number) => {
    if (!Array.isArray(p) || p.length < 2 || !p.every((n) => typeof n === "string")) throw schemaError(`products[${i}]`, "expected two or more feature names", undefined, file);
    let dim: number | null = null;
    for (const name of p as string[]) {
      const f = features.find((x) => x.name === name);
      if (!f || f.kind === "dense") throw schemaError(`products[${i}]`, `'${name}' is not an id feature of this schema`, "products multiply pooled embeddings of id features", file);
      if (dim !== null && f.dim !== dim) throw schemaError(`products[${i}]`, `'${name}' has dim ${f.dim}, the others ${dim}`, "an element-wise product needs one dim", file);
      dim = f.dim;
    }
    return [...(p as string[])];
  });
}

/**
 * Which id features are context-side (schema order): each must be an id feature, named once; a cross
 * may be context-side only if everything it crosses is, since its ids are computed from theirs.
 */
function checkContext(input: unknown, features: readonly Feature[], file?: string): string[] {
  if (input === undefined) return [];
  if (!Array.isArray(input) || !input.every((n) => typeof n === "string")) throw schemaError("context", "expected a list of id feature names, e.g. [\"user_id\", \"age\"]", undefined, file);
  const named = new Set<string>();
  for (const name of input as string[]) {
    const f = features.find((x) => x.name === name);
    if (!f || f.kind === "dense") throw schemaError("context", `'${name}' is not an id feature of this schema`, "context names id features (dense columns are per row)", file);
    if (named.has(name)) throw schemaError("context", `'${name}' is named twice`, undefined, file);
    if (f.cross) {
      const outside = f.cross.find((c) => !(input as string[]).includes(c));
      if (outside !== undefined) throw schemaError("context", `the cross '${name}' is context-side but '${outside}', which it crosses, is not`, "a context-side cross needs every feature it crosses in context", file);
    }
    named.add(name);
  }
  return features.filter((f) => named.has(f.name)).map((f) => f.name);
}

/**
 * A fingerprint of everything that shapes encoded data (16 hex digits: two FNV-1a passes over the
 * canonical JSON). `context` is left out: it shapes the scoring graph, not the data, so shards and
 * runs stay usable when a schema gains it.
 */
export function schemaHash(s: FeatureSchema): string {
  const { context: _context, ...shaping } = toSchemaJson(s);
  const text = JSON.stringify(shaping);
  const a = fnv1a32(text);
  const b = fnv1a32(text, 0x9e3779b9);
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}

/** Ali-CCP's fields in PaddleRec's order (models/multitask/esmm/config.yaml's 23 sparse slots). */
export const ALICCP_FIELDS: readonly string[] = [
  "101", "109_14", "110_14", "127_14", "150_14", "121", "122", "124", "125", "126", "127", "128", "129",
  "205", "206", "207", "210", "216", "508", "509", "702", "853", "301",
];
/** PaddleRec's ESMM: sparse_feature_number 737946 (ids 1..737946; 0 pads), sparse_feature_dim 12, 3 ids per field. */
export const ALICCP_VOCAB_SIZE = 737_946 + 1;
export const ALICCP_DIM = 12;
export const ALICCP_MAX_LEN = 3;

/** Ali-CCP's user-side fields (1xx): the context of a scoring request; the item (2xx), cross (5xx–8xx) and 301 fields are per candidate. */
export const ALICCP_CONTEXT_FIELDS: readonly string[] = ALICCP_FIELDS.filter((f) => f.startsWith("1"));

/** The built-in Ali-CCP schema: 23 `ids` fields, one shared table of 737,947 × 12, max_len 3, sum pooling, user id = field 101, the user fields as context. */
export function defaultAliccpSchema(opts: { maxLen?: number; vocabSize?: number; dim?: number } = {}): FeatureSchema {
  return validateSchema({
    version: 1,
    name: "aliccp",
    features: ALICCP_FIELDS.map((name) => ({
      name, kind: "ids", max_len: opts.maxLen ?? ALICCP_MAX_LEN, pooling: "sum",
      vocab_size: opts.vocabSize ?? ALICCP_VOCAB_SIZE, table: "shared", dim: opts.dim ?? ALICCP_DIM,
    })),
    labels: { click: "click", conversion: "buy" },
    user_id: "101",
    truth: { ctr: "true_ctr", cvr: "true_cvr", conversion: "conversion_potential" },
    context: [...ALICCP_CONTEXT_FIELDS],
  });
}
