import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { getModel } from "../models/index.js";
import { OPTIMIZER_KINDS, type OptimizerConfig, type OptimizerKind } from "../optim/index.js";
import { exportInferenceModel } from "../export/inference.js";
import { parseSchema, toSchemaJson } from "../features/schema.js";
import { exportTrainingArtifacts } from "../export/training.js";
import { formatBytes, formatCount } from "./format.js";

export interface ExportArgs {
  model?: string;
  checkpoint?: string;
  schema?: string;
  fp16?: boolean;
  maxPieceMb?: number;
  out: string;
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
    text = readFileSync(path, "utf8");
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
      text = readFileSync(args.schema, "utf8");
    } catch (err) {
      throw new MtlError("E_IO", `cannot read the schema: ${(err as Error).message}`, { where: { file: args.schema } });
    }
    userConfig["schema"] = toSchemaJson(parseSchema(text, args.schema));
  }
  if (!args.training) {
    if (args.model === undefined && args.checkpoint === undefined) throw new MtlError("E_USAGE", "name a model (--model) or a trained run (--checkpoint <runDir>)");
    const r = exportInferenceModel(args.out, {
      model: args.model, checkpoint: args.checkpoint, config: userConfig, opset: args.opset, fp16: args.fp16, seed: args.seed,
      maxPieceBytes: args.maxPieceMb === undefined ? undefined : Math.floor(args.maxPieceMb * 1024 * 1024),
    });
    const lines = [
      `${r.file}  ${formatBytes(r.bytes)}${r.externalData ? ` + external data ${r.externalData.file}  ${formatBytes(r.externalData.bytes)}` : ""}`,
      `model ${r.model}${r.fromCheckpoint ? ` from ${r.fromCheckpoint}` : " (freshly initialised)"}`,
      `parameters: ${formatCount(r.denseParameters + r.embeddingParameters)} (dense ${formatCount(r.denseParameters)}, embeddings ${formatCount(r.embeddingParameters)})`,
      ...r.tables.map((t) => `table ${t.name}: ${formatCount(t.rows)} x ${t.dim} ${t.dtype}${t.pieces > 1 ? ` in ${t.pieces} pieces (split by ${t.splitBy})` : ""}`),
      r.schemaHash ? `schema ${r.schemaHash} embedded: the file alone scores raw records (mtl run, mtl serve, mtl/web)` : "no feature schema: this model takes ids only and cannot score raw records",
    ];
    process.stdout.write(lines.join("\n") + "\n");
    return;
  }
  if (args.model === undefined) throw new MtlError("E_USAGE", "--training needs --model");
  const entry = getModel(args.model);
  const config = entry.validate({ ...(entry.defaults as Record<string, unknown>), ...userConfig }, args.config ?? "defaults");
  if (!OPTIMIZER_KINDS.includes(args.optimizer as OptimizerKind)) {
    throw new MtlError("E_CONFIG", `unknown optimizer '${args.optimizer}'`, { where: { field: "optimizer" }, hint: `use one of ${OPTIMIZER_KINDS.join(", ")}` });
  }
  const optimizer = { kind: args.optimizer } as OptimizerConfig;
  process.stderr.write(`building ${args.model} training artifacts...\n`);
  const files = exportTrainingArtifacts(args.out, { model: entry.definition, config, optimizer, seed: args.seed, clipNorm: args.clipNorm, opset: args.opset });
  for (const f of files) process.stdout.write(`${join(args.out, f.file)}  ${formatBytes(f.bytes)}\n`);
}
