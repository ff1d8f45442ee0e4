/**
 * `mtl train --model metaheac`: MetaHeac's stage 1, meta-training over campaigns, writing a run
 * directory that `mtl adapt` and `mtl export` read (run.json, checkpoint.mtlstate, metrics.jsonl,
 * summary.json, in the formats of src/flow/run.ts).
 *
 * Each outer step (one session run of the meta step, src/train/meta.ts) samples T campaigns with
 * probability ∝ their row count, with replacement, and for each a support and a query batch of
 * `metaBatchSize` rows drawn independently (PaddleRec's reader_train.py). An epoch is
 * ceil(rows / metaBatchSize) outer steps, as PaddleRec counts them. The draws of step s depend only
 * on (seed, s), so a resumed run continues with the batches it would have had. There is no
 * validation pass here: a meta-learned model is judged after adaptation (scripts/results-lookalike.mjs).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MtlError } from "../errors.js";
import type { Batch as DataBatch, Layout } from "../features/batch.js";
import { parseSchema, toSchemaJson, validateSchema, type FeatureSchema } from "../features/schema.js";
import { openDataSource } from "../data/source.js";
import type { TypedArray } from "../graph/dtype.js";
import type { MetaheacConfig } from "../models/metaheac.js";
import { resolveOptimizer } from "../optim/index.js";
import { Rng } from "../util/prng.js";
import { VERSION } from "../version.js";
import { buildMetaTrainingStep, queryInput, supportInput } from "../train/meta.js";
import { describeModel } from "../train/program.js";
import { initialState, TrainingState } from "../train/state.js";
import { Trainer } from "../train/trainer.js";
import { concatRows, feedsOfRows } from "../adapt/rows.js";
import { applySchemaOverrides } from "./config.js";
import { learningRate } from "./schedule.js";
import type { TrainRunOptions } from "./run.js";
import { RUN_FILES, lookupModel, modelConfigOf, readJson, type RunManifest, type RunProgress, type RunSummary } from "./rundir.js";
import { writeJsonAtomic } from "../util/atomic.js";

/** The campaigns of a row pool: per campaign id, its rows. */
export interface Campaigns {
  ids: number[];
  rows: Int32Array[];
  /** Cumulative row counts, for drawing a campaign ∝ its size. */
  cumulative: Float64Array;
}

export function groupCampaigns(aid: Int32Array): Campaigns {
  const by = new Map<number, number[]>();
  for (let r = 0; r < aid.length; r++) {
    const list = by.get(aid[r]!);
    if (list) list.push(r);
    else by.set(aid[r]!, [r]);
  }
  const ids = [...by.keys()].sort((a, b) => a - b);
  const rows = ids.map((id) => Int32Array.from(by.get(id)!));
  const cumulative = new Float64Array(ids.length);
  let total = 0;
  rows.forEach((r, i) => (cumulative[i] = total += r.length));
  return { ids, rows, cumulative };
}

/** `n` rows of a campaign: without replacement when it has that many (pandas' sample), else with. */
function drawRows(rows: Int32Array, n: number, rng: Rng): Int32Array {
  if (rows.length < n) return Int32Array.from({ length: n }, () => rows[rng.int(rows.length)]!);
  const pool = rows.slice();
  for (let i = 0; i < n; i++) {
    const j = i + rng.int(pool.length - i);
    const t = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = t;
  }
  return pool.subarray(0, n);
}

/** The campaigns and rows of outer step `step` (1-based): a function of (seed, step) only. */
export function drawEpisode(c: Campaigns, tasks: number, batchSize: number, seed: number, step: number): { campaign: number; support: Int32Array; query: Int32Array }[] {
  const rng = new Rng(seed, step);
  const total = c.cumulative[c.cumulative.length - 1]!;
  return Array.from({ length: tasks }, () => {
    const u = rng.next() * total;
    let k = 0;
    while (k < c.cumulative.length - 1 && c.cumulative[k]! <= u) k++;
    return { campaign: c.ids[k]!, support: drawRows(c.rows[k]!, batchSize, rng), query: drawRows(c.rows[k]!, batchSize, rng) };
  });
}

/** The meta step's inputs for one episode: each task's support and query rows, renamed per task. */
export function episodeFeeds(layout: Layout, pool: DataBatch, episode: ReturnType<typeof drawEpisode>): Record<string, TypedArray> {
  const out: Record<string, TypedArray> = {};
  episode.forEach((e, t) => {
    Object.assign(out, feedsOfRows(layout, pool, e.support, (x) => supportInput(x, t)));
    Object.assign(out, feedsOfRows(layout, pool, e.query, (x) => queryInput(x, t)));
  });
  return out;
}

/** Reads a whole data file into memory with its campaign ids. */
export async function readCampaignRows(spec: string, schema: FeatureSchema | undefined): Promise<{ layout: Layout; rows: DataBatch; aid: Int32Array }> {
  const source = await openDataSource(spec, schema ? { schema } : {});
  try {
    const batches: DataBatch[] = [];
    for await (const b of source.batches({ batchSize: 65536, shuffle: false })) batches.push(b);
    const rows = concatRows(source.layout, batches);
    const aid = rows.task;
    if (!aid) throw new MtlError("E_DATA", `${spec}: the rows carry no campaign id ('aid')`, { where: { file: spec, field: "aid" }, hint: "MetaHeac reads look-alike data: a schema with a task column (the built-in look-alike schema names aid; see docs/data.md)" });
    if (rows.size === 0) throw new MtlError("E_DATA", `${spec}: no rows`, { where: { file: spec } });
    return { layout: source.layout, rows, aid };
  } finally {
    await source.close();
  }
}

export async function metaTrainRun(opts: TrainRunOptions): Promise<RunSummary> {
  const out = opts.out;
  const paths = Object.fromEntries(Object.entries(RUN_FILES).map(([k, f]) => [k, join(out, f)])) as Record<keyof typeof RUN_FILES, string>;
  const started = Date.now();
  mkdirSync(out, { recursive: true });
  let config = opts.config;
  let manifest: RunManifest | null = null;
  let state: TrainingState | null = null;
  let progress: RunProgress = { epoch: 0, batchInEpoch: 0, step: 0, examples: 0, bestValue: null, bestEpoch: null, bestStep: null, badEpochs: 0, finished: null, window: { loss: 0, losses: {}, steps: 0, examples: 0 }, epochLoss: 0, epochSteps: 0 };
  if (opts.resume) {
    if (!existsSync(paths.run) || !existsSync(paths.checkpoint)) throw new MtlError("E_RUN", `nothing to resume in ${out}`, { where: { file: out }, hint: "start the run without --resume" });
    manifest = readJson<RunManifest>(paths.run, "run.json");
    config = { ...config, model: manifest.model, modelConfig: manifest.modelConfig, optimizer: manifest.optimizer, training: manifest.training, data: { train: manifest.data.train }, schemaOverrides: manifest.schemaOverrides };
    state = TrainingState.load(paths.checkpoint);
    progress = state.info["progress"] as RunProgress;
    if (progress.finished && existsSync(paths.summary)) throw new MtlError("E_RUN", `the run already finished (step ${progress.step})`, { where: { file: out } });
  } else if (existsSync(paths.checkpoint)) {
    throw new MtlError("E_RUN", `${out} already holds a run (${RUN_FILES.checkpoint})`, { where: { file: out }, hint: "pass --resume to continue it, or choose another --out" });
  }
  const t = config.training;
  const trainSpec = config.data.train;
  if (!trainSpec) throw new MtlError("E_USAGE", "no training data", { hint: "pass --train <look-alike JSONL>" });
  const train = trainSpec.startsWith("synth:") ? trainSpec : resolve(trainSpec);
  const entry = lookupModel(config.model, opts.models);

  // The schema: the run's, else the config's file, else the model's built-in look-alike schema.
  const defaults = entry.defaults as MetaheacConfig;
  let schema = manifest ? validateSchema(manifest.modelConfig["schema"], paths.run)
    : config.data.schema ? parseSchema(readFileSync(config.data.schema, "utf8"), config.data.schema)
      : config.modelConfig["schema"] !== undefined ? validateSchema(config.modelConfig["schema"], "modelConfig.schema") : defaults.schema;
  if (!manifest) schema = applySchemaOverrides(schema, config.schemaOverrides);
  const data = await readCampaignRows(train, schema);
  const rawConfig = manifest ? modelConfigOf(manifest, paths.run) : { ...defaults, ...config.modelConfig, schema };
  const model = entry.validate(rawConfig, manifest ? paths.run : config.source?.file ?? "modelConfig") as MetaheacConfig;
  const campaigns = groupCampaigns(data.aid);

  const optimizer = config.optimizer;
  state ??= initialState(describeModel(entry.definition, model), optimizer, { seed: t.seed });
  const program = buildMetaTrainingStep(entry.definition, model, {
    optimizer, tasks: model.taskCount, localLr: model.localLr, innerSteps: model.innerSteps, firstOrder: model.firstOrder,
    ...(t.clipNorm !== undefined ? { clipNorm: t.clipNorm } : {}),
  });
  const trainer = await Trainer.create(state, { train: program }, { ...(opts.device ? { device: opts.device } : {}), intraOpThreads: opts.intraOpThreads ?? 1 });
  if (!manifest) {
    manifest = {
      mtlVersion: VERSION, model: config.model, modelConfig: { ...model, schema: toSchemaJson(schema) },
      optimizer: resolveOptimizer(optimizer), training: t,
      data: { train, valid: null, validFraction: 0, trainRows: data.rows.size }, schemaOverrides: config.schemaOverrides, createdAt: new Date().toISOString(),
    };
    writeJsonAtomic(paths.run, manifest);
    writeFileSync(paths.metrics, "");
  }
  const emit = opts.onEvent ?? (() => undefined);
  const record = (r: Record<string, unknown>) => appendFileSync(paths.metrics, JSON.stringify(r) + "\n");
  const stepsPerEpoch = Math.ceil(data.rows.size / model.metaBatchSize);
  const rowsPerStep = 2 * model.taskCount * model.metaBatchSize;
  const checkpoint = () => {
    progress.step = state!.step;
    state!.info = { model: config.model, progress, campaigns: campaigns.ids.length };
    state!.save(paths.checkpoint);
    writeJsonAtomic(paths.progress, progress);
    emit({ kind: "checkpoint", step: state!.step, path: paths.checkpoint });
  };
  emit({ kind: "start", resumedFrom: progress.step, stepsPerEpoch, epochs: t.epochs });
  const loopStart = Date.now(), loopFirstStep = state.step;
  let interrupted = false;
  try {
    while (progress.epoch < t.epochs && !progress.finished) {
      const epoch = progress.epoch;
      while (progress.batchInEpoch < stepsPerEpoch) {
        if (opts.signal?.aborted) {
          interrupted = true;
          break;
        }
        const room = Math.min(t.checkpointEvery - (state.step % t.checkpointEvery), stepsPerEpoch - progress.batchInEpoch);
        const first = state.step + 1;
        function* chunk() {
          for (let k = 0; k < room && !opts.signal?.aborted; k++) yield episodeFeeds(data.layout, data.rows, drawEpisode(campaigns, model.taskCount, model.metaBatchSize, t.seed, first + k));
        }
        const taken = await trainer.fit(chunk(), {
          lr: (s) => learningRate(t.lr, t.schedule, s),
          onStep: (r, step) => {
            if (!Number.isFinite(r.loss)) throw new MtlError("E_NAN", `meta-training stopped at step ${step}: the query loss is ${r.loss}`, { hint: "lower the learning rate or localLr" });
            progress.examples += rowsPerStep;
            progress.window.loss += r.loss;
            progress.window.steps++;
            for (const [k, v] of Object.entries(r.losses)) progress.window.losses[k] = (progress.window.losses[k] ?? 0) + v;
            progress.epochLoss += r.loss;
            progress.epochSteps++;
            const lr = learningRate(t.lr, t.schedule, step);
            emit({ kind: "step", step, epoch, batchInEpoch: progress.batchInEpoch + (step - first) + 1, loss: r.loss, lr, examples: progress.examples });
            if (step % t.logEvery === 0) {
              const w = progress.window;
              record({ type: "step", step, epoch: epoch + 1, loss: w.loss / w.steps, losses: Object.fromEntries(Object.entries(w.losses).map(([k, v]) => [k, v / w.steps])), lr, examples: progress.examples, time: new Date().toISOString() });
              progress.window = { loss: 0, losses: {}, steps: 0, examples: 0 };
            }
          },
        });
        progress.batchInEpoch += taken;
        checkpoint();
      }
      if (interrupted) break;
      const trainLoss = progress.epochSteps ? progress.epochLoss / progress.epochSteps : NaN;
      record({ type: "epoch", epoch: epoch + 1, step: state.step, train_loss: Number.isFinite(trainLoss) ? trainLoss : null, examples: progress.examples, time: new Date().toISOString() });
      emit({ kind: "epoch", epoch, step: state.step, trainLoss, valid: null, validLoss: null, improved: false });
      progress.epoch = epoch + 1;
      progress.batchInEpoch = 0;
      progress.epochLoss = 0;
      progress.epochSteps = 0;
      if (progress.epoch >= t.epochs) progress.finished = "completed";
      checkpoint();
    }
  } finally {
    await trainer.release();
  }
  const seconds = (Date.now() - started) / 1000;
  const loopSeconds = (Date.now() - loopStart) / 1000;
  const summary: RunSummary & { outerStepsPerSecond: number; campaigns: number } = {
    status: interrupted ? "interrupted" : "completed", steps: progress.step, epochs: progress.epoch, examples: progress.examples, seconds,
    data: { ...manifest.data, validRows: null }, earlyStoppingMetric: "none", best: null, lastValid: null,
    outerStepsPerSecond: (progress.step - loopFirstStep) / Math.max(loopSeconds, 1e-6), campaigns: campaigns.ids.length,
  };
  if (!interrupted) writeJsonAtomic(paths.summary, summary);
  emit({ kind: "done", summary });
  return summary;
}
