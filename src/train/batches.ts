/**
 * Data batches (src/features/batch.ts) as trainer batches: named inputs per the models' input
 * contract (src/models/inputs.ts). Ids stay int32 and are not copied when the batch is exactly full.
 */
import type { Batch as DataBatch, Layout } from "../features/batch.js";
import type { TypedArray } from "../graph/dtype.js";
import { CLICK_INPUT, CONVERSION_INPUT, DENSE_INPUT, idsInput, tableNeedsWeights, weightsInput } from "../models/inputs.js";
import type { FloatDType } from "./model.js";
import type { Batch } from "./trainer.js";

function floats(dtype: FloatDType, n: number): Float32Array | Float64Array {
  return dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
}

/** The trainer's feeds for a data batch: ids, weights (where the model takes them), dense, labels. */
export function trainerBatch(batch: DataBatch, layout: Layout, dtype: FloatDType = "float32"): Batch {
  const n = batch.size;
  const out: Record<string, TypedArray> = {};
  layout.tables.forEach((t, i) => {
    const ids = batch.ids[i]!;
    const width = t.width;
    out[idsInput(t.name)] = ids.length === n * width ? ids : ids.subarray(0, n * width);
    if (tableNeedsWeights(t)) {
      const w = floats(dtype, n * width);
      const given = batch.weights[i];
      if (given) w.set(given.subarray(0, n * width));
      else for (let j = 0; j < n * width; j++) w[j] = ids[j] === 0 ? 0 : 1;
      out[weightsInput(t.name)] = w;
    }
  });
  if (layout.denseWidth > 0) {
    const d = floats(dtype, n * layout.denseWidth);
    d.set(batch.dense.subarray(0, n * layout.denseWidth));
    out[DENSE_INPUT] = d;
  }
  const click = floats(dtype, n), conversion = floats(dtype, n);
  for (let r = 0; r < n; r++) {
    click[r] = batch.click[r]!;
    conversion[r] = batch.conversion[r]!;
  }
  out[CLICK_INPUT] = click;
  out[CONVERSION_INPUT] = conversion;
  return out;
}
