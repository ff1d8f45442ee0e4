// Training throughput of the ESMM reference configuration: 23 fields x 3 ids sum-pooled, one shared
// table 737,946 x 12, two towers 276->256->64->1 (ReLU, sigmoid outputs), Adam lr 1e-3, batch 1024,
// random ids from a seeded PRNG. Not a test: prints measured numbers.
//   npm run bench:train [-- --steps 150 --batch 1024 --threads auto|N --opt-level all --mode fit|step --ids uniform|zipf]
//                          [--model esmm|escm2-dr --vocab 737946 --json]
//                          [--spin 0|1 --exec-mode sequential|parallel --inter-threads N --row-share 0.4 --row-update host|graph]
//                          [--ort-profile PREFIX --hash]
// --model escm2-dr: ESCM2 with the doubly robust risk on the same input layer (the Ali-CCP schema of
// 23 fields x 3 ids into one 12-wide table) and three separate 256->64->1 towers (CTR, CVR, imputation).
// --json: one JSON object on the last line (scripts/bench.mjs reads it).
// --ids uniform (default) draws every id uniformly: the worst case, ~66,000 distinct rows per batch.
// --ids zipf draws ranks from Zipf(1.05) over the vocabulary (as popularity in click logs is), mapped
// to rows by a fixed permutation so popular ids are scattered through the table.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { twoTower, ESMM_REFERENCE } from "../dist/src/models/two_tower.js";
import { escm2, escm2Defaults } from "../dist/src/models/escm2.js";
import { defaultAliccpSchema } from "../dist/src/features/schema.js";
import { Trainer, buildTrainingStep, describeModel, initialState } from "../dist/src/train/index.js";
import { Rng } from "../dist/src/util/prng.js";
import { ZipfSampler } from "../dist/src/data/random.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "150" },
    warmup: { type: "string", default: "10" },
    batch: { type: "string", default: "1024" },
    // auto, as mtl train: 2 onnxruntime threads (not spinning) where the step has no ScatterND (the rows'
    // update and the lookups' gradient sums on the host), else 1; the main thread gathers rows meanwhile.
    threads: { type: "string", default: "auto" },
    "opt-level": { type: "string", default: "all" },
    // onnxruntime's intra-op threads spin while idle unless --spin 0 (session.intra_op.allow_spinning).
    spin: { type: "string" },
    "exec-mode": { type: "string" }, // sequential | parallel
    "inter-threads": { type: "string" },
    // The share of each step's row write-back done on the main thread (the worker does the rest).
    "row-share": { type: "string" },
    // Where the table rows' update rule runs: host (the Trainer's write-back; the default of mtl train) or graph.
    "row-update": { type: "string", default: "host" },
    // onnxruntime's profiler: per-node times of every run, written to PREFIX_<date>.json at the end.
    "ort-profile": { type: "string" },
    device: { type: "string", default: "cpu" },
    mode: { type: "string", default: "fit" }, // fit (pipelined) | step (one step() call at a time)
    ids: { type: "string", default: "uniform" }, // uniform | zipf
    model: { type: "string", default: "esmm" }, // esmm (the two-tower reference) | escm2-dr
    vocab: { type: "string", default: String(ESMM_REFERENCE.vocabSize) },
    json: { type: "boolean", default: false },
    // Print a SHA-256 of the whole training state at the end (does a change keep results bit-identical?).
    hash: { type: "boolean", default: false },
    // Stop the measured steps after this many seconds (a loaded machine); the rate is per step done.
    "max-seconds": { type: "string", default: "0" },
  },
});
let steps = Number(values.steps);
const warmup = Number(values.warmup), B = Number(values.batch);
const cfg = { ...ESMM_REFERENCE, vocabSize: Number(values.vocab) };
// The same shapes either way: ids [batch, 69] into one table, click and the CTCVR label.
const model = values.model === "escm2-dr"
  ? { definition: escm2, config: { ...escm2Defaults(), counterfactualMode: "DR", backbone: "towers", towerSizes: cfg.towerSizes, schema: defaultAliccpSchema({ vocabSize: cfg.vocabSize }) }, ids: "ids.shared", buy: "conversion" }
  : values.model === "esmm" ? { definition: twoTower, config: cfg, ids: "ids.embedding", buy: "conversion" } : null;
if (!model) throw new Error(`--model must be esmm or escm2-dr, got ${values.model}`);
const optimizer = { kind: "adam" };
const t0 = performance.now();
const program = buildTrainingStep(model.definition, model.config, { optimizer, rowUpdate: values["row-update"] });
if (values.threads === "auto") {
  values.threads = program.signature.lookupGrads ? "2" : "1";
  if (values.threads === "2") values.spin ??= "0";
}
const state = initialState(describeModel(model.definition, model.config), optimizer, { seed: 1 });
const trainer = await Trainer.create(state, { train: program }, {
  intraOpThreads: Number(values.threads), graphOptimizationLevel: values["opt-level"], device: values.device,
  ...(values.spin !== undefined ? { spinning: values.spin !== "0" } : {}),
  ...(values["exec-mode"] ? { executionMode: values["exec-mode"] } : {}),
  ...(values["inter-threads"] ? { interOpThreads: Number(values["inter-threads"]) } : {}),
  ...(values["ort-profile"] ? { profile: values["ort-profile"] } : {}),
  ...(values["row-share"] !== undefined ? { rowShare: Number(values["row-share"]) } : {}),
});
const log = values.json ? () => undefined : console.log;
log(`setup ${((performance.now() - t0) / 1000).toFixed(2)} s (graph ${program.graph.nodes.length} nodes, state ${(state.require(program.signature.tables[0].name).data.byteLength / 2 ** 20).toFixed(0)} MiB table+slots)`);

// Pre-generate batches (data loading is not what this measures).
const rng = new Rng(42, 1);
const n = cfg.fields * cfg.idsPerField;
const zipf = values.ids === "zipf" ? new ZipfSampler(cfg.vocabSize - 1, 1.05) : null;
const zrng = new Rng(42);
// 2654435761 is prime and does not divide vocabSize - 1, so rank -> row is a bijection.
const drawId = zipf ? () => 1 + Number((BigInt(zipf.sample(zrng)) * 2654435761n) % BigInt(cfg.vocabSize - 1)) : () => 1 + rng.int(cfg.vocabSize - 1);
const batches = Array.from({ length: 32 }, () => {
  const ids = new Int32Array(B * n), click = new Float32Array(B), buy = new Float32Array(B);
  for (let i = 0; i < ids.length; i++) ids[i] = drawId();
  for (let b = 0; b < B; b++) {
    click[b] = rng.next() < 0.2 ? 1 : 0;
    buy[b] = click[b] && rng.next() < 0.1 ? 1 : 0;
  }
  return { [model.ids]: ids, click, [model.buy]: buy };
});

const maxMs = Number(values["max-seconds"]) * 1000;
let measuredFrom = 0, done = 0;
const overTime = () => maxMs > 0 && measuredFrom > 0 && performance.now() - measuredFrom > maxMs;
const stream = function* (n) { for (let s = 0; s < n && !overTime(); s++, done++) yield batches[s % batches.length]; };
let loss = 0;
const onStep = (r) => { loss = r.loss; };
// CPU time per thread (Linux /proc): which side of the pipeline is heavier, robust to a loaded machine
// where wall time is not. The main thread gathers/scatters rows; the session worker runs onnxruntime.
const threadCpu = () => {
  const out = new Map();
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(tid, { name, ms: ((Number(f[11]) + Number(f[12])) * 1000) / 100 }); // utime + stime, in clock ticks of 10 ms
    }
  } catch {}
  return out;
};
let cpuBefore = new Map();
let secs;
if (values.mode === "fit") {
  await trainer.fit(stream(warmup), { lr: 1e-3 });
  cpuBefore = threadCpu();
  const start = (measuredFrom = performance.now());
  done = 0;
  await trainer.fit(stream(steps), { lr: 1e-3, onStep });
  secs = (performance.now() - start) / 1000;
  steps = done;
} else {
  for (let s = 0; s < warmup; s++) await trainer.step(batches[s % batches.length], 1e-3);
  cpuBefore = threadCpu();
  const start = (measuredFrom = performance.now());
  let s = 0;
  for (; s < steps && !overTime(); s++) loss = (await trainer.step(batches[s % batches.length], 1e-3)).loss;
  secs = (performance.now() - start) / 1000;
  steps = s;
}
const cpu = [...threadCpu()].map(([tid, t]) => ({ thread: tid === String(process.pid) ? "main" : `${t.name}:${tid}`, ms_per_step: (t.ms - (cpuBefore.get(tid)?.ms ?? 0)) / steps })).filter((t) => t.ms_per_step >= 0.5);
const { fed, fetched } = trainer.lastStepBytes;
const distinct = batches.reduce((t, b) => t + new Set(b[model.ids]).size, 0) / batches.length;
log(`ids ${values.ids}: ${distinct.toFixed(0)} distinct rows per batch of ${B * n} ids`);
log(`${values.mode}: batch ${B}, ${steps} steps in ${secs.toFixed(2)} s: ${(steps * B / secs).toFixed(0)} examples/s (${(secs / steps * 1000).toFixed(2)} ms/step), last loss ${loss.toFixed(4)}`);
log(`CPU per step by thread: ${cpu.map((t) => `${t.thread} ${t.ms_per_step.toFixed(1)} ms`).join(", ")}`);
log(`per step: ${(fed / 2 ** 20).toFixed(2)} MiB fed, ${(fetched / 2 ** 20).toFixed(2)} MiB fetched; threads ${values.threads}${values.spin !== undefined ? `, spin ${values.spin}` : ""}, opt level ${values["opt-level"]}; rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
await trainer.release();
let stateHash;
if (values.hash) {
  const h = createHash("sha256");
  for (const [name, t] of [...state.tensors].sort((a, b) => (a[0] < b[0] ? -1 : 1))) h.update(name).update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  stateHash = h.digest("hex");
  log(`state after ${warmup} + ${steps} steps: sha256 ${stateHash}`);
}
if (values.json) {
  console.log(JSON.stringify({
    what: "train", model: values.model, ids: values.ids, mode: values.mode, batch: B, vocab: cfg.vocabSize, steps,
    examples_per_s: (steps * B) / secs, ms_per_step: (secs / steps) * 1000, loss, distinct_rows: distinct,
    ...(stateHash ? { state_sha256: stateHash } : {}), cpu_ms_per_step: cpu, fed_mib: fed / 2 ** 20, fetched_mib: fetched / 2 ** 20, peak_rss_mib: process.resourceUsage().maxRSS / 1024,
  }));
}
