import { test } from "node:test";
import assert from "node:assert/strict";
import type { OptimizerConfig } from "../src/optim/index.js";
import { twoTower, type TwoTowerConfig } from "../src/models/two_tower.js";
import { Trainer, TrainingState, buildTrainingStep, describeModel, initialState, type StepFeeds } from "../src/train/index.js";
import { ROW_SCALARS } from "../src/train/program.js";
import { makeBatch } from "./batches.js";
import { layoutOf } from "../src/features/batch.js";
import { toSchemaJson } from "../src/features/schema.js";
import { SynthWorld, synthBatches } from "../src/data/synth.js";
import { MODELS } from "../src/models/index.js";
import { stepFeeds } from "../src/models/feeds.js";

// The rows' update rule on the host (TrainingOptions.rowUpdate "host", optim/host.ts) against the
// same rule in the step graph: every tensor of the state bit-identical, for every optimizer, both
// precisions, with clipping, through fit() with a shared write-back (rows re-read between steps).

const base: TwoTowerConfig = { vocabSize: 50, embeddingDim: 3, fields: 2, idsPerField: 2, towerSizes: [6, 4], paddingRow0: true, embeddingInit: 0.5 };

const cases: { optimizer: OptimizerConfig; clipNorm?: number }[] = [
  { optimizer: { kind: "sgd" } },
  { optimizer: { kind: "sgd", momentum: 0.9, weightDecay: 0.01 } },
  { optimizer: { kind: "adam" } },
  { optimizer: { kind: "adam", beta1: 0.8, beta2: 0.99, epsilon: 1e-6 }, clipNorm: 0.05 },
  { optimizer: { kind: "adamw", weightDecay: 0.1 } },
  { optimizer: { kind: "adamw", weightDecay: 0 } },
  { optimizer: { kind: "adagrad", initialAccumulator: 0.1 } },
];

function batchesOf(small: TwoTowerConfig, dtype: "float32" | "float64", n: number): StepFeeds[] {
  const Arr = dtype === "float64" ? Float64Array : Float32Array;
  // A 12-row vocabulary: consecutive batches share most rows (the pipelined fit re-reads them).
  return Array.from({ length: n }, (_, s) => {
    const b = makeBatch(400 + s, 24, { ...small, vocabSize: 12 });
    return { "ids.embedding": b["ids.embedding"], click: Arr.from(b.click), conversion: Arr.from(b.conversion) };
  });
}

// float32 Adam on rows of a multiple of 4 runs in WebAssembly SIMD (optim/simd.ts); dim 3 in the scalar form.
for (const [dtype, dim] of [["float32", 3], ["float32", 4], ["float64", 3]] as const) {
  for (const { optimizer, clipNorm } of cases) {
    const simd = dtype === "float32" && dim % 4 === 0 && optimizer.kind.startsWith("adam");
    if (dim === 4 && !simd) continue;
    test(`rows updated on the host equal the graph's rule bit for bit: ${JSON.stringify(optimizer)}${clipNorm ? ` clip ${clipNorm}` : ""}, ${dtype}${simd ? ", in WebAssembly SIMD" : ""}`, async () => {
      const small: TwoTowerConfig = { ...base, embeddingDim: dim };
      const opts = { optimizer, dtype, ...(clipNorm ? { clipNorm } : {}) };
      const inGraph = buildTrainingStep(twoTower, small, opts);
      const onHost = buildTrainingStep(twoTower, small, { ...opts, rowUpdate: "host" });
      assert.equal(onHost.signature.rowUpdate, "host");
      const names = onHost.graph.inputs.map((v) => v.name);
      assert.ok(!names.some((n) => n.startsWith("embedding__rows__")), `no slot of the rows is fed: ${names.join(", ")}`);
      assert.ok(onHost.graph.outputs.some((v) => v.name === ROW_SCALARS));
      // Without clipping the host also sums the lookups' gradients: no ScatterND is left in the step.
      const scatters = onHost.graph.liveNodes().filter((n) => n.opType === "ScatterND").length;
      assert.equal(onHost.signature.lookupGrads === true, !clipNorm);
      assert.equal(scatters, clipNorm ? 1 : 0);

      const reference = initialState(describeModel(twoTower, small, dtype), optimizer, { seed: 7, dtype });
      const a = reference.clone(), b = reference.clone(), c = reference.clone();
      const batches = batchesOf(small, dtype, 6);
      const stepper = await Trainer.create(a, { train: inGraph }, { worker: false });
      for (const batch of batches) await stepper.step(batch, 0.02);
      await stepper.release();
      // The host rule in a worker, its write-back shared with this thread, pipelined; and on this thread.
      const fitter = await Trainer.create(b, { train: onHost }, { rowShare: 0.5 });
      await fitter.fit(batches, { lr: 0.02 });
      await fitter.release();
      const local = await Trainer.create(c, { train: onHost }, { worker: false });
      for (const batch of batches) await local.step(batch, 0.02);
      await local.release();
      // Without a ScatterND the step is reproducible on 2 onnxruntime threads (what mtl train runs).
      const d = reference.clone();
      if (!clipNorm) {
        const two = await Trainer.create(d, { train: onHost }, { intraOpThreads: 2, spinning: false });
        await two.fit(batches, { lr: 0.02 });
        await two.release();
      }
      const compared: [string, TrainingState][] = [["fit in a worker", b], ["step on this thread", c], ...(clipNorm ? [] : [["fit on 2 onnxruntime threads", d] as [string, TrainingState]])];
      for (const [label, state] of compared) {
        assert.equal(state.step, a.step);
        for (const [name, t] of a.tensors) {
          const got = state.require(name).data;
          const at = t.data.findIndex((v, i) => !Object.is(v, got[i]));
          assert.equal(at, -1, `${label}: tensor ${name} differs at ${at}: ${got[at]} vs the graph's ${t.data[at]}`);
        }
      }
      // The fitted table sits on the SIMD kernel's memory (its scratch after the table) exactly where the kernel runs.
      const on = b.require("embedding").data;
      assert.equal(on.buffer.byteLength > on.byteLength, simd, "the table's memory");
      // And the rule moved the rows (a comparison of two untouched tables would prove nothing).
      const table = reference.require("embedding").data;
      assert.ok(a.require("embedding").data.some((v, i) => v !== table[i]));
    });
  }
}

// Every registered model (MetaHeac meta-trains apart) on a synthetic schema of 4-wide tables: the
// rows' update on the host and the lookups' gradients summed there (in WebAssembly SIMD), on 2
// onnxruntime threads as mtl train runs it, against the graph's rule on 1.
const world = new SynthWorld({ seed: 5, users: 100, items: 80, bias: 1 });
const schema = world.schema({ dim: 4 });
for (const name of Object.keys(MODELS).filter((n) => n !== "metaheac" && n !== "two-tower")) {
  test(`${name}: 6 Adam steps with the rows updated on the host equal the graph's rule`, async (t) => {
    const entry = MODELS[name]!;
    const defaults = entry.defaults as Record<string, unknown>;
    const config = entry.validate({ ...defaults, schema: toSchemaJson(schema), ...("towerSizes" in defaults ? { towerSizes: [8, 4] } : {}) }, "test");
    const layout = layoutOf(schema);
    const batches = [...synthBatches({ rows: 6 * 32, batchSize: 32, schema, seed: 9 }, world)].map((b) => stepFeeds(b, layout));
    const optimizer: OptimizerConfig = { kind: "adam" };
    const onHost = buildTrainingStep(entry.definition, config, { optimizer, rowUpdate: "host" });
    assert.equal(onHost.signature.lookupGrads, true);
    const a = initialState(describeModel(entry.definition, config), optimizer, { seed: 1 }), b = a.clone();
    const graph = await Trainer.create(a, { train: buildTrainingStep(entry.definition, config, { optimizer }) }, { worker: false });
    for (const batch of batches) await graph.step(batch, 0.01);
    await graph.release();
    const host = await Trainer.create(b, { train: onHost }, { intraOpThreads: 2, spinning: false });
    await host.fit(batches, { lr: 0.01 });
    await host.release();
    // A table read by several lookups sums their gradients one lookup after another (the graph adds
    // per-lookup ScatterNDs): equal up to that order of float32 additions; otherwise bit for bit.
    const shared = new Set(onHost.signature.tables.filter((t) => onHost.signature.lookups.filter((l) => l.table === t.name).length > 1).map((t) => t.name));
    t.diagnostic(shared.size ? `tables read by several lookups (${[...shared].join(", ")}): within 1e-5 of each tensor's scale` : "bit for bit");
    for (const [tensor, x] of a.tensors) {
      const got = b.require(tensor).data;
      if (shared.size === 0) {
        const at = x.data.findIndex((v, i) => !Object.is(v, got[i]));
        assert.equal(at, -1, `${tensor} differs at ${at}: ${got[at]} vs the graph's ${x.data[at]}`);
      } else {
        let scale = 1e-6;
        for (const v of x.data) scale = Math.max(scale, Math.abs(v));
        x.data.forEach((v, i) => assert.ok(Math.abs(v - got[i]!) <= 1e-5 * scale, `${tensor}[${i}]: ${got[i]} vs the graph's ${v}`));
      }
    }
  });
}
