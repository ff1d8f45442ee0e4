/** A directory or a glob as a data argument: files in name order, .gz inside, shards too, clear errors. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { dataFiles } from "../src/data/files.js";
import { readData } from "../src/data/open.js";
import { openDataSource } from "../src/data/source.js";
import { prepareShard } from "../src/data/prepare.js";
import { writeSynth } from "../src/data/synth.js";
import type { Batch } from "../src/features/batch.js";
import { MtlError } from "../src/errors.js";
import { REPO_ROOT, readAll, tempDir } from "./helpers/data.js";

const dir = tempDir("mtl-files-");
test.after(() => rmSync(dir, { recursive: true, force: true }));
const world = { users: 100, items: 100, maxHistory: 3 };

async function keys(spec: string): Promise<number[]> {
  const source = await openDataSource(spec);
  const out: number[] = [];
  for await (const b of source.batches({ batchSize: 64, shuffle: false }) as AsyncIterable<Batch>) out.push(...b.sampleKey);
  await source.close();
  return out;
}

test("a directory: its files in name order (subdirectories, dot files and truth sidecars left out), .gz inside", async () => {
  const d = join(dir, "train");
  mkdirSync(join(d, "sub"), { recursive: true });
  await writeSynth(join(d, "b.txt"), { rows: 30, seed: 2, ...world });
  await writeSynth(join(d, "a.txt"), { rows: 20, seed: 1, ...world });
  await writeSynth(join(dir, "c-src.txt"), { rows: 10, seed: 3, ...world });
  writeFileSync(join(d, "c.txt.gz"), gzipSync(readFileSync(join(dir, "c-src.txt"))));
  writeFileSync(join(d, "c.txt.gz.truth.csv"), readFileSync(join(dir, "c-src.txt.truth.csv")));
  writeFileSync(join(d, ".hidden"), "not data\n");
  writeFileSync(join(d, "sub", "z.txt"), "not read\n");
  assert.deepEqual(dataFiles(d), ["a.txt", "b.txt", "c.txt.gz"].map((n) => join(d, n)));
  const all = await keys(d);
  assert.equal(all.length, 60);
  // the same rows as the files one by one, in name order
  assert.deepEqual(all, [...(await keys(join(d, "a.txt"))), ...(await keys(join(d, "b.txt"))), ...(await keys(join(dir, "c-src.txt")))]);
  const reader = readData(d, "aliccp");
  await readAll(reader);
  assert.equal(reader.stats.rows, 60);
  assert.equal(reader.stats.lines, 60);
});

test("a glob: the files it matches, in path order", async () => {
  const d = join(dir, "glob");
  mkdirSync(d);
  for (const [name, seed] of [["part-2.txt", 2], ["part-1.txt", 1], ["other.txt", 3]] as const) await writeSynth(join(d, name), { rows: 10, seed, ...world });
  assert.deepEqual(dataFiles(join(d, "part-*.txt")), [join(d, "part-1.txt"), join(d, "part-2.txt")]);
  assert.deepEqual(dataFiles(join(d, "part-[2].txt")), [join(d, "part-2.txt")]);
  assert.equal((await keys(join(d, "part-?.txt"))).length, 20);
  assert.throws(() => dataFiles(join(d, "none-*.txt")), (e: unknown) => e instanceof MtlError && /no file matches the pattern/.test(e.message));
});

test("a directory of shards reads as one source; shards and text mixed are refused", async () => {
  const d = join(dir, "shards");
  mkdirSync(d);
  for (const seed of [1, 2]) {
    await writeSynth(join(dir, `s${seed}.txt`), { rows: 40, seed, ...world });
    await prepareShard(join(dir, `s${seed}.txt`), join(d, `s${seed}.shard`), { format: "aliccp" });
  }
  const source = await openDataSource(d);
  assert.equal(source.rows, 80);
  await source.close();
  assert.deepEqual(await keys(d), [...(await keys(join(d, "s1.shard"))), ...(await keys(join(d, "s2.shard")))]);
  // shuffled: every row once
  const s = await openDataSource(d);
  const seen: number[] = [];
  for await (const b of s.batches({ batchSize: 16, seed: 3 })) seen.push(...b.sampleKey);
  await s.close();
  assert.deepEqual([...seen].sort(), [...(await keys(d))].sort());
  writeFileSync(join(d, "t.txt"), readFileSync(join(dir, "s1.txt")));
  await assert.rejects(openDataSource(d), (e: unknown) => e instanceof MtlError && /mixes shards and text files/.test(e.message));
});

test("mtl train --train <empty dir>: one line naming it, no EISDIR stack", () => {
  const empty = join(dir, "empty");
  mkdirSync(empty);
  const r = spawnSync(process.execPath, [join(REPO_ROOT, "bin", "mtl.js"), "train", "--train", empty, "--out", join(dir, "run-empty")], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /empty: the data directory holds no files/);
  assert.doesNotMatch(r.stderr, /EISDIR|\n\s+at /);
});

test("mtl data inspect and mtl data prepare take a directory too; files that disagree on truth are refused", () => {
  const d = join(dir, "glob");
  const bin = join(REPO_ROOT, "bin", "mtl.js");
  const inspect = spawnSync(process.execPath, [bin, "data", "inspect", d], { encoding: "utf8" });
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /rows\s+30\b/);
  const shard = join(dir, "glob.shard");
  const prepare = spawnSync(process.execPath, [bin, "data", "prepare", "--input", d, "--out", shard], { encoding: "utf8" });
  assert.equal(prepare.status, 0, prepare.stderr);
  assert.match(prepare.stdout, /30 rows/);
  // a.txt with its truth sidecar beside c.txt.gz without one
  const m = join(dir, "mixed");
  mkdirSync(m);
  for (const f of ["a.txt", "a.txt.truth.csv", "c.txt.gz"]) writeFileSync(join(m, f), readFileSync(join(dir, "train", f)));
  const mixed = spawnSync(process.execPath, [bin, "data", "prepare", "--input", m, "--out", join(dir, "mixed.shard")], { encoding: "utf8" });
  assert.equal(mixed.status, 1);
  assert.match(mixed.stderr, /the files disagree on ground truth: .*a\.txt has a truth sidecar, .*c\.txt\.gz has none/);
});
