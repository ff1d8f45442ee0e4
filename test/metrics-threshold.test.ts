/** Accuracy, precision, recall and F1 at a threshold per head, and PaddleRec's all-impression CVR AUC, by hand. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PredictionCollector } from "../src/metrics/funnel.js";
import type { Batch } from "../src/features/batch.js";

function batch(click: number[], conversion: number[]): Batch {
  const n = click.length;
  return {
    size: n, ids: [], weights: [], dense: new Float32Array(0), click: Uint8Array.from(click), conversion: Uint8Array.from(conversion),
    truth: null, userId: null, sampleKey: new Uint32Array(n),
  } as unknown as Batch;
}

const click = [1, 1, 1, 0, 0, 1];
const conversion = [1, 0, 1, 0, 0, 0];
const pCtr = [0.9, 0.4, 0.6, 0.7, 0.2, 0.55];
const pCvr = [0.8, 0.3, 0.45, 0.9, 0.1, 0.6];
const pCtcvr = pCtr.map((p, i) => p * pCvr[i]!);

function collector(): PredictionCollector {
  const c = new PredictionCollector();
  c.add(batch(click.slice(0, 4), conversion.slice(0, 4)), { p_ctr: Float32Array.from(pCtr.slice(0, 4)), p_cvr: Float32Array.from(pCvr.slice(0, 4)), p_ctcvr: Float32Array.from(pCtcvr.slice(0, 4)) });
  c.add(batch(click.slice(4), conversion.slice(4)), { p_ctr: Float32Array.from(pCtr.slice(4)), p_cvr: Float32Array.from(pCvr.slice(4)), p_ctcvr: Float32Array.from(pCtcvr.slice(4)) });
  return c;
}

test("accuracy, precision, recall, F1 at 0.5 for every head, over the rows of its AUC", () => {
  const m = collector().metrics();
  assert.equal(m.threshold, 0.5);
  // CTR over all 6: predicted positive at ≥ 0.5 → rows 0, 2, 3, 5; clicks 0, 1, 2, 5: tp 3, fp 1, fn 1, tn 1
  assert.equal(m.ctr_accuracy, 4 / 6);
  assert.equal(m.ctr_precision, 3 / 4);
  assert.equal(m.ctr_recall, 3 / 4);
  assert.equal(m.ctr_f1, 6 / 8);
  // CVR over the 4 clicked rows (0, 1, 2, 5): predicted 0, 5; conversions 0, 2: tp 1, fp 1, fn 1, tn 1
  assert.equal(m.cvr_accuracy, 2 / 4);
  assert.equal(m.cvr_precision, 1 / 2);
  assert.equal(m.cvr_recall, 1 / 2);
  // CTCVR over all: pCTCVR 0.72, 0.12, 0.27, 0.63, 0.02, 0.33 → predicted 0, 3; conversions 0, 2: tp 1, fp 1, fn 1, tn 3
  assert.equal(m.ctcvr_accuracy, 4 / 6);
  assert.equal(m.ctcvr_f1, 2 / 4);
  // at 0.35 more rows are positive
  const low = collector().metrics({ threshold: 0.35 });
  assert.equal(low.threshold, 0.35);
  assert.equal(low.ctr_recall, 1);
  assert.equal(low.ctr_precision, 4 / 5);
});

test("cvr_auc_all (PaddleRec's auc_cvr) scores pCVR against conversion over ALL impressions, unlike the clicked-only cvr_auc", () => {
  const m = collector().metrics();
  // Clicked rows (0, 1, 2, 5): positives 0 (0.8), 2 (0.45); negatives 1 (0.3), 5 (0.6): pairs won 0>0.3, 0>0.6, 2>0.3 → 3/4
  assert.equal(m.cvr_auc, 3 / 4);
  // All rows: positives 0.8, 0.45; negatives 0.3, 0.9, 0.1, 0.6: 0.8 beats 3, 0.45 beats 2 → 5/8
  assert.equal(m.cvr_auc_all, 5 / 8);
  assert.deepEqual(m.not_computable, {});
});

test("a metric the rows cannot give is null with the reason in not_computable", () => {
  const c = new PredictionCollector();
  c.add(batch([1, 0, 1], [0, 0, 0]), { p_ctr: Float32Array.from([0.1, 0.2, 0.3]), p_cvr: Float32Array.from([0.1, 0.2, 0.3]), p_ctcvr: Float32Array.from([0.01, 0.04, 0.09]) });
  const m = c.metrics();
  assert.equal(m.ctcvr_auc, null);
  assert.equal(m.not_computable["ctcvr_auc"], "one class: no conversions among 3 rows");
  assert.equal(m.not_computable["cvr_auc"], "one class: no conversions among 2 clicked rows");
  assert.equal(m.not_computable["cvr_auc_all"], "one class: no conversions among 3 rows");
  assert.equal(m.ctr_precision, null);
  assert.equal(m.not_computable["ctr_precision"], "no prediction reaches the threshold 0.5");
  assert.ok(m.ctr_auc !== null);
  assert.equal(m.not_computable["ctr_auc"], undefined);
});
