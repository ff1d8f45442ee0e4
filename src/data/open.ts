/** Open a text data file in any supported format. */
import { readAliccp } from "./aliccp.js";
import { dataFiles } from "./files.js";
import { MtlError } from "../errors.js";
import { DATA_FORMATS, newStats, type DataFormat, type DataReader, type ReadOptions, type ReadStats } from "./reader.js";
import { readCsv, readJsonl } from "./tabular.js";
import { inflatedHead, peekStdin } from "./lines.js";
import { isStdio } from "../util/atomic.js";

/**
 * A reader over a data argument: one file, or every file of a directory or glob (files.ts) read one
 * after another in name order, as one stream with summed statistics (errors name the file itself).
 */
export function readData(spec: string, format: DataFormat, opts: ReadOptions = {}): DataReader {
  const files = dataFiles(spec);
  if (files.length === 1) return readFile(files[0]!, format, opts);
  return concatReaders(spec, format, files, files.map((f) => () => readFile(f, format, opts)));
}

function readFile(file: string, format: DataFormat, opts: ReadOptions): DataReader {
  switch (format) {
    case "aliccp": return readAliccp(file, opts);
    case "csv": return readCsv(file, opts);
    case "jsonl": return readJsonl(file, opts);
    default: throw new MtlError("E_USAGE", `unknown data format '${String(format)}'`, { hint: `formats: ${DATA_FORMATS.join(", ")}` });
  }
}

/**
 * Tell a text format from the data (what `-` gets, having no name): a first line that opens a JSON
 * object is JSONL; `id,0|1,0|1,field:id,...` is Ali-CCP; anything else is CSV with a header.
 */
export function sniffFormat(head: Uint8Array): DataFormat {
  const text = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString("utf8").replace(/^\uFEFF/, "");
  const first = text.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
  if (first.startsWith("{")) return "jsonl";
  if (/^[^,]*,[01],[01],[^,:]+:-?\d+/.test(first)) return "aliccp";
  return "csv";
}

/** A file's format: as given, else from its name, else (standard input, `-`) from its first bytes. */
export async function resolveFormat(file: string, given?: DataFormat): Promise<DataFormat> {
  if (given !== undefined) return given;
  return isStdio(file) ? sniffFormat(inflatedHead(await peekStdin())) : guessFormat(file);
}

/** Guess a text format from the file name: .csv/.tsv -> csv, .jsonl/.json -> jsonl, otherwise aliccp. */
export function guessFormat(spec: string): DataFormat {
  const name = dataFiles(spec)[0]!.toLowerCase().replace(/\.gz$/, "");
  if (name.endsWith(".csv") || name.endsWith(".tsv")) return "csv";
  if (name.endsWith(".jsonl") || name.endsWith(".ndjson") || name.endsWith(".json")) return "jsonl";
  return "aliccp";
}

/** Files read one after another as one reader: the first file's layout, statistics summed as each file ends. */
function concatReaders(spec: string, format: DataFormat, files: readonly string[], open: (() => DataReader)[]): DataReader {
  const first = open[0]!();
  const stats: ReadStats = newStats(spec, format);
  const add = (s: ReadStats) => {
    stats.lines += s.lines;
    stats.rows += s.rows;
    for (const [reason, r] of s.rejected) {
      const had = stats.rejected.get(reason);
      if (had) had.count += r.count;
      else stats.rejected.set(reason, { ...r, example: `${s.file}: ${r.example}` });
    }
    for (const [field, n] of s.unknownFields) stats.unknownFields.set(field, (stats.unknownFields.get(field) ?? 0) + n);
    stats.unterminatedLastLine ||= s.unterminatedLastLine;
    stats.truth = s.truth;
    stats.truthFile = s.truthFile;
  };
  return {
    layout: first.layout,
    stats,
    async *blocks() {
      for (let i = 0; i < open.length; i++) {
        const reader = i === 0 ? first : open[i]!();
        for await (const block of reader.blocks()) {
          // the first file's blocks tell whether rows carry truth before the stream ends
          if (i === 0) stats.truth = reader.stats.truth;
          else if (reader.stats.truth !== stats.truth) {
            const [has, lacks] = stats.truth ? [files[0]!, files[i]!] : [files[i]!, files[0]!];
            throw new MtlError("E_DATA", `the files disagree on ground truth: ${has} has a truth sidecar, ${lacks} has none`, { where: { file: spec }, hint: "give every file its .truth.csv, or none" });
          }
          yield block;
        }
        add(reader.stats);
      }
    },
  };
}
