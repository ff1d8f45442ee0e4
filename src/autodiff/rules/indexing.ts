/**
 * Gradient of Gather: the rows' gradients are scatter-added into zeros shaped like the data; and of
 * that ScatterND (add) itself, which a second-order meta-gradient differentiates.
 */
import * as ops from "../../graph/ops.js";
import { axisOf, intAttr, only, registerGradient, zerosLike } from "../registry.js";

// y = data[indices] along axis 0: d data = zeros, then += dy at each index (repeats add up).
registerGradient("Gather", (c) => {
  const [data, indices] = [c.x[0]!, c.x[1]!];
  if (axisOf(intAttr(c.node, "axis", 0), data.rank) !== 0) c.fail("the gradient is implemented for axis 0");
  // ScatterND wants int64 [..., 1] indices. Unsqueeze before the Cast: onnxruntime's WebGPU provider
  // has no int64 Unsqueeze, and would run it on the CPU.
  const idx = indices.dtype === "int64" ? ops.Unsqueeze(indices, [-1]) : ops.Cast(ops.Unsqueeze(indices, [-1]), { to: "int64" });
  return [ops.ScatterND(zerosLike(data), idx, only(c), { reduction: "add" }), null];
});

// y = data, then y[indices] += updates: d data = dy; d updates = dy[indices] (GatherND).
registerGradient("ScatterND", (c) => {
  const reduction = c.node.attributes["reduction"];
  if (!reduction || reduction.value !== "add") c.fail("the gradient is implemented for reduction add");
  const indices = c.x[1]!;
  const dy = only(c);
  return [c.needs[0] ? dy : null, null, c.needs[2] ? ops.GatherND(dy, indices) : null];
});
