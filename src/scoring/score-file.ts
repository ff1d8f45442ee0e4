/**
 * `mtl run`: stream a data file through an exported model. Rows are read and encoded by the same
 * readers as training (src/data, with the model's embedded schema), scored in blocks, and written as
 * CSV or JSONL with each row's input line number (rows dropped under --skip-bad leave a gap that the
 * summary names). A binary shard (mtl data prepare) is recognised by its magic bytes and read row
 * group by row group without parsing; its `line` column is the row's 1-based position in the shard. While the session scores one block in its worker thread, the next block is parsed.
 * The output is written under a temporary name and renamed when complete: a failed run leaves no
 * half-written predictions behind. `-` reads standard input (its format told from the data) and
 * writes standard output; special files (/dev/stdout, a pipe) are written in place.
 */
import type { Batch, ReadBlock } from "../features/batch.js";
import type { FeatureSchema } from "../features/schema.js";
import { readData, resolveFormat } from "../data/open.js";
import { displayName, ioError, openOutputStream } from "../util/atomic.js";
import { newStats, type DataFormat, type ReadProgress, type ReadStats } from "../data/reader.js";
import { isShardFile, ShardReader } from "../data/shard.js";
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

/** Rows [start, end) of a batch as views on its arrays (no copy). */
function rowsOf(b: Batch, widths: readonly number[], denseWidth: number, start: number, end: number): Batch {
  const cut = <T extends Int32Array | Float32Array | Uint8Array | Uint32Array>(a: T, w: number): T => a.subarray(start * w, end * w) as T;
  return {
    size: end - start,
    ids: b.ids.map((a, i) => cut(a, widths[i]!)),
    weights: b.weights.map((a, i) => (a ? cut(a, widths[i]!) : null)),
    dense: cut(b.dense, denseWidth),
    click: cut(b.click, 1), conversion: cut(b.conversion, 1),
    truth: b.truth ? { ctr: cut(b.truth.ctr, 1), cvr: cut(b.truth.cvr, 1), conversion: cut(b.truth.conversion, 1) } : null,
    userId: b.userId ? cut(b.userId, 1) : null,
    sampleKey: cut(b.sampleKey, 1),
    task: b.task ? cut(b.task, 1) : null,
  };
}

/**
 * A shard as a reader of scoring blocks: its rows in file order, `blockRows` at a time, numbered
 * 1, 2, ... The shard must have been written for the model's schema (checked by hash).
 */
async function readShardBlocks(file: string, schema: FeatureSchema, blockRows: number, onProgress: (p: ReadProgress) => void): Promise<{ stats: ReadStats; blocks(): AsyncGenerator<ReadBlock> }> {
  const shard = await ShardReader.open(file, { expectSchema: schema });
  const stats = newStats(file, "shard");
  const widths = shard.layout.tables.map((t) => t.width);
  const denseWidth = shard.layout.denseWidth;
  async function* blocks(): AsyncGenerator<ReadBlock> {
    try {
      let row = 0;
      let bytesRead = 0;
      // One row group read ahead, so the file read overlaps scoring.
      let next: Promise<Batch> | null = shard.rowGroups ? shard.readGroup(0) : null;
      for (let g = 0; g < shard.rowGroups; g++) {
        const group = await next!;
        next = g + 1 < shard.rowGroups ? shard.readGroup(g + 1) : null;
        next?.catch(() => undefined); // awaited on the next turn; a consumer that stops early must not leave an unhandled rejection
        bytesRead += shard.bytes * (group.size / Math.max(shard.rows, 1));
        for (let s = 0; s < group.size; s += blockRows) {
          const part = rowsOf(group, widths, denseWidth, s, Math.min(s + blockRows, group.size));
          const lines = new Float64Array(part.size);
          for (let i = 0; i < part.size; i++) lines[i] = row + i + 1;
          row += part.size;
          stats.rows = stats.lines = row;
          yield { ...part, rawIdCounts: null, lines };
        }
        onProgress({ fileBytes: shard.bytes, bytesRead: Math.round(bytesRead), lines: row, rows: row });
      }
    } finally {
      await shard.close();
    }
  }
  return { stats, blocks };
}

export async function scoreFile(scorer: Scorer, opts: ScoreFileOptions): Promise<ScoreFileResult> {
  const outFormat = opts.outputFormat ?? predictionFormatOf(opts.output);
  const blockRows = opts.batchSize ?? 8192;
  const onProgress = (p: ReadProgress) => opts.onProgress?.({ ...p, scored });
  const reader = opts.input !== "-" && (await isShardFile(opts.input))
    ? await readShardBlocks(opts.input, scorer.info.schema, blockRows, onProgress)
    : readData(opts.input, await resolveFormat(opts.input, opts.format), {
      schema: scorer.info.schema, skipBad: opts.skipBad ?? false, blockRows, lineNumbers: true, labels: false, truthFile: null, onProgress,
    });
  const out = await openOutputStream(opts.output, "predictions");
  let scored = 0;
  const started = performance.now();
  try {
    // The header goes out with the first scores: standard output cannot be rolled back, so an input
    // that fails before any row scores leaves it empty rather than holding a lone header.
    let header = outFormat === "csv" ? "line,p_ctr,p_cvr,p_ctcvr\n" : "";
    // Two blocks in flight per session while the next is parsed: one running and one queued behind
    // it (the scorer sends blocks round robin), so no worker waits for the main thread to format the
    // oldest block and read the next (2 sessions on 2 loaded cores: 3 blocks in flight scored 24%
    // slower than 4, docs/bench.md). With one session: one block running, one queued, as before.
    // Results are written strictly in input order, oldest first.
    const inFlight = 2 * Math.max(1, scorer.sessionCount);
    const pending: { block: ReadBlock; scores: Promise<Scores> }[] = [];
    const flush = async () => {
      const { block, scores } = pending.shift()!;
      const s = await scores;
      await out.write(header + formatBlock(block, s, outFormat));
      header = "";
      scored += block.size;
    };
    for await (const block of reader.blocks()) {
      const next = { block, scores: scorer.score(block) };
      next.scores.catch(() => undefined); // awaited in flush; avoid an unhandled rejection meanwhile
      pending.push(next);
      while (pending.length >= inFlight) await flush();
    }
    while (pending.length) await flush();
    if (header) await out.write(header);
    await out.commit();
  } catch (err) {
    out.abort();
    throw ioError(err, displayName(opts.output, "out"), "predictions");
  }
  const seconds = (performance.now() - started) / 1000;
  return { rows: scored, seconds, rowsPerSecond: scored / seconds, stats: reader.stats, output: displayName(opts.output, "out") };
}
