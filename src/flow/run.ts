/**
 * A training run: the epoch loop behind `mtl train`, writing the run directory of ./rundir.ts.
 * trainRun reads as its steps: resume or start, open the data, then per epoch fit chunks of batches
 * with a checkpoint between them, validate, decide on early stopping, checkpoint; last the summary.
 *
 * Exact resume: an epoch's batch order depends only on (seed, epoch); a resumed run skips the batches
 * the checkpoint had already taken in its epoch, and the state carries the optimizer slots, the step
 * count (the schedule's input) and the dropout PRNG. fit() runs over chunks of batches between
 * checkpoints (never checkpointing inside onStep, where the state is mid-pipeline).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { MtlError } from "../errors.js";
import type { Batch as DataBatch, Layout } from "../features/batch.js";
import { parseSchema, toSchemaJson, type FeatureSchema } from "../features/schema.js";
import { openDataSource, type DataSource } from "../data/source.js";
import type { SplitPart } from "../data/batcher.js";
import { PredictionCollector, type FunnelMetrics } from "../metrics/funnel.js";
import type { RegisteredModel } from "../models/index.js";
import { resolveOptimizer, type OptimizerConfig } from "../optim/index.js";
import type { Device } from "../runtime/session.js";
import { VERSION } from "../version.js";
import { stepFeeds } from "../models/feeds.js";
import { buildEvalProgram, buildTrainingStep, describeModel } from "../train/program.js";
import { initialState, RESUMABLE_STATE_FORMAT, TrainingState } from "../train/state.js";
import { Trainer } from "../train/trainer.js";
import { ioError, isStdio, writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { applySchemaOverrides, autoLogEvery, higherIsBetter, resolveEarlyStoppingMetric, type RunConfig, type TrainingSettings } from "./config.js";
import { checkPaddleRecSchema } from "./paddlerec.js";
import { learningRate } from "./schedule.js";
import { checkpointIdentity, checkRunDirectory, lockRunDirectory, lookupModel, manifestSchema, modelConfigOf, readJson, RUN_FILES, runPaths, verifyCheckpoint, type CheckpointIdentity, type RunManifest, type RunPaths, type RunProgress, type RunSummary } from "./rundir.js";

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

/** Where a run begins: a fresh run from the caller's config, or a resumed one from its directory. */
interface RunStart {
  config: RunConfig;
  /** run.json of a resumed run; a fresh run writes its own once the programs load. */
  manifest: RunManifest | null;
  /** The resumed run's schema, validated once. */
  schema: FeatureSchema | null;
  state: TrainingState | null;
  progress: RunProgress;
}

/** The data a run reads: the training source, the validation source or split, and the layout. */
interface RunData {
  train: DataSource;
  valid: DataSource | null;
  layout: Layout;
  schema: FeatureSchema;
  /** The fraction of `train` held out for validation (0 with a separate validation source). */
  validFraction: number;
  trainPart: SplitPart;
  hasValid: boolean;
}

/** What the steps of one run share. */
interface Run {
  paths: RunPaths;
  config: RunConfig;
  t: TrainingSettings;
  manifest: RunManifest;
  /** What every checkpoint of the run records about its model (verifyCheckpoint reads it back). */
  identity: CheckpointIdentity;
  data: RunData;
  state: TrainingState;
  trainer: Trainer;
  progress: RunProgress;
  emit: (e: RunEvent) => void;
  signal: AbortSignal | undefined;
  lastCheckpointStep: number | null;
  lastValid: FunnelMetrics | null;
  validRows: number | null;
}

/** Trains a run in directory `opts.out`, which it locks for the duration (a second writer fails at once). */
export async function trainRun(opts: TrainRunOptions): Promise<RunSummary> {
  const started = Date.now();
  const paths = runPaths(opts.out);
  if (!opts.resume) checkRunDirectory(opts.out);
  try {
    mkdirSync(opts.out, { recursive: true });
  } catch (err) {
    throw ioError(err, opts.out, "run directory");
  }
  const unlock = lockRunDirectory(opts.out);
  try {
    return await lockedRun(opts, paths, started);
  } finally {
    unlock();
  }
}

/** trainRun with the run directory locked. */
async function lockedRun(opts: TrainRunOptions, paths: RunPaths, started: number): Promise<RunSummary> {
  const begun = opts.resume ? resumeRun(opts.out, paths) : startRun(opts.out, paths, opts.config);
  const config = withAbsoluteData(begun.config);
  const train = config.data.train;
  if (!train) throw new MtlError("E_USAGE", "no training data", { hint: "pass --train <file|synth:rows=N,...> or set data.train in the config" });
  const entry = lookupModel(config.model, opts.models);
  const data = await openRunData(config, train, begun.schema);
  let interrupted = false;
  let run: Run;
  try {
    const modelConfig = validateModelConfig(entry, config, begun.manifest ? begun.schema : data.schema, begun.manifest, paths.run);
    if (begun.manifest && begun.state) verifyCheckpoint(begun.state, paths.checkpoint, begun.manifest, entry, modelConfig, begun.schema);
    const evalProgram = buildEvalProgram(entry.definition, modelConfig);
    const stepsPerEpoch = data.train.rows !== null ? Math.ceil((data.train.rows * (1 - data.validFraction)) / config.training.batchSize) : null;
    // "auto" follows the model: a CTR-only model watches ctr_auc, never ctcvr_auc (run.json keeps the resolved name).
    // logEvery 0 is about 1% of the run; resolved before run.json is written, so a resumed run logs on the same steps.
    const t = {
      ...config.training,
      earlyStoppingMetric: resolveEarlyStoppingMetric(config.training.earlyStoppingMetric, evalProgram.signature.predictions),
      logEvery: config.training.logEvery === 0 ? autoLogEvery(stepsPerEpoch, config.training.epochs) : config.training.logEvery,
    };
    config.training = t;
    const state = begun.state ?? initialState(describeModel(entry.definition, modelConfig), config.optimizer, { seed: t.seed });
    // The rows' update runs in the session's write-back (bit-identical, cheaper). Where the step then
    // has no ScatterND (lookupGrads) it is reproducible on several onnxruntime threads: two, which
    // sleep when idle so the trainer's thread keeps its core for the next batch's rows.
    const train = buildTrainingStep(entry.definition, modelConfig, { optimizer: config.optimizer, rowUpdate: "host", ...(t.clipNorm !== undefined ? { clipNorm: t.clipNorm } : {}) });
    const threads = opts.intraOpThreads ?? (train.signature.lookupGrads ? 2 : 1);
    const trainer = await Trainer.create(state, { train, eval: evalProgram }, {
      ...(opts.device ? { device: opts.device } : {}), intraOpThreads: threads, ...(threads > 1 ? { spinning: false } : {}),
    });
    try {
      // Written once the programs load (a bad device or model leaves no half-made run behind).
      const manifest = begun.manifest ?? writeManifest(paths, config, modelConfig, data);
      if (begun.manifest) trimMetrics(paths.metrics, begun.progress);
      run = {
        paths, config, t, manifest, identity: checkpointIdentity(manifest, begun.schema ?? data.schema), data, state, trainer, progress: begun.progress,
        emit: opts.onEvent ?? (() => undefined), signal: opts.signal,
        lastCheckpointStep: opts.resume ? begun.progress.step : null, lastValid: null, validRows: null,
      };
      run.emit({ kind: "start", resumedFrom: run.progress.step, stepsPerEpoch, epochs: t.epochs });
      while (run.progress.epoch < t.epochs && !run.progress.finished) {
        if (opts.signal?.aborted || !(await trainEpoch(run))) {
          interrupted = true;
          break;
        }
        const validation = data.hasValid ? await validate(run) : null;
        closeEpoch(run, validation);
        checkpoint(run);
      }
    } finally {
      await trainer.release();
    }
  } finally {
    await data.train.close();
    await data.valid?.close();
  }
  return writeSummary(run, interrupted, started);
}

/** A fresh run: refuses a directory that already holds one. */
function startRun(out: string, paths: RunPaths, config: RunConfig): RunStart {
  if (existsSync(paths.checkpoint)) {
    throw new MtlError("E_RUN", `${out} already holds a run (${RUN_FILES.checkpoint})`, { where: { file: out }, hint: "pass --resume to continue it, or choose another --out" });
  }
  const progress: RunProgress = { epoch: 0, batchInEpoch: 0, step: 0, examples: 0, bestValue: null, bestEpoch: null, bestStep: null, badEpochs: 0, finished: null, window: { loss: 0, losses: {}, steps: 0, examples: 0 }, epochLoss: 0, epochSteps: 0 };
  return { config, manifest: null, schema: null, state: null, progress };
}

/** A resumed run: its settings from run.json, its state and position from the checkpoint. */
function resumeRun(out: string, paths: RunPaths): RunStart {
  if (!existsSync(paths.run) || !existsSync(paths.checkpoint)) {
    throw new MtlError("E_RUN", `nothing to resume in ${out}: no ${existsSync(paths.run) ? RUN_FILES.checkpoint : RUN_FILES.run}`, { where: { file: out }, hint: "start the run without --resume" });
  }
  const manifest = readJson<RunManifest>(paths.run, "run.json");
  const config: RunConfig = {
    model: manifest.model, modelConfig: manifest.modelConfig, optimizer: manifest.optimizer as OptimizerConfig, training: manifest.training,
    data: { train: manifest.data.train, ...(manifest.data.valid ? { valid: manifest.data.valid } : {}) }, schemaOverrides: manifest.schemaOverrides,
  };
  const state = TrainingState.load(paths.checkpoint);
  if (state.formatVersion < RESUMABLE_STATE_FORMAT) {
    throw new MtlError("E_CHECKPOINT", `${RUN_FILES.checkpoint} is state format version ${state.formatVersion}, whose dropout PRNG (mulberry32) this mtl no longer draws from; it continues runs from version ${RESUMABLE_STATE_FORMAT} on`, { where: { file: paths.checkpoint }, hint: "start the run again in a new directory; eval, export and report still read this one" });
  }
  const progress = state.info["progress"] as RunProgress;
  if (!progress) throw new MtlError("E_RUN", "the checkpoint has no run progress", { where: { file: paths.checkpoint } });
  // Finished but killed before summary.json: resuming just writes the summary.
  if (progress.finished && existsSync(paths.summary)) throw new MtlError("E_RUN", `the run already finished (${progress.finished}, step ${progress.step})`, { where: { file: out }, hint: "start a new run in another directory" });
  const schema = manifest.modelConfig["schema"] !== undefined ? manifestSchema(manifest, paths.run) : null;
  return { config, manifest, schema, state, progress };
}

/** Data files by absolute path in run.json: a resume or an eval from another directory finds them. */
function withAbsoluteData(config: RunConfig): RunConfig {
  const absolute = (spec: string | undefined) => (spec === undefined || spec.startsWith("synth:") || isStdio(spec) ? spec : resolve(spec));
  const next = { ...config, data: { ...config.data, train: absolute(config.data.train), valid: absolute(config.data.valid), test: absolute(config.data.test) } };
  if (next.data.valid === undefined) delete next.data.valid;
  if (next.data.test === undefined) delete next.data.test;
  return next;
}

/** Opens the training data (the schema: the run's, else the config's file with PaddleRec's overrides) and the validation data. */
async function openRunData(config: RunConfig, train: string, schemaFromRun: FeatureSchema | null): Promise<RunData> {
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
  const valid = config.data.valid ? await openDataSource(config.data.valid, { schema: source.layout.schema }) : null;
  const validFraction = valid ? 0 : config.training.validFraction;
  return {
    train: source, valid, layout: source.layout, schema: source.layout.schema, validFraction,
    trainPart: validFraction > 0 ? "train" : "all", hasValid: valid !== null || validFraction > 0,
  };
}

/** The model's config, validated; an error on a key from the config file points at its line. */
function validateModelConfig(entry: RegisteredModel, config: RunConfig, schema: FeatureSchema | null, manifest: RunManifest | null, runFile: string): unknown {
  const raw = manifest ? modelConfigOf(manifest, runFile, schema ?? undefined) : { ...(entry.defaults as Record<string, unknown>), ...config.modelConfig, schema };
  try {
    return entry.validate(raw, manifest ? runFile : config.source?.file ?? "modelConfig");
  } catch (err) {
    const field = err instanceof MtlError ? err.where.field : undefined;
    const line = field !== undefined ? config.source?.lines[`modelConfig.${field}`] : undefined;
    if (err instanceof MtlError && line !== undefined) throw new MtlError(err.code, err.message, { where: { file: config.source!.file, line, field: `modelConfig.${field}` }, ...(err.hint ? { hint: err.hint } : {}) });
    throw err;
  }
}

/** run.json of a fresh run, and an empty metrics.jsonl. */
function writeManifest(paths: RunPaths, config: RunConfig, modelConfig: unknown, data: RunData): RunManifest {
  const manifest: RunManifest = {
    mtlVersion: VERSION, model: config.model,
    modelConfig: { ...(modelConfig as Record<string, unknown>), schema: toSchemaJson(data.schema) },
    optimizer: resolveOptimizer(config.optimizer), training: config.training,
    data: { train: config.data.train!, valid: config.data.valid ?? null, test: config.data.test ?? null, validFraction: data.validFraction, trainRows: data.train.rows },
    schemaOverrides: config.schemaOverrides, createdAt: new Date().toISOString(),
  };
  writeJsonAtomic(paths.run, manifest, "run manifest");
  writeFileAtomic(paths.metrics, "", "metrics");
  return manifest;
}

/**
 * On resume, records written after the checkpoint will be written again: drop them. A last line cut
 * short (a crash during its append) is dropped too; a broken line before it is damage, refused.
 */
function trimMetrics(file: string, progress: RunProgress): void {
  const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n") : [];
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === "") last--;
  const kept = lines.filter((l, i) => {
    if (!l.trim()) return false;
    let r: { type: string; step: number; epoch: number };
    try {
      r = JSON.parse(l) as typeof r;
    } catch {
      if (i === last) return false;
      throw new MtlError("E_RUN", "a metrics record is not valid JSON", { where: { file, line: i + 1 }, hint: "the run directory is damaged; remove the line to resume" });
    }
    return r.type === "epoch" ? r.epoch <= progress.epoch : r.step <= progress.step;
  });
  writeFileAtomic(file, kept.map((l) => l + "\n").join(""), "metrics");
}

function record(run: Run, r: Record<string, unknown>): void {
  try {
    appendFileSync(run.paths.metrics, JSON.stringify(r) + "\n");
  } catch (err) {
    throw ioError(err, run.paths.metrics, "metrics");
  }
}

/**
 * Trains the rest of the epoch in progress, in chunks of batches up to the next checkpoint step,
 * checkpointing between chunks. False when the caller's signal stopped it before the epoch's end.
 */
async function trainEpoch(run: Run): Promise<boolean> {
  const { t, data, progress } = run;
  const it = data.train.batches({ batchSize: t.batchSize, seed: t.seed, epoch: progress.epoch, validFraction: data.validFraction, part: data.trainPart })[Symbol.asyncIterator]();
  for (let k = 0; k < progress.batchInEpoch; k++) if ((await it.next()).done) break;
  const clock = { since: Date.now() };
  for (;;) {
    const exhausted = await fitChunk(run, it, clock);
    if (exhausted) return true;
    checkpoint(run);
    if (run.signal?.aborted) return false;
  }
}

/** Fits the batches up to the next checkpoint step (or the epoch's end); true when the epoch ran out of batches. */
async function fitChunk(run: Run, it: AsyncIterator<DataBatch>, clock: { since: number }): Promise<boolean> {
  const { t, state, progress } = run;
  const epoch = progress.epoch;
  const room = t.checkpointEvery - (state.step % t.checkpointEvery);
  let taken = 0;
  let exhausted = false;
  const sizes: number[] = [];
  async function* chunk() {
    while (taken < room && !run.signal?.aborted) {
      const r = await it.next();
      if (r.done) {
        exhausted = true;
        return;
      }
      taken++;
      sizes.push(r.value.size);
      yield stepFeeds(r.value, run.data.layout);
    }
  }
  const firstStep = state.step + 1;
  await run.trainer.fit(chunk(), {
    lr: (s) => learningRate(t.lr, t.schedule, s),
    onStep: (r, step) => {
      if (!Number.isFinite(r.loss)) throw nanError(`the loss is ${r.loss} at step ${step} (epoch ${epoch + 1})`, step, run.lastCheckpointStep, run.paths.checkpoint);
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
      run.emit({ kind: "step", step, epoch, batchInEpoch: progress.batchInEpoch + (step - firstStep) + 1, loss: r.loss, lr, examples: progress.examples });
      if (step % t.logEvery === 0) {
        const secs = Math.max((Date.now() - clock.since) / 1000, 1e-6);
        record(run, {
          type: "step", step, epoch: epoch + 1, loss: window.loss / window.steps,
          losses: Object.fromEntries(Object.entries(window.losses).map(([k, v]) => [k, v / window.steps])),
          lr, examples: progress.examples, examples_per_sec: Math.round(window.examples / secs), time: new Date().toISOString(),
        });
        progress.window = { loss: 0, losses: {}, steps: 0, examples: 0 };
        clock.since = Date.now();
      }
    },
  });
  progress.batchInEpoch += taken;
  progress.step = state.step;
  return exhausted;
}

interface Validation {
  valid: FunnelMetrics;
  validLoss: number | null;
  improved: boolean;
}

/** Epoch end: the validation metrics; an improvement of the early-stopping metric saves best.mtlstate and its curves. */
async function validate(run: Run): Promise<Validation> {
  const { t, data, state, progress } = run;
  const epoch = progress.epoch;
  run.emit({ kind: "evaluating", epoch });
  const batchSize = Math.max(t.batchSize, 2048);
  const batches = data.valid
    ? data.valid.batches({ batchSize, shuffle: false })
    : data.train.batches({ batchSize, shuffle: false, validFraction: data.validFraction, part: "valid" });
  const res = await evaluatePass(run.trainer, data.layout, batches);
  const valid = res.collector.metrics({ threshold: t.classificationThreshold ?? 0.5 });
  run.validRows = res.collector.size;
  // A metric these rows cannot give (one class in the split) or the model does not predict: this
  // epoch is judged by the validation loss instead, with a one-line warning; never a failure.
  const watched = validationValue(t.earlyStoppingMetric, valid, res.loss);
  if (watched.fallback) run.emit({ kind: "warning", message: `epoch ${epoch + 1}: ${watched.fallback}; ${watched.value === null ? "no best state this epoch" : "early stopping and the best state use the validation loss this epoch"}` });
  const { metric, value } = watched;
  if (progress.bestMetric !== undefined && progress.bestMetric !== metric) progress.bestValue = null; // values of two metrics do not compare
  progress.bestMetric = metric;
  const improved = value !== null && (progress.bestValue === null || (higherIsBetter(metric) ? value > progress.bestValue : value < progress.bestValue));
  if (improved) {
    progress.bestValue = value;
    progress.bestEpoch = epoch + 1;
    progress.bestStep = state.step;
    progress.badEpochs = 0;
    state.info = { ...run.identity, progress: { ...progress, epoch: epoch + 1, batchInEpoch: 0 }, validMetrics: valid };
    state.save(run.paths.best);
    writeJsonAtomic(run.paths.curves, { epoch: epoch + 1, step: state.step, ...res.collector.curves() }, "curves");
  } else {
    progress.badEpochs++;
  }
  run.lastValid = valid;
  return { valid, validLoss: res.loss, improved };
}

/** The epoch's record, then the early-stopping decision: the run is finished early, finished, or goes on. */
function closeEpoch(run: Run, validation: Validation | null): void {
  const { t, state, progress } = run;
  const epoch = progress.epoch;
  const valid = validation?.valid ?? null, validLoss = validation?.validLoss ?? null, improved = validation?.improved ?? false;
  const trainLoss = progress.epochSteps ? progress.epochLoss / progress.epochSteps : NaN;
  record(run, { type: "epoch", epoch: epoch + 1, step: state.step, train_loss: Number.isFinite(trainLoss) ? trainLoss : null, valid_loss: validLoss, valid, improved, examples: progress.examples, time: new Date().toISOString() });
  run.emit({ kind: "epoch", epoch, step: state.step, trainLoss, valid, validLoss, improved });
  progress.epoch = epoch + 1;
  progress.batchInEpoch = 0;
  progress.epochLoss = 0;
  progress.epochSteps = 0;
  if (run.data.hasValid && t.patience > 0 && progress.badEpochs >= t.patience && progress.epoch < t.epochs) progress.finished = "early_stopped";
  else if (progress.epoch >= t.epochs) progress.finished = "completed";
}

/** Saves the state with the run's position (refusing a state that holds a NaN), then progress.json. */
function checkpoint(run: Run): void {
  const { state, progress, paths } = run;
  const bad = nonFiniteTensor(state);
  if (bad) throw nanError(`tensor '${bad}' holds a NaN or Inf after step ${state.step}`, state.step, run.lastCheckpointStep, paths.checkpoint);
  progress.step = state.step;
  state.info = { ...run.identity, progress };
  state.save(paths.checkpoint);
  writeJsonAtomic(paths.progress, progress, "progress");
  run.lastCheckpointStep = state.step;
  run.emit({ kind: "checkpoint", step: state.step, path: paths.checkpoint });
}

/** summary.json (not for an interrupted run, which a resume continues). */
function writeSummary(run: Run, interrupted: boolean, started: number): RunSummary {
  const { paths, progress } = run;
  let best: RunSummary["best"] = null;
  let bestMetric = run.t.earlyStoppingMetric;
  if (existsSync(paths.best)) {
    const b = TrainingState.load(paths.best);
    const p = b.info["progress"] as RunProgress;
    best = { epoch: p.bestEpoch!, step: p.bestStep!, value: p.bestValue!, metrics: b.info["validMetrics"] as FunnelMetrics };
    bestMetric = p.bestMetric ?? bestMetric;
  }
  const summary: RunSummary = {
    status: interrupted ? "interrupted" : progress.finished ?? "completed", steps: progress.step, epochs: progress.epoch, examples: progress.examples,
    seconds: (Date.now() - started) / 1000,
    data: { ...run.manifest.data, validRows: run.validRows }, earlyStoppingMetric: bestMetric, best, lastValid: run.lastValid,
  };
  if (!interrupted) writeJsonAtomic(paths.summary, summary, "summary");
  run.emit({ kind: "done", summary });
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

function nonFiniteTensor(state: TrainingState): string | null {
  for (const [name, t] of state.tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return name;
  }
  return null;
}

function nanError(what: string, step: number, lastGood: number | null, path: string): MtlError {
  return new MtlError("E_NAN", `training stopped at step ${step}: ${what}`, {
    hint: lastGood === null
      ? "no checkpoint was written before it; lower the learning rate (--lr) or clip gradients (training.clipNorm)"
      : `the last good checkpoint is ${path} (step ${lastGood}); lower the learning rate or set training.clipNorm, then start again`,
  });
}
