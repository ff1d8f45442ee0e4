/** `mtl run` end to end: scores equal the library's, bad rows strict or skipped with line numbers, clear errors. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeRecords } from "../src/features/encode.js";
import { defaultAliccpSchema } from "../src/features/schema.js";
import { ShardWriter } from "../src/data/shard.js";
import { Scorer } from "../src/scoring/scorer.js";
import { exportScoringModel, scoringRecords } from "./helpers/scoring.js";

const bin = fileURLToPath(new URL("../../bin/mtl.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "mtl-run-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const model = exportScoringModel(dir).file;
const records = scoringRecords(300, 5);

function mtl(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COLUMNS = ["user", "age", "hist", "item", "tags", "tag_w", "price"];
function csv(rows: Record<string, unknown>[]): string {
  const cell = (v: unknown) => (Array.isArray(v) ? v.join("|") : String(v));
  return [COLUMNS.join(","), ...rows.map((r) => COLUMNS.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}

async function expected(rows: Record<string, unknown>[]) {
  const s = await Scorer.open(model, { worker: false });
  try {
    return await s.score(encodeRecords(s.info.layout, rows as never, { labels: false }));
  } finally {
    await s.release();
  }
}

function assertOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
}

test("mtl run scores a CSV file (in blocks) exactly as the library scores the same records", async () => {
  const input = join(dir, "in.csv");
  writeFileSync(input, csv(records));
  const out = join(dir, "p.csv");
  const r = mtl("run", model, "--input", input, "--output", out, "--batch-size", "64");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /scored 300 rows with esmm in [\d.]+ s: [\d,]+ rows\/s/);
  const lines = readFileSync(out, "utf8").trim().split("\n");
  assert.equal(lines[0], "line,p_ctr,p_cvr,p_ctcvr");
  const want = await expected(records);
  lines.slice(1).forEach((l, i) => {
    const [line, ...p] = l.split(",").map(Number);
    assert.equal(line, i + 2, "input line numbers (the header is line 1)");
    [want.p_ctr, want.p_cvr, want.p_ctcvr].forEach((w, k) => assert.ok(Math.abs(p[k]! - w[i]!) <= 1e-8 * Math.max(1, w[i]!), `row ${i} p${k}: ${p[k]} vs ${w[i]}`));
  });
});

test("mtl run reads a shard (row groups split into blocks) and scores it exactly as the library scores the same records", async () => {
  const scorer = await Scorer.open(model, { worker: false });
  const layout = scorer.info.layout;
  await scorer.release();
  const file = join(dir, "rows.shard");
  const w = await ShardWriter.create(file, layout.schema, { truth: false });
  // Two row groups of 150: blocks of 64 rows cross the boundary between them.
  await w.write(encodeRecords(layout, records.slice(0, 150) as never, { labels: false }));
  await w.write(encodeRecords(layout, records.slice(150) as never, { labels: false }));
  await w.close();
  const out = join(dir, "shard-p.csv");
  const r = mtl("run", model, "--input", file, "--output", out, "--batch-size", "64");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /scored 300 rows with esmm/);
  const lines = readFileSync(out, "utf8").trim().split("\n").slice(1);
  const want = await expected(records);
  assert.equal(lines.length, 300);
  lines.forEach((l, i) => {
    const [line, ...p] = l.split(",").map(Number);
    assert.equal(line, i + 1, "the row's position in the shard");
    [want.p_ctr, want.p_cvr, want.p_ctcvr].forEach((x, k) => assert.ok(Math.abs(p[k]! - x[i]!) <= 1e-8 * Math.max(1, x[i]!), `row ${i} p${k}: ${p[k]} vs ${x[i]}`));
  });
  // A shard of another schema: one line naming the file, and no output.
  const other = join(dir, "aliccp.shard");
  const wo = await ShardWriter.create(other, defaultAliccpSchema(), { truth: false });
  await wo.close();
  assertOneLineError(mtl("run", model, "-i", other, "-o", join(dir, "other.csv")), /aliccp\.shard: schema hash mismatch/);
  assert.equal(existsSync(join(dir, "other.csv")), false);
});

test("mtl run reads JSONL and writes JSONL", async () => {
  const input = join(dir, "in.jsonl");
  writeFileSync(input, records.slice(0, 20).map((r) => JSON.stringify(r)).join("\n") + "\n");
  const out = join(dir, "p.jsonl");
  const r = mtl("run", model, "-i", input, "-o", out);
  assert.equal(r.code, 0, r.stderr);
  const rows = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { line: number; p_ctcvr: number });
  const want = await expected(records.slice(0, 20));
  assert.equal(rows.length, 20);
  rows.forEach((row, i) => {
    assert.equal(row.line, i + 1);
    assert.ok(Math.abs(row.p_ctcvr - want.p_ctcvr[i]!) < 1e-8);
  });
});

test("a bad row stops mtl run with its file, line and field, and leaves no output behind", () => {
  const rows = records.slice(0, 10).map((r) => ({ ...r }));
  rows[2]!.price = "abc" as never;
  const input = join(dir, "bad.csv");
  writeFileSync(input, csv(rows));
  const out = join(dir, "bad-out.csv");
  assertOneLineError(mtl("run", model, "-i", input, "-o", out), /^mtl: .*bad\.csv:4: price: dense value not a finite number: 'abc'/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes("partial")), []);
});

test("--skip-bad scores the good rows, and names the skipped ones by reason and line", () => {
  const rows = records.slice(0, 10).map((r) => ({ ...r }));
  rows[2]!.price = "abc" as never;
  rows[6]!.age = 42; // vocab_size 10
  const input = join(dir, "bad2.csv");
  writeFileSync(input, csv(rows) + "oops,only,three\n");
  const out = join(dir, "skipped.csv");
  const r = mtl("run", model, "-i", input, "-o", out, "--skip-bad");
  assert.equal(r.code, 0, r.stderr);
  const lines = readFileSync(out, "utf8").trim().split("\n").slice(1).map((l) => Number(l.split(",")[0]));
  assert.deepEqual(lines, [2, 3, 5, 6, 7, 9, 10, 11]);
  assert.match(r.stdout, /scored 8 rows/);
  assert.match(r.stdout, /bad_dense: 1 \(first: .*bad2\.csv:4: price/);
  assert.match(r.stdout, /id_out_of_range: 1 \(first: .*bad2\.csv:8: age/);
  assert.match(r.stdout, /column_count: 1 \(first: .*bad2\.csv:12/);
});

test("mtl run: missing columns, empty input, a non-mtl model, a missing model, an unwritable output: one line each, exit 1", () => {
  const noItem = join(dir, "noitem.csv");
  writeFileSync(noItem, "user,age,hist,tags,tag_w,price\nu1,3,,,,1\n");
  assertOneLineError(mtl("run", model, "-i", noItem, "-o", join(dir, "x.csv")), /noitem\.csv:1: item: missing column: the header has no column 'item'/);
  const empty = join(dir, "empty.csv");
  writeFileSync(empty, "");
  assertOneLineError(mtl("run", model, "-i", empty, "-o", join(dir, "x.csv")), /empty\.csv: empty file/);
  const notModel = join(dir, "notes.onnx");
  writeFileSync(notModel, "hello\n");
  assertOneLineError(mtl("run", notModel, "-i", noItem, "-o", join(dir, "x.csv")), /notes\.onnx: not an ONNX model/);
  assertOneLineError(mtl("run", join(dir, "nope.onnx"), "-i", noItem, "-o", join(dir, "x.csv")), /nope\.onnx: cannot read the model: no such file/);
  const input = join(dir, "ok.csv");
  writeFileSync(input, csv(records.slice(0, 3)));
  // Missing folders are created; a folder that cannot be (a file is in the way) is one line.
  assertOneLineError(mtl("run", model, "-i", input, "-o", join(input, "p.csv")), /ok\.csv\/p\.csv: cannot create the output folder .*ok\.csv: (ENOTDIR|EEXIST)/);
  assert.equal(existsSync(join(dir, "x.csv")), false);
});
