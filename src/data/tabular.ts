/**
 * CSV/TSV with a header row, and JSONL (one JSON object per line), mapped by the schema's `source`
 * names. CSV cells are strings: list fields are split on the schema's list_separator ("|"), ids
 * hashed or parsed as integers, dense values parsed as numbers. Quoted cells follow RFC 4180
 * ("a,b" and "" for a quote) within one line; a quoted newline is not supported (an unclosed quote
 * is a bad row, and so is the rest of the cell on the next line: a quote inside an unquoted cell is
 * malformed quoting). A header naming a column twice is refused. JSONL values may be numbers,
 * strings or arrays; an integer id past 2^53 is refused (features/encode.ts).
 */
import { BatchBuilder, layoutOf, type ReadBlock } from "../features/batch.js";
import { encodeRecord, RowError, type RawValue } from "../features/encode.js";
import type { FeatureSchema } from "../features/schema.js";
import { MtlError } from "../errors.js";
import { LineSplitter, openByteSource, type LineRef } from "./lines.js";
import { displayName } from "../util/atomic.js";
import { countReject, handleBadRow, newStats, type DataFormat, type DataReader, type ReadOptions } from "./reader.js";

/** Split one CSV line into cells (RFC 4180 quoting within the line). */
export function splitCsvLine(s: string, delimiter: string, line?: number): string[] {
  if (!s.includes('"')) return s.split(delimiter);
  const stray = (cell: string) => {
    if (cell.includes('"')) throw new RowError("column_count", `a quote inside an unquoted cell at column ${cells.length + 1}`, { line }, "quote the whole cell (\"a\"\"b\") or remove the quote; quoted cells cannot span lines");
  };
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    if (s[i] === '"') {
      let cell = "";
      i++;
      for (;;) {
        const q = s.indexOf('"', i);
        if (q < 0) throw new RowError("column_count", "unclosed quote", { line }, "quoted cells must end on the same line");
        cell += s.slice(i, q);
        if (s[q + 1] === '"') {
          cell += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      cells.push(cell);
      if (i >= s.length) return cells;
      if (!s.startsWith(delimiter, i)) throw new RowError("column_count", `text after a closing quote at column ${cells.length}`, { line });
      i += delimiter.length;
    } else {
      const d = s.indexOf(delimiter, i);
      const cell = d < 0 ? s.slice(i) : s.slice(i, d);
      stray(cell);
      cells.push(cell);
      if (d < 0) return cells;
      i = d + delimiter.length;
    }
  }
}

function requireSchema(opts: ReadOptions, format: DataFormat): FeatureSchema {
  if (!opts.schema) throw new MtlError("E_SCHEMA", `the ${format} format needs a schema`, { hint: "pass --schema <file.json>" });
  return opts.schema;
}

function lineText(l: LineRef): string {
  return Buffer.from(l.buf.buffer, l.buf.byteOffset + l.start, l.end - l.start).toString("utf8");
}

/** Columns a schema reads from every record (labels, features, truth when declared and present). */
function requiredColumns(schema: FeatureSchema, labels: boolean): { column: string; field: string; optional: boolean }[] {
  const cols = labels ? [{ column: schema.labels.click, field: "labels.click", optional: false }] : [];
  if (labels && schema.labels.conversion !== null) cols.push({ column: schema.labels.conversion, field: "labels.conversion", optional: false });
  if (labels && schema.task !== null) cols.push({ column: schema.task, field: "task", optional: false });
  if (labels && schema.sampleWeight !== null) cols.push({ column: schema.sampleWeight, field: "sample_weight", optional: false });
  if (schema.sampleId) cols.push({ column: schema.sampleId, field: "sample_id", optional: false });
  for (const f of schema.features) {
    cols.push({ column: f.source, field: f.name, optional: f.optional });
    if (f.kind === "weighted_ids" && f.weightSource) cols.push({ column: f.weightSource, field: f.name, optional: f.optional });
    if (f.kind !== "dense" && f.lengthSource !== null) cols.push({ column: f.lengthSource, field: f.name, optional: f.optional });
  }
  return cols;
}

function tabularReader(path: string, format: "csv" | "jsonl", opts: ReadOptions): DataReader {
  // Messages name standard input `<stdin>`, not `-`.
  const file = displayName(path, "in");
  const schema = requireSchema(opts, format);
  const layout = layoutOf(schema);
  const stats = newStats(file, format);
  const skipBad = opts.skipBad ?? false;
  const withLabels = opts.labels ?? true;
  const capacity = opts.blockRows ?? 8192;
  const delimiter = opts.delimiter ?? (/\.tsv(\.gz)?$/i.test(file) ? "\t" : ",");
  let started = false;
  async function* blocks(): AsyncGenerator<ReadBlock> {
    if (started) throw new MtlError("E_USAGE", "a reader streams its file once", { where: { file }, hint: "open a new reader for another pass" });
    started = true;
    const src = await openByteSource(path);
    const split = new LineSplitter();
    let b: BatchBuilder | null = null;
    let header: Map<string, number> | null = null;
    let headerWidth = 0;
    let nextProgress = 65536;
    // JSONL: whether rows carry truth is decided by the first row; CSV: by the header.
    const truthCols = schema.truth ? [schema.truth.ctr, schema.truth.cvr, schema.truth.conversion] : [];
    const makeBuilder = (truth: boolean) => {
      stats.truth = truth;
      return new BatchBuilder(layout, capacity, { truth, rawIdCounts: opts.rawIdCounts ?? false, lineNumbers: opts.lineNumbers ?? false });
    };
    const handleLine = (l: LineRef): void => {
      stats.lines = l.line;
      const s = lineText(l);
      if (format === "csv" && header === null) {
        const names = splitCsvLine(s, delimiter, l.line).map((x) => x.trim());
        if (s.trim() === "") throw new RowError("missing_column", "the header line is empty", { file, line: l.line }, "a CSV file starts with a header naming its columns");
        const twice = names.find((n, i) => names.indexOf(n) !== i);
        if (twice !== undefined) throw new MtlError("E_DATA", `the header names the column '${twice}' twice`, { where: { file, line: l.line, field: twice }, hint: "column names must be unique; rename or drop one" });
        header = new Map(names.map((n, i) => [n, i]));
        headerWidth = names.length;
        for (const c of requiredColumns(schema, withLabels))
          if (!c.optional && !header.has(c.column))
            throw new MtlError("E_DATA", `missing column: the header has no column '${c.column}' (needed by ${c.field})`, { where: { file, line: l.line, field: c.field }, hint: `columns found: ${names.slice(0, 12).join(", ")}${names.length > 12 ? ", ..." : ""}` });
        b = makeBuilder(truthCols.length > 0 && truthCols.every((c) => header!.has(c)));
        return;
      }
      try {
        if (s.length === 0) throw new RowError("empty_line", "the line is empty", { line: l.line }, "remove blank lines");
        let get: (source: string) => RawValue | undefined;
        if (format === "csv") {
          const cells = splitCsvLine(s, delimiter, l.line);
          if (cells.length !== headerWidth) throw new RowError("column_count", `expected ${headerWidth} columns (as the header), found ${cells.length}`, { line: l.line });
          const h = header!;
          get = (src) => {
            const i = h.get(src);
            return i === undefined ? undefined : cells[i];
          };
        } else {
          let obj: unknown;
          try {
            obj = JSON.parse(s);
          } catch (err) {
            throw new RowError("bad_json", (err as Error).message, { line: l.line }, "each line must be one JSON object");
          }
          if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new RowError("bad_json", "the line is not a JSON object", { line: l.line });
          const rec = obj as Record<string, unknown>;
          if (b === null) b = makeBuilder(truthCols.length > 0 && truthCols.every((c) => c in rec));
          get = (src) => {
            const v = rec[src];
            if (v === undefined) return undefined;
            if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
            if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number" || typeof x === "boolean")) return v as RawValue;
            throw new RowError("bad_json", `'${src}' holds ${Array.isArray(v) ? "a list with non-scalar items" : "a JSON object"}; expected a number, a string or a list of them`, { line: l.line, field: src });
          };
        }
        const sampleId = schema.sampleId ? String(get(schema.sampleId) ?? "") : String(l.line);
        const builder = b!;
        const before = builder.size;
        if (!encodeRecord(builder, get, sampleId, l.line, { labels: withLabels })) countReject(stats, "click0_buy1", l.line, `${file}:${l.line}: click=0 and buy=1`);
        if (!l.terminated && builder.size > before) stats.unterminatedLastLine = true;
      } catch (err) {
        if (!l.terminated && err instanceof RowError)
          handleBadRow(new RowError("truncated_line", `the last line has no newline and does not parse (${err.message})`, { line: l.line }, "the file looks cut short; re-copy it"), stats, skipBad);
        else handleBadRow(err, stats, skipBad);
      }
    };
    const drain = function* (lines: LineRef[]): Generator<ReadBlock> {
      for (const l of lines) {
        handleLine(l);
        const builder = b as BatchBuilder | null;
        if (builder && builder.full) {
          stats.rows += builder.size;
          yield builder.take();
        }
      }
    };
    for await (const chunk of src.chunks()) {
      split.push(chunk);
      yield* drain(split.lines);
      if (opts.onProgress && split.linesSeen >= nextProgress) {
        nextProgress = split.linesSeen + 65536;
        opts.onProgress({ fileBytes: src.fileBytes, bytesRead: src.bytesRead, lines: split.linesSeen, rows: stats.rows + ((b as BatchBuilder | null)?.size ?? 0) });
      }
    }
    split.finish();
    yield* drain(split.lines);
    if (split.linesSeen === 0) throw new RowError("empty_file", "the file has no lines", { file }, format === "csv" ? "a CSV file needs a header and rows" : "a JSONL file needs one object per line");
    const last = b as BatchBuilder | null;
    if (last && last.size > 0) {
      stats.rows += last.size;
      yield last.take();
    }
    opts.onProgress?.({ fileBytes: src.fileBytes, bytesRead: src.fileBytes, lines: split.linesSeen, rows: stats.rows });
  }
  return { layout, stats, blocks };
}

export function readCsv(file: string, opts: ReadOptions = {}): DataReader {
  return tabularReader(file, "csv", opts);
}

export function readJsonl(file: string, opts: ReadOptions = {}): DataReader {
  return tabularReader(file, "jsonl", opts);
}
