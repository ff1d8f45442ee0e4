/**
 * A training run: the loop behind `mtl train`, writing a run directory that eval, report, export
 * and serve read.
 *
 *   run.json             what was trained: mtlVersion, model, modelConfig (resolved; schema in the
 *                        schema file format), optimizer (resolved), training settings, data
 *   checkpoint.mtlstate  the latest TrainingState; its `info.progress` says where the run stands
 *                        (epoch, batches done in it, early-stopping bookkeeping), saved in the same
 *                        atomic write as the weights, so weights and position can never disagree
 *   progress.json        a copy of that progress for people and tools (written after the checkpoint)
 *   best.mtlstate        the state with the best validation metric so far (when there is a validation set)
 *   metrics.jsonl        {"type":"step",...} every logEvery steps; {"type":"epoch",...} with validation metrics
 *   curves.json          ROC and reliability data of the best state on the validation set (for the report)
 *   summary.json         at the end: status, steps, epochs, data, best validation metrics
 *
 * Exact resume: an epoch's batch order depends only on (seed, epoch); a resumed run skips the batches
 * the checkpoint had already taken in its epoch, and the state carries the optimizer slots, the step
 * count (the schedule's input) and the dropout PRNG. fit() runs over chunks of batches between
 * checkpoints (never checkpointing inside onStep, where the state is mid-pipeline).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, appendFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MtlError } from "../errors.js";
import type { Batch as DataBatch, Layout } from "../features/batch.js";
import { parseSchema, toSchemaJson, validateSchema, type FeatureSchema } from "../features/schema.js";
import { openDataSource, type DataSource } from "../data/source.js";
import type { SplitPart } from "../data/batcher.js";
import { PredictionCollector, type FunnelMetrics } from "../metrics/funnel.js";
import { getModel, type RegisteredModel } from "../models/index.js";
import { resolveOptimizer, type OptimizerConfig } from "../optim/index.js";
import type { Device } from "../runtime/session.js";
import { VERSION } from "../version.js";
import { stepFeeds } from "../models/feeds.js";
import { applySchemaOverrides, higherIsBetter, resolveEarlyStoppingMetric, type RunConfig, type TrainingSettings } from "./config.js";
import { buildEvalProgram, buildTrainingStep, describeModel } from "../train/program.js";
import { learningRate } from "./schedule.js";
import { checkPaddleRecSchema } from "./paddlerec.js";
import { initialState, TrainingState } from "../train/state.js";
import { Trainer } from "../train/trainer.js";

export const RUN_FILES = {
  run: "run.json", checkpoint: "checkpoint.mtlstate", progress: "progress.json", best: "best.mtlstate",
  metrics: "metrics.jsonl", curves: "curves.json", summary: "summary.json",
} as const;

/** Where a run stands; stored in the checkpoint's info and mirrored in progress.json. */
export interface RunProgress {
  /** The epoch in progress (0-based); equals epochs when training is over. */
  epoch: number;
  /** Batches of `epoch` already trained on. */
  batchInEpoch: number;
  step: number;
  examples: number;
  bestValue: number | null;
  bestEpoch: number | null;
  bestStep: number | null;
  /** Epochs in a row without improvement of the early-stopping metric. */
  badEpochs: number;
  /** The metric bestValue is of: the early-stopping metric, or "loss" where it could not be computed. */
  bestMetric?: string;
  finished: "completed" | "early_stopped" | null;
  /** Sums over the steps since the last step record and since the epoch began: resumed runs log the same numbers. */
  window: { loss: number; losses: Record<string, number>; steps: number; examples: number };
  epochLoss: number;
  epochSteps: number;
}

/** run.json. */
export interface RunManifest {
  mtlVersion: string;
  model: string;
  /** The model's resolved config; `schema` in the schema file format (snake_case, as `mtl data schema`). */
  modelConfig: Record<string, unknown>;
  optimizer: ReturnType<typeof resolveOptimizer>;
  training: TrainingSettings;
  /** `test`: the config's test data (PaddleRec's test_data_dir), evaluated after training; null when none. */
  data: { train: string; valid: string | null; test?: string | null; validFraction: number; trainRows: number | null };
  schemaOverrides: RunConfig["schemaOverrides"];
  createdAt: string;
}

export interface RunSummary {
  /** "interrupted": stopped by the caller's signal after a checkpoint (no summary.json is written then). */
  status: "completed" | "early_stopped" | "interrupted";
  steps: number;
  epochs: number;
  examples: number;
  seconds: number;
  data: RunManifest["data"] & { validRows: number | null };
  earlyStoppingMetric: string;
  best: { epoch: number; step: number; value: number; metrics: FunnelMetrics } | null;
  lastValid: FunnelMetrics | null;
}

export type RunEvent =
  | { kind: "start"; resumedFrom: number; stepsPerEpoch: number | null; epochs: number }
  | { kind: "step"; step: number; epoch: number; batchInEpoch: number; loss: number; lr: number; examples: number }
  | { kind: "evaluating"; epoch: number }
  | { kind: "epoch"; epoch: number; step: number; trainLoss: number; valid: FunnelMetrics | null; validLoss: number | null; improved: boolean }
  | { kind: "checkpoint"; step: number; path: string }
  /** Something the user should know that does not stop the run (one line). */
  | { kind: "warning"; message: string }
  | { kind: "done"; summary: RunSummary };

export interface TrainRunOptions {
  config: RunConfig;
  out: string;
  resume?: boolean;
  device?: Device;
  intraOpThreads?: number;
  /** Look models up here before the built-in registry (tests, embedders). */
  models?: Readonly<Record<string, RegisteredModel>>;
  onEvent?: (e: RunEvent) => void;
  /** Aborting stops the run at the next batch boundary, after a checkpoint: `--resume` continues exactly. */
  signal?: AbortSignal;
}

export function lookupModel(name: string, extra?: Readonly<Record<string, RegisteredModel>>): RegisteredModel {
  return extra?.[name] ?? getModel(name);
}

/** Writes a small file atomically (temp file + rename). */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  renameSync(tmp, path);
}

export function readJson<T>(path: string, what: string): T {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new MtlError("E_IO", `cannot read ${what}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file: path }, hint: "is this a run directory written by mtl train?" });
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new MtlError("E_RUN", `${what} is not valid JSON: ${(err as Error).message}`, { where: { file: path } });
  }
}

/** The model config as the model takes it: the schema (stored in file format) parsed back. */
export function modelConfigOf(manifest: Pick<RunManifest, "modelConfig">, file: string): Record<string, unknown> {
  const c = { ...manifest.modelConfig };
  if (c["schema"] !== undefined) c["schema"] = validateSchema(c["schema"], `${file}: modelConfig.schema`);
  return c;
}

/** A trained run, ready to evaluate or export: its manifest, model entry, validated config and a state. */
export interface LoadedRun {
  manifest: RunManifest;
  entry: RegisteredModel;
  config: unknown;
  schema: FeatureSchema;
  state: TrainingState;
  /** The state file loaded. */
  checkpoint: string;
}

/**
 * Loads a run directory: `which` "best" (default) takes best.mtlstate when the run has one, else the
 * latest checkpoint; "latest" takes checkpoint.mtlstate. Tables in the state are packed with their
 * optimizer slots; buildInferenceGraph(entry.definition, config, state) takes the weights out.
 */
export function loadRun(runDir: string, opts: { which?: "best" | "latest"; models?: Readonly<Record<string, RegisteredModel>> } = {}): LoadedRun {
  const runFile = join(runDir, RUN_FILES.run);
  const manifest = readJson<RunManifest>(runFile, "run.json");
  const entry = lookupModel(manifest.model, opts.models);
  const config = entry.validate(modelConfigOf(manifest, runFile), runFile);
  const best = join(runDir, RUN_FILES.best);
  const checkpoint = (opts.which ?? "best") === "best" && existsSync(best) ? best : join(runDir, RUN_FILES.checkpoint);
  const state = TrainingState.load(checkpoint);
  const schema = validateSchema(manifest.modelConfig["schema"], runFile);
  return { manifest, entry, config, schema, state, checkpoint };
}

/** The schema the data is read with: the config's file, with PaddleRec's overrides. */
async function openTrainData(config: RunConfig, train: string, schemaFromRun: FeatureSchema | null): Promise<{ source: DataSource; schema: FeatureSchema }> {
  let schema = schemaFromRun;
  if (!schema && config.data.schema) schema = parseSchema(readFileSync(config.data.schema, "utf8"), config.data.schema);
  let source = await openDataSource(train, schema ? { schema } : {});
  if (!schemaFromRun) {
    const adjusted = applySchemaOverrides(source.layout.schema, config.schemaOverrides);
    if (adjusted !== source.layout.schema) {
      await source.close();
      source = await openDataSource(train, { schema: adjusted });
    }
  }
  checkPaddleRecSchema(source.layout.schema, config.paddleRec, config.source?.file);
  return { source, schema: source.layout.schema };
}

function isFiniteState(state: TrainingState): string | null {
  for (const [name, t] of state.tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return name;
  }
  return null;
}

/** Evaluates the trainer's current state over a data pass: exact metrics and the size-weighted mean loss. */
export async function evaluatePass(trainer: Trainer, layout: Layout, batches: AsyncIterable<DataBatch>, onBatch?: (rows: number) => void): Promise<{ collector: PredictionCollector; loss: number | null }> {
  const collector = new PredictionCollector();
  let lossSum = 0, rows = 0;
  for await (const b of batches) {
    const r = await trainer.evaluate(stepFeeds(b, layout));
    collector.add(b, r.predictions);
    lossSum += r.loss * b.size;
    rows += b.size;
    onBatch?.(rows);
  }
  return { collector, loss: rows ? lossSum / rows : null };
}

export async function trainRun(opts: TrainRunOptions): Promise<RunSummary> {
  const out = opts.out;
  const paths = Object.fromEntries(Object.entries(RUN_FILES).map(([k, f]) => [k, join(out, f)])) as Record<keyof typeof RUN_FILES, string>;
  const started = Date.now();
  let config = opts.config;
  let manifest: RunManifest | null = null;
  let state: TrainingState | null = null;
  let progress: RunProgress;
  mkdirSync(out, { recursive: true });

  if (opts.resume) {
    if (!existsSync(paths.run) || !existsSync(paths.checkpoint)) {
      throw new MtlError("E_RUN", `nothing to resume in ${out}: no ${existsSync(paths.run) ? RUN_FILES.checkpoint : RUN_FILES.run}`, { where: { file: out }, hint: "start the run without --resume" });
    }
    manifest = readJson<RunManifest>(paths.run, "run.json");
    config = {
      model: manifest.model, modelConfig: manifest.modelConfig, optimizer: manifest.optimizer as OptimizerConfig, training: manifest.training,
      data: { train: manifest.data.train, ...(manifest.data.valid ? { valid: manifest.data.valid } : {}) }, schemaOverrides: manifest.schemaOverrides,
    };
    state = TrainingState.load(paths.checkpoint);
    progress = state.info["progress"] as RunProgress;
    if (!progress) throw new MtlError("E_RUN", "the checkpoint has no run progress", { where: { file: paths.checkpoint } });
    // Finished but killed before summary.json: resuming just writes the summary.
    if (progress.finished && existsSync(paths.summary)) throw new MtlError("E_RUN", `the run already finished (${progress.finished}, step ${progress.step})`, { where: { file: out }, hint: "start a new run in another directory" });
  } else {
    if (existsSync(paths.checkpoint)) {
      throw new MtlError("E_RUN", `${out} already holds a run (${RUN_FILES.checkpoint})`, { where: { file: out }, hint: "pass --resume to continue it, or choose another --out" });
    }
    progress = { epoch: 0, batchInEpoch: 0, step: 0, examples: 0, bestValue: null, bestEpoch: null, bestStep: null, badEpochs: 0, finished: null, window: { loss: 0, losses: {}, steps: 0, examples: 0 }, epochLoss: 0, epochSteps: 0 };
  }
  let t = config.training;
  // Files by absolute path in run.json: a resume or an eval from another directory finds them.
  const absolute = (spec: string | undefined) => (spec === undefined || spec.startsWith("synth:") ? spec : resolve(spec));
  config = { ...config, data: { ...config.data, train: absolute(config.data.train), valid: absolute(config.data.valid), test: absolute(config.data.test) } };
  if (config.data.valid === undefined) delete config.data.valid;
  if (config.data.test === undefined) delete config.data.test;
  const train = config.data.train;
  if (!train) throw new MtlError("E_USAGE", "no training data", { hint: "pass --train <file|synth:rows=N,...> or set data.train in the config" });
  const entry = lookupModel(config.model, opts.models);

  const schemaFromRun = manifest?.modelConfig["schema"] !== undefined ? validateSchema(manifest.modelConfig["schema"], paths.run) : null;
  const { source: trainSource, schema } = await openTrainData(config, train, schemaFromRun);
  const layout = trainSource.layout;
  const validSource = config.data.valid ? await openDataSource(config.data.valid, { schema }) : null;
  const validFraction = validSource ? 0 : t.validFraction;
  const trainPart: SplitPart = validFraction > 0 ? "train" : "all";
  const hasValid = validSource !== null || validFraction > 0;

  const rawConfig = manifest ? modelConfigOf(manifest, paths.run) : { ...(entry.defaults as Record<string, unknown>), ...config.modelConfig, schema };
  let modelConfig: unknown;
  try {
    modelConfig = entry.validate(rawConfig, manifest ? paths.run : config.source?.file ?? "modelConfig");
  } catch (err) {
    // Point at the config file's line for the key, when the key came from it.
    const field = err instanceof MtlError ? err.where.field : undefined;
    const line = field !== undefined ? config.source?.lines[`modelConfig.${field}`] : undefined;
    if (err instanceof MtlError && line !== undefined) throw new MtlError(err.code, err.message, { where: { file: config.source!.file, line, field: `modelConfig.${field}` }, ...(err.hint ? { hint: err.hint } : {}) });
    throw err;
  }
  const optimizer = config.optimizer;
  state ??= initialState(describeModel(entry.definition, modelConfig), optimizer, { seed: t.seed });
  const evalProgram = buildEvalProgram(entry.definition, modelConfig);
  // "auto" follows the model: a CTR-only model watches ctr_auc, never ctcvr_auc.
  t = { ...t, earlyStoppingMetric: resolveEarlyStoppingMetric(t.earlyStoppingMetric, evalProgram.signature.predictions) };
  const trainer = await Trainer.create(state, {
    train: buildTrainingStep(entry.definition, modelConfig, { optimizer, ...(t.clipNorm !== undefined ? { clipNorm: t.clipNorm } : {}) }),
    eval: evalProgram,
  }, { ...(opts.device ? { device: opts.device } : {}), intraOpThreads: opts.intraOpThreads ?? 1 });

  // Written once the programs load (a bad device or model leaves no half-made run behind).
  if (!manifest) {
    manifest = {
      mtlVersion: VERSION, model: config.model,
      modelConfig: { ...(modelConfig as Record<string, unknown>), schema: toSchemaJson(schema) },
      optimizer: resolveOptimizer(config.optimizer), training: t,
      data: { train, valid: config.data.valid ?? null, test: config.data.test ?? null, validFraction, trainRows: trainSource.rows },
      schemaOverrides: config.schemaOverrides, createdAt: new Date().toISOString(),
    };
    writeJsonAtomic(paths.run, manifest);
    writeFileSync(paths.metrics, "");
  } else {
    // Records written after the checkpoint will be written again: drop them.
    const kept = existsSync(paths.metrics)
      ? readFileSync(paths.metrics, "utf8").split("\n").filter((l) => {
        if (!l.trim()) return false;
        const r = JSON.parse(l) as { type: string; step: number; epoch: number };
        return r.type === "epoch" ? r.epoch <= progress.epoch : r.step <= progress.step;
      })
      : [];
    writeFileSync(paths.metrics, kept.map((l) => l + "\n").join(""));
  }

  const emit = opts.onEvent ?? (() => undefined);
  const record = (r: Record<string, unknown>) => appendFileSync(paths.metrics, JSON.stringify(r) + "\n");
  let lastCheckpointStep: number | null = opts.resume ? progress.step : null;
  const checkpoint = () => {
    const bad = isFiniteState(state!);
    if (bad) throw nanError(`tensor '${bad}' holds a NaN or Inf after step ${state!.step}`, state!.step, lastCheckpointStep, paths.checkpoint);
    progress.step = state!.step;
    state!.info = { model: config.model, progress };
    state!.save(paths.checkpoint);
    writeJsonAtomic(paths.progress, progress);
    lastCheckpointStep = state!.step;
    emit({ kind: "checkpoint", step: state!.step, path: paths.checkpoint });
  };
  const stepsPerEpoch = trainSource.rows !== null ? Math.ceil((trainSource.rows * (1 - validFraction)) / t.batchSize) : null;
  emit({ kind: "start", resumedFrom: progress.step, stepsPerEpoch, epochs: t.epochs });

  let lastValid: FunnelMetrics | null = null;
  let validRows: number | null = null;
  const evalBatches = () => validSource
    ? validSource.batches({ batchSize: Math.max(t.batchSize, 2048), shuffle: false })
    : trainSource.batches({ batchSize: Math.max(t.batchSize, 2048), shuffle: false, validFraction, part: "valid" });

  let interrupted = false;
  try {
    while (progress.epoch < t.epochs && !progress.finished) {
      if (opts.signal?.aborted) {
        interrupted = true;
        break;
      }
      const epoch = progress.epoch;
      const it = trainSource.batches({ batchSize: t.batchSize, seed: t.seed, epoch, validFraction, part: trainPart })[Symbol.asyncIterator]();
      for (let k = 0; k < progress.batchInEpoch; k++) if ((await it.next()).done) break;
      let exhausted = false;
      let since = Date.now();
      while (!exhausted) {
        const room = t.checkpointEvery - (state.step % t.checkpointEvery);
        let taken = 0;
        const sizes: number[] = [];
        async function* chunk() {
          while (taken < room && !opts.signal?.aborted) {
            const r = await it.next();
            if (r.done) {
              exhausted = true;
              return;
            }
            taken++;
            sizes.push(r.value.size);
            yield stepFeeds(r.value, layout);
          }
        }
        const firstStep = state.step + 1;
        await trainer.fit(chunk(), {
          lr: (s) => learningRate(t.lr, t.schedule, s),
          onStep: (r, step) => {
            if (!Number.isFinite(r.loss)) throw nanError(`the loss is ${r.loss} at step ${step} (epoch ${epoch + 1})`, step, lastCheckpointStep, paths.checkpoint);
            const size = sizes[step - firstStep]!;
            progress.examples += size;
            const window = progress.window;
            window.loss += r.loss;
            for (const [k, v] of Object.entries(r.losses)) window.losses[k] = (window.losses[k] ?? 0) + v;
            window.steps++;
            window.examples += size;
            progress.epochLoss += r.loss;
            progress.epochSteps++;
            const lr = learningRate(t.lr, t.schedule, step);
            emit({ kind: "step", step, epoch, batchInEpoch: progress.batchInEpoch + (step - firstStep) + 1, loss: r.loss, lr, examples: progress.examples });
            if (step % t.logEvery === 0) {
              const secs = Math.max((Date.now() - since) / 1000, 1e-6);
              record({
                type: "step", step, epoch: epoch + 1, loss: window.loss / window.steps,
                losses: Object.fromEntries(Object.entries(window.losses).map(([k, v]) => [k, v / window.steps])),
                lr, examples: progress.examples, examples_per_sec: Math.round(window.examples / secs), time: new Date().toISOString(),
              });
              progress.window = { loss: 0, losses: {}, steps: 0, examples: 0 };
              since = Date.now();
            }
          },
        });
        progress.batchInEpoch += taken;
        progress.step = state.step;
        if (!exhausted) checkpoint();
        if (opts.signal?.aborted && !exhausted) break;
      }
      if (opts.signal?.aborted && !exhausted) {
        interrupted = true;
        break;
      }
      // Epoch end: validate, keep the best, decide on early stopping, checkpoint.
      let valid: FunnelMetrics | null = null, validLoss: number | null = null, improved = false;
      if (hasValid) {
        emit({ kind: "evaluating", epoch });
        const res = await evaluatePass(trainer, layout, evalBatches());
        valid = res.collector.metrics({ threshold: t.classificationThreshold ?? 0.5 });
        validLoss = res.loss;
        validRows = res.collector.size;
        // A metric these rows cannot give (one class in the split) or the model does not predict:
        // this epoch is judged by the validation loss instead, said once per epoch; never a failure.
        const watched = validationValue(t.earlyStoppingMetric, valid, validLoss);
        if (watched.fallback) emit({ kind: "warning", message: `epoch ${epoch + 1}: ${watched.fallback}; ${watched.value === null ? "no best state this epoch" : "early stopping and the best state use the validation loss this epoch"}` });
        const metric = watched.metric;
        const value = watched.value;
        if (progress.bestMetric !== undefined && progress.bestMetric !== metric) progress.bestValue = null; // values of two metrics do not compare
        progress.bestMetric = metric;
        improved = value !== null && (progress.bestValue === null || (higherIsBetter(metric) ? value > progress.bestValue : value < progress.bestValue));
        if (improved) {
          progress.bestValue = value!;
          progress.bestEpoch = epoch + 1;
          progress.bestStep = state.step;
          progress.badEpochs = 0;
          state.info = { model: config.model, progress: { ...progress, epoch: epoch + 1, batchInEpoch: 0 }, validMetrics: valid };
          state.save(paths.best);
          writeJsonAtomic(paths.curves, { epoch: epoch + 1, step: state.step, ...res.collector.curves() });
        } else {
          progress.badEpochs++;
        }
        lastValid = valid;
      }
      const trainLoss = progress.epochSteps ? progress.epochLoss / progress.epochSteps : NaN;
      record({ type: "epoch", epoch: epoch + 1, step: state.step, train_loss: Number.isFinite(trainLoss) ? trainLoss : null, valid_loss: validLoss, valid, improved, examples: progress.examples, time: new Date().toISOString() });
      emit({ kind: "epoch", epoch, step: state.step, trainLoss, valid, validLoss, improved });
      progress.epoch = epoch + 1;
      progress.batchInEpoch = 0;
      progress.epochLoss = 0;
      progress.epochSteps = 0;
      if (hasValid && t.patience > 0 && progress.badEpochs >= t.patience && progress.epoch < t.epochs) progress.finished = "early_stopped";
      else if (progress.epoch >= t.epochs) progress.finished = "completed";
      checkpoint();
    }
  } finally {
    await trainer.release();
    await trainSource.close();
    await validSource?.close();
  }

  let best: RunSummary["best"] = null;
  let bestMetric = t.earlyStoppingMetric;
  if (existsSync(paths.best)) {
    const b = TrainingState.load(paths.best);
    const p = b.info["progress"] as RunProgress;
    best = { epoch: p.bestEpoch!, step: p.bestStep!, value: p.bestValue!, metrics: b.info["validMetrics"] as FunnelMetrics };
    bestMetric = p.bestMetric ?? bestMetric;
  }
  const summary: RunSummary = {
    status: interrupted ? "interrupted" : progress.finished ?? "completed", steps: progress.step, epochs: progress.epoch, examples: progress.examples,
    seconds: (Date.now() - started) / 1000,
    data: { ...manifest.data, validRows }, earlyStoppingMetric: bestMetric, best, lastValid,
  };
  if (!interrupted) writeJsonAtomic(paths.summary, summary);
  emit({ kind: "done", summary });
  return summary;
}

/**
 * The early-stopping value of an epoch: the metric, or the validation loss when the metric cannot be
 * computed on the validation rows (one class) or the model does not predict it; `fallback` says why.
 */
export function validationValue(metric: string, valid: FunnelMetrics, validLoss: number | null): { metric: string; value: number | null; fallback: string | null } {
  if (metric === "loss") return { metric, value: validLoss, fallback: null };
  const value = valid[metric as keyof FunnelMetrics] as number | null | undefined;
  if (typeof value === "number") return { metric, value, fallback: null };
  if (valid.impressions === 0) return { metric: "loss", value: null, fallback: `the validation set has no rows, so neither ${metric} nor the loss can be computed` };
  const why = valid.not_computable?.[metric] ?? "the model does not predict it";
  return { metric: "loss", value: validLoss, fallback: `${metric} cannot be computed on the validation set (${why})` };
}

function nanError(what: string, step: number, lastGood: number | null, path: string): MtlError {
  return new MtlError("E_NAN", `training stopped at step ${step}: ${what}`, {
    hint: lastGood === null
      ? "no checkpoint was written before it; lower the learning rate (--lr) or clip gradients (training.clipNorm)"
      : `the last good checkpoint is ${path} (step ${lastGood}); lower the learning rate or set training.clipNorm, then start again`,
  });
}
