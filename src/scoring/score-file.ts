/**
 * `mtl run`: stream a data file through an exported model. Rows are read and encoded by the same
 * readers as training (src/data, with the model's embedded schema), scored in blocks, and written as
 * CSV or JSONL with each row's input line number (rows dropped under --skip-bad leave a gap that the
 * summary names). While the session scores one block in its worker thread, the next block is parsed.
 * The output is written under a temporary name and renamed when complete: a failed run leaves no
 * half-written predictions behind. `-` reads standard input (its format told from the data) and
 * writes standard output; special files (/dev/stdout, a pipe) are written in place.
 */
import type { ReadBlock } from "../features/batch.js";
import { readData, resolveFormat } from "../data/open.js";
import { displayName, ioError, openOutputStream } from "../util/atomic.js";
import type { DataFormat, ReadProgress, ReadStats } from "../data/reader.js";
import type { Scores } from "../models/feeds.js";
import type { Scorer } from "./scorer.js";

export type PredictionFormat = "csv" | "jsonl";

export interface ScoreFileOptions {
  /** A data file, or `-` for standard input. */
  input: string;
  /** A .csv or .jsonl file, or `-` for standard output. */
  output: string;
  /** Input format (default: from the file name; for standard input, from its first line). */
  format?: DataFormat;
  /** Output format (default: from the output name; .jsonl/.ndjson → jsonl, else csv, also for `-`). */
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
  /** Where the predictions went, as messages name it (`<stdout>` for `-`). */
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

export async function scoreFile(scorer: Scorer, opts: ScoreFileOptions): Promise<ScoreFileResult> {
  const format = await resolveFormat(opts.input, opts.format);
  const outFormat = opts.outputFormat ?? predictionFormatOf(opts.output);
  const reader = readData(opts.input, format, {
    schema: scorer.info.schema, skipBad: opts.skipBad ?? false, blockRows: opts.batchSize ?? 8192,
    lineNumbers: true, labels: false, truthFile: null,
    onProgress: (p) => opts.onProgress?.({ ...p, scored }),
  });
  const out = await openOutputStream(opts.output, "predictions");
  let scored = 0;
  const started = performance.now();
  try {
    // The header goes out with the first scores: standard output cannot be rolled back, so an input
    // that fails before any row scores leaves it empty rather than holding a lone header.
    let header = outFormat === "csv" ? "line,p_ctr,p_cvr,p_ctcvr\n" : "";
    // One block in flight while the next is parsed.
    let pending: { block: ReadBlock; scores: Promise<Scores> } | null = null;
    const flush = async () => {
      if (!pending) return;
      const { block, scores } = pending;
      pending = null;
      const s = await scores;
      await out.write(header + formatBlock(block, s, outFormat));
      header = "";
      scored += block.size;
    };
    for await (const block of reader.blocks()) {
      const next = { block, scores: scorer.score(block) };
      next.scores.catch(() => undefined); // awaited in flush; avoid an unhandled rejection meanwhile
      await flush();
      pending = next;
    }
    await flush();
    if (header) await out.write(header);
    await out.commit();
  } catch (err) {
    out.abort();
    throw ioError(err, displayName(opts.output, "out"), "predictions");
  }
  const seconds = (performance.now() - started) / 1000;
  return { rows: scored, seconds, rowsPerSecond: scored / seconds, stats: reader.stats, output: displayName(opts.output, "out") };
}
