/**
 * The adaptation bundle `mtl export` writes for a MetaHeac run, read the same way by `mtl adapt`
 * and by the browser (pure TypeScript, no Node API):
 *
 *   adapt.json        the manifest below: model, its config (schema in the schema file format), the
 *                     adaptation plan (epochs, lr, batch size, shuffle seed) and both programs' signatures
 *   adapt_step.onnx   one Adam step of the network on a seed minibatch (the row-sparse training step)
 *   adapt_eval.onnx   the network's forward pass over row blocks (scores the candidates)
 *   weights.bin       the meta-learned weights, float32 little-endian, in the manifest's order
 *   inference.onnx    the meta-learned model as an ordinary scoring model (no adaptation)
 */
import { MtlError } from "../errors.js";
import type { ProgramSignature } from "../train/program.js";
import type { AdaptationPlan, AdaptationWeights } from "./adapter.js";

export const ADAPT_FILES = {
  manifest: "adapt.json",
  trainStep: "adapt_step.onnx",
  eval: "adapt_eval.onnx",
  weights: "weights.bin",
  inference: "inference.onnx",
} as const;

export const ADAPT_FORMAT = "mtl-adaptation";

export interface WeightEntry {
  name: string;
  kind: "param" | "table";
  dims: number[];
  /** Offset in float32 values into weights.bin. */
  offset: number;
}

export interface AdaptManifest {
  format: typeof ADAPT_FORMAT;
  version: 1;
  mtlVersion: string;
  model: string;
  /** The model config; `schema` in the schema file format. */
  modelConfig: Record<string, unknown>;
  plan: AdaptationPlan;
  train: ProgramSignature;
  eval: ProgramSignature;
  weights: WeightEntry[];
}

/** The weights as one float32 buffer and its index. */
export function encodeWeights(w: AdaptationWeights, sig: ProgramSignature): { bytes: Uint8Array; index: WeightEntry[] } {
  const index: WeightEntry[] = [];
  let offset = 0;
  for (const p of sig.params) {
    index.push({ name: p.name, kind: "param", dims: [...p.shape], offset });
    offset += w.params.get(p.name)!.length;
  }
  for (const t of sig.tables) {
    index.push({ name: t.name, kind: "table", dims: [t.rows, t.dim], offset });
    offset += t.rows * t.dim;
  }
  const all = new Float32Array(offset);
  for (const e of index) all.set(e.kind === "param" ? w.params.get(e.name)! : w.tables.get(e.name)!, e.offset);
  return { bytes: new Uint8Array(all.buffer), index };
}

export function decodeWeights(bytes: Uint8Array, index: readonly WeightEntry[], file: string = ADAPT_FILES.weights): AdaptationWeights {
  if (bytes.byteLength % 4 !== 0) throw new MtlError("E_MODEL", `${file} is not a float32 array (${bytes.byteLength} bytes)`, { where: { file } });
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out: AdaptationWeights = { params: new Map(), tables: new Map() };
  for (const e of index) {
    const n = e.dims.reduce((a, b) => a * b, 1);
    if (e.offset + n > all.length) throw new MtlError("E_MODEL", `${file} is too short for '${e.name}' (needs ${e.offset + n} values, has ${all.length})`, { where: { file, field: e.name } });
    (e.kind === "param" ? out.params : out.tables).set(e.name, all.slice(e.offset, e.offset + n));
  }
  return out;
}

/** Checks a parsed adapt.json; fails naming the file and field. */
export function checkManifest(m: unknown, file: string = ADAPT_FILES.manifest): AdaptManifest {
  const o = m as Partial<AdaptManifest> | null;
  if (!o || typeof o !== "object" || o.format !== ADAPT_FORMAT) throw new MtlError("E_MODEL", `${file} is not an mtl adaptation manifest (format '${ADAPT_FORMAT}')`, { where: { file } });
  if (o.version !== 1) throw new MtlError("E_MODEL", `${file}: unsupported version ${String(o.version)}`, { where: { file, field: "version" } });
  for (const k of ["train", "eval", "plan", "weights", "modelConfig"] as const) if (!o[k]) throw new MtlError("E_MODEL", `${file} has no '${k}'`, { where: { file, field: k } });
  return o as AdaptManifest;
}
