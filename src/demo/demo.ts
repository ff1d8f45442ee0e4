/**
 * `mtl demo`: the quick start on the built-in synthetic funnel (data with known truth, no files to
 * bring). On one world fixed in advance (DEMO_WORLD: strong selection bias, so a CVR model fit to
 * clicks is biased), it trains the naive CVR baseline, ESMM and ESCM2 with the benchmark's protocol
 * (src/flow/benchmark.ts: early stopping on validation, each model's learning rate from the
 * benchmark's grid), compares them on test impressions the training never saw, and exports the
 * model with the best entire-space CVR AUC — the job: a pCVR that ranks every impression, so that
 * pCTCVR = pCTR × pCVR ranks by expected conversions — as an inference model. If the naive baseline
 * wins, it exports that and says so. A second demo in the same directory starts afresh.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openDataSource } from "../data/source.js";
import { SYNTH_PRESETS } from "../data/synth.js";
import { MtlError } from "../errors.js";
import type { Batch as DataBatch } from "../features/batch.js";
import type { FunnelMetrics } from "../metrics/funnel.js";
import { exportInferenceModel } from "../export/inference.js";
import type { Device } from "../runtime/session.js";
import { Scorer } from "../scoring/scorer.js";
import { BENCHMARK_BUDGET, cellData, trainAndTest, type BenchmarkCell, type TrainingBudget } from "../flow/benchmark.js";
import type { RunEvent } from "../flow/run.js";
import { writeJsonAtomic } from "../util/atomic.js";

/**
 * The demo's world, fixed before any demo result was seen (docs/workflow.md): the dense preset
 * (10% CTR, 20% of clicks convert) at selection bias 2, where a clicked impression's mean true CVR
 * is about four times the impression space's, on the benchmark's sizes.
 */
export const DEMO_WORLD: BenchmarkCell = { preset: "dense", bias: 2, seed: 1, impressions: 30_000, testImpressions: 20_000 };

/**
 * The line-up: a role, the registry model and its settings, and the learning rate the benchmark
 * chose for it on validation (docs/results.md, "Learning rates chosen on validation").
 */
export const DEMO_LINEUP: readonly { role: string; name: string; model: string; modelConfig: Record<string, unknown>; lr: number }[] = [
  { role: "naive CVR baseline", name: "naive", model: "naive", modelConfig: {}, lr: 0.01 },
  { role: "ESMM", name: "esmm", model: "esmm", modelConfig: {}, lr: 0.01 },
  { role: "ESCM2-DR on ESMM's towers", name: "escm2-dr", model: "escm2", modelConfig: { backbone: "towers", counterfactualMode: "DR" }, lr: 0.03 },
];

/** What the demo writes in its directory (and removes before starting afresh). */
const DEMO_OUTPUTS = [...DEMO_LINEUP.map((l) => l.name), "model.onnx", "demo.json"];

export interface DemoOptions {
  out: string;
  /** Start afresh even where the directory holds runs the demo did not write. */
  force?: boolean;
  /** Overrides of DEMO_WORLD (a quick test uses fewer impressions). */
  world?: Partial<BenchmarkCell>;
  budget?: TrainingBudget;
  /** Model settings applied to every model (e.g. smaller towers for a quick test). */
  modelConfig?: Record<string, unknown>;
  onEvent?: (model: string, e: RunEvent) => void;
  onMessage?: (line: string) => void;
  /** Where onnxruntime trains and scores (default cpu). */
  device?: Device;
}

export interface DemoResult {
  status: "done";
  world: BenchmarkCell;
  /** The world's rates on the test impressions: what selection bias does to the clicked ones. */
  worldRates: { ctr: number; cvrOfClicks: number; meanTrueCvrAll: number; meanTrueCvrClicked: number };
  data: { train: string; test: string };
  models: { name: string; role: string; lr: number; runDir: string; epochs: number; bestEpoch: number; seconds: number; metrics: FunnelMetrics }[];
  /** The exported model: the best test entire-space CVR AUC. */
  best: string;
  naiveWins: boolean;
  reading: string;
  exported: string;
  scored: { sample: number; click: number; conversion: number; trueCvr: number | null; p_ctr: number | null; p_cvr: number | null; p_ctcvr: number | null }[];
  seconds: number;
}

/** Remove the demo's own earlier output; refuse (without --force) a directory whose runs it did not write. */
function startAfresh(out: string, force: boolean): void {
  if (!existsSync(out)) return;
  const ours = existsSync(join(out, "demo.json"));
  const present = DEMO_OUTPUTS.filter((f) => existsSync(join(out, f)));
  if (present.length && !ours && !force) {
    throw new MtlError("E_USAGE", `${out} holds ${present.join(", ")} but no demo.json: not an earlier demo's output`, { where: { file: out }, hint: "pass --force to replace them, or choose another --out" });
  }
  for (const f of present) rmSync(join(out, f), { recursive: true, force: true });
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const say = opts.onMessage ?? (() => undefined);
  const world: BenchmarkCell = { ...DEMO_WORLD, ...(opts.world ?? {}) };
  const data = cellData(world);
  startAfresh(opts.out, opts.force ?? false);
  mkdirSync(opts.out, { recursive: true });
  // Marks the directory as the demo's from the start, so a demo interrupted midway is recognised next time.
  writeJsonAtomic(join(opts.out, "demo.json"), { status: "running", world }, "demo summary");

  const worldRates = await ratesOf(data.test);
  const rates = SYNTH_PRESETS[world.preset];
  say(`world: preset ${world.preset} (${pct(rates.ctr)} CTR, ${pct(rates.cvr)} of clicks convert), selection bias ${world.bias}, seed ${world.seed}: ` +
    `clicked impressions' mean true CVR ${worldRates.meanTrueCvrClicked.toFixed(3)} vs ${worldRates.meanTrueCvrAll.toFixed(3)} over all impressions (${(worldRates.meanTrueCvrClicked / worldRates.meanTrueCvrAll).toFixed(1)}x)`);
  const results: DemoResult["models"] = [];
  for (const m of DEMO_LINEUP) {
    const runDir = join(opts.out, m.name);
    say(`training ${m.role} (${m.name}, lr ${m.lr}) on ${data.train} -> ${runDir}`);
    const r = await trainAndTest({
      model: m.model, modelConfig: { ...m.modelConfig, ...(opts.modelConfig ?? {}) }, cell: world, lr: m.lr, budget: opts.budget ?? BENCHMARK_BUDGET,
      out: runDir, ...(opts.device ? { device: opts.device } : {}), onEvent: (e) => opts.onEvent?.(m.name, e),
    });
    results.push({ name: m.name, role: m.role, lr: m.lr, runDir, epochs: r.epochs, bestEpoch: r.bestEpoch, seconds: r.seconds, metrics: r.test! });
  }
  const entire = (m: DemoResult["models"][number]) => m.metrics.cvr_auc_entire ?? -1;
  const best = [...results].sort((a, b) => entire(b) - entire(a))[0]!;
  const naive = results.find((m) => m.name === "naive")!;
  const naiveWins = best.name === "naive";
  const bias = (m: DemoResult["models"][number]) => m.metrics.cvr_bias ?? NaN;
  const reading = naiveWins
    ? `the naive baseline ranks the entire space's conversions best here (CVR AUC ${entire(naive).toFixed(4)}): on this world and size the papers' models do not beat it, so the demo exports the naive baseline.`
    : `${best.role} ranks the entire space's conversions best (CVR AUC ${entire(best).toFixed(4)} vs the naive baseline's ${entire(naive).toFixed(4)}; CVR bias ${signed(bias(best))} vs ${signed(bias(naive))}): exported for ranking by pCTCVR = pCTR x pCVR.`;
  const exported = join(opts.out, "model.onnx");
  // The self-describing scoring file (schema, hashing, training summary in its metadata) that
  // `mtl run`, `mtl serve` and the browser page load.
  exportInferenceModel(exported, { checkpoint: best.runDir });
  say(`exported ${best.name} (best entire-space CVR AUC on the test impressions) to ${exported}`);

  // Score a few test impressions with the exported file.
  const source = await openDataSource(data.test);
  let sample: DataBatch | null = null;
  for await (const b of source.batches({ batchSize: 8, shuffle: false })) {
    sample = b;
    break;
  }
  // The exported file's schema is the synthetic source's, so its batches score as they are.
  const scorer = await Scorer.open(exported, { worker: false, ...(opts.device ? { device: opts.device } : {}) });
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
  const result: DemoResult = { status: "done", world, worldRates, data, models: results, best: best.name, naiveWins, reading, exported, scored, seconds: (Date.now() - started) / 1000 };
  writeJsonAtomic(join(opts.out, "demo.json"), result, "demo summary");
  return result;
}

/** The test impressions' observed rates and true CVR over all vs clicked impressions. */
async function ratesOf(spec: string): Promise<DemoResult["worldRates"]> {
  const source = await openDataSource(spec);
  let n = 0, clicks = 0, buys = 0, cvrAll = 0, cvrClicked = 0;
  try {
    for await (const b of source.batches({ batchSize: 8192, shuffle: false })) {
      for (let r = 0; r < b.size; r++) {
        n++;
        clicks += b.click[r]!;
        buys += b.conversion[r]!;
        cvrAll += b.truth!.cvr[r]!;
        if (b.click[r]) cvrClicked += b.truth!.cvr[r]!;
      }
    }
  } finally {
    await source.close();
  }
  return { ctr: clicks / n, cvrOfClicks: buys / Math.max(clicks, 1), meanTrueCvrAll: cvrAll / n, meanTrueCvrClicked: cvrClicked / Math.max(clicks, 1) };
}

const pct = (x: number) => `${+(100 * x).toFixed(2)}%`;
const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;

