// Training throughput of the ESMM reference configuration: 23 fields x 3 ids sum-pooled, one shared
// table 737,946 x 12, two towers 276->256->64->1 (ReLU, sigmoid outputs), Adam lr 1e-3, batch 1024,
// random ids from a seeded PRNG. Not a test: prints measured numbers.
//   npm run bench:train [-- --steps 150 --batch 1024 --threads 1 --opt-level all --mode fit|step --ids uniform|zipf]
// --ids uniform (default) draws every id uniformly: the worst case, ~66,000 distinct rows per batch.
// --ids zipf draws ranks from Zipf(1.05) over the vocabulary (as popularity in click logs is), mapped
// to rows by a fixed permutation so popular ids are scattered through the table.
import { parseArgs } from "node:util";
import { twoTower, ESMM_REFERENCE } from "../dist/src/models/two_tower.js";
import { Trainer, buildTrainingStep, describeModel, initialState } from "../dist/src/train/index.js";
import { Rng } from "../dist/src/util/prng.js";
import { ZipfSampler } from "../dist/src/data/random.js";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "150" },
    warmup: { type: "string", default: "10" },
    batch: { type: "string", default: "1024" },
    // One onnxruntime thread: the main thread gathers and scatters rows on the other core meanwhile.
    threads: { type: "string", default: "1" },
    "opt-level": { type: "string", default: "all" },
    device: { type: "string", default: "cpu" },
    mode: { type: "string", default: "fit" }, // fit (pipelined) | step (one step() call at a time)
    ids: { type: "string", default: "uniform" }, // uniform | zipf
  },
});
const steps = Number(values.steps), warmup = Number(values.warmup), B = Number(values.batch);
const cfg = ESMM_REFERENCE;
const optimizer = { kind: "adam" };
const t0 = performance.now();
const program = buildTrainingStep(twoTower, cfg, { optimizer });
const state = initialState(describeModel(twoTower, cfg), optimizer, { seed: 1 });
const trainer = await Trainer.create(state, { train: program }, {
  intraOpThreads: Number(values.threads), graphOptimizationLevel: values["opt-level"], device: values.device,
});
console.log(`setup ${((performance.now() - t0) / 1000).toFixed(2)} s (graph ${program.graph.nodes.length} nodes, state ${(state.require("embedding").data.byteLength / 2 ** 20).toFixed(0)} MiB table+slots)`);

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
  return { "ids.embedding": ids, click, conversion: buy };
});

const stream = function* (n) { for (let s = 0; s < n; s++) yield batches[s % batches.length]; };
let loss = 0;
const onStep = (r) => { loss = r.loss; };
let secs;
if (values.mode === "fit") {
  await trainer.fit(stream(warmup), { lr: 1e-3 });
  const start = performance.now();
  await trainer.fit(stream(steps), { lr: 1e-3, onStep });
  secs = (performance.now() - start) / 1000;
} else {
  for (let s = 0; s < warmup; s++) await trainer.step(batches[s % batches.length], 1e-3);
  const start = performance.now();
  for (let s = 0; s < steps; s++) loss = (await trainer.step(batches[s % batches.length], 1e-3)).loss;
  secs = (performance.now() - start) / 1000;
}
const { fed, fetched } = trainer.lastStepBytes;
const distinct = batches.reduce((t, b) => t + new Set(b["ids.embedding"]).size, 0) / batches.length;
console.log(`ids ${values.ids}: ${distinct.toFixed(0)} distinct rows per batch of ${B * n} ids`);
console.log(`${values.mode}: batch ${B}, ${steps} steps in ${secs.toFixed(2)} s: ${(steps * B / secs).toFixed(0)} examples/s (${(secs / steps * 1000).toFixed(2)} ms/step), last loss ${loss.toFixed(4)}`);
console.log(`per step: ${(fed / 2 ** 20).toFixed(2)} MiB fed, ${(fetched / 2 ** 20).toFixed(2)} MiB fetched; threads ${values.threads}, opt level ${values["opt-level"]}; rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
await trainer.release();
