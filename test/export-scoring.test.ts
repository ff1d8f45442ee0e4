/** mtl export (scoring models): float16 and split tables, embedded metadata, external data, checkpoints. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { float16Bits, float16Value } from "../src/train/tables.js";
import { encodeRecords } from "../src/features/encode.js";
import { schemaHash, toSchemaJson } from "../src/features/schema.js";
import { readModelInfo } from "../src/scoring/metadata.js";
import { Scorer } from "../src/scoring/scorer.js";
import { exportInferenceModel } from "../src/export/inference.js";
import { getModel } from "../src/models/index.js";
import { describeModel, initialState } from "../src/train/index.js";
import { Graph, ops, tensor, encodeGraph, MtlError } from "../src/index.js";
import { exportScoringModel, scoringRecords, scoringSchema } from "./helpers/scoring.js";

const dir = mkdtempSync(join(tmpdir(), "mtl-export-scoring-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function scores(file: string, records = scoringRecords(40)) {
  const s = await Scorer.open(file, { worker: false });
  try {
    const b = encodeRecords(s.info.layout, records, { labels: false });
    return await s.score(b);
  } finally {
    await s.release();
  }
}

test("float16 conversion: exact values, rounding to nearest even, overflow, subnormals, NaN", () => {
  const cases: [number, number][] = [
    [0, 0x0000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00],
    [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002], [0.1, 0x2e66], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02],
  ];
  for (const [x, bits] of cases) assert.equal(float16Bits(x), bits, `float16(${x})`);
  assert.equal(float16Bits(NaN) & 0x7c00, 0x7c00);
  assert.ok(float16Bits(NaN) & 0x3ff);
  for (let h = 0; h < 0x7c00; h += 7) assert.equal(float16Bits(float16Value(h)), h, `round trip of 0x${h.toString(16)}`);
});

test("the exported file carries the schema, hashing, model, version and summary, and scores raw records", async () => {
  const r = exportScoringModel(dir, "plain.onnx");
  const bytes = readFileSync(r.file);
  const info = readModelInfo(bytes, r.file);
  assert.equal(info.model, "esmm");
  assert.deepEqual(toSchemaJson(info.schema), toSchemaJson(scoringSchema()));
  assert.equal(r.schemaHash, schemaHash(scoringSchema()));
  assert.equal((info.metadata["mtl.hashing"] ?? "").includes("fnv1a32"), true);
  assert.equal(info.summary, null);
  assert.equal(r.embeddingParameters, (97 + 1 + 10 + 62 + 14) * 4);
  const s = await scores(r.file);
  for (const p of [s.p_ctr, s.p_cvr, s.p_ctcvr]) assert.ok(p.every((v) => v > 0 && v < 1));
  s.p_ctcvr.forEach((v, i) => assert.ok(Math.abs(v - s.p_ctr[i]! * s.p_cvr[i]!) < 1e-7));
});

test("a table split into pieces scores exactly as one table; float16 tables score as the float16-rounded weights", async () => {
  const plain = await scores(exportScoringModel(dir, "a.onnx").file);
  // A 100-byte limit: a 4-byte column of the user (98 rows) and item (62) tables is over it, so they split by
  // rows (6-row pieces); the age (10 rows) and tag (14) tables split by columns.
  const split = exportScoringModel(dir, "b.onnx", { maxPieceBytes: 100 });
  assert.deepEqual(split.tables.map((t) => [t.pieces, t.splitBy]), [[17, "rows"], [2, "columns"], [11, "rows"], [4, "columns"]]);
  assert.deepEqual(await scores(split.file), plain);
  // An 800-byte limit: a 4-byte column of the 98-row user table (392 bytes) fits, so tables split by columns.
  const byColumns = exportScoringModel(dir, "b2.onnx", { maxPieceBytes: 800 });
  assert.deepEqual(byColumns.tables.map((t) => [t.pieces, t.splitBy]), [[2, "columns"], [1, "none"], [2, "columns"], [1, "none"]]);
  assert.deepEqual(await scores(byColumns.file), plain);

  // float16 reference: the same model with every table weight rounded through float16 in float32.
  const entry = getModel("esmm");
  const config = entry.validate({ ...(entry.defaults as Record<string, unknown>), schema: toSchemaJson(scoringSchema()), towerSizes: [16, 8] }, "test");
  const state = initialState(describeModel(entry.definition, config), { kind: "sgd" }, { seed: 3 });
  for (const t of describeModel(entry.definition, config).tables) {
    const w = state.get(t.name)!;
    for (let i = 0; i < w.length; i++) w[i] = float16Value(float16Bits(w[i]!));
  }
  const half = await scores(exportScoringModel(dir, "c.onnx", { fp16: true, maxPieceBytes: 60 }).file);
  const { decodeModel } = await import("../src/onnx/proto.js");
  const halfTables = (decodeModel(readFileSync(join(dir, "c.onnx"))).graph!.initializer ?? []).filter((t) => /\.part\d+$/.test(t.name!));
  assert.ok(halfTables.length > 4 && halfTables.every((t) => t.dataType === 10), "tables stored as float16 pieces");
  const { buildInferenceGraph } = await import("../src/train/program.js");
  const g = buildInferenceGraph(entry.definition, config, state);
  const { Session } = await import("../src/runtime/session.js");
  const { batchFeeds } = await import("../src/models/feeds.js");
  const sess = await Session.create(encodeGraph(g));
  const info = readModelInfo(readFileSync(join(dir, "a.onnx")));
  const ref = await sess.run(batchFeeds(encodeRecords(info.layout, scoringRecords(40), { labels: false }), info.layout, { ids: "int64", labels: false }));
  await sess.release();
  for (const p of ["p_ctr", "p_cvr", "p_ctcvr"] as const) {
    const want = ref[p]!.data as Float32Array;
    half[p].forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `${p}[${i}]: ${v} vs ${want[i]}`));
    assert.notDeepEqual(half[p], plain[p], "float16 rounding changes the scores a little");
  }
});

test("weights beyond the external-data limit go to <file>.data and score the same", async () => {
  const plain = await scores(exportScoringModel(dir, "inline.onnx").file);
  const r = exportScoringModel(dir, "ext.onnx", { externalDataBytes: 1000 });
  assert.ok(r.externalData && existsSync(r.externalData.file));
  const { decodeModel } = await import("../src/onnx/proto.js");
  const inits = decodeModel(readFileSync(r.file)).graph!.initializer ?? [];
  const external = inits.filter((t) => t.dataLocation === 1);
  const inlineBytes = inits.reduce((n, t) => n + (t.rawData?.byteLength ?? 0), 0);
  assert.ok(external.length > 0 && inlineBytes <= 1000, `${external.length} external, ${inlineBytes} bytes inline`);
  assert.deepEqual(await scores(r.file), plain);
});

test("--checkpoint: the run's weights, config and training summary are exported", async () => {
  const run = join(dir, "run");
  const entry = getModel("esmm");
  const modelConfig = { schema: toSchemaJson(scoringSchema()), towerSizes: [16, 8] };
  const config = entry.validate({ ...(entry.defaults as Record<string, unknown>), ...modelConfig }, "test");
  const state = initialState(describeModel(entry.definition, config), { kind: "adam" }, { seed: 11 });
  const fresh = await scores(exportScoringModel(dir, "fresh.onnx", { seed: 11 }).file);
  // "Train": move the CTR output bias, so the run's scores must differ from the fresh model's.
  state.get("ctr.out.bias")![0] = 2;
  exportScoringModel(dir, "unused.onnx");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(run, { recursive: true });
  state.save(join(run, "checkpoint.mtlstate"));
  // run.json as mtl train writes it: the resolved model config, the schema in its file format.
  writeFileSync(join(run, "run.json"), JSON.stringify({ model: "esmm", modelConfig: { ...(config as Record<string, unknown>), schema: modelConfig.schema } }));
  writeFileSync(join(run, "summary.json"), JSON.stringify({ steps: 123, valid: { ctr_auc: 0.61 } }));
  const out = join(dir, "trained.onnx");
  const r = exportInferenceModel(out, { checkpoint: run });
  assert.equal(r.fromCheckpoint, run);
  const info = readModelInfo(readFileSync(out));
  assert.deepEqual(info.summary, { steps: 123, valid: { ctr_auc: 0.61 } });
  const trained = await scores(out);
  trained.p_ctr.forEach((v, i) => assert.ok(v > fresh.p_ctr[i]!, "the trained bias raises every pCTR"));
  assert.throws(() => exportInferenceModel(out, { checkpoint: run, model: "two-tower" }), (e: unknown) => e instanceof MtlError && /--model two-tower but the run trained 'esmm'/.test(e.message));
  assert.throws(() => exportInferenceModel(out, { checkpoint: dir }), (e: unknown) => e instanceof MtlError && /cannot read run\.json/.test(e.message));
});

test("a file that is not an mtl scoring model is refused with a clear reason", async () => {
  const g = new Graph({ name: "plain" });
  g.output(ops.Relu(g.input("x", "float32", [2])), "y");
  const plain = join(dir, "plain-onnx.onnx");
  writeFileSync(plain, encodeGraph(g));
  await assert.rejects(Scorer.open(plain), (e: unknown) => e instanceof MtlError && e.code === "E_NOT_MTL" && /not an mtl scoring model: it has no mtl metadata/.test(e.message));
  const junk = join(dir, "junk.onnx");
  writeFileSync(junk, "this is a text file, not a model\n");
  await assert.rejects(Scorer.open(junk), (e: unknown) => e instanceof MtlError && e.code === "E_MODEL" && /not an ONNX model/.test(e.message));
  void tensor;
});
