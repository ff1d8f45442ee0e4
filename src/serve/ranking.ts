/**
 * Ranking scored candidates: one function for `mtl serve`, the Node Scorer and `mtl/web`, so a
 * context with its candidates ranks the same everywhere. Pure TypeScript (browser-safe).
 */
import { PREDICTIONS, type PredictionName, type Scores } from "../models/feeds.js";
import type { RankFormula } from "./formula.js";

/** What to rank by: one prediction, or a formula over the predictions and numeric candidate fields. */
export type RankBy = PredictionName | RankFormula;

export interface ScoredCandidate {
  /** Position of the candidate in the request. */
  index: number;
  p_ctr: number;
  p_cvr: number;
  p_ctcvr: number;
  /** The ranking score (the prediction or the formula's value); present when ranked. */
  score?: number;
}

const isPrediction = (name: string): name is PredictionName => (PREDICTIONS as readonly string[]).includes(name);

/** The name a ranking is reported by (`ranked_by` in a response). */
export function rankName(by: RankBy): string {
  return typeof by === "string" ? by : by.text;
}

/** What stops a formula ranking these candidates (a field some candidate lacks as a finite number), or null. */
export function missingFormulaField(formula: RankFormula, candidates: readonly Readonly<Record<string, unknown>>[]): string | null {
  for (const f of formula.fields) {
    for (let i = 0; i < candidates.length; i++) {
      const v = candidates[i]![f];
      if (typeof v !== "number" || !Number.isFinite(v)) return `the rank formula '${formula.text}' needs a number '${f}' in every candidate; candidates[${i}] has ${JSON.stringify(v)}`;
    }
  }
  return null;
}

/**
 * Each candidate's scores in request order, or, with `by`, best first (ties by request order) with
 * each candidate's `score`, cut to the `topK` best when given. A formula reads its fields from the
 * candidates: check them first with missingFormulaField.
 */
export function rankCandidates(
  scores: Scores,
  candidates: readonly Readonly<Record<string, unknown>>[],
  by: RankBy | null,
  topK: number | null = null,
): ScoredCandidate[] {
  const rows: ScoredCandidate[] = Array.from({ length: candidates.length }, (_, i) => ({ index: i, p_ctr: scores.p_ctr[i]!, p_cvr: scores.p_cvr[i]!, p_ctcvr: scores.p_ctcvr[i]! }));
  if (by === null) return rows;
  const scored = rows.map((r) => ({
    ...r,
    score: typeof by === "string" ? r[by] : by.evaluate((name) => (isPrediction(name) ? r[name] : (candidates[r.index]![name] as number))),
  }));
  scored.sort((a, b) => b.score - a.score || a.index - b.index);
  return topK ? scored.slice(0, topK) : scored;
}
