/**
 * What a model sees while it is built: a context that hands out parameters, embedding lookups,
 * batch inputs, non-trainable state (BatchNorm running statistics) and dropout. The same model
 * function builds the inference graph (parameters and full tables as initializers), the training
 * step (parameters as inputs, only the batch's rows of each table as inputs) and the eval program.
 * A model never touches onnxruntime.
 */
import type { DType } from "../graph/dtype.js";
import type { Graph, Shape, Value } from "../graph/ir.js";

export type FloatDType = "float32" | "float64";

/** How a parameter starts. Drawn from the state's seeded PRNG, per parameter name. */
export type Init =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "constant"; value: number }
  | { kind: "uniform"; limit: number }
  | { kind: "normal"; std: number }
  /** Glorot/Xavier uniform: limit sqrt(6 / (fanIn + fanOut)). */
  | { kind: "glorot_uniform"; fanIn: number; fanOut: number };

export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
}

export interface TableSpec {
  name: string;
  rows: number;
  dim: number;
  init: Init;
  /** Row 0 is padding: always zero, never updated (PaddleRec's padding_idx=0). */
  paddingRow0: boolean;
}

/** Non-trainable state the training step updates (e.g. BatchNorm running mean and variance). */
export interface StateSpec {
  name: string;
  shape: number[];
  init: Init;
}

export interface LookupSpec {
  /** The batch input holding global ids (int64 in the inference graph). */
  input: string;
  table: string;
  /** Shape of the ids input, e.g. ["batch", 69]. */
  shape: Shape;
}

export interface DropoutSpec {
  /** The training step's mask input (bool, shape `shape`); true keeps a unit. */
  input: string;
  rate: number;
  shape: Shape;
}

export type Mode = "train" | "eval" | "inference";

export interface ModelContext {
  readonly graph: Graph;
  readonly dtype: FloatDType;
  readonly mode: Mode;
  /**
   * A scoring graph that splits the input layer by the schema's `context` features (inference mode
   * only; see embedInput in src/models/inputs.ts): their share of each first layer is computed once
   * per context row.
   */
  readonly contextSplit: boolean;
  /** A trainable dense parameter. */
  param(name: string, shape: number[], init: Init): Value;
  /** Embeddings of the ids in batch input `input` (global int ids, shape `shape`) from `table`: [...shape, dim]. */
  lookup(table: TableSpec, input: string, shape: Shape): Value;
  /** A batch input that is not looked up (labels, dense features). */
  input(name: string, dtype: DType, shape: Shape): Value;
  /** Non-trainable state: read its current value; in training, `update` gives its next value. */
  state(spec: StateSpec): { value: Value; update(next: Value): void };
  /** Dropout with rate `rate` on x ([batch, units]); the identity outside training. */
  dropout(name: string, x: Value, rate: number): Value;
}

/** What a model returns: named predictions, named loss terms, and the total loss it minimises. */
export interface ModelOutputs {
  predictions: Record<string, Value>;
  losses: Record<string, Value>;
  loss: Value;
}

export interface ModelDefinition<Config> {
  readonly name: string;
  build(ctx: ModelContext, config: Config): ModelOutputs;
}
