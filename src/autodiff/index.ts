/** Reverse-mode autodiff: appends a backward graph of standard ai.onnx ops. */
export { gradients, type GradientOptions } from "./gradients.js";
export {
  registerGradient, hasGradientRule, registeredGradientOps, stopGradient, isStopGradient, sumToShape, zerosLike,
  type GradContext, type GradRule,
} from "./registry.js";
