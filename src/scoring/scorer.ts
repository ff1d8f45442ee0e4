/**
 * An exported mtl model ready to score encoded rows in Node: the embedded schema and layout, and an
 * onnxruntime session, in a worker thread by default (onnxruntime-node's run blocks the thread it is
 * called on, and `mtl run` and `mtl serve` have parsing and HTTP to do meanwhile).
 */
import { readFile } from "node:fs/promises";
import { MtlError } from "../errors.js";
import type { Batch } from "../features/batch.js";
import { type Device, Session, type Tensor } from "../runtime/session.js";
import { WorkerSession } from "../runtime/worker-session.js";
import { PREDICTIONS, scoringFeeds, type Scores } from "./feeds.js";
import { META_KEYS, readModelInfo, type ModelInfo } from "./metadata.js";

export interface ScorerOptions {
  /** Run the session in a worker thread (default true). */
  worker?: boolean;
  /** onnxruntime threads inside one op (default 1: the caller's thread is busy with parsing too). */
  intraOpThreads?: number;
  /** Where onnxruntime runs the model (default cpu; see docs/gpu.md). */
  device?: Device;
}

export class ModelScorer {
  private constructor(
    readonly file: string,
    readonly info: ModelInfo,
    readonly bytes: number,
    private readonly session: Session | WorkerSession,
  ) {}

  static async open(file: string, opts: ScorerOptions = {}): Promise<ModelScorer> {
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
    // With external data, onnxruntime must read the model from its path (the data file sits beside it).
    const source = info.metadata[META_KEYS.externalData] ? file : bytes;
    const options = { intraOpThreads: opts.intraOpThreads ?? 1, source: file, ...(opts.device ? { device: opts.device } : {}) };
    const session = opts.worker === false ? await Session.create(source, options) : await WorkerSession.create(source, options);
    for (const p of PREDICTIONS) {
      if (!session.outputNames.includes(p)) {
        await session.release();
        throw new MtlError("E_NOT_MTL", `the model has no output '${p}'`, { where: { file }, hint: `outputs are ${session.outputNames.join(", ")}` });
      }
    }
    return new ModelScorer(file, info, bytes.byteLength, session);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Scores the batch's rows (encoded with this model's layout). */
  async score(batch: Batch): Promise<Scores> {
    if (batch.size === 0) return { p_ctr: new Float32Array(0), p_cvr: new Float32Array(0), p_ctcvr: new Float32Array(0) };
    const feeds = scoringFeeds(batch, this.info.layout) as Record<string, Tensor>;
    const out = this.session instanceof WorkerSession
      ? await this.session.run(feeds, { fetches: PREDICTIONS, transfer: Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer) })
      : await this.session.run(feeds, PREDICTIONS);
    return { p_ctr: out["p_ctr"]!.data as Float32Array, p_cvr: out["p_cvr"]!.data as Float32Array, p_ctcvr: out["p_ctcvr"]!.data as Float32Array };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
