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
 */
import protobuf from "protobufjs/minimal.js";
import { onnx } from "../../onnx/generated/onnx_pb.js";
import { MtlError } from "../errors.js";
import { layoutOf, type Layout } from "../features/batch.js";
import { schemaHash, validateSchema, type FeatureSchema } from "../features/schema.js";

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
