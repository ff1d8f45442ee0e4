import { crc32 } from "node:zlib";
import { escapeControl } from "../errors.js";
import { readModelFile } from "../onnx/proto.js";
import { verifyWeights } from "../scoring/metadata.js";
import { summarizeModel, type ModelSummary, type ValueSummary } from "../onnx/summary.js";
import { formatBytes, formatCount, table } from "./format.js";

const shape = (v: ValueSummary) => `[${v.shape.map((d) => (d === null ? "?" : String(d))).join(", ")}]`;

export function formatSummary(file: string, size: number, s: ModelSummary): string {
  const ops = Object.entries(s.opCounts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const meta = Object.entries(s.metadata);
  const clip = (v: string) => {
    const one = v.replace(/\s+/g, " ");
    return one.length > 100 ? `${one.slice(0, 97)}... (${formatCount(v.length)} chars)` : one;
  };
  const lines = [
    `${file} (${formatBytes(size)})`,
    table([
      ["IR version", String(s.irVersion)],
      ["opsets", s.opsets.map((o) => `${o.domain} ${o.version}`).join(", ")],
      ["producer", s.producer || "-"],
      ["graph", s.graphName || "-"],
      ["parameters", `${formatCount(s.parameterCount)} in ${s.initializerCount} initializers (${formatBytes(s.parameterBytes)})`],
      ...(s.externalDataFiles.length ? [["external data", s.externalDataFiles.join(", ")]] : []),
      ["nodes", String(s.nodeCount)],
    ]),
    "inputs",
    table(s.inputs.map((v) => [v.name, v.dtype, shape(v)]), "    ") || "    (none)",
    "outputs",
    table(s.outputs.map((v) => [v.name, v.dtype, shape(v)]), "    ") || "    (none)",
    "ops",
    table(ops.map(([op, n]) => [op, String(n)]), "    ") || "    (none)",
  ];
  if (meta.length) lines.push("metadata", table(meta.map(([k, v]) => [k, clip(v)]), "    "));
  // Names and metadata are the file's bytes: escape what would drive the terminal.
  return lines.join("\n").split("\n").map(escapeControl).join("\n");
}

export async function inspectCommand(file: string, json: boolean, skipChecksum = false): Promise<void> {
  const { model, bytes } = await readModelFile(file);
  const summary = summarizeModel(model);
  if (!skipChecksum) verifyWeights(summary.metadata, model.graph?.initializer ?? [], file, crc32);
  const size = bytes.byteLength;
  process.stdout.write(json ? JSON.stringify({ file, bytes: size, ...summary }, null, 2) + "\n" : formatSummary(file, size, summary) + "\n");
}
