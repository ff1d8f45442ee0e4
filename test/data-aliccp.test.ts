import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { readAliccp } from "../src/data/aliccp.js";
import { validateSchema, defaultAliccpSchema } from "../src/features/schema.js";
import { fnv1a32 } from "../src/util/hash.js";
import { MtlError } from "../src/errors.js";
import { RowError } from "../src/features/encode.js";
import { readAll, SHARED_DATA, tempDir, writeTemp } from "./helpers/data.js";

// A small schema over three Ali-CCP fields: two share table t1.
const schema = validateSchema({
  name: "tiny",
  features: [
    { name: "user", kind: "ids", source: "101", max_len: 2, vocab_size: 100, table: "t1", dim: 4 },
    { name: "hist", kind: "ids", source: "150_14", max_len: 3, vocab_size: 100, table: "t1" },
    { name: "item", kind: "ids", source: "205", max_len: 1, vocab_size: 50, table: "t2", dim: 2 },
  ],
  user_id: "user",
});

const GOOD = [
  // first token (150_14:5) kept; 101 truncated to 2, 150_14 to 3; 999 unknown
  "7,1,0,150_14:5,101:3,150_14:6,999:1,150_14:7,150_14:8,205:9,101:4,101:55",
  // nothing but an explicit 0 id: all padding
  "8,0,0,205:0",
  // click=0 & buy=1: dropped and counted
  "9,0,1,101:1",
  "10,1,1,101:99,205:49,998:3,998:4",
];

test("Ali-CCP: exact parse of hand-written lines (first token kept, truncation, padding, shared table, unknown fields)", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "a.txt", GOOD.join("\n") + "\n");
  const reader = readAliccp(file, { schema, rawIdCounts: true, lineNumbers: true });
  const blocks = await readAll(reader);
  assert.equal(blocks.length, 1);
  const b = blocks[0]!;
  assert.equal(b.size, 3);
  assert.deepEqual(Array.from(b.ids[0]!), [3, 4, 5, 6, 7, /**/ 0, 0, 0, 0, 0, /**/ 99, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(b.ids[1]!), [9, 0, 49]);
  assert.deepEqual(Array.from(b.click), [1, 0, 1]);
  assert.deepEqual(Array.from(b.conversion), [0, 0, 1]);
  assert.deepEqual(Array.from(b.userId!), [3, 0, 99]);
  assert.deepEqual(Array.from(b.rawIdCounts!), [3, 4, 1, /**/ 0, 0, 1, /**/ 1, 0, 1]);
  assert.deepEqual(Array.from(b.lines!), [1, 2, 4]);
  assert.deepEqual(Array.from(b.sampleKey), [fnv1a32("7"), fnv1a32("8"), fnv1a32("10")]);
  assert.equal(b.truth, null);
  const s = reader.stats;
  assert.equal(s.rows, 3);
  assert.equal(s.lines, 4);
  assert.deepEqual([...s.unknownFields], [["999", 1], ["998", 2]]);
  assert.deepEqual([...s.rejected].map(([r, c]) => [r, c.count, c.firstLine]), [["click0_buy1", 1, 3]]);
  assert.equal(s.unterminatedLastLine, false);
});

test("Ali-CCP: a hash_buckets feature hashes the id text (FNV-1a of the bytes)", async () => {
  const hashed = validateSchema({ features: [{ name: "f", kind: "ids", source: "205", hash_buckets: 1000, max_len: 2 }] });
  const dir = tempDir();
  const [b] = await readAll(readAliccp(writeTemp(dir, "h.txt", "1,0,0,205:123,205:0042,101:5\n"), { schema: hashed }));
  assert.deepEqual(Array.from(b!.ids[0]!), [1 + (fnv1a32("123") % 1000), 1 + (fnv1a32("0042") % 1000)]);
});

test("Ali-CCP: CRLF endings, a UTF-8 BOM and gzip give the same rows as plain LF text", async () => {
  const dir = tempDir();
  const plain = await readAll(readAliccp(writeTemp(dir, "lf.txt", GOOD.join("\n") + "\n"), { schema }));
  for (const [name, content] of [
    ["crlf.txt", GOOD.join("\r\n") + "\r\n"],
    ["bom.txt", "\ufeff" + GOOD.join("\n") + "\n"],
    ["bom-crlf.txt", "\ufeff" + GOOD.join("\r\n") + "\r\n"],
  ] as const) {
    const got = await readAll(readAliccp(writeTemp(dir, name, content), { schema }));
    assert.deepEqual(got, plain, name);
  }
  const gz = await readAll(readAliccp(writeTemp(dir, "a.txt.gz", gzipSync(GOOD.join("\n") + "\n")), { schema }));
  assert.deepEqual(gz, plain, "gzip");
});

test("Ali-CCP: lines that span read chunks parse the same (1 MiB chunks, ~250 kB lines)", async () => {
  const dir = tempDir();
  const big = (id: number) => `${id},1,0,` + Array.from({ length: 25_000 }, (_, k) => `150_14:${(k % 99) + 1}`).join(",") + `,101:${id % 100}`;
  const lines = Array.from({ length: 12 }, (_, i) => big(i + 1));
  const reader = readAliccp(writeTemp(dir, "big.txt", lines.join("\n") + "\n"), { schema, rawIdCounts: true });
  const [b] = await readAll(reader);
  assert.equal(b!.size, 12);
  for (let r = 0; r < 12; r++) {
    assert.deepEqual(Array.from(b!.ids[0]!.subarray(r * 5, r * 5 + 5)), [(r + 1) % 100, 0, 1, 2, 3], `row ${r}`);
    assert.deepEqual(Array.from(b!.rawIdCounts!.subarray(r * 3, r * 3 + 3)), [1, 25_000, 0]);
  }
});

/** Expect the strict reader to stop with `file:line`, the reason and (optionally) the field in the one-line message. */
async function expectBad(content: string | Uint8Array, line: number | undefined, reason: RegExp, opts: { field?: string; name?: string; code?: string } = {}) {
  const dir = tempDir();
  const file = writeTemp(dir, opts.name ?? "bad.txt", content);
  await assert.rejects(readAll(readAliccp(file, { schema })), (e: unknown) => {
    assert.ok(e instanceof MtlError, `an MtlError, got ${String(e)}`);
    const one = e.format();
    assert.equal(e.code, opts.code ?? "E_DATA");
    assert.ok(one.startsWith(line === undefined ? file : `${file}:${line}`), `names ${file}:${line}: ${one}`);
    assert.match(one, reason);
    if (opts.field) assert.equal(e.where.field, opts.field, one);
    assert.ok(!one.includes("\n"), "one line");
    return true;
  });
}

const OK = "1,0,0,101:1";

test("Ali-CCP strict mode: each bad input stops at its line with the reason", async () => {
  await expectBad(`${OK}\n1,0\n`, 2, /wrong column count: expected sample_id,click,buy/);
  await expectBad(`${OK}\n1,0,0\n`, 2, /wrong column count: no field:feature_id tokens/);
  await expectBad(`${OK}\n${OK}\n1,0,0,101:abc\n`, 3, /non-integer or negative id: 'abc'/, { field: "user" });
  await expectBad(`${OK}\n1,0,0,101:-3\n`, 2, /non-integer or negative id: '-3' .*negative/, { field: "user" });
  await expectBad(`${OK}\n1,0,0,205:50\n`, 2, /id >= vocabulary size: id 50 is outside the vocabulary \(vocab_size 50\)/, { field: "item" });
  await expectBad(`${OK}\n1,0,0,101:99999999999999999999\n`, 2, /id >= vocabulary size/, { field: "user" });
  await expectBad(`1,2,0,101:1\n`, 1, /label not 0\/1: expected 0 or 1, got '2'/, { field: "click" });
  await expectBad(`1,0,yes,101:1\n`, 1, /label not 0\/1: expected 0 or 1, got 'yes'/, { field: "buy" });
  await expectBad(`${OK}\n\n${OK}\n`, 2, /empty line/);
  await expectBad(`${OK}\n1,0,0,101:1,,205:1\n`, 2, /malformed field:feature_id token: empty token/);
  await expectBad(`${OK}\n1,0,0,101\n`, 2, /malformed field:feature_id token: '101' has no ':'/);
  await expectBad(`${OK}\n1,0,0,101:1,\n`, 2, /trailing comma/);
  await expectBad(`${OK}\n1,0,0,101:\n`, 2, /non-integer or negative id: empty feature id/);
  // a truncated last line (cut mid-token, no newline)
  await expectBad(`${OK}\n${OK}\n2,0,0,101:1,150_`, 3, /truncated last line: the last line has no newline and does not parse/);
  await expectBad(`${OK}\n2,1,0,101:`, 2, /truncated last line/);
  await expectBad("", undefined, /empty file: the file has no lines/);
  // a corrupt and a truncated gzip
  const gz = gzipSync(Array.from({ length: 2000 }, () => OK).join("\n") + "\n");
  const cut = gz.subarray(0, gz.length - 12);
  await expectBad(cut, undefined, /corrupt or truncated gzip data/, { name: "cut.txt.gz", code: "E_GZIP" });
  const flipped = Buffer.from(gz);
  flipped[20] = flipped[20]! ^ 0xff;
  flipped[21] = flipped[21]! ^ 0xff;
  await expectBad(flipped, undefined, /corrupt or truncated gzip data/, { name: "flip.txt.gz", code: "E_GZIP" });
});

test("Ali-CCP: click=0 & buy=1 is dropped and counted in both modes; an unterminated but complete last line is kept with a warning", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "a.txt", `${OK}\n5,0,1,101:2\n6,0,1,101:3\n7,1,1,101:4`);
  const r = readAliccp(file, { schema });
  const [b] = await readAll(r);
  assert.deepEqual(Array.from(b!.userId!), [1, 4]);
  const c = r.stats.rejected.get("click0_buy1")!;
  assert.equal(c.count, 2);
  assert.equal(c.firstLine, 2);
  assert.match(c.example, /a\.txt:2: click=0 and buy=1/);
  assert.equal(r.stats.unterminatedLastLine, true);
});

test("Ali-CCP --skip-bad: bad rows are skipped and counted per reason with their first line", async () => {
  const dir = tempDir();
  const lines = [OK, "1,0", "1,0,0,101:x", "1,0,0,101:x", "1,3,0,101:1", "", "1,0,0,205:77", "1,0,1,101:1", "2,1,0,101:42", "3,1,0,101:43,150_"];
  const file = writeTemp(dir, "mixed.txt", lines.join("\n"));
  const r = readAliccp(file, { schema, skipBad: true });
  const blocks = await readAll(r);
  assert.deepEqual(blocks.flatMap((b) => Array.from(b.userId!)), [1, 42]);
  const got = Object.fromEntries([...r.stats.rejected].map(([k, v]) => [k, [v.count, v.firstLine]]));
  assert.deepEqual(got, {
    column_count: [1, 2], bad_id: [2, 3], bad_label: [1, 5], empty_line: [1, 6], id_out_of_range: [1, 7], click0_buy1: [1, 8], truncated_line: [1, 10],
  });
  assert.match(r.stats.rejected.get("bad_id")!.example, /mixed\.txt:3: user: non-integer or negative id/);
});

test("Ali-CCP: the ground-truth sidecar is read in step and checked", async () => {
  const dir = tempDir();
  const data = writeTemp(dir, "s.txt", "a,1,0,101:1\nb,0,0,101:2\n");
  writeTemp(dir, "s.txt.truth.csv", "sample_id,true_ctr,true_cvr,conversion_potential\na,0.25,0.5,1\nb,0.125,0.75,0\n");
  const [b] = await readAll(readAliccp(data, { schema }));
  assert.deepEqual(Array.from(b!.truth!.ctr), [0.25, 0.125]);
  assert.deepEqual(Array.from(b!.truth!.cvr), [0.5, 0.75]);
  assert.deepEqual(Array.from(b!.truth!.conversion), [1, 0]);
  const none = await readAll(readAliccp(data, { schema, truthFile: null }));
  assert.equal(none[0]!.truth, null);
  writeTemp(dir, "s.txt.truth.csv", "sample_id,true_ctr,true_cvr,conversion_potential\na,0.25,0.5,1\nc,0.125,0.75,0\n");
  await assert.rejects(readAll(readAliccp(data, { schema })), (e: unknown) => e instanceof RowError && e.reason === "truth_mismatch" && /s\.txt:2: .*sample id 'b'.*'c'/.test(e.format()));
  writeTemp(dir, "s.txt.truth.csv", "sample_id,true_ctr,true_cvr,conversion_potential\na,0.25,0.5,1\n");
  await assert.rejects(readAll(readAliccp(data, { schema })), (e: unknown) => e instanceof RowError && /s\.txt:2: .*ends before this line/.test(e.format()));
});

test("Ali-CCP: the real PaddleRec samples in ../shared/data parse with every token kept", async (t) => {
  const dir = join(SHARED_DATA, "aliccp-sample");
  const train = join(dir, "train_small.txt");
  if (!existsSync(train)) {
    t.skip(`no real samples at ${dir}`);
    return;
  }
  const r = readAliccp(train, { schema: defaultAliccpSchema(), rawIdCounts: true });
  const [b] = await readAll(r);
  assert.equal(b!.size, 10);
  assert.equal(r.stats.rejected.size, 0);
  assert.equal(r.stats.unknownFields.size, 0);
  // independent count from the text: labels and the tokens of every line, the first one included
  const text = readFileSync(train, "utf8").trimEnd().split("\n");
  let clicks = 0, buys = 0;
  text.forEach((line, row) => {
    const cols = line.split(",");
    clicks += Number(cols[1]);
    buys += Number(cols[2]);
    const tokens = cols.slice(3).map((t) => t.split(":"));
    const counted = b!.rawIdCounts!.subarray(row * 23, row * 23 + 23).reduce((a, x) => a + x, 0);
    assert.equal(counted, tokens.length, `line ${row + 1}: every token counted`);
    // the first 3 ids of each field in file order are the stored ones
    const first = new Map<string, number[]>();
    for (const [f, id] of tokens) {
      const l = first.get(f!) ?? [];
      if (l.length < 3) l.push(Number(id));
      first.set(f!, l);
    }
    const fields = ["101", "109_14", "110_14", "127_14", "150_14", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206", "207", "210", "216", "508", "509", "702", "853", "301"];
    fields.forEach((f, fi) => {
      const want = [...(first.get(f) ?? []), 0, 0, 0].slice(0, 3);
      assert.deepEqual(Array.from(b!.ids[0]!.subarray(row * 69 + fi * 3, row * 69 + fi * 3 + 3)), want, `line ${row + 1} field ${f}`);
    });
  });
  assert.equal(clicks, 2);
  assert.equal(buys, 1);
  assert.equal(b!.click.reduce((a, x) => a + x, 0), 2);
  assert.equal(b!.conversion.reduce((a, x) => a + x, 0), 1);
  // line 1's first token is 210:1: PaddleRec's reader would drop it, we keep it
  assert.ok(text[0]!.split(",")[3] === "210:1");
  assert.equal(b!.ids[0]![16 * 3], 1);
  const testSmall = await readAll(readAliccp(join(dir, "test_small.txt")));
  assert.equal(testSmall[0]!.click[0], 0, "test_small differs in line 1's labels");
  assert.deepEqual(testSmall[0]!.ids, b!.ids);
});
