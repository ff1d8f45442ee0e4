/**
 * The feature encoder: one raw record (a CSV row, a JSON object, a request body in the scorer) ->
 * one row of a batch. Shared by Node and the browser, so a record scores the same everywhere.
 *
 * Raw values: a string (hashed, or parsed as an integer id; for list kinds split on the schema's
 * list_separator), a number, or an array of those (list kinds). An empty string or an empty array is
 * an empty list. Problems raise `RowError` with a reason code the readers count under --skip-bad.
 */
import { MtlError } from "../errors.js";
import { BatchBuilder, type Batch, type Layout } from "./batch.js";
import { fnv1a32 } from "../util/hash.js";
import type { DenseFeature, IdFeature } from "./schema.js";

/** Why a row was rejected (or, for click0_buy1, dropped by policy). */
export type RejectReason =
  | "empty_file"
  | "empty_line"
  | "column_count"
  | "bad_token"
  | "bad_id"
  | "id_out_of_range"
  | "bad_label"
  | "click0_buy1"
  | "missing_column"
  | "bad_dense"
  | "bad_weight"
  | "bad_json"
  | "truncated_line"
  | "truth_mismatch"
  | "bad_length"
  | "bad_task";

export const REJECT_REASONS: Readonly<Record<RejectReason, string>> = {
  empty_file: "empty file",
  empty_line: "empty line",
  column_count: "wrong column count",
  bad_token: "malformed field:feature_id token",
  bad_id: "non-integer or negative id",
  id_out_of_range: "id >= vocabulary size",
  bad_label: "label not 0/1",
  click0_buy1: "click=0 and buy=1 (dropped as noise)",
  missing_column: "missing column",
  bad_dense: "dense value not a finite number",
  bad_weight: "bad weight list",
  bad_json: "invalid JSON",
  truncated_line: "truncated last line",
  truth_mismatch: "ground-truth sidecar out of step",
  bad_length: "bad list length",
  bad_task: "task id not a non-negative integer",
};

/** A bad row: an MtlError (code E_DATA) that also carries the reason code. */
export class RowError extends MtlError {
  readonly reason: RejectReason;
  constructor(reason: RejectReason, message: string, where: { file?: string; line?: number; field?: string }, hint?: string) {
    super("E_DATA", `${REJECT_REASONS[reason]}: ${message}`, { where, ...(hint === undefined ? {} : { hint }) });
    this.reason = reason;
  }
}

export type RawScalar = string | number | boolean;
export type RawValue = RawScalar | readonly RawScalar[] | null;

const INT_RE = /^[0-9]+$/;
const SIGNED_INT_RE = /^-?[0-9]+$/;

/**
 * Whether raw value `v` is a padding value to drop (numbers and their decimal strings match). The
 * default padding id 0 of a vocab_size feature is not dropped: it stays in place on the padding row,
 * exactly as before padding_id existed.
 */
function isPadding(f: IdFeature, v: RawScalar): boolean {
  const p = f.paddingId;
  if (p === null || (p === 0 && f.idOffset === 0 && f.vocabSize !== null)) return false;
  if (typeof p === "number") return v === p || (typeof v === "string" && SIGNED_INT_RE.test(v) && Number(v) === p);
  return (typeof v === "string" ? v : String(v)) === p;
}

/** The row of a raw value that is not padding: hashed, or the integer id plus the feature's idOffset. */
function idOf(f: IdFeature, v: RawScalar, line: number | undefined): number {
  // A JSON number past 2^53 has already lost digits (12345678901234567891 and ...892 parse to one
  // double): as an id it would silently merge two. Strings carry such ids exactly.
  if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v))
    throw new RowError("bad_id", `the number ${String(v)} is beyond 2^53, where JSON numbers lose digits`, { line, field: f.name }, "pass large ids as strings (\"12345678901234567891\")");
  if (f.hashBuckets !== null) return 1 + (fnv1a32(typeof v === "string" ? v : String(v)) % f.hashBuckets);
  let id: number;
  if (typeof v === "number") id = v;
  else if (typeof v === "string" && INT_RE.test(v)) id = Number(v);
  else id = NaN;
  if (!Number.isInteger(id) || id < 0)
    throw new RowError("bad_id", `'${String(v)}' is not a non-negative integer id${f.paddingId !== 0 && f.paddingId !== null ? ` (nor the padding value ${JSON.stringify(f.paddingId)})` : ""}`, { line, field: f.name }, "vocab_size features take pre-indexed integer ids; use hash_buckets for raw strings");
  if (id >= f.vocabSize!)
    throw new RowError("id_out_of_range", `id ${id} is outside the vocabulary (vocab_size ${f.vocabSize})`, { line, field: f.name }, "raise vocab_size in the schema or re-index the data");
  return id + f.idOffset;
}

/** A list's true length from its `length` column: a non-negative integer no larger than the list. */
function lengthOf(f: IdFeature, v: RawValue, listLength: number, line: number | undefined): number {
  const n = typeof v === "number" ? v : typeof v === "string" && INT_RE.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0)
    throw new RowError("bad_length", `'${String(v)}' is not a non-negative integer length`, { line, field: f.lengthSource! });
  if (n > listLength)
    throw new RowError("bad_length", `length ${n} but the list '${f.source}' holds ${listLength} value${listLength === 1 ? "" : "s"}`, { line, field: f.lengthSource! }, "a length column gives how many of the list's values are real");
  return n;
}

function listOf(v: RawValue, sep: string): readonly RawScalar[] {
  if (v === null) return [];
  if (Array.isArray(v)) return v as readonly RawScalar[];
  if (typeof v === "string") return v === "" ? [] : v.split(sep);
  return [v as RawScalar];
}

/**
 * Write one id feature into row `r`. With a length column only the first `length` values are read;
 * padding values are dropped; the first maxLen of the rest (input order) are kept. Returns how many
 * real ids the record held (before truncation to maxLen).
 */
export function encodeIds(b: BatchBuilder, r: number, table: number, offset: number, f: IdFeature, value: RawValue, weights: RawValue, line?: number, length: RawValue = null): number {
  const sep = b.layout.schema.listSeparator;
  const w = b.layout.tables[table]!.width;
  const ids = b.ids[table]!;
  const base = r * w + offset;
  let values: readonly RawScalar[];
  if (f.kind === "id") {
    if (Array.isArray(value)) {
      if (value.length > 1) throw new RowError("bad_id", `expected one id, got a list of ${value.length}`, { line, field: f.name });
      values = value as readonly RawScalar[];
    } else values = value === null || value === "" ? [] : [value as RawScalar];
  } else values = listOf(value, sep);
  const ws = f.kind === "weighted_ids" && b.weights[table] ? listOf(weights, sep) : null;
  if (ws && ws.length !== values.length)
    throw new RowError("bad_weight", `${values.length} ids but ${ws.length} weights`, { line, field: f.weightSource! }, "each id needs one weight");
  const read = f.lengthSource !== null ? lengthOf(f, length, values.length, line) : values.length;
  const wm = b.weights[table];
  let kept = 0; // real ids seen (padding dropped); the first maxLen are written
  for (let i = 0; i < read; i++) {
    const v = values[i]!;
    if (isPadding(f, v)) continue;
    const id = idOf(f, v, line); // every real value is validated, kept or not
    if (kept < f.maxLen) {
      ids[base + kept] = id;
      if (wm) {
        let x = 1;
        if (ws) {
          const wv = ws[i];
          x = typeof wv === "number" ? wv : typeof wv === "string" && wv !== "" ? Number(wv) : NaN;
          if (!Number.isFinite(x)) throw new RowError("bad_weight", `weight '${String(wv)}' is not a finite number`, { line, field: f.weightSource! });
        }
        wm[base + kept] = x;
      }
    }
    kept++;
  }
  return kept;
}

/** Write one dense feature (transformed) into row `r`. */
export function encodeDense(b: BatchBuilder, r: number, offset: number, f: DenseFeature, value: RawValue, line?: number): void {
  const dw = b.layout.denseWidth;
  const values = listOf(value, b.layout.schema.listSeparator);
  if (values.length !== f.size)
    throw new RowError("bad_dense", `expected ${f.size} number${f.size === 1 ? "" : "s"}, got ${values.length}`, { line, field: f.name });
  for (let i = 0; i < f.size; i++) {
    const v = values[i]!;
    const x = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
    if (!Number.isFinite(x)) throw new RowError("bad_dense", `'${String(v)}' is not a finite number`, { line, field: f.name }, "NaN and Inf are refused; impute them before training");
    b.dense[r * dw + offset + i] = f.transform === "log1p" ? Math.log1p(Math.max(x, 0)) : f.transform === "standardize" ? (x - f.mean) / f.std : x;
  }
}

/** Parse a task id: a non-negative int32 (a number or a string of digits). */
/** A sample weight: a finite number ≥ 0. */
export function sampleWeightOf(v: RawValue, field: string, line?: number): number {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < 0) throw new RowError("bad_weight", `expected a sample weight (a number >= 0), got ${JSON.stringify(v)}`, { line, field }, "the schema's sample_weight column weighs each row in every loss term");
  return n;
}

export function taskOf(v: RawValue, field: string, line?: number): number {
  const n = typeof v === "number" ? v : typeof v === "string" && INT_RE.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 31 - 1) throw new RowError("bad_task", `expected a non-negative integer task id, got ${JSON.stringify(v)}`, { line, field }, "the schema's task column holds the campaign (task) id of each row");
  return n;
}

/** Parse a 0/1 label. */
export function labelOf(v: RawValue, field: string, line?: number): 0 | 1 {
  if (v === 0 || v === "0" || v === false) return 0;
  if (v === 1 || v === "1" || v === true) return 1;
  throw new RowError("bad_label", `expected 0 or 1, got ${JSON.stringify(v)}`, { line, field });
}

/**
 * Encode one record into the next row of `b` (the caller checks `b.full` first). `get(source)`
 * returns the raw value of a column, or undefined when the record lacks it. Returns false when the
 * row is dropped by policy (click=0 & conversion=1): the caller counts it. Throws RowError on bad input.
 */
export function encodeRecord(b: BatchBuilder, get: (source: string) => RawValue | undefined, sampleId: string, line?: number, opts: { labels?: boolean } = {}): boolean {
  const { layout } = b;
  const { schema } = layout;
  const r = b.size;
  b.clearRow(r);
  const need = (source: string, field: string, optional: boolean): RawValue | undefined => {
    const v = get(source);
    if (v === undefined && !optional) throw new RowError("missing_column", `the record has no '${source}'`, { line, field }, "mark the feature optional in the schema if it may be absent");
    return v;
  };
  const withLabels = opts.labels ?? true;
  const click = withLabels ? labelOf(need(schema.labels.click, "label", false)!, schema.labels.click, line) : 0;
  const conversionColumn = schema.labels.conversion;
  const conversion = withLabels && conversionColumn !== null ? labelOf(need(conversionColumn, "label", false)!, conversionColumn, line) : 0;
  if (b.sampleWeight && schema.sampleWeight !== null) b.sampleWeight[r] = withLabels ? sampleWeightOf(need(schema.sampleWeight, "sample_weight", false)!, schema.sampleWeight, line) : 1;
  if (b.task && schema.task !== null) b.task[r] = taskOf(need(schema.task, "task", !withLabels) ?? 0, schema.task, line);
  const counts = b.rawIdCounts;
  const nf = layout.idFeatures.length;
  for (let i = 0; i < nf; i++) {
    const c = layout.idFeatures[i]!;
    const f = c.feature;
    if (f.cross) continue; // filled from its sources when the batch is taken
    const v = need(f.source, f.name, f.optional);
    const weights = f.weightSource ? need(f.weightSource, f.name, f.optional) : null;
    const length = f.lengthSource !== null && v !== undefined ? need(f.lengthSource, f.name, false)! : null;
    const n = v === undefined ? 0 : encodeIds(b, r, c.table, c.offset, f, v, weights ?? null, line, length);
    if (counts) counts[r * nf + i] = n;
  }
  for (const d of layout.dense) {
    const v = need(d.feature.source, d.feature.name, d.feature.optional);
    if (v !== undefined) encodeDense(b, r, d.offset, d.feature, v, line);
  }
  if (b.truthCtr && schema.truth) {
    const t = schema.truth;
    const prob = (v: RawValue | undefined) => (typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN);
    const ctr = prob(need(t.ctr, t.ctr, false));
    const cvr = prob(need(t.cvr, t.cvr, false));
    if (!(ctr >= 0 && ctr <= 1)) throw new RowError("bad_dense", `true CTR must be a probability, got ${JSON.stringify(get(t.ctr))}`, { line, field: t.ctr });
    if (!(cvr >= 0 && cvr <= 1)) throw new RowError("bad_dense", `true CVR must be a probability, got ${JSON.stringify(get(t.cvr))}`, { line, field: t.cvr });
    b.truthCtr[r] = ctr;
    b.truthCvr![r] = cvr;
    b.truthConversion![r] = labelOf(need(t.conversion, t.conversion, false)!, t.conversion, line);
  }
  if (click === 0 && conversion === 1) return false;
  b.click[r] = click;
  b.conversion[r] = conversion;
  b.sampleKey[r] = fnv1a32(sampleId);
  if (b.lines && line !== undefined) b.lines[r] = line;
  b.size = r + 1;
  return true;
}

/**
 * Encode records (for scoring: labels not needed) into one batch. A bad record throws RowError
 * whose `line` is the record's 1-based position. Shared by the Node server and the browser scorer.
 */
export function encodeRecords(layout: Layout, records: readonly Readonly<Record<string, RawValue | undefined>>[], opts: { labels?: boolean } = {}): Batch {
  const b = new BatchBuilder(layout, Math.max(records.length, 1));
  records.forEach((rec, i) => {
    if (typeof rec !== "object" || rec === null || Array.isArray(rec)) throw new RowError("bad_json", "a record is a JSON object of feature values", { line: i + 1 });
    const sampleId = layout.schema.sampleId ? String(rec[layout.schema.sampleId] ?? i + 1) : String(i + 1);
    if (!encodeRecord(b, (k) => rec[k], sampleId, i + 1, opts)) throw new RowError("click0_buy1", "click=0 with conversion=1", { line: i + 1 });
  });
  return b.take();
}

/**
 * Encode one context and its candidates as rows (context ∪ candidate each) without building the
 * merged objects: a candidate's own value wins the lookup, then the context's. Features that come
 * from the context for every candidate are encoded once (row 0, by the shared encoder) and their
 * columns copied to the other rows; the rest go through the same per-feature encoders
 * (encodeIds/encodeDense) as encodeRecord. A bad value throws RowError with `line` = candidate
 * index + 1. Shared by the server and the browser scorer (through the request contract, src/serve/request.ts).
 */
export function encodeCandidates(layout: Layout, context: Readonly<Record<string, RawValue | undefined>>, candidates: readonly Readonly<Record<string, RawValue | undefined>>[]): Batch {
  const n = candidates.length;
  const b = new BatchBuilder(layout, Math.max(n, 1));
  if (n === 0) return b.take();
  const fromContext = (source: string | null): boolean => source === null || (context[source] !== undefined && candidates.every((c) => c[source] === undefined));
  const sharedIds = layout.idFeatures.map((c) => fromContext(c.feature.source) && fromContext(c.feature.weightSource) && fromContext(c.feature.lengthSource));
  const sharedDense = layout.dense.map((d) => fromContext(d.feature.source));
  const row0 = candidates[0]!;
  encodeRecord(b, (k) => (row0[k] === undefined ? context[k] : row0[k]), "1", 1, { labels: false });
  // Per candidate: the shared columns are copied from row 0, the others encoded (crosses are filled when the batch is taken).
  const copied = layout.idFeatures.filter((_, k) => sharedIds[k]);
  const own = layout.idFeatures.filter((c, k) => !sharedIds[k] && !c.feature.cross);
  const ownDense = layout.dense.filter((_, k) => !sharedDense[k]);
  const copiedDense = layout.dense.filter((_, k) => sharedDense[k]);
  const dw = layout.denseWidth;
  for (let i = 1; i < n; i++) {
    const cand = candidates[i]!;
    const line = i + 1;
    const need = (source: string, field: string, optional: boolean): RawValue | undefined => {
      const v = cand[source] === undefined ? context[source] : cand[source];
      if (v === undefined && !optional) throw new RowError("missing_column", `the record has no '${source}'`, { line, field }, "mark the feature optional in the schema if it may be absent");
      return v;
    };
    b.clearRow(i);
    for (const c of copied) {
      const w = layout.tables[c.table]!.width;
      b.ids[c.table]!.copyWithin(i * w + c.offset, c.offset, c.offset + c.feature.maxLen);
      b.weights[c.table]?.copyWithin(i * w + c.offset, c.offset, c.offset + c.feature.maxLen);
    }
    for (const c of own) {
      const f = c.feature;
      const v = need(f.source, f.name, f.optional);
      const weights = f.weightSource ? need(f.weightSource, f.name, f.optional) : null;
      const length = f.lengthSource !== null && v !== undefined ? need(f.lengthSource, f.name, false)! : null;
      if (v !== undefined) encodeIds(b, i, c.table, c.offset, f, v, weights ?? null, line, length);
    }
    for (const d of copiedDense) b.dense.copyWithin(i * dw + d.offset, d.offset, d.offset + d.feature.size);
    for (const d of ownDense) {
      const v = need(d.feature.source, d.feature.name, d.feature.optional);
      if (v !== undefined) encodeDense(b, i, d.offset, d.feature, v, line);
    }
    b.size = i + 1;
  }
  return b.take();
}
