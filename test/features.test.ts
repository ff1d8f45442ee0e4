import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import vm from "node:vm";
import { hashBucket } from "../src/features/hash.js";
import { fnv1a32, fnv1a32Bytes } from "../src/util/hash.js";
import { defaultAliccpSchema, parseSchema, schemaHash, toSchemaJson, validateSchema, ALICCP_FIELDS } from "../src/features/schema.js";
import { BatchBuilder, layoutOf } from "../src/features/batch.js";
import { encodeRecord, RowError } from "../src/features/encode.js";
import { MtlError } from "../src/errors.js";
import { REPO_ROOT } from "./helpers/data.js";

test("fnv1a32 matches the published FNV-1a test vectors and hand-computed values", () => {
  // "", "a", "foobar": from the FNV reference; the others computed independently (Python, byte loop).
  const golden: [string, number][] = [
    ["", 0x811c9dc5], ["a", 0xe40c292c], ["foobar", 0xbf9cf968], ["101", 0x6833d62f],
    ["héllo", 0x4aa48540], ["北京", 0x36943181], ["user_42", 0x3d028cf1],
  ];
  for (const [s, h] of golden) {
    assert.equal(fnv1a32(s), h, JSON.stringify(s));
    assert.equal(fnv1a32Bytes(new TextEncoder().encode(s)), h, `bytes of ${JSON.stringify(s)}`);
  }
  // bucket ids: 1 + h % buckets (0 stays padding)
  assert.equal(hashBucket("foobar", 1000), 721);
  assert.equal(hashBucket("héllo", 1000), 1);
  assert.equal(hashBucket("", 1000), 262);
});

test("fnv1a32's on-the-fly UTF-8 equals hashing TextEncoder bytes, surrogate pairs and lone surrogates included", () => {
  const samples = ["😀", "a😀b", "\ud800x", "x\udc00", "\u07ff\u0800\uffff", "\u0000"];
  let seed = 12345;
  for (let i = 0; i < 200; i++) {
    let s = "";
    const n = i % 17;
    for (let j = 0; j < n; j++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      s += String.fromCharCode(seed % 3 === 0 ? seed % 128 : seed % 0x10000);
    }
    samples.push(s);
  }
  for (const s of samples) assert.equal(fnv1a32(s), fnv1a32Bytes(new TextEncoder().encode(s)), JSON.stringify(s));
});

test("the feature modules use no Node-only API (the browser shares them)", () => {
  const dir = join(REPO_ROOT, "src", "features");
  for (const f of readdirSync(dir)) {
    const src = readFileSync(join(dir, f), "utf8");
    assert.doesNotMatch(src, /from "node:|require\(|\bBuffer\b|process\./, `${f} must stay browser-safe`);
  }
});

test("the compiled hash modules run in a bare JavaScript realm (no Node or web globals) with the same ids", () => {
  const fnv = readFileSync(join(REPO_ROOT, "dist", "src", "util", "hash.js"), "utf8");
  const buckets = readFileSync(join(REPO_ROOT, "dist", "src", "features", "hash.js"), "utf8");
  assert.doesNotMatch(fnv, /^import /m, "util/hash.js has no imports");
  assert.deepEqual(buckets.match(/^import .*$/gm), ['import { fnv1a32 } from "../util/hash.js";'], "features/hash.js imports only the FNV-1a module");
  const context = vm.createContext({});
  const bare = (js: string) => js.replace(/^import .*$/gm, "").replace(/^export /gm, "");
  vm.runInContext(bare(fnv) + "\n" + bare(buckets) + "\nglobalThis.out = [fnv1a32('héllo'), fnv1a32('北京'), hashBucket('foobar', 1000), fnv1a32Bytes(new Uint8Array([0x61]))];", context);
  assert.equal(vm.runInContext("typeof Buffer + typeof process + typeof TextEncoder", context), "undefinedundefinedundefined");
  assert.deepEqual(Array.from(context.out as number[]), [0x4aa48540, 0x36943181, 721, 0xe40c292c]);
});

test("FNV-1a hashes the UTF-8 bytes of a non-ASCII name, not its UTF-16 code units", () => {
  // "é" is U+00E9: UTF-8 bytes C3 A9. By hand: 0x811c9dc5 ^ 0xc3 = 0x811c9d06, * 0x01000193 mod 2^32
  // = 0x460b3072; ^ 0xa9 = 0x460b30db, * 0x01000193 mod 2^32 = 0x1e9de8c1. (Over the one UTF-16 unit
  // 0x00e9 it would be 0x6c0b6c44, what the old per-name seed hash gave.)
  assert.equal(fnv1a32("é"), 0x1e9de8c1);
  assert.notEqual(fnv1a32("é"), 0x6c0b6c44);
  assert.equal(fnv1a32Bytes(new Uint8Array([0xc3, 0xa9])), 0x1e9de8c1);
});

test("the default Ali-CCP schema: 23 fields in PaddleRec's order, one shared 737,947 x 12 table, max_len 3", () => {
  const s = defaultAliccpSchema();
  assert.deepEqual(s.features.map((f) => f.name), [...ALICCP_FIELDS]);
  assert.deepEqual(ALICCP_FIELDS.slice(0, 5), ["101", "109_14", "110_14", "127_14", "150_14"]);
  assert.equal(ALICCP_FIELDS.at(-1), "301");
  const layout = layoutOf(s);
  assert.equal(layout.tables.length, 1);
  assert.deepEqual({ ...layout.tables[0]!, features: undefined }, { name: "shared", rows: 737_947, dim: 12, width: 69, weighted: false, features: undefined });
  assert.deepEqual(layout.idFeatures.map((c) => c.offset), ALICCP_FIELDS.map((_, i) => 3 * i));
  assert.deepEqual(layout.userId, { table: 0, column: 0 });
  // the JSON form round-trips and the fingerprint is stable
  const again = parseSchema(JSON.stringify(toSchemaJson(s)));
  assert.deepEqual(again, s);
  assert.equal(schemaHash(again), schemaHash(s));
  assert.match(schemaHash(s), /^[0-9a-f]{16}$/);
  assert.notEqual(schemaHash(defaultAliccpSchema({ maxLen: 4 })), schemaHash(s));
});

test("schema validation names the field at fault", () => {
  const bad = (input: unknown, field: string, text: RegExp) =>
    assert.throws(() => validateSchema(input, "s.json"), (e: unknown) => e instanceof MtlError && e.code === "E_SCHEMA" && e.where.field === field && text.test(e.message) && e.where.file === "s.json", `${field}`);
  bad([], "(root)", /JSON object/);
  bad({ features: [] }, "features", /non-empty/);
  bad({ features: [{ name: "a", kind: "idz", vocab_size: 3 }] }, "features.a.kind", /expected one of/);
  bad({ features: [{ name: "a", kind: "ids" }] }, "features.a.vocab_size", /vocab_size .* or hash_buckets/);
  bad({ features: [{ name: "a", kind: "ids", vocab_size: 3, hash_buckets: 5 }] }, "features.a.hash_buckets", /not both/);
  bad({ features: [{ name: "a", kind: "ids", vocab_size: -1 }] }, "features.a.vocab_size", /integer from 1/);
  bad({ features: [{ name: "a", kind: "ids", vocab_size: 3, max_len: 0 }] }, "features.a.max_len", /integer from 1/);
  bad({ features: [{ name: "a", kind: "ids", vocab_size: 3 }, { name: "a", kind: "ids", vocab_size: 3 }] }, "features.a.name", /duplicate/);
  bad({ features: [{ name: "a", kind: "ids", vocab_size: 3, table: "t", dim: 4 }, { name: "b", kind: "ids", vocab_size: 3, table: "t", dim: 8 }] }, "features.b.dim", /table 't' has dim 4/);
  bad({ features: [{ name: "a", kind: "dense", transform: "standardize", mean: 0 }] }, "features.a.std", /positive finite 'std'/);
  bad({ features: [{ name: "a", kind: "dense", vocab_size: 3 }] }, "features.a.vocab_size", /does not apply/);
  bad({ features: [{ name: "a", kind: "weighted_ids", vocab_size: 3 }] }, "features.a.weight_source", /weights/);
  bad({ features: [{ name: "a", kind: "ids", vocab_size: 3 }], user_id: "zz" }, "user_id", /not an id feature/);
  bad({ features: [{ name: "a", kind: "ids", vocab_size: 3, colour: 1 }] }, "features[0].colour", /unknown key/);
  assert.throws(() => parseSchema("{oops", "s.json"), (e: unknown) => e instanceof MtlError && e.code === "E_SCHEMA" && /not valid JSON/.test(e.message));
});

test("encodeRecord: hashed strings, integer ids, weights, dense transforms, truncation and padding (hand-computed)", () => {
  const schema = validateSchema({
    features: [
      { name: "city", kind: "id", hash_buckets: 1000, table: "geo", dim: 4 },
      { name: "tags", kind: "weighted_ids", vocab_size: 10, weight_source: "tag_w", max_len: 3, table: "tags", dim: 4 },
      { name: "hist", kind: "ids", vocab_size: 10, max_len: 2, pooling: "mean", table: "tags" },
      { name: "price", kind: "dense", transform: "log1p" },
      { name: "age", kind: "dense", transform: "standardize", mean: 30, std: 10 },
    ],
    labels: { click: "clk", conversion: "cv" },
  });
  const layout = layoutOf(schema);
  assert.deepEqual(layout.tables.map((t) => [t.name, t.rows, t.width, t.weighted]), [["geo", 1001, 1, false], ["tags", 10, 5, true]]);
  const b = new BatchBuilder(layout, 4, { rawIdCounts: true });
  const rec1: Record<string, unknown> = { clk: 1, cv: 0, city: "foobar", tags: [1, 2, 3, 4], tag_w: [0.5, 2, 1, 9], hist: "7|8|9", price: Math.E - 1, age: 45 };
  const get = (r: Record<string, unknown>) => (k: string) => r[k] as never;
  assert.equal(encodeRecord(b, get(rec1), "s1", 1), true);
  assert.equal(encodeRecord(b, get({ clk: "0", cv: "0", city: "héllo", tags: [], tag_w: [], hist: "", price: 0, age: "30" }), "s2", 2), true);
  assert.equal(encodeRecord(b, get({ clk: 0, cv: 1, city: "x", tags: [], tag_w: [], hist: "", price: 0, age: 30 }), "s3", 3), false, "click=0 & conversion=1 is dropped");
  assert.equal(b.size, 2);
  const blk = b.take();
  assert.deepEqual(Array.from(blk.ids[0]!), [721, 1]);
  assert.deepEqual(Array.from(blk.ids[1]!), [1, 2, 3, 7, 8, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(blk.weights[1]!), [0.5, 2, 1, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(blk.dense), [1, 1.5, 0, 0]);
  assert.deepEqual(Array.from(blk.click), [1, 0]);
  assert.deepEqual(Array.from(blk.rawIdCounts!), [1, 4, 3, 1, 0, 0]);
  assert.equal(blk.sampleKey[0], fnv1a32("s1"));
  const err = (rec: Record<string, unknown>, reason: string, field: string) =>
    assert.throws(() => encodeRecord(b, get(rec), "x", 9), (e: unknown) => e instanceof RowError && e.reason === reason && e.where.field === field && e.where.line === 9, `${reason}`);
  const ok = { clk: 1, cv: 1, city: "a", tags: [1], tag_w: [1], hist: [], price: 1, age: 1 };
  err({ ...ok, price: "NaN" }, "bad_dense", "price");
  err({ ...ok, age: Infinity }, "bad_dense", "age");
  err({ ...ok, hist: [10] }, "id_out_of_range", "hist");
  err({ ...ok, hist: ["1.5"] }, "bad_id", "hist");
  err({ ...ok, hist: [-1] }, "bad_id", "hist");
  err({ ...ok, tag_w: [1, 2] }, "bad_weight", "tag_w");
  err({ ...ok, clk: 2 }, "bad_label", "clk");
  err({ ...ok, city: undefined }, "missing_column", "city");
});
