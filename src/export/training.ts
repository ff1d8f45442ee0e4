/**
 * Portable training artifacts: the training-step model, the eval model, the inference model and
 * the initial state, written to one directory. Any onnxruntime binding can run them; see
 * docs/training-artifacts.md for the few lines that run one step from Node and from Python.
 */
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { encodeGraph } from "../onnx/serialize.js";
import type { OptimizerConfig } from "../optim/index.js";
import { VERSION } from "../version.js";
import type { FloatDType, ModelDefinition } from "../train/model.js";
import { buildEvalProgram, buildInferenceGraph, buildTrainingStep, describeModel } from "../train/program.js";
import { initialState, type TrainingState } from "../train/state.js";
import { writeFileAtomic } from "../util/atomic.js";

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

export function exportTrainingArtifacts<C>(dir: string, opts: ExportTrainingOptions<C>): WrittenFile[] {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new MtlError("E_IO", `cannot create directory: ${(err as Error).message}`, { where: { file: dir }, cause: err });
  }
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
