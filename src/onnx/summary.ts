/** What `mtl inspect` reports about a model file, computed from the protobuf alone (any ONNX file). */
import { BYTES_PER_ELEMENT, dtypeFromOnnx, onnxTypeName } from "../graph/dtype.js";
import { onnx, toNumber } from "./proto.js";

export interface ValueSummary {
  name: string;
  dtype: string;
  shape: (number | string | null)[];
}

export interface ModelSummary {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: string;
  graphName: string;
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  nodeCount: number;
  opCounts: Record<string, number>;
  initializerCount: number;
  parameterCount: number;
  parameterBytes: number;
  externalDataFiles: string[];
  metadata: Record<string, string>;
}

function valueSummary(vi: onnx.ValueInfoProto.$Properties): ValueSummary {
  const tt = vi.type?.tensorType as onnx.TypeProto.Tensor | null | undefined;
  return {
    name: vi.name ?? "",
    dtype: tt ? onnxTypeName(tt.elemType) : "non-tensor",
    shape: (tt?.shape?.dim ?? []).map((d) => (d.dimValue != null ? toNumber(d.dimValue) : d.dimParam || null)),
  };
}

function tensorBytes(t: onnx.TensorProto, count: number): number {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const length = (t.externalData as onnx.StringStringEntryProto[]).find((e) => e.key === "length")?.value;
    if (length !== undefined) return Number(length);
  }
  if (t.rawData?.byteLength) return t.rawData.byteLength;
  const dtype = dtypeFromOnnx(t.dataType);
  return dtype ? count * BYTES_PER_ELEMENT[dtype] : 0;
}

export function summarizeModel(model: onnx.ModelProto): ModelSummary {
  // Decoded messages are class instances with every field defaulted; the generated types say less.
  const g = model.graph as onnx.GraphProto & { initializer: onnx.TensorProto[]; node: onnx.NodeProto[]; input: onnx.ValueInfoProto[]; output: onnx.ValueInfoProto[] };
  const initNames = new Set(g.initializer.map((t) => t.name));
  const opCounts: Record<string, number> = {};
  for (const n of g.node) {
    const key = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    opCounts[key] = (opCounts[key] ?? 0) + 1;
  }
  let parameterCount = 0;
  let parameterBytes = 0;
  const external = new Set<string>();
  for (const t of g.initializer) {
    const count = t.dims.map(toNumber).reduce((a, b) => a * b, 1);
    parameterCount += count;
    parameterBytes += tensorBytes(t, count);
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      const loc = (t.externalData as onnx.StringStringEntryProto[]).find((e) => e.key === "location")?.value;
      if (loc) external.add(loc);
    }
  }
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps as onnx.StringStringEntryProto[]) metadata[p.key] = p.value;
  return {
    irVersion: toNumber(model.irVersion),
    opsets: (model.opsetImport as onnx.OperatorSetIdProto[]).map((o) => ({ domain: o.domain || "ai.onnx", version: toNumber(o.version) })),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(" "),
    graphName: g.name,
    inputs: g.input.filter((vi) => !initNames.has(vi.name)).map(valueSummary),
    outputs: g.output.map(valueSummary),
    nodeCount: g.node.length,
    opCounts,
    initializerCount: g.initializer.length,
    parameterCount,
    parameterBytes,
    externalDataFiles: [...external],
    metadata,
  };
}
