/**
 * `mtl run`: stream a data file through an exported model. Rows are read and encoded by the same
 * readers as training (src/data, with the model's embedded schema), scored in blocks, and written as
 * CSV or JSONL with each row's input line number (rows dropped under --skip-bad leave a gap that the
 * summary names). While the session scores one block in its worker thread, the next block is parsed.
 * The output is written under a temporary name and renamed when complete: a failed run leaves no
 * half-written predictions behind.
 */
import { createWriteStream, rmSync, type WriteStream } from "node:fs";
import { MtlError } from "../errors.js";
import { commitFile, temporaryPath } from "../util/atomic.js";
import type { ReadBlock } from "../features/batch.js";
import { readData, guessFormat } from "../data/open.js";
import type { DataFormat, ReadProgress, ReadStats } from "../data/reader.js";
import type { Scores } from "../models/feeds.js";
import type { Scorer } from "./scorer.js";

export type PredictionFormat = "csv" | "jsonl";

export interface ScoreFileOptions {
  input: string;
  output: string;
  /** Input format (default: from the file name). */
  format?: DataFormat;
  /** Output format (default: from the output name; .jsonl/.ndjson → jsonl, else csv). */
  outputFormat?: PredictionFormat;
  /** Rows per session run (default 8192). */
  batchSize?: number;
  skipBad?: boolean;
  onProgress?: (p: ReadProgress & { scored: number }) => void;
}

export interface ScoreFileResult {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  stats: ReadStats;
  output: string;
}

export function predictionFormatOf(file: string): PredictionFormat {
  return /\.(jsonl|ndjson)$/i.test(file) ? "jsonl" : "csv";
}

/** A probability as text: 9 significant digits round-trip a float32 exactly. */
function num(v: number): string {
  if (v === 0) return "0";
  const s = v.toPrecision(9);
  // Trim trailing zeros only where there are any (the regexes double the cost of this function).
  return s.charCodeAt(s.length - 1) !== 48 && !s.includes("e") ? s : s.replace(/\.?0+$/, "").replace(/\.?0+e/, "e");
}

function formatBlock(block: ReadBlock, s: Scores, format: PredictionFormat): string {
  const parts: string[] = [];
  const lines = block.lines!;
  for (let i = 0; i < block.size; i++) {
    const a = num(s.p_ctr[i]!), b = num(s.p_cvr[i]!), c = num(s.p_ctcvr[i]!);
    parts.push(format === "csv" ? `${lines[i]},${a},${b},${c}\n` : `{"line":${lines[i]},"p_ctr":${a},"p_cvr":${b},"p_ctcvr":${c}}\n`);
  }
  return parts.join("");
}

function write(out: WriteStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

export async function scoreFile(scorer: Scorer, opts: ScoreFileOptions): Promise<ScoreFileResult> {
  const format = opts.format ?? guessFormat(opts.input);
  const outFormat = opts.outputFormat ?? predictionFormatOf(opts.output);
  const reader = readData(opts.input, format, {
    schema: scorer.info.schema, skipBad: opts.skipBad ?? false, blockRows: opts.batchSize ?? 8192,
    lineNumbers: true, labels: false, truthFile: null,
    onProgress: (p) => opts.onProgress?.({ ...p, scored }),
  });
  const tmp = temporaryPath(opts.output, "partial");
  const out = createWriteStream(tmp);
  const opened = new Promise<void>((resolve, reject) => {
    out.once("open", () => resolve());
    out.once("error", reject);
  });
  let scored = 0;
  const started = performance.now();
  try {
    try {
      await opened;
    } catch (err) {
      throw new MtlError("E_IO", `cannot write predictions: ${(err as Error).message}`, { where: { file: opts.output } });
    }
    await write(out, outFormat === "csv" ? "line,p_ctr,p_cvr,p_ctcvr\n" : "");
    // One block in flight while the next is parsed.
    let pending: { block: ReadBlock; scores: Promise<Scores> } | null = null;
    const flush = async () => {
      if (!pending) return;
      const { block, scores } = pending;
      pending = null;
      const s = await scores;
      await write(out, formatBlock(block, s, outFormat));
      scored += block.size;
    };
    for await (const block of reader.blocks()) {
      const next = { block, scores: scorer.score(block) };
      next.scores.catch(() => undefined); // awaited in flush; avoid an unhandled rejection meanwhile
      await flush();
      pending = next;
    }
    await flush();
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    commitFile(tmp, opts.output);
  } catch (err) {
    out.destroy();
    rmSync(tmp, { force: true });
    throw err;
  }
  const seconds = (performance.now() - started) / 1000;
  return { rows: scored, seconds, rowsPerSecond: scored / seconds, stats: reader.stats, output: opts.output };
}
