/**
 * The conversion funnel's metrics over a whole evaluation set. Predictions of every batch are
 * collected first (`PredictionCollector`), then each metric is computed once over all rows with
 * src/metrics/binary.ts: never a per-batch average, never a batch dropped for lacking positives.
 *
 *   ctr_auc            pCTR vs click, over impressions
 *   cvr_auc            pCVR vs conversion, over clicked impressions (the ESMM paper's CVR AUC)
 *   ctcvr_auc          pCTCVR vs click&buy, over impressions
 *   cvr_auc_all        pCVR vs conversion, over ALL impressions (PaddleRec's `auc_cvr`; not cvr_auc:
 *                      unclicked impressions count as CVR negatives here)
 *   cvr_auc_entire     pCVR vs the potential conversion, over impressions (ground truth only)
 *   cvr_bias           mean pCVR − mean true CVR, over impressions (ground truth only)
 *   *_logloss, *_pcoc  per task, over the same rows as its AUC (PCOC: mean predicted / observed rate)
 *   ctr_gauc, ctcvr_gauc  user-weighted AUC, when the data names a user id
 *   *_accuracy, *_precision, *_recall, *_f1  per task at a threshold (default 0.5): p ≥ threshold
 *                      predicts the positive class, over the same rows as its AUC
 * A model without a prediction (a CTR-only model has no pCVR) gets null for its metrics. A metric
 * the rows cannot give (an AUC over one class, a precision with no predicted positive) is null
 * too, and `not_computable` says which and why.
 */
import type { Batch as DataBatch } from "../features/batch.js";
import { auc, calibration, gauc, logloss, mean, pcoc, rocCurve, type CalibrationBin, type RocPoint } from "./binary.js";

export const TASKS = ["ctr", "cvr", "ctcvr"] as const;
export type Task = (typeof TASKS)[number];

export interface FunnelMetrics {
  impressions: number;
  clicks: number;
  conversions: number;
  ctr_auc: number | null;
  cvr_auc: number | null;
  ctcvr_auc: number | null;
  cvr_auc_entire: number | null;
  cvr_bias: number | null;
  ctr_logloss: number | null;
  cvr_logloss: number | null;
  ctcvr_logloss: number | null;
  ctr_pcoc: number | null;
  cvr_pcoc: number | null;
  ctcvr_pcoc: number | null;
  ctr_gauc: number | null;
  ctcvr_gauc: number | null;
  cvr_auc_all: number | null;
  ctr_accuracy: number | null;
  ctr_precision: number | null;
  ctr_recall: number | null;
  ctr_f1: number | null;
  cvr_accuracy: number | null;
  cvr_precision: number | null;
  cvr_recall: number | null;
  cvr_f1: number | null;
  ctcvr_accuracy: number | null;
  ctcvr_precision: number | null;
  ctcvr_recall: number | null;
  ctcvr_f1: number | null;
  /** The threshold of the *_accuracy / precision / recall / f1 metrics. */
  threshold: number;
  /** Metrics the model predicts but these rows cannot give, with why ("one class: no clicks among 9 rows"). */
  not_computable: Record<string, string>;
  /** Mean pCVR over impressions and mean true CVR (ground truth), the two halves of cvr_bias. */
  mean_pcvr: number | null;
  mean_true_cvr: number | null;
}

/** One bin of true click propensity: its impressions' mean true CTR, true CVR and pCVR. */
export interface PropensityBin {
  rows: number;
  mean_true_ctr: number;
  mean_true_cvr: number;
  mean_pcvr: number;
  /** mean_pcvr − mean_true_cvr over the bin. */
  cvr_bias: number;
}

/** Plot data per task: ROC curve and reliability bins over the task's rows. */
export interface FunnelCurves {
  roc: Partial<Record<Task, RocPoint[]>>;
  calibration: Partial<Record<Task, CalibrationBin[]>>;
}

class Growable<T extends Float32Array | Uint8Array | Int32Array> {
  data: T;
  length = 0;
  constructor(private readonly Ctor: { new (n: number): T }) {
    this.data = new Ctor(1024);
  }
  push(values: ArrayLike<number>, n: number): void {
    if (this.length + n > this.data.length) {
      const next = new this.Ctor(Math.max(this.data.length * 2, this.length + n));
      next.set(this.data.subarray(0, this.length) as unknown as ArrayLike<number>);
      this.data = next;
    }
    for (let i = 0; i < n; i++) this.data[this.length + i] = values[i]!;
    this.length += n;
  }
  get values(): T {
    return this.data.subarray(0, this.length) as T;
  }
}

/** Accumulates, batch by batch, the predictions and what they are judged against. */
export class PredictionCollector {
  private readonly predictions = new Map<Task, Growable<Float32Array>>();
  private readonly click = new Growable(Uint8Array);
  private readonly conversion = new Growable(Uint8Array);
  private readonly trueCvr = new Growable(Float32Array);
  private readonly trueCtr = new Growable(Float32Array);
  private readonly potential = new Growable(Uint8Array);
  private readonly user = new Growable(Int32Array);
  private truth = true;
  private users = true;
  private rows = 0;

  /** Adds a batch's rows: its labels (and truth, user ids) and the model's predictions for them. */
  add(batch: DataBatch, predictions: Readonly<Record<string, ArrayLike<number>>>): void {
    const n = batch.size;
    this.click.push(batch.click, n);
    this.conversion.push(batch.conversion, n);
    this.truth &&= batch.truth !== null;
    if (batch.truth) {
      this.trueCvr.push(batch.truth.cvr, n);
      this.trueCtr.push(batch.truth.ctr, n);
      this.potential.push(batch.truth.conversion, n);
    }
    this.users &&= batch.userId !== null;
    if (batch.userId) this.user.push(batch.userId, n);
    for (const task of TASKS) {
      const p = predictions[`p_${task}`];
      if (!p) continue;
      let g = this.predictions.get(task);
      if (!g) {
        if (this.rows > 0) continue; // a prediction missing from earlier batches stays missing
        this.predictions.set(task, (g = new Growable(Float32Array)));
      }
      g.push(p, n);
    }
    this.rows += n;
    for (const [task, g] of this.predictions) if (g.length !== this.rows) this.predictions.delete(task);
  }

  get size(): number {
    return this.rows;
  }

  private rowsOf(task: Task): { scores: Float32Array; labels: Uint8Array; mask: Uint8Array | undefined } | null {
    const g = this.predictions.get(task);
    if (!g) return null;
    return { scores: g.values, labels: task === "ctr" ? this.click.values : this.conversion.values, mask: task === "cvr" ? this.click.values : undefined };
  }

  metrics(opts: { threshold?: number } = {}): FunnelMetrics {
    const threshold = opts.threshold ?? 0.5;
    const click = this.click.values, conversion = this.conversion.values;
    const notComputable: Record<string, string> = {};
    // null and the reason, for a metric the model predicts but these rows cannot give
    const fin = (x: number, key?: string, why?: () => string): number | null => {
      if (Number.isFinite(x)) return x;
      if (key && why) notComputable[key] = why();
      return null;
    };
    const m: FunnelMetrics = {
      impressions: this.rows, clicks: count(click), conversions: count(conversion),
      ctr_auc: null, cvr_auc: null, ctcvr_auc: null, cvr_auc_entire: null, cvr_bias: null,
      ctr_logloss: null, cvr_logloss: null, ctcvr_logloss: null, ctr_pcoc: null, cvr_pcoc: null, ctcvr_pcoc: null,
      ctr_gauc: null, ctcvr_gauc: null, cvr_auc_all: null,
      ctr_accuracy: null, ctr_precision: null, ctr_recall: null, ctr_f1: null,
      cvr_accuracy: null, cvr_precision: null, cvr_recall: null, cvr_f1: null,
      ctcvr_accuracy: null, ctcvr_precision: null, ctcvr_recall: null, ctcvr_f1: null,
      threshold, not_computable: notComputable, mean_pcvr: null, mean_true_cvr: null,
    };
    for (const task of TASKS) {
      const r = this.rowsOf(task);
      if (!r) continue;
      const oneClass = () => classesNote(r.labels, r.mask, task === "ctr" ? "clicks" : "conversions", task === "cvr" ? "clicked rows" : "rows");
      m[`${task}_auc`] = fin(auc(r.scores, r.labels, r.mask), `${task}_auc`, oneClass);
      m[`${task}_logloss`] = fin(logloss(r.scores, r.labels, r.mask), `${task}_logloss`, () => `no ${task === "cvr" ? "clicked rows" : "rows"}`);
      m[`${task}_pcoc`] = fin(pcoc(r.scores, r.labels, r.mask), `${task}_pcoc`, () => `no positive label (no ${task === "ctr" ? "clicks" : "conversions"})`);
      const c = confusion(r.scores, r.labels, r.mask, threshold);
      const n = c.tp + c.fp + c.tn + c.fn;
      m[`${task}_accuracy`] = fin((c.tp + c.tn) / n, `${task}_accuracy`, () => "no rows");
      m[`${task}_precision`] = fin(c.tp / (c.tp + c.fp), `${task}_precision`, () => `no prediction reaches the threshold ${threshold}`);
      m[`${task}_recall`] = fin(c.tp / (c.tp + c.fn), `${task}_recall`, () => `no positive label (no ${task === "ctr" ? "clicks" : "conversions"})`);
      m[`${task}_f1`] = fin((2 * c.tp) / (2 * c.tp + c.fp + c.fn), `${task}_f1`, () => "no positive label and no predicted positive");
    }
    const pcvr = this.predictions.get("cvr")?.values;
    if (pcvr) m.cvr_auc_all = fin(auc(pcvr, conversion), "cvr_auc_all", () => classesNote(conversion, undefined, "conversions", "rows"));
    if (pcvr) m.mean_pcvr = fin(mean(pcvr));
    if (this.truth && this.rows > 0) {
      m.mean_true_cvr = fin(mean(this.trueCvr.values));
      if (pcvr) {
        m.cvr_auc_entire = fin(auc(pcvr, this.potential.values));
        m.cvr_bias = m.mean_pcvr !== null && m.mean_true_cvr !== null ? m.mean_pcvr - m.mean_true_cvr : null;
      }
    }
    if (this.users && this.rows > 0) {
      const users = this.user.values;
      const ctr = this.predictions.get("ctr")?.values;
      const ctcvr = this.predictions.get("ctcvr")?.values;
      if (ctr) m.ctr_gauc = fin(gauc(ctr, click, users).gauc);
      if (ctcvr) m.ctcvr_gauc = fin(gauc(ctcvr, conversion, users).gauc);
    }
    return m;
  }

  /**
   * CVR bias decomposed by click propensity (ground truth only): impressions in `bins` equal-count
   * bins of true CTR, lowest first, each with its mean true CTR, mean true CVR and mean pCVR. Where a
   * model learns the CVR of clicked impressions, its bias concentrates in the low-propensity bins,
   * the impressions clicks rarely show it. Null without truth or pCVR.
   */
  biasByPropensity(bins = 10): PropensityBin[] | null {
    const pcvr = this.predictions.get("cvr")?.values;
    if (!pcvr || !this.truth || this.rows === 0) return null;
    const ctr = this.trueCtr.values, cvr = this.trueCvr.values;
    const order = Array.from({ length: this.rows }, (_, i) => i).sort((a, b) => ctr[a]! - ctr[b]! || a - b);
    const out: PropensityBin[] = [];
    for (let k = 0; k < bins; k++) {
      const lo = Math.floor((k * this.rows) / bins), hi = Math.floor(((k + 1) * this.rows) / bins);
      let sCtr = 0, sCvr = 0, sP = 0;
      for (let j = lo; j < hi; j++) {
        const i = order[j]!;
        sCtr += ctr[i]!;
        sCvr += cvr[i]!;
        sP += pcvr[i]!;
      }
      const n = Math.max(hi - lo, 1);
      out.push({ rows: hi - lo, mean_true_ctr: sCtr / n, mean_true_cvr: sCvr / n, mean_pcvr: sP / n, cvr_bias: (sP - sCvr) / n });
    }
    return out;
  }

  curves(maxPoints = 200, bins = 10): FunnelCurves {
    const out: FunnelCurves = { roc: {}, calibration: {} };
    for (const task of TASKS) {
      const r = this.rowsOf(task);
      if (!r) continue;
      out.roc[task] = rocCurve(r.scores, r.labels, r.mask, maxPoints);
      out.calibration[task] = calibration(r.scores, r.labels, r.mask, bins);
    }
    return out;
  }
}

/** Counts at a threshold: p ≥ threshold predicts the positive class. */
export function confusion(scores: ArrayLike<number>, labels: Uint8Array, mask: Uint8Array | undefined, threshold: number): { tp: number; fp: number; tn: number; fn: number } {
  let tp = 0, fp = 0, tn = 0, fn = 0;
  for (let i = 0; i < scores.length; i++) {
    if (mask && !mask[i]) continue;
    const predicted = scores[i]! >= threshold;
    if (labels[i]) predicted ? tp++ : fn++;
    else predicted ? fp++ : tn++;
  }
  return { tp, fp, tn, fn };
}

/** Why an AUC has no value: "one class: no conversions among 9 clicked rows". */
function classesNote(labels: Uint8Array, mask: Uint8Array | undefined, positives: string, rows: string): string {
  let n = 0, pos = 0;
  for (let i = 0; i < labels.length; i++) {
    if (mask && !mask[i]) continue;
    n++;
    pos += labels[i]!;
  }
  if (n === 0) return `no ${rows}`;
  return pos === 0 ? `one class: no ${positives} among ${n} ${rows}` : `one class: all ${n} ${rows} are ${positives}`;
}

function count(x: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < x.length; i++) n += x[i]!;
  return n;
}

/** The metrics a comparison table shows, in order, with their labels. */
export const METRIC_COLUMNS: readonly { key: keyof FunnelMetrics; label: string }[] = [
  { key: "ctr_auc", label: "CTR AUC" },
  { key: "cvr_auc", label: "CVR AUC (clicked)" },
  { key: "cvr_auc_all", label: "CVR AUC (all impressions, PaddleRec auc_cvr)" },
  { key: "cvr_auc_entire", label: "CVR AUC (entire, true)" },
  { key: "ctcvr_auc", label: "CTCVR AUC" },
  { key: "cvr_bias", label: "CVR bias" },
  { key: "ctr_logloss", label: "CTR logloss" },
  { key: "cvr_logloss", label: "CVR logloss" },
  { key: "ctcvr_logloss", label: "CTCVR logloss" },
  { key: "ctr_pcoc", label: "CTR PCOC" },
  { key: "cvr_pcoc", label: "CVR PCOC" },
  { key: "ctcvr_pcoc", label: "CTCVR PCOC" },
  { key: "ctr_gauc", label: "CTR GAUC" },
  { key: "ctcvr_gauc", label: "CTCVR GAUC" },
  ...TASKS.flatMap((t) => (["accuracy", "precision", "recall", "f1"] as const).map((k) => ({ key: `${t}_${k}` as keyof FunnelMetrics, label: `${t.toUpperCase()} ${k === "f1" ? "F1" : k} @ threshold` }))),
];

export function formatMetric(v: number | null | undefined, key: string): string {
  if (v === null || v === undefined) return "-";
  if (key === "cvr_bias") return (v >= 0 ? "+" : "") + v.toFixed(4);
  return v.toFixed(4);
}
