import { MtlError } from "../errors.js";
import { DATA_FORMATS, totalRejected, type DataFormat } from "../data/reader.js";
import { scoreFile } from "../scoring/score-file.js";
import { Scorer } from "../scoring/scorer.js";
import { progressPrinter } from "./data.js";
import { formatBytes, formatCount } from "./format.js";
import { device } from "./train.js";

export interface RunArgs {
  model: string;
  input: string;
  output: string;
  format?: string;
  batchSize: number;
  skipBad: boolean;
  threads: number;
  device?: string;
}

export async function runCommand(args: RunArgs): Promise<void> {
  if (args.format !== undefined && !DATA_FORMATS.includes(args.format as DataFormat)) {
    throw new MtlError("E_USAGE", `unknown format '${args.format}'`, { hint: `use one of ${DATA_FORMATS.join(", ")}` });
  }
  if (!(Number.isInteger(args.batchSize) && args.batchSize > 0)) throw new MtlError("E_USAGE", `--batch-size must be a positive integer, got ${args.batchSize}`, { where: { field: "batch-size" } });
  const dev = device(args.device);
  const scorer = await Scorer.open(args.model, { intraOpThreads: args.threads, ...(dev ? { device: dev } : {}) });
  const progress = progressPrinter("run");
  const start = Date.now();
  try {
    const r = await scoreFile(scorer, {
      input: args.input, output: args.output, format: args.format as DataFormat | undefined, batchSize: args.batchSize, skipBad: args.skipBad,
      onProgress: (p) => {
        const secs = Math.max((Date.now() - start) / 1000, 1e-3);
        progress.update(`${formatCount(p.scored)} rows scored, ${(100 * (p.fileBytes ? p.bytesRead / p.fileBytes : 0)).toFixed(1)}% of ${formatBytes(p.fileBytes)}, ${formatCount(Math.round(p.scored / secs))} rows/s`);
      },
    });
    progress.done();
    const out = [`scored ${formatCount(r.rows)} rows with ${scorer.info.model} in ${r.seconds.toFixed(2)} s: ${formatCount(Math.round(r.rowsPerSecond))} rows/s -> ${r.output}`];
    if (totalRejected(r.stats) > 0) {
      out.push("rows left out (their line numbers are missing from the output):");
      for (const [reason, c] of r.stats.rejected) out.push(`  ${reason}: ${formatCount(c.count)} (first: ${c.example})`);
    }
    if (r.stats.unterminatedLastLine) out.push("warning: the last line had no newline (it parsed and was scored)");
    process.stdout.write(out.join("\n") + "\n");
  } finally {
    progress.done();
    await scorer.release();
  }
}
