/** Open a text data file in any supported format. */
import { readAliccp } from "./aliccp.js";
import { MtlError } from "../errors.js";
import { DATA_FORMATS, type DataFormat, type DataReader, type ReadOptions } from "./reader.js";
import { readCsv, readJsonl } from "./tabular.js";
import { inflatedHead, peekStdin } from "./lines.js";
import { isStdio } from "../util/atomic.js";

export function readData(file: string, format: DataFormat, opts: ReadOptions = {}): DataReader {
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
export function guessFormat(file: string): DataFormat {
  const name = file.toLowerCase().replace(/\.gz$/, "");
  if (name.endsWith(".csv") || name.endsWith(".tsv")) return "csv";
  if (name.endsWith(".jsonl") || name.endsWith(".ndjson") || name.endsWith(".json")) return "jsonl";
  return "aliccp";
}
