/**
 * Portable training artifacts: the training-step model, the eval model, the inference model and
 * the initial state, written to one directory. Any onnxruntime binding can run them; see
 * docs/training-artifacts.md for the few lines that run one step from Node and from Python.
 */
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { MtlError } from "../errors.js";
import { encodeGraph } from "../onnx/serialize.js";
import type { OptimizerConfig } from "../optim/index.js";
import { VERSION } from "../version.js";
import type { FloatDType, ModelDefinition } from "../train/model.js";
import { buildEvalProgram, buildInferenceGraph, buildTrainingStep, describeModel } from "../train/program.js";
import { initialState, type TrainingState } from "../train/state.js";
import { commitFile, ioError, temporaryPath, writeFileAtomic } from "../util/atomic.js";

export interface ExportTrainingOptions<C> {
  model: ModelDefinition<C>;
  config: C;
  optimizer: OptimizerConfig;
  clipNorm?: number;
  seed?: number;
  dtype?: FloatDType;
  opset?: number;
  /** A trained state (a run's best.mtlstate) to write instead of freshly initialised weights; its optimizer must be `optimizer`. */
  state?: TrainingState;
  /** Where `state` came from, recorded in the state's info. */
  stateSource?: string;
}

export interface WrittenFile {
  file: string;
  bytes: number;
}

export const TRAINING_FILES = {
  trainStep: "train_step.onnx",
  eval: "eval.onnx",
  inference: "inference.onnx",
  state: "state.mtlstate",
  signature: "signature.json",
} as const;

/**
 * Writes the artifacts into a temporary sibling directory and moves them into `dir` only when all
 * are written: a failure (disk full) leaves no half-made export under the final name. A new `dir`
 * appears whole (one rename); into an existing one each file is renamed in, whole.
 */
export function exportTrainingArtifacts<C>(dir: string, opts: ExportTrainingOptions<C>): WrittenFile[] {
  const staging = temporaryPath(dir);
  try {
    mkdirSync(dirname(staging), { recursive: true });
    mkdirSync(staging);
  } catch (err) {
    throw ioError(err, dir, "export directory");
  }
  try {
    const files = writeArtifacts(staging, opts);
    if (!existsSync(dir)) commitFile(staging, dir);
    else {
      if (!statSync(dir).isDirectory()) throw new MtlError("E_IO", "cannot write the training artifacts: --out is a file, not a directory", { where: { file: dir } });
      for (const f of files) commitFile(join(staging, f.file), join(dir, f.file));
    }
    return files;
  } catch (err) {
    // Name the file by where it was going, not by the staging directory.
    if (err instanceof MtlError && err.where.file?.startsWith(staging)) throw new MtlError(err.code, err.message, { where: { ...err.where, file: dir + err.where.file.slice(staging.length) }, ...(err.hint ? { hint: err.hint } : {}), cause: err.cause });
    throw err;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function writeArtifacts<C>(dir: string, opts: ExportTrainingOptions<C>): WrittenFile[] {
  const dtype = opts.dtype ?? "float32";
  const common = { dtype, opset: opts.opset };
  const train = buildTrainingStep(opts.model, opts.config, { ...common, optimizer: opts.optimizer, clipNorm: opts.clipNorm });
  const evaluation = buildEvalProgram(opts.model, opts.config, common);
  const state = opts.state ?? initialState(describeModel(opts.model, opts.config, dtype), opts.optimizer, { seed: opts.seed ?? 0, dtype });
  state.info = { model: opts.model.name, config: opts.config as unknown, optimizer: train.signature.optimizer, dtype, mtl: VERSION, ...(opts.stateSource ? { trainedState: opts.stateSource } : {}) };
  const inference = buildInferenceGraph(opts.model, opts.config, state, common);
  inference.metadata.set("mtl.version", VERSION);
  inference.metadata.set("mtl.config", JSON.stringify(opts.config));

  const out: WrittenFile[] = [];
  const put = (file: string, bytes: Uint8Array | string) => out.push({ file, bytes: writeFileAtomic(join(dir, file), bytes, "training artifact") });
  put(TRAINING_FILES.trainStep, encodeGraph(train.graph));
  put(TRAINING_FILES.eval, encodeGraph(evaluation.graph));
  put(TRAINING_FILES.inference, encodeGraph(inference));
  put(TRAINING_FILES.signature, JSON.stringify({ train_step: train.signature, eval: evaluation.signature }, null, 2) + "\n");
  state.save(join(dir, TRAINING_FILES.state));
  out.push({ file: TRAINING_FILES.state, bytes: statSync(join(dir, TRAINING_FILES.state)).size });
  return out;
}
