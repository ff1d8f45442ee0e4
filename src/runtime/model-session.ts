/**
 * One session interface for every caller (the trainer, the scorer, `mtl serve`, `mtl run`): a model
 * loaded into onnxruntime, run with named tensors. Whether it runs on this thread (Session) or in a
 * worker thread (WorkerSession) is chosen once, at `openSession`; callers never branch on it.
 */
import type { TableRows } from "./rows.js";
import { Session, type SessionOptions, type Tensor } from "./session.js";
import { WorkerSession } from "./worker-session.js";

export interface RunOptions {
  /** Outputs to return (default: all). */
  fetches?: readonly string[];
  /**
   * Buffers of the feeds the caller gives up for this run: a worker session moves them to its
   * thread instead of copying them. The caller must not touch them until `onInputs` hands them back.
   */
  transfer?: readonly ArrayBuffer[];
  /** Called, before run() resolves, with feed buffers the caller owns again and may reuse. */
  onInputs?: (buffers: ArrayBuffer[]) => void;
  /**
   * Table rows the session refreshes into the feeds before the run and writes back into the
   * tables after it, on its own thread (src/runtime/rows.ts). A worker session needs the tables on
   * SharedArrayBuffers.
   */
  rows?: readonly TableRows[];
}

export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model. Every graph input must be fed. Returns tensors that own their data. */
  run(feeds: Readonly<Record<string, Tensor>>, opts?: RunOptions): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

export interface OpenSessionOptions extends SessionOptions {
  /**
   * Run the session in a worker thread (default false). onnxruntime-node's run() blocks the thread
   * it is called on; in a worker the caller's thread keeps working while the model runs.
   */
  worker?: boolean;
}

/** `model`: the bytes, or a path (needed for a model with external data). */
export async function openSession(model: Uint8Array | string, opts: OpenSessionOptions = {}): Promise<ModelSession> {
  const { worker = false, ...options } = opts;
  return worker ? WorkerSession.create(model, options) : Session.create(model, options);
}
