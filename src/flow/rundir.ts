/**
 * The run directory `mtl train` writes and eval, report and export read:
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
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { validateSchema, type FeatureSchema } from "../features/schema.js";
import type { FunnelMetrics } from "../metrics/funnel.js";
import { getModel, type RegisteredModel } from "../models/index.js";
import type { resolveOptimizer } from "../optim/index.js";
import { TrainingState } from "../train/state.js";
import type { RunConfig, TrainingSettings } from "./config.js";

export const RUN_FILES = {
  run: "run.json", checkpoint: "checkpoint.mtlstate", progress: "progress.json", best: "best.mtlstate",
  metrics: "metrics.jsonl", curves: "curves.json", summary: "summary.json",
} as const;

export type RunPaths = Record<keyof typeof RUN_FILES, string>;

/** Every file of the run directory `dir`, by its RUN_FILES key. */
export function runPaths(dir: string): RunPaths {
  return Object.fromEntries(Object.entries(RUN_FILES).map(([k, f]) => [k, join(dir, f)])) as RunPaths;
}

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

/** summary.json. */
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

export function lookupModel(name: string, extra?: Readonly<Record<string, RegisteredModel>>): RegisteredModel {
  return extra?.[name] ?? getModel(name);
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

/** The schema run.json stores (file format), validated: the one place a run's schema is checked. */
export function manifestSchema(manifest: Pick<RunManifest, "modelConfig">, file: string): FeatureSchema {
  return validateSchema(manifest.modelConfig["schema"], `${file}: modelConfig.schema`);
}

/** The model config as the model takes it: the stored schema replaced by `schema` (manifestSchema's, validated). */
export function modelConfigOf(manifest: Pick<RunManifest, "modelConfig">, file: string, schema: FeatureSchema | undefined = manifest.modelConfig["schema"] === undefined ? undefined : manifestSchema(manifest, file)): Record<string, unknown> {
  const c = { ...manifest.modelConfig };
  if (schema !== undefined) c["schema"] = schema;
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
  const paths = runPaths(runDir);
  const manifest = readJson<RunManifest>(paths.run, "run.json");
  const entry = lookupModel(manifest.model, opts.models);
  const schema = manifestSchema(manifest, paths.run);
  const config = entry.validate(modelConfigOf(manifest, paths.run, schema), paths.run);
  const checkpoint = (opts.which ?? "best") === "best" && existsSync(paths.best) ? paths.best : paths.checkpoint;
  const state = TrainingState.load(checkpoint);
  return { manifest, entry, config, schema, state, checkpoint };
}
