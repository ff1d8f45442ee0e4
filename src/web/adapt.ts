/**
 * MetaHeac's stage 2 in the browser: fine-tune the meta-learned model on a campaign's seed list on
 * the device and score its candidates, with the bundle `mtl export --checkpoint <metaheac run>`
 * writes (src/adapt/bundle.ts). The fine-tuning is the same code as `mtl adapt`
 * (src/adapt/adapter.ts) over onnxruntime-web sessions, so the scores match Node's.
 *
 *   import { WebAdaptation } from "mtl-onnx/web";
 *   const a = await WebAdaptation.load("/bundle/");                 // adapt.json and its files
 *   const { scores } = await a.adaptAndScore(seedRecords, candidateRecords);
 */
import type * as ort from "onnxruntime-web";
import { ortBuild, type OrtWeb } from "./ort.js";
import { MtlError } from "../errors.js";
import { layoutOf, type Layout } from "../features/batch.js";
import { encodeRecords, type RawValue } from "../features/encode.js";
import { validateSchema } from "../features/schema.js";
import { Adapter, adaptOnSeeds, type AdaptationPlan, type AdaptationWeights, type PlainTensor } from "../adapt/adapter.js";
import { ADAPT_FILES, checkManifest, decodeWeights, type AdaptManifest } from "../adapt/bundle.js";
import { feedsOfRows, scoreRows } from "../adapt/rows.js";

export type WebRecord = Readonly<Record<string, RawValue | undefined>>;

export interface AdaptedScores {
  /** p_lookalike per candidate, in order. */
  scores: Float32Array;
  epochLosses: number[];
  plan: AdaptationPlan;
  /** Wall time of the fine-tuning and of the scoring, ms. */
  adaptMs: number;
  scoreMs: number;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new MtlError("E_IO", `cannot fetch ${url}: ${(err as Error).message}`, { where: { file: url } });
  }
  if (!res.ok) throw new MtlError("E_IO", `cannot fetch ${url}: HTTP ${res.status}`, { where: { file: url } });
  return new Uint8Array(await res.arrayBuffer());
}

function toOrt(runtime: OrtWeb, feeds: Record<string, PlainTensor>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) out[k] = new runtime.Tensor(t.dtype, t.data, [...t.dims]);
  return out;
}

function fromOrt(out: ort.InferenceSession.OnnxValueMapType): Record<string, PlainTensor> {
  const res: Record<string, PlainTensor> = {};
  for (const [k, v] of Object.entries(out)) {
    const t = v as ort.Tensor;
    res[k] = { dtype: t.type as PlainTensor["dtype"], dims: t.dims, data: t.data as PlainTensor["data"] };
  }
  return res;
}

export class WebAdaptation {
  readonly layout: Layout;

  private constructor(
    readonly manifest: AdaptManifest,
    private readonly weights: AdaptationWeights,
    private readonly runtime: OrtWeb,
    private readonly train: ort.InferenceSession,
    private readonly evaluation: ort.InferenceSession,
  ) {
    this.layout = layoutOf(validateSchema(manifest.modelConfig["schema"], ADAPT_FILES.manifest));
  }

  /** Loads a bundle from a base URL (a directory ending in "/") holding adapt.json and its files. */
  static async load(base: string, opts: { wasmPaths?: string; numThreads?: number } = {}): Promise<WebAdaptation> {
    const url = (f: string) => new URL(f, new URL(base, (globalThis as { location?: { href: string } }).location?.href)).href;
    const text = new TextDecoder().decode(await fetchBytes(url(ADAPT_FILES.manifest)));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new MtlError("E_MODEL", `${ADAPT_FILES.manifest} is not valid JSON: ${(err as Error).message}`, { where: { file: url(ADAPT_FILES.manifest) } });
    }
    const manifest = checkManifest(parsed, url(ADAPT_FILES.manifest));
    const runtime = await ortBuild("wasm");
    if (opts.wasmPaths) runtime.env.wasm.wasmPaths = opts.wasmPaths;
    runtime.env.wasm.numThreads = opts.numThreads ?? 1;
    const [trainBytes, evalBytes, weightBytes] = await Promise.all([fetchBytes(url(ADAPT_FILES.trainStep)), fetchBytes(url(ADAPT_FILES.eval)), fetchBytes(url(ADAPT_FILES.weights))]);
    const session = (bytes: Uint8Array) => runtime.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    return new WebAdaptation(manifest, decodeWeights(weightBytes, manifest.weights, url(ADAPT_FILES.weights)), runtime, await session(trainBytes), await session(evalBytes));
  }

  /**
   * Fine-tunes a copy of the meta-learned weights on the seed records (each with its label) and
   * scores the candidates; the loaded weights stay as they were, so another campaign can follow.
   */
  async adaptAndScore(seeds: readonly WebRecord[], candidates: readonly WebRecord[], plan: Partial<AdaptationPlan> = {}): Promise<AdaptedScores> {
    const full: AdaptationPlan = { ...this.manifest.plan, ...plan };
    const seedRows = encodeRecords(this.layout, seeds, { labels: true });
    const candidateRows = encodeRecords(this.layout, candidates, { labels: false });
    const adapter = new Adapter(this.manifest.train, this.manifest.eval, this.weights, async (program, feeds) =>
      fromOrt(await (program === "train" ? this.train : this.evaluation).run(toOrt(this.runtime, feeds))));
    const t0 = performance.now();
    const epochLosses = await adaptOnSeeds(adapter, seedRows.size, full, (which) => feedsOfRows(this.layout, seedRows, which));
    const t1 = performance.now();
    const scores = await scoreRows(adapter, this.layout, candidateRows);
    return { scores, epochLosses, plan: full, adaptMs: t1 - t0, scoreMs: performance.now() - t1 };
  }

  async release(): Promise<void> {
    await this.train.release();
    await this.evaluation.release();
  }
}
