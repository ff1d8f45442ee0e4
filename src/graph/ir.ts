/**
 * The graph IR every model and every training graph is written in: values with a dtype and a
 * shape, nodes named exactly after ONNX ops, initializers from typed arrays. Shapes and dtypes are
 * inferred as each node is added (see infer.ts), so a graph that does not fit fails where it is
 * built, naming the op, the node and the shapes.
 */
import { MtlError } from "../errors.js";
import { type DType, type TypedArray, dtypeOfArray, BYTES_PER_ELEMENT } from "./dtype.js";
import { inferNode, type Inferred } from "./infer.js";

/** A dimension: a size, a symbolic name such as "batch", or null where it is not known. */
export type Dim = number | string | null;
export type Shape = readonly Dim[];

export interface TensorData {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: TypedArray;
}

export type Attribute =
  | { readonly type: "int"; readonly value: number }
  | { readonly type: "float"; readonly value: number }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "ints"; readonly value: readonly number[] }
  | { readonly type: "floats"; readonly value: readonly number[] }
  | { readonly type: "strings"; readonly value: readonly string[] }
  | { readonly type: "tensor"; readonly value: TensorData };

export type Attributes = Readonly<Record<string, Attribute>>;

/** The opsets mtl writes. 16 is the first with ScatterND reduction (the gradient of Gather). */
export const MIN_OPSET = 16;
export const MAX_OPSET = 21;
export const DEFAULT_OPSET = 17;

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function tensor(dtype: DType, dims: readonly number[], data: TypedArray): TensorData {
  const expected = dtype === "bool" ? "uint8" : dtype;
  if (dtypeOfArray(data) !== expected) {
    throw new MtlError("E_TENSOR", `a ${dtype} tensor needs its storage array, got ${data.constructor.name}`);
  }
  if (elementCount(dims) !== data.length) {
    throw new MtlError("E_TENSOR", `dims [${dims.join(", ")}] hold ${elementCount(dims)} elements, data has ${data.length}`);
  }
  return { dtype, dims: [...dims], data };
}

export function tensorBytes(t: TensorData): number {
  return t.data.length * BYTES_PER_ELEMENT[t.dtype];
}

export function formatShape(shape: Shape): string {
  return `[${shape.map((d) => (d === null ? "?" : String(d))).join(", ")}]`;
}

export class Value {
  /** Known contents: an initializer's or a Constant's data. */
  readonly data: TensorData | undefined;
  /** For a 1-D integer tensor that holds a shape: its entries as dims, where known (Shape, Concat, constants). */
  readonly dims: readonly Dim[] | undefined;

  constructor(
    readonly graph: Graph,
    public name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly producer: Node | null,
    extra: { data?: TensorData; dims?: readonly Dim[] } = {},
  ) {
    this.data = extra.data;
    this.dims = extra.dims;
  }

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

export class Node {
  readonly outputs: Value[] = [];
  constructor(
    readonly opType: string,
    readonly domain: string,
    readonly name: string,
    readonly inputs: readonly (Value | null)[],
    readonly attributes: Attributes,
  ) {}
}

export interface GraphOptions {
  name?: string;
  /** ai.onnx opset version, MIN_OPSET..MAX_OPSET; default 17. */
  opset?: number;
}

export interface AddNodeOptions {
  /** How many outputs the node has (default 1). */
  outputs?: number;
  /** Node name; default `<op>_<n>`. */
  name?: string;
  domain?: string;
  /** Output names (default `<node>` or `<node>_<i>`); used when reading a file. */
  outputNames?: readonly string[];
  /** Output types, for ops mtl has no shape rule for (read from a file's value_info). */
  types?: readonly { dtype: DType; shape: Shape }[];
}

export class Graph {
  readonly name: string;
  readonly opset: number;
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers: Value[] = [];
  readonly nodes: Node[] = [];
  /** Model metadata_props, written in insertion order. */
  readonly metadata = new Map<string, string>();
  private readonly names = new Set<string>();
  private readonly opCounts = new Map<string, number>();

  constructor(opts: GraphOptions = {}) {
    this.name = opts.name ?? "mtl";
    this.opset = opts.opset ?? DEFAULT_OPSET;
    if (!Number.isInteger(this.opset) || this.opset < MIN_OPSET || this.opset > MAX_OPSET) {
      throw new MtlError("E_OPSET", `opset ${opts.opset} is not supported`, {
        where: { field: "opset" },
        hint: `use ${MIN_OPSET}..${MAX_OPSET}; ${DEFAULT_OPSET} suits onnxruntime-web and older runtimes`,
      });
    }
  }

  /** Reserves `base`, or `base_2`, `base_3`, ... if it is taken. */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 2; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  private claim(name: string, what: string): void {
    if (this.names.has(name)) {
      throw new MtlError("E_GRAPH", `${what} name '${name}' is already used in graph '${this.name}'`);
    }
    this.names.add(name);
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    this.claim(name, "input");
    const v = new Value(this, name, dtype, [...shape], null);
    this.inputs.push(v);
    return v;
  }

  initializer(name: string, t: TensorData): Value {
    this.claim(name, "initializer");
    const v = new Value(this, name, t.dtype, [...t.dims], null, { data: t, dims: shapeDims(t) });
    this.initializers.push(v);
    return v;
  }

  /** A Constant node holding `t`. */
  constant(t: TensorData, name?: string): Value {
    return this.addNode("Constant", [], { value: { type: "tensor", value: t } }, { name: name ?? "" })[0]!;
  }

  /** A scalar Constant of `dtype`. */
  scalar(value: number, dtype: DType): Value {
    return this.constant(tensor(dtype, [], arrayOf(dtype, [value])));
  }

  /** A 1-D int64 Constant, the form ONNX takes axes, shapes and indices in. */
  ints(values: readonly number[]): Value {
    return this.constant(tensor("int64", [values.length], BigInt64Array.from(values, (v) => BigInt(v))));
  }

  /**
   * Adds a node and infers its outputs. Inputs are Values of this graph (null for an omitted
   * optional input); the node's name defaults to `<op>_<n>`.
   */
  addNode(opType: string, inputs: readonly (Value | null)[], attributes: Attributes = {}, opts: AddNodeOptions = {}): Value[] {
    for (const v of inputs) {
      if (v && v.graph !== this) {
        throw new MtlError("E_GRAPH", `${opType}: input '${v.name}' belongs to graph '${v.graph.name}', not '${this.name}'`);
      }
    }
    const count = (this.opCounts.get(opType) ?? 0) + 1;
    this.opCounts.set(opType, count);
    const name = opts.name ? this.uniqueName(opts.name) : this.uniqueName(`${opType}_${count}`);
    const node = new Node(opType, opts.domain ?? "", name, [...inputs], attributes);
    const outs: Inferred[] = opts.types
      ? opts.types.map((t) => ({ dtype: t.dtype, shape: [...t.shape] }))
      : inferNode(node, this.opset, opts.outputs ?? 1);
    outs.forEach((o, i) => {
      let outName: string;
      if (opts.outputNames?.[i]) {
        outName = opts.outputNames[i]!;
        if (outName !== name) this.claim(outName, "value");
      } else {
        outName = outs.length === 1 ? name : this.uniqueName(`${name}_${i}`);
      }
      node.outputs.push(new Value(this, outName, o.dtype, o.shape, node, { data: o.data, dims: o.dims }));
    });
    this.nodes.push(node);
    return node.outputs;
  }

  /** Nodes the outputs depend on, in creation order (which is topological). */
  liveNodes(): Node[] {
    const live = new Set<Node>();
    const stack = this.outputs.map((v) => v.producer).filter((n): n is Node => n !== null);
    while (stack.length) {
      const n = stack.pop()!;
      if (live.has(n)) continue;
      live.add(n);
      for (const v of n.inputs) if (v?.producer) stack.push(v.producer);
    }
    return this.nodes.filter((n) => live.has(n));
  }

  /**
   * Marks `value` as a graph output named `name` (default: its own name). A value that is an input,
   * an initializer or already an output under another name is passed through an Identity node.
   */
  output(value: Value, name?: string): Value {
    if (value.graph !== this) throw new MtlError("E_GRAPH", `output '${value.name}' belongs to another graph`);
    const wanted = name ?? value.name;
    if (this.outputs.some((o) => o.name === wanted)) {
      throw new MtlError("E_GRAPH", `graph '${this.name}' already has an output named '${wanted}'`);
    }
    let out = value;
    if (value.producer === null || this.outputs.includes(value) || (wanted !== value.name && this.names.has(wanted))) {
      out = this.addNode("Identity", [value], {}, { name: `${wanted}_identity` })[0]!;
    }
    if (out.name !== wanted) {
      this.claim(wanted, "output");
      this.names.delete(out.name);
      out.name = wanted;
    }
    this.outputs.push(out);
    return out;
  }
}

function arrayOf(dtype: DType, values: readonly number[]): TypedArray {
  switch (dtype) {
    case "float32": return Float32Array.from(values);
    case "float64": return Float64Array.from(values);
    case "int32": return Int32Array.from(values);
    case "int8": return Int8Array.from(values);
    case "uint8":
    case "bool": return Uint8Array.from(values);
    case "int64": return BigInt64Array.from(values, (v) => BigInt(v));
    case "float16": throw new MtlError("E_TENSOR", "write float16 constants as float32 and Cast them");
  }
}

/** The entries of a small 1-D integer tensor as dims (the shape-tensor view used by Reshape, Expand...). */
export function shapeDims(t: TensorData): Dim[] | undefined {
  if (t.dims.length !== 1 || t.data.length > 64) return undefined;
  if (t.dtype === "int64") return Array.from(t.data as BigInt64Array, (v) => Number(v));
  if (t.dtype === "int32") return Array.from(t.data as Int32Array);
  return undefined;
}
