/** Run configs (YAML, PaddleRec keys, bad keys), learning-rate schedules, funnel metrics on a hand-made case. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRunConfig, applyFlags, applySchemaOverrides, defaultRunConfig } from "../src/flow/config.js";
import { learningRate } from "../src/flow/schedule.js";
import { PredictionCollector } from "../src/metrics/funnel.js";
import { defaultAliccpSchema } from "../src/features/schema.js";
import { layoutOf, type Batch } from "../src/features/batch.js";
import { MtlError } from "../src/errors.js";

function configError(text: string): MtlError {
  try {
    parseRunConfig(text, "c.yaml");
  } catch (err) {
    assert.ok(err instanceof MtlError, String(err));
    return err;
  }
  assert.fail("expected an error");
}

test("a YAML config names every knob; flags override it", () => {
  const c = parseRunConfig(`
model: esmm
modelConfig:
  towerSizes: [32, 16]
  dropout: 0.1
optimizer: { kind: adamw, weightDecay: 0.02 }
training:
  batchSize: 256
  epochs: 3
  lr: 0.002
  schedule: { kind: exponential, decayRate: 0.5, decaySteps: 100, staircase: true, warmupSteps: 10 }
  seed: 7
  validFraction: 0.05
  patience: 2
  earlyStoppingMetric: cvr_auc
  checkpointEvery: 50
  logEvery: 5
  clipNorm: 5
data: { train: t.shard, valid: v.shard }
`, "c.yaml");
  assert.equal(c.model, "esmm");
  assert.deepEqual(c.modelConfig, { towerSizes: [32, 16], dropout: 0.1 });
  assert.deepEqual(c.optimizer, { kind: "adamw", weightDecay: 0.02 });
  assert.deepEqual(c.training, {
    batchSize: 256, epochs: 3, lr: 0.002, schedule: { kind: "exponential", decayRate: 0.5, decaySteps: 100, staircase: true, warmupSteps: 10 },
    seed: 7, validFraction: 0.05, patience: 2, earlyStoppingMetric: "cvr_auc", classificationThreshold: 0.5, checkpointEvery: 50, logEvery: 5, clipNorm: 5,
  });
  assert.deepEqual(c.data, { train: "t.shard", valid: "v.shard" });
  const f = applyFlags(c, { epochs: 9, lr: undefined, batchSize: 64 });
  assert.equal(f.training.epochs, 9);
  assert.equal(f.training.lr, 0.002);
  assert.equal(f.training.batchSize, 64);
  assert.throws(() => applyFlags(c, { epochs: 0 }), /'--epochs' must be a positive integer/);
});

test("PaddleRec keys are accepted and mapped, at the top level and in hyper_parameters/runner", () => {
  const c = parseRunConfig(`
runner:
  train_batch_size: 1024
  epochs: 4
hyper_parameters:
  optimizer:
    class: Adam
    learning_rate: 0.001
  sparse_feature_number: 1000
  sparse_feature_dim: 5
  ctr_fc_sizes: [256, 64]
counterfact_mode: DR
counterfactual_w: 0.5
global_w: 0.5
`, "paddle.yaml");
  assert.equal(c.training.batchSize, 1024);
  assert.equal(c.training.epochs, 4);
  assert.equal(c.training.lr, 0.001);
  assert.equal(c.optimizer.kind, "adam");
  assert.deepEqual(c.modelConfig, { towerSizes: [256, 64], counterfactualMode: "DR", counterfactualWeight: 0.5, globalWeight: 0.5 });
  assert.deepEqual(c.schemaOverrides, { featureNumber: 1000, dim: 5 });
  // sparse_feature_number N: ids 1..N plus the padding row (the built-in schema is N = 737,946).
  const schema = applySchemaOverrides(defaultAliccpSchema(), c.schemaOverrides);
  const t = layoutOf(schema).tables[0]!;
  assert.equal(t.rows, 1001);
  assert.equal(t.dim, 5);
  assert.equal(layoutOf(applySchemaOverrides(defaultAliccpSchema(), { featureNumber: 737_946 })).tables[0]!.rows, layoutOf(defaultAliccpSchema()).tables[0]!.rows);
});

test("unknown keys and bad values are errors naming the key and its line", () => {
  let e = configError("model: esmm\ntraining:\n  epochs: 2\n  epoch_count: 3\n");
  assert.equal(e.code, "E_CONFIG");
  assert.match(e.message, /unknown key 'training\.epoch_count'/);
  assert.equal(e.where.line, 4);
  assert.equal(e.where.file, "c.yaml");
  e = configError("use_tpu: true\n");
  assert.match(e.message, /unknown key 'use_tpu'/);
  assert.equal(e.where.line, 1);
  e = configError("hyper_parameters:\n  sparse_feature_number: -3\n");
  assert.match(e.message, /'hyper_parameters\.sparse_feature_number' must be a positive integer/);
  assert.equal(e.where.line, 2);
  e = configError("training:\n  schedule: { kind: exponential, decayRate: 0.9 }\n");
  assert.match(e.message, /decaySteps/);
  e = configError("optimizer: { class: Lamb }\n");
  assert.match(e.message, /unknown optimizer 'Lamb'/);
  e = configError("training: [1, 2\n");
  assert.match(e.message, /not valid YAML/);
  assert.equal(e.where.line, 2);
  e = configError("training:\n  earlyStoppingMetric: accuracy\n");
  assert.match(e.message, /earlyStoppingMetric/);
  assert.deepEqual(parseRunConfig("", "empty.yaml"), defaultRunConfig());
});

test("schedules: constant, linear warm-up, exponential decay (smooth and staircase)", () => {
  assert.equal(learningRate(0.1, { kind: "constant" }, 1), 0.1);
  assert.equal(learningRate(0.1, { kind: "constant" }, 10_000), 0.1);
  const warm = { kind: "constant" as const, warmupSteps: 4 };
  assert.deepEqual([1, 2, 3, 4, 5].map((s) => learningRate(0.1, warm, s)), [0.025, 0.05, 0.07500000000000001, 0.1, 0.1]);
  const exp = { kind: "exponential" as const, decayRate: 0.5, decaySteps: 10 };
  assert.equal(learningRate(1, exp, 10), 0.5);
  assert.equal(learningRate(1, exp, 20), 0.25);
  assert.ok(Math.abs(learningRate(1, exp, 5) - Math.SQRT1_2) < 1e-15);
  const stairs = { ...exp, staircase: true };
  assert.deepEqual([1, 9, 10, 19, 20].map((s) => learningRate(1, stairs, s)), [1, 1, 0.5, 0.5, 0.25]);
  // Warm-up, then decay counted from the end of the warm-up.
  const both = { kind: "exponential" as const, decayRate: 0.1, decaySteps: 1, staircase: true, warmupSteps: 2 };
  assert.deepEqual([1, 2, 3, 4].map((s) => learningRate(1, both, s)), [0.5, 1, 0.1, 0.010000000000000002]);
});

/** A data batch of `n` rows with only the fields the collector reads. */
function batch(click: number[], conversion: number[], user: number[] | null, trueCvr: number[] | null, potential: number[] | null): Batch {
  const n = click.length;
  return {
    size: n, ids: [], weights: [], dense: new Float32Array(0),
    click: Uint8Array.from(click), conversion: Uint8Array.from(conversion),
    truth: trueCvr ? { ctr: new Float32Array(n), cvr: Float32Array.from(trueCvr), conversion: Uint8Array.from(potential!) } : null,
    userId: user ? Int32Array.from(user) : null, sampleKey: new Uint32Array(n), task: null,
  } as unknown as Batch;
}

test("funnel metrics over all batches, by hand", () => {
  const c = new PredictionCollector();
  // Batch 1: two clicks, one conversion. Batch 2: a click without conversion (a batch without CVR positives still counts).
  c.add(batch([1, 0, 1], [1, 0, 0], [1, 1, 2], [0.5, 0.25, 0.25], [1, 0, 1]), { p_ctr: [0.9, 0.2, 0.25], p_cvr: [0.5, 0.5, 0.25], p_ctcvr: [0.45, 0.1, 0.0625] });
  c.add(batch([0, 1], [0, 0], [2, 2], [0, 0.5], [0, 0]), { p_ctr: [0.4, 0.3], p_cvr: [0.125, 0.75], p_ctcvr: [0.05, 0.225] });
  const m = c.metrics();
  assert.equal(m.impressions, 5);
  assert.equal(m.clicks, 3);
  assert.equal(m.conversions, 1);
  // CTR: positives {0.9, 0.25, 0.3}, negatives {0.2, 0.4}: pairs won 2 + 1 + 1 = 4 of 6.
  assert.equal(m.ctr_auc, 4 / 6);
  // CVR over clicked rows (pCVR 0.5+, 0.25-, 0.75-): the positive beats one negative of two.
  assert.equal(m.cvr_auc, 1 / 2);
  // CTCVR over impressions: the positive 0.45 beats all four negatives.
  assert.equal(m.ctcvr_auc, 1);
  // Entire-space CVR AUC against the potential conversions: positives {0.5, 0.25}, negatives {0.5, 0.125, 0.75}:
  // 0.5: tie(0.5)=0.5 + 0.125 -> 1.5; 0.25: 0.125 -> 1; total 2.5 of 6.
  assert.equal(m.cvr_auc_entire, 2.5 / 6);
  // CVR bias: mean pCVR (0.5+0.5+0.25+0.125+0.75)/5 = 0.425 minus mean true CVR (0.5+0.25+0.25+0+0.5)/5 = 0.3.
  assert.ok(Math.abs(m.cvr_bias! - 0.125) < 1e-7);
  assert.ok(Math.abs(m.ctr_pcoc! - (2.05 / 5) / (3 / 5)) < 1e-7);
  // CTR logloss by hand.
  const ll = -(Math.log(0.9) + Math.log(1 - 0.2) + Math.log(0.25) + Math.log(1 - 0.4) + Math.log(0.3)) / 5;
  assert.ok(Math.abs(m.ctr_logloss! - ll) < 1e-6);
  // GAUC: user 1 rows (0.9+, 0.2-) AUC 1, weight 2; user 2 rows (0.25+, 0.4-, 0.3+) AUC 0, weight 3: (2 + 0) / 5.
  assert.ok(Math.abs(m.ctr_gauc! - 2 / 5) < 1e-12);
  // CTCVR GAUC: user 1 has (0.45+, 0.1-) -> 1; user 2 has no positive and is left out.
  assert.equal(m.ctcvr_gauc, 1);
  const curves = c.curves();
  assert.deepEqual(Object.keys(curves.roc), ["ctr", "cvr", "ctcvr"]);
});

test("a CTR-only model gets null for what it does not predict; no truth, no entire-space metrics", () => {
  const c = new PredictionCollector();
  c.add(batch([1, 0], [0, 0], null, null, null), { p_ctr: [0.7, 0.2] });
  const m = c.metrics();
  assert.equal(m.ctr_auc, 1);
  assert.equal(m.cvr_auc, null);
  assert.equal(m.ctcvr_auc, null);
  assert.equal(m.cvr_auc_entire, null);
  assert.equal(m.cvr_bias, null);
  assert.equal(m.ctr_gauc, null);
});

test("progress: a bar rewritten in place on a terminal, plain lines otherwise; epoch results always", async () => {
  const { runProgress } = await import("../src/cli/train.js");
  const valid = { ctr_auc: 0.7, cvr_auc: null, ctcvr_auc: 0.8 } as unknown as import("../src/metrics/funnel.js").FunnelMetrics;
  for (const tty of [true, false]) {
    let out = "";
    const p = runProgress("train", { tty, every: 0, write: (s) => (out += s) });
    p({ kind: "start", resumedFrom: 0, stepsPerEpoch: 10, epochs: 2 });
    for (let step = 1; step <= 3; step++) {
      p({ kind: "step", step, epoch: 0, batchInEpoch: step, loss: 0.5, lr: 0.001, examples: step * 100 });
      await new Promise((r) => setTimeout(r, tty ? 260 : 2));
    }
    p({ kind: "epoch", epoch: 0, step: 10, trainLoss: 0.5, valid, validLoss: 0.4, improved: true });
    if (tty) assert.match(out, /\r\x1b\[2Ktrain: \[#+\.+\] +\d+% epoch 1\/2 step 3\/20 .* ex\/s {2}ETA \d+:\d\d {2}loss 0\.5000/);
    else assert.match(out, /^train: \[.*step [23]\/20 .*\n/m);
    if (!tty) assert.doesNotMatch(out, /\r/);
    assert.match(out, /train: epoch 1 done at step 10: train loss 0\.5000, valid loss 0\.4000, ctr_auc 0\.7000, ctcvr_auc 0\.8000 \(best\)\n/);
  }
});
