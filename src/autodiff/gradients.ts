/**
 * Reverse-mode autodiff over the graph IR. `gradients(loss, params)` appends the backward graph to
 * the loss's graph and returns d loss / d param for each param, as Values of that graph.
 *
 * 1. Relevant nodes: ancestors of the loss with at least one float input that depends on a param
 *    (a stop_gradient Identity cuts the dependency).
 * 2. Walk them in reverse creation order (creation order is topological). For each, sum the
 *    gradient contributions of each output once (one Sum node), call the op's rule, and record the
 *    contributions it returns for the inputs that need them.
 */
import { MtlError } from "../errors.js";
import { isFloat } from "../graph/dtype.js";
import * as ops from "../graph/ops.js";
import type { Node, Value } from "../graph/ir.js";
import { type GradContext, gradientRule, isStopGradient, zerosLike } from "./registry.js";
import "./rules/index.js";

export interface GradientOptions {
  /** The gradient arriving at `loss` (default: ones, i.e. d loss / d loss = 1). */
  seed?: Value;
}

export function gradients(loss: Value, params: readonly Value[], opts: GradientOptions = {}): Value[] {
  const g = loss.graph;
  if (!isFloat(loss.dtype)) throw new MtlError("E_GRAD", `the loss '${loss.name}' must be a float tensor, got ${loss.dtype}`);
  for (const p of params) {
    if (p.graph !== g) throw new MtlError("E_GRAD", `parameter '${p.name}' belongs to another graph`);
    if (!isFloat(p.dtype)) throw new MtlError("E_GRAD", `parameter '${p.name}' must be a float tensor, got ${p.dtype}`);
  }

  // Ancestors of the loss.
  const ancestors = new Set<Node>();
  const stack: Node[] = loss.producer ? [loss.producer] : [];
  while (stack.length) {
    const n = stack.pop()!;
    if (ancestors.has(n)) continue;
    ancestors.add(n);
    if (isStopGradient(n)) continue;
    for (const v of n.inputs) if (v?.producer) stack.push(v.producer);
  }

  // Values that depend on a param, forward in creation order; relevant nodes.
  const depends = new Set<Value>(params);
  const relevant: Node[] = [];
  for (const n of g.nodes) {
    if (!ancestors.has(n) || isStopGradient(n)) continue;
    if (!n.inputs.some((v) => v && depends.has(v) && isFloat(v.dtype))) continue;
    relevant.push(n);
    for (const v of n.outputs) if (isFloat(v.dtype)) depends.add(v);
  }

  const contributions = new Map<Value, Value[]>();
  const add = (v: Value, d: Value) => {
    const list = contributions.get(v);
    if (list) list.push(d);
    else contributions.set(v, [d]);
  };
  const total = (v: Value): Value | null => {
    const list = contributions.get(v);
    if (!list || list.length === 0) return null;
    return ops.addAll(list);
  };

  add(loss, opts.seed ?? (loss.rank === 0 ? g.scalar(1, loss.dtype) : ops.ConstantOfShape(ops.Shape(loss), { value: 1, dtype: loss.dtype })));

  for (let k = relevant.length - 1; k >= 0; k--) {
    const node = relevant[k]!;
    const dy = node.outputs.map(total);
    if (dy.every((d) => d === null)) continue;
    const rule = gradientRule(node.opType);
    const fail = (message: string): never => {
      throw new MtlError("E_GRAD", `${node.opType} (node '${node.name}'): ${message}`);
    };
    if (!rule || node.domain !== "") {
      fail("mtl has no gradient rule for this op");
    }
    const needs = node.inputs.map((v) => !!v && depends.has(v) && isFloat(v.dtype));
    const c: GradContext = { node, x: node.inputs, y: node.outputs, dy, needs, fail };
    const dx = rule!(c);
    node.inputs.forEach((v, i) => {
      const d = dx[i];
      if (!v || !needs[i] || !d) return;
      if (d.dtype !== v.dtype) fail(`gradient for input ${i} is ${d.dtype}, input is ${v.dtype}`);
      add(v, d);
    });
  }

  return params.map((p) => total(p) ?? zerosLike(p));
}
