// The dense Adam update of the ESMM reference's 12 parameters alone in onnxruntime (1 thread): one
// update per parameter, as the step graph builds it, vs the parameters packed into one vector (Concat
// in, Split out). Best of 7 x 100 runs each, twice. Not a test: prints measured numbers.
//   node scripts/bench-adam-pack.mjs
import { Graph } from "../dist/src/graph/ir.js";
import * as ops from "../dist/src/graph/ops.js";
import { encodeGraph } from "../dist/src/onnx/serialize.js";
import { Session } from "../dist/src/runtime/session.js";
import { createUpdater } from "../dist/src/optim/index.js";
const shapes = [[276, 256], [256], [256, 64], [64], [64, 1], [1], [276, 256], [256], [256, 64], [64], [64, 1], [1]];
const size = (s) => s.reduce((a, b) => a * b, 1);
function build(packed) {
  const g = new Graph({ name: "adam" });
  const step = g.input("step", "int64", []), lr = g.input("lr", "float32", []);
  const upd = createUpdater({ kind: "adam" }, step, lr);
  const feeds = { step: { dtype: "int64", dims: [], data: BigInt64Array.of(3n) }, lr: { dtype: "float32", dims: [], data: Float32Array.of(1e-3) } };
  const vals = shapes.map((s, i) => ["p", "g", "m", "v"].map((k) => {
    feeds[`${k}${i}`] = { dtype: "float32", dims: s, data: new Float32Array(size(s)).map((_, j) => Math.sin(j + i) * 0.01 + (k === "v" ? 0.02 : 0)) };
    return g.input(`${k}${i}`, "float32", s);
  }));
  if (!packed) vals.forEach(([p, gr, m, v], i) => { const u = upd(p, gr, [m, v]); g.output(u.param, `p${i}_new`); g.output(u.slots[0], `m${i}_new`); g.output(u.slots[1], `v${i}_new`); });
  else {
    const flat = (k) => ops.Concat(vals.map((x) => ops.Reshape(x[k], [-1])), 0);
    const u = upd(flat(0), flat(1), [flat(2), flat(3)]);
    const sizes = shapes.map(size);
    [u.param, ...u.slots].forEach((x, j) => g.addNode("Split", [x, g.ints(sizes)], { axis: { type: "int", value: 0 } }, { outputs: sizes.length }).forEach((o, i) => g.output(ops.Reshape(o, shapes[i]), `${"pmv"[j]}${i}_new`)));
  }
  return { bytes: encodeGraph(g), feeds, nodes: g.liveNodes().length };
}
for (const packed of [false, true, false, true]) {
  const { bytes, feeds, nodes } = build(packed);
  const s = await Session.create(bytes, { intraOpThreads: 1 });
  for (let i = 0; i < 20; i++) await s.run(feeds);
  let best = Infinity;
  for (let r = 0; r < 7; r++) { const t0 = performance.now(); for (let i = 0; i < 100; i++) await s.run(feeds); best = Math.min(best, (performance.now() - t0) / 100); }
  console.log(`${packed ? "packed" : "per parameter"}: ${nodes} graph nodes (Constants included), ${best.toFixed(3)} ms per run (incl. ~0.02 ms run overhead and fetching the outputs)`);
  await s.release();
}
