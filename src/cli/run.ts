import { availableParallelism } from "node:os";
import { escapeControl, MtlError } from "../errors.js";
import { refuseOverwritingInput } from "../util/atomic.js";
import { DATA_FORMATS, totalRejected, type DataFormat } from "../data/reader.js";
import { scoreFile } from "../scoring/score-file.js";
import { Scorer } from "../scoring/scorer.js";
import { progressPrinter } from "./data.js";
import { formatBytes, formatCount } from "./format.js";
import { device } from "./train.js";
import { writesInPlace } from "../util/atomic.js";
import type { PredictionFormat } from "../scoring/score-file.js";

export interface RunArgs {
  model: string;
  input: string;
  output: string;
  format?: string;
  outputFormat?: string;
  json?: boolean;
  batchSize: number;
  skipBad: boolean;
  threads: number;
  /** Default: 2 (1 on a 1-core machine). */
  sessions?: number;
  device?: string;
  skipChecksum?: boolean;
}

export async function runCommand(args: RunArgs): Promise<void> {
  if (args.format !== undefined && !DATA_FORMATS.includes(args.format as DataFormat)) {
    throw new MtlError("E_USAGE", `unknown format '${args.format}'`, { hint: `use one of ${DATA_FORMATS.join(", ")}` });
  }
  if (!(Number.isInteger(args.batchSize) && args.batchSize > 0)) throw new MtlError("E_USAGE", `--batch-size must be a positive integer, got ${args.batchSize}`, { where: { field: "batch-size" } });
  refuseOverwritingInput(args.output, [{ path: args.model, what: "the model" }, { path: `${args.model}.data`, what: "the model's external data" }, { path: args.input, what: "the data" }], "--output");
  const dev = device(args.device);
  // Two sessions by default: on 2 cores they scored a shard 1.3x faster than one (docs/bench.md).
  const sessions = args.sessions ?? Math.min(2, availableParallelism());
  if (!(Number.isInteger(sessions) && sessions > 0)) throw new MtlError("E_USAGE", `--sessions must be a positive integer, got ${sessions}`, { where: { field: "sessions" } });
  const scorer = await Scorer.open(args.model, { intraOpThreads: args.threads, sessions, skipChecksum: args.skipChecksum ?? false, ...(dev ? { device: dev } : {}) });
  const progress = progressPrinter("run");
  const start = Date.now();
  try {
    const r = await scoreFile(scorer, {
      input: args.input, output: args.output, format: args.format as DataFormat | undefined, outputFormat: args.outputFormat as PredictionFormat | undefined, batchSize: args.batchSize, skipBad: args.skipBad,
      onProgress: (p) => {
        const secs = Math.max((Date.now() - start) / 1000, 1e-3);
        const share = p.fileBytes ? `, ${(100 * p.bytesRead / p.fileBytes).toFixed(1)}% of ${formatBytes(p.fileBytes)}` : `, ${formatBytes(p.bytesRead)} read`;
        progress.update(`${formatCount(p.scored)} rows scored${share}, ${formatCount(Math.round(p.scored / secs))} rows/s`);
      },
    });
    progress.done();
    // Predictions on standard output (or /dev/stdout, a pipe): the summary goes to stderr beside them.
    const summaryStream = writesInPlace(args.output) ? process.stderr : process.stdout;
    if (args.json) {
      const rejected = Object.fromEntries([...r.stats.rejected].map(([reason, c]) => [reason, { count: c.count, first: c.example }]));
      summaryStream.write(JSON.stringify({ model: scorer.info.model, rows: r.rows, seconds: r.seconds, rowsPerSecond: r.rowsPerSecond, output: r.output, rejected, unterminatedLastLine: r.stats.unterminatedLastLine }) + "\n");
      return;
    }
    const out = [`scored ${formatCount(r.rows)} rows with ${scorer.info.model} in ${r.seconds.toFixed(2)} s: ${formatCount(Math.round(r.rowsPerSecond))} rows/s -> ${r.output}`];
    if (totalRejected(r.stats) > 0) {
      out.push("rows left out (their line numbers are missing from the output):");
      for (const [reason, c] of r.stats.rejected) out.push(`  ${reason}: ${formatCount(c.count)} (first: ${escapeControl(c.example)})`);
    }
    if (r.stats.unterminatedLastLine) out.push("warning: the last line had no newline (it parsed and was scored)");
    summaryStream.write(out.join("\n") + "\n");
  } finally {
    progress.done();
    await scorer.release();
  }
}
