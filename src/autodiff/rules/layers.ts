/** Gradients of BatchNormalization (training mode) and Dropout. */
import * as ops from "../../graph/ops.js";
import { floatAttr, intAttr, only, registerGradient } from "../registry.js";

// Training mode normalises with the batch statistics over every axis but 1 (biased variance):
//   xhat = (x - mean) / sqrt(var + eps), y = scale * xhat + B
//   dB = sum(dy), dscale = sum(dy * xhat),
//   dx = scale / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))
// The running-statistics outputs carry no gradient.
registerGradient("BatchNormalization", (c) => {
  const [x, scale] = [c.x[0]!, c.x[1]!];
  if (!intAttr(c.node, "training_mode", 0)) c.fail("the gradient is implemented for training_mode=1");
  if (c.needs[3] || c.needs[4]) c.fail("the running mean and variance get no gradient");
  const dy = c.dy[0];
  if (!dy) return [];
  const eps = floatAttr(c.node, "epsilon", 1e-5);
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const bcast = x.shape.map((_, i) => i).filter((i) => i !== 1 && i !== 0); // [C] -> [1, C, 1, ...]
  const perChannel = (v: typeof x) => ops.Unsqueeze(v, [0, ...bcast]);
  const mean = ops.ReduceMean(x, { axes, keepdims: 1 });
  const centered = ops.Sub(x, mean);
  const invStd = ops.Reciprocal(ops.Sqrt(ops.Add(ops.ReduceMean(ops.Mul(centered, centered), { axes, keepdims: 1 }), eps)));
  const xhat = ops.Mul(centered, invStd);
  const dyXhat = ops.Mul(dy, xhat);
  const dx = c.needs[0]
    ? ops.Mul(ops.Mul(perChannel(scale), invStd), ops.Sub(ops.Sub(dy, ops.ReduceMean(dy, { axes, keepdims: 1 })), ops.Mul(xhat, ops.ReduceMean(dyXhat, { axes, keepdims: 1 }))))
    : null;
  const dScale = c.needs[1] ? ops.ReduceSum(dyXhat, { axes, keepdims: 0 }) : null;
  const dB = c.needs[2] ? ops.ReduceSum(dy, { axes, keepdims: 0 }) : null;
  return [dx, dScale, dB, null, null];
});

// In training, y = x * mask / (1 - ratio); the mask output is reused. In inference it is the identity.
registerGradient("Dropout", (c) => {
  const [x, ratio, training] = [c.x[0]!, c.x[1], c.x[2]];
  const dy = c.dy[0];
  if (!dy) return [];
  const mask = c.y[1];
  if (!training || !mask) return [dy]; // no training flag: inference, the identity
  const keep = ratio ? ops.Sub(1, ops.Cast(ratio, { to: x.dtype })) : x.graph.scalar(0.5, x.dtype);
  const scaled = ops.Div(ops.Mul(dy, ops.Cast(mask, { to: x.dtype })), keep);
  // A runtime training flag selects between the two forms.
  return [ops.Where(training, scaled, dy)];
});
