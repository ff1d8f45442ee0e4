/**
 * `mtl export` without --training: the inference model as one self-describing .onnx file. Raw feature
 * ids/values in (the input contract of src/models/inputs.ts), `p_ctr`, `p_cvr`, `p_ctcvr` out,
 * weights as initializers, and in the metadata (src/scoring/metadata.ts) everything needed to score
 * raw records: the feature schema, the hashing, model name, mtl version, config and the training
 * summary. From a run directory (`--checkpoint`) or freshly initialised.
 *
 * Large models: tables may be stored float16 (a Cast follows each lookup) and split by rows so no
 * initializer exceeds `maxPieceBytes` (WebGPU's buffer limit); when the weights would push the file
 * over protobuf's 2 GB, initializers go to `<file>.data` as ONNX external data.
 */
import { closeSync, existsSync, openSync, rmSync, writeSync } from "node:fs";
import { basename, join } from "node:path";
import { crc32 } from "node:zlib";
import { MtlError } from "../errors.js";
import { isValidatedSchema, schemaHash, toSchemaJson, validateSchema, type FeatureSchema } from "../features/schema.js";
import { onnx } from "../onnx/proto.js";
import { toModelProto } from "../onnx/serialize.js";
import { getModel, type RegisteredModel } from "../models/index.js";
import { CONTEXT_INDEX_INPUT } from "../models/inputs.js";
import { buildInferenceGraph, describeModel } from "../train/program.js";
import { loadRun, readJson, RUN_FILES } from "../flow/rundir.js";
import { initialState, type TrainingState } from "../train/state.js";
import { tablePieces, type TableStorage } from "../train/tables.js";
import { HASHING, META_KEYS, MODEL_FORMAT, weightsDigest } from "../scoring/metadata.js";
import { commitFile, temporaryPath, writeFileAtomic, writesInPlace } from "../util/atomic.js";
import { VERSION } from "../version.js";

/** WebGPU guarantees maxBufferSize ≥ 256 MiB and maxStorageBufferBindingSize ≥ 128 MiB: the portable piece size. */
export const DEFAULT_MAX_PIECE_BYTES = 128 * 1024 * 1024;
/** Protobuf refuses messages over 2 GiB; leave room for the graph and metadata. */
export const DEFAULT_EXTERNAL_DATA_BYTES = 2 * 1024 ** 3 - 64 * 1024 ** 2;
const EXTERNAL_ALIGN = 64 * 1024;

export interface InferenceExportOptions {
  /** Registered model name (or the entry itself); with `checkpoint`, must match the run's (may be omitted). */
  model?: string | RegisteredModel;
  /** Settings over the model's defaults (ignored with a checkpoint: the run's config is used). */
  config?: Record<string, unknown>;
  /** A run directory: run.json, best.mtlstate (else checkpoint.mtlstate), summary.json. */
  checkpoint?: string;
  opset?: number;
  fp16?: boolean;
  maxPieceBytes?: number;
  /** Move initializers to external data when their total exceeds this (default just under 2 GiB). */
  externalDataBytes?: number;
  seed?: number;
  /**
   * Split the scoring graph's input layer by the schema's `context` features, so a request's context
   * is embedded and multiplied into the first layers once, not once per candidate (default true;
   * a schema without `context` has nothing to split).
   */
  contextSplit?: boolean;
}

export interface TableReport {
  name: string;
  rows: number;
  dim: number;
  dtype: "float32" | "float16" | "float64";
  pieces: number;
  /** How the table is split into pieces. */
  splitBy: "none" | "columns" | "rows";
}

export interface InferenceExportResult {
  file: string;
  bytes: number;
  /** The external data file, when the weights went there. */
  externalData: { file: string; bytes: number } | null;
  model: string;
  /** null for a model without a feature schema (it cannot score raw records). */
  schemaHash: string | null;
  denseParameters: number;
  embeddingParameters: number;
  tables: TableReport[];
  fromCheckpoint: string | null;
  /** The schema's context features the graph takes once per context (empty: not split). */
  contextFeatures: string[];
}

/**
 * The feature schema in a model config (key `schema`), as the schema file format or as a validated
 * FeatureSchema object; null when the model takes no schema.
 */
export function schemaOfConfig(config: unknown, source: string): FeatureSchema | null {
  if (typeof config !== "object" || config === null) return null;
  const raw = (config as { schema?: unknown }).schema;
  if (raw === undefined || raw === null) return null;
  return isValidatedSchema(raw) ? raw : validateSchema(raw, `${source}: schema`);
}

/**
 * Moves initializers into an external data file (ONNX's external data: location, offset, length),
 * biggest first, until what stays inline fits under `inlineLimit`. Offsets are 64 KiB aligned so
 * onnxruntime can map them.
 */
function moveToExternalData(model: onnx.ModelProto.$Properties, dataFile: string, location: string, inlineLimit: number): number {
  const inits = (model.graph!.initializer ?? []) as onnx.TensorProto.$Properties[];
  let inline = inits.reduce((s, t) => s + (t.rawData?.byteLength ?? 0), 0);
  const order = [...inits].sort((a, b) => (b.rawData?.byteLength ?? 0) - (a.rawData?.byteLength ?? 0));
  const fd = openSync(dataFile, "w");
  let pos = 0;
  try {
    for (const t of order) {
      if (inline <= inlineLimit) break;
      const bytes = t.rawData!;
      const offset = Math.ceil(pos / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
      if (offset > pos) writeSync(fd, new Uint8Array(offset - pos), 0, offset - pos, pos);
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, offset + done);
      pos = offset + bytes.byteLength;
      inline -= bytes.byteLength;
      t.rawData = undefined;
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [
        { key: "location", value: location },
        { key: "offset", value: String(offset) },
        { key: "length", value: String(bytes.byteLength) },
      ];
    }
  } finally {
    closeSync(fd);
  }
  return pos;
}

export function exportInferenceModel(out: string, opts: InferenceExportOptions): InferenceExportResult {
  let entry: RegisteredModel;
  let config: unknown;
  let state: TrainingState;
  let summary: unknown = null;
  let configSource: string;
  if (opts.checkpoint !== undefined) {
    const models = typeof opts.model === "object" ? { [opts.model.definition.name]: opts.model } : undefined;
    const run = loadRun(opts.checkpoint, models ? { models } : {});
    const named = typeof opts.model === "string" ? opts.model : opts.model?.definition.name;
    if (named !== undefined && named !== run.manifest.model) {
      throw new MtlError("E_CONFIG", `--model ${named} but the run trained '${run.manifest.model}'`, { where: { file: join(opts.checkpoint, RUN_FILES.run), field: "model" }, hint: "leave out --model to export the run's model" });
    }
    entry = run.entry;
    configSource = join(opts.checkpoint, RUN_FILES.run);
    config = run.config;
    state = run.state;
    const summaryFile = join(opts.checkpoint, RUN_FILES.summary);
    summary = existsSync(summaryFile) ? readJson<unknown>(summaryFile, "summary.json") : null;
  } else {
    if (opts.model === undefined) throw new MtlError("E_USAGE", "name a model (--model) or a run directory (--checkpoint)");
    entry = typeof opts.model === "object" ? opts.model : getModel(opts.model);
    configSource = "config";
    config = entry.validate({ ...(entry.defaults as Record<string, unknown>), ...(opts.config ?? {}) }, configSource);
    state = initialState(describeModel(entry.definition, config), { kind: "sgd" }, { seed: opts.seed ?? 0 });
  }
  const schema = schemaOfConfig(config, configSource);
  const storage: TableStorage = { float16: opts.fp16 === true, maxPieceBytes: opts.maxPieceBytes ?? DEFAULT_MAX_PIECE_BYTES };
  const graph = buildInferenceGraph(entry.definition, config, state, { opset: opts.opset, tableStorage: storage, contextSplit: opts.contextSplit ?? true });
  const described = describeModel(entry.definition, config);
  const tables: TableReport[] = described.tables.map((t) => {
    const split = tablePieces(t, storage.float16 ? 2 : 4, storage.maxPieceBytes);
    return { name: t.name, rows: t.rows, dim: t.dim, dtype: storage.float16 ? "float16" : "float32", pieces: split.pieces, splitBy: split.by };
  });
  graph.metadata.set(META_KEYS.model, entry.definition.name);
  graph.metadata.set(META_KEYS.version, VERSION);
  graph.metadata.set(META_KEYS.config, JSON.stringify(config));
  graph.metadata.set(META_KEYS.summary, JSON.stringify(summary));
  graph.metadata.set(META_KEYS.tables, JSON.stringify(tables));
  if (schema) {
    graph.metadata.set(META_KEYS.format, MODEL_FORMAT);
    graph.metadata.set(META_KEYS.schema, JSON.stringify(toSchemaJson(schema)));
    graph.metadata.set(META_KEYS.schemaHash, schemaHash(schema));
    graph.metadata.set(META_KEYS.hashing, JSON.stringify(HASHING));
  }
  const proto = toModelProto(graph, { docString: `mtl ${VERSION}: ${entry.definition.name} scoring model (raw features in, p_ctr/p_cvr/p_ctcvr out)` });
  const inlineBytes = ((proto.graph!.initializer ?? []) as onnx.TensorProto.$Properties[]).reduce((s, t) => s + (t.rawData?.byteLength ?? 0), 0);
  const limit = opts.externalDataBytes ?? DEFAULT_EXTERNAL_DATA_BYTES;
  let externalData: InferenceExportResult["externalData"] = null;
  const dataFile = `${out}.data`;
  if (inlineBytes > limit) {
    if (writesInPlace(out)) {
      throw new MtlError("E_USAGE", `the weights (${inlineBytes} bytes) exceed one protobuf file and go to an external data file beside the model, which ${out} cannot have`, { where: { file: out }, hint: "write the model to a file, or export with --fp16 or smaller tables" });
    }
    const tmp = temporaryPath(dataFile);
    try {
      const bytes = moveToExternalData(proto, tmp, basename(dataFile), limit);
      commitFile(tmp, dataFile);
      externalData = { file: dataFile, bytes };
      (proto.metadataProps as onnx.StringStringEntryProto.$Properties[]).push({ key: META_KEYS.externalData, value: basename(dataFile) });
    } catch (err) {
      rmSync(tmp, { force: true });
      if (err instanceof MtlError) throw err;
      throw new MtlError("E_IO", `cannot write external data: ${(err as Error).message}`, { where: { file: dataFile }, cause: err });
    }
  }
  // The checksum of the weights as stored (after any move to external data), verified on every load.
  (proto.metadataProps as onnx.StringStringEntryProto.$Properties[]).push({ key: META_KEYS.weights, value: JSON.stringify(weightsDigest((proto.graph!.initializer ?? []) as onnx.ITensorProto[], crc32)) });
  const bytes = onnx.ModelProto.encode(proto).finish();
  writeFileAtomic(out, bytes, "model");
  return {
    file: out, bytes: bytes.byteLength, externalData, model: entry.definition.name,
    schemaHash: schema ? schemaHash(schema) : null,
    denseParameters: described.params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0),
    embeddingParameters: described.tables.reduce((s, t) => s + t.rows * t.dim, 0),
    tables, fromCheckpoint: opts.checkpoint ?? null,
    contextFeatures: proto.graph!.input!.some((v) => v.name === CONTEXT_INDEX_INPUT) && schema ? [...schema.context] : [],
  };
}
