/** Gradients of ops that move elements without changing them. */
import * as ops from "../../graph/ops.js";
import { axisOf, constInts, intAttr, intsAttr, only, registerGradient, sumToShape, zerosLike } from "../registry.js";

// Reshape-like ops: the gradient takes the input's shape back.
for (const op of ["Reshape", "Unsqueeze", "Squeeze", "Flatten"]) {
  registerGradient(op, (c) => [ops.Reshape(only(c), ops.Shape(c.x[0]!))]);
}

registerGradient("Transpose", (c) => {
  const x = c.x[0]!;
  const perm = intsAttr(c.node, "perm") ?? x.shape.map((_, i) => x.rank - 1 - i);
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => (inverse[p] = i));
  return [ops.Transpose(only(c), { perm: inverse })];
});

registerGradient("Expand", (c) => [sumToShape(only(c), c.x[0]!.shape)]);

// y = tile(x, r): view dy as [r0, d0, r1, d1, ...] and sum over the r axes.
registerGradient("Tile", (c) => {
  const x = c.x[0]!;
  const reps = constInts(c.x[1]);
  if (!reps) c.fail("repeats must be a constant");
  const unknown = x.shape.filter((d) => typeof d !== "number").length;
  if (unknown > 1) c.fail(`the gradient needs at most one non-numeric dim, got ${JSON.stringify(x.shape)}`);
  const split: number[] = [];
  x.shape.forEach((d, i) => split.push(reps![i]!, typeof d === "number" ? d : -1));
  const axes = x.shape.map((_, i) => 2 * i);
  return [ops.Reshape(ops.ReduceSum(ops.Reshape(only(c), split), { axes, keepdims: 0 }), ops.Shape(x))];
});

registerGradient("Concat", (c) => {
  const rank = c.x[0]!.rank;
  const axis = axisOf(intAttr(c.node, "axis", 0), rank);
  const sizes = c.x.map((v) => v!.shape[axis]!);
  if (!sizes.every((s): s is number => typeof s === "number")) c.fail(`the gradient needs known sizes on the concat axis, got ${JSON.stringify(sizes)}`);
  const parts = c.x.length === 1 ? [only(c)] : ops.Split(only(c), { axis, split: sizes as number[] });
  return parts.map((p, i) => (c.needs[i] ? p : null));
});

// Outputs without a gradient contribute zeros of their shape.
registerGradient("Split", (c) => {
  const x = c.x[0]!;
  const axis = axisOf(intAttr(c.node, "axis", 0), x.rank);
  const parts = c.y.map((y, i) => c.dy[i] ?? zerosLike(y));
  return [parts.length === 1 ? parts[0]! : ops.Concat(parts, { axis })];
});

// y = x[starts:ends] with step 1: dx = dy padded with zeros back to x's shape.
registerGradient("Slice", (c) => {
  const x = c.x[0]!;
  const starts = constInts(c.x[1]), ends = constInts(c.x[2]);
  const axes = c.x[3] ? constInts(c.x[3]) : starts?.map((_, i) => i);
  const steps = c.x[4] ? constInts(c.x[4]) : starts?.map(() => 1);
  if (!starts || !ends || !axes || !steps) c.fail("starts, ends, axes and steps must be constants");
  const pads = new Array<number>(2 * x.rank).fill(0);
  axes!.forEach((ax, i) => {
    const a = axisOf(ax, x.rank);
    if (steps![i] !== 1) c.fail("the gradient is implemented for step 1");
    const d = x.shape[a]!;
    let s = starts![i]!, e = ends![i]!;
    if (typeof d !== "number") {
      if (s === 0 && e >= 2 ** 52) return; // the whole axis
      c.fail(`the gradient needs a known size on sliced axis ${a}`);
    }
    const dim = d as number;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, s), dim);
    pads[a] = s;
    pads[a + x.rank] = dim - e;
  });
  return [pads.every((p) => p === 0) ? only(c) : ops.Pad(only(c), pads)];
});

// y = x padded with constants (non-negative constant pads, as Slice's gradient makes): dx = dy with the pads sliced off.
registerGradient("Pad", (c) => {
  const x = c.x[0]!;
  const pads = constInts(c.x[1]);
  const mode = c.node.attributes["mode"];
  if (!pads || (mode && mode.value !== "constant") || c.x[3]) c.fail("the gradient is implemented for constant pads on every axis");
  if (pads!.some((p) => p < 0)) c.fail("the gradient is implemented for non-negative pads");
  const axes: number[] = [], starts: number[] = [], ends: number[] = [];
  for (let a = 0; a < x.rank; a++) {
    const before = pads![a]!, after = pads![a + x.rank]!;
    if (before === 0 && after === 0) continue;
    axes.push(a);
    starts.push(before);
    ends.push(after === 0 ? 2 ** 62 : -after);
  }
  return [axes.length === 0 ? only(c) : ops.Slice(only(c), starts, ends, axes), null, null, null];
});
