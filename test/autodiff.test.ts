import { test } from "node:test";
import assert from "node:assert/strict";
import { gradients, stopGradient, registeredGradientOps } from "../src/autodiff/index.js";
import * as ops from "../src/graph/ops.js";
import { Graph } from "../src/graph/ir.js";
import { MtlError } from "../src/errors.js";
import { encodeGraph } from "../src/onnx/serialize.js";
import { Session, makeTensor } from "../src/runtime/session.js";
import { gradCheck, type GradCheck } from "./gradcheck.js";

const TOL64 = 1e-6;

/** One finite-difference case: every wrt input's relative error must be within tol. */
function fd(name: string, spec: GradCheck, tol = TOL64): void {
  test(`gradient ${name} (${spec.dtype ?? "float64"})`, async () => {
    const { errors } = await gradCheck(spec);
    for (const [input, err] of Object.entries(errors)) {
      assert.ok(err <= tol, `${name}: d/d${input} relative error ${err.toExponential(2)} > ${tol}`);
    }
  });
}

const away = (lo: number, hi: number) => ({ lo, hi }); // keeps inputs off kinks
const m34 = { shape: [3, 4] };

// ---- binary with broadcasting
fd("Add broadcast [3,4]+[4]", { inputs: { a: m34, b: { shape: [4] } }, wrt: ["a", "b"], build: (x) => ops.Add(x.a!, x.b!) });
fd("Add broadcast [3,1]+[1,4]", { inputs: { a: { shape: [3, 1] }, b: { shape: [1, 4] } }, wrt: ["a", "b"], build: (x) => ops.Add(x.a!, x.b!) });
fd("Sub broadcast [2,3,4]-[3,1]", { inputs: { a: { shape: [2, 3, 4] }, b: { shape: [3, 1] } }, wrt: ["a", "b"], build: (x) => ops.Sub(x.a!, x.b!) });
fd("Mul broadcast [3,4]*[3,1]", { inputs: { a: m34, b: { shape: [3, 1] } }, wrt: ["a", "b"], build: (x) => ops.Mul(x.a!, x.b!) });
fd("Mul scalar input", { inputs: { a: m34, b: { shape: [] } }, wrt: ["a", "b"], build: (x) => ops.Mul(x.a!, x.b!) });
fd("Div broadcast [3,4]/[4]", { inputs: { a: m34, b: { shape: [4], ...away(0.5, 2) } }, wrt: ["a", "b"], build: (x) => ops.Div(x.a!, x.b!) });
fd("Sum of three with broadcast", { inputs: { a: m34, b: { shape: [4] }, c: { shape: [3, 1] } }, wrt: ["a", "b", "c"], build: (x) => ops.Sum(x.a!, x.b!, x.c!) });
fd("Max broadcast", { inputs: { a: m34, b: { shape: [4] } }, wrt: ["a", "b"], build: (x) => ops.Max(x.a!, x.b!) });
fd("Min broadcast", { inputs: { a: m34, b: { shape: [3, 1] } }, wrt: ["a", "b"], build: (x) => ops.Min(x.a!, x.b!) });
fd("Max with a constant floor", { inputs: { a: { shape: [3, 4], values: [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8, 0.9, -1, 1.1, -1.2] } }, wrt: ["a"], build: (x) => ops.Max(x.a!, 0.05) });
fd("Where broadcast", {
  inputs: { c: { shape: [3, 4], bool: true, values: [1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0] }, a: m34, b: { shape: [4] } },
  wrt: ["a", "b"], build: (x) => ops.Where(x.c!, x.a!, x.b!),
});
fd("Pow constant exponent 3", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Pow(x.a!, 3) });
fd("Pow constant exponent 0.5", { inputs: { a: { shape: [3, 4], ...away(0.5, 2) } }, wrt: ["a"], build: (x) => ops.Pow(x.a!, 0.5) });
fd("Pow exponent 2", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Pow(x.a!, 2) });

// ---- unary
fd("Neg", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Neg(x.a!) });
fd("Exp", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Exp(x.a!) });
fd("Log", { inputs: { a: { shape: [3, 4], ...away(0.2, 3) } }, wrt: ["a"], build: (x) => ops.Log(x.a!) });
fd("Sqrt", { inputs: { a: { shape: [3, 4], ...away(0.2, 3) } }, wrt: ["a"], build: (x) => ops.Sqrt(x.a!) });
fd("Reciprocal", { inputs: { a: { shape: [3, 4], ...away(0.5, 3) } }, wrt: ["a"], build: (x) => ops.Reciprocal(x.a!) });
fd("Abs", { inputs: { a: { shape: [4], values: [-0.7, 0.3, -1.2, 2] } }, wrt: ["a"], build: (x) => ops.Abs(x.a!) });
fd("Relu", { inputs: { a: { shape: [2, 4], values: [-0.7, 0.3, -1.2, 2, 0.05, -0.05, 1, -3] } }, wrt: ["a"], build: (x) => ops.Relu(x.a!) });
fd("Sigmoid", { inputs: { a: { shape: [3, 4], ...away(-3, 3) } }, wrt: ["a"], build: (x) => ops.Sigmoid(x.a!) });
fd("Tanh", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Tanh(x.a!) });
// onnxruntime has no double Softplus kernel.
fd("Softplus", { dtype: "float32", inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Softplus(x.a!) }, 1e-3);
fd("Softmax last axis", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Softmax(x.a!) });
fd("Softmax axis 0", { inputs: { a: { shape: [3, 2, 2] } }, wrt: ["a"], build: (x) => ops.Softmax(x.a!, { axis: 0 }) });
fd("LogSoftmax", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.LogSoftmax(x.a!, { axis: 1 }) });
fd("Clip", { inputs: { a: { shape: [2, 4], values: [-0.7, 0.3, -0.2, 2, 0.45, -0.45, 0.6, -3] } }, wrt: ["a"], build: (x) => ops.Clip(x.a!, -0.5, 0.5) });
fd("Clip min only", { inputs: { a: { shape: [4], values: [-0.7, 0.3, -0.2, 2] } }, wrt: ["a"], build: (x) => ops.Clip(x.a!, -0.5) });
fd("Identity", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Identity(x.a!) });

// ---- linear algebra
fd("MatMul [3,4]@[4,5]", { inputs: { a: m34, b: { shape: [4, 5] } }, wrt: ["a", "b"], build: (x) => ops.MatMul(x.a!, x.b!) });
fd("MatMul batched broadcast [2,3,4]@[4,5]", { inputs: { a: { shape: [2, 3, 4] }, b: { shape: [4, 5] } }, wrt: ["a", "b"], build: (x) => ops.MatMul(x.a!, x.b!) });
fd("MatMul batched [2,3,4]@[2,4,2]", { inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 4, 2] } }, wrt: ["a", "b"], build: (x) => ops.MatMul(x.a!, x.b!) });
for (const transA of [0, 1] as const) {
  for (const transB of [0, 1] as const) {
    fd(`Gemm transA=${transA} transB=${transB} alpha/beta, C [5]`, {
      inputs: { a: { shape: transA ? [4, 3] : [3, 4] }, b: { shape: transB ? [5, 4] : [4, 5] }, c: { shape: [5] } },
      wrt: ["a", "b", "c"],
      build: (x) => ops.Gemm(x.a!, x.b!, x.c!, { transA, transB, alpha: 0.7, beta: 1.3 }),
    });
  }
}
fd("Gemm C [3,1]", { inputs: { a: m34, b: { shape: [4, 2] }, c: { shape: [3, 1] } }, wrt: ["a", "b", "c"], build: (x) => ops.Gemm(x.a!, x.b!, x.c!) });

// ---- indexing
fd("Gather with repeated indices", {
  inputs: { t: { shape: [5, 3] }, i: { shape: [2, 4], int: "int64", values: [1, 3, 1, 0, 4, 1, 3, 3] } },
  wrt: ["t"], build: (x) => ops.Gather(x.t!, x.i!),
});
fd("Gather int32 indices, rank-3 data", {
  inputs: { t: { shape: [4, 2, 3] }, i: { shape: [3], int: "int32", values: [2, 2, 0] } },
  wrt: ["t"], build: (x) => ops.Gather(x.t!, x.i!),
});
fd("Gather then sum-pool (embedding bag)", {
  inputs: { t: { shape: [6, 2] }, i: { shape: [3, 4], int: "int64", values: [1, 2, 0, 0, 2, 2, 5, 0, 3, 1, 1, 1] } },
  wrt: ["t"], build: (x) => ops.ReduceSum(ops.Gather(x.t!, x.i!), { axes: [1], keepdims: 0 }),
});
fd("ScatterND add (the gradient of Gather, differentiated again by a second-order meta step)", {
  inputs: { d: { shape: [5, 3] }, u: { shape: [4, 3] }, i: { shape: [4, 1], int: "int64", values: [1, 3, 1, 0] } },
  wrt: ["d", "u"], build: (x) => ops.ScatterND(x.d!, x.i!, x.u!, { reduction: "add" }),
});

// ---- shape
fd("Pad with constant zeros (the gradient of Slice)", { inputs: { a: { shape: [3, 4] } }, wrt: ["a"], build: (x) => ops.Pad(x.a!, [1, 0, 0, 2]) });
fd("Concat axis 1, one input twice", { inputs: { a: m34, b: { shape: [3, 2] } }, wrt: ["a", "b"], build: (x) => ops.Concat([x.a!, x.b!, x.a!], { axis: 1 }) });
fd("Split unequal, one output unused", {
  inputs: { a: { shape: [3, 6] } }, wrt: ["a"],
  build: (x) => { const [p, , r] = ops.Split(x.a!, { axis: 1, split: [1, 2, 3] }); return ops.Concat([ops.Mul(p!, 2), r!], { axis: 1 }); },
});
fd("Slice with negative start and axes", { inputs: { a: { shape: [4, 5] } }, wrt: ["a"], build: (x) => ops.Slice(x.a!, [-3, 1], [100, 3], [0, 1]) });
fd("Reshape", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Reshape(x.a!, [2, -1]) });
fd("Unsqueeze", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.Unsqueeze(x.a!, [0, 3]) });
fd("Squeeze", { inputs: { a: { shape: [3, 1, 4] } }, wrt: ["a"], build: (x) => ops.Squeeze(x.a!, [1]) });
fd("Transpose", { inputs: { a: { shape: [2, 3, 4] } }, wrt: ["a"], build: (x) => ops.Transpose(x.a!, { perm: [2, 0, 1] }) });
fd("Expand [3,1] to [2,3,4]", { inputs: { a: { shape: [3, 1] } }, wrt: ["a"], build: (x) => ops.Expand(x.a!, [2, 3, 4]) });
fd("Tile [2,3] x [2,2]", { inputs: { a: { shape: [2, 3] } }, wrt: ["a"], build: (x) => ops.Tile(x.a!, [2, 2]) });
fd("ReduceSum axis 1, keepdims 0", { inputs: { a: { shape: [2, 3, 4] } }, wrt: ["a"], build: (x) => ops.ReduceSum(x.a!, { axes: [1], keepdims: 0 }) });
fd("ReduceSum all axes", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.ReduceSum(x.a!) });
fd("ReduceMean axis 0 keepdims 1", { inputs: { a: m34 }, wrt: ["a"], build: (x) => ops.ReduceMean(x.a!, { axes: [0], keepdims: 1 }) });
fd("ReduceMean over a symbolic batch axis", {
  inputs: { a: { shape: [5, 4], declared: ["batch", 4] } }, wrt: ["a"],
  build: (x) => ops.ReduceMean(ops.Mul(x.a!, x.a!), { axes: [0, 1], keepdims: 0 }),
});

// ---- layers
fd("BatchNormalization training [6,3]", {
  inputs: { x: { shape: [6, 3] }, s: { shape: [3], ...away(0.5, 1.5) }, b: { shape: [3] } }, wrt: ["x", "s", "b"],
  build: (v) => {
    const g = v.x!.graph;
    const zero = g.constant({ dtype: "float64", dims: [3], data: new Float64Array(3) });
    const one = g.constant({ dtype: "float64", dims: [3], data: new Float64Array([1, 1, 1]) });
    return ops.BatchNormalization(v.x!, v.s!, v.b!, zero, one, { training_mode: 1, epsilon: 1e-3 })[0]!;
  },
});
fd("BatchNormalization training [4,2,3]", {
  inputs: { x: { shape: [4, 2, 3] }, s: { shape: [2], ...away(0.5, 1.5) }, b: { shape: [2] } }, wrt: ["x", "s", "b"],
  build: (v) => {
    const g = v.x!.graph;
    const zero = g.constant({ dtype: "float64", dims: [2], data: new Float64Array(2) });
    const one = g.constant({ dtype: "float64", dims: [2], data: new Float64Array([1, 1]) });
    return ops.BatchNormalization(v.x!, v.s!, v.b!, zero, one, { training_mode: 1 })[0]!;
  },
});

// ---- composite: a two-layer MLP with BCE, the shape every model's loss has
fd("MLP + sigmoid + BCE", {
  inputs: { x: { shape: [5, 4] }, w1: { shape: [4, 3] }, b1: { shape: [3] }, w2: { shape: [3, 1] }, y: { shape: [5, 1], values: [1, 0, 0, 1, 1] } },
  wrt: ["x", "w1", "b1", "w2"],
  build: (v) => {
    const p = ops.Sigmoid(ops.MatMul(ops.Relu(ops.Gemm(v.x!, v.w1!, v.b1!)), v.w2!));
    const ll = ops.Add(ops.Mul(v.y!, ops.Log(p)), ops.Mul(ops.Sub(1, v.y!), ops.Log(ops.Sub(1, p))));
    return ops.Neg(ops.ReduceMean(ll));
  },
});

// ---- float32 (the dtype training runs in): looser tolerance for float32 finite differences
fd("float32 Cast float32->float64->float32 and Mul", {
  dtype: "float32", inputs: { a: m34, b: { shape: [4] } }, wrt: ["a", "b"],
  build: (x) => ops.Cast(ops.Mul(ops.Cast(x.a!, { to: "float64" }), ops.Cast(x.b!, { to: "float64" })), { to: "float32" }),
}, 1e-3);
fd("float32 Gemm + Gather", {
  dtype: "float32",
  inputs: { t: { shape: [5, 3] }, i: { shape: [4], int: "int64", values: [1, 1, 4, 0] }, w: { shape: [3, 2] } },
  wrt: ["t", "w"], build: (x) => ops.Gemm(ops.Gather(x.t!, x.i!), x.w!),
}, 1e-3);

// ---- structural properties
test("Dropout gradient is dy * mask / (1 - ratio) with the mask of the same run", async () => {
  const g = new Graph({ opset: 17 });
  const x = g.input("x", "float64", [4, 5]);
  const [y, mask] = ops.Dropout(x, { ratio: 0.25, training: true, seed: 7 });
  g.output(y!, "y");
  g.output(mask!, "mask");
  const loss = ops.ReduceSum(ops.Mul(y!, x));
  const [dx] = gradients(loss, [x]);
  g.output(dx!, "dx");
  const s = await Session.create(encodeGraph(g));
  const xs = Float64Array.from({ length: 20 }, (_, i) => i / 7 - 1);
  const r = await s.run({ x: makeTensor(xs, [4, 5]) });
  const m = r["mask"]!.data as Uint8Array;
  const d = r["dx"]!.data as Float64Array;
  // loss = sum(x * m/(1-r) * x): d/dx = 2 x m / (1-r)
  for (let i = 0; i < 20; i++) assert.ok(Math.abs(d[i]! - (2 * xs[i]! * m[i]!) / 0.75) < 1e-12, `element ${i}`);
  assert.ok(m.some((v) => v === 0) && m.some((v) => v === 1), "the mask drops some and keeps some");
});

test("stop_gradient is a leaf: d(x * sg(x))/dx = sg(x), not 2x", async () => {
  const g = new Graph({ opset: 17 });
  const x = g.input("x", "float64", [3]);
  const loss = ops.ReduceSum(ops.Mul(x, stopGradient(x)));
  g.output(gradients(loss, [x])[0]!, "dx");
  const s = await Session.create(encodeGraph(g));
  const r = await s.run({ x: makeTensor(new Float64Array([1, -2, 3]), [3]) });
  assert.deepEqual(Array.from(r["dx"]!.data as Float64Array), [1, -2, 3]);
});

test("a value used three times gets one Sum of its contributions", () => {
  const g = new Graph({ opset: 17 });
  const x = g.input("x", "float64", [3]);
  const loss = ops.ReduceSum(ops.Add(ops.Mul(x, x), ops.Exp(x)));
  const before = g.nodes.length;
  gradients(loss, [x]);
  const sums = g.nodes.slice(before).filter((n) => n.opType === "Sum");
  assert.equal(sums.length, 1);
  assert.equal(sums[0]!.inputs.length, 3);
});

test("only gradients that are needed are built", () => {
  const g = new Graph({ opset: 17 });
  const a = g.input("a", "float64", [3]);
  const b = g.input("b", "float64", [3]);
  const c = g.input("c", "float64", [3]);
  const expC = ops.Exp(c);
  const loss = ops.Add(ops.ReduceSum(ops.Mul(a, b)), ops.ReduceSum(expC));
  const before = g.nodes.length;
  gradients(loss, [a]);
  const added = g.nodes.slice(before);
  assert.ok(!added.some((n) => n.inputs.includes(expC) || n.inputs.includes(c)), "nothing reads the Exp branch");
  assert.ok(!added.some((n) => n.opType === "Mul" && n.inputs.includes(a)), "no gradient for b is built");
});

test("an op without a gradient rule fails naming the op and the node", () => {
  const g = new Graph({ opset: 17 });
  const x = g.input("x", "float64", [3]);
  const loss = ops.ReduceSum(g.addNode("Floor", [x], {}, { name: "my_floor" })[0]!);
  assert.throws(() => gradients(loss, [x]), (err: unknown) => err instanceof MtlError && err.code === "E_GRAD" && /Floor/.test(err.message) && /my_floor/.test(err.message));
});

test("a parameter the loss does not depend on gets zeros", async () => {
  const g = new Graph({ opset: 17 });
  const x = g.input("x", "float64", [2]);
  const unused = g.input("u", "float64", [2, 2]);
  g.output(gradients(ops.ReduceSum(x), [unused])[0]!, "du");
  g.output(x, "x_out");
  const s = await Session.create(encodeGraph(g));
  const r = await s.run({ x: makeTensor(new Float64Array(2), [2]), u: makeTensor(new Float64Array(4), [2, 2]) });
  assert.deepEqual(Array.from(r["du"]!.data as Float64Array), [0, 0, 0, 0]);
});

test("every op the issue names has a rule", () => {
  const needed = ["Gather", "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Neg", "Exp", "Log", "Sqrt", "Pow", "Relu", "Sigmoid", "Tanh",
    "Softmax", "Clip", "Max", "Min", "Where", "Concat", "Split", "Slice", "Reshape", "Unsqueeze", "Squeeze", "Transpose", "Expand", "Tile",
    "ReduceSum", "ReduceMean", "Identity", "Cast", "BatchNormalization", "Dropout"];
  const have = new Set(registeredGradientOps());
  assert.deepEqual(needed.filter((op) => !have.has(op)), []);
});
