/** Gradients of ReduceSum and ReduceMean: the gradient is broadcast back over the reduced axes. */
import * as ops from "../../graph/ops.js";
import type { Value } from "../../graph/ir.js";
import { type GradContext, axisOf, constInts, intAttr, intsAttr, only, registerGradient } from "../registry.js";

/** The reduced axes (normalised); empty axes with noop_with_empty_axes=0 means every axis. */
function reducedAxes(c: GradContext): number[] | null {
  const x = c.x[0]!;
  const axesAsInput = c.node.opType === "ReduceSum" || x.graph.opset >= 18;
  const given = axesAsInput ? (c.x[1] ? constInts(c.x[1]) : undefined) : intsAttr(c.node, "axes");
  if (axesAsInput && c.x[1] && !given) c.fail("axes must be a constant");
  if (!given || given.length === 0) {
    if (intAttr(c.node, "noop_with_empty_axes", 0)) return null;
    return x.shape.map((_, i) => i);
  }
  return given.map((a) => axisOf(a, x.rank));
}

/** dy reshaped to keepdims form and expanded to x's shape. */
function spread(c: GradContext, axes: number[]): Value {
  const x = c.x[0]!;
  let dy = only(c);
  if (!intAttr(c.node, "keepdims", 1)) dy = ops.Unsqueeze(dy, [...axes].sort((p, q) => p - q));
  return ops.Expand(dy, ops.Shape(x));
}

registerGradient("ReduceSum", (c) => {
  const axes = reducedAxes(c);
  return [axes ? spread(c, axes) : only(c)];
});

registerGradient("ReduceMean", (c) => {
  const axes = reducedAxes(c);
  if (!axes) return [only(c)];
  const x = c.x[0]!;
  const dims = axes.map((a) => x.shape[a]!);
  // The count of reduced elements: a constant where the dims are known, else computed from Shape.
  const count = dims.every((d): d is number => typeof d === "number")
    ? dims.reduce((p, q) => p * q, 1)
    : ops.Cast(ops.ReduceProd(ops.Gather(ops.Shape(x), x.graph.ints(axes)), { keepdims: 0 }), { to: x.dtype });
  return [ops.Div(spread(c, axes), count)];
});
