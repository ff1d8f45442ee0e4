// How the table storage of an exported model affects scoring speed (a measurement, not a test):
// the ESMM reference configuration exported as one float32 table, split into pieces, and float16,
// each scored on the same synthetic rows with onnxruntime-node.
//
//   npm run build && node scripts/bench-export.mjs [--rows 200000] [--batch 8192] [--threads 1]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { synthBatches } from "../dist/src/index.js";
import { Scorer } from "../dist/src/scoring/scorer.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values: a } = parseArgs({ options: { rows: { type: "string", default: "200000" }, batch: { type: "string", default: "8192" }, threads: { type: "string", default: "1" } } });
const tmp = mkdtempSync(join(tmpdir(), "mtl-bench-export-"));
const variants = [
  ["float32, one table", []],
  ["float32, 8 MiB: 6 column pieces", ["--max-piece-mb", "8"]],
  ["float32, 2 MiB: 17 row pieces", ["--max-piece-mb", "2"]],
  ["float16, one table", ["--fp16"]],
  ["float16, 4 MiB: 6 column pieces", ["--fp16", "--max-piece-mb", "4"]],
];
const batches = [];
for await (const b of synthBatches({ rows: Number(a.rows), seed: 1, bias: 1, batchSize: Number(a.batch) })) batches.push(b);
console.log(`scoring ${a.rows} synthetic rows in batches of ${a.batch}, onnxruntime threads ${a.threads}, best of 3 passes`);
for (const [name, flags] of variants) {
  const file = join(tmp, "m.onnx");
  execFileSync(process.execPath, [join(root, "bin", "mtl.js"), "export", "--model", "esmm", "-o", file, ...flags], { stdio: "ignore" });
  const scorer = await Scorer.open(file, { worker: false, intraOpThreads: Number(a.threads) });
  await scorer.score(batches[0]);
  let best = Infinity;
  for (let pass = 0; pass < 3; pass++) {
    const t = performance.now();
    for (const b of batches) await scorer.score(b);
    best = Math.min(best, performance.now() - t);
  }
  await scorer.release();
  console.log(`  ${name.padEnd(34)} ${(statSync(file).size / 1e6).toFixed(1).padStart(6)} MB  ${Math.round(Number(a.rows) / (best / 1000)).toLocaleString("en-US").padStart(9)} rows/s`);
}
rmSync(tmp, { recursive: true, force: true });
