/**
 * The Node scorer: an exported mtl model (.onnx with its schema in the metadata) ready to score raw
 * records, encoded rows, or a context with its candidates (ranked as `mtl serve` ranks them). The
 * onnxruntime session runs in a worker thread by default (onnxruntime-node's run blocks the thread
 * it is called on, and `mtl run` and `mtl serve` have parsing and HTTP to do meanwhile).
 *
 *   const scorer = await Scorer.open("model.onnx");
 *   const scores = await scorer.scoreRecords([{ user: "u1", item: "i9", price: 12.5 }]);
 *   const ranked = await scorer.rank({ user: "u1" }, [{ item: "i1" }, { item: "i2" }]);
 *   await scorer.release();
 */
import { readFile } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { MtlError } from "../errors.js";
import type { Batch } from "../features/batch.js";
import { encodeCandidates, encodeRecords, type RawValue } from "../features/encode.js";
import { batchFeeds, PREDICTIONS, type Scores } from "../models/feeds.js";
import { CONTEXT_INDEX_INPUT } from "../models/inputs.js";
import { openSession, type ModelSession } from "../runtime/model-session.js";
import type { Device } from "../runtime/session.js";
import { missingFormulaField, rankCandidates, type RankBy, type ScoredCandidate } from "../serve/ranking.js";
import { checkModelAgainstGraph, META_KEYS, readInitializers, readModelInfo, verifyWeights, type ModelInfo } from "./metadata.js";

export interface ScorerOptions {
  /** Run the session in a worker thread (default true). */
  worker?: boolean;
  /** onnxruntime threads inside one op (default 1: the caller's thread is busy with parsing too). */
  intraOpThreads?: number;
  /** Where onnxruntime runs the model (default cpu; see docs/gpu.md). */
  device?: Device;
  /** Load a model whose weights fail their checksum (a file edited on purpose); default false. */
  skipChecksum?: boolean;
}

/** A record: feature values by source name (strings, numbers, booleans or lists of them). */
export type ScoringRecord = Readonly<Record<string, RawValue | undefined>>;

export class Scorer {
  private constructor(
    /** The model file. */
    readonly file: string,
    /** Its embedded metadata: model name, schema and layout, config, training summary. */
    readonly info: ModelInfo,
    /** Size of the file in bytes. */
    readonly bytes: number,
    private readonly session: ModelSession,
  ) {
    this.contextSplit = session.inputNames.includes(CONTEXT_INDEX_INPUT);
  }

  /** The graph takes the schema's context features once per context (see embedInput). */
  private readonly contextSplit: boolean;

  /** Loads an exported model. Throws MtlError E_IO, E_MODEL, or E_NOT_MTL (not an mtl scoring model). */
  static async open(file: string, opts: ScorerOptions = {}): Promise<Scorer> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (err as Error).message;
      throw new MtlError("E_IO", `cannot read the model: ${why}`, { where: { file } });
    }
    if (bytes.byteLength === 0) throw new MtlError("E_MODEL", "empty file (0 bytes), not an ONNX model", { where: { file } });
    const info = readModelInfo(bytes, file);
    const initializers = readInitializers(bytes, file);
    if (!opts.skipChecksum) verifyWeights(info.metadata, initializers, file, crc32);
    checkModelAgainstGraph(info, initializers, file);
    // With external data, onnxruntime must read the model from its path (the data file sits beside it).
    const source = info.metadata[META_KEYS.externalData] ? file : bytes;
    const session = await openSession(source, { intraOpThreads: opts.intraOpThreads ?? 1, source: file, worker: opts.worker ?? true, ...(opts.device ? { device: opts.device } : {}) });
    for (const p of PREDICTIONS) {
      if (!session.outputNames.includes(p)) {
        await session.release();
        throw new MtlError("E_NOT_MTL", `the model has no output '${p}'`, { where: { file }, hint: `outputs are ${session.outputNames.join(", ")}` });
      }
    }
    return new Scorer(file, info, bytes.byteLength, session);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Scores rows already encoded with this model's layout (`info.layout`). */
  async score(batch: Batch): Promise<Scores> {
    if (batch.size === 0) return { p_ctr: new Float32Array(0), p_cvr: new Float32Array(0), p_ctcvr: new Float32Array(0) };
    const feeds = batchFeeds(batch, this.info.layout, { ids: "int64", labels: false, contextSplit: this.contextSplit });
    const out = await this.session.run(feeds, { fetches: PREDICTIONS, transfer: Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer) });
    return { p_ctr: out["p_ctr"]!.data as Float32Array, p_cvr: out["p_cvr"]!.data as Float32Array, p_ctcvr: out["p_ctcvr"]!.data as Float32Array };
  }

  /** Scores raw records (every feature in one object). A bad record throws RowError naming its 1-based position and field. */
  scoreRecords(records: readonly ScoringRecord[]): Promise<Scores> {
    return this.score(encodeRecords(this.info.layout, records, { labels: false }));
  }

  /** Scores candidates against one context (context ∪ candidate per row), in candidate order. */
  scoreCandidates(context: ScoringRecord, candidates: readonly ScoringRecord[]): Promise<Scores> {
    return this.score(encodeCandidates(this.info.layout, context, candidates));
  }

  /** Candidates best first by a prediction (default p_ctcvr) or a formula (parseFormula), as `mtl serve` ranks them. */
  async rank(context: ScoringRecord, candidates: readonly ScoringRecord[], by: RankBy = "p_ctcvr", topK: number | null = null): Promise<ScoredCandidate[]> {
    const missing = typeof by === "object" ? missingFormulaField(by, candidates) : null;
    if (missing) throw new MtlError("E_USAGE", missing, { where: { file: this.file }, hint: "give every candidate the formula's fields as numbers" });
    return rankCandidates(await this.scoreCandidates(context, candidates), candidates, by, topK);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
