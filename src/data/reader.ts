/**
 * What every text reader shares: options, statistics (rows read, rows rejected by reason, unknown
 * fields), strict/skip-bad handling, and the entry point `readData(file, format)`.
 */
import type { ErrorLocation } from "../errors.js";
import type { Layout, ReadBlock } from "../features/batch.js";
import { RowError, type RejectReason } from "../features/encode.js";
import type { FeatureSchema } from "../features/schema.js";

export type DataFormat = "aliccp" | "csv" | "jsonl";
export const DATA_FORMATS: readonly DataFormat[] = ["aliccp", "csv", "jsonl"];

export interface ReadProgress {
  readonly fileBytes: number;
  readonly bytesRead: number;
  readonly lines: number;
  readonly rows: number;
}

export interface ReadOptions {
  /** Default: the built-in Ali-CCP schema (aliccp) — required for csv/jsonl. */
  schema?: FeatureSchema;
  /** Skip bad rows and count them by reason, instead of stopping at the first. */
  skipBad?: boolean;
  /** Rows per block handed out (default 8192). */
  blockRows?: number;
  /**
   * Ali-CCP: the ground-truth sidecar (CSV `sample_id,true_ctr,true_cvr,conversion_potential`, one
   * line per data line). Default: `<file>.truth.csv` when it exists; null: never.
   */
  truthFile?: string | null;
  /** Record each row's untruncated id count per feature (inspect). */
  rawIdCounts?: boolean;
  /** Record each row's input line number. */
  lineNumbers?: boolean;
  /** CSV: the delimiter (default: tab for .tsv/.tsv.gz names, comma otherwise). */
  delimiter?: string;
  /** CSV/JSONL: whether rows must carry the label columns (default true; scoring reads rows without them). */
  labels?: boolean;
  /** Called about every 64k lines and at the end. */
  onProgress?: (p: ReadProgress) => void;
}

export interface RejectCount {
  count: number;
  /** Line of the first such row. */
  firstLine: number;
  /** The first such row's message. */
  example: string;
}

export interface ReadStats {
  readonly file: string;
  /** The text format, or "shard" for rows read from a binary shard (mtl run). */
  readonly format: DataFormat | "shard";
  /** Lines read (header included). */
  lines: number;
  /** Rows kept. */
  rows: number;
  /** Rows left out by reason: bad rows (only with skipBad; strict mode throws) and click=0 & buy=1 (always dropped). */
  readonly rejected: Map<RejectReason, RejectCount>;
  /** Ali-CCP: tokens of fields the schema does not use, by field name. */
  readonly unknownFields: Map<string, number>;
  /** The last line had no newline after it (it was parsed and kept: a truncated line fails to parse). */
  unterminatedLastLine: boolean;
  /** Whether rows carry ground truth. */
  truth: boolean;
  truthFile: string | null;
}

export function newStats(file: string, format: DataFormat | "shard"): ReadStats {
  return { file, format, lines: 0, rows: 0, rejected: new Map(), unknownFields: new Map(), unterminatedLastLine: false, truth: false, truthFile: null };
}

export function countReject(stats: ReadStats, reason: RejectReason, line: number, example: string): void {
  const r = stats.rejected.get(reason);
  if (r) r.count++;
  else stats.rejected.set(reason, { count: 1, firstLine: line, example });
}

/** Strict: rethrow with the file named. Skip-bad: count. */
export function handleBadRow(err: unknown, stats: ReadStats, skipBad: boolean): void {
  if (!(err instanceof RowError)) throw err;
  (err.where as ErrorLocation).file = stats.file;
  if (!skipBad) throw err;
  countReject(stats, err.reason, err.where.line ?? 0, err.format());
}

export interface DataReader {
  readonly layout: Layout;
  /** Final after blocks() is exhausted. blocks() streams the file once; open a new reader for another pass. */
  readonly stats: ReadStats;
  blocks(): AsyncGenerator<ReadBlock>;
}

export function totalRejected(stats: ReadStats): number {
  let n = 0;
  for (const r of stats.rejected.values()) n += r.count;
  return n;
}
