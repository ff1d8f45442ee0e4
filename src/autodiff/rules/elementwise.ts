/** Gradients of elementwise ops. Binary ops broadcast, so each result is summed back to its input's shape. */
import { isFloat } from "../../graph/dtype.js";
import * as ops from "../../graph/ops.js";
import type { Value } from "../../graph/ir.js";
import { type GradContext, constFloats, only, registerGradient, sumToShape } from "../registry.js";

const X = (c: GradContext, i: number): Value => c.x[i]!;
const toShape = (c: GradContext, i: number, d: Value) => sumToShape(d, X(c, i).shape, `input ${i} of ${c.node.name}`);

// ---- binary, broadcasting
registerGradient("Add", (c) => {
  const dy = only(c);
  return [c.needs[0] ? toShape(c, 0, dy) : null, c.needs[1] ? toShape(c, 1, dy) : null];
});
registerGradient("Sub", (c) => {
  const dy = only(c);
  return [c.needs[0] ? toShape(c, 0, dy) : null, c.needs[1] ? toShape(c, 1, ops.Neg(dy)) : null];
});
registerGradient("Mul", (c) => {
  const dy = only(c);
  return [
    c.needs[0] ? toShape(c, 0, ops.Mul(dy, X(c, 1))) : null,
    c.needs[1] ? toShape(c, 1, ops.Mul(dy, X(c, 0))) : null,
  ];
});
// y = a / b: da = dy / b, db = -dy * y / b
registerGradient("Div", (c) => {
  const dy = only(c);
  const b = X(c, 1);
  return [
    c.needs[0] ? toShape(c, 0, ops.Div(dy, b)) : null,
    c.needs[1] ? toShape(c, 1, ops.Neg(ops.Div(ops.Mul(dy, c.y[0]!), b))) : null,
  ];
});
// Sum is variadic Add.
registerGradient("Sum", (c) => c.x.map((_, i) => (c.needs[i] ? toShape(c, i, only(c)) : null)));
// y = x^p with a constant p: dx = dy * p * x^(p-1)
registerGradient("Pow", (c) => {
  const p = constFloats(X(c, 1));
  if (c.needs[1] || !p || p.length !== 1) c.fail("only a constant scalar exponent is differentiable");
  const x = X(c, 0);
  const grad = p![0] === 2 ? ops.Mul(x, 2) : ops.Mul(ops.Pow(x, p![0]! - 1), p![0]!);
  return [toShape(c, 0, ops.Mul(only(c), grad))];
});
// y = max(a, b): the gradient goes to a where a >= b (ties to the first input), else to b.
for (const [op, pick] of [["Max", ops.GreaterOrEqual], ["Min", ops.LessOrEqual]] as const) {
  registerGradient(op, (c) => {
    const dy = only(c);
    if (c.x.length === 1) return [dy];
    if (c.x.length !== 2) c.fail("the gradient is implemented for one or two inputs");
    const firstWins = pick(X(c, 0), X(c, 1));
    return [
      c.needs[0] ? toShape(c, 0, ops.Where(firstWins, dy, 0)) : null,
      c.needs[1] ? toShape(c, 1, ops.Where(firstWins, 0, dy)) : null,
    ];
  });
}
registerGradient("Where", (c) => {
  const dy = only(c);
  return [
    null,
    c.needs[1] ? toShape(c, 1, ops.Where(X(c, 0), dy, 0)) : null,
    c.needs[2] ? toShape(c, 2, ops.Where(X(c, 0), 0, dy)) : null,
  ];
});

// ---- unary
registerGradient("Identity", (c) => [only(c)]);
registerGradient("Neg", (c) => [ops.Neg(only(c))]);
registerGradient("Exp", (c) => [ops.Mul(only(c), c.y[0]!)]);
registerGradient("Log", (c) => [ops.Div(only(c), X(c, 0))]);
registerGradient("Reciprocal", (c) => [ops.Neg(ops.Mul(only(c), ops.Mul(c.y[0]!, c.y[0]!)))]);
registerGradient("Sqrt", (c) => [ops.Div(ops.Mul(only(c), 0.5), c.y[0]!)]);
registerGradient("Abs", (c) => [ops.Mul(only(c), ops.Sign(X(c, 0)))]);
registerGradient("Relu", (c) => [ops.Where(ops.Greater(X(c, 0), 0), only(c), 0)]);
registerGradient("Sigmoid", (c) => {
  const y = c.y[0]!;
  return [ops.Mul(only(c), ops.Mul(y, ops.Sub(1, y)))];
});
registerGradient("Tanh", (c) => {
  const y = c.y[0]!;
  return [ops.Mul(only(c), ops.Sub(1, ops.Mul(y, y)))];
});
registerGradient("Softplus", (c) => [ops.Mul(only(c), ops.Sigmoid(X(c, 0)))]);
// Clip passes the gradient where min <= x <= max (the bounds are constants or get no gradient).
registerGradient("Clip", (c) => {
  const x = X(c, 0);
  let pass: Value | null = null;
  if (c.x[1]) pass = ops.GreaterOrEqual(x, c.x[1]);
  if (c.x[2]) pass = pass ? ops.And(pass, ops.LessOrEqual(x, c.x[2])) : ops.LessOrEqual(x, c.x[2]);
  if (c.needs[1] || c.needs[2]) c.fail("the bounds of Clip get no gradient; pass them as constants");
  return [pass ? ops.Where(pass, only(c), 0) : only(c)];
});
// Cast between float types: the gradient is cast back.
registerGradient("Cast", (c) => {
  const x = X(c, 0);
  if (!isFloat(c.y[0]!.dtype)) c.fail(`a cast to ${c.y[0]!.dtype} has no gradient`);
  return [ops.Cast(only(c), { to: x.dtype })];
});
// y = softmax(x) along axis: dx = y * (dy - sum(dy * y, axis))
registerGradient("Softmax", (c) => {
  const y = c.y[0]!;
  const dy = only(c);
  const a = c.node.attributes["axis"];
  const axis = a && a.type === "int" ? a.value : -1;
  return [ops.Mul(y, ops.Sub(dy, ops.ReduceSum(ops.Mul(dy, y), { axes: [axis], keepdims: 1 })))];
});
// y = log_softmax(x): dx = dy - softmax(x) * sum(dy, axis)
registerGradient("LogSoftmax", (c) => {
  const dy = only(c);
  const a = c.node.attributes["axis"];
  const axis = a && a.type === "int" ? a.value : -1;
  return [ops.Sub(dy, ops.Mul(ops.Exp(c.y[0]!), ops.ReduceSum(dy, { axes: [axis], keepdims: 1 })))];
});
