/**
 * `mtl demo`: the quick start on the built-in synthetic funnel (data with known truth, no files to
 * bring). Trains the naive CVR baseline, ESMM and ESCM2 — those of them the registry has — on the
 * same data with the same settings, compares them on the held-out impressions, exports the best
 * (by CTCVR AUC: the score a ranker sorts by) as an inference model, and scores a few held-out
 * records with the exported file through onnxruntime.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { openDataSource } from "../data/source.js";
import { MtlError } from "../errors.js";
import type { Batch as DataBatch } from "../features/batch.js";
import type { FunnelMetrics } from "../metrics/funnel.js";
import { MODELS } from "../models/index.js";
import { exportInferenceModel } from "../export/inference.js";
import { Scorer } from "../scoring/scorer.js";
import { defaultRunConfig } from "../flow/config.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { trainRun, type RunEvent } from "../flow/run.js";

/** The demo's line-up: a role and the registry name that fills it. */
export const DEMO_LINEUP: readonly { role: string; name: string }[] = [
  { role: "naive CVR baseline", name: "naive" },
  { role: "ESMM", name: "esmm" },
  { role: "ESCM2", name: "escm2" },
];

export interface DemoOptions {
  out: string;
  rows: number;
  bias: number;
  seed: number;
  epochs: number;
  batchSize?: number;
  lr?: number;
  /** Model settings applied to every model (e.g. smaller towers for a quick test). */
  modelConfig?: Record<string, unknown>;
  onEvent?: (model: string, e: RunEvent) => void;
  onMessage?: (line: string) => void;
}

export interface DemoResult {
  data: string;
  models: { name: string; role: string; runDir: string; seconds: number; metrics: FunnelMetrics }[];
  missing: string[];
  best: string;
  exported: string;
  scored: { sample: number; click: number; conversion: number; trueCvr: number | null; p_ctr: number | null; p_cvr: number | null; p_ctcvr: number | null }[];
  seconds: number;
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const say = opts.onMessage ?? (() => undefined);
  const missing = DEMO_LINEUP.filter((l) => !(l.name in MODELS)).map((l) => l.role);
  const chosen = DEMO_LINEUP.filter((l) => l.name in MODELS);
  if (chosen.length === 0) throw new MtlError("E_CONFIG", "none of the demo's models is registered", { hint: `looked for ${DEMO_LINEUP.map((l) => l.name).join(", ")}` });
  if (missing.length) say(`not in this build, left out: ${missing.join(", ")}`);
  mkdirSync(opts.out, { recursive: true });
  const data = `synth:rows=${opts.rows},seed=${opts.seed},bias=${opts.bias}`;
  const results: DemoResult["models"] = [];
  for (const m of chosen) {
    const config = defaultRunConfig();
    config.model = m.name;
    config.data.train = data;
    config.modelConfig = { ...(opts.modelConfig ?? {}) };
    config.training = {
      ...config.training, epochs: opts.epochs, batchSize: opts.batchSize ?? 1024, lr: opts.lr ?? 0.001, seed: opts.seed,
      validFraction: 0.2, checkpointEvery: 100_000, logEvery: 20,
    };
    const runDir = join(opts.out, m.name);
    say(`training ${m.role} (${m.name}) on ${data} -> ${runDir}`);
    const summary = await trainRun({ config, out: runDir, intraOpThreads: 1, onEvent: (e) => opts.onEvent?.(m.name, e) });
    if (!summary.best) throw new MtlError("E_RUN", `the ${m.name} run has no validation metrics`);
    results.push({ name: m.name, role: m.role, runDir, seconds: summary.seconds, metrics: summary.best.metrics });
  }
  // The best by CTCVR AUC; models without pCTCVR rank last.
  const best = [...results].sort((a, b) => (b.metrics.ctcvr_auc ?? -1) - (a.metrics.ctcvr_auc ?? -1))[0]!;
  const exported = join(opts.out, "model.onnx");
  // The self-describing scoring file (schema, hashing, training summary in its metadata) that
  // `mtl run`, `mtl serve` and the browser page load.
  exportInferenceModel(exported, { checkpoint: best.runDir });
  say(`exported ${best.name} (best CTCVR AUC) to ${exported}`);

  // Score a few held-out impressions with the exported file.
  const source = await openDataSource(data);
  let sample: DataBatch | null = null;
  for await (const b of source.batches({ batchSize: 8, shuffle: false, validFraction: 0.2, part: "valid" })) {
    sample = b;
    break;
  }
  // The exported file's schema is the synthetic source's, so its batches score as they are.
  const scorer = await Scorer.open(exported, { worker: false });
  const scored: DemoResult["scored"] = [];
  try {
    const s = await scorer.score(sample!);
    for (let r = 0; r < sample!.size; r++) {
      scored.push({ sample: r, click: sample!.click[r]!, conversion: sample!.conversion[r]!, trueCvr: sample!.truth ? sample!.truth.cvr[r]! : null, p_ctr: s.p_ctr[r]!, p_cvr: s.p_cvr[r]!, p_ctcvr: s.p_ctcvr[r]! });
    }
  } finally {
    await scorer.release();
    await source.close();
  }
  const result: DemoResult = { data, models: results, missing, best: best.name, exported, scored, seconds: (Date.now() - started) / 1000 };
  writeJsonAtomic(join(opts.out, "demo.json"), result, "demo summary");
  return result;
}
