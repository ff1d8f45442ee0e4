/**
 * The scoring request contract of `mtl serve` (POST /v1/score) and `mtl/web`:
 *
 *   {"context": {feature: value, ...}, "candidates": [{feature: value, ...}, ...], "rank": true|false|"p_ctr"|..., "top_k": n}
 *
 * parsed and validated against the model's schema, then encoded as one row per candidate (context ∪
 * candidate) with the shared encoder. Every error is a RequestError naming the key, candidate and
 * field at fault (HTTP 400 in the server). Pure TypeScript (browser-safe): the server and the browser
 * entry run this same code.
 */
import type { Batch, Layout } from "../features/batch.js";
import { encodeCandidates, RowError, type RawValue } from "../features/encode.js";
import type { FeatureSchema } from "../features/schema.js";
import { PREDICTIONS, type PredictionName } from "../models/feeds.js";
import type { RankFormula } from "./formula.js";
import { missingFormulaField, type RankBy } from "./ranking.js";

/** A request the contract refuses (or, in the server, any HTTP error): the status, a stable code, one line. */
export class RequestError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = "RequestError";
  }
}

export interface ScoreRequest {
  context: Record<string, RawValue>;
  candidates: Record<string, RawValue>[];
  /** null: scores in request order, unranked. */
  rank: RankBy | null;
  topK: number | null;
}

export interface RequestLimits {
  /** Most candidates in one request (default 1000). */
  maxCandidates?: number;
  /** The formula `"rank": true` means (default: rank by p_ctcvr). */
  formula?: RankFormula | PredictionName;
}

const KEYS = ["context", "candidates", "rank", "top_k"];

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === "string" || (typeof v === "number" && Number.isFinite(v)) || typeof v === "boolean";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const SOURCES = new WeakMap<FeatureSchema, readonly string[]>();

/** The input columns a schema reads (feature sources and weight sources), once per schema. */
function sourcesOf(schema: FeatureSchema): readonly string[] {
  let s = SOURCES.get(schema);
  if (!s) {
    const set = new Set<string>();
    for (const f of schema.features) {
      set.add(f.source);
      if (f.kind === "weighted_ids" && f.weightSource) set.add(f.weightSource);
    }
    SOURCES.set(schema, (s = [...set]));
  }
  return s;
}

/** The request in a JSON body. */
export function parseScoreRequest(text: string, schema: FeatureSchema, limits: RequestLimits = {}): ScoreRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new RequestError(400, "bad_json", `invalid JSON: ${(err as Error).message}`);
  }
  return validateScoreRequest(body, schema, limits);
}

/** The request in an already parsed body (a JSON value), checked against the model's schema. */
export function validateScoreRequest(body: unknown, schema: FeatureSchema, limits: RequestLimits = {}): ScoreRequest {
  if (!isObject(body)) throw new RequestError(400, "bad_request", "the body must be a JSON object {\"context\": {...}, \"candidates\": [...]}");
  for (const k of Object.keys(body)) if (!KEYS.includes(k)) throw new RequestError(400, "bad_request", `unknown key '${k}'; keys: ${KEYS.join(", ")}`);
  const context = body.context ?? {};
  if (!isObject(context)) throw new RequestError(400, "bad_request", "'context' must be an object of feature values");
  const candidates = body.candidates;
  if (!Array.isArray(candidates) || candidates.length === 0) throw new RequestError(400, "bad_request", "'candidates' must be a non-empty list of objects");
  const max = limits.maxCandidates ?? 1000;
  if (candidates.length > max) throw new RequestError(400, "too_many_candidates", `${candidates.length} candidates; the limit is ${max}`);
  let rank: RankBy | null = null;
  if (body.rank === true) rank = limits.formula ?? "p_ctcvr";
  else if (typeof body.rank === "string" && (PREDICTIONS as readonly string[]).includes(body.rank)) rank = body.rank as PredictionName;
  else if (body.rank !== undefined && body.rank !== false) throw new RequestError(400, "bad_request", "'rank' is true (the server's formula), false, or one of \"p_ctr\", \"p_cvr\", \"p_ctcvr\"");
  let topK: number | null = null;
  if (body.top_k !== undefined) {
    if (!(typeof body.top_k === "number" && Number.isInteger(body.top_k) && body.top_k > 0)) throw new RequestError(400, "bad_request", "'top_k' must be a positive integer");
    if (rank === null) throw new RequestError(400, "bad_request", "'top_k' needs 'rank'");
    topK = body.top_k;
  }
  const sources = sourcesOf(schema);
  // Checked per value without building strings: a request has ~1,000 of them.
  const valid = (v: unknown): boolean => v === null || isScalar(v) || (Array.isArray(v) && v.every(isScalar));
  const mistyped = (v: unknown, where: string): RequestError => {
    const what = Array.isArray(v) ? "a list with an item that is not a string, number or boolean" : typeof v === "number" ? "a non-finite number" : typeof v === "object" ? "an object" : typeof v;
    return new RequestError(400, "mistyped_feature", `${where}: expected a string, a number, a boolean or a list of them, got ${what}`);
  };
  // By the schema's sources, not by each object's keys: other keys are never read, and a for-in over
  // Ali-CCP's numeric field names ("205") walks V8's slow dictionary elements.
  for (const k of sources) if (context[k] !== undefined && !valid(context[k])) throw mistyped(context[k], `context.${k}`);
  for (let i = 0; i < candidates.length; i++) {
    const cand: unknown = candidates[i];
    if (!isObject(cand)) throw new RequestError(400, "bad_request", `candidates[${i}] must be an object of feature values`);
    for (const k of sources) {
      const v = cand[k];
      if (v === undefined) continue;
      if (context[k] !== undefined) throw new RequestError(400, "bad_request", `candidates[${i}].${k} is also given in context; give each feature once`);
      if (!valid(v)) throw mistyped(v, `candidates[${i}].${k}`);
    }
  }
  const missing = rank !== null && typeof rank === "object" ? missingFormulaField(rank, candidates as Record<string, unknown>[]) : null;
  if (missing) throw new RequestError(400, "bad_request", missing);
  return { context: context as Record<string, RawValue>, candidates: candidates as Record<string, RawValue>[], rank, topK };
}

/** The request's rows (context ∪ candidate each) encoded for the model; a bad value is a RequestError naming where it came from. */
export function encodeScoreRequest(layout: Layout, req: Pick<ScoreRequest, "context" | "candidates">): Batch {
  try {
    return encodeCandidates(layout, req.context, req.candidates);
  } catch (err) {
    if (!(err instanceof RowError)) throw err;
    const i = (err.where.line ?? 1) - 1;
    const field = err.where.field;
    const cand = req.candidates[i] ?? {};
    if (err.reason === "missing_column") {
      throw new RequestError(400, "missing_feature", `candidates[${i}]: the feature '${field}' is in neither the candidate nor the context${err.hint ? ` (${err.hint})` : ""}`);
    }
    const owner = field === undefined ? `candidates[${i}]` : field in cand ? `candidates[${i}].${field}` : `context.${field}`;
    throw new RequestError(400, "bad_feature", `${owner}: ${err.message}${err.hint ? ` (${err.hint})` : ""}`);
  }
}
