/**
 * A plain-TypeScript two-tower model in float64: forward, hand-written backward and lazy Adam, to
 * check the ONNX training step against. Written from the formulas, sharing no code with src/.
 */
export interface RefConfig {
  vocab: number;
  dim: number;
  fields: number;
  k: number;
  sizes: number[];
}

export type Params = Map<string, Float64Array>;

export interface RefBatch {
  ids: Int32Array;
  click: Float64Array;
  buy: Float64Array;
}

const EPS = 1e-7;
const clip = (p: number) => Math.min(Math.max(p, EPS), 1 - EPS);

interface TowerTrace {
  inputs: Float64Array[]; // layer inputs
  pre: Float64Array[]; // pre-activations of hidden layers
  p: Float64Array;
}

function layerNames(cfg: RefConfig, tower: string): { w: string; b: string; inp: number; out: number }[] {
  const out: { w: string; b: string; inp: number; out: number }[] = [];
  let width = cfg.fields * cfg.dim;
  cfg.sizes.forEach((u, i) => {
    out.push({ w: `${tower}.${i}.weight`, b: `${tower}.${i}.bias`, inp: width, out: u });
    width = u;
  });
  out.push({ w: `${tower}.out.weight`, b: `${tower}.out.bias`, inp: width, out: 1 });
  return out;
}

function pool(cfg: RefConfig, table: Float64Array, ids: Int32Array, B: number): Float64Array {
  const { fields, k, dim } = cfg;
  const x = new Float64Array(B * fields * dim);
  for (let b = 0; b < B; b++) {
    for (let f = 0; f < fields; f++) {
      for (let j = 0; j < k; j++) {
        const id = ids[b * fields * k + f * k + j]!;
        for (let d = 0; d < dim; d++) x[b * fields * dim + f * dim + d]! += table[id * dim + d]!;
      }
    }
  }
  return x;
}

function towerForward(cfg: RefConfig, params: Params, tower: string, x: Float64Array, B: number): TowerTrace {
  const layers = layerNames(cfg, tower);
  const inputs: Float64Array[] = [];
  const pre: Float64Array[] = [];
  let h = x;
  let p = new Float64Array(B);
  layers.forEach((L, li) => {
    inputs.push(h);
    const W = params.get(L.w)!, bias = params.get(L.b)!;
    const z = new Float64Array(B * L.out);
    for (let b = 0; b < B; b++) {
      for (let o = 0; o < L.out; o++) {
        let s = bias[o]!;
        for (let i = 0; i < L.inp; i++) s += h[b * L.inp + i]! * W[i * L.out + o]!;
        z[b * L.out + o] = s;
      }
    }
    if (li < layers.length - 1) {
      pre.push(z);
      h = z.map((v) => (v > 0 ? v : 0));
    } else {
      p = z.map((v) => 1 / (1 + Math.exp(-v)));
    }
  });
  return { inputs, pre, p };
}

function towerBackward(cfg: RefConfig, params: Params, tower: string, t: TowerTrace, dp: Float64Array, B: number, grads: Params): Float64Array {
  const layers = layerNames(cfg, tower);
  let dz = dp.map((g, b) => g * t.p[b]! * (1 - t.p[b]!));
  for (let li = layers.length - 1; li >= 0; li--) {
    const L = layers[li]!;
    const W = params.get(L.w)!, h = t.inputs[li]!;
    const dW = new Float64Array(L.inp * L.out), db = new Float64Array(L.out), dh = new Float64Array(B * L.inp);
    for (let b = 0; b < B; b++) {
      for (let o = 0; o < L.out; o++) {
        const g = dz[b * L.out + o]!;
        db[o]! += g;
        for (let i = 0; i < L.inp; i++) {
          dW[i * L.out + o]! += h[b * L.inp + i]! * g;
          dh[b * L.inp + i]! += g * W[i * L.out + o]!;
        }
      }
    }
    grads.set(L.w, dW);
    grads.set(L.b, db);
    if (li > 0) {
      const pre = t.pre[li - 1]!;
      dz = dh.map((g, i) => (pre[i]! > 0 ? g : 0));
    } else {
      return dh;
    }
  }
  throw new Error("unreachable");
}

export function forward(cfg: RefConfig, params: Params, batch: RefBatch): { loss: number; pCtr: Float64Array; pCvr: Float64Array } {
  const B = batch.click.length;
  const x = pool(cfg, params.get("embedding")!, batch.ids, B);
  const ctr = towerForward(cfg, params, "ctr", x, B), cvr = towerForward(cfg, params, "cvr", x, B);
  let lc = 0, lcc = 0;
  for (let b = 0; b < B; b++) {
    const q = clip(ctr.p[b]!), r = clip(ctr.p[b]! * cvr.p[b]!);
    lc -= batch.click[b]! * Math.log(q) + (1 - batch.click[b]!) * Math.log(1 - q);
    lcc -= batch.buy[b]! * Math.log(r) + (1 - batch.buy[b]!) * Math.log(1 - r);
  }
  return { loss: lc / B + lcc / B, pCtr: ctr.p, pCvr: cvr.p };
}

/** Gradients of the loss with respect to every parameter, the embedding table as a full dense array. */
export function backward(cfg: RefConfig, params: Params, batch: RefBatch): Params {
  const B = batch.click.length;
  const table = params.get("embedding")!;
  const x = pool(cfg, table, batch.ids, B);
  const ctr = towerForward(cfg, params, "ctr", x, B), cvr = towerForward(cfg, params, "cvr", x, B);
  const dCtr = new Float64Array(B), dCvr = new Float64Array(B);
  const dBce = (p: number, y: number) => (p < EPS || p > 1 - EPS ? 0 : -(y / p - (1 - y) / (1 - p)) / B);
  for (let b = 0; b < B; b++) {
    const pc = ctr.p[b]!, pv = cvr.p[b]!;
    dCtr[b] = dBce(pc, batch.click[b]!);
    const dCtcvr = dBce(pc * pv, batch.buy[b]!);
    dCtr[b]! += dCtcvr * pv;
    dCvr[b] = dCtcvr * pc;
  }
  const grads: Params = new Map();
  const dx1 = towerBackward(cfg, params, "ctr", ctr, dCtr, B, grads);
  const dx2 = towerBackward(cfg, params, "cvr", cvr, dCvr, B, grads);
  const dTable = new Float64Array(table.length);
  const { fields, k, dim } = cfg;
  for (let b = 0; b < B; b++) {
    for (let f = 0; f < fields; f++) {
      for (let j = 0; j < k; j++) {
        const id = batch.ids[b * fields * k + f * k + j]!;
        for (let d = 0; d < dim; d++) {
          const i = b * fields * dim + f * dim + d;
          dTable[id * dim + d]! += dx1[i]! + dx2[i]!;
        }
      }
    }
  }
  grads.set("embedding", dTable);
  return grads;
}

export interface AdamState {
  m: Params;
  v: Params;
  t: number;
}

/** One Adam step (PyTorch's formula); the table is updated lazily: only rows in `touched`, never row 0. */
export function adamStep(params: Params, grads: Params, st: AdamState, lr: number, touched: Set<number>, dim: number): void {
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  st.t += 1;
  const bc1 = 1 - b1 ** st.t, bc2 = 1 - b2 ** st.t;
  const update = (name: string, i: number) => {
    const p = params.get(name)!, g = grads.get(name)!, m = st.m.get(name)!, v = st.v.get(name)!;
    m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
    v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
    p[i] = p[i]! - (lr / bc1) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + eps));
  };
  for (const [name, p] of params) {
    if (!st.m.has(name)) {
      st.m.set(name, new Float64Array(p.length));
      st.v.set(name, new Float64Array(p.length));
    }
    if (name === "embedding") {
      for (const id of touched) if (id !== 0) for (let d = 0; d < dim; d++) update(name, id * dim + d);
    } else {
      for (let i = 0; i < p.length; i++) update(name, i);
    }
  }
}
