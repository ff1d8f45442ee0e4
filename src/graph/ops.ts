/**
 * ONNX operators as functions, named exactly as the ONNX operator docs name them, so any reader can
 * look an op up. Each adds one node to the graph its first Value input belongs to. Numbers stand in
 * for scalar constants of the other operand's dtype (`Mul(x, 0.5)`); axes, shapes, starts and the
 * like are plain arrays, and the op writes them as inputs or attributes as the graph's opset wants.
 */
import { MtlError } from "../errors.js";
import { type DType, ONNX_DATA_TYPE } from "./dtype.js";
import { type Attribute, type Attributes, Graph, Value, tensor } from "./ir.js";

export type Operand = Value | number;
/** Integers given as a constant array, or as a 1-D int64 Value computed in the graph. */
export type Ints = readonly number[] | Value;

function graphOf(op: string, operands: readonly (Operand | readonly Value[] | null | undefined)[]): Graph {
  for (const o of operands) {
    if (o instanceof Value) return o.graph;
    if (Array.isArray(o) && o[0] instanceof Value) return o[0].graph;
  }
  throw new MtlError("E_GRAPH", `${op}: at least one input must be a graph Value`);
}

function operands(op: string, xs: readonly Operand[]): Value[] {
  const g = graphOf(op, xs);
  const ref = xs.find((x): x is Value => x instanceof Value)!;
  return xs.map((x) => (x instanceof Value ? x : g.scalar(x, ref.dtype)));
}

function ints(g: Graph, x: Ints): Value {
  return x instanceof Value ? x : g.ints(x);
}

const int = (value: number): Attribute => ({ type: "int", value });
const float = (value: number): Attribute => ({ type: "float", value });

function attrs(entries: Record<string, Attribute | undefined>): Attributes {
  const out: Record<string, Attribute> = {};
  for (const [k, v] of Object.entries(entries)) if (v !== undefined) out[k] = v;
  return out;
}

function node(op: string, inputs: readonly (Value | null)[], a: Attributes = {}): Value {
  const g = graphOf(op, inputs);
  return g.addNode(op, inputs, a)[0]!;
}

// ---------------------------------------------------------------- elementwise

const unary = (op: string) => (x: Value): Value => node(op, [x]);
const binary = (op: string) => (a: Operand, b: Operand): Value => node(op, operands(op, [a, b]));

export const Neg = unary("Neg");
export const Abs = unary("Abs");
export const Sqrt = unary("Sqrt");
export const Exp = unary("Exp");
export const Log = unary("Log");
export const Relu = unary("Relu");
export const Sigmoid = unary("Sigmoid");
export const Tanh = unary("Tanh");
export const Reciprocal = unary("Reciprocal");
export const Softplus = unary("Softplus");
export const Sign = unary("Sign");
export const Not = unary("Not");
export const Identity = unary("Identity");

export const Add = binary("Add");
export const Sub = binary("Sub");
export const Mul = binary("Mul");
export const Div = binary("Div");
export const Pow = binary("Pow");
export const Equal = binary("Equal");
export const Greater = binary("Greater");
export const Less = binary("Less");
export const GreaterOrEqual = binary("GreaterOrEqual");
export const LessOrEqual = binary("LessOrEqual");
export const And = binary("And");
export const Or = binary("Or");

export function Max(...xs: Operand[]): Value {
  return node("Max", operands("Max", xs));
}
export function Min(...xs: Operand[]): Value {
  return node("Min", operands("Min", xs));
}
export function Sum(...xs: Value[]): Value {
  return node("Sum", xs);
}

export function LeakyRelu(x: Value, a: { alpha?: number } = {}): Value {
  return node("LeakyRelu", [x], attrs({ alpha: a.alpha === undefined ? undefined : float(a.alpha) }));
}

export function Softmax(x: Value, a: { axis?: number } = {}): Value {
  return node("Softmax", [x], attrs({ axis: a.axis === undefined ? undefined : int(a.axis) }));
}

export function LogSoftmax(x: Value, a: { axis?: number } = {}): Value {
  return node("LogSoftmax", [x], attrs({ axis: a.axis === undefined ? undefined : int(a.axis) }));
}

export function Clip(x: Value, min?: Operand | null, max?: Operand | null): Value {
  const bound = (b: Operand | null | undefined) => (b === undefined || b === null ? null : b instanceof Value ? b : x.graph.scalar(b, x.dtype));
  const ins = [x, bound(min), bound(max)];
  while (ins.length > 1 && ins[ins.length - 1] === null) ins.pop();
  return node("Clip", ins);
}

export function Where(condition: Value, x: Operand, y: Operand): Value {
  const [a, b] = operands("Where", [x, y]);
  return node("Where", [condition, a!, b!]);
}

export function Cast(x: Value, a: { to: DType }): Value {
  return node("Cast", [x], { to: int(ONNX_DATA_TYPE[a.to]) });
}

// ---------------------------------------------------------------- linear algebra

export function MatMul(a: Value, b: Value): Value {
  return node("MatMul", [a, b]);
}

export function Gemm(
  A: Value,
  B: Value,
  C?: Value | null,
  a: { alpha?: number; beta?: number; transA?: 0 | 1; transB?: 0 | 1 } = {},
): Value {
  return node("Gemm", C ? [A, B, C] : [A, B], attrs({
    alpha: a.alpha === undefined ? undefined : float(a.alpha),
    beta: a.beta === undefined ? undefined : float(a.beta),
    transA: a.transA ? int(a.transA) : undefined,
    transB: a.transB ? int(a.transB) : undefined,
  }));
}

// ---------------------------------------------------------------- indexing

export function Gather(data: Value, indices: Value, a: { axis?: number } = {}): Value {
  return node("Gather", [data, indices], attrs({ axis: a.axis ? int(a.axis) : undefined }));
}

/** https://onnx.ai/onnx/operators/onnx__GatherND.html (batch_dims 0): data[indices[..., :]] */
export function GatherND(data: Value, indices: Value): Value {
  return node("GatherND", [data, indices]);
}

type Reduction = "none" | "add" | "mul" | "max" | "min";

export function ScatterND(data: Value, indices: Value, updates: Value, a: { reduction?: Reduction } = {}): Value {
  const reduction: Attribute | undefined = a.reduction && a.reduction !== "none" ? { type: "string", value: a.reduction } : undefined;
  return node("ScatterND", [data, indices, updates], attrs({ reduction }));
}

export function ScatterElements(
  data: Value,
  indices: Value,
  updates: Value,
  a: { axis?: number; reduction?: Reduction } = {},
): Value {
  const reduction: Attribute | undefined = a.reduction && a.reduction !== "none" ? { type: "string", value: a.reduction } : undefined;
  return node("ScatterElements", [data, indices, updates], attrs({ axis: a.axis ? int(a.axis) : undefined, reduction }));
}

// ---------------------------------------------------------------- shape manipulation

export function Concat(inputs: readonly Value[], a: { axis: number }): Value {
  return graphOf("Concat", [inputs]).addNode("Concat", inputs, { axis: int(a.axis) })[0]!;
}

/** Splits along `axis` into pieces of the given sizes (or `outputs` equal pieces). */
export function Split(x: Value, a: { axis?: number; split?: readonly number[]; outputs?: number }): Value[] {
  const g = x.graph;
  const n = a.split?.length ?? a.outputs;
  if (!n) throw new MtlError("E_GRAPH", "Split: give split sizes or a number of outputs");
  const ins = a.split ? [x, g.ints(a.split)] : [x];
  const at = attrs({
    axis: a.axis ? int(a.axis) : undefined,
    num_outputs: !a.split && g.opset >= 18 ? int(n) : undefined,
  });
  return g.addNode("Split", ins, at, { outputs: n });
}

export function Slice(x: Value, starts: Ints, ends: Ints, axes?: Ints, steps?: Ints): Value {
  const g = x.graph;
  const ins: Value[] = [x, ints(g, starts), ints(g, ends)];
  if (axes !== undefined || steps !== undefined) ins.push(ints(g, axes ?? (starts as readonly number[]).map((_, i) => i)));
  if (steps !== undefined) ins.push(ints(g, steps));
  return node("Slice", ins);
}

export function Reshape(x: Value, shape: Ints, a: { allowzero?: 0 | 1 } = {}): Value {
  return node("Reshape", [x, ints(x.graph, shape)], attrs({ allowzero: a.allowzero ? int(1) : undefined }));
}

export function Unsqueeze(x: Value, axes: Ints): Value {
  return node("Unsqueeze", [x, ints(x.graph, axes)]);
}

export function Squeeze(x: Value, axes?: Ints): Value {
  return node("Squeeze", axes === undefined ? [x] : [x, ints(x.graph, axes)]);
}

export function Transpose(x: Value, a: { perm?: readonly number[] } = {}): Value {
  return node("Transpose", [x], attrs({ perm: a.perm ? { type: "ints", value: a.perm } : undefined }));
}

export function Expand(x: Value, shape: Ints): Value {
  return node("Expand", [x, ints(x.graph, shape)]);
}

/** Pads with a constant (mode "constant"); `pads` is [x1_begin, x2_begin, ..., x1_end, x2_end, ...]. */
export function Pad(x: Value, pads: Ints, constantValue?: number): Value {
  const g = x.graph;
  const ins = [x, ints(g, pads)];
  if (constantValue !== undefined) ins.push(g.scalar(constantValue, x.dtype));
  return node("Pad", ins);
}

export function Tile(x: Value, repeats: Ints): Value {
  return node("Tile", [x, ints(x.graph, repeats)]);
}

export function Shape(x: Value, a: { start?: number; end?: number } = {}): Value {
  return node("Shape", [x], attrs({
    start: a.start === undefined ? undefined : int(a.start),
    end: a.end === undefined ? undefined : int(a.end),
  }));
}

export function ConstantOfShape(shape: Value, a: { value?: number; dtype?: DType } = {}): Value {
  const dtype = a.dtype ?? "float32";
  const v = shape.graph.scalar(a.value ?? 0, dtype).data!;
  return node("ConstantOfShape", [shape], { value: { type: "tensor", value: tensor(dtype, [1], v.data) } });
}

export function Range(start: Operand, limit: Operand, delta: Operand, a: { dtype?: DType } = {}): Value {
  const vs = [start, limit, delta];
  const ref = vs.find((x): x is Value => x instanceof Value);
  if (ref) return node("Range", operands("Range", vs));
  throw new MtlError("E_GRAPH", `Range: give at least one Value input (a ${a.dtype ?? "int64"} range of constants is a constant)`);
}

type ReduceAttrs = { axes?: readonly number[]; keepdims?: 0 | 1; noop_with_empty_axes?: 0 | 1 };

function reduce(op: string, axesAsInputSince: number) {
  return (x: Value, a: ReduceAttrs = {}): Value => {
    const g = x.graph;
    const asInput = g.opset >= axesAsInputSince;
    const ins = asInput && a.axes ? [x, g.ints(a.axes)] : [x];
    return node(op, ins, attrs({
      axes: !asInput && a.axes ? { type: "ints", value: a.axes } : undefined,
      keepdims: a.keepdims === undefined ? undefined : int(a.keepdims),
      noop_with_empty_axes: a.noop_with_empty_axes ? int(1) : undefined,
    }));
  };
}

export const ReduceSum = reduce("ReduceSum", 13);
export const ReduceMean = reduce("ReduceMean", 18);
export const ReduceMax = reduce("ReduceMax", 18);
export const ReduceMin = reduce("ReduceMin", 18);
export const ReduceSumSquare = reduce("ReduceSumSquare", 18);
export const ReduceProd = reduce("ReduceProd", 18);

// ---------------------------------------------------------------- layers

/** In inference mode one output; with training_mode 1, [Y, running_mean, running_var]. */
export function BatchNormalization(
  X: Value,
  scale: Value,
  B: Value,
  mean: Value,
  variance: Value,
  a: { epsilon?: number; momentum?: number; training_mode?: 0 | 1 } = {},
): Value[] {
  return X.graph.addNode("BatchNormalization", [X, scale, B, mean, variance], attrs({
    epsilon: a.epsilon === undefined ? undefined : float(a.epsilon),
    momentum: a.momentum === undefined ? undefined : float(a.momentum),
    training_mode: a.training_mode ? int(1) : undefined,
  }), { outputs: a.training_mode ? 3 : 1 });
}

/** Returns [output, mask]. `training` may be a bool scalar Value or a constant. */
export function Dropout(x: Value, a: { ratio?: number; training?: boolean | Value; seed?: number } = {}): [Value, Value] {
  const g = x.graph;
  const ratio = g.scalar(a.ratio ?? 0.5, x.dtype === "float16" ? "float32" : x.dtype);
  const training = a.training instanceof Value ? a.training : g.scalar(a.training ? 1 : 0, "bool");
  const [out, mask] = g.addNode("Dropout", [x, ratio, training], attrs({ seed: a.seed === undefined ? undefined : int(a.seed) }), { outputs: 2 });
  return [out!, mask!];
}
