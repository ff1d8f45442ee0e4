/** mtl serve: scores and ranking, micro-batching, every bad-input case, timeout, reload and graceful close. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeRecords } from "../src/features/encode.js";
import { Scorer } from "../src/scoring/scorer.js";
import { ScoringServer } from "../src/serve/server.js";
import { parseFormula } from "../src/serve/formula.js";
import { MtlError } from "../src/errors.js";
import { CONTEXT_KEYS, exportScoringModel, scoringRecords } from "./helpers/scoring.js";

const dir = mkdtempSync(join(tmpdir(), "mtl-serve-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const modelA = exportScoringModel(dir, "a.onnx", { seed: 1 }).file;
const modelB = exportScoringModel(dir, "b.onnx", { seed: 2 }).file;

type Rec = Record<string, unknown>;
function request(records: Rec[], extra: Rec = {}): { context: Rec; candidates: Rec[] } & Rec {
  const context = Object.fromEntries(CONTEXT_KEYS.map((k) => [k, records[0]![k]]));
  const candidates = records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !CONTEXT_KEYS.includes(k))));
  return { context, candidates, ...extra };
}

async function post(url: string, body: unknown, raw = false): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/v1/score`, { method: "POST", headers: { "content-type": "application/json" }, body: raw ? (body as string) : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function reference(file: string, req: { context: Rec; candidates: Rec[] }) {
  const s = await Scorer.open(file, { worker: false });
  try {
    return await s.score(encodeRecords(s.info.layout, req.candidates.map((c) => ({ ...req.context, ...c })) as never, { labels: false }));
  } finally {
    await s.release();
  }
}

test("rank formulas parse into arithmetic over predictions and candidate fields, and bad ones are refused", () => {
  const f = parseFormula("p_ctcvr * bid + 0.5 * p_ctr^2 - (1 - p_cvr) / 4");
  assert.deepEqual(f.fields, ["bid"]);
  const v: Record<string, number> = { p_ctcvr: 0.1, bid: 3, p_ctr: 0.4, p_cvr: 0.25 };
  assert.ok(Math.abs(f.evaluate((n) => v[n]!) - (0.3 + 0.08 - 0.1875)) < 1e-12);
  for (const bad of ["", "p_ctr *", "(p_ctr", "p_ctr $ 2", "p_ctr p_cvr"]) assert.throws(() => parseFormula(bad), MtlError, bad);
});

test("POST /v1/score scores each candidate as context + candidate, as the library does; ranks by pCTCVR or the formula", async () => {
  const server = await ScoringServer.start(modelA, { port: 0, rankFormula: "p_ctcvr * bid" });
  try {
    const records = scoringRecords(30, 9).map((r) => ({ ...r, user: "u7", age: 3, hist: ["i1", "i2"] }));
    const req = request(records);
    const want = await reference(modelA, req);
    const r = await post(server.url, req);
    assert.equal(r.status, 200);
    assert.equal(r.json.model, "esmm");
    assert.equal(r.json.ranked_by, null);
    r.json.scores.forEach((s: any, i: number) => {
      assert.equal(s.index, i);
      assert.equal(s.p_ctr, want.p_ctr[i]);
      assert.equal(s.p_cvr, want.p_cvr[i]);
      assert.equal(s.p_ctcvr, want.p_ctcvr[i]);
    });
    const ranked = await post(server.url, { ...req, rank: "p_ctcvr", top_k: 5 });
    assert.equal(ranked.json.ranked_by, "p_ctcvr");
    const order = [...want.p_ctcvr.keys()].sort((a, b) => want.p_ctcvr[b]! - want.p_ctcvr[a]!).slice(0, 5);
    assert.deepEqual(ranked.json.scores.map((s: any) => s.index), order);
    const bids = req.candidates.map((_, i) => ({ ...req.candidates[i], bid: (i % 7) + 1 }));
    const byRevenue = await post(server.url, { ...req, candidates: bids, rank: true });
    assert.equal(byRevenue.json.ranked_by, "p_ctcvr * bid");
    const revenue = (i: number) => want.p_ctcvr[i]! * ((i % 7) + 1);
    assert.deepEqual(byRevenue.json.scores.map((s: any) => s.index), [...want.p_ctcvr.keys()].sort((a, b) => revenue(b) - revenue(a) || a - b));
    assert.ok(Math.abs(byRevenue.json.scores[0].score - revenue(byRevenue.json.scores[0].index)) < 1e-12);
  } finally {
    await server.close();
  }
});

test("concurrent requests are micro-batched into fewer session runs, each answered with its own rows", async () => {
  const server = await ScoringServer.start(modelA, { port: 0 });
  try {
    const reqs = Array.from({ length: 40 }, (_, k) => request(scoringRecords(5 + (k % 7), 100 + k)));
    const wants = await Promise.all(reqs.map((q) => reference(modelA, q)));
    const got = await Promise.all(reqs.map((q) => post(server.url, q)));
    got.forEach((r, k) => {
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.scores.map((s: any) => s.p_ctcvr), Array.from(wants[k]!.p_ctcvr));
    });
    assert.ok(server.stats.runs < 40, `${server.stats.runs} runs for 40 requests`);
    assert.equal(server.stats.rows, reqs.reduce((n, q) => n + q.candidates.length, 0));
  } finally {
    await server.close();
  }
});

test("bad requests get 400/404/405/413 with the reason, and the server keeps serving", async () => {
  const server = await ScoringServer.start(modelA, { port: 0, maxBodyBytes: 4096, maxCandidates: 10 });
  try {
    const good = request(scoringRecords(3, 4));
    const cases: [unknown, boolean, number, string, RegExp][] = [
      ["{not json", true, 400, "bad_json", /invalid JSON/],
      ["[1, 2]", true, 400, "bad_request", /must be a JSON object/],
      [{ context: good.context }, false, 400, "bad_request", /'candidates' must be a non-empty list/],
      [{ ...good, candidates: [] }, false, 400, "bad_request", /non-empty list/],
      [{ ...good, candidates: Array(11).fill(good.candidates[0]) }, false, 400, "too_many_candidates", /11 candidates; the limit is 10/],
      [{ ...good, candidates: [good.candidates[0], 7] }, false, 400, "bad_request", /candidates\[1\] must be an object/],
      [{ ...good, context: "u1" }, false, 400, "bad_request", /'context' must be an object/],
      [{ ...good, extra: 1 }, false, 400, "bad_request", /unknown key 'extra'/],
      [{ ...good, candidates: [{ ...good.candidates[0], item: { id: 1 } }] }, false, 400, "mistyped_feature", /candidates\[0\]\.item: expected a string, a number, a boolean or a list of them, got an object/],
      [{ ...good, candidates: [{ ...good.candidates[0], tags: ["a", ["b"]] }] }, false, 400, "mistyped_feature", /candidates\[0\]\.tags: .*a list with an item/],
      [{ ...good, context: { ...good.context, hist: { a: 1 } } }, false, 400, "mistyped_feature", /context\.hist: .*got an object/],
      [{ ...good, candidates: [Object.fromEntries(Object.entries(good.candidates[0]!).filter(([k]) => k !== "item"))] }, false, 400, "missing_feature", /candidates\[0\]: the feature 'item' is in neither the candidate nor the context/],
      [{ ...good, context: { ...good.context, age: 99 } }, false, 400, "bad_feature", /context\.age: id >= vocabulary size: id 99/],
      [{ ...good, candidates: [{ ...good.candidates[0], price: "cheap" }] }, false, 400, "bad_feature", /candidates\[0\]\.price: dense value not a finite number/],
      [{ ...good, candidates: [{ ...good.candidates[0], tag_w: [1] , tags: ["a", "b"] }] }, false, 400, "bad_feature", /2 ids but 1 weights/],
      [{ ...good, candidates: [{ ...good.candidates[0], user: "u2" }] }, false, 400, "bad_request", /candidates\[0\]\.user is also given in context/],
      [{ ...good, rank: "price" }, false, 400, "bad_request", /'rank' is true/],
      [{ ...good, top_k: 2 }, false, 400, "bad_request", /'top_k' needs 'rank'/],
      [{ ...good, rank: true, top_k: 0 }, false, 400, "bad_request", /'top_k' must be a positive integer/],
      [{ ...good, candidates: Array(10).fill({ ...good.candidates[0], hist: "x".repeat(500) }) }, false, 413, "body_too_large", /limit of 4096 bytes|limit is 4096/],
    ];
    for (const [body, raw, status, code, message] of cases) {
      const r = await post(server.url, body, raw);
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)} -> ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, code);
      assert.match(r.json.error.message, message);
    }
    assert.equal((await fetch(`${server.url}/v1/score`)).status, 405);
    assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    // A body streamed without a content-length is cut off at the limit too.
    const chunked = await fetch(`${server.url}/v1/score`, { method: "POST", headers: { "content-type": "application/json" }, body: new Blob(["x".repeat(10_000)]).stream(), duplex: "half" } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const ok = await post(server.url, good);
    assert.equal(ok.status, 200);
    const meta = await (await fetch(`${server.url}/v1/model`)).json() as any;
    assert.equal(meta.model, "esmm");
    assert.equal(meta.schema.name, "shop");
    assert.deepEqual(meta.outputs, ["p_ctr", "p_cvr", "p_ctcvr"]);
  } finally {
    await server.close();
  }
});

test("a request not scored within the timeout gets 503, and the server goes on", async () => {
  const slow = exportScoringModel(dir, "slow.onnx", { config: { towerSizes: [512, 512] } }).file;
  const server = await ScoringServer.start(slow, { port: 0, timeoutMs: 1, maxCandidates: 2000 });
  try {
    const big = request(scoringRecords(2000, 3));
    const r = await post(server.url, big);
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, "timeout");
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  } finally {
    await server.close();
  }
});

test("reload swaps in a new model file without failing a request; a broken file keeps the old model", async () => {
  const live = join(dir, "live.onnx");
  copyFileSync(modelA, live);
  const server = await ScoringServer.start(live, { port: 0 });
  try {
    const req = request(scoringRecords(8, 21));
    const [wantA, wantB] = [await reference(modelA, req), await reference(modelB, req)];
    copyFileSync(modelB, live);
    const during = Array.from({ length: 30 }, () => post(server.url, req));
    await server.reload();
    const results = await Promise.all(during);
    for (const r of results) {
      assert.equal(r.status, 200);
      const p = r.json.scores.map((s: any) => s.p_ctcvr);
      assert.ok(JSON.stringify(p) === JSON.stringify(Array.from(wantA.p_ctcvr)) || JSON.stringify(p) === JSON.stringify(Array.from(wantB.p_ctcvr)));
    }
    assert.deepEqual((await post(server.url, req)).json.scores.map((s: any) => s.p_ctcvr), Array.from(wantB.p_ctcvr));
    writeFileSync(live, "broken");
    await assert.rejects(server.reload(), MtlError);
    assert.deepEqual((await post(server.url, req)).json.scores.map((s: any) => s.p_ctcvr), Array.from(wantB.p_ctcvr));
  } finally {
    await server.close();
  }
});

test("close() answers every request in flight, then stops listening", async () => {
  const server = await ScoringServer.start(modelA, { port: 0 });
  const url = server.url;
  const req = request(scoringRecords(50, 2));
  const inFlight = Array.from({ length: 20 }, () => post(url, req));
  // Close once the server has received all 20 (a request still in the client is not in flight).
  while (server.received < 20) await new Promise((r) => setTimeout(r, 1));
  await server.close();
  const results = await Promise.allSettled(inFlight);
  const answered = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<{ status: number }>[];
  // Every request sent before close() is answered, with 200.
  assert.equal(answered.length, 20, JSON.stringify(results.filter((r) => r.status === "rejected")));
  for (const r of answered) assert.equal(r.value.status, 200);
  await assert.rejects(fetch(`${url}/healthz`));
});

test("mtl serve: SIGHUP reloads the file, SIGTERM drains and exits 0", async () => {
  const live = join(dir, "cli.onnx");
  copyFileSync(modelA, live);
  const bin = fileURLToPath(new URL("../../bin/mtl.js", import.meta.url));
  const child = spawn(process.execPath, [bin, "serve", live, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const t = setInterval(() => {
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m) { clearInterval(t); resolve(m[1]!); }
      }, 20);
      void exited.then(() => { clearInterval(t); reject(new Error(`exited: ${stderr}`)); });
    });
    const req = request(scoringRecords(4, 8));
    const wantB = await reference(modelB, req);
    copyFileSync(modelB, live);
    child.kill("SIGHUP");
    for (let i = 0; i < 200 && !/reloaded/.test(stderr); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(stderr, /reloaded/);
    assert.deepEqual((await post(url, req)).json.scores.map((s: any) => s.p_ctcvr), Array.from(wantB.p_ctcvr));
    const pending = post(url, request(scoringRecords(1000, 8)));
    await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGTERM");
    assert.equal((await pending).status, 200);
    assert.equal(await exited, 0);
    assert.match(stderr, /SIGTERM: finishing requests in flight[\s\S]*stopped/);
  } finally {
    child.kill("SIGKILL");
  }
});
