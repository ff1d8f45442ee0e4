/** Metrics against hand-worked values and a brute-force pair count. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { auc, logloss, pcoc, gauc, rocCurve, calibration, mean } from "../src/metrics/binary.js";
import { rng } from "./helpers/rng.js";

/** O(n²) definition: P(score₊ > score₋) + ½ P(tie). */
function bruteAuc(s: ArrayLike<number>, y: ArrayLike<number>): number {
  let u = 0, pairs = 0;
  for (let i = 0; i < s.length; i++) {
    if (!y[i]) continue;
    for (let j = 0; j < s.length; j++) {
      if (y[j]) continue;
      pairs++;
      u += s[i]! > s[j]! ? 1 : s[i] === s[j] ? 0.5 : 0;
    }
  }
  return u / pairs;
}

test("AUC by hand: 3 positives, 2 negatives, one tie", () => {
  // Pairs (pos, neg): (0.9,0.3)=1 (0.9,0.5)=1 (0.5,0.3)=1 (0.5,0.5)=½ (0.2,0.3)=0 (0.2,0.5)=0 → 3.5/6
  const s = Float64Array.of(0.9, 0.5, 0.2, 0.3, 0.5);
  const y = Uint8Array.of(1, 1, 1, 0, 0);
  assert.equal(auc(s, y), 3.5 / 6);
});

test("AUC equals the pair-count definition on random data with many ties, with and without a mask", () => {
  const r = rng(3);
  const n = 700;
  const s = Float32Array.from({ length: n }, () => Math.round(r() * 20) / 20);
  const y = Uint8Array.from({ length: n }, (_, i) => (r() < 0.2 + 0.5 * s[i]! ? 1 : 0));
  const m = Uint8Array.from({ length: n }, () => (r() < 0.4 ? 1 : 0));
  assert.ok(Math.abs(auc(s, y) - bruteAuc(s, y)) < 1e-12);
  const sm = s.filter((_, i) => m[i]);
  const ym = y.filter((_, i) => m[i]);
  assert.ok(Math.abs(auc(s, y, m) - bruteAuc(sm, ym)) < 1e-12);
});

test("AUC is NaN without both classes", () => {
  assert.ok(Number.isNaN(auc(Float64Array.of(0.1, 0.2), Uint8Array.of(1, 1))));
  assert.ok(Number.isNaN(auc(Float64Array.of(0.1, 0.2), Uint8Array.of(0, 1), Uint8Array.of(1, 0))));
});

test("logloss, mean and PCOC by hand", () => {
  const s = Float64Array.of(0.8, 0.4, 0.1, 0.5);
  const y = Uint8Array.of(1, 0, 0, 1);
  const want = -(Math.log(0.8) + Math.log(0.6) + Math.log(0.9) + Math.log(0.5)) / 4;
  assert.ok(Math.abs(logloss(s, y) - want) < 1e-15);
  assert.ok(Math.abs(mean(s) - 0.45) < 1e-15);
  assert.ok(Math.abs(pcoc(s, y) - 0.45 / 0.5) < 1e-15);
  assert.ok(Math.abs(logloss(Float64Array.of(0, 1), Uint8Array.of(1, 0)) - -Math.log(1e-7)) < 1e-9, "clipped, finite");
});

test("GAUC weights each user's AUC by its rows and skips one-class users", () => {
  const s = Float64Array.of(0.9, 0.1, 0.2, 0.8, 0.3, 0.5, 0.6);
  const y = Uint8Array.of(1, 0, 1, 0, 0, 1, 1);
  const user = [1, 1, 2, 2, 2, 3, 3]; // user 1: AUC 1 (2 rows); user 2: 1 pos 0.2 vs 0.8, 0.3 → 0 (3 rows); user 3: positives only
  const g = gauc(s, y, user);
  assert.equal(g.groups, 2);
  assert.equal(g.skipped, 1);
  assert.ok(Math.abs(g.gauc - (1 * 2 + 0 * 3) / 5) < 1e-15);
});

test("ROC curve runs from (0,0) to (1,1); calibration bins hold every row", () => {
  const r = rng(9);
  const s = Float64Array.from({ length: 1000 }, () => r());
  const y = Uint8Array.from(s, (p) => (r() < p ? 1 : 0));
  const roc = rocCurve(s, y);
  assert.deepEqual(roc[0], { fpr: 0, tpr: 0 });
  assert.deepEqual(roc.at(-1), { fpr: 1, tpr: 1 });
  assert.ok(roc.length <= 202);
  const bins = calibration(s, y, undefined, 10);
  assert.equal(bins.reduce((t, b) => t + b.count, 0), 1000);
  assert.ok(bins.every((b, i) => i === 0 || b.predicted >= bins[i - 1]!.predicted));
  assert.ok(Math.abs(bins[9]!.observed - bins[9]!.predicted) < 0.15, "well calibrated by construction");
});

test("CVR bias by propensity decile: equal-count bins of true CTR, lowest first, whose biases average to the overall CVR bias", async () => {
  const { PredictionCollector } = await import("../src/metrics/funnel.js");
  const { synthBatches } = await import("../src/data/synth.js");
  const c = new PredictionCollector();
  // A pCVR that is right on high-propensity impressions and too high by 0.1 below the median true CTR.
  let median = 0;
  const batches = [...synthBatches({ rows: 3000, seed: 2, bias: 2, users: 300, items: 400, batchSize: 1000 })];
  const ctrs = batches.flatMap((b) => Array.from(b.truth!.ctr)).sort((a, b) => a - b);
  median = ctrs[1500]!;
  for (const b of batches) {
    const pcvr = Float32Array.from(b.truth!.cvr, (v, r) => v + (b.truth!.ctr[r]! < median ? 0.1 : 0));
    c.add(b, { p_cvr: pcvr, p_ctr: b.truth!.ctr, p_ctcvr: pcvr });
  }
  const bins = c.biasByPropensity(10)!;
  assert.equal(bins.length, 10);
  assert.equal(bins.reduce((a, b) => a + b.rows, 0), 3000);
  for (let k = 1; k < 10; k++) assert.ok(bins[k]!.mean_true_ctr >= bins[k - 1]!.mean_true_ctr, "lowest propensity first");
  for (const b of bins.slice(0, 5)) assert.ok(Math.abs(b.cvr_bias - 0.1) < 1e-6, `low bins carry the bias: ${b.cvr_bias}`);
  for (const b of bins.slice(5)) assert.ok(Math.abs(b.cvr_bias) < 1e-6, `high bins are unbiased: ${b.cvr_bias}`);
  const overall = bins.reduce((a, b) => a + b.cvr_bias * b.rows, 0) / 3000;
  assert.ok(Math.abs(overall - c.metrics().cvr_bias!) < 1e-6);
  assert.equal(new PredictionCollector().biasByPropensity(), null);
});
