/** Builds a one-op (or few-op) graph with the builder, runs it in onnxruntime-node, returns outputs. */
import assert from "node:assert/strict";
import { Graph, type Value, type DType, type Shape, encodeGraph, Session, type Tensor, allocate, type TypedArray } from "../../src/index.js";
import type { Arr } from "./ref.js";

export interface Feed {
  name: string;
  dtype: DType;
  value: Arr;
  /** Declared input shape (default: the value's concrete shape); may hold symbols like "batch". */
  shape?: Shape;
}

export function typed(dtype: DType, values: readonly number[]): TypedArray {
  const out = allocate(dtype, values.length);
  values.forEach((v, i) => {
    if (out instanceof BigInt64Array) out[i] = BigInt(v);
    else (out as Float64Array)[i] = v;
  });
  return out;
}

/** The input as the runtime sees it (float32 rounding included), for feeding the reference. */
export function seen(f: Feed): Arr {
  return { shape: f.value.shape, data: Array.from(typed(f.dtype, f.value.data) as ArrayLike<number | bigint>, Number) };
}

export async function runBuilt(
  build: (g: Graph, inputs: Value[]) => Value | Value[],
  feeds: Feed[],
  opset = 17,
): Promise<{ outputs: Tensor[]; values: Value[]; bytes: Uint8Array }> {
  const g = new Graph({ name: "test", opset });
  const inputs = feeds.map((f) => g.input(f.name, f.dtype, f.shape ?? f.value.shape));
  const built = build(g, inputs);
  const values = (Array.isArray(built) ? built : [built]).map((v, i) => g.output(v, `out${i}`));
  const bytes = encodeGraph(g);
  const session = await Session.create(bytes);
  const result = await session.run(Object.fromEntries(feeds.map((f) => [f.name, { dtype: f.dtype, dims: f.value.shape, data: typed(f.dtype, f.value.data) }])));
  await session.release();
  const outputs = values.map((v) => result[v.name]!);
  // The builder's inferred shapes must agree with what onnxruntime computed.
  values.forEach((v, i) => {
    const dims = outputs[i]!.dims;
    assert.equal(v.rank, dims.length, `rank of ${v.name}: inferred ${v.rank}, got ${dims.length}`);
    v.shape.forEach((d, j) => {
      if (typeof d === "number") assert.equal(d, dims[j], `dim ${j} of ${v.name}: inferred ${d}, got ${dims[j]}`);
    });
    assert.equal(v.dtype, outputs[i]!.dtype, `dtype of ${v.name}`);
  });
  return { outputs, values, bytes };
}

/** Asserts every element matches within `rel` relative error (plus a tiny absolute floor near 0). */
export function assertClose(actual: Tensor, expected: Arr, rel = 1e-6, abs = 1e-12): void {
  assert.deepEqual([...actual.dims], expected.shape, "shape");
  const a = Array.from(actual.data as ArrayLike<number | bigint>, Number);
  assert.equal(a.length, expected.data.length);
  for (let i = 0; i < a.length; i++) {
    const e = expected.data[i]!;
    const err = Math.abs(a[i]! - e);
    if (!(err <= rel * Math.abs(e) + abs) && !(Number.isNaN(e) && Number.isNaN(a[i]!))) {
      assert.fail(`element ${i}: got ${a[i]}, expected ${e} (relative error ${(err / Math.abs(e)).toExponential(2)})`);
    }
  }
}
