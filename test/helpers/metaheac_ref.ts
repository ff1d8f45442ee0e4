/**
 * MetaHeac and its meta-learning step in plain TypeScript, row by row, from the paper's formulas and
 * PaddleRec's net.py, sharing no code with src/: the forward pass on a tiny four-field schema, its
 * gradients by central finite differences (float64), the inner SGD step and the outer update.
 */
import { validateSchema, type FeatureSchema } from "../../src/features/schema.js";

export const REF_DIM = 2;
/** Fields of the tiny schema, in schema (and so pooled) order: two user fields, then two ad fields. */
export const REF_FIELDS = [
  { name: "ua", kind: "id", vocab: 6, width: 1 },
  { name: "ub", kind: "ids", vocab: 7, width: 3 },
  { name: "ada", kind: "id", vocab: 4, width: 1 },
  { name: "adb", kind: "id", vocab: 5, width: 1 },
] as const;
export const REF_AD = ["ada", "adb"];

/** One table per field (four tables of the same dim), `ub` mean-pooled over its non-zero ids. */
export function refSchema(): FeatureSchema {
  return validateSchema({
    features: REF_FIELDS.map((f) => f.kind === "id"
      ? { name: f.name, kind: "id", vocab_size: f.vocab, dim: REF_DIM }
      : { name: f.name, kind: "ids", max_len: f.width, pooling: "mean", vocab_size: f.vocab, dim: REF_DIM }),
    labels: { click: "label" },
  });
}

export interface RefShape {
  experts: number;
  expertUnits: number;
  gateHidden: number;
  critics: number;
}

/** A batch of the tiny schema: ids per field ([n·width], ub padded with 0) and labels. */
export interface RefBatch {
  ids: Record<string, Int32Array>;
  label: number[];
}

export type Weights = Map<string, Float64Array>;

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const relu = (z: number) => (z > 0 ? z : 0);
function logLoss(p: number, y: number): number {
  const q = Math.min(Math.max(p, 1e-7), 1 - 1e-7);
  return -(y * Math.log(q) + (1 - y) * Math.log(1 - q));
}
function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
function dense(w: Weights, name: string, x: number[]): number[] {
  const W = w.get(`${name}.weight`)!, b = w.get(`${name}.bias`)!;
  const out = b.length;
  return Array.from({ length: out }, (_, o) => x.reduce((s, xi, i) => s + xi * W[i * out + o]!, b[o]!));
}

export interface RefForward {
  p: number[];
  expertGate: number[][];
  criticGate: number[][];
  loss: number;
}

export function refForward(w: Weights, shape: RefShape, batch: RefBatch): RefForward {
  const n = batch.label.length;
  const embed = (field: string, id: number) => Array.from(w.get(field)!.subarray(id * REF_DIM, id * REF_DIM + REF_DIM));
  const out: RefForward = { p: [], expertGate: [], criticGate: [], loss: 0 };
  for (let r = 0; r < n; r++) {
    const ua = embed("ua", batch.ids["ua"]![r]!);
    const ubIds = Array.from(batch.ids["ub"]!.subarray(r * 3, r * 3 + 3)).filter((id) => id !== 0);
    const ub = [0, 0].map((_, d) => (ubIds.length ? ubIds.reduce((s, id) => s + embed("ub", id)[d]!, 0) / ubIds.length : 0));
    const ada = embed("ada", batch.ids["ada"]![r]!), adb = embed("adb", batch.ids["adb"]![r]!);
    const eu = [...ua, ...ub];
    const task = [...ua.map((v, d) => (v + ub[d]!) / 2), ...ada, ...adb];
    const gate = (name: string) => softmax(dense(w, `${name}.1`, dense(w, `${name}.0`, task).map(relu)));
    const alpha = gate("expert_gate");
    const h = new Array<number>(shape.expertUnits).fill(0);
    for (let k = 0; k < shape.experts; k++) dense(w, `expert.${k}.0`, eu).map(relu).forEach((v, i) => (h[i]! += alpha[k]! * v));
    const beta = gate("critic_gate");
    let p = 0;
    for (let j = 0; j < shape.critics; j++) p += beta[j]! * sigmoid(dense(w, `critic.${j}`, h)[0]!);
    out.p.push(p);
    out.expertGate.push(alpha);
    out.criticGate.push(beta);
    out.loss += logLoss(p, batch.label[r]!) / n;
  }
  return out;
}

/** d f / d every weight, by central differences. */
function centralDifferences(w: Weights, f: () => number, h: number): Weights {
  const grads: Weights = new Map();
  for (const [name, v] of w) {
    const g = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const keep = v[i]!;
      v[i] = keep + h;
      const up = f();
      v[i] = keep - h;
      const down = f();
      v[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
    grads.set(name, g);
  }
  return grads;
}

/** d loss / d every weight, by central differences. */
export function refGradient(w: Weights, shape: RefShape, batch: RefBatch, h = 1e-6): Weights {
  return centralDifferences(w, () => refForward(w, shape, batch).loss, h);
}

export function axpy(w: Weights, g: Weights, scale: number): Weights {
  return new Map([...w].map(([n, v]) => [n, v.map((x, i) => x + scale * g.get(n)![i]!)]));
}

/** θ'_t: `steps` SGD steps of size α on the support batch. */
export function refFastWeights(w: Weights, shape: RefShape, support: RefBatch, alpha: number, steps = 1): Weights {
  let fast = w;
  for (let k = 0; k < steps; k++) fast = axpy(fast, refGradient(fast, shape, support), -alpha);
  return fast;
}

/** The first-order meta-gradient (1/T) Σ_t ∇L(Q_t; θ'_t). */
export function refMetaGradient(w: Weights, shape: RefShape, tasks: { support: RefBatch; query: RefBatch }[], alpha: number, steps = 1): Weights {
  let total: Weights = new Map([...w].map(([n, v]) => [n, new Float64Array(v.length)]));
  for (const t of tasks) total = axpy(total, refGradient(refFastWeights(w, shape, t.support, alpha, steps), shape, t.query), 1 / tasks.length);
  return total;
}

/** The second-order meta-gradient ∇_θ L(Q; θ − α∇L(S; θ)) by central differences of the whole composition. */
export function refSecondOrderGradient(w: Weights, shape: RefShape, task: { support: RefBatch; query: RefBatch }, alpha: number, h = 1e-4): Weights {
  return centralDifferences(w, () => refForward(refFastWeights(w, shape, task.support, alpha), shape, task.query).loss, h);
}
