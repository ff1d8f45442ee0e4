/**
 * `mtl report`: one self-contained HTML file for a run directory (inline CSS and SVG, no scripts,
 * nothing fetched): loss and AUC curves from metrics.jsonl, ROC curves per task and a reliability
 * plot from curves.json (the best state on the validation set), the best validation metrics, the
 * configuration and the data.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { METRIC_COLUMNS, TASKS, formatMetric, type FunnelCurves, type FunnelMetrics } from "../metrics/funnel.js";
import { readJson, RUN_FILES, type RunManifest, type RunSummary } from "../flow/rundir.js";
import { CHART_CSS, escapeHtml, lineChart, type Series } from "./svg.js";

interface StepRecord { type: "step"; step: number; loss: number; losses: Record<string, number>; lr: number; examples_per_sec: number }
interface EpochRecord { type: "epoch"; epoch: number; step: number; train_loss: number | null; valid_loss: number | null; valid: FunnelMetrics | null }

const TASK_LABEL: Record<string, string> = { ctr: "CTR (impressions)", cvr: "CVR (clicked)", ctcvr: "CTCVR (impressions)" };

/** Area under a polyline of (x, y) points sorted by x (the trapezoid rule). */
function trapezoidArea(points: readonly (readonly [number, number])[]): number {
  let area = 0;
  for (let i = 1; i < points.length; i++) area += (points[i]![0] - points[i - 1]![0]) * (points[i]![1] + points[i - 1]![1]) / 2;
  return area;
}

export function buildReport(runDir: string): string {
  const manifest = readJson<RunManifest>(join(runDir, RUN_FILES.run), "run.json");
  const summary = existsSync(join(runDir, RUN_FILES.summary)) ? readJson<RunSummary>(join(runDir, RUN_FILES.summary), "summary.json") : null;
  const curves = existsSync(join(runDir, RUN_FILES.curves)) ? readJson<FunnelCurves & { epoch: number; step: number }>(join(runDir, RUN_FILES.curves), "curves.json") : null;
  const records = existsSync(join(runDir, RUN_FILES.metrics))
    ? readFileSync(join(runDir, RUN_FILES.metrics), "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as StepRecord | EpochRecord)
    : [];
  const steps = records.filter((r): r is StepRecord => r.type === "step");
  const epochs = records.filter((r): r is EpochRecord => r.type === "epoch");

  const charts: string[] = [];
  const lossTerms = [...new Set(steps.flatMap((s) => Object.keys(s.losses ?? {})))];
  charts.push(lineChart([
    { name: "loss", points: steps.map((s) => ({ x: s.step, y: s.loss })) },
    ...lossTerms.map((k): Series => ({ name: `loss_${k}`, points: steps.map((s) => ({ x: s.step, y: s.losses[k] ?? NaN })) })),
    { name: "valid loss (epoch end)", points: epochs.map((e) => ({ x: e.step, y: e.valid_loss ?? NaN })), dashed: true, markers: true },
  ], { title: "Training loss", xLabel: "step", yLabel: "loss (window mean)" }));
  const aucKeys = ["ctr_auc", "cvr_auc", "ctcvr_auc", "cvr_auc_entire", "ctr_gauc"] as const;
  const aucSeries = aucKeys.filter((k) => epochs.some((e) => e.valid?.[k] != null)).map((k) => ({ name: k, points: epochs.map((e) => ({ x: e.epoch, y: e.valid?.[k] ?? NaN })) }));
  const aucValues = aucSeries.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite);
  // A margin around the values, so points at the extremes are not drawn on the frame.
  const aucRange: [number, number] | undefined = aucValues.length ? [Math.max(0, Math.min(...aucValues) - 0.01), Math.min(1, Math.max(...aucValues) + 0.01)] : undefined;
  charts.push(lineChart(aucSeries, { title: "Validation AUC per epoch", xLabel: "epoch", yLabel: "AUC", markers: true, xIntegers: true, ...(aucRange ? { yRange: aucRange } : {}) }));
  charts.push(lineChart([{ name: "lr", points: steps.map((s) => ({ x: s.step, y: s.lr })) }], { title: "Learning rate", xLabel: "step", yLabel: "lr", width: 360, height: 240 }));
  charts.push(lineChart([{ name: "examples/s", points: steps.map((s) => ({ x: s.step, y: s.examples_per_sec })) }], { title: "Throughput", xLabel: "step", yLabel: "examples/s", width: 360, height: 240 }));

  const rocCharts: string[] = [];
  const best = summary?.best?.metrics ?? null;
  if (curves) {
    for (const task of TASKS) {
      const roc = curves.roc[task];
      if (!roc) continue;
      // The exact AUC of the best state where the summary has it; else the area under the drawn curve.
      const exact = best?.[`${task}_auc` as keyof FunnelMetrics];
      const auc = typeof exact === "number" ? exact : trapezoidArea(roc.map((p) => [p.fpr, p.tpr]));
      rocCharts.push(lineChart([
        { name: `${task.toUpperCase()} ROC (AUC ${auc.toFixed(4)})`, points: roc.map((p) => ({ x: p.fpr, y: p.tpr })) },
        { name: "chance", points: [{ x: 0, y: 0 }, { x: 1, y: 1 }], dashed: true },
      ], { title: `ROC — ${TASK_LABEL[task]}`, xLabel: "false positive rate", yLabel: "true positive rate", xRange: [0, 1], yRange: [0, 1], width: 340, height: 320 }));
    }
    const cal = TASKS.filter((t) => curves.calibration[t]?.length);
    const top = Math.max(1e-6, ...cal.flatMap((t) => curves.calibration[t]!.flatMap((b) => [b.predicted, b.observed])));
    rocCharts.push(lineChart([
      ...cal.map((t): Series => ({ name: `${t.toUpperCase()}`, points: curves.calibration[t]!.map((b) => ({ x: b.predicted, y: b.observed })) })),
      { name: "perfect calibration", points: [{ x: 0, y: 0 }, { x: top, y: top }], dashed: true },
    ], { title: "Reliability (10 equal-count bins)", xLabel: "mean predicted probability", yLabel: "observed rate", xRange: [0, top], yRange: [0, top], width: 400, height: 320 }));
  }

  const metricRows = best
    ? METRIC_COLUMNS.filter((c) => best[c.key] != null).map((c) => `<tr><td>${escapeHtml(c.label)}</td><td class="num">${formatMetric(best[c.key] as number, c.key)}</td></tr>`).join("")
    : "";
  const { schema, ...modelSettings } = manifest.modelConfig;
  const schemaJson = schema as { features?: { name: string; kind: string; table?: string; dim?: number; vocab_size?: number; hash_buckets?: number; max_len?: number }[] } | undefined;
  const featureRows = (schemaJson?.features ?? []).map((f) => `<tr><td>${escapeHtml(f.name)}</td><td>${escapeHtml(f.kind)}</td><td>${escapeHtml(f.table ?? "")}</td><td class="num">${f.vocab_size ?? (f.hash_buckets !== undefined ? `${f.hash_buckets} (hashed)` : "")}</td><td class="num">${f.dim ?? ""}</td><td class="num">${f.max_len ?? ""}</td></tr>`).join("");
  const kv = (rows: [string, string][]) => `<table class="kv">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join("")}</table>`;

  const runRows: [string, string][] = [
    ["model", manifest.model], ["mtl version", manifest.mtlVersion], ["created", manifest.createdAt],
    ["status", summary?.status ?? "not finished (no summary.json)"],
    ["steps / epochs", summary ? `${summary.steps} / ${summary.epochs}` : "-"],
    ["examples trained on", summary ? summary.examples.toLocaleString("en-US") : "-"],
    ["wall time (last session)", summary ? `${summary.seconds.toFixed(1)} s` : "-"],
    ["best", summary?.best ? `${summary.earlyStoppingMetric} ${summary.best.value.toFixed(4)} at epoch ${summary.best.epoch} (step ${summary.best.step})` : "no validation set"],
  ];
  const dataRows: [string, string][] = [
    ["train", manifest.data.train], ["train rows", manifest.data.trainRows?.toLocaleString("en-US") ?? "unknown (text file)"],
    ["validation", manifest.data.valid ?? (manifest.data.validFraction > 0 ? `${(manifest.data.validFraction * 100).toFixed(0)}% of train held out by sample id` : "none")],
    ["validation rows (impressions / clicks / conversions)", best ? `${best.impressions} / ${best.clicks} / ${best.conversions}` : "-"],
    ["schema", schemaJson ? `${schemaJson.features?.length ?? 0} features` : "-"],
  ];
  const t = manifest.training;
  const configRows: [string, string][] = [
    ["optimizer", JSON.stringify(manifest.optimizer)], ["learning rate", `${t.lr} (${JSON.stringify(t.schedule)})`],
    ["batch size", String(t.batchSize)], ["epochs", String(t.epochs)], ["seed", String(t.seed)],
    ["early stopping", t.patience > 0 ? `${t.earlyStoppingMetric}, patience ${t.patience}` : "off"],
    ["checkpoint every / log every", `${t.checkpointEvery} / ${t.logEvery} steps`],
    ...(t.clipNorm !== undefined ? [["gradient clip (global norm)", String(t.clipNorm)] as [string, string]] : []),
    ["model settings", JSON.stringify(modelSettings)],
  ];

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`mtl report — ${manifest.model}`)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0} td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{font-weight:600;color:#444} .num{text-align:right;font-variant-numeric:tabular-nums}
.kv th{width:280px} .cols{display:flex;gap:32px;flex-wrap:wrap} .muted{color:#777}
${CHART_CSS}
</style></head><body>
<h1>${escapeHtml(manifest.model)} — training report</h1>
<p class="muted">${escapeHtml(runDir)}</p>
<div class="cols"><section><h2>Run</h2>${kv(runRows)}</section><section><h2>Data</h2>${kv(dataRows)}</section></div>
<h2>Validation metrics of the best state</h2>
${best ? `<table class="metrics"><tr><th>metric</th><th>value</th></tr>${metricRows}</table>${best.threshold !== undefined ? `<p class="muted">accuracy, precision, recall and F1 at the threshold ${best.threshold}</p>` : ""}${Object.keys(best.not_computable ?? {}).length ? `<p class="muted">not computable on the validation rows: ${escapeHtml(Object.entries(best.not_computable).map(([k, why]) => `${k} (${why})`).join("; "))}</p>` : ""}` : `<p class="muted">no validation set</p>`}
<h2>Curves</h2>
<div class="charts">${charts.join("\n")}</div>
<h2>ROC and calibration${curves ? ` (best state, epoch ${curves.epoch}, on the validation set)` : ""}</h2>
${rocCharts.length ? `<div class="charts">${rocCharts.join("\n")}</div>` : `<p class="muted">no validation curves (curves.json) in this run</p>`}
<h2>Configuration</h2>
${kv(configRows)}
${featureRows ? `<details><summary>Feature schema (${schemaJson!.features!.length} features)</summary><table><tr><th>feature</th><th>kind</th><th>table</th><th>rows</th><th>dim</th><th>max ids</th></tr>${featureRows}</table></details>` : ""}
</body></html>
`;
}
