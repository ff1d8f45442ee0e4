/**
 * The scoring graph's context split (schema `context`, src/models/inputs.ts embedInput, layers.ts
 * linear, feeds.ts batchFeeds): the same scores as the unsplit graph for plain rows, for a request's
 * candidates and for several requests in one run, across the models; one context row per request.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultAliccpSchema, parseSchema, schemaHash, toSchemaJson, validateSchema } from "../src/features/schema.js";
import { concatBatches, layoutOf } from "../src/features/batch.js";
import { encodeCandidates, encodeRecords } from "../src/features/encode.js";
import { batchFeeds, PREDICTIONS, type Scores } from "../src/models/feeds.js";
import { CONTEXT_INDEX_INPUT, contextSplitOf } from "../src/models/inputs.js";
import { exportInferenceModel } from "../src/export/inference.js";
import { Scorer } from "../src/scoring/scorer.js";
import { onnx } from "../src/onnx/proto.js";
import { MtlError } from "../src/errors.js";

const dir = mkdtempSync(join(tmpdir(), "mtl-split-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Both sides in one shared table and in tables of their own, mean pooling and weighted ids on the
 * context side, a product across the sides, a cross on each side, dense columns.
 */
const schemaJson = {
  features: [
    { name: "user", kind: "id", hash_buckets: 50, table: "shared", dim: 4 },
    { name: "item", kind: "id", hash_buckets: 50, table: "shared", dim: 4 },
    { name: "history", kind: "ids", hash_buckets: 50, max_len: 3, pooling: "mean", table: "shared", dim: 4 },
    { name: "segment", kind: "id", hash_buckets: 7, dim: 3 },
    { name: "interests", kind: "weighted_ids", weight_source: "interest_w", hash_buckets: 11, max_len: 2, dim: 3 },
    { name: "category", kind: "id", hash_buckets: 13, dim: 3 },
    { name: "user_x_segment", kind: "id", cross: ["user", "segment"], hash_buckets: 97, dim: 2 },
    { name: "item_x_segment", kind: "id", cross: ["item", "segment"], hash_buckets: 97, dim: 2 },
    { name: "price", kind: "dense", transform: "log1p" },
  ],
  labels: { click: "click", conversion: "buy" },
  products: [["user", "item"]],
  context: ["user", "history", "segment", "interests", "user_x_segment"],
};
const schema = validateSchema(schemaJson);
const CONTEXT_KEYS = ["user", "history", "segment", "interests", "interest_w"];

let seed = 11;
const rand = (n: number) => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) % n);
const context = () => ({ user: `u${rand(9)}`, history: Array.from({ length: rand(4) }, () => `i${rand(20)}`), segment: `s${rand(4)}`, interests: [`t${rand(5)}`, `t${rand(5)}`], interest_w: [rand(10) / 10, 1] });
const candidate = () => ({ item: `i${rand(20)}`, category: `c${rand(6)}`, price: rand(100) });

function maxDiff(a: Scores, b: Scores): number {
  let d = 0;
  for (const p of PREDICTIONS) for (let i = 0; i < a[p].length; i++) d = Math.max(d, Math.abs(a[p][i]! - b[p][i]!));
  return d;
}

test("schema `context`: validated, kept in the file format, left out of the hash", () => {
  assert.deepEqual(schema.context, ["user", "history", "segment", "interests", "user_x_segment"]);
  assert.deepEqual(parseSchema(JSON.stringify(toSchemaJson(schema))), schema);
  const { context: _c, ...without } = schemaJson;
  assert.equal(schemaHash(schema), schemaHash(validateSchema(without)));
  const refused = (context: unknown, message: RegExp) =>
    assert.throws(() => validateSchema({ ...schemaJson, context }), (e: unknown) => e instanceof MtlError && e.where?.field === "context" && message.test(e.message));
  refused(["nope"], /'nope' is not an id feature/);
  refused(["price"], /'price' is not an id feature/);
  refused(["user", "user"], /named twice/);
  refused(["item_x_segment", "segment"], /the cross 'item_x_segment' is context-side but 'item'/);
  refused("user", /expected a list of id feature names/);
  assert.deepEqual(defaultAliccpSchema().context, ["101", "109_14", "110_14", "127_14", "150_14", "121", "122", "124", "125", "126", "127", "128", "129"]);
});

test("batchFeeds: a request's candidates share one context row; several requests keep one each; plain rows of one user share too", () => {
  const layout = layoutOf(schema);
  const split = contextSplitOf(layout)!;
  assert.deepEqual(split.context.map((s) => [s.table.name, s.columns]), [["shared", [0, 2, 3, 4]], ["segment", [0]], ["interests", [0, 1]], ["user_x_segment", [0]]]);
  assert.deepEqual(split.candidate.map((s) => [s.table.name, s.columns]), [["shared", [1]], ["category", [0]], ["item_x_segment", [0]]]);
  const one = encodeCandidates(layout, context(), Array.from({ length: 5 }, candidate));
  const f = batchFeeds(one, layout, { ids: "int64", labels: false, contextSplit: true });
  assert.deepEqual(f["context.ids.shared"]!.dims, [1, 4]);
  assert.deepEqual(f["ids.shared"]!.dims, [5, 1]);
  assert.deepEqual(f["context.weights.interests"]!.dims, [1, 2]);
  assert.deepEqual([...f[CONTEXT_INDEX_INPUT]!.data as BigInt64Array], [0n, 0n, 0n, 0n, 0n]);
  // The context's ids are the first row's context columns.
  const ids = one.ids[0]!;
  assert.deepEqual([...(f["context.ids.shared"]!.data as BigInt64Array)].map(Number), [ids[0], ids[2], ids[3], ids[4]]);
  const three = concatBatches(layout, [one, encodeCandidates(layout, context(), [candidate(), candidate()]), encodeCandidates(layout, { ...context(), user: "u-other" }, [candidate()])]);
  const g = batchFeeds(three, layout, { ids: "int64", labels: false, contextSplit: true });
  assert.deepEqual([...g[CONTEXT_INDEX_INPUT]!.data as BigInt64Array], [0n, 0n, 0n, 0n, 0n, 1n, 1n, 2n]);
  assert.deepEqual(g["context.ids.shared"]!.dims, [3, 4]);
  // Without the option (a plain graph, or training) nothing is split.
  assert.deepEqual(Object.keys(batchFeeds(one, layout, { ids: "int64", labels: false })).sort(), ["dense", "ids.category", "ids.interests", "ids.item_x_segment", "ids.segment", "ids.shared", "ids.user_x_segment", "weights.interests", "weights.shared"]);
});

for (const model of ["esmm", "escm2", "naive", "shared-bottom", "mmoe", "ple", "aitm"]) {
  test(`${model}: the split scoring graph scores as the unsplit one (rows, a request, several requests in one run)`, async () => {
    const config = { schema: schemaJson };
    const splitFile = join(dir, `${model}-split.onnx`), plainFile = join(dir, `${model}-plain.onnx`);
    exportInferenceModel(splitFile, { model, seed: 5, config });
    exportInferenceModel(plainFile, { model, seed: 5, config, contextSplit: false });
    const inputs = (file: string) => (onnx.ModelProto.decode(readFileSync(file)).graph!.input ?? []).map((v) => v.name).sort();
    assert.ok(inputs(splitFile).includes(CONTEXT_INDEX_INPUT) && inputs(splitFile).includes("context.ids.shared"));
    assert.ok(!inputs(plainFile).some((n) => n!.startsWith("context.")));
    const a = await Scorer.open(splitFile, { worker: false }), b = await Scorer.open(plainFile, { worker: false });
    try {
      const records = Array.from({ length: 40 }, (_, i) => ({ ...(i % 3 === 0 ? context() : { ...context(), user: "same-user" }), ...candidate() }));
      const rowsA = await a.scoreRecords(records), rowsB = await b.scoreRecords(records);
      assert.ok(maxDiff(rowsA, rowsB) < 1e-6, `rows: ${maxDiff(rowsA, rowsB)}`);
      const ctx = context(), cands = Array.from({ length: 30 }, candidate);
      assert.ok(maxDiff(await a.scoreCandidates(ctx, cands), await b.scoreCandidates(ctx, cands)) < 1e-6);
      const many = concatBatches(a.info.layout, [encodeCandidates(a.info.layout, ctx, cands), encodeCandidates(a.info.layout, context(), cands.slice(0, 7)), encodeRecords(a.info.layout, records.slice(0, 9), { labels: false })]);
      assert.ok(maxDiff(await a.score(many), await b.score(many)) < 1e-6);
      // A context only a candidate carries (no context object) is still the row's own context.
      const inline = cands.map((c) => ({ ...c, ...ctx }));
      assert.ok(maxDiff(await a.scoreCandidates({}, inline), await b.scoreCandidates(ctx, cands)) < 1e-6);
    } finally {
      await a.release();
      await b.release();
    }
  });
}

test("the Ali-CCP reference model: its first layers multiply the 156 user columns per context and the 120 others per row", () => {
  const file = join(dir, "esmm-aliccp.onnx");
  exportInferenceModel(file, { model: "esmm", seed: 1 });
  const g = onnx.ModelProto.decode(readFileSync(file)).graph!;
  const gathers = new Map((g.node ?? []).filter((n) => n.opType === "Gather" && /\.0\.weight$/.test(n.input![0]!)).map((n) => [n.output![0]!, n]));
  const widths = (g.node ?? []).filter((n) => n.opType === "Gemm" && gathers.has(n.input![1]!)).map((n) => {
    const constant = (g.node ?? []).find((c) => c.output![0] === gathers.get(n.input![1]!)!.input![1]);
    return constant!.attribute![0]!.t!.dims![0];
  });
  assert.deepEqual(widths.map(Number).sort(), [120, 120, 156, 156]);
  assert.deepEqual((g.input ?? []).map((v) => v.name).sort(), ["context.ids.shared", "context.index", "ids.shared"]);
});
