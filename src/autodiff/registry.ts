/**
 * The gradient-rule registry and the small helpers rules share. A rule sees one forward node (its
 * inputs, outputs, and the gradients arriving at its outputs) and returns the gradient for each
 * input that needs one. Rules only append standard ai.onnx nodes to the same graph.
 */
import { MtlError } from "../errors.js";
import * as ops from "../graph/ops.js";
import type { Node, Shape, Value } from "../graph/ir.js";

export interface GradContext {
  readonly node: Node;
  /** The forward node's inputs (null where an optional input is omitted). */
  readonly x: readonly (Value | null)[];
  /** The forward node's outputs. */
  readonly y: readonly Value[];
  /** Gradient of the loss with respect to each output; null where no gradient reaches it. */
  readonly dy: readonly (Value | null)[];
  /** Which inputs need a gradient (only these are built). */
  readonly needs: readonly boolean[];
  fail(message: string): never;
}

/** Gradients for the node's inputs, by position; null/undefined where none is built. */
export type GradRule = (c: GradContext) => readonly (Value | null | undefined)[];

const rules = new Map<string, GradRule>();

export function registerGradient(opType: string, rule: GradRule): void {
  rules.set(opType, rule);
}

export function gradientRule(opType: string): GradRule | undefined {
  return rules.get(opType);
}

export function hasGradientRule(opType: string): boolean {
  return rules.has(opType);
}

export function registeredGradientOps(): string[] {
  return [...rules.keys()].sort();
}

// ---------------------------------------------------------------- stop-gradient marker

const stopped = new WeakSet<Node>();

/** An Identity whose output the autodiff treats as a leaf: no gradient flows back through it. */
export function stopGradient(x: Value): Value {
  const out = x.graph.addNode("Identity", [x], {}, { name: "stop_gradient" })[0]!;
  stopped.add(out.producer!);
  return out;
}

export function isStopGradient(node: Node): boolean {
  return stopped.has(node);
}

// ---------------------------------------------------------------- helpers for rules

/** The dy of a single-output node (a relevant node always has one). */
export function only(c: GradContext): Value {
  const dy = c.dy[0];
  if (!dy) c.fail("no gradient reached its output");
  return dy!;
}

/**
 * Zeros with `like`'s runtime shape and dtype: a scalar 0 expanded (onnxruntime's WebGPU provider has
 * Expand but no ConstantOfShape, which would make the zeros on the CPU and copy them over).
 */
export function zerosLike(like: Value): Value {
  return ops.Expand(like.graph.scalar(0, like.dtype), ops.Shape(like));
}

function dimsEqual(a: Shape[number], b: Shape[number]): boolean {
  return a === b && a !== null;
}

/**
 * Sums a broadcast gradient back to `shape` (the input's static shape): over the leading axes the
 * input lacks, and over axes where the input has size 1. Needs the input's dims to be known where
 * they may have been broadcast.
 */
export function sumToShape(dy: Value, shape: Shape, what = "input"): Value {
  const extra = dy.rank - shape.length;
  if (extra < 0) throw new MtlError("E_GRAD", `gradient ${dy} has lower rank than ${what} ${JSON.stringify(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < extra; i++) axes.push(i);
  shape.forEach((d, i) => {
    const o = dy.shape[extra + i]!;
    if (d === 1 && o !== 1) axes.push(extra + i);
    else if (d === null && o !== 1) {
      throw new MtlError("E_GRAD", `cannot tell whether ${what} dim ${i} (unknown) was broadcast to ${String(o)}`, {
        hint: "give the input a known or symbolic size on that axis",
      });
    } else if (!dimsEqual(d, o) && typeof d === "number" && typeof o === "number") {
      throw new MtlError("E_GRAD", `gradient dim ${o} does not reduce to ${what} dim ${d}`);
    }
  });
  if (axes.length === 0) return dy;
  const summed = ops.ReduceSum(dy, { axes, keepdims: 1 });
  return extra > 0 ? ops.Squeeze(summed, Array.from({ length: extra }, (_, i) => i)) : summed;
}

/** Normalises a possibly negative axis. */
export function axisOf(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Integer contents of a constant input (an initializer, Constant, or a value with known dims). */
export function constInts(v: Value | null | undefined): number[] | undefined {
  if (!v) return undefined;
  if (v.dims && v.dims.every((d): d is number => typeof d === "number")) return [...v.dims];
  if (v.data && (v.data.dtype === "int64" || v.data.dtype === "int32")) return Array.from(v.data.data as ArrayLike<number | bigint>, Number);
  return undefined;
}

/** Float contents of a constant input. */
export function constFloats(v: Value | null | undefined): number[] | undefined {
  if (!v?.data) return undefined;
  return Array.from(v.data.data as ArrayLike<number | bigint>, Number);
}

export function intAttr(node: Node, name: string, dflt: number): number {
  const a = node.attributes[name];
  return a && a.type === "int" ? a.value : dflt;
}

export function floatAttr(node: Node, name: string, dflt: number): number {
  const a = node.attributes[name];
  return a && a.type === "float" ? a.value : dflt;
}

export function intsAttr(node: Node, name: string): readonly number[] | undefined {
  const a = node.attributes[name];
  return a && a.type === "ints" ? a.value : undefined;
}
