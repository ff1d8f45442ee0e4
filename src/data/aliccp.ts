/**
 * Ali-CCP in PaddleRec's preprocessed format (models/multitask/esmm/data):
 *   sample_id,click,buy,field:feature_id,field:feature_id,...
 * Field names are strings (`101`, `109_14`); feature ids are integers in one global space (0 pads).
 * `buy` is the conversion label over all impressions (the CTCVR label).
 *
 * Differences from PaddleRec's reader, on purpose: every feature token is kept (PaddleRec's skips
 * the first token after the labels); tokens of fields the schema does not use are counted, not
 * silently dropped; a row with click=0 and buy=1 is dropped and counted. Within a field the first
 * max_len ids in file order are kept.
 *
 * The parser works on bytes (no string per line or token): field names are matched by FNV-1a hash
 * and then byte-compared, ids are parsed digit by digit.
 */
import { existsSync } from "node:fs";
import { MtlError } from "../errors.js";
import { BatchBuilder, layoutOf, type ReadBlock } from "../features/batch.js";
import { RowError } from "../features/encode.js";
import { fnv1a32Bytes, FNV_OFFSET_BASIS } from "../util/hash.js";
import { defaultAliccpSchema, type FeatureSchema } from "../features/schema.js";
import { LineSplitter, openByteSource, type LineRef } from "./lines.js";
import { countReject, handleBadRow, newStats, type DataReader, type ReadOptions, type ReadStats } from "./reader.js";
import { TruthSidecar } from "./truth.js";
import { displayName, isStdio } from "../util/atomic.js";

const COMMA = 44, COLON = 58, ZERO = 48, ONE = 49, MINUS = 45;
const FNV_PRIME = 0x01000193;

function countColumns(buf: Uint8Array, s: number, e: number): number {
  let n = 1;
  for (let i = s; i < e; i++) if (buf[i] === COMMA) n++;
  return n;
}

function text(buf: Uint8Array, start: number, end: number, max = 60): string {
  const s = Buffer.from(buf.buffer, buf.byteOffset + start, Math.min(end - start, max)).toString("utf8");
  return end - start > max ? s + "..." : s;
}

/** Parses lines of one schema into a BatchBuilder. Exposed for tests and the benchmark. */
export class AliccpLineParser {
  readonly builder: BatchBuilder;
  readonly stats: ReadStats;
  private readonly hashes: Int32Array;
  private readonly names: Uint8Array[];
  private readonly featureOfHash = new Map<number, number>();
  private readonly table: Int32Array;
  private readonly offset: Int32Array;
  private readonly maxLen: Int32Array;
  private readonly vocab: Float64Array;
  private readonly buckets: Float64Array;
  private readonly counts: Int32Array;
  private readonly tableWidth: Int32Array;
  private readonly rowBase: Int32Array;
  private readonly unknownByHash = new Map<number, { name: string; count: number }>();
  /** The current row's sample id bytes (for the truth sidecar check). */
  sampleIdStart = 0;
  sampleIdEnd = 0;

  constructor(schema: FeatureSchema, stats: ReadStats, capacity: number, opts: { truth?: boolean; rawIdCounts?: boolean; lineNumbers?: boolean } = {}) {
    const layout = layoutOf(schema);
    if (layout.dense.length) throw new MtlError("E_SCHEMA", "the Ali-CCP format has no dense features", { where: { field: layout.dense[0]!.feature.name }, hint: "use csv or jsonl for a schema with dense features" });
    for (const c of layout.idFeatures) {
      if (c.feature.kind === "weighted_ids") throw new MtlError("E_SCHEMA", "the Ali-CCP format has no weights", { where: { field: c.feature.name }, hint: "use csv or jsonl for weighted_ids" });
      if (c.feature.lengthSource !== null) throw new MtlError("E_SCHEMA", "the Ali-CCP format has no length columns", { where: { field: `${c.feature.name}.length` }, hint: "use csv or jsonl for padded lists with a length column" });
      if (c.feature.idOffset !== 0 || (c.feature.hashBuckets !== null && c.feature.paddingId !== null))
        throw new MtlError("E_SCHEMA", "the Ali-CCP format has no padding values (a field's ids are its tokens)", { where: { field: `${c.feature.name}.padding_id` }, hint: "leave padding_id out for Ali-CCP data" });
    }
    if (schema.task !== null) throw new MtlError("E_SCHEMA", "the Ali-CCP format has no task column", { where: { field: "task" }, hint: "use csv or jsonl for data with a task id" });
    if (schema.labels.conversion === null) throw new MtlError("E_SCHEMA", "Ali-CCP lines carry two labels (click, buy)", { where: { field: "labels.conversion" }, hint: "name the conversion label, e.g. labels: {click: \"click\", conversion: \"buy\"}" });
    this.stats = stats;
    this.builder = new BatchBuilder(layout, capacity, opts);
    const n = layout.idFeatures.length;
    this.hashes = new Int32Array(n);
    this.names = [];
    this.table = new Int32Array(n);
    this.offset = new Int32Array(n);
    this.maxLen = new Int32Array(n);
    this.vocab = new Float64Array(n);
    this.buckets = new Float64Array(n);
    this.counts = new Int32Array(n);
    this.tableWidth = Int32Array.from(layout.tables.map((t) => t.width));
    this.rowBase = new Int32Array(layout.tables.length);
    layout.idFeatures.forEach((c, i) => {
      const name = new TextEncoder().encode(c.feature.source);
      this.names.push(name);
      const h = fnv1a32Bytes(name);
      if (this.featureOfHash.has(h)) throw new MtlError("E_SCHEMA", `two features read the same Ali-CCP field '${c.feature.source}'`, { where: { field: c.feature.name }, hint: "give each field to one feature" });
      this.featureOfHash.set(h, i);
      this.table[i] = c.table;
      this.offset[i] = c.offset;
      this.maxLen[i] = c.feature.maxLen;
      this.vocab[i] = c.feature.vocabSize ?? 0;
      this.buckets[i] = c.feature.hashBuckets ?? 0;
    });
  }

  /**
   * Parse one line into the next builder row. Returns true when a row was added, false when it was
   * dropped by policy (click=0 & buy=1, counted). Throws RowError for a bad line.
   */
  parse(buf: Uint8Array, s: number, e: number, line: number): boolean {
    if (s >= e) throw new RowError("empty_line", "the line is empty", { line }, "remove blank lines");
    const b = this.builder;
    const r = b.size;
    const nf = this.hashes.length;
    const counts = this.counts;
    counts.fill(0);
    b.clearRow(r);
    // sample_id
    let p = s;
    let h = FNV_OFFSET_BASIS;
    while (p < e && buf[p] !== COMMA) h = Math.imul(h ^ buf[p++]!, FNV_PRIME);
    const columns = (): number => countColumns(buf, s, e);
    if (p === s) throw new RowError("column_count", "the sample id is empty", { line, field: "sample_id" }, "a line is sample_id,click,buy,field:feature_id,...");
    if (p >= e - 1) throw new RowError("column_count", `expected sample_id,click,buy,field:feature_id,... but found ${columns()} column(s)`, { line }, "a line is sample_id,click,buy,field:feature_id,...");
    this.sampleIdStart = s;
    this.sampleIdEnd = p;
    const sampleKey = h >>> 0;
    p++;
    // click, buy: exactly "0" or "1"
    const labels = [0, 0];
    for (let k = 0; k < 2; k++) {
      const ls = p;
      while (p < e && buf[p] !== COMMA) p++;
      if (p === ls && p >= e) throw new RowError("column_count", `expected sample_id,click,buy,field:feature_id,... but found ${columns()} column(s)`, { line }, "a line is sample_id,click,buy,field:feature_id,...");
      if (p - ls !== 1 || (buf[ls] !== ZERO && buf[ls] !== ONE))
        throw new RowError("bad_label", `expected 0 or 1, got '${text(buf, ls, p)}'`, { line, field: k === 0 ? "click" : "buy" });
      labels[k] = buf[ls]! - ZERO;
      if (p < e) p++;
      else if (k === 0) throw new RowError("column_count", `expected sample_id,click,buy,field:feature_id,... but found ${columns()} column(s)`, { line }, "a line is sample_id,click,buy,field:feature_id,...");
    }
    if (p >= e) throw new RowError("column_count", `no field:feature_id tokens after the labels (${columns()} columns)`, { line }, "a line is sample_id,click,buy,field:feature_id,...");
    const ids = b.ids;
    const tableW = this.tableWidth;
    let lastFeature = -1;
    const names = this.names, maxLen = this.maxLen, tables = this.table, offsets = this.offset, vocab = this.vocab, buckets = this.buckets;
    const rowBase = this.rowBase;
    for (let t = 0; t < tableW.length; t++) rowBase[t] = r * tableW[t]!;
    // tokens: field:feature_id
    while (p < e) {
      const fs = p;
      let f = -1;
      // Fast path: the same field as the previous token (multi-valued fields come in runs).
      if (lastFeature >= 0) {
        const name = names[lastFeature]!;
        const len = name.length;
        if (fs + len < e && buf[fs + len] === COLON) {
          let k = 0;
          while (k < len && buf[fs + k] === name[k]) k++;
          if (k === len) f = lastFeature;
        }
      }
      let fe: number;
      let hh = 0;
      if (f >= 0) {
        fe = fs + names[f]!.length;
        p = fe;
      } else {
        let h = FNV_OFFSET_BASIS;
        let c = 0;
        while (p < e && (c = buf[p]!) !== COLON && c !== COMMA) {
          h = Math.imul(h ^ c, FNV_PRIME);
          p++;
        }
        if (p >= e || c === COMMA || p === fs)
          throw new RowError("bad_token", fs === p ? (p < e ? "empty token (two commas in a row)" : "empty token at the end of the line") : `'${text(buf, fs, p)}' has no ':'`, { line }, "tokens are field:feature_id");
        fe = p;
        hh = h >>> 0;
        const fi = this.featureOfHash.get(hh);
        if (fi !== undefined) {
          const name = names[fi]!;
          let same = name.length === fe - fs;
          for (let k = 0; same && k < name.length; k++) same = name[k] === buf[fs + k];
          if (same) f = fi;
        }
      }
      p++; // ':'
      const is = p;
      let id = 0;
      let bad = false;
      let c = 0;
      while (p < e && (c = buf[p]!) !== COMMA) {
        const d = c - ZERO;
        if (d < 0 || d > 9) bad = true;
        id = id * 10 + d;
        p++;
      }
      const ie = p;
      if (p < e) {
        p++;
        if (p === e) throw new RowError("bad_token", "empty token at the end of the line (trailing comma)", { line }, "tokens are field:feature_id");
      }
      if (f < 0) {
        const u = this.unknownByHash.get(hh);
        if (u) u.count++;
        else this.unknownByHash.set(hh, { name: text(buf, fs, fe), count: 1 });
        continue; // a field the schema does not read is counted, not validated
      }
      lastFeature = f;
      if (ie === is) throw new RowError("bad_id", "empty feature id", { line, field: this.featureName(f) });
      if (buckets[f]! > 0) {
        id = 1 + (fnv1a32Bytes(buf, is, ie) % buckets[f]!);
      } else {
        if (bad) throw new RowError("bad_id", `'${text(buf, is, ie)}' is not a non-negative integer id${buf[is] === MINUS ? " (negative)" : ""}`, { line, field: this.featureName(f) });
        if (id >= vocab[f]! || ie - is > 15)
          throw new RowError("id_out_of_range", `id ${text(buf, is, ie)} is outside the vocabulary (vocab_size ${vocab[f]})`, { line, field: this.featureName(f) }, "raise vocab_size in the schema");
      }
      const n = counts[f]!;
      if (n < maxLen[f]!) {
        const t = tables[f]!;
        ids[t]![rowBase[t]! + offsets[f]! + n] = id;
      }
      counts[f] = n + 1;
    }
    if (labels[0] === 0 && labels[1] === 1) {
      countReject(this.stats, "click0_buy1", line, `${this.stats.file}:${line}: click=0 and buy=1`);
      return false;
    }
    b.click[r] = labels[0]!;
    b.conversion[r] = labels[1]!;
    b.sampleKey[r] = sampleKey;
    if (b.rawIdCounts) b.rawIdCounts.set(counts, r * nf);
    if (b.lines) b.lines[r] = line;
    b.size = r + 1;
    return true;
  }

  private featureName(f: number): string {
    return this.builder.layout.idFeatures[f]!.feature.name;
  }

  /** Fold the unknown-field counts into the stats (call at the end). */
  flushUnknown(): void {
    for (const u of this.unknownByHash.values()) this.stats.unknownFields.set(u.name, (this.stats.unknownFields.get(u.name) ?? 0) + u.count);
    this.unknownByHash.clear();
  }
}

/** Stream an Ali-CCP file (plain or gzip) as blocks of encoded rows. */
export function readAliccp(path: string, opts: ReadOptions = {}): DataReader {
  // Messages name standard input `<stdin>`, not `-`.
  const file = displayName(path, "in");
  const schema = opts.schema ?? defaultAliccpSchema();
  const stats = newStats(file, "aliccp");
  const truthFile = opts.truthFile === undefined ? (!isStdio(path) && existsSync(`${path}.truth.csv`) ? `${path}.truth.csv` : null) : opts.truthFile;
  stats.truth = truthFile !== null;
  stats.truthFile = truthFile;
  const capacity = opts.blockRows ?? 8192;
  const parser = new AliccpLineParser(schema, stats, capacity, { truth: truthFile !== null, rawIdCounts: opts.rawIdCounts ?? false, lineNumbers: opts.lineNumbers ?? false });
  const skipBad = opts.skipBad ?? false;
  let started = false;
  async function* blocks(): AsyncGenerator<ReadBlock> {
    if (started) throw new MtlError("E_USAGE", "a reader streams its file once", { where: { file }, hint: "open a new reader for another pass" });
    started = true;
    const src = await openByteSource(path);
    const truth = truthFile === null ? null : await TruthSidecar.open(truthFile);
    const split = new LineSplitter();
    const b = parser.builder;
    let nextProgress = 65536;
    const handle = async function* (lines: LineRef[]): AsyncGenerator<ReadBlock> {
      for (const l of lines) {
        stats.lines = l.line;
        let t = null;
        if (truth) t = await truth.next(stats.file, l.line);
        try {
          let added: boolean;
          try {
            added = parser.parse(l.buf, l.start, l.end, l.line);
          } catch (err) {
            if (!l.terminated && err instanceof RowError)
              throw new RowError("truncated_line", `the last line has no newline and does not parse (${err.message})`, { line: l.line }, "the file looks cut short; re-copy it");
            throw err;
          }
          if (t && truth) {
            const id = Buffer.from(l.buf.buffer, l.buf.byteOffset + parser.sampleIdStart, parser.sampleIdEnd - parser.sampleIdStart).toString("utf8");
            if (id !== t.sampleId)
              throw new RowError("truth_mismatch", `sample id '${id}' but the sidecar's line ${t.line} is for '${t.sampleId}'`, { line: l.line }, `regenerate ${truthFile}`);
            if (added) {
              const r = b.size - 1;
              b.truthCtr![r] = t.ctr;
              b.truthCvr![r] = t.cvr;
              b.truthConversion![r] = t.conversion;
            }
          }
          if (!l.terminated) stats.unterminatedLastLine = true;
        } catch (err) {
          handleBadRow(err, stats, skipBad);
        }
        if (b.full) {
          stats.rows += b.size;
          yield b.take();
        }
      }
    };
    for await (const chunk of src.chunks()) {
      split.push(chunk);
      yield* handle(split.lines);
      if (opts.onProgress && split.linesSeen >= nextProgress) {
        nextProgress = split.linesSeen + 65536;
        opts.onProgress({ fileBytes: src.fileBytes, bytesRead: src.bytesRead, lines: split.linesSeen, rows: stats.rows + b.size });
      }
    }
    split.finish();
    yield* handle(split.lines);
    parser.flushUnknown();
    if (split.linesSeen === 0) throw new RowError("empty_file", "the file has no lines", { file }, "check the path; an empty file holds no impressions");
    if (truth) await truth.end(stats.file, split.linesSeen);
    if (b.size > 0) {
      stats.rows += b.size;
      yield b.take();
    }
    opts.onProgress?.({ fileBytes: src.fileBytes, bytesRead: src.fileBytes, lines: split.linesSeen, rows: stats.rows });
  }
  return { layout: parser.builder.layout, stats, blocks };
}
