/**
 * What an exported mtl model carries in its ONNX metadata_props, and reading it back. Pure
 * TypeScript over the generated onnx module (no Node API), so the browser reads a model the same way.
 *
 *   mtl.format         "mtl-inference/1": this file scores raw records
 *   mtl.model          model name ("esmm", ...)
 *   mtl.version        the mtl that exported it
 *   mtl.schema         the feature schema, as the schema file format (JSON)
 *   mtl.schema_hash    schemaHash(schema)
 *   mtl.hashing        how hash_buckets features become ids (JSON, see HASHING)
 *   mtl.config         the model's configuration (JSON)
 *   mtl.training_summary  the run's summary.json (data, steps, validation metrics), or null (JSON)
 *   mtl.tables         how tables are stored: dtype, pieces (JSON)
 *   mtl.external_data  the external data file's name, when the weights live beside the model
 *   mtl.weights        {"algorithm": "crc32", "tensors": {name: crc}}: a checksum of every initializer
 *                      (its dtype, dims and bytes; for external data, its location entries), verified
 *                      on load by mtl run, serve, inspect and mtl/web (verifyWeights)
 */
import protobuf from "protobufjs/minimal.js";
import { onnx } from "../../onnx/generated/onnx_pb.js";
import { MtlError } from "../errors.js";
import { layoutOf, type Layout } from "../features/batch.js";
import { schemaHash, validateSchema, type FeatureSchema } from "../features/schema.js";
import { crc32 } from "../util/hash.js";

export const MODEL_FORMAT = "mtl-inference/1";

export const META_KEYS = {
  format: "mtl.format",
  model: "mtl.model",
  version: "mtl.version",
  schema: "mtl.schema",
  schemaHash: "mtl.schema_hash",
  hashing: "mtl.hashing",
  config: "mtl.config",
  summary: "mtl.training_summary",
  tables: "mtl.tables",
  externalData: "mtl.external_data",
  weights: "mtl.weights",
} as const;

/** The hashing mtl's encoder implements (src/features/hash.ts); a model naming another is refused. */
export const HASHING = {
  function: "fnv1a32",
  input: "utf-8 bytes of the value; JSON numbers and booleans as String(v)",
  id: "1 + fnv1a32(value) % hash_buckets",
  padding: 0,
  list_separator: "from the schema",
} as const;

export interface ModelInfo {
  model: string;
  version: string;
  schema: FeatureSchema;
  layout: Layout;
  config: unknown;
  summary: unknown;
  tables: unknown;
  /** Every metadata entry, as stored. */
  metadata: Record<string, string>;
}

/**
 * The metadata_props of an ONNX model file. Reads only the top level of the protobuf: the graph
 * (and its weights) is skipped over, not decoded or copied.
 */
export function readModelMetadata(bytes: Uint8Array, source = "<model>"): Record<string, string> {
  const out: Record<string, string> = {};
  let sawGraph = false;
  try {
    const r = protobuf.Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      if (field === 14 && (tag & 7) === 2) {
        const e = onnx.StringStringEntryProto.decode(r, r.uint32());
        out[e.key] = e.value;
      } else {
        if (field === 7) sawGraph = true;
        if (field === 0) throw new Error("field number 0");
        r.skipType(tag & 7);
      }
    }
  } catch (err) {
    throw new MtlError("E_MODEL", `not an ONNX model: protobuf decoding failed (${(err as Error).message})`, { where: { file: source }, hint: "the file may be truncated or not an .onnx file" });
  }
  if (!sawGraph) throw new MtlError("E_MODEL", "not an ONNX model: it has no graph", { where: { file: source }, hint: "the file may be truncated or not an .onnx file" });
  return out;
}

function json(meta: Record<string, string>, key: string, source: string): unknown {
  const text = meta[key];
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new MtlError("E_MODEL", `metadata '${key}' is not valid JSON: ${(err as Error).message}`, { where: { file: source, field: key } });
  }
}

/** The mtl metadata of a model, checked: a file without it is "not an mtl model" (code E_NOT_MTL). */
export function modelInfoFromMetadata(meta: Record<string, string>, source = "<model>"): ModelInfo {
  if (meta[META_KEYS.format] !== MODEL_FORMAT || meta[META_KEYS.schema] === undefined) {
    const why = meta[META_KEYS.format] === undefined
      ? (meta["mtl.model"] ? "it was exported without a feature schema" : "it has no mtl metadata")
      : `its format is '${meta[META_KEYS.format]}', this mtl reads '${MODEL_FORMAT}'`;
    throw new MtlError("E_NOT_MTL", `not an mtl scoring model: ${why}`, { where: { file: source }, hint: "export one with `mtl export --model <name> -o model.onnx` (a model built on a feature schema)" });
  }
  const hashing = json(meta, META_KEYS.hashing, source) as { function?: unknown } | undefined;
  if (!hashing || hashing.function !== HASHING.function) {
    throw new MtlError("E_MODEL", `the model hashes features with ${JSON.stringify(hashing?.function)}, this mtl with ${HASHING.function}`, { where: { file: source, field: META_KEYS.hashing } });
  }
  const schema = validateSchema(json(meta, META_KEYS.schema, source), `${source} (metadata ${META_KEYS.schema})`);
  const hash = meta[META_KEYS.schemaHash];
  if (hash !== undefined && hash !== schemaHash(schema)) {
    throw new MtlError("E_MODEL", `the embedded schema does not match its hash (${hash} vs ${schemaHash(schema)})`, { where: { file: source, field: META_KEYS.schemaHash }, hint: "the file was edited or written by another mtl version" });
  }
  return {
    model: meta[META_KEYS.model] ?? "unknown",
    version: meta[META_KEYS.version] ?? "unknown",
    schema,
    layout: layoutOf(schema),
    config: json(meta, META_KEYS.config, source) ?? null,
    summary: json(meta, META_KEYS.summary, source) ?? null,
    tables: json(meta, META_KEYS.tables, source) ?? null,
    metadata: { ...meta },
  };
}

export function readModelInfo(bytes: Uint8Array, source = "<model>"): ModelInfo {
  return modelInfoFromMetadata(readModelMetadata(bytes, source), source);
}

/** The checksum an exported model carries of its weights (metadata `mtl.weights`). */
export interface WeightsDigest {
  algorithm: "crc32";
  /** Each initializer's CRC-32, hex, by name. */
  tensors: Record<string, string>;
}

const hex = (n: number) => n.toString(16).padStart(8, "0");

/** A CRC-32 implementation: util/hash.ts's (everywhere) or node:zlib's (the same digits, ~10x faster). */
export type Crc32 = (bytes: Uint8Array, crc?: number) => number;

/** One initializer's checksum: its dtype and dims, then its bytes (raw data, else the tensor's own encoding without its name). */
function tensorCrc(t: onnx.ITensorProto, crc: Crc32): number {
  const dims = (t.dims ?? []).map((d) => String(d)).join(",");
  const head = crc(new TextEncoder().encode(`${t.dataType ?? 0}:${dims}:`));
  if (t.rawData && t.rawData.byteLength > 0) return crc(t.rawData, head);
  return crc(onnx.TensorProto.encode({ ...t, name: "", docString: "" }).finish(), head);
}

export function weightsDigest(initializers: readonly onnx.ITensorProto[], crc: Crc32 = crc32): WeightsDigest {
  const tensors: Record<string, string> = {};
  for (const t of initializers) tensors[t.name ?? ""] = hex(tensorCrc(t, crc));
  return { algorithm: "crc32", tensors };
}

/** The initializers of a model file, decoded one by one (the rest of the graph is skipped over). */
export function readInitializers(bytes: Uint8Array, source = "<model>"): onnx.TensorProto[] {
  const out: onnx.TensorProto[] = [];
  try {
    const r = protobuf.Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 7 && (tag & 7) === 2) {
        const end = r.uint32() + r.pos;
        while (r.pos < end) {
          const t = r.uint32();
          if (t >>> 3 === 5 && (t & 7) === 2) out.push(onnx.TensorProto.decode(r, r.uint32()));
          else r.skipType(t & 7);
        }
      } else r.skipType(tag & 7);
    }
  } catch (err) {
    throw new MtlError("E_MODEL", `not an ONNX model: protobuf decoding failed (${(err as Error).message})`, { where: { file: source }, hint: "the file may be truncated or not an .onnx file" });
  }
  return out;
}

/**
 * Checks a model's weights against the checksum in its metadata: a flipped bit, a truncated or an
 * edited tensor is refused (E_INTEGRITY) naming the tensor. A model exported before mtl wrote
 * checksums has none and passes. Returns whether there was a checksum to verify.
 */
export function verifyWeights(meta: Record<string, string>, initializers: readonly onnx.ITensorProto[], source = "<model>", crc: Crc32 = crc32): boolean {
  const text = meta[META_KEYS.weights];
  if (text === undefined) return false;
  const hint = "the file is damaged or was edited; export it again (or pass --skip-checksum if you edited it on purpose)";
  const refuse = (what: string): never => {
    throw new MtlError("E_INTEGRITY", `the model's weights do not match their checksum: ${what}`, { where: { file: source, field: META_KEYS.weights }, hint });
  };
  let stored: WeightsDigest;
  try {
    stored = JSON.parse(text) as WeightsDigest;
  } catch {
    return refuse("the checksum itself is not valid JSON");
  }
  if (stored?.algorithm !== "crc32" || typeof stored.tensors !== "object" || stored.tensors === null) return refuse("the checksum record is malformed");
  const actual = weightsDigest(initializers, crc).tensors;
  for (const [name, crc] of Object.entries(stored.tensors)) {
    if (actual[name] === undefined) refuse(`initializer '${name}' is missing`);
    if (actual[name] !== crc) refuse(`initializer '${name}' has CRC-32 ${actual[name]}, the export recorded ${crc}`);
  }
  for (const name of Object.keys(actual)) if (!(name in stored.tensors)) refuse(`initializer '${name}' was not in the exported model`);
  return true;
}

/**
 * Refuses a model whose metadata disagrees with its graph: every table of the embedded schema must
 * be an initializer (or its pieces, `<table>.colsK` / `<table>.partK`) with the schema's rows and
 * dim. Otherwise an id the schema allows would index past the table, and onnxruntime would fail the
 * whole micro-batch the request joined.
 */
export function checkModelAgainstGraph(info: Pick<ModelInfo, "layout">, initializers: readonly onnx.ITensorProto[], source = "<model>"): void {
  const byName = new Map(initializers.map((t) => [t.name ?? "", t]));
  const dimsOf = (t: onnx.ITensorProto) => (t.dims ?? []).map((d) => Number(d));
  for (const table of info.layout.tables) {
    const whole = byName.get(table.name);
    let rows: number, dim: number;
    if (whole) [rows = NaN, dim = NaN] = dimsOf(whole);
    else {
      const cols = initializers.filter((t) => t.name?.startsWith(`${table.name}.cols`)).map(dimsOf);
      const parts = initializers.filter((t) => t.name?.startsWith(`${table.name}.part`)).map(dimsOf);
      if (cols.length) [rows, dim] = [cols[0]![0]!, cols.reduce((s, d) => s + d[1]!, 0)];
      else if (parts.length) [rows, dim] = [parts.reduce((s, d) => s + d[0]!, 0), parts[0]![1]!];
      else {
        throw new MtlError("E_MODEL", `the schema's table '${table.name}' is not in the graph`, { where: { file: source, field: META_KEYS.schema }, hint: "the metadata does not describe this graph; export the model again" });
      }
    }
    if (rows !== table.rows || dim !== table.dim) {
      throw new MtlError("E_MODEL", `the schema says table '${table.name}' has ${table.rows} rows of ${table.dim}, the graph's has ${rows} of ${dim}`, { where: { file: source, field: META_KEYS.schema }, hint: "ids the schema allows would fall outside the table; export the model again from its run" });
    }
  }
}
