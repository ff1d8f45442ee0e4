/** Central finite differences against the autodiff's gradients, both run in onnxruntime. */
import { gradients } from "../src/autodiff/index.js";
import * as ops from "../src/graph/ops.js";
import { Graph, type Value } from "../src/graph/ir.js";
import { encodeGraph } from "../src/onnx/serialize.js";
import { Session, makeTensor, type Tensor } from "../src/runtime/session.js";
import { Rng } from "../src/util/prng.js";

export interface InputSpec {
  shape: number[];
  /** Declared shape (may be symbolic, e.g. ["batch", 4]); default `shape`. */
  declared?: (number | string)[];
  /** Explicit values; default uniform in [lo, hi). */
  values?: number[];
  lo?: number;
  hi?: number;
  /** Integer input (int64 or int32), not differentiated. */
  int?: "int64" | "int32";
  /** Bool input, not differentiated. */
  bool?: boolean;
}

export interface GradCheck {
  dtype?: "float64" | "float32";
  inputs: Record<string, InputSpec>;
  wrt: string[];
  build: (x: Record<string, Value>) => Value;
  seed?: number;
}

export interface GradCheckResult {
  /** Relative error ||analytic - numeric|| / max(||numeric||, ||analytic||) per wrt input. */
  errors: Record<string, number>;
  analytic: Record<string, Float64Array>;
}

export async function gradCheck(spec: GradCheck): Promise<GradCheckResult> {
  const dtype = spec.dtype ?? "float64";
  const rng = new Rng(spec.seed ?? 1234);
  const g = new Graph({ name: "gradcheck", opset: 17 });
  const vals: Record<string, Value> = {};
  const feeds: Record<string, Tensor> = {};
  for (const [name, s] of Object.entries(spec.inputs)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const raw = s.values ?? Array.from({ length: n }, () => (s.lo ?? -1) + ((s.hi ?? 1) - (s.lo ?? -1)) * rng.next());
    const declared = s.declared ?? s.shape;
    if (s.int) {
      vals[name] = g.input(name, s.int, declared);
      feeds[name] = makeTensor(s.int === "int64" ? BigInt64Array.from(raw, (v) => BigInt(v)) : Int32Array.from(raw), s.shape);
    } else if (s.bool) {
      vals[name] = g.input(name, "bool", declared);
      feeds[name] = makeTensor(Uint8Array.from(raw), s.shape, "bool");
    } else {
      vals[name] = g.input(name, dtype, declared);
      feeds[name] = makeTensor(dtype === "float64" ? Float64Array.from(raw) : Float32Array.from(raw), s.shape);
    }
  }
  const y = spec.build(vals);
  // loss = sum(y * w) with a random w fed at run time, so every output element matters.
  const w = g.input("w_probe", dtype, y.shape);
  const loss = ops.ReduceSum(ops.Mul(y, w), { keepdims: 0 });
  g.output(loss, "loss");
  const grads = gradients(loss, spec.wrt.map((n) => vals[n]!));
  grads.forEach((d, i) => g.output(d, `grad_${spec.wrt[i]}`));

  const session = await Session.create(encodeGraph(g));
  // The probe's shape is the output's runtime shape: run once without knowing it by evaluating y.
  const yShape = await outputShape(spec, y, feeds, dtype);
  const wn = yShape.reduce((a, b) => a * b, 1);
  const wData = Array.from({ length: wn }, () => rng.next() * 2 - 1);
  feeds["w_probe"] = makeTensor(dtype === "float64" ? Float64Array.from(wData) : Float32Array.from(wData), yShape);

  const base = await session.run(feeds);
  const errors: Record<string, number> = {};
  const analytic: Record<string, Float64Array> = {};
  for (const name of spec.wrt) {
    const a = Float64Array.from(base[`grad_${name}`]!.data as Float64Array);
    analytic[name] = a;
    const x = feeds[name]!.data as Float64Array | Float32Array;
    const numeric = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const orig = x[i]!;
      const h = dtype === "float64" ? 1e-6 * Math.max(1, Math.abs(orig)) : 1e-2;
      x[i] = orig + h;
      const plus = Number((await session.run(feeds, { fetches: ["loss"] }))["loss"]!.data[0]);
      x[i] = orig - h;
      const minus = Number((await session.run(feeds, { fetches: ["loss"] }))["loss"]!.data[0]);
      x[i] = orig;
      numeric[i] = (plus - minus) / (2 * h);
    }
    let diff = 0, nn = 0, na = 0;
    for (let i = 0; i < x.length; i++) {
      diff += (a[i]! - numeric[i]!) ** 2;
      nn += numeric[i]! ** 2;
      na += a[i]! ** 2;
    }
    errors[name] = Math.sqrt(diff) / Math.max(Math.sqrt(nn), Math.sqrt(na), 1e-12);
  }
  await session.release();
  return { errors, analytic };
}

async function outputShape(spec: GradCheck, _y: Value, feeds: Record<string, Tensor>, dtype: "float64" | "float32"): Promise<number[]> {
  const g = new Graph({ name: "shape", opset: 17 });
  const vals: Record<string, Value> = {};
  for (const [name, s] of Object.entries(spec.inputs)) {
    vals[name] = g.input(name, s.int ?? (s.bool ? "bool" : dtype), s.declared ?? s.shape);
  }
  g.output(spec.build(vals), "probe_output");
  const s = await Session.create(encodeGraph(g));
  const { w_probe: _, ...rest } = feeds;
  const out = await s.run(rest);
  await s.release();
  return [...out["probe_output"]!.dims];
}
