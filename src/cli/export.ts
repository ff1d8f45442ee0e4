import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { getModel } from "../models/index.js";
import { OPTIMIZER_KINDS, type OptimizerConfig, type OptimizerKind } from "../optim/index.js";
import { exportInferenceModel } from "../export/inference.js";
import { parseSchema, toSchemaJson } from "../features/schema.js";
import { exportTrainingArtifacts } from "../export/training.js";
import { loadRun, RUN_FILES } from "../flow/rundir.js";
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
  /** Default adam (with --checkpoint: the run's). */
  optimizer?: string;
  /** Default 0. */
  seed?: number;
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

/** Flags that have no effect in a mode are refused, all of them in one message, never ignored. */
function refuseFlags(args: ExportArgs): void {
  const given = (k: keyof ExportArgs) => args[k] !== undefined && args[k] !== false;
  const refused: string[] = [];
  const refuse = (k: keyof ExportArgs, flag: string, why: string) => {
    if (given(k)) refused.push(`${flag} (${why})`);
  };
  if (args.training) {
    refuse("fp16", "--fp16", "the training artifacts keep float32 weights: the optimizer updates them");
    refuse("maxPieceMb", "--max-piece-mb", "training artifacts take the tables as inputs, not initializers");
  } else {
    refuse("optimizer", "--optimizer", "the scoring model has no optimizer; it applies to --training");
    refuse("clipNorm", "--clip-norm", "the scoring model has no training step; it applies to --training");
  }
  if (args.checkpoint !== undefined) {
    refuse("seed", "--seed", "the run's trained weights are exported, not fresh ones");
    refuse("config", "--config", "the run's own config (run.json) is used");
    refuse("schema", "--schema", "the run's own schema (run.json) is used");
    if (args.training) refuse("optimizer", "--optimizer", "the run's state carries the slots of its own optimizer");
  }
  if (refused.length) {
    throw new MtlError("E_USAGE", `${refused.length === 1 ? "a flag that does not apply" : "flags that do not apply"} to ${args.training ? "--training" : "the scoring-model export"}${args.checkpoint !== undefined ? " from --checkpoint" : ""}: ${refused.join("; ")}`, { hint: "leave them out" });
  }
}

export async function exportCommand(args: ExportArgs): Promise<void> {
  refuseFlags(args);
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
      model: args.model, checkpoint: args.checkpoint, config: userConfig, opset: args.opset, fp16: args.fp16, seed: args.seed ?? 0,
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
  if (args.checkpoint !== undefined) {
    // The trained state of a run (its best, else its latest) with the run's model, config and optimizer.
    const run = loadRun(args.checkpoint);
    if (args.model !== undefined && args.model !== run.manifest.model) {
      throw new MtlError("E_CONFIG", `--model ${args.model} but the run trained '${run.manifest.model}'`, { where: { file: join(args.checkpoint, RUN_FILES.run), field: "model" }, hint: "leave out --model to export the run's model" });
    }
    process.stderr.write(`building ${run.manifest.model} training artifacts from ${run.checkpoint}...\n`);
    const files = exportTrainingArtifacts(args.out, {
      model: run.entry.definition, config: run.config, optimizer: run.manifest.optimizer as OptimizerConfig, state: run.state, stateSource: run.checkpoint,
      clipNorm: args.clipNorm ?? run.manifest.training.clipNorm, opset: args.opset,
    });
    for (const f of files) process.stdout.write(`${join(args.out, f.file)}  ${formatBytes(f.bytes)}\n`);
    return;
  }
  if (args.model === undefined) throw new MtlError("E_USAGE", "--training needs --model (or --checkpoint <run>)");
  const entry = getModel(args.model);
  const config = entry.validate({ ...(entry.defaults as Record<string, unknown>), ...userConfig }, args.config ?? "defaults");
  const kind = args.optimizer ?? "adam";
  if (!OPTIMIZER_KINDS.includes(kind as OptimizerKind)) {
    throw new MtlError("E_CONFIG", `unknown optimizer '${kind}'`, { where: { field: "optimizer" }, hint: `use one of ${OPTIMIZER_KINDS.join(", ")}` });
  }
  const optimizer = { kind } as OptimizerConfig;
  process.stderr.write(`building ${args.model} training artifacts...\n`);
  const files = exportTrainingArtifacts(args.out, { model: entry.definition, config, optimizer, seed: args.seed ?? 0, clipNorm: args.clipNorm, opset: args.opset });
  for (const f of files) process.stdout.write(`${join(args.out, f.file)}  ${formatBytes(f.bytes)}\n`);
}
