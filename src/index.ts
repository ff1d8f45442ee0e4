/** mtl's library surface. */
export { MtlError, isMtlError, type ErrorLocation } from "./errors.js";
export { VERSION } from "./version.js";
export * from "./graph/dtype.js";
export {
  Graph, Value, Node, tensor, tensorBytes, elementCount, formatShape,
  DEFAULT_OPSET, MIN_OPSET, MAX_OPSET,
  type Dim, type Shape, type TensorData, type Attribute, type Attributes, type GraphOptions, type AddNodeOptions,
} from "./graph/ir.js";
export * as ops from "./graph/ops.js";
export { hasShapeRule } from "./graph/infer.js";
export { onnx, encodeModel, decodeModel, readModelFile, toNumber } from "./onnx/proto.js";
export { toModelProto, encodeGraph, graphFromProto, tensorFromProto, type ModelOptions, type ReadOptions } from "./onnx/serialize.js";
export { summarizeModel, type ModelSummary } from "./onnx/summary.js";
export { Session, makeTensor, cudaInstalled, type Device, type SessionOptions, type Tensor } from "./runtime/session.js";
