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
  const idx = indices.dtype === "int64" ? indices : ops.Cast(indices, { to: "int64" });
  return [ops.ScatterND(zerosLike(data), ops.Unsqueeze(idx, [-1]), only(c), { reduction: "add" }), null];
});

// y = data, then y[indices] += updates: d data = dy; d updates = dy[indices] (GatherND).
registerGradient("ScatterND", (c) => {
  const reduction = c.node.attributes["reduction"];
  if (!reduction || reduction.value !== "add") c.fail("the gradient is implemented for reduction add");
  const indices = c.x[1]!;
  const dy = only(c);
  return [c.needs[0] ? dy : null, null, c.needs[2] ? ops.GatherND(dy, indices) : null];
});
