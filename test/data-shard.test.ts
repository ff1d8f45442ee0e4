import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ShardReader, ShardWriter } from "../src/data/shard.js";
import { prepareShard } from "../src/data/prepare.js";
import { shardBatches, isValidRow, rebatch } from "../src/data/batcher.js";
import { layoutOf } from "../src/features/batch.js";
import { openDataSource, parseSynthSpec } from "../src/data/source.js";
import { encodeRecords } from "../src/features/encode.js";
import { synthBatches, SynthWorld, writeSynth } from "../src/data/synth.js";
import { validateSchema, defaultAliccpSchema } from "../src/features/schema.js";
import type { Batch } from "../src/features/batch.js";
import { MtlError } from "../src/errors.js";
import { tempDir, writeTemp } from "./helpers/data.js";

function concat(batches: Batch[]) {
  const cat = <T extends Int32Array | Float32Array | Uint8Array | Uint32Array>(parts: T[]): number[] => parts.flatMap((p) => Array.from(p as ArrayLike<number>));
  return {
    ids: batches[0]!.ids.map((_, t) => cat(batches.map((b) => b.ids[t]!))),
    weights: batches[0]!.weights.map((w, t) => (w ? cat(batches.map((b) => b.weights[t]!)) : null)),
    dense: cat(batches.map((b) => b.dense)),
    click: cat(batches.map((b) => b.click)),
    conversion: cat(batches.map((b) => b.conversion)),
    sampleKey: cat(batches.map((b) => b.sampleKey)),
    userId: batches[0]!.userId ? cat(batches.map((b) => b.userId!)) : null,
    truth: batches[0]!.truth ? [cat(batches.map((b) => b.truth!.ctr)), cat(batches.map((b) => b.truth!.cvr)), cat(batches.map((b) => b.truth!.conversion))] : null,
  };
}

test("shard round trip: synthetic batches with truth come back bit-identical, header counts match", async () => {
  const dir = tempDir();
  const world = new SynthWorld({ seed: 5, users: 500, items: 800 });
  const schema = world.schema();
  const batches = [...synthBatches({ rows: 3000, batchSize: 1024 }, world)];
  const w = await ShardWriter.create(join(dir, "s.shard"), schema, { truth: true });
  for (const b of batches) await w.write(b);
  const summary = await w.close({ note: "test" });
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes("partial")), [], "no temporary file left");
  const r = await ShardReader.open(join(dir, "s.shard"), { expectSchema: schema });
  assert.equal(r.rows, 3000);
  assert.equal(r.rowGroups, 3);
  assert.equal(r.truth, true);
  assert.equal(r.clicks, batches.reduce((a, b) => a + b.click.reduce((x, y) => x + y, 0), 0));
  assert.equal(r.conversions, summary.conversions);
  assert.equal(r.info.note, "test");
  const back: Batch[] = [];
  for await (const b of r.batches()) back.push(b);
  await r.close();
  assert.deepEqual(concat(back), concat(batches));
});

test("shard round trip with weights and dense columns (prepared from CSV)", async () => {
  const dir = tempDir();
  const schema = validateSchema({
    features: [
      { name: "tags", kind: "weighted_ids", hash_buckets: 97, weight_source: "w", max_len: 2 },
      { name: "x", kind: "dense", size: 2 },
    ],
  });
  const csv = writeTemp(dir, "a.csv", "click,conversion,tags,w,x\n1,0,a|b|c,0.5|1.5|2,1|2\n0,0,,,3|4\n");
  const res = await prepareShard(csv, join(dir, "a.shard"), { format: "csv", schema });
  assert.equal(res.shard.rows, 2);
  const r = await ShardReader.open(join(dir, "a.shard"));
  const b = await r.readGroup(0);
  await r.close();
  assert.deepEqual(Array.from(b.weights[0]!), [0.5, 1.5, 0, 0]);
  assert.deepEqual(Array.from(b.dense), [1, 2, 3, 4]);
  assert.equal(b.ids[0]![2], 0);
});

test("a shard whose header or schema hash does not match is refused with a clear error", async () => {
  const dir = tempDir();
  const schema = new SynthWorld({ seed: 1, users: 50, items: 50 }).schema();
  const file = join(dir, "s.shard");
  const w = await ShardWriter.create(file, schema, { truth: true });
  for (const b of synthBatches({ rows: 100, users: 50, items: 50, seed: 1 })) await w.write(b);
  await w.close();
  const good = readFileSync(file);
  const expectErr = async (bytes: Uint8Array, re: RegExp, opts = {}) => {
    const f = writeTemp(dir, "bad.shard", bytes);
    await assert.rejects(ShardReader.open(f, opts), (e: unknown) => e instanceof MtlError && e.code === "E_SHARD" && e.where.file === f && re.test(e.message), String(re));
  };
  await assert.rejects(ShardReader.open(file, { expectSchema: defaultAliccpSchema() }), (e: unknown) => e instanceof MtlError && /schema hash mismatch: the shard was written for schema [0-9a-f]{16}, the given schema is [0-9a-f]{16}/.test(e.message));
  const magic = Buffer.from(good); magic[0] = 0x58;
  await expectErr(magic, /not an mtl shard/);
  const version = Buffer.from(good); version.writeUInt32LE(9, 8);
  await expectErr(version, /format version 9/);
  const hash = Buffer.from(good); hash[16] = hash[16] === 0x61 ? 0x62 : 0x61;
  await expectErr(hash, /schema hash .* does not match the schema stored in the shard/);
  const rows = Buffer.from(good); rows.writeDoubleLE(99, 32);
  await expectErr(rows, /header says 99 rows/);
  await expectErr(good.subarray(0, 40), /not an mtl shard|corrupt header/);
  await expectErr(good.subarray(0, good.length - 10), /corrupt footer/);
  await expectErr(Buffer.from("hello"), /not an mtl shard/);
});

test("batcher: seeded shuffle is deterministic, covers every row once, and the train/valid split is stable", async () => {
  const dir = tempDir();
  const world = new SynthWorld({ seed: 2, users: 300, items: 300 });
  const file = join(dir, "s.shard");
  const w = await ShardWriter.create(file, world.schema(), { truth: true });
  for (const b of synthBatches({ rows: 5000, batchSize: 700 }, world)) await w.write(b);
  await w.close();
  const r = await ShardReader.open(file);
  const keysOf = async (opts: Parameters<typeof shardBatches>[1]) => {
    const keys: number[] = [];
    const sizes: number[] = [];
    for await (const b of shardBatches(r, opts)) {
      keys.push(...b.sampleKey);
      sizes.push(b.size);
      // rows stay whole: the user id column equals the first id of field 101 in the same row
      for (let i = 0; i < b.size; i++) assert.equal(b.userId![i], b.ids[0]![i * 69]);
    }
    return { keys, sizes };
  };
  const a = await keysOf({ batchSize: 256, seed: 7, shuffleRows: 1500 });
  const a2 = await keysOf({ batchSize: 256, seed: 7, shuffleRows: 1500 });
  const e1 = await keysOf({ batchSize: 256, seed: 7, epoch: 1, shuffleRows: 1500 });
  const plain = await keysOf({ batchSize: 256, shuffle: false });
  assert.deepEqual(a, a2, "same seed, same order");
  assert.notDeepEqual(a.keys, e1.keys, "another epoch, another order");
  assert.notDeepEqual(a.keys, plain.keys);
  assert.deepEqual([...a.keys].sort(), [...plain.keys].sort(), "every row exactly once");
  assert.equal(a.keys.length, 5000);
  assert.ok(a.sizes.slice(0, -1).every((s) => s === 256) && a.sizes.at(-1) === 5000 % 256);
  const dropped = await keysOf({ batchSize: 256, seed: 7, dropLast: true });
  assert.equal(dropped.keys.length, 5000 - (5000 % 256));
  const train = await keysOf({ batchSize: 100, seed: 1, validFraction: 0.2, part: "train" });
  const valid = await keysOf({ batchSize: 100, seed: 9, validFraction: 0.2, part: "valid" });
  assert.equal(train.keys.length + valid.keys.length, 5000);
  const validSet = new Set(valid.keys);
  assert.ok(train.keys.every((k) => !validSet.has(k)), "disjoint");
  assert.ok(valid.keys.every((k) => isValidRow(k, 0.2)));
  assert.ok(Math.abs(valid.keys.length / 5000 - 0.2) < 0.03, `valid fraction ${valid.keys.length / 5000}`);
  await r.close();
});

test("prepare refuses to leave a half-written shard when the input is bad", async () => {
  const dir = tempDir();
  const input = writeTemp(dir, "a.txt", Array.from({ length: 40000 }, (_, i) => `${i},0,0,101:${i % 7}`).join("\n") + "\n1,0,0,101:x\n");
  await assert.rejects(prepareShard(input, join(dir, "a.shard"), { format: "aliccp" }), (e: unknown) => e instanceof MtlError && /a\.txt:40001/.test(e.format()));
  assert.equal(existsSync(join(dir, "a.shard")), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes("partial")), [], "no temporary file left");
});

test("rebatch works on any batch stream: the in-process synthetic funnel, split into train and valid", async () => {
  const world = new SynthWorld({ seed: 8, users: 200, items: 200 });
  const layout = layoutOf(world.schema());
  const collect = async (part: "train" | "valid") => {
    const keys: number[] = [];
    for await (const b of rebatch(layout, synthBatches({ rows: 2000, batchSize: 300 }, world), { batchSize: 128, seed: 3, truth: true, validFraction: 0.25, part })) {
      assert.ok(b.truth, "truth travels with the rows");
      keys.push(...b.sampleKey);
    }
    return keys;
  };
  const train = await collect("train");
  const valid = await collect("valid");
  assert.equal(train.length + valid.length, 2000);
  assert.ok(Math.abs(valid.length / 2000 - 0.25) < 0.04, `valid share ${valid.length / 2000}`);
  assert.deepEqual(await collect("valid"), valid, "deterministic");
});

test("openDataSource: a shard, a text file and a synth spec give batches through one interface", async () => {
  const dir = tempDir();
  const txt = join(dir, "s.txt");
  await writeSynth(txt, { rows: 1200, seed: 4, users: 100, items: 100 });
  await prepareShard(txt, join(dir, "s.shard"), { format: "aliccp" });
  const sum = async (spec: string) => {
    const src = await openDataSource(spec);
    let rows = 0, clicks = 0;
    for await (const b of src.batches({ batchSize: 256, seed: 1 })) {
      rows += b.size;
      clicks += b.click.reduce((a, x) => a + x, 0);
      assert.ok(b.truth, spec);
    }
    await src.close();
    return { rows, clicks, layoutWidth: src.layout.tables[0]!.width };
  };
  const fromShard = await sum(join(dir, "s.shard"));
  const fromText = await sum(txt);
  const fromSynth = await sum("synth:rows=1200,seed=4,users=100,items=100");
  assert.deepEqual(fromShard, fromText);
  assert.deepEqual(fromShard, fromSynth);
  assert.equal(fromShard.rows, 1200);
  assert.throws(() => parseSynthSpec("synth:seed=1"), /needs rows=N/);
  assert.throws(() => parseSynthSpec("synth:rows=10,colour=2"), /bad synth spec/);
});

test("encodeRecords: records without labels encode for scoring; a bad record names its position", () => {
  const schema = validateSchema({ features: [{ name: "u", kind: "id", hash_buckets: 100 }, { name: "x", kind: "dense" }] });
  const layout = layoutOf(schema);
  const b = encodeRecords(layout, [{ u: "a", x: 1 }, { u: "b", x: 2 }], { labels: false });
  assert.equal(b.size, 2);
  assert.deepEqual(Array.from(b.dense), [1, 2]);
  assert.throws(() => encodeRecords(layout, [{ u: "a", x: 1 }, { u: "b", x: "zz" }], { labels: false }), (e: unknown) => e instanceof MtlError && e.where.line === 2 && e.where.field === "x");
});
