// The machine's roofs for `npm run bench` (scripts/bench.mjs): float32 GEMM rate through
// onnxruntime-node at every GEMM shape of a training step and of the scoring forward, 1 and 2
// threads, one tower's GEMMs together (the GEMM floor of a step), a square 2048³ GEMM; sequential
// memory bandwidth (a 256 MiB copy), and the random-row rate of the trainer's own gather on a table
// the size of the reference table with its Adam slots (737,946 rows x 36 floats).
//   node scripts/bench-roofline.mjs [--json] [--quick] [--memory-only]
// Not a test: prints measured numbers.
import { parseArgs } from "node:util";
import { Graph, tensor } from "../dist/src/graph/ir.js";
import * as ops from "../dist/src/graph/ops.js";
import { encodeGraph } from "../dist/src/onnx/serialize.js";
import { Session } from "../dist/src/runtime/session.js";
import { gatherRows, scatterRows } from "../dist/src/train/sparse.js";
import { Rng } from "../dist/src/util/prng.js";

const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, quick: { type: "boolean", default: false }, "memory-only": { type: "boolean", default: false }, "gemm-only": { type: "boolean", default: false } } });
const rows = [];
const report = (r) => {
  rows.push(r);
  if (!values.json) console.log(JSON.stringify(r));
};
const timeBest = async (fn, reps) => {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
};

// 1. sgemm through onnxruntime at the shapes of the model's GEMMs. One tower of the reference config
// (276->256->64->1) does, per layer of in->out units at batch B: the forward Gemm X[B,in]·W[in,out]+b,
// the input gradient dX = dY[B,out]·Wᵀ (transB; the first layer's feeds the embedding rows) and the
// weight gradient dW = Xᵀ·dY (transA), as the step graph's Gemm nodes do (weights fed as inputs).
// The scoring graph's forward Gemms have their weights as initializers (onnxruntime pre-packs them).
// Each shape runs as K copies in one graph (so a run's fixed cost does not count), each copy's
// output sliced to one element (so fetching the output does not count either); optimisation is off
// so the copies are not merged. The tower rows run one tower's 9 GEMMs (or 3 forward ones) in one
// graph as the step does: the GEMM floor of a step is `towers` times that time.
const TOWER_WIDTHS = [276, 256, 64, 1];
const BATCH = 1024;
function towerGemms(batch = BATCH, widths = TOWER_WIDTHS) {
  const out = [];
  for (let i = 0; i + 1 < widths.length; i++) {
    const [inp, outp] = [widths[i], widths[i + 1]];
    out.push({ pass: "forward", layer: i, a: [batch, inp], b: [inp, outp], bias: outp, m: batch, k: inp, n: outp });
    out.push({ pass: "dX", layer: i, a: [batch, outp], b: [inp, outp], transB: 1, m: batch, k: outp, n: inp });
    out.push({ pass: "dW", layer: i, a: [batch, inp], b: [batch, outp], transA: 1, m: inp, k: batch, n: outp });
  }
  return out;
}
const fill = (n, seed) => new Float32Array(n).map((_, i) => (((i + seed) * 7919) % 1000) / 1000 - 0.5);
/** A graph of `copies` x each GEMM in `gemms`; weights (B) are initializers when `constWeights`. */
function gemmGraph(gemms, copies, constWeights) {
  const g = new Graph({ name: "sgemm" });
  const feeds = {};
  const one = (v) => ops.Slice(v, [0, 0], [1, 1]);
  gemms.forEach((s, j) => {
    const a = g.input(`a${j}`, "float32", s.a);
    feeds[`a${j}`] = { dtype: "float32", dims: s.a, data: fill(s.a[0] * s.a[1], j) };
    const bData = fill(s.b[0] * s.b[1], 100 + j);
    const b = constWeights ? g.initializer(`b${j}`, tensor("float32", s.b, bData)) : g.input(`b${j}`, "float32", s.b);
    if (!constWeights) feeds[`b${j}`] = { dtype: "float32", dims: s.b, data: bData };
    const c = s.bias ? g.initializer(`c${j}`, tensor("float32", [s.bias], fill(s.bias, 200 + j))) : null;
    for (let r = 0; r < copies; r++) g.output(one(ops.Gemm(a, b, c, { transA: s.transA ?? 0, transB: s.transB ?? 0 })), `y${j}_${r}`);
  });
  return { bytes: encodeGraph(g), feeds };
}
async function timeGraph({ bytes, feeds }, threads, flopsPerRun) {
  const session = await Session.create(bytes, { intraOpThreads: threads, graphOptimizationLevel: "disabled" });
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const reps = Math.max(3, Math.round((values.quick ? 0.3e9 : 1e9) / flopsPerRun));
  const secs = await timeBest(async () => {
    for (let i = 0; i < reps; i++) await session.run(feeds);
  }, values.quick ? 3 : 7);
  await session.release();
  return secs / reps;
}
const flopsOf = (s) => 2 * s.m * s.k * s.n;
if (!values["memory-only"]) {
  const shapes = towerGemms();
  for (const threads of [1, 2]) {
    for (const s of shapes) {
      const copies = Math.max(1, Math.min(64, Math.round(50e6 / flopsOf(s))));
      const secs = await timeGraph(gemmGraph([s], copies, false), threads, copies * flopsOf(s));
      report({ what: "sgemm", engine: "onnxruntime", pass: s.pass, layer: s.layer, m: s.m, k: s.k, n: s.n, transA: s.transA ?? 0, transB: s.transB ?? 0, threads, ms: (secs / copies) * 1000, gflops: (copies * flopsOf(s)) / secs / 1e9 });
    }
    const train = towerGemms(), fwd = train.filter((s) => s.pass === "forward");
    const trainFlops = train.reduce((t, s) => t + flopsOf(s), 0), fwdFlops = fwd.reduce((t, s) => t + flopsOf(s), 0);
    const tTrain = await timeGraph(gemmGraph(train, 1, false), threads, trainFlops);
    report({ what: "tower gemms", engine: "onnxruntime", kind: "train", batch: BATCH, gemms: train.length, threads, flops: trainFlops, ms: tTrain * 1000, gflops: trainFlops / tTrain / 1e9 });
    const tFwd = await timeGraph(gemmGraph(fwd, 1, true), threads, fwdFlops);
    report({ what: "tower gemms", engine: "onnxruntime", kind: "forward", batch: BATCH, gemms: fwd.length, threads, flops: fwdFlops, ms: tFwd * 1000, gflops: fwdFlops / tFwd / 1e9 });
  }
  // The machine's peak: a square 2048³ GEMM on 2 threads.
  const big = { a: [2048, 2048], b: [2048, 2048], m: 2048, k: 2048, n: 2048 };
  const secs = await timeGraph(gemmGraph([big], 1, false), 2, flopsOf(big));
  report({ what: "sgemm", engine: "onnxruntime", pass: "square", m: 2048, k: 2048, n: 2048, threads: 2, ms: secs * 1000, gflops: flopsOf(big) / secs / 1e9 });
}

// Is the embedding gradient reproducible on more than one intra-op thread? The step graph's Gather
// gradient is ScatterND(reduction="add") of 70,656 lookup rows into the block's rows; run it 5 times
// on the same inputs and count the distinct results.
if (!values["memory-only"]) {
  const rowsN = 1000, dim = 12, lookups = 70_656;
  const g = new Graph({ name: "scatter_add" });
  const out = g.addNode("ScatterND", [g.input("data", "float32", [rowsN, dim]), g.input("idx", "int64", [lookups, 1]), g.input("upd", "float32", [lookups, dim])], { reduction: { type: "string", value: "add" } })[0];
  g.output(out, "y");
  const feeds = {
    data: { dtype: "float32", dims: [rowsN, dim], data: new Float32Array(rowsN * dim) },
    idx: { dtype: "int64", dims: [lookups, 1], data: BigInt64Array.from({ length: lookups }, (_, i) => BigInt((i * 7919) % rowsN)) },
    upd: { dtype: "float32", dims: [lookups, dim], data: new Float32Array(lookups * dim).map((_, i) => Math.sin(i) * 1e-3) },
  };
  for (const threads of [1, 2]) {
    const session = await Session.create(encodeGraph(g), { intraOpThreads: threads, spinning: false });
    const results = new Set();
    for (let r = 0; r < 5; r++) results.add(Buffer.from((await session.run(feeds)).y.data.buffer).toString("base64"));
    report({ what: "determinism", op: "ScatterND reduction=add", threads, runs: 5, distinct_results: results.size });
    await session.release();
  }
}

// Does onnxruntime-node copy input tensors? Feed a big array to a graph that reads one element of it:
// if the feed were copied, a run would cost the copy (256 MiB at several GB/s: tens of ms).
if (!values["memory-only"] && !values["gemm-only"]) {
  const g = new Graph({ name: "input_copy" });
  g.output(ops.Gather(g.input("x", "float32", ["n"]), g.initializer("i", tensor("int64", [1], BigInt64Array.of(0n)))), "y");
  const session = await Session.create(encodeGraph(g), { intraOpThreads: 1 });
  for (const mib of [1, 256]) {
    const data = new Float32Array((mib * 2 ** 20) / 4);
    const feeds = { x: { dtype: "float32", dims: [data.length], data } };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const reps = 20;
    const secs = await timeBest(async () => {
      for (let i = 0; i < reps; i++) await session.run(feeds);
    }, 3);
    report({ what: "input copy", engine: "onnxruntime-node", input_mib: mib, ms_per_run: (secs / reps) * 1000 });
  }
  await session.release();
}

// 2. Sequential bandwidth: copy 256 MiB (bytes read + bytes written per second).
if (!values["gemm-only"]) {
  const n = (values.quick ? 64 : 256) * 2 ** 20 / 4;
  const a = new Float32Array(n).fill(1), b = new Float32Array(n);
  b.set(a);
  const secs = await timeBest(() => b.set(a), 5);
  report({ what: "memory", kind: "sequential copy", mib: (n * 4) / 2 ** 20, gbps: (2 * n * 4) / secs / 1e9 });
}

// 3. Random rows: the trainer's gather and scatter of 67,000 distinct rows of 36 floats (weights and
// two Adam slots, 144 bytes) from a 737,946-row table, as one uniform-id batch of the reference config.
if (!values["gemm-only"]) {
  const tableRows = 737_946, dim = 12, stride = 36, unique = 67_000;
  const table = new Float32Array(tableRows * stride).fill(0.5);
  const rng = new Rng(7);
  const seen = new Uint8Array(tableRows);
  const ids = new Int32Array(unique);
  for (let u = 0; u < unique;) {
    const id = 1 + rng.int(tableRows - 1);
    if (!seen[id]) (seen[id] = 1), (ids[u++] = id);
  }
  const parts = [0, 1, 2].map(() => new Float32Array(unique * dim));
  gatherRows(table, stride, dim, ids, parts);
  const gather = await timeBest(() => gatherRows(table, stride, dim, ids, parts), 7);
  const scatter = await timeBest(() => scatterRows(table, stride, dim, ids, parts, true), 7);
  const rowBytes = stride * 4;
  report({ what: "memory", kind: "random row gather", rows: unique, row_bytes: rowBytes, ms: gather * 1000, rows_per_s: unique / gather, gbps: (unique * rowBytes * 2) / gather / 1e9, ns_per_row: (gather / unique) * 1e9 });
  report({ what: "memory", kind: "random row scatter", rows: unique, row_bytes: rowBytes, ms: scatter * 1000, rows_per_s: unique / scatter, gbps: (unique * rowBytes * 2) / scatter / 1e9, ns_per_row: (scatter / unique) * 1e9 });
}
if (values.json) console.log(JSON.stringify(rows));
