/** A pool of sessions (ScorerOptions.sessions, --sessions): the same scores, bit for bit, in the same order as one session. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeRecords } from "../src/features/encode.js";
import { ShardWriter } from "../src/data/shard.js";
import type { Batch } from "../src/features/batch.js";
import type { Scores } from "../src/models/feeds.js";
import { Scorer } from "../src/scoring/scorer.js";
import { scoreFile } from "../src/scoring/score-file.js";
import { ModelSlot } from "../src/serve/batching.js";
import { ScoringServer } from "../src/serve/server.js";
import { MtlError } from "../src/errors.js";
import { CONTEXT_KEYS, exportScoringModel, scoringRecords } from "./helpers/scoring.js";

const bin = fileURLToPath(new URL("../../bin/mtl.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "mtl-pool-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const model = exportScoringModel(dir).file;
const records = scoringRecords(500, 11);

const COLUMNS = ["user", "age", "hist", "item", "tags", "tag_w", "price"];
const csvText = (rows: Record<string, unknown>[]) =>
  [COLUMNS.join(","), ...rows.map((r) => COLUMNS.map((c) => (Array.isArray(r[c]) ? (r[c] as unknown[]).join("|") : String(r[c]))).join(","))].join("\n") + "\n";

/** The float32 bits of every score, for exact comparison. */
const bits = (s: Scores) => [s.p_ctr, s.p_cvr, s.p_ctcvr].map((a) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length)));

async function withScorer<T>(sessions: number, fn: (s: Scorer) => Promise<T>): Promise<T> {
  const s = await Scorer.open(model, { sessions });
  try {
    return await fn(s);
  } finally {
    await s.release();
  }
}

async function writeShard(file: string): Promise<void> {
  const s = await Scorer.open(model, { worker: false });
  const layout = s.info.layout;
  await s.release();
  const w = await ShardWriter.create(file, layout.schema, { truth: false });
  // Row groups of 200, 200, 100: blocks of 48 cross their boundaries.
  for (const [a, b] of [[0, 200], [200, 400], [400, 500]] as const) await w.write(encodeRecords(layout, records.slice(a, b) as never, { labels: false }));
  await w.close();
}

test("scoreFile with 2 sessions writes the same bytes as with 1, from CSV and from a shard", async () => {
  const csv = join(dir, "in.csv");
  writeFileSync(csv, csvText(records));
  const shard = join(dir, "in.shard");
  await writeShard(shard);
  for (const input of [csv, shard]) {
    const outs: string[] = [];
    for (const sessions of [1, 2, 3]) {
      const out = join(dir, `p${sessions}.csv`);
      const r = await withScorer(sessions, (s) => scoreFile(s, { input, output: out, batchSize: 48 }));
      assert.equal(r.rows, 500);
      outs.push(readFileSync(out, "utf8"));
    }
    assert.equal(outs[0]!.split("\n").length, 502, "header, 500 rows, final newline");
    assert.equal(outs[1], outs[0], `${input}: 2 sessions`);
    assert.equal(outs[2], outs[0], `${input}: 3 sessions`);
  }
});

test("scoreFile writes blocks in input order however the runs finish", async () => {
  const csv = join(dir, "order.csv");
  writeFileSync(csv, csvText(records.slice(0, 200)));
  const real = await Scorer.open(model, { worker: false });
  try {
    const plain = join(dir, "order-1.csv");
    await scoreFile(real, { input: csv, output: plain, batchSize: 16 });
    // A scorer of 4 "sessions" whose runs finish in reverse order of starting within each wave.
    let started = 0;
    const shuffled = {
      info: real.info, sessionCount: 4,
      score: async (b: Batch) => {
        const k = started++;
        const s = await real.score(b);
        await new Promise((r) => setTimeout(r, 4 * (3 - (k % 4))));
        return s;
      },
    };
    const out = join(dir, "order-4.csv");
    const r = await scoreFile(shuffled as unknown as Scorer, { input: csv, output: out, batchSize: 16 });
    assert.equal(r.rows, 200);
    assert.equal(readFileSync(out, "utf8"), readFileSync(plain, "utf8"));
  } finally {
    await real.release();
  }
});

test("a bad row stops a pooled scoreFile as it stops one session: its line named, no output left", async () => {
  const bad = records.map((r, i) => (i === 333 ? { ...r, price: "cheap" } : r));
  const csv = join(dir, "bad.csv");
  writeFileSync(csv, csvText(bad));
  const out = join(dir, "bad-p.csv");
  const err = await withScorer(2, (s) => scoreFile(s, { input: csv, output: out, batchSize: 32 }).then(() => null, (e: unknown) => e));
  assert.ok(err instanceof MtlError, String(err));
  assert.match(err.format(), /bad\.csv:335.*price/);
  assert.equal(existsSync(out), false);
});

test("concurrent score() calls on 2 sessions return each batch's own scores, bit for bit as 1 session", async () => {
  const one = await Scorer.open(model, { worker: false });
  const batches = Array.from({ length: 24 }, (_, k) => encodeRecords(one.info.layout, scoringRecords(1 + ((k * 37) % 90), 200 + k) as never, { labels: false }));
  const want: ReturnType<typeof bits>[] = [];
  try {
    for (const b of batches) want.push(bits(await one.score(b)));
  } finally {
    await one.release();
  }
  await withScorer(2, async (pool) => {
    assert.equal(pool.sessionCount, 2);
    const got = await Promise.all(batches.map((b) => pool.score(b)));
    got.forEach((s, k) => assert.deepEqual(bits(s), want[k], `batch ${k}`));
  });
});

test("sessions must be a positive integer", async () => {
  for (const sessions of [0, -1, 1.5]) {
    await assert.rejects(Scorer.open(model, { sessions }), (e: unknown) => e instanceof MtlError && e.code === "E_USAGE" && /sessions must be a positive integer/.test(e.message));
  }
});

test("micro-batching over 2 sessions keeps isolation: a failing run fails only the request at fault", async () => {
  const real = await Scorer.open(model, { worker: false });
  try {
    const fake = {
      info: real.info, sessionCount: 2,
      score: async (b: Batch) => {
        if (b.ids.some((ids) => ids.includes(-7))) throw new Error("index out of bounds");
        return real.score(b);
      },
    };
    const slot = new ModelSlot(fake as unknown as Scorer, new Date(), 1 << 20);
    const batches = Array.from({ length: 12 }, (_, i) => {
      const batch = encodeRecords(real.info.layout, scoringRecords(3, 50 + i) as never, { labels: false });
      if (i === 7) batch.ids[0]![0] = -7;
      return batch;
    });
    const want = await Promise.all(batches.map((b, i) => (i === 7 ? null : real.score(b))));
    const settled = await Promise.allSettled(batches.map((b) => slot.score(b).promise));
    assert.deepEqual(settled.map((s) => s.status), settled.map((_, i) => (i === 7 ? "rejected" : "fulfilled")));
    settled.forEach((s, i) => {
      if (s.status === "fulfilled") assert.deepEqual(bits(s.value), bits(want[i]!), `request ${i}`);
    });
    await slot.drain();
    assert.ok(slot.runs < 12 + 4, `${slot.runs} runs`);
  } finally {
    await real.release();
  }
});

type Rec = Record<string, unknown>;
function request(rows: Rec[]): { context: Rec; candidates: Rec[] } {
  return {
    context: Object.fromEntries(CONTEXT_KEYS.map((k) => [k, rows[0]![k]])),
    candidates: rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !CONTEXT_KEYS.includes(k)))),
  };
}

test("a server with 2 sessions answers concurrent requests each with its own scores", async () => {
  const reqs = Array.from({ length: 60 }, (_, k) => request(scoringRecords(3 + (k % 11), 300 + k)));
  const one = await Scorer.open(model, { worker: false });
  const wants: number[][] = [];
  try {
    for (const q of reqs) wants.push(Array.from((await one.score(encodeRecords(one.info.layout, q.candidates.map((c) => ({ ...q.context, ...c })) as never, { labels: false }))).p_ctcvr));
  } finally {
    await one.release();
  }
  const server = await ScoringServer.start(model, { port: 0, sessions: 2, log: () => undefined });
  try {
    assert.equal(server.model.sessionCount, 2);
    const got = await Promise.all(reqs.map(async (q) => {
      const res = await fetch(`${server.url}/v1/score`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(q) });
      return { status: res.status, json: (await res.json()) as { scores: { index: number; p_ctcvr: number }[] } };
    }));
    got.forEach((r, k) => {
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.scores.map((s) => s.p_ctcvr), wants[k], `request ${k}`);
    });
    assert.equal(server.stats.rows, reqs.reduce((n, q) => n + q.candidates.length, 0));
  } finally {
    await server.close();
  }
  await assert.rejects(ScoringServer.start(model, { port: 0, sessions: 0 }), (e: unknown) => e instanceof MtlError && e.code === "E_USAGE" && /--sessions/.test(e.message));
});

test("mtl run --sessions 2 writes what --sessions 1 writes; --sessions 0 is one line", () => {
  const csv = join(dir, "cli.csv");
  writeFileSync(csv, csvText(records));
  const outs = [1, 2].map((n) => {
    const out = join(dir, `cli-${n}.csv`);
    const r = spawnSync(process.execPath, [bin, "run", model, "-i", csv, "-o", out, "--batch-size", "40", "--sessions", String(n)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(out, "utf8");
  });
  assert.equal(outs[1], outs[0]);
  const r = spawnSync(process.execPath, [bin, "run", model, "-i", csv, "-o", join(dir, "cli-0.csv"), "--sessions", "0"], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--sessions must be a positive integer, got 0/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
});
