/**
 * The counterfactual benchmark's protocol on the synthetic funnel (scripts/results-funnel.mjs and
 * `mtl demo` both use it), the same for every model:
 *   - a cell is a world (preset, selection bias, seed); its training impressions come from the
 *     seed's impression stream 2, its test impressions from stream 3: the same users and items,
 *     other impressions, never seen in training or validation;
 *   - a run trains up to `epochs` epochs with early stopping (`patience`) on a validation split of
 *     the training impressions (by sample id), on validation CTCVR AUC — observable on a real log,
 *     and the score a ranker sorts by;
 *   - the learning rate is chosen per model from a small grid on the same validation metric;
 *   - the best-on-validation state is then scored once on the test impressions.
 */
import { rmSync } from "node:fs";
import { openDataSource } from "../data/source.js";
import type { SynthPresetName } from "../data/synth.js";
import { PredictionCollector, type FunnelMetrics, type PropensityBin } from "../metrics/funnel.js";
import { stepFeeds } from "../models/feeds.js";
import type { Device } from "../runtime/session.js";
import { buildEvalProgram } from "../train/program.js";
import { Trainer } from "../train/trainer.js";
import { defaultRunConfig } from "./config.js";
import { trainRun, type RunEvent } from "./run.js";
import { loadRun } from "./rundir.js";

export interface BenchmarkCell {
  preset: SynthPresetName;
  bias: number;
  seed: number;
  /** Training impressions (validation split included). */
  impressions: number;
  testImpressions: number;
}

/** The stream of the test impressions (training uses the default stream 2). */
export const TEST_STREAM = 3;

/** The cell's synth specs: training (with its validation split) and test. */
export function cellData(cell: BenchmarkCell): { train: string; test: string } {
  const world = `seed=${cell.seed},bias=${cell.bias},preset=${cell.preset}`;
  return { train: `synth:rows=${cell.impressions},${world}`, test: `synth:rows=${cell.testImpressions},${world},stream=${TEST_STREAM}` };
}

/** The training budget every model gets. */
export interface TrainingBudget {
  epochs: number;
  patience: number;
  batchSize: number;
  validFraction: number;
}

export const BENCHMARK_BUDGET: TrainingBudget = { epochs: 6, patience: 1, batchSize: 1024, validFraction: 0.25 };

export interface TrainAndTestOptions {
  model: string;
  modelConfig?: Record<string, unknown>;
  cell: BenchmarkCell;
  /** Other data than the cell's synth specs (a real log: train with its validation split, and test); the cell gives the seed. */
  data?: { train: string; test: string };
  lr: number;
  budget?: TrainingBudget;
  /** The run directory (kept unless `cleanup`). */
  out: string;
  cleanup?: boolean;
  /** Score the test impressions (default true; the learning-rate grid needs validation only). */
  test?: boolean;
  onEvent?: (e: RunEvent) => void;
  /** Where onnxruntime trains and scores (default cpu). */
  device?: Device;
}

export interface TrainAndTestResult {
  model: string;
  lr: number;
  status: string;
  epochs: number;
  bestEpoch: number;
  seconds: number;
  valid: FunnelMetrics;
  test: FunnelMetrics | null;
  /** Test CVR bias by decile of true click propensity. */
  testByPropensity: PropensityBin[] | null;
}

/** One run of the protocol: train with early stopping on validation, then score the best state on the test impressions. */
export async function trainAndTest(opts: TrainAndTestOptions): Promise<TrainAndTestResult> {
  const budget = opts.budget ?? BENCHMARK_BUDGET;
  const data = opts.data ?? cellData(opts.cell);
  const config = defaultRunConfig();
  config.model = opts.model;
  config.modelConfig = { ...(opts.modelConfig ?? {}) };
  config.data.train = data.train;
  config.training = {
    ...config.training, epochs: budget.epochs, patience: budget.patience, batchSize: budget.batchSize, lr: opts.lr,
    seed: opts.cell.seed, validFraction: budget.validFraction, earlyStoppingMetric: "ctcvr_auc", checkpointEvery: 1_000_000, logEvery: 1000,
  };
  try {
    const summary = await trainRun({ config, out: opts.out, intraOpThreads: 1, ...(opts.device ? { device: opts.device } : {}), ...(opts.onEvent ? { onEvent: opts.onEvent } : {}) });
    const best = summary.best!;
    const tested = opts.test === false ? null : await testPass(opts.out, data.test, opts.device);
    return {
      model: opts.model, lr: opts.lr, status: summary.status, epochs: summary.epochs, bestEpoch: best.epoch, seconds: summary.seconds,
      valid: best.metrics, test: tested?.metrics ?? null, testByPropensity: tested?.byPropensity ?? null,
    };
  } finally {
    if (opts.cleanup) rmSync(opts.out, { recursive: true, force: true });
  }
}

/** A run's best state over a data set, single-threaded (so the digits repeat), with the propensity decomposition. */
export async function testPass(runDir: string, data: string, device?: Device): Promise<{ metrics: FunnelMetrics; byPropensity: PropensityBin[] | null }> {
  const { entry, config, schema, state } = loadRun(runDir, { which: "best" });
  const source = await openDataSource(data, { schema });
  const trainer = await Trainer.create(state, { eval: buildEvalProgram(entry.definition, config) }, { intraOpThreads: 1, ...(device ? { device } : {}) });
  try {
    const collector = new PredictionCollector();
    for await (const b of source.batches({ batchSize: 4096, shuffle: false })) {
      const r = await trainer.evaluate(stepFeeds(b, source.layout));
      collector.add(b, r.predictions);
    }
    return { metrics: collector.metrics(), byPropensity: collector.biasByPropensity(10) };
  } finally {
    await trainer.release();
    await source.close();
  }
}

/** The grid's learning rate with the best validation CTCVR AUC (ties: the smaller rate). */
export function chooseLearningRate(runs: readonly { lr: number; valid: FunnelMetrics }[]): number {
  const score = (r: { valid: FunnelMetrics }) => r.valid.ctcvr_auc ?? -Infinity;
  return [...runs].sort((a, b) => score(b) - score(a) || a.lr - b.lr)[0]!.lr;
}
