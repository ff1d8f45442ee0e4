/**
 * `mtl data inspect`: what a data file holds. Rows, click rate, conversion rate (over impressions),
 * CVR among clicks; with ground truth, the mean true CVR over all impressions vs clicked ones (the
 * selection bias); per id feature the coverage and a histogram of ids per row; per table the
 * vocabulary occupancy; rows rejected by reason and fields the schema does not read.
 * Text files are read with --skip-bad semantics so every rejected row is counted.
 */
import type { Batch, Layout, ReadBlock } from "../features/batch.js";
import { REJECT_REASONS, type RejectReason } from "../features/encode.js";
import type { FeatureSchema } from "../features/schema.js";
import { readData } from "./open.js";
import type { DataFormat, ReadProgress } from "./reader.js";
import { isShardFile, ShardReader } from "./shard.js";

/** Tables larger than this get no occupancy count (its bitset would pass 128 MB). */
export const MAX_OCCUPANCY_ROWS = 2 ** 30;

/** Histogram buckets of ids per row: 0, 1, 2, 3, 4–7, 8–15, ..., 256+. */
export const ID_COUNT_BUCKETS: readonly string[] = ["0", "1", "2", "3", "4-7", "8-15", "16-31", "32-63", "64-127", "128-255", "256+"];
function bucketOf(n: number): number {
  if (n < 4) return n;
  if (n >= 256) return 10;
  return 2 + (31 - Math.clz32(n)); // floor(log2 n) is 2..7 for 4..255: buckets 4..9
}

export interface FeatureReport {
  name: string;
  table: string;
  maxLen: number;
  /** Fraction of rows with at least one id. */
  coverage: number;
  meanIdsPerRow: number;
  maxIdsPerRow: number;
  /** Fraction of rows with more ids than max_len (their extra ids are dropped). */
  truncatedRows: number;
  /** Counts per ID_COUNT_BUCKETS bucket. */
  histogram: number[];
}

export interface DataReport {
  file: string;
  kind: "text" | "shard";
  format: DataFormat | "shard";
  schemaName: string;
  rows: number;
  clicks: number;
  conversions: number;
  clickRate: number;
  /** Conversions over impressions (the CTCVR rate). */
  conversionRate: number;
  /** Conversions over clicks. */
  cvrAmongClicks: number;
  /** A single-label schema (labels.conversion null, look-alike): `clicks` counts its positives. */
  singleLabel: string | null;
  /** Rows per task id when the schema names a task column (look-alike campaigns). */
  tasks: null | { column: string; count: number; minRows: number; medianRows: number; maxRows: number };
  truth: null | {
    meanTrueCtr: number;
    meanTrueCvrAll: number;
    meanTrueCvrClicked: number;
    potentialConversionRate: number;
  };
  /** Whether id counts are before truncation (text) or after max_len (shards). */
  idCountsBeforeTruncation: boolean;
  features: FeatureReport[];
  tables: { name: string; rows: number; dim: number; idsSeen: number; occupancy: number }[];
  rejected: { reason: RejectReason; description: string; count: number; firstLine: number; example: string }[];
  unknownFields: { field: string; tokens: number }[];
  unterminatedLastLine: boolean;
}

class Accumulator {
  rows = 0;
  clicks = 0;
  conversions = 0;
  truth = false;
  ctr = 0;
  cvrAll = 0;
  cvrClicked = 0;
  potential = 0;
  readonly taskRows = new Map<number, number>();
  readonly hist: Float64Array[];
  readonly nonEmpty: Float64Array;
  readonly sum: Float64Array;
  readonly max: Float64Array;
  readonly truncated: Float64Array;
  /** Bitsets of ids seen per table (null past MAX_OCCUPANCY_ROWS rows: 128 MB of bits). */
  readonly seen: (Uint32Array | null)[];

  constructor(readonly layout: Layout) {
    const n = layout.idFeatures.length;
    this.hist = layout.idFeatures.map(() => new Float64Array(ID_COUNT_BUCKETS.length));
    this.nonEmpty = new Float64Array(n);
    this.sum = new Float64Array(n);
    this.max = new Float64Array(n);
    this.truncated = new Float64Array(n);
    this.seen = layout.tables.map((t) => (t.rows <= MAX_OCCUPANCY_ROWS ? new Uint32Array((t.rows + 31) >>> 5) : null));
  }

  add(b: Batch, rawCounts: Int32Array | null): void {
    const { layout } = this;
    const nf = layout.idFeatures.length;
    for (let r = 0; r < b.size; r++) {
      this.clicks += b.click[r]!;
      this.conversions += b.conversion[r]!;
      if (b.task) this.taskRows.set(b.task[r]!, (this.taskRows.get(b.task[r]!) ?? 0) + 1);
      if (b.truth) {
        this.ctr += b.truth.ctr[r]!;
        this.cvrAll += b.truth.cvr[r]!;
        if (b.click[r]) this.cvrClicked += b.truth.cvr[r]!;
        this.potential += b.truth.conversion[r]!;
      }
    }
    if (b.truth) this.truth = true;
    this.rows += b.size;
    layout.idFeatures.forEach((c, fi) => {
      const w = layout.tables[c.table]!.width;
      const ids = b.ids[c.table]!;
      const seen = this.seen[c.table]!;
      const m = c.feature.maxLen;
      for (let r = 0; r < b.size; r++) {
        let n = 0;
        for (let j = 0; j < m; j++) {
          const id = ids[r * w + c.offset + j]!;
          if (id !== 0) {
            n++;
            if (seen) seen[id >>> 5]! |= 1 << (id & 31);
          }
        }
        const count = rawCounts ? rawCounts[r * nf + fi]! : n;
        this.hist[fi]![bucketOf(count)]!++;
        if (count > 0) this.nonEmpty[fi]!++;
        this.sum[fi]! += count;
        if (count > this.max[fi]!) this.max[fi] = count;
        if (count > m) this.truncated[fi]!++;
      }
    });
  }
}

function finish(acc: Accumulator, base: Omit<DataReport, "rows" | "clicks" | "conversions" | "clickRate" | "conversionRate" | "cvrAmongClicks" | "singleLabel" | "tasks" | "truth" | "features" | "tables">): DataReport {
  const { layout, rows } = acc;
  const per = (x: number, d: number) => (d > 0 ? x / d : NaN);
  const { schema } = layout;
  const perTask = [...acc.taskRows.values()].sort((a, b) => a - b);
  return {
    ...base,
    singleLabel: schema.labels.conversion === null ? schema.labels.click : null,
    tasks: schema.task !== null && perTask.length
      ? { column: schema.task, count: perTask.length, minRows: perTask[0]!, medianRows: perTask[Math.floor((perTask.length - 1) / 2)]!, maxRows: perTask.at(-1)! }
      : null,
    rows,
    clicks: acc.clicks,
    conversions: acc.conversions,
    clickRate: per(acc.clicks, rows),
    conversionRate: per(acc.conversions, rows),
    cvrAmongClicks: per(acc.conversions, acc.clicks),
    truth: acc.truth
      ? { meanTrueCtr: per(acc.ctr, rows), meanTrueCvrAll: per(acc.cvrAll, rows), meanTrueCvrClicked: per(acc.cvrClicked, acc.clicks), potentialConversionRate: per(acc.potential, rows) }
      : null,
    features: layout.idFeatures.map((c, fi) => ({
      name: c.feature.name,
      table: c.feature.table,
      maxLen: c.feature.maxLen,
      coverage: per(acc.nonEmpty[fi]!, rows),
      meanIdsPerRow: per(acc.sum[fi]!, rows),
      maxIdsPerRow: acc.max[fi]!,
      truncatedRows: per(acc.truncated[fi]!, rows),
      histogram: Array.from(acc.hist[fi]!),
    })),
    tables: layout.tables.map((t, i) => {
      const s = acc.seen[i];
      if (!s) return { name: t.name, rows: t.rows, dim: t.dim, idsSeen: NaN, occupancy: NaN };
      let seen = 0;
      for (let k = 0; k < s.length; k++) {
        let v = s[k]!;
        if (k === 0) v &= ~1; // id 0 is padding
        v = v - ((v >>> 1) & 0x55555555);
        v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
        seen += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
      }
      return { name: t.name, rows: t.rows, dim: t.dim, idsSeen: seen, occupancy: seen / Math.max(t.rows - 1, 1) };
    }),
  };
}

export interface InspectOptions {
  format?: DataFormat;
  schema?: FeatureSchema;
  truthFile?: string | null;
  onProgress?: (p: ReadProgress) => void;
}

/** Inspect a text data file or a shard (detected by its magic bytes). */
export async function inspectData(file: string, opts: InspectOptions = {}): Promise<DataReport> {
  if (await isShardFile(file)) {
    const shard = await ShardReader.open(file, opts.schema ? { expectSchema: opts.schema } : {});
    try {
      const acc = new Accumulator(shard.layout);
      for await (const b of shard.batches()) acc.add(b, null);
      const rejected = (shard.info.rejected ?? []) as DataReport["rejected"];
      return finish(acc, {
        file, kind: "shard", format: "shard", schemaName: shard.schema.name, idCountsBeforeTruncation: false,
        rejected, unknownFields: (shard.info.unknownFields ?? []) as DataReport["unknownFields"], unterminatedLastLine: false,
      });
    } finally {
      await shard.close();
    }
  }
  const format = opts.format ?? "aliccp";
  const reader = readData(file, format, {
    ...(opts.schema ? { schema: opts.schema } : {}),
    ...(opts.truthFile !== undefined ? { truthFile: opts.truthFile } : {}),
    skipBad: true,
    rawIdCounts: true,
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  const acc = new Accumulator(reader.layout);
  for await (const b of reader.blocks()) acc.add(b, (b as ReadBlock).rawIdCounts);
  const s = reader.stats;
  return finish(acc, {
    file, kind: "text", format, schemaName: reader.layout.schema.name, idCountsBeforeTruncation: true,
    rejected: rejectedList(s.rejected),
    unknownFields: [...s.unknownFields].map(([field, tokens]) => ({ field, tokens })).sort((a, b) => b.tokens - a.tokens),
    unterminatedLastLine: s.unterminatedLastLine,
  });
}

export function rejectedList(m: ReadonlyMap<RejectReason, { count: number; firstLine: number; example: string }>): DataReport["rejected"] {
  return [...m].map(([reason, r]) => ({ reason, description: REJECT_REASONS[reason], count: r.count, firstLine: r.firstLine, example: r.example }));
}

const pct = (x: number) => (Number.isNaN(x) ? "-" : `${(100 * x).toFixed(x < 0.001 && x > 0 ? 4 : 2)}%`);
const num = (x: number) => x.toLocaleString("en-US");

/** A human-readable report. */
export function formatReport(r: DataReport): string {
  const lines: string[] = [];
  lines.push(`${r.file} (${r.kind === "shard" ? "shard" : r.format}, schema '${r.schemaName}')`);
  lines.push(`  rows              ${num(r.rows)}`);
  if (r.singleLabel !== null) lines.push(`  ${`label '${r.singleLabel}'`.padEnd(17)} ${num(r.clicks)} positive (${pct(r.clickRate)})`);
  else {
    lines.push(`  clicks            ${num(r.clicks)}  (click rate ${pct(r.clickRate)})`);
    lines.push(`  conversions       ${num(r.conversions)}  (conversion rate over impressions ${pct(r.conversionRate)}, CVR among clicks ${pct(r.cvrAmongClicks)})`);
  }
  if (r.tasks) lines.push(`  ${`tasks '${r.tasks.column}'`.padEnd(17)} ${num(r.tasks.count)}, rows per task: min ${num(r.tasks.minRows)}, median ${num(r.tasks.medianRows)}, max ${num(r.tasks.maxRows)}`);
  if (r.truth) {
    const t = r.truth;
    lines.push(`  ground truth      mean true CTR ${pct(t.meanTrueCtr)}; potential conversions ${pct(t.potentialConversionRate)} of impressions`);
    lines.push(`  selection bias    mean true CVR: all impressions ${pct(t.meanTrueCvrAll)}, clicked impressions ${pct(t.meanTrueCvrClicked)} (ratio ${(t.meanTrueCvrClicked / t.meanTrueCvrAll).toFixed(2)})`);
  }
  if (r.unterminatedLastLine) lines.push("  warning           the last line had no newline (it parsed and was kept)");
  lines.push(`  ids per row ${r.idCountsBeforeTruncation ? "(as in the file, before max_len)" : "(stored, after max_len)"}:`);
  const head = ["feature", "coverage", "mean", "max", ">max_len", ...ID_COUNT_BUCKETS];
  const rows = r.features.map((f) => [f.name, pct(f.coverage), f.meanIdsPerRow.toFixed(2), String(f.maxIdsPerRow), pct(f.truncatedRows), ...f.histogram.map((h) => String(h))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  for (const row of [head, ...rows]) lines.push("    " + row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
  lines.push("  vocabulary occupancy:");
  for (const t of r.tables)
    lines.push(Number.isNaN(t.idsSeen) ? `    ${t.name}: ${num(t.rows - 1)} ids (too many to count occupancy), dim ${t.dim}` : `    ${t.name}: ${num(t.idsSeen)} of ${num(t.rows - 1)} ids seen (${pct(t.occupancy)}), dim ${t.dim}`);
  if (r.unknownFields.length) lines.push(`  fields not in the schema (ignored): ${r.unknownFields.map((u) => `${u.field} (${num(u.tokens)} tokens)`).join(", ")}`);
  if (r.rejected.length) {
    lines.push("  rows left out:");
    for (const x of r.rejected) lines.push(`    ${x.description}: ${num(x.count)} (first at line ${x.firstLine})`);
  } else lines.push("  rows left out: none");
  return lines.join("\n");
}
