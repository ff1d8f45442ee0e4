import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readCsv, readJsonl, splitCsvLine } from "../src/data/tabular.js";
import { validateSchema } from "../src/features/schema.js";
import { fnv1a32 } from "../src/util/hash.js";
import { MtlError } from "../src/errors.js";
import { readAll, SHARED_DATA, tempDir, writeTemp } from "./helpers/data.js";

const schema = validateSchema({
  name: "tab",
  features: [
    { name: "user", kind: "id", hash_buckets: 1000, table: "users", dim: 4 },
    { name: "item", kind: "id", vocab_size: 100, table: "items", dim: 4 },
    { name: "tags", kind: "ids", hash_buckets: 50, max_len: 2, table: "items" },
    { name: "price", kind: "dense", transform: "log1p" },
    { name: "score", kind: "dense", size: 2 },
  ],
  labels: { click: "click", conversion: "buy" },
  sample_id: "sid",
  user_id: "user",
});

const bucket = (s: string, n: number) => 1 + (fnv1a32(s) % n);

test("splitCsvLine: plain cells, RFC 4180 quotes, an unclosed quote is an error", () => {
  assert.deepEqual(splitCsvLine("a,b,,c", ","), ["a", "b", "", "c"]);
  assert.deepEqual(splitCsvLine('"a,b",c,"say ""hi""",""', ","), ["a,b", "c", 'say "hi"', ""]);
  assert.deepEqual(splitCsvLine("a\tb", "\t"), ["a", "b"]);
  assert.throws(() => splitCsvLine('a,"b', ",", 4), (e: unknown) => e instanceof MtlError && /unclosed quote/.test(e.message) && e.where.line === 4);
});

test("CSV and JSONL: exact rows (hashed strings, integer ids, lists truncated to max_len, dense values)", async () => {
  const dir = tempDir();
  const csv = writeTemp(dir, "a.csv", [
    "sid,click,buy,user,item,tags,price,score,extra",
    `s1,1,0,alice,7,red|blue|green,${Math.E - 1},0.5|-2,zzz`,
    `s2,0,0,bob,0,,0,1|2,`,
    `"s3",1,1,"carol, jr",99,"x",1e0,3|4,`,
  ].join("\n") + "\n");
  const jsonl = writeTemp(dir, "a.jsonl", [
    JSON.stringify({ sid: "s1", click: 1, buy: 0, user: "alice", item: 7, tags: ["red", "blue", "green"], price: Math.E - 1, score: [0.5, -2], extra: { a: 1 } }),
    JSON.stringify({ sid: "s2", click: 0, buy: 0, user: "bob", item: 0, tags: [], price: 0, score: [1, 2] }),
    JSON.stringify({ sid: "s3", click: 1, buy: 1, user: "carol, jr", item: "99", tags: "x", price: 1, score: [3, 4] }),
  ].join("\n") + "\n");
  const want = {
    users: [bucket("alice", 1000), bucket("bob", 1000), bucket("carol, jr", 1000)],
    items: [7, bucket("red", 50), bucket("blue", 50), 0, 0, 0, 99, bucket("x", 50), 0],
    dense: [1, 0.5, -2, 0, 1, 2, Math.log1p(1), 3, 4].map(Math.fround),
    click: [1, 0, 1], buy: [0, 0, 1],
    keys: ["s1", "s2", "s3"].map((s) => fnv1a32(s)),
  };
  for (const [name, reader] of [["csv", readCsv(csv, { schema, rawIdCounts: true })], ["jsonl", readJsonl(jsonl, { schema, rawIdCounts: true })]] as const) {
    const [b] = await readAll(reader);
    assert.equal(b!.size, 3, name);
    assert.deepEqual(Array.from(b!.ids[0]!), want.users, name);
    assert.deepEqual(Array.from(b!.ids[1]!), want.items, name);
    assert.deepEqual(Array.from(b!.dense), want.dense, name);
    assert.deepEqual(Array.from(b!.click), want.click, name);
    assert.deepEqual(Array.from(b!.conversion), want.buy, name);
    assert.deepEqual(Array.from(b!.sampleKey), want.keys, name);
    assert.deepEqual(Array.from(b!.userId!), want.users, name);
    assert.deepEqual(Array.from(b!.rawIdCounts!), [1, 1, 3, 1, 1, 0, 1, 1, 1], name);
  }
});

test("CSV ground-truth columns are read when the header has them, and must be probabilities", async () => {
  const withTruth = validateSchema({ features: [{ name: "u", kind: "id", hash_buckets: 10 }], truth: {} });
  const dir = tempDir();
  const ok = writeTemp(dir, "t.csv", "click,conversion,u,true_ctr,true_cvr,conversion_potential\n1,0,a,0.5,0.25,1\n");
  const [b] = await readAll(readCsv(ok, { schema: withTruth }));
  assert.deepEqual([b!.truth!.ctr[0], b!.truth!.cvr[0], b!.truth!.conversion[0]], [0.5, 0.25, 1]);
  const none = writeTemp(dir, "n.csv", "click,conversion,u\n1,0,a\n");
  assert.equal((await readAll(readCsv(none, { schema: withTruth })))[0]!.truth, null);
  const empty = writeTemp(dir, "e.csv", "click,conversion,u,true_ctr,true_cvr,conversion_potential\n1,0,a,,0.25,1\n");
  await assert.rejects(readAll(readCsv(empty, { schema: withTruth })), (e: unknown) => e instanceof MtlError && /e\.csv:2: true_ctr: .*true CTR must be a probability, got ""/.test(e.format()));
});

test("TSV with a BOM and CRLF, detected by name", async () => {
  const dir = tempDir();
  const tsv = writeTemp(dir, "a.tsv", "\ufeffsid\tclick\tbuy\tuser\titem\ttags\tprice\tscore\r\nq\t1\t0\tu\t3\ta|b\t0\t1|1\r\n");
  const [b] = await readAll(readCsv(tsv, { schema }));
  assert.deepEqual(Array.from(b!.ids[1]!), [3, bucket("a", 50), bucket("b", 50)]);
});

async function expectBad(name: string, content: string, line: number | undefined, reason: RegExp, field?: string, format: "csv" | "jsonl" = name.endsWith(".jsonl") ? "jsonl" : "csv") {
  const dir = tempDir();
  const file = writeTemp(dir, name, content);
  const reader = format === "csv" ? readCsv(file, { schema }) : readJsonl(file, { schema });
  await assert.rejects(readAll(reader), (e: unknown) => {
    assert.ok(e instanceof MtlError, String(e));
    const one = e.format();
    assert.ok(one.startsWith(line === undefined ? file : `${file}:${line}`), one);
    assert.match(one, reason);
    if (field) assert.equal(e.where.field, field, one);
    return true;
  });
}

const HEAD = "sid,click,buy,user,item,tags,price,score";
const ROW = "s,1,0,u,1,a,1,1|2";

test("CSV/JSONL strict mode: each bad input names the line and the reason", async () => {
  await expectBad("h.csv", "sid,click,user,item,tags,price,score\n" + ROW + "\n", 1, /missing column: the header has no column 'buy'/, "labels.conversion");
  await expectBad("c.csv", `${HEAD}\n${ROW}\n${ROW},extra\n`, 3, /wrong column count: expected 8 columns \(as the header\), found 9/);
  await expectBad("n.csv", `${HEAD}\n${ROW}\ns,1,0,u,1,a,NaN,1|2\n`, 3, /dense value not a finite number: 'NaN'/, "price");
  await expectBad("i.csv", `${HEAD}\ns,1,0,u,1,a,Infinity,1|2\n`, 2, /dense value not a finite number: 'Infinity'/, "price");
  await expectBad("d.csv", `${HEAD}\ns,1,0,u,1,a,1,1\n`, 2, /dense value not a finite number: expected 2 numbers, got 1/, "score");
  await expectBad("v.csv", `${HEAD}\ns,1,0,u,100,a,1,1|2\n`, 2, /id >= vocabulary size/, "item");
  await expectBad("x.csv", `${HEAD}\ns,1,0,u,-1,a,1,1|2\n`, 2, /non-integer or negative id/, "item");
  await expectBad("l.csv", `${HEAD}\ns,1,x,u,1,a,1,1|2\n`, 2, /label not 0\/1/, "buy");
  await expectBad("e.csv", `${HEAD}\n${ROW}\n\n${ROW}\n`, 3, /empty line/);
  await expectBad("t.csv", `${HEAD}\n${ROW}\ns,1,0,u,1,a,1,`, 3, /truncated last line/);
  await expectBad("z.csv", "", undefined, /empty file/);
  await expectBad("j.jsonl", `{"sid":"s","click":1,"buy":0,"user":"u","item":1,"tags":[],"price":1,"score":[1,2]}\n{"sid":"s","click":1\n`, 2, /invalid JSON/);
  await expectBad("o.jsonl", `{"sid":"s","click":1,"buy":0,"user":{"id":3},"item":1,"tags":[],"price":1,"score":[1,2]}\n`, 1, /invalid JSON: 'user' holds a JSON object/, "user");
  await expectBad("m.jsonl", `{"sid":"s","click":1,"buy":0,"item":1,"tags":[],"price":1,"score":[1,2]}\n`, 1, /missing column: the record has no 'user'/, "user");
  await expectBad("nan.jsonl", `{"sid":"s","click":1,"buy":0,"user":"u","item":1,"tags":[],"price":null,"score":[1,2]}\n`, 1, /dense value not a finite number/, "price");
  await expectBad("tr.jsonl", `{"sid":"s","click":1,"buy":0,"user":"u","item":1,"tags":[],"price":1,"score":[1,2]}\n{"sid":"s","click":1,"buy":0,"user":"u","item":1,"tags":[],"pr`, 2, /truncated last line/);
});

test("JSONL: the real Tencent look-alike sample reads through a schema (skips with a message when absent)", async (t) => {
  const file = join(SHARED_DATA, "lookalike-sample", "stage1.jsonl");
  if (!existsSync(file)) {
    t.skip(`no real sample at ${file}`);
    return;
  }
  const lookalike = validateSchema({
    name: "lookalike",
    features: [
      { name: "aid", kind: "id", hash_buckets: 1 << 16, table: "ad", dim: 8 },
      { name: "age", kind: "id", hash_buckets: 64, table: "user", dim: 8 },
      { name: "gender", kind: "id", hash_buckets: 8, table: "user" },
      { name: "interest1", kind: "ids", hash_buckets: 1 << 12, max_len: 10, table: "user" },
      { name: "kw1", kind: "ids", hash_buckets: 1 << 18, max_len: 5, table: "user" },
      { name: "interest1_length", kind: "dense" },
    ],
    labels: { click: "label", conversion: "label" },
  });
  const r = readJsonl(file, { schema: lookalike });
  const blocks = await readAll(r);
  const rows = blocks.reduce((a, b) => a + b.size, 0);
  assert.equal(rows, 586);
  assert.equal(r.stats.rejected.size, 0);
  assert.ok(blocks.every((b) => b.click.every((x) => x === 1)), "every label is 1 in this sample");
});
