/** The pieces of `mtl serve` shared with mtl/web, without HTTP: the request contract and ranking. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { layoutOf } from "../src/features/batch.js";
import { encodeRecords } from "../src/features/encode.js";
import { parseFormula } from "../src/serve/formula.js";
import { rankCandidates, rankName } from "../src/serve/ranking.js";
import { encodeScoreRequest, parseScoreRequest, RequestError, validateScoreRequest } from "../src/serve/request.js";
import { scoringSchema } from "./helpers/scoring.js";

const schema = scoringSchema();
const ctx = { user: "u1", age: 3, hist: ["i1", "i2"] };
const cand = (item: string, extra: Record<string, unknown> = {}) => ({ item, tags: ["sale"], tag_w: [1], price: 10, ...extra });

function refused(body: unknown, code: string, message: RegExp, limits = {}): void {
  assert.throws(() => validateScoreRequest(body, schema, limits), (e: unknown) => e instanceof RequestError && e.status === 400 && e.code === code && message.test(e.message), `${code} ${message}`);
}

test("the request contract refuses each bad request with a code and the key, candidate and field at fault", () => {
  assert.throws(() => parseScoreRequest("{nope", schema), (e: unknown) => e instanceof RequestError && e.code === "bad_json");
  refused([], "bad_request", /must be a JSON object/);
  refused({ candidates: [cand("i1")], colour: 1 }, "bad_request", /unknown key 'colour'/);
  refused({ context: [1], candidates: [cand("i1")] }, "bad_request", /'context' must be an object/);
  refused({ context: ctx, candidates: [] }, "bad_request", /non-empty list/);
  refused({ context: ctx, candidates: [cand("a"), cand("b")] }, "too_many_candidates", /2 candidates; the limit is 1/, { maxCandidates: 1 });
  refused({ context: ctx, candidates: [cand("a")], rank: "p_nope" }, "bad_request", /'rank' is true/);
  refused({ context: ctx, candidates: [cand("a")], top_k: 2 }, "bad_request", /'top_k' needs 'rank'/);
  refused({ context: ctx, candidates: [cand("a")], rank: true, top_k: 0 }, "bad_request", /positive integer/);
  refused({ context: { ...ctx, age: { x: 1 } }, candidates: [cand("a")] }, "mistyped_feature", /context\.age: .* got an object/);
  refused({ context: ctx, candidates: [cand("a"), cand("b", { price: [1, {}] })] }, "mistyped_feature", /candidates\[1\]\.price: .* a list with an item/);
  refused({ context: ctx, candidates: [cand("a", { user: "u2" })] }, "bad_request", /candidates\[0\]\.user is also given in context/);
  refused({ context: ctx, candidates: ["x"] }, "bad_request", /candidates\[0\] must be an object/);
  refused({ context: ctx, candidates: [cand("a", { bid: 2 }), cand("b")], rank: true }, "bad_request", /formula 'p_ctcvr \* bid' needs a number 'bid'.*candidates\[1\] has undefined/, { formula: parseFormula("p_ctcvr * bid") });
});

test("a valid request: rank true means the given formula, p_ctcvr by default; encoding errors name their owner", () => {
  const ok = validateScoreRequest({ context: ctx, candidates: [cand("a")], rank: true, top_k: 1 }, schema);
  assert.equal(ok.rank, "p_ctcvr");
  assert.equal(ok.topK, 1);
  assert.equal(validateScoreRequest({ candidates: [cand("a")], rank: "p_cvr" }, schema).rank, "p_cvr");
  const layout = layoutOf(schema);
  const batch = encodeScoreRequest(layout, ok);
  const whole = encodeRecords(layout, [{ ...ctx, ...cand("a") }], { labels: false });
  assert.deepEqual(batch.ids.map((a) => Array.from(a)), whole.ids.map((a) => Array.from(a)), "context ∪ candidate encodes as the whole record");
  const missing = validateScoreRequest({ context: { user: "u1", hist: [] }, candidates: [cand("a")] }, schema);
  assert.throws(() => encodeScoreRequest(layout, missing), (e: unknown) => e instanceof RequestError && e.code === "missing_feature" && /candidates\[0\]: the feature 'age'/.test(e.message));
  const bad = validateScoreRequest({ context: ctx, candidates: [cand("a"), cand("b", { tag_w: [1, 2] })] }, schema);
  assert.throws(() => encodeScoreRequest(layout, bad), (e: unknown) => e instanceof RequestError && e.code === "bad_feature" && /^candidates\[1\]\.tag_w: .*1 ids but 2 weights/.test(e.message));
});

test("ranking: request order unranked; best first with ties by position; formulas read candidate fields; top_k cuts", () => {
  const scores = { p_ctr: Float32Array.of(0.5, 0.25, 0.5), p_cvr: Float32Array.of(0.5, 1, 0.5), p_ctcvr: Float32Array.of(0.25, 0.25, 0.25) };
  const candidates = [{ bid: 1 }, { bid: 4 }, { bid: 2 }];
  assert.deepEqual(rankCandidates(scores, candidates, null).map((r) => [r.index, r.score]), [[0, undefined], [1, undefined], [2, undefined]]);
  assert.deepEqual(rankCandidates(scores, candidates, "p_ctcvr").map((r) => r.index), [0, 1, 2], "equal scores keep request order");
  assert.deepEqual(rankCandidates(scores, candidates, "p_ctr").map((r) => r.index), [0, 2, 1]);
  const formula = parseFormula("p_ctcvr * bid");
  const ranked = rankCandidates(scores, candidates, formula, 2);
  assert.deepEqual(ranked.map((r) => [r.index, r.score]), [[1, 1], [2, 0.5]]);
  assert.equal(rankName(formula), "p_ctcvr * bid");
  assert.equal(rankName("p_cvr"), "p_cvr");
});

test("the Node Scorer ranks a context's candidates as the server does, by a prediction or a formula, and names a missing formula field", async () => {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { Scorer } = await import("../src/scoring/scorer.js");
  const { MtlError } = await import("../src/errors.js");
  const { exportScoringModel } = await import("./helpers/scoring.js");
  const dir = mkdtempSync(join(tmpdir(), "mtl-scorer-"));
  const scorer = await Scorer.open(exportScoringModel(dir).file, { worker: false });
  try {
    const candidates = ["i1", "i2", "i3", "i4"].map((item, i) => cand(item, { bid: i + 1 }));
    const scores = await scorer.scoreCandidates(ctx, candidates);
    const records = await scorer.scoreRecords(candidates.map((c) => ({ ...ctx, ...c })));
    assert.deepEqual(Array.from(scores.p_ctcvr), Array.from(records.p_ctcvr), "context ∪ candidate scores as the merged record");
    assert.deepEqual(await scorer.rank(ctx, candidates), rankCandidates(scores, candidates, "p_ctcvr"));
    const formula = parseFormula("p_ctcvr * bid");
    assert.deepEqual(await scorer.rank(ctx, candidates, formula, 2), rankCandidates(scores, candidates, formula, 2));
    await assert.rejects(scorer.rank(ctx, [cand("i1")], formula), (e: unknown) => e instanceof MtlError && e.code === "E_USAGE" && /needs a number 'bid'.*candidates\[0\] has undefined/.test(e.message));
  } finally {
    await scorer.release();
    rmSync(dir, { recursive: true, force: true });
  }
});
