/**
 * Exact binary-classification metrics over a whole evaluation set: never averaged per batch, never
 * dropping batches without positives. Scores are probabilities; labels are 0/1.
 */

export type Scores = Float32Array | Float64Array;
export type Labels = Uint8Array;

/** Indices where `mask` is set (all when no mask). */
function selected(n: number, mask?: Uint8Array): Uint32Array | null {
  if (!mask) return null;
  let k = 0;
  for (let i = 0; i < n; i++) if (mask[i]) k++;
  const out = new Uint32Array(k);
  k = 0;
  for (let i = 0; i < n; i++) if (mask[i]) out[k++] = i;
  return out;
}

/**
 * ROC AUC: the probability that a random positive scores above a random negative, ties counting
 * one half (Mann–Whitney U / (n₊ n₋)). Exact, O(n log n): positives and negatives are sorted
 * separately and merged. NaN when either class is empty.
 */
export function auc(scores: Scores, labels: Labels, mask?: Uint8Array): number {
  const rows = selected(scores.length, mask);
  const n = rows ? rows.length : scores.length;
  let nPos = 0;
  for (let j = 0; j < n; j++) if (labels[rows ? rows[j]! : j]) nPos++;
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  const pos = new Float64Array(nPos);
  const neg = new Float64Array(nNeg);
  let p = 0, q = 0;
  for (let j = 0; j < n; j++) {
    const i = rows ? rows[j]! : j;
    if (labels[i]) pos[p++] = scores[i]!;
    else neg[q++] = scores[i]!;
  }
  pos.sort();
  neg.sort();
  // For each positive: negatives strictly below count 1, equal ones 1/2.
  let below = 0, equalEnd = 0, u = 0;
  for (let k = 0; k < nPos; k++) {
    const s = pos[k]!;
    while (below < nNeg && neg[below]! < s) below++;
    if (equalEnd < below) equalEnd = below;
    while (equalEnd < nNeg && neg[equalEnd]! === s) equalEnd++;
    u += below + (equalEnd - below) / 2;
  }
  return u / (nPos * nNeg);
}

/** Mean binary cross-entropy, with predictions clipped to [eps, 1 − eps]. */
export function logloss(scores: Scores, labels: Labels, mask?: Uint8Array, eps = 1e-7): number {
  let sum = 0, n = 0;
  for (let i = 0; i < scores.length; i++) {
    if (mask && !mask[i]) continue;
    const p = Math.min(Math.max(scores[i]!, eps), 1 - eps);
    sum -= labels[i] ? Math.log(p) : Math.log(1 - p);
    n++;
  }
  return n ? sum / n : NaN;
}

/** Mean of the scores (where mask is set). */
export function mean(values: Scores | Uint8Array, mask?: Uint8Array): number {
  let sum = 0, n = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask && !mask[i]) continue;
    sum += values[i]!;
    n++;
  }
  return n ? sum / n : NaN;
}

/** Predicted over observed rate (PCOC): 1 is calibrated, above 1 over-predicts. */
export function pcoc(scores: Scores, labels: Labels, mask?: Uint8Array): number {
  const observed = mean(labels, mask);
  return observed > 0 ? mean(scores, mask) / observed : NaN;
}

/**
 * Group AUC: the AUC of each group (user) that has both classes, weighted by the group's number of
 * rows. Groups with one class only carry no ranking information and are left out (counted).
 */
export function gauc(scores: Scores, labels: Labels, groups: ArrayLike<number | bigint>, mask?: Uint8Array): { gauc: number; groups: number; skipped: number } {
  const byGroup = new Map<number | bigint, number[]>();
  for (let i = 0; i < scores.length; i++) {
    if (mask && !mask[i]) continue;
    const key = groups[i]!;
    let list = byGroup.get(key);
    if (!list) byGroup.set(key, (list = []));
    list.push(i);
  }
  let weighted = 0, weight = 0, used = 0, skipped = 0;
  for (const rows of byGroup.values()) {
    const s = new Float64Array(rows.length);
    const y = new Uint8Array(rows.length);
    rows.forEach((r, j) => {
      s[j] = scores[r]!;
      y[j] = labels[r]!;
    });
    const a = auc(s, y);
    if (Number.isNaN(a)) {
      skipped++;
      continue;
    }
    weighted += a * rows.length;
    weight += rows.length;
    used++;
  }
  return { gauc: weight ? weighted / weight : NaN, groups: used, skipped };
}

export interface RocPoint {
  fpr: number;
  tpr: number;
}

/** The ROC curve, thinned to about `maxPoints` points (for plots; `auc` is the exact number). */
export function rocCurve(scores: Scores, labels: Labels, mask?: Uint8Array, maxPoints = 200): RocPoint[] {
  const rows = selected(scores.length, mask) ?? Uint32Array.from({ length: scores.length }, (_, i) => i);
  const order = Array.from(rows).sort((a, b) => scores[b]! - scores[a]!);
  let nPos = 0;
  for (const i of order) if (labels[i]) nPos++;
  const nNeg = order.length - nPos;
  if (nPos === 0 || nNeg === 0) return [];
  const points: RocPoint[] = [{ fpr: 0, tpr: 0 }];
  const stride = Math.max(1, Math.floor(order.length / maxPoints));
  let tp = 0, fp = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    if (labels[i]) tp++;
    else fp++;
    const lastOfTie = k === order.length - 1 || scores[order[k + 1]!] !== scores[i];
    if (lastOfTie && (k % stride === 0 || k === order.length - 1)) points.push({ fpr: fp / nNeg, tpr: tp / nPos });
  }
  return points;
}

export interface CalibrationBin {
  /** Mean predicted probability in the bin. */
  predicted: number;
  /** Observed positive rate in the bin. */
  observed: number;
  count: number;
}

/**
 * Reliability diagram data: rows sorted by score into `bins` bins of equal count (quantile bins
 * suit rare events such as conversions better than equal-width ones).
 */
export function calibration(scores: Scores, labels: Labels, mask?: Uint8Array, bins = 10): CalibrationBin[] {
  const rows = selected(scores.length, mask) ?? Uint32Array.from({ length: scores.length }, (_, i) => i);
  const order = Array.from(rows).sort((a, b) => scores[a]! - scores[b]!);
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    const lo = Math.floor((b * order.length) / bins);
    const hi = Math.floor(((b + 1) * order.length) / bins);
    if (hi <= lo) continue;
    let sp = 0, sy = 0;
    for (let k = lo; k < hi; k++) {
      sp += scores[order[k]!]!;
      sy += labels[order[k]!]!;
    }
    out.push({ predicted: sp / (hi - lo), observed: sy / (hi - lo), count: hi - lo });
  }
  return out;
}
