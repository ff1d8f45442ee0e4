import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MtlError } from "../errors.js";
import { getModel } from "../models/index.js";
import { OPTIMIZER_KINDS, type OptimizerConfig, type OptimizerKind } from "../optim/index.js";
import { exportInferenceModel } from "../export/inference.js";
import { parseSchema, toSchemaJson } from "../features/schema.js";
import { exportTrainingArtifacts } from "../export/training.js";
import { formatBytes, formatCount } from "./format.js";
import { ensureParentDir, isStdio, writesInPlace } from "../util/atomic.js";

/** The model a run directory trained (its run.json), to name the default output after. */
function modelOfRun(runDir: string): string {
  const file = join(runDir, "run.json");
  try {
    const manifest = JSON.parse(readFileSync(file, "utf8")) as { model?: unknown };
    if (typeof manifest.model === "string" && manifest.model !== "") return manifest.model;
  } catch (err) {
    throw new MtlError("E_IO", `cannot read the run: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { where: { file }, hint: "--checkpoint takes a run directory written by mtl train" });
  }
  throw new MtlError("E_CONFIG", "run.json names no model", { where: { file, field: "model" } });
}

/** Where an export goes when -o is not given: named after the model, in the current directory. */
function defaultOut(args: ExportArgs): string {
  const model = args.model ?? (args.checkpoint !== undefined ? modelOfRun(args.checkpoint) : undefined);
  if (model === undefined) throw new MtlError("E_USAGE", "name a model (--model) or a trained run (--checkpoint <runDir>)");
  return args.training ? `${model}-training` : `${model}.onnx`;
}

export interface ExportArgs {
  model?: string;
  checkpoint?: string;
  schema?: string;
  fp16?: boolean;
  maxPieceMb?: number;
  /** Default: `<model>.onnx` (or `<model>-training/`) in the current directory. */
  out?: string;
  json?: boolean;
  training: boolean;
  config?: string;
  optimizer: string;
  seed: number;
  clipNorm?: number;
  opset?: number;
}

function readConfig(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(isStdio(path) ? 0 : path, "utf8");
  } catch (err) {
    throw new MtlError("E_IO", `cannot read config: ${(err as Error).message}`, { where: { file: path } });
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v as Record<string, unknown>;
  } catch (err) {
    throw new MtlError("E_CONFIG", `config is not a JSON object: ${(err as Error).message}`, { where: { file: path } });
  }
}

export async function exportCommand(args: ExportArgs): Promise<void> {
  const userConfig = readConfig(args.config);
  if (args.schema !== undefined) {
    let text: string;
    try {
      text = readFileSync(isStdio(args.schema) ? 0 : args.schema, "utf8");
    } catch (err) {
      throw new MtlError("E_IO", `cannot read the schema: ${(err as Error).message}`, { where: { file: args.schema } });
    }
    userConfig["schema"] = toSchemaJson(parseSchema(text, args.schema));
  }
  if (!args.training) {
    if (args.model === undefined && args.checkpoint === undefined) throw new MtlError("E_USAGE", "name a model (--model) or a trained run (--checkpoint <runDir>)");
    const outFile = args.out ?? defaultOut(args);
    ensureParentDir(outFile);
    // `-o -` (or /dev/stdout): the model is standard output's; what was written is said on stderr.
    const say = writesInPlace(outFile) ? process.stderr : process.stdout;
    const r = exportInferenceModel(outFile, {
      model: args.model, checkpoint: args.checkpoint, config: userConfig, opset: args.opset, fp16: args.fp16, seed: args.seed,
      maxPieceBytes: args.maxPieceMb === undefined ? undefined : Math.floor(args.maxPieceMb * 1024 * 1024),
    });
    if (args.json) {
      say.write(JSON.stringify({ ...r, file: isStdio(r.file) ? r.file : resolve(r.file), externalData: r.externalData ? { ...r.externalData, file: resolve(r.externalData.file) } : null }) + "\n");
      return;
    }
    const lines = [
      `wrote ${isStdio(r.file) ? "<stdout>" : resolve(r.file)}  ${formatBytes(r.bytes)}${r.externalData ? ` + external data ${r.externalData.file}  ${formatBytes(r.externalData.bytes)}` : ""}`,
      `model ${r.model}${r.fromCheckpoint ? ` from ${r.fromCheckpoint}` : " (freshly initialised)"}`,
      `parameters: ${formatCount(r.denseParameters + r.embeddingParameters)} (dense ${formatCount(r.denseParameters)}, embeddings ${formatCount(r.embeddingParameters)})`,
      ...r.tables.map((t) => `table ${t.name}: ${formatCount(t.rows)} x ${t.dim} ${t.dtype}${t.pieces > 1 ? ` in ${t.pieces} pieces (split by ${t.splitBy})` : ""}`),
      r.schemaHash ? `schema ${r.schemaHash} embedded: the file alone scores raw records (mtl run, mtl serve, mtl-onnx/web)` : "no feature schema: this model takes ids only and cannot score raw records",
    ];
    say.write(lines.join("\n") + "\n");
    return;
  }
  if (args.model === undefined) throw new MtlError("E_USAGE", "--training needs --model");
  const entry = getModel(args.model);
  const config = entry.validate({ ...(entry.defaults as Record<string, unknown>), ...userConfig }, args.config ?? "defaults");
  if (!OPTIMIZER_KINDS.includes(args.optimizer as OptimizerKind)) {
    throw new MtlError("E_CONFIG", `unknown optimizer '${args.optimizer}'`, { where: { field: "optimizer" }, hint: `use one of ${OPTIMIZER_KINDS.join(", ")}` });
  }
  const optimizer = { kind: args.optimizer } as OptimizerConfig;
  const outDir = args.out ?? defaultOut(args);
  process.stderr.write(`building ${args.model} training artifacts...\n`);
  const files = exportTrainingArtifacts(outDir, { model: entry.definition, config, optimizer, seed: args.seed, clipNorm: args.clipNorm, opset: args.opset });
  if (args.json) {
    process.stdout.write(JSON.stringify({ dir: resolve(outDir), files: files.map((f) => ({ file: resolve(outDir, f.file), bytes: f.bytes })) }) + "\n");
    return;
  }
  for (const f of files) process.stdout.write(`${resolve(outDir, f.file)}  ${formatBytes(f.bytes)}\n`);
}
