/** Graphs that do not fit fail where they are built, naming the op, the node and the shapes. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Graph, MtlError, ops, tensor } from "../src/index.js";

function expectShapeError(build: (g: Graph) => unknown, pattern: RegExp) {
  const g = new Graph({ name: "bad" });
  assert.throws(() => build(g), (err: unknown) => {
    assert.ok(err instanceof MtlError, `expected MtlError, got ${String(err)}`);
    assert.equal(err.code, "E_SHAPE");
    assert.match(err.message, pattern);
    return true;
  });
}

test("Add of shapes that do not broadcast names the op, node and both shapes", () => {
  expectShapeError((g) => ops.Add(g.input("a", "float32", ["batch", 3]), g.input("b", "float32", [4])),
    /^Add \(node 'Add_1'\): shapes \[batch, 3\] and \[4\] do not broadcast$/);
});

test("MatMul inner dimensions", () => {
  expectShapeError((g) => ops.MatMul(g.input("a", "float32", [2, 3]), g.input("b", "float32", [4, 5])), /MatMul \(node 'MatMul_1'\): inner dimensions differ: \[2, 3\] x \[4, 5\]/);
});

test("Gemm inner dimensions and bias", () => {
  expectShapeError((g) => ops.Gemm(g.input("a", "float32", [2, 3]), g.input("b", "float32", [2, 5]), null, { transB: 1 }), /Gemm .*inner dimensions differ/);
  expectShapeError((g) => ops.Gemm(g.input("a", "float32", [2, 3]), g.input("b", "float32", [3, 5]), g.input("c", "float32", [4])), /Gemm .*do not broadcast/);
});

test("mixed dtypes", () => {
  expectShapeError((g) => ops.Mul(g.input("a", "float32", [2]), g.input("b", "float64", [2])), /Mul .*one dtype, got float32, float64/);
});

test("Gather with float indices", () => {
  expectShapeError((g) => ops.Gather(g.input("t", "float32", [5, 2]), g.input("i", "float32", [3])), /Gather .*indices must be int32 or int64, got float32/);
});

test("Reshape to a different element count", () => {
  expectShapeError((g) => ops.Reshape(g.input("a", "float32", [2, 3]), [4, 2]), /Reshape .*cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\]/);
});

test("Concat with different ranks or off-axis dims", () => {
  expectShapeError((g) => ops.Concat([g.input("a", "float32", [2, 3]), g.input("b", "float32", [2])], { axis: 0 }), /Concat .*share a rank/);
  expectShapeError((g) => ops.Concat([g.input("a", "float32", [2, 3]), g.input("b", "float32", [2, 4])], { axis: 0 }), /Concat .*dim 1 differs/);
});

test("Squeeze of a dimension that is not 1, Transpose with a bad perm, Split sizes that do not add up", () => {
  expectShapeError((g) => ops.Squeeze(g.input("a", "float32", [2, 3]), [1]), /Squeeze .*its size is 3/);
  expectShapeError((g) => ops.Transpose(g.input("a", "float32", [2, 3]), { perm: [0, 0] }), /Transpose .*not a permutation/);
  expectShapeError((g) => ops.Split(g.input("a", "float32", [5]), { split: [2, 2] }), /Split .*do not add up/);
});

test("Where needs a bool condition; ScatterND updates must fit", () => {
  expectShapeError((g) => ops.Where(g.input("c", "float32", [2]), g.input("x", "float32", [2]), 0), /Where .*condition must be bool/);
  expectShapeError((g) => ops.ScatterND(g.input("d", "float32", [5, 3]), g.input("i", "int64", [4, 1]), g.input("u", "float32", [4, 2]), { reduction: "add" }),
    /ScatterND .*updates \[4, 2\] must be \[4, 3\]/);
});

test("axis out of range", () => {
  expectShapeError((g) => ops.Softmax(g.input("a", "float32", [2, 3]), { axis: 2 }), /Softmax .*axis 2 is out of range for rank 2/);
});

test("an op without a shape rule, a foreign input and an unsupported opset are refused", () => {
  const g = new Graph();
  assert.throws(() => g.addNode("Conv", [g.input("x", "float32", [1, 1, 4, 4])]), /Conv \(node 'Conv_1'\): mtl has no shape rule/);
  const other = new Graph({ name: "other" });
  assert.throws(() => ops.Add(g.input("y", "float32", [2]), other.input("z", "float32", [2])), /belongs to graph 'other'/);
  assert.throws(() => new Graph({ opset: 12 }), (e: unknown) => e instanceof MtlError && e.code === "E_OPSET");
  assert.throws(() => tensor("float32", [2, 2], new Float32Array(3)), /hold 4 elements, data has 3/);
});

test("duplicate names are refused", () => {
  const g = new Graph();
  g.input("x", "float32", [2]);
  assert.throws(() => g.input("x", "float32", [2]), /'x' is already used/);
  const y = ops.Relu(g.input("y", "float32", [2]));
  g.output(y, "out");
  assert.throws(() => g.output(ops.Neg(y), "out"), /already has an output named 'out'/);
});
