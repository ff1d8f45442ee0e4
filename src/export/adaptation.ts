/**
 * `mtl export` of a MetaHeac run: the adaptation bundle (src/adapt/bundle.ts) in a directory, so
 * that a campaign's seed list adapts the meta-learned model anywhere onnxruntime runs, the browser
 * included. Also the programs `mtl adapt` builds for a run directory, so both paths use one builder.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { toSchemaJson } from "../features/schema.js";
import { encodeGraph } from "../onnx/serialize.js";
import type { MetaheacConfig } from "../models/metaheac.js";
import type { ModelDefinition } from "../train/model.js";
import { buildEvalProgram, buildInferenceGraph, buildTrainingStep, tableWeights, type ProgramSignature } from "../train/program.js";
import type { TrainingState } from "../train/state.js";
import { VERSION } from "../version.js";
import { loadRun } from "../flow/rundir.js";
import { getModel, type RegisteredModel } from "../models/index.js";
import { ADAPT_FILES, ADAPT_FORMAT, checkManifest, decodeWeights, encodeWeights, type AdaptManifest } from "../adapt/bundle.js";
import type { AdaptationPlan, AdaptationWeights } from "../adapt/adapter.js";

export interface AdaptationPrograms {
  train: { bytes: Uint8Array; signature: ProgramSignature };
  eval: { bytes: Uint8Array; signature: ProgramSignature };
}

/** The Adam step and the eval program of the network (float32), as adaptation runs them. */
export function adaptationPrograms(model: ModelDefinition<MetaheacConfig>, config: MetaheacConfig): AdaptationPrograms {
  const train = buildTrainingStep(model, config, { optimizer: { kind: "adam" } });
  const evaluation = buildEvalProgram(model, config);
  return { train: { bytes: encodeGraph(train.graph), signature: train.signature }, eval: { bytes: encodeGraph(evaluation.graph), signature: evaluation.signature } };
}

/** The weights of a training state (tables without their optimizer slots), float32. */
export function weightsOfState(state: TrainingState, sig: ProgramSignature): AdaptationWeights {
  const f32 = (a: Float32Array | Float64Array) => (a instanceof Float32Array ? a.slice() : Float32Array.from(a));
  return {
    params: new Map(sig.params.map((p) => [p.name, f32(state.require(p.name).data)])),
    tables: new Map(sig.tables.map((t) => [t.name, f32(tableWeights(state.require(t.name).data, t))])),
  };
}

export function planOf(config: MetaheacConfig, seed = 2021): AdaptationPlan {
  return { epochs: config.adaptEpochs, lr: config.adaptLr, batchSize: config.adaptBatchSize, seed };
}

/** A MetaHeac model ready to adapt, from a run directory or an exported bundle directory. */
export interface AdaptableModel {
  model: string;
  config: MetaheacConfig;
  programs: AdaptationPrograms;
  weights: AdaptationWeights;
  plan: AdaptationPlan;
  source: string;
}

function readFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new MtlError("E_IO", `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file: path } });
  }
}

export function loadAdaptable(dir: string): AdaptableModel {
  let manifestText: string | null = null;
  try {
    manifestText = readFileSync(join(dir, ADAPT_FILES.manifest), "utf8");
  } catch {
    manifestText = null;
  }
  if (manifestText !== null) {
    const file = join(dir, ADAPT_FILES.manifest);
    let parsed: unknown;
    try {
      parsed = JSON.parse(manifestText);
    } catch (err) {
      throw new MtlError("E_MODEL", `${file} is not valid JSON: ${(err as Error).message}`, { where: { file } });
    }
    const m = checkManifest(parsed, file);
    if (m.model !== "metaheac") throw new MtlError("E_MODEL", `${file}: adaptation is for metaheac models, not ${m.model}`, { where: { file, field: "model" } });
    const entry = getModelEntry(m.model);
    const config = entry.validate({ ...m.modelConfig }, file);
    return {
      model: m.model, config, plan: m.plan, source: dir,
      programs: { train: { bytes: readFile(join(dir, ADAPT_FILES.trainStep)), signature: m.train }, eval: { bytes: readFile(join(dir, ADAPT_FILES.eval)), signature: m.eval } },
      weights: decodeWeights(readFile(join(dir, ADAPT_FILES.weights)), m.weights, join(dir, ADAPT_FILES.weights)),
    };
  }
  const run = loadRun(dir, { which: "latest" });
  if (run.manifest.model !== "metaheac") throw new MtlError("E_USAGE", `${dir} holds a ${run.manifest.model} run; adaptation is for metaheac runs`, { where: { file: dir } });
  const config = run.config as MetaheacConfig;
  const programs = adaptationPrograms(run.entry.definition as ModelDefinition<MetaheacConfig>, config);
  return { model: run.manifest.model, config, programs, weights: weightsOfState(run.state, programs.train.signature), plan: planOf(config), source: run.checkpoint };
}

/** The registry entry, typed as the MetaHeac entry it must be (checked by name where it matters). */
function getModelEntry(name: string): RegisteredModel<MetaheacConfig> {
  return getModel(name) as RegisteredModel<MetaheacConfig>;
}

export interface WrittenFile {
  file: string;
  bytes: number;
}

/** Writes the adaptation bundle of a MetaHeac run (or of any adaptable model) into `dir`. */
export function exportAdaptation(dir: string, runDir: string): WrittenFile[] {
  const m = loadAdaptable(runDir);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new MtlError("E_IO", `cannot create directory: ${(err as Error).message}`, { where: { file: dir }, cause: err });
  }
  const { bytes, index } = encodeWeights(m.weights, m.programs.train.signature);
  const manifest: AdaptManifest = {
    format: ADAPT_FORMAT, version: 1, mtlVersion: VERSION, model: m.model,
    modelConfig: { ...m.config, schema: toSchemaJson(m.config.schema) }, plan: m.plan,
    train: m.programs.train.signature, eval: m.programs.eval.signature, weights: index,
  };
  const entry = getModelEntry(m.model);
  const source = { get: (name: string) => m.weights.params.get(name) ?? m.weights.tables.get(name) };
  const inference = buildInferenceGraph(entry.definition, m.config, source);
  inference.metadata.set("mtl.version", VERSION);
  const out: WrittenFile[] = [];
  const put = (file: string, data: Uint8Array | string) => {
    const path = join(dir, file), tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, data);
    renameSync(tmp, path);
    out.push({ file, bytes: typeof data === "string" ? Buffer.byteLength(data) : data.byteLength });
  };
  put(ADAPT_FILES.trainStep, m.programs.train.bytes);
  put(ADAPT_FILES.eval, m.programs.eval.bytes);
  put(ADAPT_FILES.weights, bytes);
  put(ADAPT_FILES.inference, encodeGraph(inference));
  put(ADAPT_FILES.manifest, JSON.stringify(manifest, null, 1) + "\n");
  return out;
}
