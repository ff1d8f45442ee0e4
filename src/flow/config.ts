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
 * PaddleRec's config.yaml is read unchanged: its `runner:` / `hyper_parameters:` sections (or their
 * keys at the top level) go through the table in paddlerec.ts. Unknown keys and bad values are
 * errors naming the key and its line, all of a file's in one message. MetaHeac's keys (max_idxs,
 * embed_dim, mlp_dims, local_lr, num_expert, num_output, task_count, batch_size, infer_train_epoch,
 * optimizer.global_learning_rate / local_test_learning_rate) are applied by their own block below.
 */
import { readFileSync } from "node:fs";
import { LineCounter, isMap, isScalar, parseDocument, type Node as YamlNode } from "yaml";
import { MtlError } from "../errors.js";
import { OPTIMIZER_KINDS, type OptimizerConfig } from "../optim/index.js";
import { validateSchema, toSchemaJson, type FeatureSchema, type SchemaInput } from "../features/schema.js";
import { checkSchedule, type LrSchedule } from "./schedule.js";
import { checkImpliedModel, emptyPaddleRecSettings, paddleRecKey, paddleRecKeysOf, resolveDataDir, type PaddleRecSettings } from "./paddlerec.js";

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
  /** p ≥ this predicts the positive class in the accuracy / precision / recall / F1 metrics. Default 0.5. */
  classificationThreshold: number;
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
  /** `test`: evaluated after training and the default data of `mtl eval` (PaddleRec's test_data_dir). */
  data: { train?: string; valid?: string; test?: string; schema?: string };
  /** PaddleRec's sparse_feature_number / sparse_feature_dim (or MetaHeac's embed_dim) and MetaHeac's max_idxs, applied to the data's schema. */
  schemaOverrides: { featureNumber?: number; dim?: number; maxIds?: number[] };
  /** What a PaddleRec config says beyond the training settings (device, save path, eval defaults, checks). */
  paddleRec?: PaddleRecSettings;
  /** The config file and the line of each key path (e.g. "modelConfig.towerSizes"), for errors found later. */
  source?: { file: string; lines: Record<string, number> };
}

export const DEFAULT_TRAINING: TrainingSettings = {
  batchSize: 1024, epochs: 1, lr: 0.001, schedule: { kind: "constant", warmupSteps: 0 }, seed: 0,
  validFraction: 0.1, patience: 0, earlyStoppingMetric: "auto", classificationThreshold: 0.5, checkpointEvery: 1000, logEvery: 0,
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

/**
 * Metrics early stopping can watch; all are "higher is better" except loglosses. "auto" (the
 * default) is ctcvr_auc for a model that predicts pCTCVR, else ctr_auc (a CTR-only model).
 */
export const EARLY_STOPPING_METRICS = ["auto", "ctcvr_auc", "ctr_auc", "cvr_auc", "cvr_auc_all", "cvr_auc_entire", "loss", "ctr_logloss", "ctcvr_logloss"] as const;

/** The metric "auto" means for a model with these predictions (p_ctr, p_cvr, p_ctcvr). */
export function resolveEarlyStoppingMetric(metric: string, predictions: readonly string[]): string {
  if (metric !== "auto") return metric;
  return predictions.includes("p_ctcvr") ? "ctcvr_auc" : predictions.includes("p_ctr") ? "ctr_auc" : "loss";
}
export function higherIsBetter(metric: string): boolean {
  return !(metric === "loss" || metric.endsWith("logloss"));
}

type Where = (path: string) => { file: string; line?: number; field: string };

const TRAINING_KEYS = Object.keys(DEFAULT_TRAINING).concat("clipNorm");
const SCHEDULE_KEYS = ["kind", "decayRate", "decaySteps", "staircase", "warmupSteps"];
const OPTIMIZER_KEYS = ["kind", "class", "learning_rate", "momentum", "weightDecay", "beta1", "beta2", "epsilon", "initialAccumulator"];
const TOP_KEYS = ["model", "modelConfig", "optimizer", "training", "data", "hyper_parameters", "runner"];
const DATA_KEYS = ["train", "valid", "test", "schema"];

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

/**
 * Parses a config: mtl's own keys and PaddleRec's (see paddlerec.ts). Every refused key and bad
 * value of the file is reported together, in one error, each with its line.
 */
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
  out.paddleRec = emptyPaddleRecSettings();
  const problems: MtlError[] = [];
  const attempt = (f: () => void) => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof MtlError)) throw err;
      problems.push(err);
    }
  };
  let modelGiven = false;
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    switch (key) {
      case "model":
        attempt(() => {
          if (typeof value !== "string") fail(where(key), "must be a model name");
          out.model = value as string;
          modelGiven = true;
        });
        break;
      case "modelConfig":
        attempt(() => Object.assign(out.modelConfig, mapping(value, where(key))));
        break;
      case "optimizer":
        attempt(() => applyOptimizer(out, value, key, where));
        break;
      case "training":
        attempt(() => {
          for (const [k, v] of Object.entries(mapping(value, where(key)))) attempt(() => applyTraining(out, k, v, `training.${k}`, where));
        });
        break;
      case "data":
        attempt(() => {
          for (const [k, v] of Object.entries(mapping(value, where(key)))) {
            attempt(() => {
              if (!DATA_KEYS.includes(k)) unknown(where(`data.${k}`), DATA_KEYS);
              if (typeof v !== "string") fail(where(`data.${k}`), "must be a file path");
              out.data[k as "train"] = v as string;
            });
          }
        });
        break;
      case "hyper_parameters":
      case "runner":
        attempt(() => {
          for (const [k, v] of Object.entries(mapping(value, where(key)))) attempt(() => applyPaddle(out, key, k, v, `${key}.${k}`, where));
        });
        break;
      default: {
        // PaddleRec's keys are also accepted at the top level.
        const section = paddleRecKey("hyper_parameters", key) ? "hyper_parameters" : paddleRecKey("runner", key) ? "runner" : null;
        if (section) attempt(() => applyPaddle(out, section, key, value, key, where));
        else attempt(() => unknown(where(key), TOP_KEYS));
      }
    }
  }
  attempt(() => applyMetaheacKeys(out, where));
  const implied = out.paddleRec.impliedModel;
  if (implied && !modelGiven) out.model = implied.model;
  else if (implied) attempt(() => checkImpliedModel(out.model, implied, file));
  attempt(() => checkTraining(out.training, file));
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) {
    throw new MtlError("E_CONFIG", `${problems.length} problems in the config:\n${problems.map((p) => "  " + p.format()).join("\n")}`, { where: { file } });
  }
  return out;
}

/** One key of PaddleRec's `runner:` / `hyper_parameters:` (see the table in paddlerec.ts). */
function applyPaddle(out: RunConfig, section: "runner" | "hyper_parameters", key: string, value: unknown, path: string, where: Where): void {
  const spec = paddleRecKey(section, key);
  if (!spec) {
    throw new MtlError("E_CONFIG", `unknown key '${path}'`, { where: { file: where(path).file, line: where(path).line }, hint: `PaddleRec ${section} keys mtl knows: ${paddleRecKeysOf(section).join(", ")}` });
  }
  const pr = out.paddleRec!;
  if (spec.model && !pr.impliedModel) pr.impliedModel = { model: spec.model, key: path, ...(where(path).line !== undefined ? { line: where(path).line! } : {}) };
  else if (spec.model && pr.impliedModel!.model !== spec.model) fail(where(path), `is a key of PaddleRec's ${spec.model} config, but '${pr.impliedModel!.key}' is one of ${pr.impliedModel!.model}'s`);
  if (spec.unused) {
    pr.unused.push(`${path} (${spec.unused})`);
    return;
  }
  const file = where(path).file;
  const str = (what: string) => {
    if (typeof value !== "string" || value === "") fail(where(path), `must be ${what}, got ${JSON.stringify(value)}`);
    return value as string;
  };
  const line = where(path).line;
  const at = line !== undefined ? { line } : {};
  switch (key) {
    case "sparse_feature_number": out.schemaOverrides.featureNumber = positiveInt(value, where(path)); return;
    case "sparse_feature_dim": out.schemaOverrides.dim = positiveInt(value, where(path)); return;
    case "num_field": pr.checks.numField = { value: positiveInt(value, where(path)), ...at }; return;
    case "feature_size": pr.checks.featureSize = { value: positiveInt(value, where(path)), ...at }; return;
    case "ctr_fc_sizes": setModelKey(out, "towerSizes", value, line); return;
    case "cvr_fc_sizes": setModelKey(out, "cvrTowerSizes", value, line); return;
    case "counterfact_mode": setModelKey(out, "counterfactualMode", value, line); return;
    case "counterfactual_w": setModelKey(out, "counterfactualWeight", value, line); return;
    case "global_w": setModelKey(out, "globalWeight", value, line); return;
    case "expert_num": setModelKey(out, "expertCount", value, line); return;
    case "expert_size": setModelKey(out, "expertSizes", [value], line); return;
    case "tower_size": setModelKey(out, "mmoeTowerSizes", [value], line); return;
    case "learning_rate": applyTraining(out, "lr", value, path, where); return;
    case "train_batch_size": applyTraining(out, "batchSize", value, path, where); return;
    case "epochs": applyTraining(out, "epochs", value, path, where); return;
    case "print_interval": applyTraining(out, "logEvery", value, path, where); return;
    case "seed": applyTraining(out, "seed", value, path, where); return;
    case "optimizer": applyOptimizer(out, value, path, where); return;
    case "train_data_dir": out.data.train = resolveDataDir(file, str("a directory")); return;
    case "test_data_dir": out.data.test = resolveDataDir(file, str("a directory")); return;
    case "use_gpu":
      if (typeof value !== "boolean") fail(where(path), `must be True or False, got ${JSON.stringify(value)}`);
      pr.device = value ? "cuda" : "cpu";
      return;
    case "model_save_path": pr.saveDir = str("a directory"); return;
    case "infer_load_path": pr.eval.run = str("a directory"); return;
    case "infer_batch_size": pr.eval.batchSize = positiveInt(value, where(path)); return;
    default:
      // MetaHeac's own keys: kept as written for the metaheac model's config.
      if (spec.model === "metaheac") {
        pr.metaheac[key] = value;
        return;
      }
      fail(where(path), "is a PaddleRec key mtl lists but does not handle (a bug)");
  }
}

// ---------------------------------------------------------------- PaddleRec MetaHeac keys

/**
 * MetaHeac's keys (models/multitask/metaheac/config.yaml), as paddlerec.ts kept them: max_idxs
 * [[static], [dynamic], [ad]] sizes the id features' tables in schema order (max id + 1 each; the
 * built-in look-alike schema is in PaddleRec's column order); embed_dim every id feature's dim;
 * mlp_dims → expertSizes [mlp_dims[0]] (net.py's experts apply only that layer) and gateHidden
 * mlp_dims[-1]; batch_size → metaBatchSize and adaptBatchSize; the rest one model key each.
 */
function applyMetaheacKeys(out: RunConfig, where: Where): void {
  const keys = out.paddleRec?.metaheac ?? {};
  const pathOf = (key: string) => ["hyper_parameters.", "runner.", "hyper_parameters.optimizer.", "", "optimizer."].map((p) => p + key).find((p) => where(p).line !== undefined) ?? key;
  for (const [key, value] of Object.entries(keys)) {
    const path = pathOf(key);
    const line = where(path).line;
    switch (key) {
      case "max_idxs": {
        const ok = Array.isArray(value) && value.every((g) => Array.isArray(g) && g.every((x) => Number.isInteger(x) && x >= 0));
        if (!ok) fail(where(path), `must be lists of max ids (PaddleRec: [[static...], [dynamic...], [ad...]]), got ${JSON.stringify(value)}`);
        out.schemaOverrides.maxIds = (value as number[][]).flat();
        break;
      }
      case "embed_dim": out.schemaOverrides.dim = positiveInt(value, where(path)); break;
      case "mlp_dims": {
        if (!(Array.isArray(value) && value.length > 0 && value.every((x) => Number.isInteger(x) && x > 0))) fail(where(path), `must be a non-empty list of positive integers, got ${JSON.stringify(value)}`);
        const dims = value as number[];
        setModelKey(out, "expertSizes", [dims[0]!], line);
        setModelKey(out, "gateHidden", dims[dims.length - 1]!, line);
        break;
      }
      case "local_lr": setModelKey(out, "localLr", value, line); break;
      case "num_expert": setModelKey(out, "expertCount", value, line); break;
      case "num_output": setModelKey(out, "criticCount", value, line); break;
      case "task_count": setModelKey(out, "taskCount", value, line); break;
      case "batch_size": setModelKey(out, "metaBatchSize", value, line); setModelKey(out, "adaptBatchSize", value, line); break;
      case "infer_train_epoch": setModelKey(out, "adaptEpochs", value, line); break;
      case "local_test_learning_rate": setModelKey(out, "adaptLr", value, line); break;
      case "global_learning_rate": applyTraining(out, "lr", value, path, where); break;
      default: fail(where(path), "is a MetaHeac key mtl lists but does not apply (a bug)");
    }
  }
}

/** A model key set the PaddleRec way, with its line under the mtl name (for errors found later). */
function setModelKey(out: RunConfig, mtlKey: string, value: unknown, line: number | undefined): void {
  out.modelConfig[mtlKey] = value;
  if (line !== undefined) out.source!.lines[`modelConfig.${mtlKey}`] = line;
}

function applyOptimizer(out: RunConfig, value: unknown, path: string, where: Where): void {
  if (typeof value === "string") value = { kind: value };
  const m = mapping(value, where(path));
  const next: Record<string, unknown> = { ...(out.optimizer.kind === (m["kind"] ?? m["class"] ?? out.optimizer.kind) ? out.optimizer : {}) };
  for (const [k, v] of Object.entries(m)) {
    const paddle = paddleRecKey("hyper_parameters.optimizer", k);
    if (paddle?.unused || paddle?.model) {
      // PaddleRec's optimizer keys that are not mtl's: `strategy` (unused), MetaHeac's learning rates.
      const pr = out.paddleRec ??= emptyPaddleRecSettings();
      if (paddle.unused) pr.unused.push(`${path}.${k} (${paddle.unused})`);
      else {
        pr.metaheac[k] = v;
        if (!pr.impliedModel) pr.impliedModel = { model: paddle.model!, key: `${path}.${k}`, ...(where(`${path}.${k}`).line !== undefined ? { line: where(`${path}.${k}`).line! } : {}) };
      }
      continue;
    }
    if (!OPTIMIZER_KEYS.includes(k)) unknown(where(`${path}.${k}`), [...OPTIMIZER_KEYS, "strategy"]);
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
    case "classificationThreshold":
      if (!(typeof value === "number" && value > 0 && value < 1)) fail(where(path), `must be in (0, 1), got ${JSON.stringify(value)}`);
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
  if (o.featureNumber === undefined && o.dim === undefined && o.maxIds === undefined) return schema;
  const json = toSchemaJson(schema) as SchemaInput & { features: Record<string, unknown>[] };
  if (o.maxIds !== undefined) {
    // MetaHeac's max_idxs: one max id per id feature, in schema order (ids 0..max are real values).
    const idFeatures = json.features.filter((f) => f["kind"] !== "dense");
    if (idFeatures.length !== o.maxIds.length) {
      throw new MtlError("E_CONFIG", `max_idxs lists ${o.maxIds.length} max ids; the schema has ${idFeatures.length} id features`, { where: { field: "max_idxs" }, hint: `in schema order: ${idFeatures.map((f) => String(f["name"])).join(", ")}` });
    }
    idFeatures.forEach((f, i) => {
      if (f["hash_buckets"] !== undefined) throw new MtlError("E_CONFIG", `max_idxs cannot size the hashed feature '${String(f["name"])}'`, { where: { field: "max_idxs" } });
      f["vocab_size"] = o.maxIds![i]! + 1;
    });
  }
  for (const f of json.features) {
    if (o.featureNumber === undefined && o.dim === undefined) break;
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
