/**
 * A training run's configuration: one YAML file naming every knob, defaults that reproduce the
 * PaddleRec ESMM setup, and PaddleRec's own keys accepted and mapped (so its config.yaml values can
 * be carried over). Precedence: built-in defaults < config file < command-line flags.
 *
 *   model: esmm
 *   modelConfig: { towerSizes: [256, 64] }          # checked by the model's own validate()
 *   optimizer: { kind: adam }                         # sgd | adam | adamw | adagrad, + their knobs
 *   training:
 *     batchSize: 1024
 *     epochs: 1
 *     lr: 0.001
 *     schedule: { kind: exponential, decayRate: 0.9, decaySteps: 1000, staircase: true, warmupSteps: 0 }
 *     seed: 0
 *     validFraction: 0.1          # held out of --train by sample id when there is no --valid
 *     patience: 0                 # early stopping: epochs without improvement (0 = off)
 *     earlyStoppingMetric: ctcvr_auc
 *     checkpointEvery: 1000       # steps (and always at each epoch end)
 *     logEvery: 0                 # steps between metrics.jsonl step records (0: about 1% of the run)
 *     clipNorm: 10                # optional: clip gradients by global L2 norm
 *   data: { train: train.shard, valid: valid.shard, schema: schema.json }
 *
 * PaddleRec keys, at the top level or in its `hyper_parameters:` / `runner:` sections:
 *   sparse_feature_number N → every id feature's table has N + 1 rows (ids 1..N, 0 pads; hashed
 *                             features get N buckets), as the built-in Ali-CCP schema (N = 737,946)
 *   sparse_feature_dim D    → every id feature's embedding dim
 *   ctr_fc_sizes → modelConfig.towerSizes; counterfact_mode → modelConfig.counterfactualMode;
 *   counterfactual_w → modelConfig.counterfactualWeight; global_w → modelConfig.globalWeight;
 *   learning_rate → training.lr; train_batch_size → training.batchSize; epochs → training.epochs;
 *   optimizer: { class: Adam, learning_rate: 0.001 } → optimizer.kind, training.lr.
 * Unknown keys are errors naming the key and its line.
 */
import { readFileSync } from "node:fs";
import { LineCounter, isMap, isScalar, parseDocument, type Node as YamlNode } from "yaml";
import { MtlError } from "../errors.js";
import { OPTIMIZER_KINDS, type OptimizerConfig } from "../optim/index.js";
import { validateSchema, toSchemaJson, type FeatureSchema, type SchemaInput } from "../features/schema.js";
import { checkSchedule, type LrSchedule } from "./schedule.js";

export interface TrainingSettings {
  batchSize: number;
  epochs: number;
  lr: number;
  schedule: LrSchedule;
  seed: number;
  /** Fraction of --train held out for validation when there is no --valid (by sample id). */
  validFraction: number;
  /** Epochs without improvement of the early-stopping metric before stopping (0 = never stop early). */
  patience: number;
  earlyStoppingMetric: string;
  checkpointEvery: number;
  /** Steps between metrics.jsonl step records; 0 (the default) picks about 1% of the run (`autoLogEvery`). */
  logEvery: number;
  clipNorm?: number;
}

export interface RunConfig {
  model: string;
  /** Model settings over the model's defaults (the schema is added from the data). */
  modelConfig: Record<string, unknown>;
  optimizer: OptimizerConfig;
  training: TrainingSettings;
  data: { train?: string; valid?: string; schema?: string };
  /** PaddleRec's sparse_feature_number / sparse_feature_dim, applied to the data's schema. */
  schemaOverrides: { featureNumber?: number; dim?: number };
  /** The config file and the line of each key path (e.g. "modelConfig.towerSizes"), for errors found later. */
  source?: { file: string; lines: Record<string, number> };
}

export const DEFAULT_TRAINING: TrainingSettings = {
  batchSize: 1024, epochs: 1, lr: 0.001, schedule: { kind: "constant", warmupSteps: 0 }, seed: 0,
  validFraction: 0.1, patience: 0, earlyStoppingMetric: "ctcvr_auc", checkpointEvery: 1000, logEvery: 0,
};

/**
 * The default logging interval: about 100 step records over the whole run, so a short run's loss
 * curve is as readable as a long one's; 100 steps when the run's length is unknown (a text file).
 */
export function autoLogEvery(stepsPerEpoch: number | null, epochs: number): number {
  return stepsPerEpoch === null ? 100 : Math.max(1, Math.round((stepsPerEpoch * epochs) / 100));
}

export function defaultRunConfig(): RunConfig {
  return {
    model: "esmm", modelConfig: {}, optimizer: { kind: "adam" }, training: structuredClone(DEFAULT_TRAINING),
    data: {}, schemaOverrides: {},
  };
}

/** Metrics early stopping can watch; all are "higher is better" except loglosses and |bias|. */
export const EARLY_STOPPING_METRICS = ["ctcvr_auc", "ctr_auc", "cvr_auc", "cvr_auc_entire", "loss", "ctr_logloss", "ctcvr_logloss"] as const;
export function higherIsBetter(metric: string): boolean {
  return !(metric === "loss" || metric.endsWith("logloss"));
}

type Where = (path: string) => { file: string; line?: number; field: string };

const TRAINING_KEYS = Object.keys(DEFAULT_TRAINING).concat("clipNorm");
const SCHEDULE_KEYS = ["kind", "decayRate", "decaySteps", "staircase", "warmupSteps"];
const OPTIMIZER_KEYS = ["kind", "class", "learning_rate", "momentum", "weightDecay", "beta1", "beta2", "epsilon", "initialAccumulator"];
const PADDLE_KEYS = ["sparse_feature_number", "sparse_feature_dim", "ctr_fc_sizes", "counterfact_mode", "counterfactual_w", "global_w", "learning_rate", "train_batch_size", "epochs", "optimizer"];

/** Reads a YAML config file over the defaults. */
export function readRunConfig(file: string, base: RunConfig = defaultRunConfig()): RunConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new MtlError("E_IO", `cannot read the config: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file }, cause: err });
  }
  return parseRunConfig(text, file, base);
}

export function parseRunConfig(text: string, file: string, base: RunConfig = defaultRunConfig()): RunConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new MtlError("E_CONFIG", `not valid YAML: ${e.message.split("\n")[0]}`, { where: { file, line: e.linePos?.[0].line } });
  }
  const lines = new Map<string, number>();
  collectLines(doc.contents, "", lineCounter, lines);
  const where: Where = (path) => ({ file, line: lines.get(path), field: path });
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) return base;
  if (typeof raw !== "object" || Array.isArray(raw)) throw new MtlError("E_CONFIG", "the config must be a mapping of keys to values", { where: { file, line: 1 } });
  const out = structuredClone(base);
  out.source = { file, lines: Object.fromEntries(lines) };
  // Model keys given the PaddleRec way are found under their mtl name too.
  for (const [paddle, mtl] of [["ctr_fc_sizes", "towerSizes"], ["counterfact_mode", "counterfactualMode"], ["counterfactual_w", "counterfactualWeight"], ["global_w", "globalWeight"]] as const) {
    for (const prefix of ["", "hyper_parameters.", "runner."]) {
      const line = lines.get(prefix + paddle);
      if (line !== undefined) out.source.lines[`modelConfig.${mtl}`] = line;
    }
  }
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    switch (key) {
      case "model":
        if (typeof value !== "string") fail(where(key), "must be a model name");
        out.model = value as string;
        break;
      case "modelConfig":
        Object.assign(out.modelConfig, mapping(value, where(key)));
        break;
      case "optimizer":
        applyOptimizer(out, value, key, where);
        break;
      case "training":
        for (const [k, v] of Object.entries(mapping(value, where(key)))) applyTraining(out, k, v, `training.${k}`, where);
        break;
      case "data":
        for (const [k, v] of Object.entries(mapping(value, where(key)))) {
          if (!["train", "valid", "schema"].includes(k)) unknown(where(`data.${k}`), ["train", "valid", "schema"]);
          if (typeof v !== "string") fail(where(`data.${k}`), "must be a file path");
          out.data[k as "train"] = v as string;
        }
        break;
      case "hyper_parameters":
      case "runner":
        for (const [k, v] of Object.entries(mapping(value, where(key)))) {
          if (!PADDLE_KEYS.includes(k)) unknown(where(`${key}.${k}`), PADDLE_KEYS);
          applyPaddle(out, k, v, `${key}.${k}`, where);
        }
        break;
      default:
        if (PADDLE_KEYS.includes(key)) applyPaddle(out, key, value, key, where);
        else unknown(where(key), ["model", "modelConfig", "optimizer", "training", "data", "hyper_parameters", "runner", ...PADDLE_KEYS]);
    }
  }
  checkTraining(out.training, file);
  return out;
}

function applyPaddle(out: RunConfig, key: string, value: unknown, path: string, where: Where): void {
  switch (key) {
    case "sparse_feature_number": out.schemaOverrides.featureNumber = positiveInt(value, where(path)); return;
    case "sparse_feature_dim": out.schemaOverrides.dim = positiveInt(value, where(path)); return;
    case "ctr_fc_sizes": out.modelConfig["towerSizes"] = value; return;
    case "counterfact_mode": out.modelConfig["counterfactualMode"] = value; return;
    case "counterfactual_w": out.modelConfig["counterfactualWeight"] = value; return;
    case "global_w": out.modelConfig["globalWeight"] = value; return;
    case "learning_rate": applyTraining(out, "lr", value, path, where); return;
    case "train_batch_size": applyTraining(out, "batchSize", value, path, where); return;
    case "epochs": applyTraining(out, "epochs", value, path, where); return;
    case "optimizer": applyOptimizer(out, value, path, where); return;
  }
}

function applyOptimizer(out: RunConfig, value: unknown, path: string, where: Where): void {
  if (typeof value === "string") value = { kind: value };
  const m = mapping(value, where(path));
  const next: Record<string, unknown> = { ...(out.optimizer.kind === (m["kind"] ?? m["class"] ?? out.optimizer.kind) ? out.optimizer : {}) };
  for (const [k, v] of Object.entries(m)) {
    if (!OPTIMIZER_KEYS.includes(k)) unknown(where(`${path}.${k}`), OPTIMIZER_KEYS);
    if (k === "kind" || k === "class") {
      const kind = String(v).toLowerCase();
      if (!OPTIMIZER_KINDS.includes(kind as OptimizerConfig["kind"])) fail(where(`${path}.${k}`), `unknown optimizer '${String(v)}' (use one of ${OPTIMIZER_KINDS.join(", ")})`);
      next["kind"] = kind;
    } else if (k === "learning_rate") {
      applyTraining(out, "lr", v, `${path}.${k}`, where);
    } else {
      if (typeof v !== "number" || !Number.isFinite(v)) fail(where(`${path}.${k}`), `must be a number, got ${JSON.stringify(v)}`);
      next[k] = v;
    }
  }
  if (next["kind"] === undefined) next["kind"] = out.optimizer.kind;
  out.optimizer = next as unknown as OptimizerConfig;
}

function applyTraining(out: RunConfig, key: string, value: unknown, path: string, where: Where): void {
  const t = out.training as unknown as Record<string, unknown>;
  switch (key) {
    case "batchSize": case "epochs": case "checkpointEvery":
      t[key] = positiveInt(value, where(path));
      return;
    case "logEvery":
      if (!(Number.isInteger(value) && (value as number) >= 0)) fail(where(path), `must be an integer >= 0 (0: about 1% of the run), got ${JSON.stringify(value)}`);
      t[key] = value;
      return;
    case "patience": case "seed":
      if (!(Number.isInteger(value) && (value as number) >= 0)) fail(where(path), `must be an integer >= 0, got ${JSON.stringify(value)}`);
      t[key] = value;
      return;
    case "lr":
      if (!(typeof value === "number" && Number.isFinite(value) && value >= 0)) fail(where(path), `must be a number >= 0, got ${JSON.stringify(value)}`);
      t[key] = value;
      return;
    case "clipNorm":
      if (value === null) { delete t[key]; return; }
      if (!(typeof value === "number" && value > 0)) fail(where(path), `must be a number > 0, got ${JSON.stringify(value)}`);
      t[key] = value;
      return;
    case "validFraction":
      if (!(typeof value === "number" && value >= 0 && value < 1)) fail(where(path), `must be in [0, 1), got ${JSON.stringify(value)}`);
      t[key] = value;
      return;
    case "earlyStoppingMetric":
      if (!EARLY_STOPPING_METRICS.includes(value as (typeof EARLY_STOPPING_METRICS)[number])) fail(where(path), `must be one of ${EARLY_STOPPING_METRICS.join(", ")}, got ${JSON.stringify(value)}`);
      t[key] = value;
      return;
    case "schedule": {
      if (typeof value === "string") value = { kind: value };
      const m = mapping(value, where(path));
      for (const k of Object.keys(m)) if (!SCHEDULE_KEYS.includes(k)) unknown(where(`${path}.${k}`), SCHEDULE_KEYS);
      const s = { warmupSteps: 0, ...m } as unknown as LrSchedule;
      try {
        checkSchedule(s, path);
      } catch (err) {
        if (err instanceof MtlError) fail(where(err.where.field ?? path), err.message.replace(/^'[^']*' /, ""));
        throw err;
      }
      t[key] = s;
      return;
    }
    default:
      unknown(where(path), TRAINING_KEYS);
  }
}

function checkTraining(t: TrainingSettings, file: string): void {
  try {
    checkSchedule(t.schedule, "training.schedule");
  } catch (err) {
    if (err instanceof MtlError) throw new MtlError(err.code, err.message, { where: { file, field: err.where.field }, hint: err.hint });
    throw err;
  }
}

/** Applies --epochs, --lr, ... (given ones only) with the same checks as the file's keys. */
export function applyFlags(config: RunConfig, flags: Partial<Record<keyof TrainingSettings, unknown>>): RunConfig {
  const out = structuredClone(config);
  const where: Where = (path) => ({ file: "command line", field: `--${path.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}` });
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) applyTraining(out, k, v, k, where);
  return out;
}

/** The data's schema with PaddleRec's sparse_feature_number / sparse_feature_dim applied. */
export function applySchemaOverrides(schema: FeatureSchema, o: RunConfig["schemaOverrides"]): FeatureSchema {
  if (o.featureNumber === undefined && o.dim === undefined) return schema;
  const json = toSchemaJson(schema) as SchemaInput & { features: Record<string, unknown>[] };
  for (const f of json.features) {
    if (f["kind"] === "dense") continue;
    if (o.dim !== undefined) f["dim"] = o.dim;
    if (o.featureNumber !== undefined) {
      if (f["vocab_size"] !== undefined) f["vocab_size"] = o.featureNumber + 1;
      else f["hash_buckets"] = o.featureNumber;
    }
  }
  return validateSchema(json, "sparse_feature_number/sparse_feature_dim");
}

function collectLines(node: unknown, prefix: string, lc: LineCounter, out: Map<string, number>): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    const key = pair.key as YamlNode | null;
    if (!isScalar(key) || !key.range) continue;
    const path = prefix ? `${prefix}.${String(key.value)}` : String(key.value);
    out.set(path, lc.linePos(key.range[0]).line);
    collectLines(pair.value, path, lc, out);
  }
}

function fail(where: { file: string; line?: number; field: string }, what: string): never {
  throw new MtlError("E_CONFIG", `'${where.field}' ${what}`, { where: { file: where.file, line: where.line } });
}

function unknown(where: { file: string; line?: number; field: string }, known: readonly string[]): never {
  throw new MtlError("E_CONFIG", `unknown key '${where.field}'`, { where: { file: where.file, line: where.line }, hint: `known keys here: ${known.join(", ")}` });
}

function mapping(value: unknown, where: { file: string; line?: number; field: string }): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) fail(where, "must be a mapping");
  return value as Record<string, unknown>;
}

function positiveInt(value: unknown, where: { file: string; line?: number; field: string }): number {
  if (!(Number.isInteger(value) && (value as number) > 0)) fail(where, `must be a positive integer, got ${JSON.stringify(value)}`);
  return value as number;
}
