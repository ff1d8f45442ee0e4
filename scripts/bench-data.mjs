// Data benchmarks (not tests): Ali-CCP text parsing lines/s on ~900-token lines, node:readline vs
// mtl's chunked splitter, shard reading rows/s (raw row groups and the shuffling batcher), and peak
// RSS of `mtl data prepare` on a >= 5 GB text file (generated under the temp dir, deleted after).
//
//   npm run build && npm run bench:data              # everything (the 5 GB part takes a few minutes)
//   node scripts/bench-data.mjs --skip-big           # parsing and shard reading only
//   node scripts/bench-data.mjs --big-gb 5.2          # size of the big file
//   node scripts/bench-data.mjs --skip-big --json     # also one JSON object of the rates on the last line
import { createReadStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const mtl = await import(join(root, "dist", "src", "index.js"));
const dist = (path) => import(join(root, "dist", "src", path));
const { readAliccp, LineSplitter, openByteSource, ShardWriter, ShardReader, shardBatches, defaultAliccpSchema } = {
  ...(await dist("data/aliccp.js")), ...(await dist("data/lines.js")), ...(await dist("data/shard.js")), ...(await dist("data/batcher.js")), ...(await dist("features/schema.js")),
};

const args = process.argv.slice(2);
const skipBig = args.includes("--skip-big");
const bigGb = Number(args[args.indexOf("--big-gb") + 1]) || 5.2;
const dir = mkdtempSync(join(tmpdir(), "mtl-bench-"));
const fmt = (n) => Math.round(n).toLocaleString("en-US");

const { writeAliccpText: writeLines, aliccpLineBody, lcg } = await import(join(root, "scripts", "bench-lib.mjs"));
const json = args.includes("--json");
const results = {};

// 1. Parsing
const textFile = join(dir, "parse.txt");
const { lines: nLines, bytes: nBytes } = await writeLines(textFile, 60_000);
const tokens = 1 + aliccpLineBody(lcg()).split(",").length;
console.log(`parse input: ${fmt(nLines)} lines, ${(nBytes / nLines / 1000).toFixed(1)} kB/line, ${tokens} tokens/line (${(nBytes / 1e6).toFixed(0)} MB, page-cached)`);

async function timeIt(label, fn, reps = 3) {
  let best = Infinity;
  let result;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    result = await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return { secs: best, result };
}

const readlineRun = await timeIt("readline", async () => {
  const rl = createInterface({ input: createReadStream(textFile, { highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  let n = 0;
  for await (const _ of rl) n++;
  return n;
});
const splitterRun = await timeIt("splitter", async () => {
  const src = await openByteSource(textFile);
  const split = new LineSplitter();
  let n = 0;
  for await (const c of src.chunks()) {
    split.push(c);
    n += split.lines.length;
  }
  split.finish();
  return n + split.lines.length;
});
console.log(`line splitting only: node:readline ${fmt(readlineRun.result / readlineRun.secs)} lines/s, mtl LineSplitter ${fmt(splitterRun.result / splitterRun.secs)} lines/s`);
const parseRun = await timeIt("parse", async () => {
  const r = readAliccp(textFile, { truthFile: null });
  let rows = 0;
  for await (const b of r.blocks()) rows += b.size;
  return rows;
});
results.text_lines_per_s = parseRun.result / parseRun.secs;
console.log(`Ali-CCP read + parse + encode (default schema, one core): ${fmt(parseRun.result / parseRun.secs)} lines/s, ${(nBytes / parseRun.secs / 1e6).toFixed(0)} MB/s (best of 3)`);

// gzip: the same lines compressed (first 10,000), read through zlib
{
  const { gzipSync } = await import("node:zlib");
  const { readFileSync, writeFileSync } = await import("node:fs");
  const text = readFileSync(textFile);
  let cut = 0;
  for (let k = 0; k < 10_000; k++) cut = text.indexOf(10, cut) + 1;
  const gzFile = join(dir, "parse.txt.gz");
  writeFileSync(gzFile, gzipSync(text.subarray(0, cut)));
  const gzRun = await timeIt("gz", async () => {
    let rows = 0;
    for await (const b of readAliccp(gzFile, { truthFile: null }).blocks()) rows += b.size;
    return rows;
  });
  console.log(`Ali-CCP from .gz (${(statSync(gzFile).size / 1e6).toFixed(0)} MB compressed): ${fmt(gzRun.result / gzRun.secs)} lines/s`);
  rmSync(gzFile);
}

// 2. Shard reading: 1,048,576 rows (64 row groups of 16,384 parsed rows)
const shardFile = join(dir, "read.shard");
{
  const r = readAliccp(textFile, { truthFile: null, blockRows: 16384 });
  const it = r.blocks();
  const block = (await it.next()).value;
  await it.return();
  const w = await ShardWriter.create(shardFile, defaultAliccpSchema(), { truth: false });
  for (let g = 0; g < 64; g++) await w.write(block);
  await w.close();
}
const shardBytes = statSync(shardFile).size;
const groupsRun = await timeIt("groups", async () => {
  const s = await ShardReader.open(shardFile);
  let rows = 0;
  for await (const b of s.batches()) rows += b.size;
  await s.close();
  return rows;
});
results.shard_rows_per_s = groupsRun.result / groupsRun.secs;
console.log(`shard read (row groups, ${(shardBytes / 1e6).toFixed(0)} MB page-cached, ${fmt(groupsRun.result)} rows): ${fmt(groupsRun.result / groupsRun.secs)} rows/s, ${(shardBytes / groupsRun.secs / 1e9).toFixed(2)} GB/s`);
const batchRun = await timeIt("batcher", async () => {
  const s = await ShardReader.open(shardFile);
  let rows = 0;
  for await (const b of shardBatches(s, { batchSize: 1024, seed: 1 })) rows += b.size;
  await s.close();
  return rows;
}, 2);
results.batcher_rows_per_s = batchRun.result / batchRun.secs;
console.log(`shard read through the shuffling batcher (batch 1024, window 262,144 rows): ${fmt(batchRun.result / batchRun.secs)} rows/s`);
rmSync(shardFile);
rmSync(textFile);
{
  const rows = 200_000;
  const world = new mtl.SynthWorld({ seed: 1 });
  const run = await timeIt("synth", async () => {
    let n = 0;
    for (const b of mtl.synthBatches({ rows, batchSize: 4096 }, world)) n += b.size;
    return n;
  }, 2);
  console.log(`in-process synthetic funnel (default world, 23 fields): ${fmt(run.result / run.secs)} rows/s`);
}

// 3. Peak RSS preparing a >= 5 GB file
if (!skipBig) {
  const big = join(dir, "big.txt");
  const t0 = performance.now();
  const { lines: bigLines, bytes: bigBytes } = await writeLines(big, Infinity, bigGb * 1e9);
  console.log(`big input: ${fmt(bigLines)} lines, ${(bigBytes / 1e9).toFixed(2)} GB, written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const out = join(dir, "big.shard");
  const t1 = performance.now();
  const r = spawnSync("/usr/bin/time", ["-v", process.execPath, join(root, "bin", "mtl.js"), "data", "prepare", "--input", big, "--out", out], { encoding: "utf8", maxBuffer: 1 << 26 });
  const secs = (performance.now() - t1) / 1000;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (r.status !== 0) console.log(`prepare failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
  else
    console.log(
      `mtl data prepare on ${(bigBytes / 1e9).toFixed(2)} GB: ${secs.toFixed(0)} s (${fmt(bigLines / secs)} lines/s incl. process start), peak RSS ${rss ? (Number(rss[1]) / 1024).toFixed(0) + " MB" : "unknown"}, shard ${(statSync(out).size / 1e6).toFixed(0)} MB\n  ${r.stdout.trim().split("\n").join("\n  ")}`,
    );
}
rmSync(dir, { recursive: true, force: true });
if (json) console.log(JSON.stringify({ what: "data", ...results }));
