// The machine's roofs for `npm run bench` (scripts/bench.mjs): float32 GEMM rate through
// onnxruntime-node (the model's first-layer shape and a square one, 1 and 2 threads), sequential
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

const { values } = parseArgs({ options: { json: { type: "boolean", default: false }, quick: { type: "boolean", default: false }, "memory-only": { type: "boolean", default: false } } });
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

// 1. sgemm through onnxruntime: Y = X·W with W an initializer, as the towers' Gemms are.
for (const [m, k, n] of values["memory-only"] ? [] : [[1024, 276, 256], [2048, 2048, 2048]]) {
  const g = new Graph({ name: "sgemm" });
  const w = new Float32Array(k * n).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  g.output(ops.MatMul(g.input("x", "float32", [m, k]), g.initializer("w", tensor("float32", [k, n], w))), "y");
  const x = new Float32Array(m * k).map((_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  for (const threads of [1, 2]) {
    const session = await Session.create(encodeGraph(g), { intraOpThreads: threads });
    const feeds = { x: { dtype: "float32", dims: [m, k], data: x } };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const reps = Math.max(3, Math.round((values.quick ? 0.5e9 : 2e9) / (2 * m * k * n)));
    const secs = await timeBest(async () => {
      for (let i = 0; i < reps; i++) await session.run(feeds);
    }, 3);
    report({ what: "sgemm", engine: "onnxruntime", m, k, n, threads, gflops: (2 * m * k * n * reps) / secs / 1e9 });
    await session.release();
  }
}

// Does onnxruntime-node copy input tensors? Feed a big array to a graph that reads one element of it:
// if the feed were copied, a run would cost the copy (256 MiB at several GB/s: tens of ms).
if (!values["memory-only"]) {
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
{
  const n = (values.quick ? 64 : 256) * 2 ** 20 / 4;
  const a = new Float32Array(n).fill(1), b = new Float32Array(n);
  b.set(a);
  const secs = await timeBest(() => b.set(a), 5);
  report({ what: "memory", kind: "sequential copy", mib: (n * 4) / 2 ** 20, gbps: (2 * n * 4) / secs / 1e9 });
}

// 3. Random rows: the trainer's gather and scatter of 67,000 distinct rows of 36 floats (weights and
// two Adam slots, 144 bytes) from a 737,946-row table, as one uniform-id batch of the reference config.
{
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
