/**
 * Graph IR ⇄ ModelProto. Writing is deterministic: the same graph gives the same bytes (names come
 * from per-graph counters, nodes keep creation order, tensors are raw little-endian bytes).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { type DType, ONNX_DATA_TYPE, arrayFromBytes, bytesOfArray, dtypeFromOnnx, onnxTypeName, allocate } from "../graph/dtype.js";
import { type Attribute, type Attributes, type Dim, Graph, type TensorData, Value, tensor } from "../graph/ir.js";
import { hasShapeRule } from "../graph/infer.js";
import { onnx, toNumber } from "./proto.js";
import { VERSION } from "../version.js";

/** The IR version that goes with each opset mtl writes (onnx releases 1.11..1.16). */
const IR_FOR_OPSET: Readonly<Record<number, number>> = { 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };

export interface ModelOptions {
  producerName?: string;
  producerVersion?: string;
  docString?: string;
}

function tensorProto(t: TensorData, name?: string): onnx.TensorProto.$Properties {
  return {
    dims: [...t.dims],
    dataType: ONNX_DATA_TYPE[t.dtype],
    ...(name === undefined ? {} : { name }),
    rawData: bytesOfArray(t.data),
  };
}

function valueInfo(v: Value): onnx.ValueInfoProto.$Properties {
  const dim = (d: Dim): onnx.TensorShapeProto.Dimension.$Properties =>
    typeof d === "number" ? { dimValue: d } : typeof d === "string" ? { dimParam: d } : {};
  return {
    name: v.name,
    type: { tensorType: { elemType: ONNX_DATA_TYPE[v.dtype], shape: { dim: v.shape.map(dim) } } },
  };
}

function attributeProto(name: string, a: Attribute): onnx.AttributeProto.$Properties {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case "int": return { name, type: T.INT, i: a.value };
    case "float": return { name, type: T.FLOAT, f: a.value };
    case "string": return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case "ints": return { name, type: T.INTS, ints: [...a.value] };
    case "floats": return { name, type: T.FLOATS, floats: [...a.value] };
    case "strings": return { name, type: T.STRINGS, strings: a.value.map((s) => new TextEncoder().encode(s)) };
    case "tensor": return { name, type: T.TENSOR, t: tensorProto(a.value) };
  }
}

export function toModelProto(graph: Graph, opts: ModelOptions = {}): onnx.ModelProto.$Properties {
  const nodes = graph.liveNodes();
  const used = new Set<Value>(graph.outputs);
  for (const n of nodes) for (const v of n.inputs) if (v) used.add(v);
  const names = new Set<string>();
  const checkName = (v: Value) => {
    if (names.has(v.name)) throw new MtlError("E_GRAPH", `two values are named '${v.name}' in graph '${graph.name}'`);
    names.add(v.name);
  };
  graph.inputs.forEach(checkName);
  graph.initializers.filter((v) => used.has(v)).forEach(checkName);
  nodes.forEach((n) => n.outputs.forEach(checkName));
  return {
    irVersion: IR_FOR_OPSET[graph.opset]!,
    producerName: opts.producerName ?? "mtl",
    producerVersion: opts.producerVersion ?? VERSION,
    ...(opts.docString ? { docString: opts.docString } : {}),
    graph: {
      node: nodes.map((n) => ({
        input: n.inputs.map((v) => v?.name ?? ""),
        output: n.outputs.map((v) => v.name),
        name: n.name,
        opType: n.opType,
        attribute: Object.entries(n.attributes).map(([k, a]) => attributeProto(k, a)),
        ...(n.domain ? { domain: n.domain } : {}),
      })),
      name: graph.name,
      initializer: graph.initializers.filter((v) => used.has(v)).map((v) => tensorProto(v.data!, v.name)),
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
    },
    opsetImport: [{ domain: "", version: graph.opset }],
    metadataProps: [...graph.metadata].map(([key, value]) => ({ key, value })),
  };
}

export function encodeGraph(graph: Graph, opts: ModelOptions = {}): Uint8Array {
  return onnx.ModelProto.encode(toModelProto(graph, opts)).finish();
}

// ---------------------------------------------------------------- reading

export interface ReadOptions {
  /** Directory that external-data locations are relative to (the model file's directory). */
  baseDir?: string;
  /** Names the source in errors. */
  source?: string;
}

/** A TensorProto's data as a typed array (raw_data, the typed *_data fields, or external data). */
export function tensorFromProto(t: onnx.TensorProto, opts: ReadOptions = {}): TensorData {
  const fail = (msg: string): never => {
    throw new MtlError("E_MODEL", `tensor '${t.name}': ${msg}`, { where: { file: opts.source } });
  };
  const dtype = dtypeFromOnnx(t.dataType) ?? fail(`element type ${onnxTypeName(t.dataType)} is not supported by mtl`);
  const dims = t.dims.map(toNumber);
  let data;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const info = new Map((t.externalData as onnx.StringStringEntryProto[]).map((e) => [e.key, e.value]));
    const location = info.get("location") ?? fail("external data without a location");
    if (opts.baseDir === undefined) fail(`its data is in external file '${location}'; read the model from its path`);
    let file: Uint8Array;
    try {
      file = readFileSync(join(opts.baseDir!, location));
    } catch {
      return fail(`cannot read its external data file '${location}'`);
    }
    const offset = Number(info.get("offset") ?? 0);
    const length = info.has("length") ? Number(info.get("length")) : file.byteLength - offset;
    if (offset + length > file.byteLength) fail(`external data '${location}' is shorter than offset+length`);
    data = arrayFromBytes(dtype, file.subarray(offset, offset + length));
  } else if (t.rawData && t.rawData.byteLength > 0) {
    data = arrayFromBytes(dtype, t.rawData);
  } else {
    data = allocate(dtype, dims.reduce((a, b) => a * b, 1));
    const src: ArrayLike<unknown> =
      dtype === "float32" ? t.floatData : dtype === "float64" ? t.doubleData : dtype === "int64" ? t.int64Data : t.int32Data;
    if (src.length !== data.length && data.length !== 0) fail(`holds ${src.length} values for dims [${dims.join(", ")}]`);
    for (let i = 0; i < data.length; i++) {
      if (data instanceof BigInt64Array) data[i] = BigInt(toNumber(src[i]));
      else (data as Float32Array)[i] = toNumber(src[i]);
    }
  }
  try {
    return tensor(dtype, dims, data);
  } catch (err) {
    return fail((err as Error).message);
  }
}

function attributeFromProto(a: onnx.AttributeProto, opts: ReadOptions): Attribute {
  const T = onnx.AttributeProto.AttributeType;
  const dec = new TextDecoder();
  switch (a.type) {
    case T.INT: return { type: "int", value: toNumber(a.i) };
    case T.FLOAT: return { type: "float", value: a.f };
    case T.STRING: return { type: "string", value: dec.decode(a.s) };
    case T.INTS: return { type: "ints", value: a.ints.map(toNumber) };
    case T.FLOATS: return { type: "floats", value: [...a.floats] };
    case T.STRINGS: return { type: "strings", value: a.strings.map((s) => dec.decode(s)) };
    case T.TENSOR: return { type: "tensor", value: tensorFromProto(a.t as onnx.TensorProto, opts) };
    default:
      throw new MtlError("E_MODEL", `attribute '${a.name}' has type ${T[a.type] ?? a.type}, which mtl does not read`, { where: { file: opts.source } });
  }
}

function typeOf(vi: onnx.ValueInfoProto, source: string | undefined): { dtype: DType; shape: Dim[] } {
  const tt = vi.type?.tensorType as onnx.TypeProto.Tensor | null | undefined;
  const fail = (msg: string): never => {
    throw new MtlError("E_MODEL", `value '${vi.name}': ${msg}`, { where: { file: source } });
  };
  if (!tt) fail("is not a tensor");
  const dtype = dtypeFromOnnx(tt!.elemType) ?? fail(`element type ${onnxTypeName(tt!.elemType)} is not supported by mtl`);
  const shape = (tt!.shape?.dim ?? []).map((d): Dim => (d.dimValue != null ? toNumber(d.dimValue) : d.dimParam || null));
  return { dtype, shape };
}

/** Loads a decoded model into the graph IR, initializers included. */
export function graphFromProto(model: onnx.ModelProto, opts: ReadOptions = {}): Graph {
  // Decoded messages are class instances with every field defaulted; the generated types say less.
  const gp = model.graph as onnx.GraphProto;
  const opset = (model.opsetImport as onnx.OperatorSetIdProto[]).find((o) => !o.domain)?.version;
  const g = new Graph({ name: gp.name, opset: opset === undefined ? undefined : toNumber(opset) });
  for (const p of model.metadataProps as onnx.StringStringEntryProto[]) g.metadata.set(p.key, p.value);
  const initializers = gp.initializer as onnx.TensorProto[];
  const inputs = gp.input as onnx.ValueInfoProto[];
  const nodes = gp.node as onnx.NodeProto[];
  const values = new Map<string, Value>();
  const inits = new Set(initializers.map((t) => t.name));
  for (const t of initializers) values.set(t.name, g.initializer(t.name, tensorFromProto(t, opts)));
  for (const vi of inputs) {
    if (inits.has(vi.name)) continue;
    const { dtype, shape } = typeOf(vi, opts.source);
    values.set(vi.name, g.input(vi.name, dtype, shape));
  }
  const declared = new Map<string, onnx.ValueInfoProto>();
  for (const vi of [...gp.valueInfo, ...gp.output] as onnx.ValueInfoProto[]) declared.set(vi.name, vi);
  for (const np of nodes) {
    const inputs = np.input.map((name) => {
      if (name === "") return null;
      const v = values.get(name);
      if (!v) throw new MtlError("E_MODEL", `node '${np.name}' (${np.opType}) reads '${name}', which nothing before it defines`, { where: { file: opts.source } });
      return v;
    });
    const attributes: Record<string, Attribute> = {};
    for (const a of np.attribute as onnx.AttributeProto[]) attributes[a.name] = attributeFromProto(a, opts);
    const types = hasShapeRule(np.opType) && !np.domain
      ? undefined
      : np.output.map((name) => {
          const vi = declared.get(name);
          if (!vi) throw new MtlError("E_MODEL", `node '${np.name}': mtl has no shape rule for ${np.domain ? np.domain + "." : ""}${np.opType} and the file declares no type for '${name}'`, { where: { file: opts.source } });
          return typeOf(vi, opts.source);
        });
    const outs = g.addNode(np.opType, inputs, attributes as Attributes, {
      name: np.name || undefined,
      domain: np.domain || undefined,
      outputs: np.output.length,
      outputNames: np.output,
      types,
    });
    outs.forEach((v, i) => values.set(np.output[i]!, v));
  }
  for (const vi of gp.output as onnx.ValueInfoProto[]) {
    const v = values.get(vi.name);
    if (!v) throw new MtlError("E_MODEL", `output '${vi.name}' is not produced by any node`, { where: { file: opts.source } });
    g.output(v);
  }
  return g;
}
