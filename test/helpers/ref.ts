/**
 * A plain TypeScript reference for the ONNX ops mtl uses: row-major arrays of doubles with a shape,
 * written from the operator specs, independent of the graph builder. Slow and obvious on purpose.
 */
export interface Arr {
  shape: number[];
  data: number[];
}

export const arr = (shape: number[], data: ArrayLike<number | bigint>): Arr => ({ shape: [...shape], data: Array.from(data, Number) });
export const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d]! + idx[d]!;
  return i;
}

export function broadcastShape(...shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i] ?? 1;
      if (e !== 1) {
        if (d !== 1 && d !== e) throw new Error(`no broadcast ${JSON.stringify(shapes)}`);
        d = e;
      }
    }
    out.push(d);
  }
  return out;
}

/** Reads `a` at a multi-index of a broadcast result shape. */
function at(a: Arr, idx: readonly number[]): number {
  const off = idx.length - a.shape.length;
  let i = 0;
  for (let d = 0; d < a.shape.length; d++) i = i * a.shape[d]! + (a.shape[d] === 1 ? 0 : idx[off + d]!);
  return a.data[i]!;
}

export function map(fn: (...xs: number[]) => number, ...as: Arr[]): Arr {
  const shape = broadcastShape(...as.map((a) => a.shape));
  const data = new Array<number>(size(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    data[i] = fn(...as.map((a) => at(a, idx)));
  }
  return { shape, data };
}

export function matmul(a: Arr, b: Arr): Arr {
  const as = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
  const [m, k] = [as[as.length - 2]!, as[as.length - 1]!];
  const n = bs[bs.length - 1]!;
  const batch = broadcastShape(as.slice(0, -2), bs.slice(0, -2));
  const A: Arr = { shape: as, data: a.data };
  const B: Arr = { shape: bs, data: b.data };
  const out: number[] = [];
  for (let bi = 0; bi < size(batch); bi++) {
    const bidx = unravel(bi, batch);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += at(A, [...bidx, i, p]) * at(B, [...bidx, p, j]);
        out.push(s);
      }
    }
  }
  const shape = [...batch];
  if (a.shape.length !== 1) shape.push(m);
  if (b.shape.length !== 1) shape.push(n);
  return { shape, data: out };
}

export function transpose(a: Arr, perm = a.shape.map((_, i) => a.shape.length - 1 - i)): Arr {
  const shape = perm.map((p) => a.shape[p]!);
  const data = new Array<number>(a.data.length);
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    const src = new Array<number>(a.shape.length);
    perm.forEach((p, d) => (src[p] = idx[d]!));
    data[i] = a.data[ravel(src, a.shape)]!;
  }
  return { shape, data };
}

export function gather(a: Arr, indices: Arr, axis = 0): Arr {
  const ax = axis < 0 ? axis + a.shape.length : axis;
  const shape = [...a.shape.slice(0, ax), ...indices.shape, ...a.shape.slice(ax + 1)];
  const data = new Array<number>(size(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    const pre = idx.slice(0, ax);
    const ii = idx.slice(ax, ax + indices.shape.length);
    const post = idx.slice(ax + indices.shape.length);
    let j = indices.data[ravel(ii, indices.shape)]!;
    if (j < 0) j += a.shape[ax]!;
    data[i] = a.data[ravel([...pre, j, ...post], a.shape)]!;
  }
  return { shape, data };
}

export function reduce(a: Arr, axes: number[] | undefined, keepdims: boolean, init: number, fn: (acc: number, x: number) => number, finish = (acc: number, _n: number) => acc): Arr {
  const ax = (axes && axes.length ? axes : a.shape.map((_, i) => i)).map((x) => (x < 0 ? x + a.shape.length : x));
  const kept = a.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const acc = new Array<number>(size(kept)).fill(init);
  const count = size(ax.map((i) => a.shape[i]!));
  for (let i = 0; i < a.data.length; i++) {
    const idx = unravel(i, a.shape).map((v, d) => (ax.includes(d) ? 0 : v));
    const j = ravel(idx, kept);
    acc[j] = fn(acc[j]!, a.data[i]!);
  }
  const shape = keepdims ? kept : a.shape.filter((_, i) => !ax.includes(i));
  return { shape, data: acc.map((v) => finish(v, count)) };
}

export function softmax(a: Arr, axis = -1): Arr {
  const ax = axis < 0 ? axis + a.shape.length : axis;
  const mx = reduce(a, [ax], true, -Infinity, Math.max);
  const e = map((x, m) => Math.exp(x - m), a, mx);
  const s = reduce(e, [ax], true, 0, (p, q) => p + q);
  return map((x, t) => x / t, e, s);
}

export function concat(as: Arr[], axis: number): Arr {
  const ax = axis < 0 ? axis + as[0]!.shape.length : axis;
  const shape = [...as[0]!.shape];
  shape[ax] = as.reduce((t, a) => t + a.shape[ax]!, 0);
  const data = new Array<number>(size(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    let k = idx[ax]!;
    let which = 0;
    while (k >= as[which]!.shape[ax]!) k -= as[which++]!.shape[ax]!;
    const src = [...idx];
    src[ax] = k;
    data[i] = as[which]!.data[ravel(src, as[which]!.shape)]!;
  }
  return { shape, data };
}

export function slice(a: Arr, starts: number[], ends: number[], axes = starts.map((_, i) => i), steps = starts.map(() => 1)): Arr {
  const picks = a.shape.map((d) => Array.from({ length: d }, (_, i) => i));
  axes.forEach((axis, i) => {
    const ax = axis < 0 ? axis + a.shape.length : axis;
    const d = a.shape[ax]!;
    const step = steps[i]!;
    let s = starts[i]!, e = ends[i]!;
    if (s < 0) s += d;
    if (e < 0) e += d;
    const list: number[] = [];
    if (step > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
      for (let j = s; j < e; j += step) list.push(j);
    } else {
      s = Math.min(Math.max(s, -1), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
      for (let j = s; j > e; j += step) list.push(j);
    }
    picks[ax] = list;
  });
  const shape = picks.map((p) => p.length);
  const data = new Array<number>(size(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape).map((v, d) => picks[d]![v]!);
    data[i] = a.data[ravel(idx, a.shape)]!;
  }
  return { shape, data };
}

export function tile(a: Arr, reps: number[]): Arr {
  const shape = a.shape.map((d, i) => d * reps[i]!);
  const data = new Array<number>(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = a.data[ravel(unravel(i, shape).map((v, d) => v % a.shape[d]!), a.shape)]!;
  return { shape, data };
}

export function expand(a: Arr, shape: number[]): Arr {
  const out = broadcastShape(a.shape, shape);
  return map((x) => x, a, { shape: out, data: new Array(size(out)).fill(0) });
}

export function scatterND(data: Arr, indices: Arr, updates: Arr, reduction: "none" | "add" | "mul" = "none"): Arr {
  const out = [...data.data];
  const k = indices.shape[indices.shape.length - 1]!;
  const slab = size(data.shape.slice(k));
  const n = size(indices.shape.slice(0, -1));
  for (let i = 0; i < n; i++) {
    const idx = indices.data.slice(i * k, i * k + k).map((v, d) => (v < 0 ? v + data.shape[d]! : v));
    const base = ravel([...idx, ...new Array(data.shape.length - k).fill(0)], data.shape);
    for (let j = 0; j < slab; j++) {
      const u = updates.data[i * slab + j]!;
      out[base + j] = reduction === "add" ? out[base + j]! + u : reduction === "mul" ? out[base + j]! * u : u;
    }
  }
  return { shape: [...data.shape], data: out };
}

export function scatterElements(data: Arr, indices: Arr, updates: Arr, axis = 0, reduction: "none" | "add" = "none"): Arr {
  const out = [...data.data];
  const ax = axis < 0 ? axis + data.shape.length : axis;
  for (let i = 0; i < indices.data.length; i++) {
    const idx = unravel(i, indices.shape);
    let j = indices.data[i]!;
    if (j < 0) j += data.shape[ax]!;
    idx[ax] = j;
    const o = ravel(idx, data.shape);
    out[o] = reduction === "add" ? out[o]! + updates.data[i]! : updates.data[i]!;
  }
  return { shape: [...data.shape], data: out };
}
