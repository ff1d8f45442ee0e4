/** mtl/web's scorer (onnxruntime-web, wasm) gives the same scores as onnxruntime-node for the same raw records. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebScorer, MtlError, RequestError } from "../src/web/index.js";
import { encodeRecords } from "../src/features/encode.js";
import { Scorer } from "../src/scoring/scorer.js";
import { Graph, ops, encodeGraph } from "../src/index.js";
import { CONTEXT_KEYS, exportScoringModel, scoringRecords } from "./helpers/scoring.js";

const dir = mkdtempSync(join(tmpdir(), "mtl-web-scorer-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs f on a Node Scorer (this thread) of the file. */
async function withScorer<T>(file: string, f: (s: Scorer) => Promise<T>): Promise<T> {
  const s = await Scorer.open(file, { worker: false });
  try {
    return await f(s);
  } finally {
    await s.release();
  }
}

test("WebScorer (wasm) scores records and ranks candidates as onnxruntime-node does, within 1e-6", async () => {
  for (const opts of [{}, { fp16: true, maxPieceBytes: 200 }]) {
    const file = exportScoringModel(dir, "m.onnx", opts).file;
    const records = scoringRecords(64, 17);
    const node = await Scorer.open(file, { worker: false });
    const want = await node.score(encodeRecords(node.info.layout, records as never, { labels: false }));
    await node.release();
    const web = await WebScorer.load(readFileSync(file));
    assert.equal(web.device, "wasm");
    const got = await web.scoreRecords(records as never);
    for (const p of ["p_ctr", "p_cvr", "p_ctcvr"] as const) got[p].forEach((v, i) => assert.ok(Math.abs(v - want[p][i]!) <= 1e-6, `${p}[${i}] ${v} vs ${want[p][i]}`));
    const context = Object.fromEntries(CONTEXT_KEYS.map((k) => [k, records[0]![k]]));
    const candidates = records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !CONTEXT_KEYS.includes(k))));
    const ranked = await web.rank(context as never, candidates as never);
    for (let i = 1; i < ranked.length; i++) assert.ok(ranked[i - 1]!.p_ctcvr >= ranked[i]!.p_ctcvr);
    assert.equal(ranked.length, 64);
    // The same request body ranks in the browser as the Node Scorer (and so mtl serve) ranks it.
    const answer = await web.scoreRequest({ context, candidates, rank: true, top_k: 5 });
    assert.equal(answer.ranked_by, "p_ctcvr");
    const nodeRanked = await withScorer(file, (s) => s.rank(context as never, candidates as never, "p_ctcvr", 5));
    assert.deepEqual(answer.scores.map((r) => r.index), nodeRanked.map((r) => r.index));
    answer.scores.forEach((r, i) => assert.ok(Math.abs(r.score! - nodeRanked[i]!.score!) <= 1e-6));
    await assert.rejects(web.scoreRequest({ candidates: [] }), (e: unknown) => e instanceof RequestError && e.code === "bad_request");
    await web.release();
  }
});

test("WebScorer refuses a plain ONNX model and a file that is not ONNX, saying why", async () => {
  const g = new Graph({ name: "plain" });
  g.output(ops.Relu(g.input("x", "float32", [2])), "y");
  await assert.rejects(WebScorer.load(encodeGraph(g), { source: "plain.onnx" }), (e: unknown) => e instanceof MtlError && e.code === "E_NOT_MTL" && /plain\.onnx/.test(e.format()));
  writeFileSync(join(dir, "x"), "");
  await assert.rejects(WebScorer.load(new TextEncoder().encode("<html>not a model</html>")), (e: unknown) => e instanceof MtlError && /not an ONNX model/.test(e.message));
});

test("encodeCandidates (context encoded once, copied) gives the rows encodeRecords gives for the merged records", async () => {
  const { encodeCandidates } = await import("../src/features/encode.js");
  const { layoutOf } = await import("../src/features/batch.js");
  const { scoringSchema } = await import("./helpers/scoring.js");
  const layout = layoutOf(scoringSchema());
  const records = scoringRecords(12, 23);
  const context = { user: "u5", hist: ["i1", "i2", "i3", "i4"], age: 4, price: 12.5 };
  // Candidates carry item features; some override age (so age is not shared), none give user or hist.
  const candidates = records.map((r, i) => {
    const c: Record<string, unknown> = { item: r.item, tags: r.tags, tag_w: r.tag_w };
    if (i % 3 === 1) c["age"] = i % 10;
    if (i % 4 === 2) c["price"] = i;
    return c;
  });
  const fast = encodeCandidates(layout, context as never, candidates as never);
  const merged = encodeRecords(layout, candidates.map((c) => ({ ...context, ...c })) as never, { labels: false });
  assert.equal(fast.size, merged.size);
  assert.deepEqual(fast.ids, merged.ids);
  assert.deepEqual(fast.weights, merged.weights);
  assert.deepEqual(fast.dense, merged.dense);
  // A bad value in a later candidate names that candidate; a missing one too.
  assert.throws(() => encodeCandidates(layout, context as never, [candidates[0], { ...candidates[1], price: "x" }] as never), (e: unknown) => e instanceof MtlError && e.where.line === 2 && e.where.field === "price");
  assert.throws(() => encodeCandidates(layout, { user: "u1", hist: [] } as never, [candidates[0], { item: "i1", tags: [], tag_w: [] }] as never), (e: unknown) => e instanceof MtlError && e.where.line === 1 && e.where.field === "age");
});
