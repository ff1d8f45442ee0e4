/**
 * The ONNX file format: the generated protobuf module for onnx/onnx.proto, plus decoding with errors
 * a user can act on. Decoding keeps unknown fields, so decode → encode gives the same bytes.
 */
import { readFile } from "node:fs/promises";
import protobuf from "protobufjs/minimal.js";
import { onnx } from "../../onnx/generated/onnx_pb.js";
import { MtlError } from "../errors.js";

export { onnx };
export type ModelProto = onnx.ModelProto;

/** int64 fields decode as Long objects (protobufjs keeps 64-bit precision); mtl's values fit a number. */
export function toNumber(x: unknown): number {
  if (typeof x === "number") return x;
  if (typeof x === "bigint") return Number(x);
  if (x && typeof x === "object" && "toNumber" in x && typeof (x as { toNumber: unknown }).toNumber === "function") {
    return (x as { toNumber(): number }).toNumber();
  }
  return Number(x);
}

export function encodeModel(model: onnx.ModelProto.$Properties): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Decodes and sanity-checks a model. `source` names the file in errors. Rejects what is not an ONNX
 * model (empty, not protobuf, no graph, no ir_version or opset) with a one-line reason.
 */
export function decodeModel(bytes: Uint8Array, source = "<bytes>"): onnx.ModelProto {
  const where = { file: source };
  if (bytes.byteLength === 0) {
    throw new MtlError("E_MODEL", "empty file (0 bytes), not an ONNX model", { where });
  }
  let model: onnx.ModelProto;
  try {
    // Keep fields this schema does not know (protobufjs drops them by default) so they re-encode.
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = false;
    model = onnx.ModelProto.decode(reader);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new MtlError("E_MODEL", `not a valid ONNX model: protobuf decoding failed (${why})`, {
      where,
      hint: "the file may be truncated or not an .onnx file",
    });
  }
  const missing: string[] = [];
  if (!toNumber(model.irVersion)) missing.push("ir_version");
  if (!model.graph) missing.push("graph");
  if (!model.opsetImport?.length) missing.push("opset_import");
  if (missing.length) {
    throw new MtlError("E_MODEL", `not an ONNX model: no ${missing.join(", ")}`, {
      where,
      hint: "the file may be truncated or not an .onnx file",
    });
  }
  return model;
}

export async function readModelFile(path: string): Promise<{ model: onnx.ModelProto; bytes: Uint8Array }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : String((err as Error).message);
    throw new MtlError("E_IO", `cannot read the model: ${why}`, { where: { file: path } });
  }
  return { model: decodeModel(bytes, path), bytes };
}
