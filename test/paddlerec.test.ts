/**
 * PaddleRec's own config.yaml layout, read unchanged: our fixtures (fixtures/paddlerec/*) carry every
 * key of PaddleRec's ESMM, ESCM2 and MetaHeac config.yaml / config_bigdata.yaml, with our own values.
 * Every key is mapped or listed as unused; refusals come all at once with their lines; a folder laid
 * out as PaddleRec's model folder trains and evaluates with `mtl train --config config.yaml`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseRunConfig, readRunConfig } from "../src/flow/config.js";
import { PADDLEREC_KEYS } from "../src/flow/paddlerec.js";
import { writeSynth } from "../src/data/synth.js";
import { MtlError } from "../src/errors.js";
import { REPO_ROOT, tempDir } from "./helpers/data.js";

const FIXTURES = join(REPO_ROOT, "fixtures", "paddlerec");
const bin = join(REPO_ROOT, "bin", "mtl.js");
const dir = tempDir("mtl-paddlerec-");
test.after(() => rmSync(dir, { recursive: true, force: true }));

function mtl(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every key under runner: / hyper_parameters: (and its optimizer:) of a config file, as section.key. */
function keysOf(file: string): string[] {
  const keys: string[] = [];
  let section = "";
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const top = /^(\w+):\s*$/.exec(line);
    if (top) section = top[1]!;
    const inner = /^ {2}(\w+):/.exec(line);
    if (inner && section) keys.push(`${section}.${inner[1]}`);
    const opt = /^ {4}(\w+):/.exec(line);
    if (opt && section === "hyper_parameters") keys.push(`hyper_parameters.optimizer.${opt[1]}`);
  }
  return keys;
}

for (const [model, expected] of [["esmm", "esmm"], ["escm2", "escm2"], ["metaheac", "metaheac"]] as const) {
  for (const name of ["config.yaml", "config_bigdata.yaml"]) {
    test(`PaddleRec's ${model}/${name} layout: every key mapped or listed as unused, the model chosen by its keys`, () => {
      const file = join(FIXTURES, model, name);
      const c = readRunConfig(file);
      assert.equal(c.model, expected);
      const unused = new Set(c.paddleRec!.unused.map((u) => u.split(" ")[0]));
      for (const key of keysOf(file)) {
        const [section, ...rest] = key.split(".");
        const k = rest.join(".");
        const spec = PADDLEREC_KEYS.find((p) => `${p.section}.${p.key}` === `${section}.${k}` || (k.startsWith("optimizer.") && p.section === "hyper_parameters.optimizer" && p.key === k.slice("optimizer.".length)));
        assert.ok(spec, `${key} is in the table`);
        if (spec.unused) assert.ok(unused.has(key), `${key} is listed as unused`);
      }
      // Data directories are relative to the config file, as PaddleRec joins them to config_abs_dir.
      assert.equal(c.data.train, join(FIXTURES, model, readFileSync(file, "utf8").match(/train_data_dir: "([^"]+)"/)![1]!));
      assert.ok(c.data.test);
      assert.equal(c.paddleRec!.device, /use_gpu: True/.test(readFileSync(file, "utf8")) ? "cuda" : "cpu");
    });
  }
}

test("ESCM2's keys map to the model's names; the unused ones say why", () => {
  const c = readRunConfig(join(FIXTURES, "escm2", "config.yaml"));
  assert.deepEqual(c.modelConfig, {
    towerSizes: [16], cvrTowerSizes: [16], counterfactualMode: "IPW", globalWeight: 0.7, counterfactualWeight: 0.2,
    expertCount: 3, expertSizes: [8], mmoeTowerSizes: [4],
  });
  assert.equal(c.training.batchSize, 64);
  assert.equal(c.training.logEvery, 4);
  assert.equal(c.training.lr, 0.002);
  assert.deepEqual(c.paddleRec!.checks, { numField: { value: 23, line: 29 }, featureSize: { value: 92, line: 34 } });
  assert.deepEqual(c.paddleRec!.eval, { run: "output_model_escm", batchSize: 64 });
  assert.equal(c.paddleRec!.saveDir, "output_model_escm");
  assert.ok(c.paddleRec!.unused.some((u) => u.startsWith("hyper_parameters.gate_num (") && /own gate/.test(u)));
  assert.ok(c.paddleRec!.unused.some((u) => u.startsWith("hyper_parameters.optimizer.strategy (")));
});

test("a model key of another model, or --model against the config's keys, is refused with the line", () => {
  let e = error("model: esmm\nrunner:\n  counterfact_mode: DR\n");
  assert.match(e.format(), /c\.yaml:3: 'runner\.counterfact_mode' is a key of PaddleRec's escm2 config, but the model is esmm/);
  e = error("hyper_parameters:\n  global_w: 0.5\n  embed_dim: 4\n");
  assert.match(e.format(), /c\.yaml:3: 'hyper_parameters\.embed_dim' is a key of PaddleRec's metaheac config/);
  const r = mtl(dir, "train", "--config", join(FIXTURES, "escm2", "config.yaml"), "--model", "esmm", "--out", join(dir, "never"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /config\.yaml:\d+: 'runner\.counterfact_mode' is a key of PaddleRec's escm2 config, but the model is esmm \(train it with --model escm2/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
});

test("every refused key and bad value of a file comes in one message, each with file:line", () => {
  const e = error("runner:\n  train_data_dirr: data\n  use_gpu: maybe\n  epochs: 2\nhyper_parameters:\n  sparse_feature_number: -1\n  fancy: 3\n  optimizer:\n    class: lamb\n");
  assert.match(e.message, /^5 problems in the config:/);
  assert.match(e.message, /c\.yaml:2: unknown key 'runner\.train_data_dirr'/);
  assert.match(e.message, /c\.yaml:3: 'runner\.use_gpu' must be True or False/);
  assert.match(e.message, /c\.yaml:6: 'hyper_parameters\.sparse_feature_number' must be a positive integer/);
  assert.match(e.message, /c\.yaml:7: unknown key 'hyper_parameters\.fancy'/);
  assert.match(e.message, /c\.yaml:9: 'hyper_parameters\.optimizer\.class' unknown optimizer 'lamb'/);
  const all = error("runner:\n  nope: 1\nhyper_parameters:\n  optimizer: { class: lamb }\n");
  assert.match(all.message, /2 problems/);
  assert.match(all.message, /c\.yaml:4: .*unknown optimizer 'lamb'/);
});

test("num_field and feature_size are checked against the data's schema", async () => {
  const folder = join(dir, "checks");
  mkdirSync(join(folder, "data", "train"), { recursive: true });
  await writeSynth(join(folder, "data", "train", "a.txt"), { rows: 50, seed: 1, users: 50, items: 50, maxHistory: 3 });
  const text = readFileSync(join(FIXTURES, "escm2", "config.yaml"), "utf8").replace("feature_size: 92", "feature_size: 100").replace("num_field: 23", "num_field: 22");
  const { writeFileSync } = await import("node:fs");
  writeFileSync(join(folder, "config.yaml"), text);
  const r = mtl(folder, "train", "--config", "config.yaml");
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /config\.yaml:29: num_field is 22, but the schema '[^']+' has 23 id features; config\.yaml:34: feature_size is 100, but the schema's embedded input is 92 wide/);
  assert.ok(!existsSync(join(folder, "output_model_escm", "run.json")), "nothing written before the check");
});

/** A folder laid out as PaddleRec's model folder: config.yaml, data/train/*.txt (two files), data/test/*.txt. */
async function paddleFolder(model: string): Promise<string> {
  const folder = join(dir, `folder-${model}`);
  mkdirSync(join(folder, "data", "train"), { recursive: true });
  mkdirSync(join(folder, "data", "test"), { recursive: true });
  cpSync(join(FIXTURES, model, "config.yaml"), join(folder, "config.yaml"));
  const world = { users: 200, items: 300, maxHistory: 4 };
  await writeSynth(join(folder, "data", "train", "part-0.txt"), { rows: 200, seed: 1, ...world });
  await writeSynth(join(folder, "data", "train", "part-1.txt"), { rows: 200, seed: 2, ...world });
  await writeSynth(join(folder, "data", "test", "part-0.txt"), { rows: 150, seed: 3, ...world });
  return folder;
}

test("mtl train -m config.yaml in a PaddleRec model folder trains (both train files) and evaluates the test dir, no edit", async () => {
  const folder = await paddleFolder("esmm");
  const r = mtl(folder, "train", "-m", "config.yaml");
  assert.equal(r.code, 0, r.stderr);
  // the unused keys are listed once, all together
  assert.equal(r.stderr.split("\n").filter((l) => l.includes("understood but unused")).length, 1);
  const runDir = join(folder, "output_model_esmm");
  const manifest = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8"));
  assert.equal(manifest.model, "esmm");
  assert.deepEqual(manifest.modelConfig.towerSizes, [16, 8]);
  assert.deepEqual(manifest.modelConfig.cvrTowerSizes, [12]);
  assert.equal(manifest.training.batchSize, 64);
  assert.equal(manifest.training.epochs, 2);
  assert.equal(manifest.data.train, join(folder, "data", "train"));
  const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8"));
  // 400 training rows read from the two files, less the held-out tenth, twice
  assert.ok(summary.examples > 2 * 300 && summary.examples < 2 * 400, String(summary.examples));
  const testRes = JSON.parse(readFileSync(join(runDir, "test.json"), "utf8"));
  assert.equal(testRes.rows, 150);
  assert.match(r.stdout, /test \(.*data[/\\]test, 150 rows\)/);
  assert.match(r.stdout, /CVR AUC \(all impressions, PaddleRec auc_cvr\)/);
  // mtl eval with the same config: infer_load_path and test_data_dir are its defaults
  const e = mtl(folder, "eval", "--config", "config.yaml", "--json", join(folder, "eval.json"));
  assert.equal(e.code, 0, e.stderr);
  const ev = JSON.parse(readFileSync(join(folder, "eval.json"), "utf8"));
  assert.equal(ev.rows, 150);
  assert.equal(ev.metrics.ctr_auc, testRes.metrics.ctr_auc);
});

test("ESCM2's PaddleRec folder trains as ESCM2 (IPW) with no --model", async () => {
  const folder = await paddleFolder("escm2");
  const r = mtl(folder, "train", "--config", "config.yaml");
  assert.equal(r.code, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(folder, "output_model_escm", "run.json"), "utf8"));
  assert.equal(manifest.model, "escm2");
  assert.equal(manifest.modelConfig.counterfactualMode, "IPW");
  assert.equal(manifest.modelConfig.expertCount, 3);
});

function error(text: string): MtlError {
  try {
    parseRunConfig(text, "c.yaml");
  } catch (err) {
    if (err instanceof MtlError) return err;
    throw err;
  }
  assert.fail("expected an error");
}
