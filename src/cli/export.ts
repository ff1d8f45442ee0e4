import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MtlError } from "../errors.js";
import { getModel } from "../models/index.js";
import { OPTIMIZER_KINDS, type OptimizerConfig, type OptimizerKind } from "../optim/index.js";
import { exportInferenceModel } from "../export/inference.js";
import { parseSchema, toSchemaJson } from "../features/schema.js";
import { exportTrainingArtifacts } from "../export/training.js";
import { exportAdaptation } from "../export/adaptation.js";
import { loadRun, RUN_FILES, runInputs } from "../flow/rundir.js";
import { formatBytes, formatCount } from "./format.js";
import { ensureParentDir, isStdio, refuseOverwritingInput, writesInPlace } from "../util/atomic.js";

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
  /** Default true: split the scoring graph by the schema's context features. */
  contextSplit?: boolean;
  /** Default: `<model>.onnx` (or `<model>-training/`) in the current directory. */
  out?: string;
  json?: boolean;
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
    if (args.contextSplit !== undefined) refused.push("--context-split (the training artifacts take every feature per row)");
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
  const inputs = [...(args.checkpoint ? runInputs(args.checkpoint) : []), ...(args.config ? [{ path: args.config, what: "the config" }] : []), ...(args.schema ? [{ path: args.schema, what: "the schema" }] : [])];
  const adaptation = !args.training && args.checkpoint !== undefined && isMetaheacRun(args.checkpoint);
  const out = args.out ?? (adaptation ? `${modelOfRun(args.checkpoint!)}-adaptation` : defaultOut(args));
  refuseOverwritingInput(out, inputs, "--out");
  if (!args.training) refuseOverwritingInput(`${out}.data`, inputs, "--out");
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
  if (adaptation) {
    // A meta-learned model is adapted per campaign: the bundle carries what adaptation needs.
    const files = exportAdaptation(out, args.checkpoint!);
    for (const f of files) process.stdout.write(`${join(out, f.file)}  ${formatBytes(f.bytes)}\n`);
    process.stdout.write(`metaheac adaptation bundle: mtl adapt ${out} --seeds <rows> --candidates <rows>, or in the browser with mtl/web's adaptAndScore\n`);
    return;
  }
  if (!args.training) {
    if (args.model === undefined && args.checkpoint === undefined) throw new MtlError("E_USAGE", "name a model (--model) or a trained run (--checkpoint <runDir>)");
    const outFile = out;
    ensureParentDir(outFile);
    // `-o -` (or /dev/stdout): the model is standard output's; what was written is said on stderr.
    const say = writesInPlace(outFile) ? process.stderr : process.stdout;
    const r = exportInferenceModel(outFile, {
      model: args.model, checkpoint: args.checkpoint, config: userConfig, opset: args.opset, fp16: args.fp16, seed: args.seed ?? 0, contextSplit: args.contextSplit,
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
      ...(r.contextFeatures.length ? [`context split: ${r.contextFeatures.length} context features (${r.contextFeatures.slice(0, 4).join(", ")}${r.contextFeatures.length > 4 ? ", …" : ""}) are embedded and multiplied once per context, not once per candidate (--no-context-split writes the unsplit graph)`] : []),
    ];
    say.write(lines.join("\n") + "\n");
    return;
  }
  if (args.checkpoint !== undefined) {
    // The trained state of a run (its best, else its latest) with the run's model, config and optimizer.
    const run = loadRun(args.checkpoint);
    if (args.model !== undefined && args.model !== run.manifest.model) {
      throw new MtlError("E_CONFIG", `--model ${args.model} but the run trained '${run.manifest.model}'`, { where: { file: join(args.checkpoint, RUN_FILES.run), field: "model" }, hint: "leave out --model to export the run's model" });
    }
    const outDir = out;
    process.stderr.write(`building ${run.manifest.model} training artifacts from ${run.checkpoint}...\n`);
    const files = exportTrainingArtifacts(outDir, {
      model: run.entry.definition, config: run.config, optimizer: run.manifest.optimizer as OptimizerConfig, state: run.state, stateSource: run.checkpoint,
      clipNorm: args.clipNorm ?? run.manifest.training.clipNorm, opset: args.opset,
    });
    printArtifacts(outDir, files, args.json);
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
  const outDir = out;
  process.stderr.write(`building ${args.model} training artifacts...\n`);
  const files = exportTrainingArtifacts(outDir, { model: entry.definition, config, optimizer, seed: args.seed ?? 0, clipNorm: args.clipNorm, opset: args.opset });
  printArtifacts(outDir, files, args.json);
}

/** What `--training` wrote: one line per file (full paths), or JSON. */
function printArtifacts(outDir: string, files: readonly { file: string; bytes: number }[], json: boolean | undefined): void {
  if (json) {
    process.stdout.write(JSON.stringify({ dir: resolve(outDir), files: files.map((f) => ({ file: resolve(outDir, f.file), bytes: f.bytes })) }) + "\n");
    return;
  }
  for (const f of files) process.stdout.write(`${resolve(outDir, f.file)}  ${formatBytes(f.bytes)}\n`);
}

function isMetaheacRun(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, RUN_FILES.run), "utf8")) as { model?: string }).model === "metaheac";
  } catch {
    return false;
  }
}
