/**
 * The Node scorer: an exported mtl model (.onnx with its schema in the metadata) ready to score raw
 * records, encoded rows, or a context with its candidates (ranked as `mtl serve` ranks them). The
 * onnxruntime session runs in a worker thread by default (onnxruntime-node's run blocks the thread
 * it is called on, and `mtl run` and `mtl serve` have parsing and HTTP to do meanwhile).
 *
 * `sessions: N` opens N sessions of the same model, each in its own worker with its own
 * `intraOpThreads`: `score` sends each batch to the session with the fewest runs in flight, so N
 * callers (scoreFile's blocks in flight, the server's concurrent runs) keep N cores busy without
 * onnxruntime's intra-op thread pool (whose spinning threads competed with the main thread). Every
 * session is the same model with the same options, so a row scores bit-identically whichever runs it;
 * each holds its own copy of the weights (the reference ESMM: RSS +80-95 MiB a session).
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
  /** onnxruntime threads inside one op, per session (default 1: the caller's thread is busy with parsing too). */
  intraOpThreads?: number;
  /**
   * Sessions of the model, each in its own worker (default 1). Runs go to the least busy one; useful
   * when several batches are in flight at once (`scoreFile`, `mtl serve`). Each holds the weights.
   */
  sessions?: number;
  /**
   * Let onnxruntime's intra-op threads spin while they wait for work (onnxruntime's own default);
   * only matters with intraOpThreads > 1. Default false: they sleep, and burn no core that the
   * caller's thread (parsing, HTTP) or another session needs (measured in docs/bench.md).
   */
  spinning?: boolean;
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
    /** One or more sessions of the model (ScorerOptions.sessions), never empty. */
    private readonly sessions: readonly ModelSession[],
  ) {
    this.inFlight = sessions.map(() => 0);
    this.contextSplit = sessions[0]!.inputNames.includes(CONTEXT_INDEX_INPUT);
  }

  /** Runs in flight per session (index as `sessions`). */
  private readonly inFlight: number[];
  /** Where the search for the least busy session starts (one past the last chosen). */
  private turn = 0;
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
    const count = opts.sessions ?? 1;
    if (!(Number.isInteger(count) && count >= 1)) throw new MtlError("E_USAGE", `sessions must be a positive integer, got ${String(opts.sessions)}`, { where: { field: "sessions" } });
    const sessionOptions = {
      intraOpThreads: opts.intraOpThreads ?? 1, source: file, worker: opts.worker ?? true,
      spinning: opts.spinning ?? false, ...(opts.device ? { device: opts.device } : {}),
    };
    // One after another: the first to fail stops the rest, and a load never holds N copies of the
    // model's bytes in flight at once.
    const sessions: ModelSession[] = [];
    try {
      for (let i = 0; i < count; i++) sessions.push(await openSession(source, sessionOptions));
    } catch (err) {
      await Promise.all(sessions.map((s) => s.release()));
      throw err;
    }
    const first = sessions[0]!;
    for (const p of PREDICTIONS) {
      if (!first.outputNames.includes(p)) {
        await Promise.all(sessions.map((s) => s.release()));
        throw new MtlError("E_NOT_MTL", `the model has no output '${p}'`, { where: { file }, hint: `outputs are ${first.outputNames.join(", ")}` });
      }
    }
    return new Scorer(file, info, bytes.byteLength, sessions);
  }

  get inputNames(): readonly string[] {
    return this.sessions[0]!.inputNames;
  }

  /** How many sessions score (ScorerOptions.sessions): the runs that can go on at once. */
  get sessionCount(): number {
    return this.sessions.length;
  }

  /** Scores rows already encoded with this model's layout (`info.layout`). */
  async score(batch: Batch): Promise<Scores> {
    if (batch.size === 0) return { p_ctr: new Float32Array(0), p_cvr: new Float32Array(0), p_ctcvr: new Float32Array(0) };
    const feeds = batchFeeds(batch, this.info.layout, { ids: "int64", labels: false, contextSplit: this.contextSplit });
    // The least busy session; among equally busy ones, the next in turn after the last one chosen
    // (round robin: with every session holding one run, the next batch queues behind the run that
    // started first, which finishes first, not always behind session 0's).
    const n = this.sessions.length;
    let k = this.turn % n;
    for (let j = 1; j < n; j++) {
      const i = (this.turn + j) % n;
      if (this.inFlight[i]! < this.inFlight[k]!) k = i;
    }
    this.turn = k + 1;
    this.inFlight[k] = this.inFlight[k]! + 1;
    let out: Awaited<ReturnType<ModelSession["run"]>>;
    try {
      out = await this.sessions[k]!.run(feeds, { fetches: PREDICTIONS, transfer: Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer) });
    } finally {
      this.inFlight[k] = this.inFlight[k]! - 1;
    }
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

  /** Releases every session (runs already sent finish first). */
  async release(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.release()));
  }
}
