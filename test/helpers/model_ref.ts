/**
 * The models' building blocks in plain TypeScript, row by row, written from the papers' formulas
 * and sharing no code with src/: sum pooling, dense layers, ReLU MLPs, sigmoid heads, softmax gates,
 * log-losses. Slow and obvious on purpose.
 */
import type { TrainingState } from "../../src/train/index.js";
import { TINY_DIM, TINY_FIELDS, TINY_IDS_PER_FIELD, type TinyBatch } from "./models.js";

export type Rows = number[][];

export const EPS = 1e-7;
export const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
export const relu = (z: number): number => (z > 0 ? z : 0);

/** −(y·log p + (1 − y)·log(1 − p)) with p clipped to [1e-7, 1 − 1e-7]. */
export function logLoss(p: number, y: number): number {
  const q = Math.min(Math.max(p, EPS), 1 - EPS);
  return -(y * Math.log(q) + (1 - y) * Math.log(1 - q));
}

export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
export const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

export class Ref {
  constructor(private readonly state: TrainingState) {}

  w(name: string): Float64Array {
    const t = this.state.get(name);
    if (!t) throw new Error(`no parameter ${name}`);
    return t as Float64Array;
  }

  /** The tiny schema's input: per row, each field's embedding sum over its ids (padding row 0 is zero). */
  pooled(batch: TinyBatch, table = "shared"): Rows {
    const t = this.w(table);
    const width = TINY_FIELDS * TINY_IDS_PER_FIELD;
    return batch.click.map((_, b) => {
      const x = new Array<number>(TINY_FIELDS * TINY_DIM).fill(0);
      for (let f = 0; f < TINY_FIELDS; f++) {
        for (let j = 0; j < TINY_IDS_PER_FIELD; j++) {
          const id = batch.ids[b * width + f * TINY_IDS_PER_FIELD + j]!;
          for (let d = 0; d < TINY_DIM; d++) x[f * TINY_DIM + d]! += t[id * TINY_DIM + d]!;
        }
      }
      return x;
    });
  }

  /** x·W + b with W [in, out] row-major. */
  linear(name: string, x: Rows): Rows {
    const W = this.w(`${name}.weight`), bias = this.w(`${name}.bias`);
    const out = bias.length, inp = W.length / out;
    return x.map((row) => {
      if (row.length !== inp) throw new Error(`${name}: input width ${row.length}, want ${inp}`);
      return Array.from({ length: out }, (_, o) => {
        let s = bias[o]!;
        for (let i = 0; i < inp; i++) s += row[i]! * W[i * out + o]!;
        return s;
      });
    });
  }

  /** ReLU layers `${name}.${i}`. */
  mlp(name: string, x: Rows, layers: number): Rows {
    let h = x;
    for (let i = 0; i < layers; i++) h = this.linear(`${name}.${i}`, h).map((r) => r.map(relu));
    return h;
  }

  /** σ(h·w + b) of head `${name}`: one probability per row. */
  head(name: string, h: Rows): number[] {
    return this.linear(name, h).map((r) => sigmoid(r[0]!));
  }

  /** MLP `${name}.${i}` then head `${name}.out`. */
  tower(name: string, x: Rows, layers: number): number[] {
    return this.head(`${name}.out`, this.mlp(name, x, layers));
  }

  /** softmax(x·W + b) per row. */
  gate(name: string, x: Rows): Rows {
    return this.linear(name, x).map((z) => {
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const s = sum(e);
      return e.map((v) => v / s);
    });
  }
}

/** Σ_e gate[b][e] · experts[e][b]. */
export function mix(gate: Rows, experts: Rows[]): Rows {
  return gate.map((g, b) => experts[0]![b]!.map((_, u) => sum(experts.map((e, k) => g[k]! * e[b]![u]!))));
}
