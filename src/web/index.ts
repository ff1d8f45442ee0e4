/**
 * `mtl-onnx/web`: score raw records in a browser with an exported mtl model. onnxruntime-web runs the
 * same .onnx file as `mtl run` and `mtl serve`; the model's metadata (feature schema, hashing) is
 * read from its protobuf with mtl's generated onnx module, and records are encoded by the same
 * encoder, feeds contract (src/models/feeds.ts), request contract and ranking (src/serve/request.ts,
 * ranking.ts) as in Node, so a record scores and a request ranks the same everywhere.
 *
 *   import { WebScorer } from "mtl-onnx/web";
 *   const scorer = await WebScorer.load("/model.onnx");               // wasm; { device: "webgpu" } for WebGPU
 *   const ranked = await scorer.rank({ user: "u1" }, [{ item: "i1" }, { item: "i2" }]);
 *
 * onnxruntime-web comes in builds: the plain wasm one (`onnxruntime-web/wasm`, ~3.7 MB gzipped with
 * its .wasm) and the WebGPU-enabled one (`onnxruntime-web/webgpu`, ~6.6 MB). Each is imported only
 * when asked for, so a bundler splits them into chunks and a page that never asks for WebGPU never
 * downloads that build.
 *
 * A model with external data (over 2 GB) is not supported here: browsers would need the .data file
 * fetched beside it, and such a model does not fit a tab's memory anyway.
 */
import type * as ort from "onnxruntime-web";
import { ortBuild, type OrtWeb, type WebDevice } from "./ort.js";
import { MtlError, isMtlError } from "../errors.js";
import type { Batch } from "../features/batch.js";
import { encodeCandidates, encodeRecords, RowError, type RawValue } from "../features/encode.js";
import { batchFeeds, PREDICTIONS, type PredictionName, type Scores } from "../models/feeds.js";
import { CONTEXT_INDEX_INPUT } from "../models/inputs.js";
import { checkModelAgainstGraph, META_KEYS, readInitializers, readModelInfo, verifyWeights, type ModelInfo } from "../scoring/metadata.js";
import { rankCandidates, rankName, type ScoredCandidate } from "../serve/ranking.js";
import { encodeScoreRequest, RequestError, validateScoreRequest } from "../serve/request.js";

export { MtlError, isMtlError, RowError, RequestError, PREDICTIONS, type ModelInfo, type Scores, type RawValue, type ScoredCandidate };
export { toSchemaJson } from "../features/schema.js";
export type { WebDevice } from "./ort.js";
export { WebAdaptation, type AdaptedScores, type WebRecord } from "./adapt.js";


export interface WebScorerOptions {
  /**
   * Execution provider: "wasm" (default) or "webgpu". WebGPU in a browser without it (no
   * navigator.gpu, or no adapter) fails with E_DEVICE rather than running on wasm unasked.
   */
  device?: WebDevice;
  /** Where onnxruntime-web finds its .wasm/.mjs files (default: next to the bundle). */
  wasmPaths?: string;
  /** wasm threads (default 1; more need a cross-origin-isolated page). */
  numThreads?: number;
  /** Names the model in errors (default: the URL, or "model"). */
  source?: string;
  /** Load a model whose weights fail their checksum (a file edited on purpose); default false. */
  skipChecksum?: boolean;
}

/** A ranked candidate: its position in the request, its scores, and the score it was ranked by. */
export type RankedCandidate = ScoredCandidate & { score: number };

/** The answer to a scoring request, as `mtl serve`'s POST /v1/score gives it. */
export interface ScoreResponse {
  model: string;
  ranked_by: string | null;
  scores: ScoredCandidate[];
}


interface GpuLike {
  requestAdapter(): Promise<unknown>;
}

/** Why WebGPU cannot run here, or null when an adapter is available. */
async function webGpuMissing(): Promise<string | null> {
  const gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (!gpu) return "this browser has no WebGPU (navigator.gpu is missing)";
  try {
    return (await gpu.requestAdapter()) ? null : "the browser found no WebGPU adapter (navigator.gpu.requestAdapter() gave none)";
  } catch (err) {
    return `the browser's WebGPU adapter request failed: ${(err as Error).message ?? String(err)}`;
  }
}

const WEB_GPU_HINT = "use a browser with WebGPU enabled and a GPU driver (Chrome/Edge 113+, Safari 26+), or device \"wasm\"";

export class WebScorer {
  private constructor(
    readonly info: ModelInfo,
    /** The execution provider in use. */
    readonly device: WebDevice,
    private readonly session: ort.InferenceSession,
    private readonly runtime: OrtWeb,
  ) {
    this.contextSplit = session.inputNames.includes(CONTEXT_INDEX_INPUT);
  }

  /** The graph takes the schema's context features once per context (see embedInput). */
  private readonly contextSplit: boolean;

  /** Loads a model from bytes or a URL. Throws MtlError E_NOT_MTL for a file that is not an mtl scoring model. */
  static async load(model: Uint8Array | ArrayBuffer | string, opts: WebScorerOptions = {}): Promise<WebScorer> {
    const source = opts.source ?? (typeof model === "string" ? model : "model");
    let bytes: Uint8Array;
    if (typeof model === "string") {
      let res: Response;
      try {
        res = await fetch(model);
      } catch (err) {
        throw new MtlError("E_IO", `cannot fetch the model: ${(err as Error).message}`, { where: { file: source } });
      }
      if (!res.ok) throw new MtlError("E_IO", `cannot fetch the model: HTTP ${res.status}`, { where: { file: source } });
      bytes = new Uint8Array(await res.arrayBuffer());
    } else bytes = model instanceof Uint8Array ? model : new Uint8Array(model);
    if (bytes.byteLength === 0) throw new MtlError("E_MODEL", "empty file (0 bytes), not an ONNX model", { where: { file: source } });
    const info = readModelInfo(bytes, source);
    const initializers = readInitializers(bytes, source);
    if (!opts.skipChecksum) verifyWeights(info.metadata, initializers, source);
    checkModelAgainstGraph(info, initializers, source);
    if (info.metadata[META_KEYS.externalData]) {
      throw new MtlError("E_MODEL", "the model keeps its weights in an external data file, which mtl-onnx/web does not load", { where: { file: source }, hint: "export it with --fp16 or smaller tables so it fits one file" });
    }
    const device: WebDevice = opts.device ?? "wasm";
    if (device !== "wasm" && device !== "webgpu") throw new MtlError("E_DEVICE", `unknown device '${String(device)}'`, { where: { field: "device" }, hint: "use wasm or webgpu" });
    if (device === "webgpu") {
      const missing = await webGpuMissing();
      if (missing) throw new MtlError("E_DEVICE", missing, { where: { file: source }, hint: WEB_GPU_HINT });
    }
    const runtime = await ortBuild(device);
    if (opts.wasmPaths) runtime.env.wasm.wasmPaths = opts.wasmPaths;
    runtime.env.wasm.numThreads = opts.numThreads ?? 1;
    let session: ort.InferenceSession;
    try {
      session = await runtime.InferenceSession.create(bytes, {
        executionProviders: [device],
        graphOptimizationLevel: "all",
        // As in Node (src/runtime/session.ts): a node WebGPU cannot run is a load error, not a silent run on wasm.
        ...(device === "webgpu" ? { extra: { session: { disable_cpu_ep_fallback: "1" } } } : {}),
      });
    } catch (err) {
      const why = String((err as Error).message ?? err).split("\n")[0];
      if (/fallback to CPU EP has been explicitly disabled/.test(why)) {
        throw new MtlError("E_DEVICE", "some nodes of the model have no WebGPU kernel and would run on wasm", { where: { file: source }, hint: "use device \"wasm\"" });
      }
      throw new MtlError("E_MODEL", `onnxruntime-web cannot load the model: ${why}`, { where: { file: source } });
    }
    for (const p of PREDICTIONS) {
      if (!session.outputNames.includes(p)) throw new MtlError("E_NOT_MTL", `the model has no output '${p}'`, { where: { file: source } });
    }
    return new WebScorer(info, device, session, runtime);
  }

  /** Scores encoded rows. */
  async scoreBatch(batch: Batch): Promise<Scores> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(batchFeeds(batch, this.info.layout, { ids: "int64", labels: false, contextSplit: this.contextSplit }))) feeds[name] = new this.runtime.Tensor(t.data, t.dims);
    const out = await this.session.run(feeds);
    const take = (name: string) => Float32Array.from(out[name]!.data as Float32Array);
    return { p_ctr: take("p_ctr"), p_cvr: take("p_cvr"), p_ctcvr: take("p_ctcvr") };
  }

  /** Scores whole records (every feature in one object). A bad record throws RowError naming its 1-based position and field. */
  scoreRecords(records: readonly Readonly<Record<string, RawValue | undefined>>[]): Promise<Scores> {
    return this.scoreBatch(encodeRecords(this.info.layout, records, { labels: false }));
  }

  /** Scores candidates against one context (context ∪ candidate per row), as `mtl serve` does. */
  scoreCandidates(context: Readonly<Record<string, RawValue | undefined>>, candidates: readonly Readonly<Record<string, RawValue | undefined>>[]): Promise<Scores> {
    return this.scoreBatch(encodeCandidates(this.info.layout, context, candidates));
  }

  /** Candidates sorted by a prediction (default pCTCVR), best first. */
  async rank(context: Readonly<Record<string, RawValue | undefined>>, candidates: readonly Readonly<Record<string, RawValue | undefined>>[], by: PredictionName = "p_ctcvr"): Promise<RankedCandidate[]> {
    return rankCandidates(await this.scoreCandidates(context, candidates), candidates, by) as RankedCandidate[];
  }

  /**
   * Answers a scoring request body ({"context", "candidates", "rank", "top_k"}) exactly as `mtl
   * serve` answers POST /v1/score (`"rank": true` ranks by p_ctcvr here). A bad request throws a
   * RequestError naming the key, candidate and field.
   */
  async scoreRequest(body: unknown): Promise<ScoreResponse> {
    const req = validateScoreRequest(body, this.info.schema);
    const s = await this.scoreBatch(encodeScoreRequest(this.info.layout, req));
    return { model: this.info.model, ranked_by: req.rank === null ? null : rankName(req.rank), scores: rankCandidates(s, req.candidates, req.rank, req.topK) };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
