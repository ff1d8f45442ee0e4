/** The built-in look-alike schema on the real PaddleRec sample, the task column through shards and the batcher. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultLookalikeSchema, LOOKALIKE_MAX_IDXS, LOOKALIKE_AD, LOOKALIKE_USER_DYNAMIC, LOOKALIKE_USER_STATIC } from "../src/features/lookalike.js";
import { layoutOf } from "../src/features/batch.js";
import { schemaHash, parseSchema, toSchemaJson } from "../src/features/schema.js";
import { readJsonl } from "../src/data/tabular.js";
import { ShardReader, ShardWriter } from "../src/data/shard.js";
import { rebatch } from "../src/data/batcher.js";
import { stepFeeds } from "../src/models/feeds.js";
import type { Batch } from "../src/features/batch.js";
import { readAll, SHARED_DATA, tempDir } from "./helpers/data.js";

const SAMPLE = join(SHARED_DATA, "lookalike-sample", "stage1.jsonl");

test("the look-alike schema: PaddleRec's fields in order, max_idx + 2 rows per table (row 0 pads, raw 0 is real), one label, task aid", () => {
  const schema = defaultLookalikeSchema();
  const layout = layoutOf(schema);
  assert.deepEqual(schema.features.map((f) => f.name), [
    "carrier", "consumptionAbility", "LBS", "age", "education", "gender", "house",
    "interest1", "interest2", "interest3", "kw1", "kw2", "topic1", "topic2",
    "advertiserId", "campaignId", "creativeSize", "adCategoryId", "productId", "productType",
  ]);
  assert.deepEqual(layout.tables.map((t) => t.rows), [5, 4, 857, 7, 9, 4, 3, 126, 84, 14, 263314, 49782, 10004, 9986, 80, 139, 16, 41, 34, 5]);
  assert.deepEqual(layout.tables.map((t) => t.width), [1, 1, 1, 1, 1, 1, 1, 10, 10, 10, 5, 5, 5, 5, 1, 1, 1, 1, 1, 1]);
  assert.ok(layout.tables.every((t) => t.dim === 64));
  assert.deepEqual(schema.labels, { click: "label", conversion: null });
  assert.equal(schema.task, "aid");
  assert.deepEqual(parseSchema(JSON.stringify(toSchemaJson(schema))), schema);
  assert.ok(layoutOf(defaultLookalikeSchema({ dim: 8 })).tables.every((t) => t.dim === 8));
  // PaddleRec's config.yaml max_idxs
  assert.deepEqual(LOOKALIKE_MAX_IDXS, [[3, 2, 855, 5, 7, 2, 1], [124, 82, 12, 263312, 49780, 10002, 9984], [78, 137, 14, 39, 32, 3]]);
});

/** An independent encoder of one sample line: row = raw + 1 for the first `length` values of a list. */
function expectedRow(rec: Record<string, number | number[]>): number[][] {
  const out: number[][] = [];
  for (const [name] of LOOKALIKE_USER_STATIC) out.push([(rec[name] as number) + 1]);
  for (const [name, , maxLen] of LOOKALIKE_USER_DYNAMIC) {
    const len = rec[`${name}_length`] as number;
    out.push(Array.from({ length: maxLen }, (_, i) => (i < len ? (rec[name] as number[])[i]! + 1 : 0)));
  }
  for (const [name] of LOOKALIKE_AD) out.push([(rec[name] as number) + 1]);
  return out;
}

test("the real look-alike sample reads exactly: 586 rows, five campaigns, every field of every row, task and label per row", async (t) => {
  if (!existsSync(SAMPLE)) {
    t.skip(`no look-alike sample at ${SAMPLE} (set MTL_SHARED_DATA to the shared data folder)`);
    return;
  }
  const schema = defaultLookalikeSchema();
  const r = readJsonl(SAMPLE, { schema });
  const blocks = await readAll(r);
  assert.equal(blocks.length, 1);
  const b = blocks[0]!;
  assert.equal(b.size, 586);
  assert.equal(r.stats.rejected.size, 0);
  const perTask = new Map<number, number>();
  for (const a of b.task!) perTask.set(a, (perTask.get(a) ?? 0) + 1);
  assert.deepEqual([...perTask].sort((x, y) => x[0] - y[0]), [[2, 71], [9, 143], [10, 42], [17, 251], [21, 79]]);
  assert.ok(b.click.every((x) => x === 1), "every label in the sample is 1");
  assert.ok(b.conversion.every((x) => x === 0), "a single-label schema: conversion is 0");
  const layout = r.layout;
  const lines = readFileSync(SAMPLE, "utf8").trimEnd().split("\n");
  lines.forEach((line, row) => {
    const rec = JSON.parse(line) as Record<string, number | number[]>;
    assert.equal(b.task![row], rec.aid, `row ${row} aid`);
    const want = expectedRow(rec);
    layout.tables.forEach((tb, ti) => assert.deepEqual(Array.from(b.ids[ti]!.subarray(row * tb.width, (row + 1) * tb.width)), want[ti], `row ${row} ${tb.name}`));
  });
  // one row checked by hand (line 1): carrier 2, LBS 457, house 0, interest2 [68, 52, 9, pads...] of length 3, interest3 of length 0
  const at = (name: string, row: number) => {
    const ti = layout.tables.findIndex((x) => x.name === name);
    const w = layout.tables[ti]!.width;
    return Array.from(b.ids[ti]!.subarray(row * w, row * w + w));
  };
  assert.deepEqual(at("carrier", 0), [3]);
  assert.deepEqual(at("LBS", 0), [458]);
  assert.deepEqual(at("house", 0), [1], "house = 0 is row 1, a real row");
  assert.deepEqual(at("interest2", 0), [69, 53, 10, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(at("interest3", 0), new Array(10).fill(0));
  assert.deepEqual(at("kw1", 0), [20020, 155486, 30698, 260990, 114538]);
  assert.deepEqual(at("campaignId", 0), [121]);
  const feeds = stepFeeds(b, layout);
  const w2 = Array.from((feeds["weights.interest2"] as Float32Array).subarray(0, 10));
  assert.deepEqual(w2, [1, 1, 1, 0, 0, 0, 0, 0, 0, 0], "mean pooling divides by the true length 3");
  assert.equal((feeds["weights.interest3"] as Float32Array).subarray(0, 10).reduce((s, x) => s + x, 0), 0);
});

test("the task id survives a shard and the shuffling batcher, row by row", async () => {
  const schema = defaultLookalikeSchema({ dim: 4 });
  const layout = layoutOf(schema);
  const n = 50;
  const one = (len: number) => new Int32Array(n * len);
  const ids = layout.tables.map((t) => one(t.width));
  ids.forEach((a, ti) => { for (let r = 0; r < n; r++) a[r * layout.tables[ti]!.width] = 1 + ((r * (ti + 3)) % 3); });
  const task = Int32Array.from({ length: n }, (_, r) => 100 + r);
  const batch: Batch = {
    size: n, ids, weights: layout.tables.map(() => null), dense: new Float32Array(0),
    click: Uint8Array.from({ length: n }, (_, r) => r % 2), conversion: new Uint8Array(n), truth: null, userId: null,
    sampleKey: Uint32Array.from({ length: n }, (_, r) => r * 7919), task,
  };
  const file = join(tempDir(), "l.shard");
  const w = await ShardWriter.create(file, schema, { truth: false });
  await w.write(batch);
  const sum = await w.close();
  assert.equal(sum.schemaHash, schemaHash(schema));
  const shard = await ShardReader.open(file, { expectSchema: schema });
  const back = await shard.readGroup(0);
  await shard.close();
  assert.deepEqual(Array.from(back.task!), Array.from(task));
  const seen: number[] = [];
  for await (const out of rebatch(layout, [back], { batchSize: 8, seed: 3, truth: false })) {
    for (let r = 0; r < out.size; r++) {
      const t = out.task![r]!;
      seen.push(t);
      assert.equal(out.click[r], (t - 100) % 2, "the task stays with its row's label");
      assert.equal(out.ids[0]![r], 1 + (((t - 100) * 3) % 3));
    }
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), Array.from(task));
  assert.notDeepEqual(seen, Array.from(task), "shuffled");
});
