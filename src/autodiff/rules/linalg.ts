/** Gradients of MatMul and Gemm. */
import * as ops from "../../graph/ops.js";
import type { Value } from "../../graph/ir.js";
import { floatAttr, intAttr, only, registerGradient, sumToShape } from "../registry.js";

/** Swaps the last two axes. */
function swapLast(v: Value): Value {
  const perm = v.shape.map((_, i) => i);
  [perm[v.rank - 2], perm[v.rank - 1]] = [perm[v.rank - 1]!, perm[v.rank - 2]!];
  return ops.Transpose(v, { perm });
}

// y = a @ b (rank >= 2, batch dims broadcast): da = dy @ b^T, db = a^T @ dy
registerGradient("MatMul", (c) => {
  const [a, b] = [c.x[0]!, c.x[1]!];
  if (a.rank < 2 || b.rank < 2) c.fail("the gradient is implemented for inputs of rank >= 2");
  const dy = only(c);
  return [
    c.needs[0] ? sumToShape(ops.MatMul(dy, swapLast(b)), a.shape) : null,
    c.needs[1] ? sumToShape(ops.MatMul(swapLast(a), dy), b.shape) : null,
  ];
});

// y = alpha * A' @ B' + beta * C, with A' = transA ? A^T : A and B' likewise.
registerGradient("Gemm", (c) => {
  const [A, B, C] = [c.x[0]!, c.x[1]!, c.x[2] ?? null];
  const dy = only(c);
  const transA = intAttr(c.node, "transA", 0), transB = intAttr(c.node, "transB", 0);
  const alpha = floatAttr(c.node, "alpha", 1), beta = floatAttr(c.node, "beta", 1);
  const t = (x: number | boolean) => (x ? 1 : 0) as 0 | 1;
  // dA' = alpha dy B'^T; dA = transA ? (dA')^T = alpha B' dy^T : dA'
  const dA = !c.needs[0] ? null : transA
    ? ops.Gemm(B, dy, null, { alpha, transA: t(transB), transB: 1 })
    : ops.Gemm(dy, B, null, { alpha, transB: t(!transB) });
  // dB' = alpha A'^T dy; dB = transB ? (dB')^T = alpha dy^T A' : dB'
  const dB = !c.needs[1] ? null : transB
    ? ops.Gemm(dy, A, null, { alpha, transA: 1, transB: t(transA) })
    : ops.Gemm(A, dy, null, { alpha, transA: t(!transA) });
  const dC = c.needs[2] && C ? sumToShape(beta === 1 ? dy : ops.Mul(dy, beta), C.shape) : null;
  return [dA, dB, dC];
});
