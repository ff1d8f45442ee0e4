/** Gradient of Gather: the rows' gradients are scatter-added into zeros shaped like the data. */
import * as ops from "../../graph/ops.js";
import { axisOf, intAttr, only, registerGradient, zerosLike } from "../registry.js";

// y = data[indices] along axis 0: d data = zeros, then += dy at each index (repeats add up).
registerGradient("Gather", (c) => {
  const [data, indices] = [c.x[0]!, c.x[1]!];
  if (axisOf(intAttr(c.node, "axis", 0), data.rank) !== 0) c.fail("the gradient is implemented for axis 0");
  const idx = indices.dtype === "int64" ? indices : ops.Cast(indices, { to: "int64" });
  return [ops.ScatterND(zerosLike(data), ops.Unsqueeze(idx, [-1]), only(c), { reduction: "add" }), null];
});
