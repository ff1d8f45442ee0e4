/**
 * Adam's rule on float32 table rows in WebAssembly SIMD, in place in the table. Each f32x4 lane's
 * +, -, ×, ÷ and √ is the IEEE float32 operation, so the rows come out bit-identical to the graph's
 * rule and to host.ts's scalar form (which V8 runs in float64, rounding each result with
 * Math.fround: several times the instructions).
 *
 * The table must live in a shared WebAssembly.Memory (`tableMemory`), which both the trainer's
 * thread and the session worker instantiate the kernel over. After the table, the memory holds two
 * scratch regions, one per side of a shared write-back (runtime/rows.ts): the ids and gradients of
 * a chunk of rows are copied in (two memcpys), then the kernel updates those rows in the table.
 * The same module gathers a step's rows (their weights) for the trainer's thread, and sums the
 * lookups' gradients into a block's for the session, each through its side's region.
 *
 * The module is a few hundred bytes assembled below (no toolchain).
 */

// The project's TypeScript libs do not declare WebAssembly: the little of it used here.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
};
/** A shared WebAssembly.Memory (its buffer is a SharedArrayBuffer; it travels to workers by postMessage). */
export interface SharedMemory {
  readonly buffer: SharedArrayBuffer;
}

const PAGE = 65536;
/** Rows per chunk in a scratch region. */
const CHUNK = 32768;
/** Rows ahead of the one being updated whose cache lines are touched (their misses overlap the work). */
const AHEAD = 16;

type GatherFn = (n: number, ids: number, out: number, strideBytes: number, dimBytes: number) => void;
type SumFn = (n: number, at: number, grads: number, out: number, dimBytes: number) => void;
type AdamFn = (n: number, ids: number, grads: number, strideBytes: number, dimBytes: number, b1: number, c1: number, b2: number, c2: number, eps: number, stepSize: number, sqrtBc2: number, lrDecay: number, decay: number, skipRow0: number) => void;

let module: object | null | undefined;
function compiled(): object | null {
  if (module === undefined) {
    try {
      module = new WebAssembly.Module(moduleBytes());
    } catch {
      module = null; // no WebAssembly SIMD here: the scalar form is used
    }
  }
  return module;
}

/** Rows of a block whose gradient the kernel can sum (sumRowsSimd); a larger block is summed by the caller. */
export const SUM_ROWS = 131072;
// A region: a chunk's ids (or local indices) and its rows or gradients, then a block's summed gradient.
const regionBytes = (dim: number) => CHUNK * 4 * (1 + dim) + SUM_ROWS * 4 * dim;
const tableEnd = (values: number) => Math.ceil((values * 4) / PAGE) * PAGE;

/**
 * A float32 table of `values` values ([rows, stride], rows of `dim` weights then slots) on a shared
 * WebAssembly.Memory with the kernel's two scratch regions after it; null where the kernel cannot
 * run (no WebAssembly SIMD, a dim not a multiple of 4, or a table past wasm32's 4 GiB).
 */
export function tableMemory(values: number, dim: number): { memory: SharedMemory; data: Float32Array } | null {
  if (dim % 4 !== 0 || !compiled()) return null;
  const pages = (tableEnd(values) + 2 * regionBytes(dim)) / PAGE;
  if (!Number.isInteger(pages) || pages > 65535) return null;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  memories.set(memory.buffer, memory);
  return { memory, data: new Float32Array(memory.buffer, 0, values) };
}

const memories = new WeakMap<SharedArrayBuffer, SharedMemory>();

/** The kernel memory `data` lives on (made by tableMemory on this thread), if it does. */
export function kernelMemory(data: Float32Array | Float64Array): SharedMemory | undefined {
  return data instanceof Float32Array && data.buffer instanceof SharedArrayBuffer ? memories.get(data.buffer) : undefined;
}

/**
 * Adam (or AdamW: `lrDecay` the step's lr × weight decay, else 0) on rows `ids` of the table on
 * `memory`, `grads` holding row u's gradient at [u * dim, (u + 1) * dim), with the scratch region
 * `region` (0: the caller's side of a write-back, 1: the session's). `scalars`: Updater.scalars().
 */
export function adamRowsSimd(memory: SharedMemory, region: 0 | 1, table: Float32Array, stride: number, dim: number, ids: Int32Array, grads: Float32Array, c: { beta1: number; beta2: number; epsilon: number }, lrDecay: number, scalars: Float32Array | Float64Array, skipRow0: boolean): void {
  const adam = kernels(memory).adam;
  const base = tableEnd(table.length) + region * regionBytes(dim), gBase = base + CHUNK * 4;
  const idsIn = new Int32Array(memory.buffer, base, CHUNK), gradsIn = new Float32Array(memory.buffer, gBase, CHUNK * dim);
  const f = Math.fround;
  for (let u0 = 0; u0 < ids.length; u0 += CHUNK) {
    const u1 = Math.min(u0 + CHUNK, ids.length);
    idsIn.set(ids.subarray(u0, u1));
    gradsIn.set(grads.subarray(u0 * dim, u1 * dim));
    adam(u1 - u0, base, gBase, stride * 4, dim * 4, f(c.beta1), f(1 - c.beta1), f(c.beta2), f(1 - c.beta2), f(c.epsilon), scalars[0]!, scalars[1]!, lrDecay, lrDecay !== 0 ? 1 : 0, skipRow0 ? 1 : 0);
  }
}

/**
 * The weights of rows `ids` ([0, dim) of each) of the table on `memory` into `out` ([ids.length,
 * dim]), through scratch region 0 (the trainer's thread): runtime/rows.ts's gatherRows, vectorised.
 */
export function gatherRowsSimd(memory: SharedMemory, table: Float32Array, stride: number, dim: number, ids: Int32Array, out: Float32Array): void {
  const gather = kernels(memory).gather;
  const base = tableEnd(table.length), oBase = base + CHUNK * 4;
  const idsIn = new Int32Array(memory.buffer, base, CHUNK), rows = new Float32Array(memory.buffer, oBase, CHUNK * dim);
  for (let u0 = 0; u0 < ids.length; u0 += CHUNK) {
    const u1 = Math.min(u0 + CHUNK, ids.length);
    idsIn.set(ids.subarray(u0, u1));
    gather(u1 - u0, base, oBase, stride * 4, dim * 4);
    out.set(rows.subarray(0, (u1 - u0) * dim), u0 * dim);
  }
}

/**
 * A block's gradient ([rows, dim]) summed from lookups' gradients (each [ids, dim], added at the
 * block positions `at` of its ids, in order: runtime/rows.ts's sumLookupGrads, vectorised), through
 * scratch region 1 (the session's). `rows` must be at most SUM_ROWS.
 */
export function sumRowsSimd(memory: SharedMemory, table: Float32Array, dim: number, rows: number, lookups: readonly { grads: Float32Array; at: Int32Array }[]): Float32Array {
  const sum = kernels(memory).sum;
  const base = tableEnd(table.length) + regionBytes(dim), gBase = base + CHUNK * 4, oBase = gBase + CHUNK * 4 * dim;
  const atIn = new Int32Array(memory.buffer, base, CHUNK), gradsIn = new Float32Array(memory.buffer, gBase, CHUNK * dim);
  const out = new Float32Array(memory.buffer, oBase, rows * dim);
  out.fill(0);
  for (const l of lookups) {
    for (let i0 = 0; i0 < l.at.length; i0 += CHUNK) {
      const i1 = Math.min(i0 + CHUNK, l.at.length);
      atIn.set(l.at.subarray(i0, i1));
      gradsIn.set(l.grads.subarray(i0 * dim, i1 * dim));
      sum(i1 - i0, base, gBase, oBase, dim * 4);
    }
  }
  return out.slice();
}

type Kernels = { adam: AdamFn; gather: GatherFn; sum: SumFn };
// An instance per memory object (a worker receives a new one with each message: one instance a step there).
const instances = new WeakMap<SharedMemory, Kernels>();
function kernels(memory: SharedMemory): Kernels {
  let k = instances.get(memory);
  if (!k) {
    const e = new WebAssembly.Instance(compiled()!, { m: { mem: memory } }).exports;
    instances.set(memory, (k = { adam: e["adam"] as AdamFn, gather: e["gather"] as GatherFn, sum: e["sum"] as SumFn }));
  }
  return k;
}

// ---------------------------------------------------------------- the module's bytes

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...[...s].map((ch) => ch.charCodeAt(0))];

const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;
// Parameters, then locals, by index (AdamFn's order).
const [N, IDS, GR, STRIDEB, DIMB, B1s, C1s, B2s, C2s, EPSs, SSs, SQs, LDs, DECAY, SKIP] = Array.from({ length: 15 }, (_, i) => i);
const [U, D, P, GP, PD, ID] = [15, 16, 17, 18, 19, 20];
const [B1, C1, B2, C2, EPS, SS, SQ, LD, G, M, V, W] = Array.from({ length: 12 }, (_, i) => 21 + i);

const get = (i: number) => [0x20, i], set = (i: number) => [0x21, i];
const i32 = (n: number) => [0x41, ...uleb(n)]; // small non-negative constants only
const [add, sub, mul, shl, shrU, ltU, geU, eqz, and, drop] = [[0x6a], [0x6b], [0x6c], [0x74], [0x76], [0x49], [0x4f], [0x45], [0x71], [0x1a]];
const i32load = [0x28, 2, 0], f32load = [0x2a, 2, 0];
const simd = (op: number) => [0xfd, ...uleb(op)];
const vload = [...simd(0x00), 0, 0], vstore = [...simd(0x0b), 0, 0];
const [fsqrt, fadd, fsub, fmul, fdiv, splat] = [simd(0xe3), simd(0xe4), simd(0xe5), simd(0xe6), simd(0xe7), simd(0x13)];
const [block, loop, ifThen, end, br, brIf] = [[0x02, 0x40], [0x03, 0x40], [0x04, 0x40], [0x0b], (d: number) => [0x0c, d], (d: number) => [0x0d, d]];

/**
 * for u < n: id = ids[u]; touch row ids[u + AHEAD]; unless (skipRow0 and id == 0), for each 4 lanes
 * d of the row: m = m·b1 + g·c1; v = v·b2 + (g·g)·c2; w = w - w·lrDecay (decay only);
 * w = w - stepSize · (m / (√v / sqrtBc2 + eps)): host.ts's order, operation for operation.
 */
function adamBody(): number[] {
  const code: number[] = [];
  const emit = (...parts: number[][]) => parts.forEach((p) => code.push(...p));
  for (const [s, v] of [[B1s, B1], [C1s, C1], [B2s, B2], [C2s, C2], [EPSs, EPS], [SSs, SS], [SQs, SQ], [LDs, LD]] as const) emit(get(s), splat, set(v));
  emit(i32(0), set(U), block, loop);
  emit(get(U), get(N), geU, brIf(1));
  emit(get(IDS), get(U), i32(2), shl, add, i32load, set(ID));
  emit(get(GR), get(U), get(DIMB), mul, add, set(GP));
  emit(get(ID), get(STRIDEB), mul, set(P));
  touchAhead(emit, N, IDS, U, STRIDEB, PD);
  emit(get(SKIP), get(ID), eqz, and, eqz, ifThen);
  emit(i32(0), set(D), block, loop);
  emit(get(D), get(DIMB), geU, brIf(1));
  emit(get(P), get(D), add, set(PD));
  emit(get(GP), get(D), add, vload, set(G));
  emit(get(PD), get(DIMB), add, vload, get(B1), fmul, get(G), get(C1), fmul, fadd, set(M));
  emit(get(PD), get(DIMB), add, get(DIMB), add, vload, get(B2), fmul, get(G), get(G), fmul, get(C2), fmul, fadd, set(V));
  emit(get(PD), vload, set(W));
  emit(get(DECAY), ifThen, get(W), get(W), get(LD), fmul, fsub, set(W), end);
  emit(get(PD), get(W), get(SS), get(M), get(V), fsqrt, get(SQ), fdiv, get(EPS), fadd, fdiv, fmul, fsub, vstore);
  emit(get(PD), get(DIMB), add, get(M), vstore);
  emit(get(PD), get(DIMB), add, get(DIMB), add, get(V), vstore);
  emit(get(D), i32(16), add, set(D), br(0), end, end); // next 4 lanes
  emit(end); // the padding test
  emit(get(U), i32(1), add, set(U), br(0), end, end); // next row
  emit(end);
  const locals = vec([[...uleb(6), I32], [...uleb(12), V128]]);
  return [...uleb(locals.length + code.length), ...locals, ...code];
}

/** The touch of row ids[u + AHEAD] (its first, middle and last value), using local PD. */
function touchAhead(emit: (...parts: number[][]) => void, n: number, ids: number, u: number, strideB: number, pd: number): void {
  emit(get(u), i32(AHEAD), add, get(n), ltU, ifThen);
  emit(get(ids), get(u), i32(AHEAD), add, i32(2), shl, add, i32load, get(strideB), mul, set(pd));
  emit(get(pd), f32load, drop, get(pd), get(strideB), add, i32(4), sub, f32load, drop, get(pd), get(strideB), i32(1), shrU, add, f32load, drop, end);
}

/** for u < n: touch row ids[u + AHEAD]; out[u] = the first dim values of row ids[u], 4 lanes at a time. */
function gatherBody(): number[] {
  const [n, ids, out, strideB, dimB] = [0, 1, 2, 3, 4], [u, d, src, dst, pd] = [5, 6, 7, 8, 9];
  const code: number[] = [];
  const emit = (...parts: number[][]) => parts.forEach((p) => code.push(...p));
  emit(i32(0), set(u), block, loop);
  emit(get(u), get(n), geU, brIf(1));
  emit(get(ids), get(u), i32(2), shl, add, i32load, get(strideB), mul, set(src));
  emit(get(out), get(u), get(dimB), mul, add, set(dst));
  touchAhead(emit, n, ids, u, strideB, pd);
  emit(i32(0), set(d), block, loop);
  emit(get(d), get(dimB), geU, brIf(1));
  emit(get(dst), get(d), add, get(src), get(d), add, vload, vstore);
  emit(get(d), i32(16), add, set(d), br(0), end, end);
  emit(get(u), i32(1), add, set(u), br(0), end, end);
  emit(end);
  const locals = vec([[...uleb(5), I32]]);
  return [...uleb(locals.length + code.length), ...locals, ...code];
}

/** for i < n: out[at[i]] += grads[i], 4 lanes at a time. */
function sumBody(): number[] {
  const [n, at, grads, out, dimB] = [0, 1, 2, 3, 4], [i, d, o, g] = [5, 6, 7, 8];
  const code: number[] = [];
  const emit = (...parts: number[][]) => parts.forEach((p) => code.push(...p));
  emit(i32(0), set(i), block, loop);
  emit(get(i), get(n), geU, brIf(1));
  emit(get(out), get(at), get(i), i32(2), shl, add, i32load, get(dimB), mul, add, set(o));
  emit(get(grads), get(i), get(dimB), mul, add, set(g));
  emit(i32(0), set(d), block, loop);
  emit(get(d), get(dimB), geU, brIf(1));
  emit(get(o), get(d), add, get(o), get(d), add, vload, get(g), get(d), add, vload, fadd, vstore);
  emit(get(d), i32(16), add, set(d), br(0), end, end);
  emit(get(i), i32(1), add, set(i), br(0), end, end);
  emit(end);
  const locals = vec([[...uleb(4), I32]]);
  return [...uleb(locals.length + code.length), ...locals, ...code];
}

function moduleBytes(): Uint8Array {
  const adamParams = [I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32, F32, I32, I32];
  const gatherParams = [I32, I32, I32, I32, I32];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    // Types: adam's, and (i32 × 5) for gather and sum.
    ...section(1, vec([[0x60, ...vec(adamParams.map((p) => [p])), 0], [0x60, ...vec(gatherParams.map((p) => [p])), 0]])),
    // (import "m" "mem" (memory 1 65536 shared))
    ...section(2, vec([[...name("m"), ...name("mem"), 0x02, 0x03, ...uleb(1), ...uleb(65536)]])),
    ...section(3, vec([[0], [1], [1]])),
    ...section(7, vec([[...name("adam"), 0x00, 0], [...name("gather"), 0x00, 1], [...name("sum"), 0x00, 2]])),
    ...section(10, vec([adamBody(), gatherBody(), sumBody()])),
  ]);
}
