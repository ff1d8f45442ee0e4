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
 *   .lock                while a process writes the run: its pid (lockRunDirectory)
 */
import { existsSync, linkSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { MtlError } from "../errors.js";
import { schemaHash, validateSchema, type FeatureSchema } from "../features/schema.js";
import type { FunnelMetrics } from "../metrics/funnel.js";
import { getModel, type RegisteredModel } from "../models/index.js";
import { describeModel } from "../train/program.js";
import { fnv1a32 } from "../util/hash.js";
import type { resolveOptimizer } from "../optim/index.js";
import { TrainingState } from "../train/state.js";
import { processAlive } from "../util/atomic.js";
import type { RunConfig, TrainingSettings } from "./config.js";

export const RUN_FILES = {
  run: "run.json", checkpoint: "checkpoint.mtlstate", progress: "progress.json", best: "best.mtlstate",
  metrics: "metrics.jsonl", curves: "curves.json", summary: "summary.json",
} as const;

export type RunPaths = Record<keyof typeof RUN_FILES, string>;

/** The lock file of a run directory being written. */
export const RUN_LOCK = ".lock";

/**
 * Locks run directory `dir` for this process: a second writer fails at once with E_LOCKED naming
 * the holder's pid. A lock left by a dead process (SIGKILL, power cut) is taken over. Returns the
 * release function (also run at process exit).
 *
 * The lock is made whole beside the target and hard-linked into place (link fails if the name
 * exists: two processes cannot both win). A stale lock is first renamed to a name of our own, so of
 * two processes taking it over only one gets it; the other finds the winner's fresh lock.
 */
export function lockRunDirectory(dir: string): () => void {
  const lock = join(dir, RUN_LOCK);
  const mine = join(dir, `${RUN_LOCK}.${process.pid}`);
  writeFileSync(mine, `${process.pid}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(mine, lock);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 3) throw err;
      }
      const holder = lockHolder(lock);
      if (holder !== null && (holder === process.pid || processAlive(holder))) {
        throw new MtlError("E_LOCKED", `the run directory is being written by process ${holder}${holder === process.pid ? " (this one)" : ""}`, { where: { file: dir }, hint: "wait for it to finish, or use another --out" });
      }
      // Stale (dead holder, or an unreadable lock): move it aside under our own name, then retry the link.
      const stale = join(dir, `${RUN_LOCK}.stale-${process.pid}`);
      try {
        renameSync(lock, stale);
      } catch {
        continue; // another process moved it first; the link decides between us
      }
      const moved = lockHolder(stale);
      if (moved !== null && moved !== holder && processAlive(moved)) {
        // Between our read and our rename a live process took the lock over: give it back.
        try {
          linkSync(stale, lock);
        } finally {
          rmSync(stale, { force: true });
        }
        throw new MtlError("E_LOCKED", `the run directory is being written by process ${moved}`, { where: { file: dir }, hint: "wait for it to finish, or use another --out" });
      }
      rmSync(stale, { force: true });
    }
  } finally {
    rmSync(mine, { force: true });
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off("exit", release);
    if (lockHolder(lock) === process.pid) rmSync(lock, { force: true });
  };
  process.on("exit", release);
  return release;
}

function lockHolder(lock: string): number | null {
  try {
    const pid = Number(readFileSync(lock, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Refuses `dir` as the --out of a fresh run unless it is new, empty, or already an mtl run
 * (run.json): files of the user's own are never written over.
 */
export function checkRunDirectory(dir: string): void {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new MtlError("E_RUN", "--out exists and is not a directory", { where: { file: dir }, hint: "name a new directory for the run" });
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (names.includes(RUN_FILES.run)) return;
  const theirs = names.filter((n) => !n.startsWith(RUN_LOCK) && !/^\..+\.(tmp|partial)-\d+$/.test(n));
  if (theirs.length) {
    throw new MtlError("E_RUN", `--out is a directory that is not an mtl run and not empty (it holds ${theirs.slice(0, 3).join(", ")}${theirs.length > 3 ? ", ..." : ""})`, { where: { file: dir }, hint: "name a new directory for the run; mtl never writes over files of yours" });
  }
}

/** Every file of the run directory `dir`, by its RUN_FILES key. */
export function runPaths(dir: string): RunPaths {
  return Object.fromEntries(Object.entries(RUN_FILES).map(([k, f]) => [k, join(dir, f)])) as RunPaths;
}

/** The files of run `dir` as inputs a command reads: an output that is one of them is refused (refuseOverwritingInput). */
export function runInputs(dir: string): { path: string; what: string }[] {
  return Object.entries(runPaths(dir)).map(([, path]) => ({ path, what: `a file of the run (${basename(path)})` }));
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
  verifyCheckpoint(state, checkpoint, manifest, entry, config, schema);
  return { manifest, entry, config, schema, state, checkpoint };
}

/** JSON with object keys sorted: the same value gives the same text whatever its key order. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

/** What a checkpoint of this run records about the model it holds (in its info, beside the progress). */
export interface CheckpointIdentity {
  model: string;
  /** fnv1a32 of run.json's modelConfig (keys sorted), hex. */
  configHash: string;
  schemaHash: string | null;
}

export function checkpointIdentity(manifest: Pick<RunManifest, "model" | "modelConfig">, schema: FeatureSchema | null): CheckpointIdentity {
  return { model: manifest.model, configHash: fnv1a32(canonicalJson(manifest.modelConfig)).toString(16).padStart(8, "0"), schemaHash: schema ? schemaHash(schema) : null };
}

/**
 * Refuses a state that is not this run's: another model, another config or schema (the identity its
 * info records), or tensors that do not fit the model the run's config builds (names and shapes,
 * which catches a state of another model even without an identity, as version 1 files have).
 */
export function verifyCheckpoint(state: TrainingState, file: string, manifest: Pick<RunManifest, "model" | "modelConfig">, entry: RegisteredModel, config: unknown, schema: FeatureSchema | null): void {
  const refuse = (what: string): never => {
    throw new MtlError("E_CHECKPOINT", `the checkpoint is not of this run: ${what}`, { where: { file }, hint: "a state file belongs to the run directory that wrote it; copy the whole run, not one .mtlstate" });
  };
  const want = checkpointIdentity(manifest, schema);
  const info = state.info as Partial<CheckpointIdentity>;
  if (info.model !== undefined && info.model !== want.model) refuse(`it holds model '${String(info.model)}', run.json trains '${want.model}'`);
  if (info.configHash !== undefined && info.configHash !== want.configHash) refuse(`its model config hash is ${String(info.configHash)}, run.json's is ${want.configHash}`);
  if (info.schemaHash !== undefined && info.schemaHash !== want.schemaHash) refuse(`its schema hash is ${String(info.schemaHash)}, run.json's is ${want.schemaHash}`);
  const layout = describeModel(entry.definition, config);
  const expected = new Map<string, number[] | null>();
  for (const p of layout.params) expected.set(p.name, [...p.shape]);
  for (const x of layout.states) expected.set(x.name, [...x.shape]);
  for (const t of layout.tables) expected.set(t.name, null);
  for (const [name, dims] of expected) {
    const t = state.tensors.get(name);
    if (!t) return refuse(`it has no tensor '${name}', which ${want.model} needs`);
    const table = layout.tables.find((x) => x.name === name);
    const fits = table ? t.dims.length === 2 && t.dims[0] === table.rows && t.dims[1]! % table.dim === 0 : t.dims.length === dims!.length && t.dims.every((d, i) => d === dims![i]);
    if (!fits) refuse(`tensor '${name}' has dims [${t.dims.join(", ")}], ${want.model} with this config needs ${table ? `${table.rows} rows of ${table.dim}` : `[${dims!.join(", ")}]`}`);
  }
  for (const name of state.tensors.keys()) {
    const base = name.includes("__") ? name.slice(0, name.indexOf("__")) : name;
    if (!expected.has(base)) refuse(`it holds tensor '${name}', which ${want.model} with this config does not have`);
  }
}
