/**
 * PaddleRec's own config.yaml, read as it is: every key of its `runner:` and `hyper_parameters:`
 * sections (ESMM, ESCM2 and MetaHeac, config.yaml and config_bigdata.yaml) is either mapped to an
 * mtl setting, checked against the data or the model, or understood but unused (with the reason,
 * listed once when a run starts). Anything else is refused; config.ts gathers every refusal of a
 * file into one message.
 *
 * Paths: `train_data_dir` / `test_data_dir` are relative to the config file's directory, as
 * PaddleRec's trainer joins them to `config_abs_dir`; `model_save_path` / `infer_load_path` are
 * relative to the working directory, as PaddleRec saves there. A data directory's files are read in
 * name order (PaddleRec takes `os.listdir`'s order, which is the file system's).
 *
 * The table below is the one source for the mapping; docs/workflow.md prints it.
 */
import { dirname, isAbsolute, join } from "node:path";
import { MtlError } from "../errors.js";
import type { FeatureSchema } from "../features/schema.js";

/** What a PaddleRec key becomes: an mtl setting, a check, a model choice, or nothing (with why). */
export interface PaddleRecKey {
  /** `runner`, `hyper_parameters` or `hyper_parameters.optimizer`. */
  section: "runner" | "hyper_parameters" | "hyper_parameters.optimizer";
  key: string;
  /** The mtl name it maps to, or what mtl does with it. */
  mtl: string;
  /** Set when the key is understood but has no effect in mtl: the reason. */
  unused?: string;
  /** Set when the key belongs to one model: a config without `model:` selects it. */
  model?: string;
}

export const PADDLEREC_KEYS: readonly PaddleRecKey[] = [
  { section: "runner", key: "train_data_dir", mtl: "data.train (relative to the config file; a directory reads its files in name order)" },
  { section: "runner", key: "test_data_dir", mtl: "data.test: evaluated after training (test.json in the run) and the default --data of mtl eval" },
  { section: "runner", key: "use_gpu", mtl: "device: true → cuda (cpu with a warning where the CUDA provider is not installed), false → cpu; --device wins" },
  { section: "runner", key: "train_batch_size", mtl: "training.batchSize" },
  { section: "runner", key: "epochs", mtl: "training.epochs" },
  { section: "runner", key: "print_interval", mtl: "training.logEvery (steps between metrics.jsonl step records)" },
  { section: "runner", key: "model_save_path", mtl: "the run directory when --out is not given (relative to the working directory)" },
  { section: "runner", key: "seed", mtl: "training.seed" },
  { section: "runner", key: "infer_batch_size", mtl: "mtl eval's batch size" },
  { section: "runner", key: "infer_load_path", mtl: "mtl eval's run directory when none is given" },
  { section: "runner", key: "train_reader_path", mtl: "", unused: "mtl reads Ali-CCP text itself, CSV/JSONL by file name; PaddleRec's reader is a Python module" },
  { section: "runner", key: "infer_reader_path", mtl: "", unused: "as train_reader_path" },
  { section: "runner", key: "use_auc", mtl: "", unused: "mtl always computes exact AUCs for every head" },
  { section: "runner", key: "auc_num", mtl: "", unused: "mtl computes AUC for every head the model has" },
  { section: "runner", key: "infer_start_epoch", mtl: "", unused: "mtl keeps the best and the latest state, not one per epoch; mtl eval takes the best, or the latest with --latest" },
  { section: "runner", key: "infer_end_epoch", mtl: "", unused: "as infer_start_epoch" },
  { section: "runner", key: "use_inference", mtl: "", unused: "mtl export writes ONNX; there is no Paddle inference model" },
  { section: "runner", key: "save_inference_feed_varnames", mtl: "", unused: "ONNX inputs are named after the schema's features" },
  { section: "runner", key: "save_inference_fetch_varnames", mtl: "", unused: "ONNX outputs are p_ctr, p_cvr, p_ctcvr" },
  { section: "runner", key: "counterfact_mode", mtl: "modelConfig.counterfactualMode (IPW | DR)", model: "escm2" },
  { section: "runner", key: "infer_train_epoch", mtl: "modelConfig.adaptEpochs", model: "metaheac" },
  { section: "hyper_parameters", key: "sparse_feature_number", mtl: "every id table has N + 1 rows (hashed features N buckets)" },
  { section: "hyper_parameters", key: "sparse_feature_dim", mtl: "every id feature's embedding dim" },
  { section: "hyper_parameters", key: "num_field", mtl: "checked: the schema's id-feature count" },
  { section: "hyper_parameters", key: "feature_size", mtl: "checked: the width of the embedded input (fields × dim)" },
  { section: "hyper_parameters", key: "ctr_fc_sizes", mtl: "modelConfig.towerSizes" },
  { section: "hyper_parameters", key: "cvr_fc_sizes", mtl: "modelConfig.cvrTowerSizes" },
  { section: "hyper_parameters", key: "learning_rate", mtl: "training.lr" },
  { section: "hyper_parameters", key: "global_w", mtl: "modelConfig.globalWeight", model: "escm2" },
  { section: "hyper_parameters", key: "counterfactual_w", mtl: "modelConfig.counterfactualWeight", model: "escm2" },
  { section: "hyper_parameters", key: "expert_num", mtl: "modelConfig.expertCount", model: "escm2" },
  { section: "hyper_parameters", key: "expert_size", mtl: "modelConfig.expertSizes: [expert_size]", model: "escm2" },
  { section: "hyper_parameters", key: "tower_size", mtl: "modelConfig.mmoeTowerSizes: [tower_size]", model: "escm2" },
  { section: "hyper_parameters", key: "gate_num", mtl: "", unused: "mtl's MMoE gives every task its own gate: 2 with IPW, 3 with DR", model: "escm2" },
  { section: "hyper_parameters", key: "optimizer", mtl: "optimizer (its keys below)" },
  { section: "hyper_parameters.optimizer", key: "class", mtl: "optimizer.kind" },
  { section: "hyper_parameters.optimizer", key: "learning_rate", mtl: "training.lr" },
  { section: "hyper_parameters.optimizer", key: "strategy", mtl: "", unused: "the parameter-server strategy of cluster training; mtl trains in one process" },
  // MetaHeac (models/multitask/metaheac): kept in PaddleRecSettings.metaheac as written, then applied
  // by the metaheac block of config.ts (applyMetaheacKeys).
  ...([
    ["max_idxs", "every id table's rows: max id + 1, in schema order"],
    ["embed_dim", "every id feature's embedding dim"],
    ["mlp_dims", "modelConfig.expertSizes [mlp_dims[0]] and gateHidden mlp_dims[-1]"],
    ["local_lr", "modelConfig.localLr"],
    ["num_expert", "modelConfig.expertCount"],
    ["num_output", "modelConfig.criticCount"],
    ["task_count", "modelConfig.taskCount"],
    ["batch_size", "modelConfig.metaBatchSize and adaptBatchSize"],
  ] as const).map(([key, mtl]): PaddleRecKey => ({ section: "hyper_parameters", key, mtl, model: "metaheac" })),
  { section: "hyper_parameters.optimizer", key: "global_learning_rate", mtl: "training.lr", model: "metaheac" },
  { section: "hyper_parameters.optimizer", key: "local_test_learning_rate", mtl: "modelConfig.adaptLr", model: "metaheac" },
];

export function paddleRecKey(section: string, key: string): PaddleRecKey | undefined {
  return PADDLEREC_KEYS.find((k) => k.section === section && k.key === key);
}

/** Known keys of a section, for the hint of a refusal. */
export function paddleRecKeysOf(section: string): string[] {
  return PADDLEREC_KEYS.filter((k) => k.section === section).map((k) => k.key);
}

/** What a PaddleRec config carries beyond the training settings. */
export interface PaddleRecSettings {
  /** runner.use_gpu: the device the config asks for. */
  device?: "cpu" | "cuda";
  /** runner.model_save_path: the run directory when --out is not given. */
  saveDir?: string;
  /** runner.infer_load_path / infer_batch_size: mtl eval's defaults. */
  eval: { run?: string; batchSize?: number };
  /** The model the config's model-specific keys imply, and the first such key (for messages). */
  impliedModel?: { model: string; key: string; line?: number };
  /** MetaHeac's PaddleRec keys as written (the metaheac model maps them). */
  metaheac: Record<string, unknown>;
  /** "runner.use_auc (why)" for every understood-but-unused key, in file order. */
  unused: string[];
  /** num_field / feature_size, checked against the schema when it is known. */
  checks: { numField?: { value: number; line?: number }; featureSize?: { value: number; line?: number } };
}

export function emptyPaddleRecSettings(): PaddleRecSettings {
  return { eval: {}, metaheac: {}, unused: [], checks: {} };
}

/** A data directory of the config resolved as PaddleRec resolves it: relative to the config file. */
export function resolveDataDir(configFile: string, dir: string): string {
  return isAbsolute(dir) ? dir : join(dirname(configFile), dir);
}

/** The model the config implies, checked against the one asked for (`--model` or `model:`). */
export function checkImpliedModel(asked: string | undefined, implied: PaddleRecSettings["impliedModel"], file: string | undefined): string | undefined {
  if (!implied) return asked;
  if (asked === undefined || asked === implied.model) return implied.model;
  // ESCM2's towers backbone and its DR/IPW keys are ESCM2's alone.
  throw new MtlError("E_CONFIG", `'${implied.key}' is a key of PaddleRec's ${implied.model} config, but the model is ${asked}`, {
    where: { ...(file !== undefined ? { file } : {}), ...(implied.line !== undefined ? { line: implied.line } : {}) },
    hint: `train it with --model ${implied.model} (or leave --model out), or drop the key`,
  });
}

/** PaddleRec's num_field and feature_size against the schema the data is read with. */
export function checkPaddleRecSchema(schema: FeatureSchema, pr: PaddleRecSettings | undefined, file: string | undefined): void {
  if (!pr) return;
  const ids = schema.features.filter((f) => f.kind !== "dense");
  const width = schema.features.reduce((w, f) => w + (f.kind === "dense" ? f.size : f.dim), 0);
  const problems: string[] = [];
  const at = (line: number | undefined) => (file !== undefined ? `${file}${line !== undefined ? `:${line}` : ""}: ` : "");
  const { numField, featureSize } = pr.checks;
  if (numField && numField.value !== ids.length) problems.push(`${at(numField.line)}num_field is ${numField.value}, but the schema '${schema.name}' has ${ids.length} id features`);
  if (featureSize && featureSize.value !== width) problems.push(`${at(featureSize.line)}feature_size is ${featureSize.value}, but the schema's embedded input is ${width} wide (features × dim)`);
  if (problems.length) {
    throw new MtlError("E_CONFIG", problems.join("; "), { hint: "give the data's schema (data.schema) or fix the key" });
  }
}
