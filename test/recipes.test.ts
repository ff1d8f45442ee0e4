/**
 * The documented training recipes (docs/examples/one-step.mjs and one_step.py, see
 * docs/training-artifacts.md) run one step of every registered model's `mtl export --training`
 * artifacts with plain onnxruntime: Node always; Python where a virtualenv with onnxruntime and numpy
 * is at hand (MTL_PYTHON, or .venv/bin/python, which .ci/run sets up), otherwise skipped saying so.
 * Both give the same loss and predictions, and Node's wasm binding the same as its native one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MODELS, getModel } from "../src/models/index.js";
import { exportTrainingArtifacts } from "../src/export/training.js";
import { toSchemaJson, validateSchema } from "../src/features/schema.js";
import { scoringSchema } from "./helpers/scoring.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const nodeRecipe = join(root, "docs", "examples", "one-step.mjs");
const pythonRecipe = join(root, "docs", "examples", "one_step.py");
const dir = mkdtempSync(join(tmpdir(), "mtl-recipes-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

interface StepResult { model: string; loss: number; prediction: string; p: number[]; rowsTouched: Record<string, number> }

function python(): string | null {
  for (const p of [process.env["MTL_PYTHON"], join(root, ".venv", "bin", "python")]) {
    if (!p || !existsSync(p)) continue;
    if (spawnSync(p, ["-c", "import onnxruntime, numpy"]).status === 0) return p;
  }
  return null;
}
const py = python();

/** A small look-alike schema (user fields, a length-masked list, an ad field, the campaign as task). */
function lookalikeSchema() {
  return validateSchema({
    name: "lookalike-small",
    features: [
      { name: "age", kind: "id", vocab_size: 6, table: "age", dim: 4 },
      { name: "interest", kind: "ids", vocab_size: 30, max_len: 3, pooling: "mean", length: "interest_length", table: "interest", dim: 4 },
      { name: "adv", kind: "id", vocab_size: 8, table: "adv", dim: 4 },
    ],
    labels: { click: "label", conversion: null },
    task: "aid",
  });
}

/** Small settings per model: a few tables (one shared by two features), dense and weighted features. */
function settings(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  if (name === "metaheac") return { schema: toSchemaJson(lookalikeSchema()), adFeatures: ["adv"], expertCount: 2, expertSizes: [8], gateHidden: 8, criticCount: 2, ...extra };
  if (name === "two-tower") return { vocabSize: 60, embeddingDim: 4, fields: 3, idsPerField: 2, towerSizes: [8, 4], paddingRow0: true, ...extra };
  return { schema: toSchemaJson(scoringSchema()), ...extra };
}

function exportArtifacts(name: string, extra: Record<string, unknown> = {}): string {
  const entry = getModel(name);
  const out = join(dir, `${name}${Object.keys(extra).length ? "-" + Object.keys(extra).join("-") : ""}`);
  const config = entry.validate({ ...(entry.defaults as Record<string, unknown>), ...settings(name, extra) }, "test");
  exportTrainingArtifacts(out, { model: entry.definition, config, optimizer: { kind: "adam" }, seed: 5 });
  return out;
}

function runRecipe(cmd: string, args: string[], env: Record<string, string> = {}): StepResult {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: root, env: { ...process.env, ...env } });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as StepResult;
}

function assertSame(a: StepResult, b: StepResult, what: string): void {
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * Math.max(1, Math.abs(a.loss)), `${what}: loss ${a.loss} vs ${b.loss}`);
  assert.equal(a.prediction, b.prediction, what);
  a.p.forEach((p, i) => assert.ok(Math.abs(p - b.p[i]!) <= 1e-6, `${what}: ${a.prediction}[${i}] ${p} vs ${b.p[i]}`));
  assert.deepEqual(a.rowsTouched, b.rowsTouched, what);
}

const cases: [string, Record<string, unknown>][] = [...Object.keys(MODELS).map((m): [string, Record<string, unknown>] => [m, {}]), ["esmm", { dropout: 0.2, batchNorm: true }]];

for (const [name, extra] of cases) {
  const label = `${name}${Object.keys(extra).length ? ` (${JSON.stringify(extra)})` : ""}`;
  test(`one training step of ${label} with the documented recipe: Node${py ? " and Python agree" : ""}`, () => {
    const art = exportArtifacts(name, extra);
    const node = runRecipe(process.execPath, [nodeRecipe, art]);
    assert.equal(node.model, name);
    assert.ok(Number.isFinite(node.loss) && node.loss > 0, `loss ${node.loss}`);
    assert.equal(node.p.length, 2);
    if (py) assertSame(node, runRecipe(py, [pythonRecipe, art]), `${label}: Node vs Python`);
    if (name === "esmm" && Object.keys(extra).length === 0) assertSame(node, runRecipe(process.execPath, [nodeRecipe, art], { ORT: "onnxruntime-web" }), "onnxruntime-node vs onnxruntime-web");
  });
}

test("the Python recipe", { skip: py ? false : "no Python with onnxruntime and numpy (set MTL_PYTHON, or make .venv: python3 -m venv .venv && .venv/bin/pip install onnxruntime numpy; .ci/run does)" }, () => {
  assert.ok(py);
});
