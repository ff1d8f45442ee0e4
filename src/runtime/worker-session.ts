/**
 * An onnxruntime session in a worker thread. onnxruntime-node runs a model synchronously on the
 * calling thread, so the trainer runs its step here to keep the main thread free for the next
 * batch's row gathering and the last batch's row scatter. The same ModelSession contract as Session;
 * the buffers named in `transfer` move to the worker (the caller must not use them until they come
 * back through `onInputs`).
 */
import { Worker } from "node:worker_threads";
import { MtlError } from "../errors.js";
import type { ModelSession, RunOptions } from "./model-session.js";
import type { SessionOptions, Tensor } from "./session.js";

interface Pending {
  resolve(out: Record<string, Tensor>, inputs: ArrayBuffer[]): void;
  reject(err: Error): void;
}

type WorkerError = { code: string; message: string; hint?: string; file?: string; cause?: string };

function toError(e: WorkerError): MtlError {
  return new MtlError(e.code, e.message, { hint: e.hint, where: e.file ? { file: e.file } : {}, ...(e.cause !== undefined ? { cause: e.cause } : {}) });
}

export class WorkerSession implements ModelSession {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** release() is waiting for the worker: keep it referenced until it has exited. */
  private releasing = false;

  private constructor(private readonly worker: Worker, readonly inputNames: readonly string[], readonly outputNames: readonly string[]) {
    // An idle worker does not keep the process alive (a forgotten release() must not hang it);
    // a run in flight does.
    worker.unref();
    worker.on("message", (m: { kind: string; id?: number; out?: Record<string, Tensor>; inputs?: ArrayBuffer[]; error?: WorkerError }) => {
      if (m.kind !== "ran") return;
      const p = this.pending.get(m.id!);
      this.pending.delete(m.id!);
      if (this.pending.size === 0 && !this.releasing) worker.unref();
      if (m.error) p?.reject(toError(m.error));
      else p?.resolve(m.out!, m.inputs ?? []);
    });
    worker.on("error", (err) => {
      for (const p of this.pending.values()) p.reject(new MtlError("E_WORKER", `the session worker failed: ${err.message}`, { cause: err }));
      this.pending.clear();
    });
  }

  /** `model`: the bytes, or a path (needed for a model with external data). */
  static async create(model: Uint8Array | string, opts: SessionOptions = {}): Promise<WorkerSession> {
    const worker = new Worker(new URL("./session-worker.js", import.meta.url));
    const reply = await new Promise<{ inputNames?: string[]; outputNames?: string[]; error?: WorkerError }>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.postMessage({ kind: "create", model, options: opts });
    });
    if (reply.error) {
      await worker.terminate();
      throw toError(reply.error);
    }
    return new WorkerSession(worker, reply.inputNames!, reply.outputNames!);
  }

  /**
   * Runs the model in the worker. The input buffers come back (the feeds' memory, now owned by the
   * caller again) through `onInputs`, for reuse.
   */
  run(feeds: Readonly<Record<string, Tensor>>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    for (const r of opts.rows ?? []) {
      // A table on an ordinary ArrayBuffer would be copied into the worker, and its rows written back to the copy.
      if (!(r.table.buffer instanceof SharedArrayBuffer)) return Promise.reject(new MtlError("E_WORKER", "a worker session writes rows back only into a table on a SharedArrayBuffer"));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, {
        resolve: (out, inputs) => {
          opts.onInputs?.(inputs);
          resolve(out);
        },
        reject,
      });
      this.worker.postMessage({ kind: "run", id, feeds, fetches: opts.fetches ? [...opts.fetches] : undefined, rows: opts.rows }, [...(opts.transfer ?? [])]);
    });
  }

  /**
   * Runs already sent finish first (the worker answers in order); then the session is released and
   * the worker ends. Waits for the release's own answer, not a run's that is still on its way, and
   * keeps the worker referenced meanwhile, so the process cannot drift out of its event loop with
   * this promise pending (a pooled scorer releases with runs in flight when a bad row stops a file).
   */
  async release(): Promise<void> {
    this.releasing = true;
    this.worker.ref();
    await new Promise<void>((resolve) => {
      const done = (m?: { kind?: string }) => {
        if (m && m.kind !== "released") return;
        this.worker.off("message", done);
        this.worker.off("exit", onExit);
        resolve();
      };
      const onExit = () => done();
      this.worker.on("message", done);
      this.worker.once("exit", onExit);
      this.worker.postMessage({ kind: "release" });
    });
    await this.worker.terminate();
  }
}
