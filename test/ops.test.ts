/**
 * Every op mtl's builder knows, run in onnxruntime-node on random inputs and compared with the plain
 * TypeScript reference in helpers/ref.ts (within 1e-6 relative). Also checks that the builder's
 * inferred output shape and dtype match what onnxruntime produced.
 */
import { test } from "node:test";
import { ops, type DType, type Graph, type Value } from "../src/index.js";
import * as R from "./helpers/ref.js";
import { type Arr, arr, map } from "./helpers/ref.js";
import { rng, uniform, ints } from "./helpers/rng.js";
import { type Feed, runBuilt, assertClose, seen } from "./helpers/run.js";

const r = rng(17);
const rand = (shape: number[], lo = -2, hi = 2): Arr => arr(shape, uniform(R.size(shape), lo, hi, r));
const pos = (shape: number[]): Arr => rand(shape, 0.1, 3);
const idx = (shape: number[], hi: number, lo = 0): Arr => arr(shape, ints(R.size(shape), lo, hi, r));
const f = (name: string, value: Arr, dtype: DType = "float64", shape?: Feed["shape"]): Feed => ({ name, dtype, value, ...(shape ? { shape } : {}) });

/** One test: build with the builder, run, compare every output with the reference. */
function check(
  title: string,
  feeds: Feed[],
  build: (g: Graph, x: Value[]) => Value | Value[],
  reference: (x: Arr[]) => Arr | Arr[],
  opts: { rel?: number; abs?: number; opset?: number } = {},
): void {
  test(title, async () => {
    const { outputs } = await runBuilt(build, feeds, opts.opset);
    const want = reference(feeds.map(seen));
    (Array.isArray(want) ? want : [want]).forEach((w, i) => assertClose(outputs[i]!, w, opts.rel ?? 1e-6, opts.abs));
  });
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const bool = (b: boolean) => (b ? 1 : 0);

// ---------------------------------------------------------------- elementwise, with broadcasting
for (const dtype of ["float64", "float32"] as const) {
  check(`Add ${dtype} broadcasts [batch,3,4] + [4]`, [f("a", rand([2, 3, 4]), dtype, ["batch", 3, 4]), f("b", rand([4]), dtype)],
    (_, [a, b]) => ops.Add(a!, b!), ([a, b]) => map((x, y) => x + y, a!, b!));
  check(`Mul ${dtype} broadcasts [3,1] * [1,5]`, [f("a", rand([3, 1]), dtype), f("b", rand([1, 5]), dtype)],
    (_, [a, b]) => ops.Mul(a!, b!), ([a, b]) => map((x, y) => x * y, a!, b!));
}
check("Sub with a scalar operand", [f("a", rand([4, 2]))], (_, [a]) => ops.Sub(a!, 0.25), ([a]) => map((x) => x - 0.25, a!));
check("Div broadcasts [2,3] / [2,1]", [f("a", rand([2, 3])), f("b", pos([2, 1]))], (_, [a, b]) => ops.Div(a!, b!), ([a, b]) => map((x, y) => x / y, a!, b!));
check("Add int64", [f("a", idx([3, 2], 100), "int64"), f("b", idx([2], 100), "int64")], (_, [a, b]) => ops.Add(a!, b!), ([a, b]) => map((x, y) => x + y, a!, b!));
check("Neg", [f("a", rand([5]))], (_, [a]) => ops.Neg(a!), ([a]) => map((x) => -x, a!));
check("Abs", [f("a", rand([2, 3]))], (_, [a]) => ops.Abs(a!), ([a]) => map(Math.abs, a!));
check("Sqrt", [f("a", pos([7]))], (_, [a]) => ops.Sqrt(a!), ([a]) => map(Math.sqrt, a!));
check("Pow broadcasts a scalar exponent", [f("a", pos([3, 2])), f("b", rand([], 0.5, 2.5))], (_, [a, b]) => ops.Pow(a!, b!), ([a, b]) => map(Math.pow, a!, b!));
check("Exp", [f("a", rand([6]))], (_, [a]) => ops.Exp(a!), ([a]) => map(Math.exp, a!));
check("Exp float32", [f("a", rand([64]), "float32")], (_, [a]) => ops.Exp(a!), ([a]) => map(Math.exp, a!));
check("Log", [f("a", pos([6]))], (_, [a]) => ops.Log(a!), ([a]) => map(Math.log, a!));
check("Relu", [f("a", rand([3, 4]))], (_, [a]) => ops.Relu(a!), ([a]) => map((x) => Math.max(x, 0), a!));
check("Relu float32, batch 1", [f("a", rand([1, 4]), "float32", ["batch", 4])], (_, [a]) => ops.Relu(a!), ([a]) => map((x) => Math.max(x, 0), a!));
check("Sigmoid", [f("a", rand([10], -8, 8))], (_, [a]) => ops.Sigmoid(a!), ([a]) => map(sigmoid, a!));
// onnxruntime's float32 Sigmoid is MLAS's polynomial approximation of the logistic function: its
// error is absolute, about 5e-8, so far in the tails (p < 1e-3) the relative error grows to ~1e-4.
// Float64 (above) meets 1e-6 relative everywhere; float32 is held to 1e-6 relative + 1e-7 absolute.
check("Sigmoid float32", [f("a", rand([64], -8, 8), "float32")], (_, [a]) => ops.Sigmoid(a!), ([a]) => map(sigmoid, a!), { abs: 1e-7 });
check("Softmax over the last axis", [f("a", rand([2, 3, 5]))], (_, [a]) => ops.Softmax(a!), ([a]) => R.softmax(a!, -1));
check("Softmax axis 1", [f("a", rand([2, 3, 5]))], (_, [a]) => ops.Softmax(a!, { axis: 1 }), ([a]) => R.softmax(a!, 1));
check("Clip with min and max", [f("a", rand([8]))], (_, [a]) => ops.Clip(a!, -0.5, 0.5), ([a]) => map((x) => Math.min(Math.max(x, -0.5), 0.5), a!));
check("Clip with min only", [f("a", rand([8]))], (_, [a]) => ops.Clip(a!, 1e-6), ([a]) => map((x) => Math.max(x, 1e-6), a!));
check("Max of three, broadcasting", [f("a", rand([2, 3])), f("b", rand([3])), f("c", rand([2, 1]))],
  (_, [a, b, c]) => ops.Max(a!, b!, c!), ([a, b, c]) => map(Math.max, a!, b!, c!));
check("Min with a scalar", [f("a", rand([4]))], (_, [a]) => ops.Min(a!, 0.1), ([a]) => map((x) => Math.min(x, 0.1), a!));
check("Where broadcasts condition and branches",
  [f("c", idx([2, 3], 2), "bool"), f("x", rand([2, 3])), f("y", rand([3]))],
  (_, [c, x, y]) => ops.Where(c!, x!, y!), ([c, x, y]) => map((p, q, s) => (p ? q : s), c!, x!, y!));
check("Equal int64", [f("a", idx([6], 3), "int64"), f("b", idx([6], 3), "int64")], (_, [a, b]) => ops.Equal(a!, b!), ([a, b]) => map((x, y) => bool(x === y), a!, b!));
check("Greater", [f("a", rand([2, 3])), f("b", rand([3]))], (_, [a, b]) => ops.Greater(a!, b!), ([a, b]) => map((x, y) => bool(x > y), a!, b!));
check("Less", [f("a", rand([2, 3])), f("b", rand([2, 1]))], (_, [a, b]) => ops.Less(a!, b!), ([a, b]) => map((x, y) => bool(x < y), a!, b!));
check("Not", [f("a", idx([5], 2), "bool")], (_, [a]) => ops.Not(a!), ([a]) => map((x) => bool(!x), a!));
check("Cast float64 → float32 → int64 (truncation toward zero)", [f("a", rand([6], -5, 5))],
  (_, [a]) => ops.Cast(ops.Cast(a!, { to: "float32" }), { to: "int64" }), ([a]) => map((x) => Math.trunc(Math.fround(x)), a!));
check("Cast bool → float32", [f("a", idx([4], 2), "bool")], (_, [a]) => ops.Cast(a!, { to: "float32" }), ([a]) => a!);
check("Identity", [f("a", rand([3]))], (_, [a]) => ops.Identity(a!), ([a]) => a!);

// ---------------------------------------------------------------- linear algebra
check("MatMul [batch,4] x [4,3]", [f("a", rand([5, 4]), "float64", ["batch", 4]), f("b", rand([4, 3]))], (_, [a, b]) => ops.MatMul(a!, b!), ([a, b]) => R.matmul(a!, b!));
check("MatMul batched with broadcast [2,1,3,4] x [5,4,2]", [f("a", rand([2, 1, 3, 4])), f("b", rand([5, 4, 2]))], (_, [a, b]) => ops.MatMul(a!, b!), ([a, b]) => R.matmul(a!, b!));
check("MatMul vector x matrix", [f("a", rand([4])), f("b", rand([4, 3]))], (_, [a, b]) => ops.MatMul(a!, b!), ([a, b]) => R.matmul(a!, b!));
check("MatMul float32, batch 1", [f("a", rand([1, 8]), "float32"), f("b", rand([8, 2]), "float32")], (_, [a, b]) => ops.MatMul(a!, b!), ([a, b]) => R.matmul(a!, b!));
check("Gemm with transB and a [N] bias", [f("a", rand([3, 4])), f("w", rand([2, 4])), f("c", rand([2]))],
  (_, [a, w, c]) => ops.Gemm(a!, w!, c!, { transB: 1 }), ([a, w, c]) => map((x, y) => x + y, R.matmul(a!, R.transpose(w!)), c!));
check("Gemm with transA, alpha, beta", [f("a", rand([4, 3])), f("w", rand([4, 2])), f("c", rand([3, 2]))],
  (_, [a, w, c]) => ops.Gemm(a!, w!, c!, { transA: 1, alpha: 0.5, beta: 2 }),
  ([a, w, c]) => map((x, y) => 0.5 * x + 2 * y, R.matmul(R.transpose(a!), w!), c!));
check("Gemm float32 without bias", [f("a", rand([6, 5]), "float32"), f("w", rand([5, 3]), "float32")], (_, [a, w]) => ops.Gemm(a!, w!), ([a, w]) => R.matmul(a!, w!));

// ---------------------------------------------------------------- indexing
check("Gather rows with repeated int64 ids [batch,3]", [f("t", rand([10, 4])), f("i", idx([4, 3], 10), "int64", ["batch", 3])],
  (_, [t, i]) => ops.Gather(t!, i!), ([t, i]) => R.gather(t!, i!, 0));
check("Gather int32 ids on axis 1 with negative indices", [f("t", rand([2, 5, 3])), f("i", idx([4], 5, -5), "int32")],
  (_, [t, i]) => ops.Gather(t!, i!, { axis: 1 }), ([t, i]) => R.gather(t!, i!, 1));
check("Gather with an empty batch", [f("t", rand([6, 2])), f("i", idx([0, 3], 6), "int64", ["batch", 3])],
  (_, [t, i]) => ops.Gather(t!, i!), ([t, i]) => R.gather(t!, i!, 0));
check("ScatterND reduction=add with repeated rows (the gradient of Gather)",
  [f("d", rand([6, 3])), f("i", idx([7, 1], 6), "int64"), f("u", rand([7, 3]))],
  (_, [d, i, u]) => ops.ScatterND(d!, i!, u!, { reduction: "add" }), ([d, i, u]) => R.scatterND(d!, i!, u!, "add"));
check("ScatterND replaces elements", [f("d", rand([4, 4])), f("i", arr([3, 2], [0, 1, 2, 3, 3, 0]), "int64"), f("u", rand([3]))],
  (_, [d, i, u]) => ops.ScatterND(d!, i!, u!), ([d, i, u]) => R.scatterND(d!, i!, u!, "none"));
check("ScatterND reduction=mul", [f("d", rand([5, 2])), f("i", arr([2, 1], [1, 3]), "int64"), f("u", rand([2, 2]))],
  (_, [d, i, u]) => ops.ScatterND(d!, i!, u!, { reduction: "mul" }), ([d, i, u]) => R.scatterND(d!, i!, u!, "mul"));
check("ScatterElements axis 1", [f("d", rand([3, 4])), f("i", arr([3, 2], [0, 3, 1, 1, 2, 0]), "int64"), f("u", rand([3, 2]))],
  (_, [d, i, u]) => ops.ScatterElements(d!, i!, u!, { axis: 1 }), ([d, i, u]) => R.scatterElements(d!, i!, u!, 1));
check("ScatterElements reduction=add with repeats", [f("d", rand([5])), f("i", arr([6], [0, 1, 1, 4, 4, 4]), "int64"), f("u", rand([6]))],
  (_, [d, i, u]) => ops.ScatterElements(d!, i!, u!, { reduction: "add" }), ([d, i, u]) => R.scatterElements(d!, i!, u!, 0, "add"));

// ---------------------------------------------------------------- shape manipulation
check("Concat on axis 1 with a symbolic batch", [f("a", rand([2, 3]), "float64", ["batch", 3]), f("b", rand([2, 1]), "float64", ["batch", 1])],
  (_, [a, b]) => ops.Concat([a!, b!], { axis: 1 }), ([a, b]) => R.concat([a!, b!], 1));
check("Concat on axis 0, empty-ish first input", [f("a", rand([0, 2])), f("b", rand([3, 2]))],
  (_, [a, b]) => ops.Concat([a!, b!], { axis: 0 }), ([a, b]) => R.concat([a!, b!], 0));
check("Split into sizes [1,3]", [f("a", rand([2, 4]))], (_, [a]) => ops.Split(a!, { axis: 1, split: [1, 3] }),
  ([a]) => [R.slice(a!, [0], [1], [1]), R.slice(a!, [1], [4], [1])]);
check("Split into equal parts (opset 18 num_outputs)", [f("a", rand([6, 2]))], (_, [a]) => ops.Split(a!, { outputs: 3 }),
  ([a]) => [R.slice(a!, [0], [2]), R.slice(a!, [2], [4]), R.slice(a!, [4], [6])], { opset: 18 });
check("Split into equal parts (opset 17)", [f("a", rand([6, 2]))], (_, [a]) => ops.Split(a!, { outputs: 2 }),
  ([a]) => [R.slice(a!, [0], [3]), R.slice(a!, [3], [6])]);
check("Slice with negative start, step and clamped end", [f("a", rand([4, 6]))],
  (_, [a]) => ops.Slice(a!, [-3, 5], [1000, 0], [0, 1], [1, -2]), ([a]) => R.slice(a!, [-3, 5], [1000, 0], [0, 1], [1, -2]));
check("Slice on a symbolic batch dim keeps it", [f("a", rand([3, 6]), "float64", ["batch", 6])],
  (_, [a]) => ops.Slice(a!, [2], [4], [1]), ([a]) => R.slice(a!, [2], [4], [1]));
check("Reshape with 0 and -1 [batch,6] → [batch,2,3]", [f("a", rand([4, 6]), "float64", ["batch", 6])],
  (_, [a]) => ops.Reshape(a!, [0, -1, 3]), ([a]) => ({ shape: [4, 2, 3], data: a!.data }));
check("Reshape [batch,3,4] → [-1,12] keeps the batch symbol", [f("a", rand([2, 3, 4]), "float64", ["batch", 3, 4])],
  (g, [a]) => {
    const out = ops.Reshape(a!, [-1, 12]);
    if (out.shape[0] !== "batch") throw new Error(`inferred ${out.shape}`);
    return out;
  }, ([a]) => ({ shape: [2, 12], data: a!.data }));
check("Reshape to a shape computed in the graph (Shape + Concat)", [f("a", rand([2, 6]), "float64", ["batch", 6])],
  (g, [a]) => ops.Reshape(a!, ops.Concat([ops.Shape(a!, { end: 1 }), g.ints([3, 2])], { axis: 0 })),
  ([a]) => ({ shape: [2, 3, 2], data: a!.data }));
check("Unsqueeze axes [0, -1]", [f("a", rand([3, 2]))], (_, [a]) => ops.Unsqueeze(a!, [0, -1]), ([a]) => ({ shape: [1, 3, 2, 1], data: a!.data }));
check("Squeeze axis 1", [f("a", rand([3, 1, 2]))], (_, [a]) => ops.Squeeze(a!, [1]), ([a]) => ({ shape: [3, 2], data: a!.data }));
check("Squeeze all ones", [f("a", rand([1, 4, 1]))], (_, [a]) => ops.Squeeze(a!), ([a]) => ({ shape: [4], data: a!.data }));
check("Transpose perm [1,2,0]", [f("a", rand([2, 3, 4]))], (_, [a]) => ops.Transpose(a!, { perm: [1, 2, 0] }), ([a]) => R.transpose(a!, [1, 2, 0]));
check("Transpose default reverses", [f("a", rand([2, 5]))], (_, [a]) => ops.Transpose(a!), ([a]) => R.transpose(a!));
check("Expand [3,1] to [2,3,4]", [f("a", rand([3, 1]))], (_, [a]) => ops.Expand(a!, [2, 3, 4]), ([a]) => R.expand(a!, [2, 3, 4]));
check("Expand keeps larger input dims ([2,3] with shape [1,3])", [f("a", rand([2, 3]))], (_, [a]) => ops.Expand(a!, [1, 3]), ([a]) => R.expand(a!, [1, 3]));
check("Tile [2,3] by [2,1]", [f("a", rand([2, 3]))], (_, [a]) => ops.Tile(a!, [2, 1]), ([a]) => R.tile(a!, [2, 1]));
check("Tile int64 by [1,3]", [f("a", idx([2, 2], 9), "int64")], (_, [a]) => ops.Tile(a!, [1, 3]), ([a]) => R.tile(a!, [1, 3]));

const sum = (p: number, q: number) => p + q;
check("ReduceSum axis 1 keepdims", [f("a", rand([3, 4, 2]))], (_, [a]) => ops.ReduceSum(a!, { axes: [1] }), ([a]) => R.reduce(a!, [1], true, 0, sum));
check("ReduceSum all axes, no keepdims", [f("a", rand([3, 4]))], (_, [a]) => ops.ReduceSum(a!, { keepdims: 0 }), ([a]) => R.reduce(a!, undefined, false, 0, sum));
check("ReduceSum over an empty axis gives 0", [f("a", rand([2, 0]))], (_, [a]) => ops.ReduceSum(a!, { axes: [1], keepdims: 0 }), ([a]) => R.reduce(a!, [1], false, 0, sum));
for (const opset of [17, 18]) {
  check(`ReduceMean axes [0,2] (opset ${opset})`, [f("a", rand([2, 3, 4]))], (_, [a]) => ops.ReduceMean(a!, { axes: [0, 2], keepdims: 0 }),
    ([a]) => R.reduce(a!, [0, 2], false, 0, sum, (s, n) => s / n), { opset });
  check(`ReduceMax axis -1 (opset ${opset})`, [f("a", rand([3, 5]))], (_, [a]) => ops.ReduceMax(a!, { axes: [-1] }),
    ([a]) => R.reduce(a!, [-1], true, -Infinity, Math.max), { opset });
}
check("Shape of a symbolic-batch input, and Shape start/end", [f("a", rand([3, 4, 5]), "float64", ["batch", 4, 5])],
  (_, [a]) => [ops.Shape(a!), ops.Shape(a!, { start: 1, end: -1 })], ([a]) => [arr([3], a!.shape), arr([1], [4])]);
check("ConstantOfShape from a runtime shape", [f("a", rand([3, 2]), "float64", ["batch", 2])],
  (_, [a]) => ops.ConstantOfShape(ops.Shape(a!), { value: 1.5, dtype: "float32" }), ([a]) => arr(a!.shape, new Array(6).fill(1.5)));
check("ConstantOfShape int64 zeros", [f("a", rand([2, 2]))],
  (_, [a]) => ops.ConstantOfShape(ops.Shape(a!), { dtype: "int64" }), () => arr([2, 2], [0, 0, 0, 0]));
check("Range with a runtime limit (int64)", [f("n", arr([], [5]), "int64")],
  (g, [n]) => ops.Range(g.scalar(0, "int64"), n!, g.scalar(1, "int64")), () => arr([5], [0, 1, 2, 3, 4]));
check("Range float64 with a fractional step", [f("s", arr([], [1]))],
  (g, [s]) => ops.Range(s!, g.scalar(2.5, "float64"), g.scalar(0.375, "float64")), () => arr([4], [1, 1.375, 1.75, 2.125]));

// ---------------------------------------------------------------- layers
check("BatchNormalization (inference) on [batch,C]", [f("x", rand([4, 3]), "float64", ["batch", 3]), f("s", rand([3])), f("b", rand([3])), f("m", rand([3])), f("v", pos([3]))],
  (_, [x, s, b, m, v]) => ops.BatchNormalization(x!, s!, b!, m!, v!, { epsilon: 1e-5 })[0]!,
  ([x, s, b, m, v]) => map((xi, si, bi, mi, vi) => si * (xi - mi) / Math.sqrt(vi + 1e-5) + bi, x!, s!, b!, m!, v!));
check("BatchNormalization (training) normalises by batch statistics and updates running ones",
  [f("x", rand([5, 2])), f("s", rand([2])), f("b", rand([2])), f("m", rand([2])), f("v", pos([2]))],
  (_, [x, s, b, m, v]) => ops.BatchNormalization(x!, s!, b!, m!, v!, { epsilon: 1e-5, momentum: 0.9, training_mode: 1 }),
  ([x, s, b, m, v]) => {
    const mean = R.reduce(x!, [0], false, 0, sum, (t, n) => t / n);
    const varr = R.reduce(map((xi, mi) => (xi - mi) ** 2, x!, mean), [0], false, 0, sum, (t, n) => t / n);
    const y = map((xi, si, bi, mi, vi) => si * (xi - mi) / Math.sqrt(vi + 1e-5) + bi, x!, s!, b!, mean, varr);
    return [y, map((rm, bm) => 0.9 * rm + 0.1 * bm, m!, mean), map((rv, bv) => 0.9 * rv + 0.1 * bv, v!, varr)];
  });
check("Dropout in inference mode is the identity (mask all true)", [f("x", rand([3, 4]))],
  (_, [x]) => ops.Dropout(x!, { ratio: 0.3 }), ([x]) => [x!, arr(x!.shape, new Array(12).fill(1))]);
test("Dropout in training mode zeroes by its mask and scales the rest by 1/(1-ratio)", async () => {
  const x = rand([50, 40]);
  const { outputs } = await runBuilt((_, [a]) => ops.Dropout(a!, { ratio: 0.25, training: true, seed: 7 }), [f("x", x)]);
  const [out, mask] = outputs as [typeof outputs[0], typeof outputs[0]];
  let dropped = 0;
  for (let i = 0; i < x.data.length; i++) {
    const keep = mask!.data[i];
    const want = keep ? x.data[i]! / 0.75 : 0;
    if (Math.abs(Number(out!.data[i]) - want) > 1e-12 * Math.abs(want)) throw new Error(`element ${i}: ${out!.data[i]} vs ${want}`);
    if (!keep) dropped++;
  }
  const rate = dropped / x.data.length;
  if (rate < 0.2 || rate > 0.3) throw new Error(`dropped ${rate} of the elements, expected about 0.25`);
});
