import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { encodeGraph } from "../onnx/serialize.js";
import { getModel } from "../models/index.js";
import { OPTIMIZER_KINDS, type OptimizerConfig, type OptimizerKind } from "../optim/index.js";
import { buildInferenceGraph, describeModel } from "../train/program.js";
import { initialState } from "../train/state.js";
import { exportTrainingArtifacts } from "../train/export.js";
import { formatBytes } from "./format.js";

export interface ExportArgs {
  model: string;
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
  const entry = getModel(args.model);
  const config = entry.validate({ ...(entry.defaults as Record<string, unknown>), ...readConfig(args.config) }, args.config ?? "defaults");
  if (!OPTIMIZER_KINDS.includes(args.optimizer as OptimizerKind)) {
    throw new MtlError("E_CONFIG", `unknown optimizer '${args.optimizer}'`, { where: { field: "optimizer" }, hint: `use one of ${OPTIMIZER_KINDS.join(", ")}` });
  }
  const optimizer = { kind: args.optimizer } as OptimizerConfig;
  if (args.training) {
    process.stderr.write(`building ${args.model} training artifacts...\n`);
    const files = exportTrainingArtifacts(args.out, { model: entry.definition, config, optimizer, seed: args.seed, clipNorm: args.clipNorm, opset: args.opset });
    for (const f of files) process.stdout.write(`${join(args.out, f.file)}  ${formatBytes(f.bytes)}\n`);
    return;
  }
  // Without --training: a freshly initialised inference model (export of trained runs comes with `mtl train`).
  const state = initialState(describeModel(entry.definition, config), { kind: "sgd" }, { seed: args.seed });
  const bytes = encodeGraph(buildInferenceGraph(entry.definition, config, state, { opset: args.opset }));
  writeFileSync(args.out, bytes);
  process.stdout.write(`${args.out}  ${formatBytes(bytes.byteLength)}\n`);
}
