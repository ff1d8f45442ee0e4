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
export {
  gradients, stopGradient, registerGradient, hasGradientRule, registeredGradientOps,
  type GradientOptions, type GradContext, type GradRule,
} from "./autodiff/index.js";
export {
  createUpdater, clipByGlobalNorm, optimizerSlots, resolveOptimizer, OPTIMIZER_KINDS,
  type OptimizerConfig, type OptimizerKind, type ResolvedOptimizer,
} from "./optim/index.js";
export * from "./train/index.js";
export { exportTrainingArtifacts, TRAINING_FILES, type ExportTrainingOptions } from "./train/export.js";
export { twoTower, buildTwoTower, binaryCrossEntropy, ESMM_REFERENCE, type TwoTowerConfig } from "./models/two_tower.js";
export { MODELS, getModel, type RegisteredModel } from "./models/index.js";
export { Prng } from "./util/prng.js";
