/**
 * The training workflow end to end: `mtl train` killed with SIGKILL mid-epoch and resumed gives the
 * same weights bit for bit as a run never stopped; NaN stop; early stopping; eval JSON; report HTML;
 * the demo on a small funnel.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultRunConfig, type RunConfig } from "../src/flow/config.js";
import { trainRun } from "../src/flow/run.js";
import { TrainingState } from "../src/train/state.js";
import { MtlError } from "../src/errors.js";
import { TEST_MODELS } from "./helpers/tiny_model.js";
import { SHARED_DATA as SHARED } from "./helpers/data.js";

const bin = fileURLToPath(new URL("../../bin/mtl.js", import.meta.url));
const SYNTH = "synth:rows=3000,seed=3,users=300,items=400";

function tinyConfig(over: Partial<RunConfig["training"]> = {}, model = "tiny"): RunConfig {
  const c = defaultRunConfig();
  c.model = model;
  c.data.train = SYNTH;
  c.training = { ...c.training, batchSize: 128, epochs: 2, lr: 0.01, checkpointEvery: 7, logEvery: 5, validFraction: 0.2, ...over };
  return c;
}

function sameTensors(a: TrainingState, b: TrainingState, what: string): void {
  assert.equal(a.step, b.step, `${what}: step`);
  assert.deepEqual(a.rng, b.rng, `${what}: rng`);
  assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort(), `${what}: tensor names`);
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name)!;
    assert.deepEqual(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength), `${what}: tensor ${name} differs`);
  }
}

function records(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => {
    const r = JSON.parse(l) as Record<string, unknown>;
    delete r["time"];
    delete r["examples_per_sec"];
    return r;
  });
}

function mtl(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const work = mkdtempSync(join(tmpdir(), "mtl-flow-"));
test.after(() => rmSync(work, { recursive: true, force: true }));

// A small ESMM: 23 Ali-CCP fields at dim 4, towers of 8 with BatchNorm and dropout (state and PRNG must resume too).
const configFile = join(work, "small.yaml");
writeFileSync(configFile, `model: esmm
modelConfig: { towerSizes: [8], batchNorm: true, dropout: 0.2 }
hyper_parameters:
  sparse_feature_dim: 4
training: { batchSize: 64, epochs: 2, lr: 0.003, checkpointEvery: 5, logEvery: 10, validFraction: 0.2, seed: 11 }
`);
const DATA = "synth:rows=12000,seed=5,users=300,items=400";

test("mtl train killed with SIGKILL mid-epoch, then --resume: bit-identical to a run never stopped", async () => {
  const killed = join(work, "killed"), straight = join(work, "straight");
  const args = ["train", "--config", configFile, "--train", DATA];
  // Kill once a checkpoint inside the second epoch is on disk (so best.mtlstate and early-stopping state exist too).
  const at = await new Promise<{ epoch: number; batchInEpoch: number }>((resolve, reject) => {
    const p = spawn(process.execPath, [bin, ...args, "--out", killed], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (c: Buffer) => (err += c.toString()));
    let seen: { epoch: number; batchInEpoch: number } | null = null;
    const poll = setInterval(() => {
      try {
        const pr = JSON.parse(readFileSync(join(killed, "progress.json"), "utf8")) as { epoch: number; batchInEpoch: number };
        if (pr.epoch === 1 && pr.batchInEpoch > 0 && !seen) {
          seen = pr;
          p.kill("SIGKILL");
        }
      } catch { /* not written yet, or mid-rename */ }
    }, 2);
    p.on("exit", (_code, signal) => {
      clearInterval(poll);
      if (signal === "SIGKILL" && seen) resolve(seen);
      else reject(new Error(`the run ended before it was killed: ${err}`));
    });
  });
  assert.equal(at.epoch, 1);
  const before = TrainingState.load(join(killed, "checkpoint.mtlstate")).step;
  const resumed = mtl(["train", "--out", killed, "--resume"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`resuming at step ${before}`));
  const full = mtl([...args, "--out", straight]);
  assert.equal(full.code, 0, full.stderr);
  sameTensors(TrainingState.load(join(killed, "checkpoint.mtlstate")), TrainingState.load(join(straight, "checkpoint.mtlstate")), "final checkpoint");
  sameTensors(TrainingState.load(join(killed, "best.mtlstate")), TrainingState.load(join(straight, "best.mtlstate")), "best state");
  const a = records(killed), b = records(straight);
  assert.deepEqual(a, b, "the same metrics records, the resumed run's included");
  const summary = JSON.parse(readFileSync(join(killed, "summary.json"), "utf8"));
  assert.equal(summary.status, "completed");
  assert.equal(summary.epochs, 2);
  const run = JSON.parse(readFileSync(join(killed, "run.json"), "utf8"));
  assert.equal(run.model, "esmm");
  assert.equal(run.modelConfig.schema.features[0].dim, 4);
  assert.deepEqual(run.modelConfig.towerSizes, [8]);
  // A finished run is not resumed again, and a used directory is not overwritten.
  const again = mtl(["train", "--out", killed, "--resume"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already finished/);
  const over = mtl([...args, "--out", killed]);
  assert.equal(over.code, 1);
  assert.match(over.stderr, /already holds a run/);
});

test("mtl eval prints a table and writes JSON; mtl report writes one self-contained HTML file", () => {
  const dir = join(work, "straight");
  if (!existsSync(join(dir, "run.json"))) return assert.fail("needs the run of the resume test");
  const json = join(work, "eval.json");
  const r = mtl(["eval", dir, "--data", "synth:rows=2000,seed=5,users=300,items=400", "--json", json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /CTR AUC\s+0\.\d{4}/);
  assert.match(r.stdout, /CVR AUC \(entire, true\)/);
  const res = JSON.parse(readFileSync(json, "utf8"));
  assert.equal(res.model, "esmm");
  assert.equal(res.rows, 2000);
  assert.equal(res.metrics.impressions, 2000);
  for (const k of ["ctr_auc", "cvr_auc", "ctcvr_auc", "cvr_auc_entire", "ctr_gauc"]) assert.ok(res.metrics[k] > 0.3 && res.metrics[k] < 1, `${k} = ${res.metrics[k]}`);
  assert.equal(typeof res.metrics.cvr_bias, "number");
  assert.ok(res.curves.roc.ctr.length > 2);
  assert.match(res.checkpoint, /best\.mtlstate$/);
  // On the run's own held-out rows, eval reproduces the validation metrics training recorded for its best state.
  const heldOut = join(work, "eval-valid.json");
  const v = mtl(["eval", dir, "--data", DATA, "--split", "valid", "--json", heldOut]);
  assert.equal(v.code, 0, v.stderr);
  const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
  const again = JSON.parse(readFileSync(heldOut, "utf8")).metrics;
  for (const [k, want] of Object.entries(summary.best.metrics as Record<string, number | null>)) {
    if (typeof want === "object" && want !== null) assert.deepEqual(again[k], want, k); // not_computable
    else if (want === null) assert.equal(again[k], null, k);
    else assert.ok(Math.abs(again[k] - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${k}: ${again[k]} vs ${want}`);
  }

  const html = join(work, "report.html");
  const rep = mtl(["report", dir, "-o", html]);
  assert.equal(rep.code, 0, rep.stderr);
  const text = readFileSync(html, "utf8");
  assert.match(text, /^<!doctype html>/);
  assert.doesNotMatch(text, /<script|<link |src="http|href="http/, "self-contained: no scripts, no fetched resources");
  for (const title of ["Training loss", "Validation AUC per epoch", "ROC — CTR (impressions)", "ROC — CVR (clicked)", "ROC — CTCVR (impressions)", "Reliability"]) assert.ok(text.includes(title), title);
  assert.ok((text.match(/<svg /g) ?? []).length >= 7);
  assert.doesNotMatch(text, /NaN/);
  assert.match(text, /Feature schema \(23 features\)/);
  const bad = mtl(["report", join(work, "nowhere")]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /cannot read run\.json/);
});

test("a NaN loss stops the run, naming the step and the last good checkpoint", async () => {
  const dir = join(work, "nan");
  const config = tinyConfig({ lr: 1e30, checkpointEvery: 1, epochs: 1 });
  config.optimizer = { kind: "sgd" };
  await assert.rejects(trainRun({ config, out: dir, models: TEST_MODELS }), (err: unknown) => {
    assert.ok(err instanceof MtlError);
    assert.equal(err.code, "E_NAN");
    assert.match(err.message, /training stopped at step \d+: .*(NaN|Inf)/);
    assert.match(err.hint ?? "", /last good checkpoint is .*checkpoint\.mtlstate \(step \d+\)/);
    const good = Number(/\(step (\d+)\)/.exec(err.hint!)![1]);
    const saved = TrainingState.load(join(dir, "checkpoint.mtlstate"));
    assert.equal(saved.step, good);
    for (const [, t] of saved.tensors) assert.ok(t.data.every(Number.isFinite), "the checkpoint left on disk is finite");
    return true;
  });
});

test("early stopping: no improvement for `patience` epochs ends the run; the best state is kept", async () => {
  const dir = join(work, "early");
  // lr 0: the validation metric never improves after the first epoch.
  const summary = await trainRun({ config: tinyConfig({ lr: 0, epochs: 6, patience: 2 }), out: dir, models: TEST_MODELS });
  assert.equal(summary.status, "early_stopped");
  assert.equal(summary.epochs, 3);
  assert.equal(summary.best!.epoch, 1);
  const epochs = records(dir).filter((r) => r["type"] === "epoch");
  assert.deepEqual(epochs.map((r) => r["improved"]), [true, false, false]);
  assert.equal(TrainingState.load(join(dir, "best.mtlstate")).step, summary.best!.step);
});

test("a CTR-only model trains, reports null for the metrics it cannot have, and watches ctr_auc by default", async () => {
  const dir = join(work, "ctr-only");
  const summary = await trainRun({ config: tinyConfig({ epochs: 1 }, "tiny-ctr"), out: dir, models: TEST_MODELS });
  assert.equal(summary.earlyStoppingMetric, "ctr_auc");
  assert.equal(JSON.parse(readFileSync(join(dir, "run.json"), "utf8")).training.earlyStoppingMetric, "ctr_auc");
  assert.ok(summary.best!.metrics.ctr_auc! > 0);
  assert.equal(summary.best!.metrics.cvr_auc, null);
  assert.equal(summary.best!.metrics.ctcvr_auc, null);
  // Asked to stop early on a metric it cannot produce, it falls back to the validation loss with a warning.
  const warnings: string[] = [];
  const s2 = await trainRun({ config: tinyConfig({ epochs: 2, earlyStoppingMetric: "ctcvr_auc" }, "tiny-ctr"), out: join(work, "ctr-only-2"), models: TEST_MODELS, onEvent: (e) => void (e.kind === "warning" && warnings.push(e.message)) });
  assert.equal(s2.status, "completed");
  assert.equal(s2.earlyStoppingMetric, "loss");
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /epoch 1: ctcvr_auc cannot be computed on the validation set \(the model does not predict it\); early stopping and the best state use the validation loss/);
  assert.ok(s2.best !== null);
});

test("a validation split with one class: the metric is reported as not computable, early stopping uses the loss, the run completes", async () => {
  const { writeSynth } = await import("../src/data/synth.js");
  const src = join(work, "one-class-src.txt");
  await writeSynth(src, { rows: 600, seed: 4, users: 100, items: 100, maxHistory: 3 });
  // No conversion anywhere: CTCVR and CVR AUCs have one class.
  const file = join(work, "one-class.txt");
  writeFileSync(file, readFileSync(src, "utf8").split("\n").map((l) => (l ? l.replace(/^([^,]*),([^,]*),[01],/, "$1,$2,0,") : l)).join("\n"));
  const config = defaultRunConfig();
  config.data.train = file;
  config.modelConfig = { towerSizes: [8] };
  config.schemaOverrides = { dim: 4 };
  config.training = { ...config.training, batchSize: 64, epochs: 2, patience: 1, validFraction: 0.2 };
  const warnings: string[] = [];
  const summary = await trainRun({ config, out: join(work, "one-class"), onEvent: (e) => void (e.kind === "warning" && warnings.push(e.message)) });
  assert.equal(summary.status === "completed" || summary.status === "early_stopped", true);
  assert.equal(summary.earlyStoppingMetric, "loss");
  assert.equal(summary.best!.metrics.ctcvr_auc, null);
  assert.match(summary.best!.metrics.not_computable["ctcvr_auc"]!, /one class: no conversions among \d+ rows/);
  assert.match(summary.best!.metrics.not_computable["cvr_auc_all"]!, /one class: no conversions/);
  assert.ok(summary.best!.metrics.ctr_auc !== null);
  assert.equal(warnings.length, summary.epochs);
  assert.match(warnings[0]!, /ctcvr_auc cannot be computed on the validation set \(one class: no conversions among \d+ rows\)/);
  const epochs = records(join(work, "one-class")).filter((r) => r["type"] === "epoch");
  assert.equal((epochs[0]!["valid"] as { not_computable: Record<string, string> }).not_computable["ctcvr_auc"] !== undefined, true);
  // mtl eval reports it as such
  const r = mtl(["eval", join(work, "one-class"), "--data", file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /not computable on these rows: .*ctcvr_auc: one class: no conversions among 600 rows/);
});

test("PaddleRec's 10-line Ali-CCP sample: ESMM and CTR-only with defaults train, fall back to the loss, never fail after training", { skip: existsSync(join(SHARED, "aliccp-sample", "train_small.txt")) ? false : `no ${join(SHARED, "aliccp-sample")} (the shared samples)` }, async () => {
  for (const model of ["esmm", "ctr-only"]) {
    const out = join(work, `sample-${model}`);
    const r = mtl(["train", "--model", model, "--train", join(SHARED, "aliccp-sample"), "--out", out, "--epochs", "2", "--valid-fraction", "0.3"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(out, "summary.json")));
  }
});

test("mtl demo: the documented world, a comparison with its reading, the same digits on a second run in the same directory, an export that scores like the eval program", async () => {
  const { DEMO_WORLD, DEMO_LINEUP } = await import("../src/demo/demo.js");
  // The world docs/workflow.md and docs/results.md document, and the rates the benchmark chose on validation.
  assert.deepEqual(DEMO_WORLD, { preset: "dense", bias: 2, seed: 1, impressions: 30000, testImpressions: 20000 });
  assert.deepEqual(DEMO_LINEUP.map((l) => [l.name, l.lr]), [["naive", 0.01], ["esmm", 0.01], ["escm2-dr", 0.03]]);
  const dir = join(work, "demo");
  const first = mtl(["demo", "--out", dir, "--rows", "4000"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /mtl demo: preset dense, selection bias 2, seed 1: 4,000 training impressions/);
  assert.match(first.stdout, /Selection bias: clicked impressions convert at 0\.\d+ \(true CVR\), the whole space at 0\.\d+/);
  assert.match(first.stdout, /CVR AUC \(entire, true\)/);
  assert.match(first.stdout, /Reading: .*(exported for ranking by pCTCVR|exports the naive baseline)/);
  assert.match(first.stderr, /demo: world: preset dense \(10% CTR, 20% of clicks convert\), selection bias 2/);
  const demo = JSON.parse(readFileSync(join(dir, "demo.json"), "utf8")) as import("../src/demo/demo.js").DemoResult;
  assert.deepEqual(demo.models.map((m) => m.name), ["naive", "esmm", "escm2-dr"]);
  assert.ok(demo.worldRates.meanTrueCvrClicked > 2 * demo.worldRates.meanTrueCvrAll, "bias 2 makes clicked impressions convert far more than the space");
  // The export is the comparison's winner on the job it names.
  const best = Math.max(...demo.models.map((m) => m.metrics.cvr_auc_entire!));
  assert.equal(demo.models.find((m) => m.name === demo.best)!.metrics.cvr_auc_entire, best);
  assert.equal(demo.naiveWins, demo.best === "naive");
  assert.ok(existsSync(join(dir, "model.onnx")));
  assert.equal(demo.scored.length, 8);
  // A second demo in the same directory starts afresh and repeats every digit.
  const second = mtl(["demo", "--out", dir, "--rows", "4000"]);
  assert.equal(second.code, 0, second.stderr);
  const again = JSON.parse(readFileSync(join(dir, "demo.json"), "utf8")) as import("../src/demo/demo.js").DemoResult;
  assert.deepEqual(again.models.map((m) => m.metrics), demo.models.map((m) => m.metrics));
  assert.deepEqual(again.scored, demo.scored);
  assert.equal(second.stdout.split("\n").filter((l) => !l.startsWith("done in")).join("\n"), first.stdout.split("\n").filter((l) => !l.startsWith("done in")).join("\n"));
  // The exported file's scores equal the eval program's on the best state for the same rows.
  const { openDataSource } = await import("../src/data/source.js");
  const { Trainer } = await import("../src/train/trainer.js");
  const { buildEvalProgram } = await import("../src/train/program.js");
  const { stepFeeds } = await import("../src/models/feeds.js");
  const { lookupModel, modelConfigOf } = await import("../src/flow/rundir.js");
  const runDir = join(dir, demo.best);
  const manifest = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8"));
  const entry = lookupModel(manifest.model);
  const config = entry.validate(modelConfigOf(manifest, "run.json"), "run.json");
  const trainer = await Trainer.create(TrainingState.load(join(runDir, "best.mtlstate")), { eval: buildEvalProgram(entry.definition, config) }, { intraOpThreads: 1 });
  const source = await openDataSource(demo.data.test);
  for await (const b of source.batches({ batchSize: 8, shuffle: false })) {
    const res = await trainer.evaluate(stepFeeds(b, source.layout));
    demo.scored.forEach((s, i) => {
      assert.equal(s.click, b.click[i]);
      for (const k of ["p_ctr", "p_cvr", "p_ctcvr"] as const) assert.ok(Math.abs(s[k]! - res.predictions[k]![i]!) < 1e-6, `${k} row ${i}: ${s[k]} vs ${res.predictions[k]![i]}`);
    });
    break;
  }
  await trainer.release();
});

test("mtl demo refuses a directory holding runs no demo wrote, unless --force", () => {
  const dir = join(work, "not-a-demo");
  mkdirSync(join(dir, "esmm"), { recursive: true });
  writeFileSync(join(dir, "esmm", "run.json"), "{}");
  const r = mtl(["demo", "--out", dir]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /holds esmm but no demo\.json: not an earlier demo's output/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  assert.ok(existsSync(join(dir, "esmm", "run.json")), "nothing removed");
});

test("a bad model key in the config file is reported at its line; PaddleRec's model keys too", async () => {
  const { parseRunConfig } = await import("../src/flow/config.js");
  const cases: [string, RegExp, number][] = [
    ["model: esmm\nmodelConfig:\n  towerSize: [8]\n", /unknown key 'towerSize' for model esmm/, 3],
    ["model: esmm\nhyper_parameters:\n  ctr_fc_sizes: [8, -1]\n", /'towerSizes' of model esmm must be a list of positive integers/, 3],
  ];
  for (const [text, message, line] of cases) {
    const config = parseRunConfig(text, "bad.yaml");
    config.data.train = SYNTH;
    await assert.rejects(trainRun({ config, out: join(work, `bad-${line}-${cases.indexOf(cases.find((c) => c[0] === text)!)}`) }), (err: unknown) => {
      assert.ok(err instanceof MtlError);
      assert.match(err.message, message);
      assert.equal(err.where.file, "bad.yaml");
      assert.equal(err.where.line, line);
      return true;
    });
  }
});

test("an aborted run (Ctrl-C) checkpoints at the batch it reached; --resume then ends bit-identical", async () => {
  const a = join(work, "abort"), b = join(work, "abort-ref");
  const config = tinyConfig({ epochs: 2, checkpointEvery: 50 });
  config.modelConfig = { dropout: 0.25 };
  const stop = new AbortController();
  const first = await trainRun({ config, out: a, models: TEST_MODELS, signal: stop.signal, onEvent: (e) => { if (e.kind === "step" && e.step === 23) stop.abort(); } });
  assert.equal(first.status, "interrupted");
  assert.ok(!existsSync(join(a, "summary.json")));
  const at = TrainingState.load(join(a, "checkpoint.mtlstate"));
  assert.ok(at.step >= 23 && at.step < 40, `checkpoint at step ${at.step}, not at a checkpointEvery boundary`);
  const resumed = await trainRun({ config, out: a, resume: true, models: TEST_MODELS });
  const straight = await trainRun({ config, out: b, models: TEST_MODELS });
  assert.equal(resumed.status, "completed");
  assert.equal(resumed.steps, straight.steps);
  sameTensors(TrainingState.load(join(a, "checkpoint.mtlstate")), TrainingState.load(join(b, "checkpoint.mtlstate")), "final");
  assert.deepEqual(records(a), records(b));
});
