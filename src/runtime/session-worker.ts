/**
 * The worker side of WorkerSession: owns one onnxruntime session and runs it on request, so the
 * main thread stays free while a step runs (onnxruntime-node's run() blocks the thread it is called on).
 */
import { parentPort } from "node:worker_threads";
import { isMtlError } from "../errors.js";
import { writeBackRows, type TableRows } from "./rows.js";
import { Session, type SessionOptions, type Tensor } from "./session.js";

type Request =
  | { kind: "create"; model: Uint8Array | string; options: SessionOptions }
  | { kind: "run"; id: number; feeds: Record<string, Tensor>; fetches?: string[]; rows?: TableRows[] }
  | { kind: "release" };

function errorReply(err: unknown): { code: string; message: string; hint?: string; file?: string; cause?: string } {
  // The raw text behind a translated error (onnxruntime's) travels too, for --verbose.
  const cause = isMtlError(err) && err.cause !== undefined ? String(err.cause instanceof Error ? err.cause.message : err.cause) : undefined;
  if (isMtlError(err)) return { code: err.code, message: err.message, hint: err.hint, file: err.where.file, ...(cause !== undefined ? { cause } : {}) };
  return { code: "E_WORKER", message: err instanceof Error ? err.message : String(err) };
}

let session: Session | null = null;
// Requests are handled strictly one after another: a run's write-back of rows must be complete
// before the next run refreshes rows from the same table.
let queue: Promise<void> = Promise.resolve();
parentPort!.on("message", (req: Request) => {
  queue = queue.then(() => handle(req));
});

async function handle(req: Request): Promise<void> {
  if (req.kind === "create") {
    try {
      session = await Session.create(req.model, req.options);
      parentPort!.postMessage({ kind: "created", inputNames: session.inputNames, outputNames: session.outputNames });
    } catch (err) {
      parentPort!.postMessage({ kind: "created", error: errorReply(err) });
    }
  } else if (req.kind === "run") {
    try {
      const rows = req.rows ?? [];
      // Rows the caller shares the write-back of are written after the reply (rows.ts); without a
      // share, before it, so the table is complete when the caller's run() resolves.
      const deferred = rows.filter((r) => r.share);
      const out = await session!.run(req.feeds, { fetches: req.fetches, rows, deferWriteBack: true });
      writeBackRows(rows.filter((r) => !r.share), out);
      // A shared block's updated rows stay here for the write-back after the reply; the step's
      // scalars of a host update go in the reply too, so the write-back keeps a copy.
      const kept = new Set(deferred.flatMap((r) => r.outputs));
      const afterReply: Record<string, Tensor> = {};
      for (const name of kept) afterReply[name] = out[name]!;
      for (const r of deferred) if (r.update) afterReply[r.update.scalars] ??= { ...out[r.update.scalars]!, data: out[r.update.scalars]!.data.slice() };
      const reply: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(out)) if (!kept.has(name)) reply[name] = t;
      const buffers = new Set<ArrayBuffer>();
      for (const t of Object.values(reply)) if (t.data.buffer instanceof ArrayBuffer) buffers.add(t.data.buffer);
      // The inputs go back too, so the caller can reuse their memory instead of allocating anew.
      const inputs = new Set<ArrayBuffer>();
      for (const t of Object.values(req.feeds)) if (t.data.buffer instanceof ArrayBuffer && !buffers.has(t.data.buffer)) inputs.add(t.data.buffer);
      parentPort!.postMessage({ kind: "ran", id: req.id, out: reply, inputs: [...inputs] }, [...buffers, ...inputs]);
      writeBackRows(deferred, afterReply);
    } catch (err) {
      parentPort!.postMessage({ kind: "ran", id: req.id, error: errorReply(err) });
    }
  } else {
    await session?.release();
    session = null;
    parentPort!.postMessage({ kind: "released" });
  }
}
