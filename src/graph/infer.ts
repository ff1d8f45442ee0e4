/**
 * Shape and dtype inference, one rule per ONNX op. A rule sees the node's inputs (dtype, shape, and
 * known contents) and attributes and returns its outputs; a mismatch throws E_SHAPE naming the op,
 * the node and the shapes. Rules follow the operator specs at the opsets mtl writes (16..21).
 */
import { MtlError } from "../errors.js";
import { type DType, dtypeFromOnnx, isFloat } from "./dtype.js";
import type { Attribute, Dim, Node, Shape, TensorData, Value } from "./ir.js";
import { shapeDims, formatShape } from "./ir.js";

export interface Inferred {
  dtype: DType;
  shape: Dim[];
  data?: TensorData;
  dims?: Dim[];
}

interface Ctx {
  node: Node;
  opset: number;
  outputs: number;
  fail(message: string): never;
  input(i: number): Value;
  optional(i: number): Value | null;
  int(name: string, dflt: number): number;
  float(name: string, dflt: number): number;
  ints(name: string): readonly number[] | undefined;
  str(name: string, dflt: string): string;
  attr(name: string): Attribute | undefined;
  /** Integer contents of a constant input, or undefined. */
  constInts(i: number): readonly number[] | undefined;
}

type Rule = (c: Ctx) => Inferred[];

const rules = new Map<string, Rule>();

export function hasShapeRule(opType: string): boolean {
  return rules.has(opType);
}

export function inferNode(node: Node, opset: number, outputs: number): Inferred[] {
  const rule = rules.get(node.opType);
  const fail = (message: string): never => {
    throw new MtlError("E_SHAPE", `${node.opType} (node '${node.name}'): ${message}`);
  };
  if (!rule || node.domain !== "") fail(`mtl has no shape rule for this op (domain '${node.domain || "ai.onnx"}')`);
  const attr = (name: string) => node.attributes[name];
  const typed = <T extends Attribute["type"]>(name: string, type: T) => {
    const a = attr(name);
    if (a === undefined) return undefined;
    if (a.type !== type) fail(`attribute '${name}' must be ${type}, got ${a.type}`);
    return a.value as Extract<Attribute, { type: T }>["value"];
  };
  const ctx: Ctx = {
    node,
    opset,
    outputs,
    fail,
    input(i) {
      const v = node.inputs[i];
      if (!v) fail(`input ${i} is required`);
      return v!;
    },
    optional: (i) => node.inputs[i] ?? null,
    int: (name, dflt) => typed(name, "int") ?? dflt,
    float: (name, dflt) => typed(name, "float") ?? dflt,
    ints: (name) => typed(name, "ints"),
    str: (name, dflt) => typed(name, "string") ?? dflt,
    attr,
    constInts(i) {
      const v = node.inputs[i];
      if (!v) return undefined;
      const d = v.dims ?? (v.data ? shapeDims(v.data) : undefined);
      if (d && d.every((x): x is number => typeof x === "number")) return d;
      if (v.data && v.data.dims.length === 0) {
        if (v.data.dtype === "int64" || v.data.dtype === "int32") return [Number(v.data.data[0])];
      }
      return undefined;
    },
  };
  const out = rule!(ctx);
  if (out.length !== outputs) {
    // Rules return every output the op can have; trailing optional ones may be dropped.
    if (out.length < outputs) fail(`has at most ${out.length} outputs, ${outputs} asked`);
    return out.slice(0, outputs);
  }
  return out;
}

// ---------------------------------------------------------------- helpers

const show = (s: Shape) => formatShape(s);

function normAxis(c: Ctx, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!(a >= 0 && a < rank)) c.fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Merges two dims that must be equal; numbers win over symbols, symbols over unknown. */
function unify(a: Dim, b: Dim): Dim | undefined {
  if (a === b) return a;
  if (typeof a === "number" && typeof b === "number") return undefined;
  if (typeof a === "number") return a;
  if (typeof b === "number") return b;
  return a ?? b;
}

function broadcast(c: Ctx, shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i];
      if (e === undefined || e === 1) continue;
      if (d === 1) d = e;
      else if (d !== e) {
        if (typeof d === "number" && typeof e === "number") {
          c.fail(`shapes ${shapes.map(show).join(" and ")} do not broadcast`);
        }
        d = typeof d === "number" ? d : typeof e === "number" ? e : null;
      }
    }
    out.push(d);
  }
  return out;
}

function sameDtype(c: Ctx, values: Value[]): DType {
  const t = values[0]!.dtype;
  for (const v of values) if (v.dtype !== t) c.fail(`inputs must share one dtype, got ${values.map((x) => x.dtype).join(", ")}`);
  return t;
}

function requireFloat(c: Ctx, v: Value): void {
  if (!isFloat(v.dtype)) c.fail(`needs a float input, got ${v.dtype} '${v.name}'`);
}

function product(dims: readonly Dim[]): number | null {
  let n = 1;
  for (const d of dims) {
    if (typeof d !== "number") return null;
    n *= d;
  }
  return n;
}

function shapeInput(c: Ctx, i: number, what: string): Dim[] {
  const v = c.input(i);
  if (v.rank !== 1 || (v.dtype !== "int64" && v.dtype !== "int32")) c.fail(`${what} must be a 1-D int64 tensor, got ${v}`);
  const dims = v.dims ?? (v.data ? shapeDims(v.data) : undefined);
  if (dims) return [...dims];
  const n = v.shape[0];
  if (typeof n !== "number") c.fail(`${what} must have a known length`);
  return new Array<Dim>(n as number).fill(null);
}

function axesOf(c: Ctx, inputIndex: number | null, what = "axes"): number[] | undefined {
  if (inputIndex !== null && c.node.inputs[inputIndex]) {
    const a = c.constInts(inputIndex);
    if (!a) c.fail(`${what} must be a constant (mtl infers shapes at build time)`);
    return [...a!];
  }
  const attr = c.ints(what);
  return attr ? [...attr] : undefined;
}

// ---------------------------------------------------------------- elementwise

const same: Rule = (c) => {
  const x = c.input(0);
  return [{ dtype: x.dtype, shape: [...x.shape] }];
};
const sameFloat: Rule = (c) => {
  requireFloat(c, c.input(0));
  return same(c);
};

for (const op of ["Neg", "Abs", "Identity", "Sign"]) rules.set(op, same);
for (const op of ["Sqrt", "Exp", "Log", "Relu", "Sigmoid", "Tanh", "Reciprocal", "Softplus", "Erf", "Floor", "Ceil", "LeakyRelu"]) {
  rules.set(op, sameFloat);
}
rules.set("Not", (c) => {
  if (c.input(0).dtype !== "bool") c.fail(`needs a bool input, got ${c.input(0).dtype}`);
  return same(c);
});
for (const op of ["Softmax", "LogSoftmax"]) {
  rules.set(op, (c) => {
    const x = c.input(0);
    requireFloat(c, x);
    normAxis(c, c.int("axis", -1), x.rank);
    return same(c);
  });
}
rules.set("Clip", (c) => {
  const x = c.input(0);
  for (const i of [1, 2]) {
    const b = c.optional(i);
    if (b && (b.rank !== 0 || b.dtype !== x.dtype)) c.fail(`min and max must be ${x.dtype} scalars, got ${b}`);
  }
  return same(c);
});

const binary = (result: "same" | "bool"): Rule => (c) => {
  const ins = c.node.inputs.map((_, i) => c.input(i));
  if (ins.length < 2 && !["Max", "Min", "Sum", "Mean"].includes(c.node.opType)) c.fail("needs two inputs");
  const dtype = sameDtype(c, ins);
  return [{ dtype: result === "bool" ? "bool" : dtype, shape: broadcast(c, ins.map((v) => v.shape)) }];
};
for (const op of ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean"]) rules.set(op, binary("same"));
for (const op of ["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"]) rules.set(op, binary("bool"));
for (const op of ["And", "Or", "Xor"]) {
  rules.set(op, (c) => {
    if (c.input(0).dtype !== "bool" || c.input(1).dtype !== "bool") c.fail("needs bool inputs");
    return binary("same")(c);
  });
}
rules.set("Pow", (c) => {
  const [x, y] = [c.input(0), c.input(1)];
  return [{ dtype: x.dtype, shape: broadcast(c, [x.shape, y.shape]) }];
});
rules.set("Where", (c) => {
  const [cond, x, y] = [c.input(0), c.input(1), c.input(2)];
  if (cond.dtype !== "bool") c.fail(`condition must be bool, got ${cond.dtype}`);
  return [{ dtype: sameDtype(c, [x, y]), shape: broadcast(c, [cond.shape, x.shape, y.shape]) }];
});
rules.set("Cast", (c) => {
  const code = c.int("to", 0);
  const dtype = dtypeFromOnnx(code);
  if (!dtype) c.fail(`cannot cast to ONNX type ${code}`);
  const x = c.input(0);
  return [{ dtype: dtype!, shape: [...x.shape], dims: dtype === "int64" || dtype === "int32" ? x.dims?.slice() : undefined }];
});

// ---------------------------------------------------------------- linear algebra

rules.set("MatMul", (c) => {
  const [a, b] = [c.input(0), c.input(1)];
  const dtype = sameDtype(c, [a, b]);
  if (a.rank === 0 || b.rank === 0) c.fail(`inputs must have rank >= 1, got ${show(a.shape)} and ${show(b.shape)}`);
  const as = a.rank === 1 ? [1, a.shape[0]!] : [...a.shape];
  const bs = b.rank === 1 ? [b.shape[0]!, 1] : [...b.shape];
  const k = unify(as[as.length - 1]!, bs[bs.length - 2]!);
  if (k === undefined) c.fail(`inner dimensions differ: ${show(a.shape)} x ${show(b.shape)}`);
  const batch = broadcast(c, [as.slice(0, -2), bs.slice(0, -2)]);
  const out = [...batch];
  if (a.rank !== 1) out.push(as[as.length - 2]!);
  if (b.rank !== 1) out.push(bs[bs.length - 1]!);
  return [{ dtype, shape: out }];
});

rules.set("Gemm", (c) => {
  const [a, b] = [c.input(0), c.input(1)];
  const bias = c.optional(2);
  const dtype = sameDtype(c, bias ? [a, b, bias] : [a, b]);
  if (a.rank !== 2 || b.rank !== 2) c.fail(`A and B must be 2-D, got ${show(a.shape)} and ${show(b.shape)}`);
  const [m, ka] = c.int("transA", 0) ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = c.int("transB", 0) ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (unify(ka, kb) === undefined) c.fail(`inner dimensions differ: A ${show(a.shape)}, B ${show(b.shape)}`);
  if (bias) {
    const out = broadcast(c, [[m, n], bias.shape]);
    if (out.length !== 2 || bias.rank > 2) c.fail(`C ${show(bias.shape)} does not broadcast to [M, N] = ${show([m, n])}`);
  }
  return [{ dtype, shape: [m, n] }];
});

// ---------------------------------------------------------------- indexing

rules.set("Gather", (c) => {
  const [data, idx] = [c.input(0), c.input(1)];
  if (idx.dtype !== "int64" && idx.dtype !== "int32") c.fail(`indices must be int32 or int64, got ${idx.dtype}`);
  const axis = normAxis(c, c.int("axis", 0), data.rank);
  const shape = [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)];
  let dims: Dim[] | undefined;
  const picks = c.constInts(1);
  if (data.dims && picks && idx.rank <= 1) {
    dims = picks.map((p) => data.dims![p < 0 ? p + data.dims!.length : p] ?? null);
  }
  return [{ dtype: data.dtype, shape, dims }];
});

rules.set("GatherND", (c) => {
  const [data, idx] = [c.input(0), c.input(1)];
  if (idx.dtype !== "int64") c.fail(`indices must be int64, got ${idx.dtype}`);
  if (c.int("batch_dims", 0) !== 0) c.fail("only batch_dims 0 is supported");
  const k = idx.shape[idx.rank - 1];
  if (typeof k !== "number") c.fail("the last dim of indices must be known");
  if ((k as number) > data.rank) c.fail(`index depth ${k} exceeds data rank ${data.rank}`);
  return [{ dtype: data.dtype, shape: [...idx.shape.slice(0, -1), ...data.shape.slice(k as number)] }];
});

rules.set("ScatterND", (c) => {
  const [data, idx, upd] = [c.input(0), c.input(1), c.input(2)];
  if (idx.dtype !== "int64") c.fail(`indices must be int64, got ${idx.dtype}`);
  const reduction = c.str("reduction", "none");
  const allowed = c.opset >= 18 ? ["none", "add", "mul", "max", "min"] : ["none", "add", "mul"];
  if (!allowed.includes(reduction)) c.fail(`reduction '${reduction}' needs one of ${allowed.join(", ")} at opset ${c.opset}`);
  if (upd.dtype !== data.dtype) c.fail(`updates must be ${data.dtype}, got ${upd.dtype}`);
  const k = idx.shape[idx.rank - 1];
  if (idx.rank < 1) c.fail("indices must have rank >= 1");
  if (typeof k === "number") {
    if (k > data.rank) c.fail(`index depth ${k} exceeds data rank ${data.rank}`);
    const want = [...idx.shape.slice(0, -1), ...data.shape.slice(k)];
    const ok = want.length === upd.rank && want.every((d, i) => unify(d, upd.shape[i]!) !== undefined);
    if (!ok) c.fail(`updates ${show(upd.shape)} must be ${show(want)} for data ${show(data.shape)} and indices ${show(idx.shape)}`);
  }
  return [{ dtype: data.dtype, shape: [...data.shape] }];
});

rules.set("ScatterElements", (c) => {
  const [data, idx, upd] = [c.input(0), c.input(1), c.input(2)];
  if (idx.dtype !== "int64" && idx.dtype !== "int32") c.fail(`indices must be int32 or int64, got ${idx.dtype}`);
  normAxis(c, c.int("axis", 0), data.rank);
  const reduction = c.str("reduction", "none");
  const allowed = c.opset >= 18 ? ["none", "add", "mul", "max", "min"] : ["none", "add", "mul"];
  if (!allowed.includes(reduction)) c.fail(`reduction '${reduction}' needs one of ${allowed.join(", ")} at opset ${c.opset}`);
  if (upd.dtype !== data.dtype) c.fail(`updates must be ${data.dtype}, got ${upd.dtype}`);
  if (idx.rank !== data.rank || upd.rank !== data.rank || idx.shape.some((d, i) => unify(d, upd.shape[i]!) === undefined)) {
    c.fail(`indices ${show(idx.shape)} and updates ${show(upd.shape)} must have one shape of data's rank ${data.rank}`);
  }
  return [{ dtype: data.dtype, shape: [...data.shape] }];
});

// ---------------------------------------------------------------- shape manipulation

rules.set("Concat", (c) => {
  const ins = c.node.inputs.map((_, i) => c.input(i));
  if (ins.length === 0) c.fail("needs at least one input");
  const dtype = sameDtype(c, ins);
  const rank = ins[0]!.rank;
  if (ins.some((v) => v.rank !== rank)) c.fail(`inputs must share a rank, got ${ins.map((v) => show(v.shape)).join(", ")}`);
  const axis = normAxis(c, c.int("axis", 0), rank);
  const shape: Dim[] = [...ins[0]!.shape];
  let total: number | null = 0;
  for (const v of ins) {
    for (let d = 0; d < rank; d++) {
      if (d === axis) continue;
      const u = unify(shape[d]!, v.shape[d]!);
      if (u === undefined) c.fail(`dim ${d} differs: ${ins.map((x) => show(x.shape)).join(", ")}`);
      shape[d] = u!;
    }
    const a = v.shape[axis]!;
    total = typeof a === "number" && total !== null ? total + a : null;
  }
  shape[axis] = total;
  const dims = rank === 1 && ins.every((v) => v.dims) ? ins.flatMap((v) => v.dims!) : undefined;
  return [{ dtype, shape, dims }];
});

rules.set("Split", (c) => {
  const x = c.input(0);
  const axis = normAxis(c, c.int("axis", 0), x.rank);
  let sizes = axesOf(c, 1, "split");
  const len = x.shape[axis]!;
  if (!sizes) {
    const n = c.opset >= 18 ? c.int("num_outputs", c.outputs) : c.outputs;
    if (typeof len !== "number" || len % n !== 0) c.fail(`cannot split dim ${String(len)} into ${n} equal parts; give split sizes`);
    sizes = new Array<number>(n).fill((len as number) / n);
  }
  if (typeof len === "number" && sizes.reduce((a, b) => a + b, 0) !== len) {
    c.fail(`split sizes [${sizes.join(", ")}] do not add up to dim ${axis} of ${show(x.shape)}`);
  }
  return sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === axis ? s : d)) }));
});

const INT64_MAX_ISH = 2 ** 53;
rules.set("Slice", (c) => {
  const x = c.input(0);
  const starts = c.constInts(1), ends = c.constInts(2);
  if (!starts || !ends) c.fail("starts and ends must be constants");
  const axes = c.node.inputs[3] ? c.constInts(3) : starts!.map((_, i) => i);
  const steps = c.node.inputs[4] ? c.constInts(4) : starts!.map(() => 1);
  if (!axes || !steps) c.fail("axes and steps must be constants");
  if (axes!.length !== starts!.length || ends!.length !== starts!.length || steps!.length !== starts!.length) {
    c.fail("starts, ends, axes and steps must have one length");
  }
  const shape: Dim[] = [...x.shape];
  axes!.forEach((ax, i) => {
    const a = normAxis(c, ax, x.rank);
    const step = steps![i]!;
    if (step === 0) c.fail("step must not be 0");
    const d = x.shape[a]!;
    let s = starts![i]!, e = ends![i]!;
    if (typeof d !== "number") {
      const whole = step === 1 && s === 0 && e >= INT64_MAX_ISH / 2;
      shape[a] = whole ? d : step === 1 && s >= 0 && e >= 0 && e < INT64_MAX_ISH / 2 ? Math.max(e - s, 0) : null;
      return;
    }
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
      shape[a] = Math.max(Math.ceil((e - s) / step), 0);
    } else {
      s = Math.min(Math.max(s, -1), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
      shape[a] = Math.max(Math.ceil((e - s) / step), 0);
    }
  });
  let dims: Dim[] | undefined;
  if (x.dims && x.rank === 1 && typeof shape[0] === "number" && steps![0] === 1) {
    const s0 = starts![0]! < 0 ? starts![0]! + x.dims.length : Math.min(starts![0]!, x.dims.length);
    dims = x.dims.slice(s0, s0 + (shape[0] as number));
  }
  return [{ dtype: x.dtype, shape, dims }];
});

rules.set("Reshape", (c) => {
  const x = c.input(0);
  const target = shapeInput(c, 1, "shape");
  const allowzero = c.int("allowzero", 0);
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowzero ? (x.shape[i] === undefined ? c.fail(`shape entry ${i} is 0 but input has rank ${x.rank}`) : x.shape[i]!) : d));
  const minus = out.filter((d) => d === -1).length;
  if (minus > 1) c.fail(`shape ${show(target)} has more than one -1`);
  const inKnown = product(x.shape.filter((d) => typeof d === "number"));
  const inSyms = x.shape.filter((d): d is string => typeof d === "string");
  const inUnknown = x.shape.some((d) => d === null);
  if (minus === 1) {
    const rest = out.filter((d) => d !== -1);
    const outKnown = product(rest.filter((d) => typeof d === "number"))!;
    const outSyms = rest.filter((d): d is string => typeof d === "string");
    let inferred: Dim = null;
    if (!inUnknown && !rest.includes(null)) {
      const left = [...inSyms];
      let ok = true;
      for (const s of outSyms) {
        const at = left.indexOf(s);
        if (at < 0) ok = false;
        else left.splice(at, 1);
      }
      if (ok && outKnown !== 0 && inKnown! % outKnown === 0) {
        const q = inKnown! / outKnown;
        if (left.length === 0) inferred = q;
        else if (left.length === 1 && q === 1) inferred = left[0]!;
      } else if (ok && left.length === 0 && outSyms.length === inSyms.length) {
        c.fail(`cannot reshape ${show(x.shape)} to ${show(target)}`);
      }
    }
    out[out.indexOf(-1)] = inferred;
  } else if (!inUnknown && inSyms.length === 0 && out.every((d) => typeof d === "number")) {
    if (product(out) !== inKnown) c.fail(`cannot reshape ${show(x.shape)} (${inKnown} elements) to ${show(out)}`);
  }
  return [{ dtype: x.dtype, shape: out }];
});

rules.set("Unsqueeze", (c) => {
  const x = c.input(0);
  const axes = axesOf(c, 1);
  if (!axes) c.fail("axes are required");
  const rank = x.rank + axes!.length;
  const norm = axes!.map((a) => normAxis(c, a, rank)).sort((p, q) => p - q);
  if (new Set(norm).size !== norm.length) c.fail(`axes [${axes!.join(", ")}] repeat`);
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : x.shape[j++]!);
  return [{ dtype: x.dtype, shape: out, dims: x.rank === 0 && x.data ? [Number(x.data.data[0])] : undefined }];
});

rules.set("Squeeze", (c) => {
  const x = c.input(0);
  const axes = axesOf(c, 1);
  const drop = axes ? axes.map((a) => normAxis(c, a, x.rank)) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  for (const a of drop) {
    const d = x.shape[a];
    if (typeof d === "number" && d !== 1) c.fail(`cannot squeeze axis ${a} of ${show(x.shape)}: its size is ${d}`);
  }
  return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !drop.includes(i)) }];
});

rules.set("Transpose", (c) => {
  const x = c.input(0);
  const perm = c.ints("perm") ?? x.shape.map((_, i) => x.rank - 1 - i);
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== x.rank || sorted.some((p, i) => p !== i)) c.fail(`perm [${perm.join(", ")}] is not a permutation of rank ${x.rank}`);
  return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }];
});

rules.set("Expand", (c) => {
  const x = c.input(0);
  const target = shapeInput(c, 1, "shape");
  return [{ dtype: x.dtype, shape: broadcast(c, [x.shape, target]) }];
});

rules.set("Pad", (c) => {
  const x = c.input(0);
  const pads = c.constInts(1);
  if (!pads) c.fail("pads must be a constant");
  if (c.node.inputs[3]) c.fail("the axes input is not supported; give pads for every axis");
  const mode = c.str("mode", "constant");
  if (!["constant", "reflect", "edge", "wrap"].includes(mode)) c.fail(`unknown mode '${mode}'`);
  if (pads!.length !== 2 * x.rank) c.fail(`pads has ${pads!.length} entries for rank ${x.rank}; needs ${2 * x.rank}`);
  const value = c.optional(2);
  if (value && (value.rank !== 0 || value.dtype !== x.dtype)) c.fail(`constant_value must be a ${x.dtype} scalar, got ${value}`);
  return [{
    dtype: x.dtype,
    shape: x.shape.map((d, i) => {
      const add = pads![i]! + pads![i + x.rank]!;
      return add === 0 ? d : typeof d === "number" ? d + add : null;
    }),
  }];
});

rules.set("Tile", (c) => {
  const x = c.input(0);
  const reps = shapeInput(c, 1, "repeats");
  if (reps.length !== x.rank) c.fail(`repeats has ${reps.length} entries for rank ${x.rank}`);
  return [{
    dtype: x.dtype,
    shape: x.shape.map((d, i) => {
      const r = reps[i]!;
      return r === 1 ? d : typeof d === "number" && typeof r === "number" ? d * r : null;
    }),
  }];
});

const reduce: Rule = (c) => {
  const x = c.input(0);
  const axesAsInput = c.node.opType === "ReduceSum" || c.opset >= 18;
  const axes = axesOf(c, axesAsInput ? 1 : null);
  const keep = c.int("keepdims", 1);
  const noop = c.int("noop_with_empty_axes", 0);
  if ((!axes || axes.length === 0) && noop) return same(c);
  const norm = (axes && axes.length ? axes : x.shape.map((_, i) => i)).map((a) => normAxis(c, a, x.rank));
  const shape = keep ? x.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !norm.includes(i));
  return [{ dtype: x.dtype, shape }];
};
for (const op of ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp"]) {
  rules.set(op, reduce);
}

rules.set("Shape", (c) => {
  const x = c.input(0);
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + x.rank : i, 0), x.rank);
  const start = clampIdx(c.int("start", 0));
  const end = clampIdx(c.int("end", x.rank));
  const dims = x.shape.slice(start, Math.max(start, end));
  return [{ dtype: "int64", shape: [dims.length], dims }];
});

rules.set("ConstantOfShape", (c) => {
  const shape = shapeInput(c, 0, "input");
  const v = c.attr("value");
  if (v && (v.type !== "tensor" || v.value.data.length !== 1)) c.fail("value must be a one-element tensor");
  const dtype = v && v.type === "tensor" ? v.value.dtype : "float32";
  return [{ dtype, shape }];
});

rules.set("Range", (c) => {
  const [s, l, d] = [c.input(0), c.input(1), c.input(2)];
  const dtype = sameDtype(c, [s, l, d]);
  if (s.rank !== 0 || l.rank !== 0 || d.rank !== 0) c.fail("start, limit and delta must be scalars");
  const vals = [s, l, d].map((v) => (v.data ? Number(v.data.data[0]) : undefined));
  let n: Dim = null;
  if (vals.every((v) => v !== undefined)) {
    const [a, b, step] = vals as number[];
    if (step === 0) c.fail("delta must not be 0");
    n = Math.max(Math.ceil((b! - a!) / step!), 0);
  }
  return [{ dtype, shape: [n] }];
});

rules.set("Constant", (c) => {
  const v = c.attr("value");
  if (!v || v.type !== "tensor") c.fail("needs a tensor attribute 'value'");
  const t = (v as Extract<Attribute, { type: "tensor" }>).value;
  return [{ dtype: t.dtype, shape: [...t.dims], data: t, dims: shapeDims(t) }];
});

// ---------------------------------------------------------------- layers

rules.set("BatchNormalization", (c) => {
  const x = c.input(0);
  requireFloat(c, x);
  if (x.rank < 2) c.fail(`X must be [N, C, ...], got ${show(x.shape)}`);
  const ch = x.shape[1]!;
  for (const i of [1, 2, 3, 4]) {
    const p = c.input(i);
    if (p.rank !== 1 || unify(p.shape[0]!, ch) === undefined) c.fail(`input ${i} must be [C] = ${show([ch])}, got ${show(p.shape)}`);
  }
  const training = c.int("training_mode", 0);
  if (!training && c.outputs > 1) c.fail("running statistics are outputs only with training_mode=1");
  const stat = { dtype: c.input(3).dtype, shape: [ch] };
  return training ? [{ dtype: x.dtype, shape: [...x.shape] }, stat, { ...stat, shape: [ch] }] : [{ dtype: x.dtype, shape: [...x.shape] }];
});

rules.set("Dropout", (c) => {
  const x = c.input(0);
  requireFloat(c, x);
  const ratio = c.optional(1);
  if (ratio && (ratio.rank !== 0 || !isFloat(ratio.dtype))) c.fail(`ratio must be a float scalar, got ${ratio}`);
  const training = c.optional(2);
  if (training && (training.rank !== 0 || training.dtype !== "bool")) c.fail(`training_mode must be a bool scalar, got ${training}`);
  return [{ dtype: x.dtype, shape: [...x.shape] }, { dtype: "bool", shape: [...x.shape] }];
});
