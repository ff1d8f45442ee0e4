/**
 * `mtl serve`: an exported model behind HTTP JSON.
 *
 *   POST /v1/score  {"context": {user features}, "candidates": [{item features}, ...], "rank": true}
 *                   → {"model", "ranked_by", "scores": [{"index", "p_ctr", "p_cvr", "p_ctcvr", "score"?}]}
 *   GET  /healthz   → {"status": "ok"} (503 while shutting down)
 *   GET  /v1/model  → the model's metadata: name, mtl version, schema, config, training summary
 *
 * Each candidate is scored as context ∪ candidate through the model's embedded schema with the
 * shared encoder. Requests that arrive while the session is busy are micro-batched: when a run
 * finishes, every request queued meanwhile goes into the next run (no fixed delay to wait out).
 * The session runs in a worker thread, so the event loop keeps accepting and encoding requests.
 *
 * Bad input never crashes the server: 400 with the reason (invalid JSON, a missing or mistyped
 * feature, naming the candidate and field), 413 over the body limit, 503 on the per-request
 * timeout. `close()` (SIGTERM in the CLI) stops accepting, answers every request in flight, then
 * resolves. `reload()` (SIGHUP in the CLI) opens the model file again and swaps it in: requests
 * already queued finish on the old session, new ones use the new; if the new file fails to load,
 * the old model keeps serving.
 *
 * Why node:http and no framework: three routes, JSON in and out, a body limit and a timeout are a
 * few dozen lines here; a framework would add dependencies and per-request overhead on the hot path
 * without removing any of the validation code, which is specific to the model's schema.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { MtlError } from "../errors.js";
import type { Batch } from "../features/batch.js";
import { RowError, type RawValue } from "../features/encode.js";
import { schemaHash, toSchemaJson } from "../features/schema.js";
import { concatBatches, encodeCandidates, type Scores } from "../scoring/feeds.js";
import { ModelScorer, type ScorerOptions } from "../scoring/scorer.js";
import { parseFormula, type RankFormula } from "./formula.js";
import { VERSION } from "../version.js";

export interface ServeOptions extends ScorerOptions {
  port?: number;
  host?: string;
  /** Largest request body (default 1 MiB). */
  maxBodyBytes?: number;
  /** Most candidates in one request (default 1000). */
  maxCandidates?: number;
  /** A request not answered within this many ms gets 503 (default 2000). */
  timeoutMs?: number;
  /** Most rows in one session run (default 16384). */
  maxBatchRows?: number;
  /** Ranking formula used when a request asks for `"rank": true` (default "p_ctcvr"). */
  rankFormula?: string;
  log?: (line: string) => void;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

interface Job {
  batch: Batch;
  resolve(s: Scores): void;
  reject(e: Error): void;
  cancelled: boolean;
}

/** One model and the queue in front of its session: a run at a time, each taking every job queued. */
class ModelSlot {
  private queue: Job[] = [];
  /** Session runs and rows scored (micro-batching: runs ≤ requests). */
  runs = 0;
  rows = 0;
  private running: Promise<void> | null = null;
  constructor(readonly scorer: ModelScorer, readonly loadedAt: Date, private readonly maxRows: number) {}

  score(batch: Batch, job: Partial<Job> = {}): { promise: Promise<Scores>; job: Job } {
    let j!: Job;
    const promise = new Promise<Scores>((resolve, reject) => {
      j = { batch, resolve, reject, cancelled: false, ...job };
    });
    this.queue.push(j);
    if (!this.running) this.running = this.pump();
    return { promise, job: j };
  }

  private async pump(): Promise<void> {
    while (this.queue.length) {
      const jobs: Job[] = [];
      let rows = 0;
      while (this.queue.length && (jobs.length === 0 || rows + this.queue[0]!.batch.size <= this.maxRows)) {
        const j = this.queue.shift()!;
        if (j.cancelled) continue;
        jobs.push(j);
        rows += j.batch.size;
      }
      if (!jobs.length) continue;
      try {
        this.runs++;
        this.rows += rows;
        const s = await this.scorer.score(concatBatches(this.scorer.info.layout, jobs.map((j) => j.batch)));
        let at = 0;
        for (const j of jobs) {
          const n = j.batch.size;
          j.resolve({ p_ctr: s.p_ctr.subarray(at, at + n), p_cvr: s.p_cvr.subarray(at, at + n), p_ctcvr: s.p_ctcvr.subarray(at, at + n) });
          at += n;
        }
      } catch (err) {
        for (const j of jobs) j.reject(err as Error);
      }
    }
    this.running = null;
  }

  /** Resolves when every queued job has been scored. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }
}

type RequestBody = { context?: unknown; candidates?: unknown; rank?: unknown; top_k?: unknown };

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === "string" || (typeof v === "number" && Number.isFinite(v)) || typeof v === "boolean";
}

export class ScoringServer {
  private slot!: ModelSlot;
  private readonly server: Server;
  private inFlight = 0;
  private closing: Promise<void> | null = null;
  private readonly formula: RankFormula;
  private readonly log: (line: string) => void;
  private readonly idle = new Set<() => void>();
  /** When the last request arrived (close() waits for a quiet moment before dropping connections). */
  private lastRequestAt = Date.now();

  private constructor(readonly modelFile: string, private readonly opts: ServeOptions) {
    this.formula = parseFormula(opts.rankFormula ?? "p_ctcvr");
    this.log = opts.log ?? ((l) => process.stderr.write(l + "\n"));
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
    // Node's own request timeout guards slow bodies; the scoring timeout is ours (timeoutMs).
    this.server.requestTimeout = Math.max(10_000, (opts.timeoutMs ?? 2000) * 2);
  }

  static async start(modelFile: string, opts: ServeOptions = {}): Promise<ScoringServer> {
    const s = new ScoringServer(modelFile, opts);
    s.slot = new ModelSlot(await ModelScorer.open(modelFile, opts), new Date(), opts.maxBatchRows ?? 16384);
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", (err: NodeJS.ErrnoException) =>
        reject(new MtlError("E_LISTEN", `cannot listen on ${opts.host ?? "127.0.0.1"}:${opts.port ?? 8080}: ${err.code ?? err.message}`, { hint: err.code === "EADDRINUSE" ? "another process holds the port; pick another with --port" : undefined })));
      s.server.listen(opts.port ?? 8080, opts.host ?? "127.0.0.1", () => resolve());
    }).catch(async (err) => {
      await s.slot.scorer.release();
      throw err;
    });
    return s;
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  get url(): string {
    const a = this.address;
    return `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
  }

  get model(): ModelScorer {
    return this.slot.scorer;
  }

  /** Session runs and rows of the current model since it was loaded. */
  get stats(): { runs: number; rows: number } {
    return { runs: this.slot.runs, rows: this.slot.rows };
  }

  /** Opens the model file again and swaps it in without dropping a request. */
  async reload(): Promise<void> {
    const next = new ModelSlot(await ModelScorer.open(this.modelFile, this.opts), new Date(), this.opts.maxBatchRows ?? 16384);
    const old = this.slot;
    this.slot = next;
    await old.drain();
    await old.scorer.release();
    this.log(`mtl serve: reloaded ${this.modelFile} (${next.scorer.info.model}, schema ${schemaHash(next.scorer.info.schema)})`);
  }

  /** Stops accepting connections, answers every request in flight, releases the model. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Drain: keep answering (healthz says 503, every response says `connection: close`) until no
      // request is in flight and none came for QUIET_MS, then stop listening and drop idle
      // connections. Closing the listener first would reset connections still in the accept
      // backlog. A hard deadline bounds the wait under constant load.
      const deadline = Date.now() + Math.max(10_000, 4 * (this.opts.timeoutMs ?? 2000));
      const QUIET_MS = 100;
      while (Date.now() < deadline) {
        if (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.add(resolve));
        else if (Date.now() - this.lastRequestAt < QUIET_MS) await new Promise((r) => setTimeout(r, QUIET_MS - (Date.now() - this.lastRequestAt)));
        else break;
      }
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeAllConnections();
      await closed;
      await this.slot.drain();
      await this.slot.scorer.release();
    })();
    return this.closing;
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      ...(this.closing ? { connection: "close" } : {}),
    });
    res.end(text);
  }

  /** Requests received since start. */
  received = 0;

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.received++;
    this.inFlight++;
    this.lastRequestAt = Date.now();
    try {
      const path = (req.url ?? "/").split("?")[0];
      if (path === "/healthz") {
        if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "method_not_allowed", "use GET");
        this.send(res, this.closing ? 503 : 200, { status: this.closing ? "shutting down" : "ok", model: this.slot.scorer.info.model });
      } else if (path === "/v1/model") {
        if (req.method !== "GET") throw new HttpError(405, "method_not_allowed", "use GET");
        this.send(res, 200, this.describe());
      } else if (path === "/v1/score") {
        if (req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST with a JSON body");
        const body = await this.readBody(req);
        this.send(res, 200, await this.score(body));
      } else {
        throw new HttpError(404, "not_found", `no route ${path}; routes: POST /v1/score, GET /v1/model, GET /healthz`);
      }
    } catch (err) {
      if (res.headersSent) res.destroy();
      else if (err instanceof HttpError) {
        if (err.status === 413) res.setHeader("connection", "close");
        this.send(res, err.status, { error: { code: err.code, message: err.message } });
      } else {
        this.log(`mtl serve: internal error: ${(err as Error).stack ?? String(err)}`);
        this.send(res, 500, { error: { code: "internal", message: (err as Error).message } });
      }
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) {
        for (const f of this.idle) f();
        this.idle.clear();
      }
    }
  }

  private describe(): unknown {
    const { info } = this.slot.scorer;
    return {
      model: info.model, mtl_version: info.version, server_version: VERSION, file: this.modelFile,
      loaded_at: this.slot.loadedAt.toISOString(), schema_hash: schemaHash(info.schema), schema: toSchemaJson(info.schema),
      config: info.config, training_summary: info.summary, tables: info.tables, inputs: this.slot.scorer.inputNames,
      outputs: ["p_ctr", "p_cvr", "p_ctcvr"], rank_formula: this.formula.text,
      limits: { max_body_bytes: this.opts.maxBodyBytes ?? 1 << 20, max_candidates: this.opts.maxCandidates ?? 1000, timeout_ms: this.opts.timeoutMs ?? 2000 },
    };
  }

  private readBody(req: IncomingMessage): Promise<string> {
    const limit = this.opts.maxBodyBytes ?? 1 << 20;
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return Promise.reject(new HttpError(413, "body_too_large", `the body is ${declared} bytes; the limit is ${limit}`));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on("data", (c: Buffer) => {
        if (failed) return;
        size += c.length;
        if (size > limit) {
          failed = true;
          chunks.length = 0;
          reject(new HttpError(413, "body_too_large", `the body exceeds the limit of ${limit} bytes`));
          return;
        }
        chunks.push(c);
      });
      req.on("end", () => {
        if (!failed) resolve(Buffer.concat(chunks).toString("utf8"));
      });
      req.on("error", (err) => {
        if (!failed) reject(new HttpError(400, "bad_request", `reading the body failed: ${err.message}`));
        failed = true;
      });
    });
  }

  private parseRequest(text: string): { context: Record<string, RawValue>; candidates: Record<string, RawValue>[]; rank: RankFormula | "p_ctr" | "p_cvr" | "p_ctcvr" | null; topK: number | null } {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, "bad_json", `invalid JSON: ${(err as Error).message}`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "bad_request", "the body must be a JSON object {\"context\": {...}, \"candidates\": [...]}");
    const b = body as RequestBody;
    for (const k of Object.keys(b)) if (!["context", "candidates", "rank", "top_k"].includes(k)) throw new HttpError(400, "bad_request", `unknown key '${k}'; keys: context, candidates, rank, top_k`);
    const context = b.context ?? {};
    if (typeof context !== "object" || context === null || Array.isArray(context)) throw new HttpError(400, "bad_request", "'context' must be an object of feature values");
    if (!Array.isArray(b.candidates) || b.candidates.length === 0) throw new HttpError(400, "bad_request", "'candidates' must be a non-empty list of objects");
    const max = this.opts.maxCandidates ?? 1000;
    if (b.candidates.length > max) throw new HttpError(400, "too_many_candidates", `${b.candidates.length} candidates; the limit is ${max}`);
    let rank: ReturnType<ScoringServer["parseRequest"]>["rank"] = null;
    if (b.rank === true) rank = this.formula;
    else if (b.rank === "p_ctr" || b.rank === "p_cvr" || b.rank === "p_ctcvr") rank = b.rank;
    else if (b.rank !== undefined && b.rank !== false) throw new HttpError(400, "bad_request", "'rank' is true (the server's formula), false, or one of \"p_ctr\", \"p_cvr\", \"p_ctcvr\"");
    let topK: number | null = null;
    if (b.top_k !== undefined) {
      if (!(typeof b.top_k === "number" && Number.isInteger(b.top_k) && b.top_k > 0)) throw new HttpError(400, "bad_request", "'top_k' must be a positive integer");
      if (rank === null) throw new HttpError(400, "bad_request", "'top_k' needs 'rank'");
      topK = b.top_k;
    }
    const { schema } = this.slot.scorer.info;
    const sources = new Set<string>();
    for (const f of schema.features) {
      sources.add(f.source);
      if (f.kind === "weighted_ids" && f.weightSource) sources.add(f.weightSource);
    }
    // Checked per value without building strings: a request has ~1,000 of them.
    const valid = (v: unknown): boolean => v === null || isScalar(v) || (Array.isArray(v) && v.every(isScalar));
    const mistyped = (v: unknown, where: string): HttpError => {
      const what = Array.isArray(v) ? "a list with an item that is not a string, number or boolean" : typeof v === "number" ? "a non-finite number" : typeof v === "object" ? "an object" : typeof v;
      return new HttpError(400, "mistyped_feature", `${where}: expected a string, a number, a boolean or a list of them, got ${what}`);
    };
    const ctx = context as Record<string, unknown>;
    for (const k of Object.keys(ctx)) if (sources.has(k) && !valid(ctx[k])) throw mistyped(ctx[k], `context.${k}`);
    const candidates = b.candidates;
    for (let i = 0; i < candidates.length; i++) {
      const c: unknown = candidates[i];
      if (typeof c !== "object" || c === null || Array.isArray(c)) throw new HttpError(400, "bad_request", `candidates[${i}] must be an object of feature values`);
      const cand = c as Record<string, unknown>;
      for (const k in cand) {
        if (!sources.has(k)) continue;
        if (ctx[k] !== undefined) throw new HttpError(400, "bad_request", `candidates[${i}].${k} is also given in context; give each feature once`);
        if (!valid(cand[k])) throw mistyped(cand[k], `candidates[${i}].${k}`);
      }
    }
    if (rank !== null && typeof rank === "object") {
      for (const f of rank.fields) {
        b.candidates.forEach((c: Record<string, unknown>, i: number) => {
          if (typeof c[f] !== "number" || !Number.isFinite(c[f])) throw new HttpError(400, "bad_request", `the rank formula '${rank === null || typeof rank === "string" ? "" : rank.text}' needs a number '${f}' in every candidate; candidates[${i}] has ${JSON.stringify(c[f])}`);
        });
      }
    }
    return { context: ctx as Record<string, RawValue>, candidates: b.candidates as Record<string, RawValue>[], rank, topK };
  }

  private async score(text: string): Promise<unknown> {
    const req = this.parseRequest(text);
    const slot = this.slot; // the model this request is encoded for, even if a reload swaps it meanwhile
    let batch: Batch;
    try {
      batch = encodeCandidates(slot.scorer.info.layout, req.context, req.candidates);
    } catch (err) {
      if (err instanceof RowError) {
        const i = (err.where.line ?? 1) - 1;
        const field = err.where.field;
        const cand = req.candidates[i] ?? {};
        if (err.reason === "missing_column") {
          throw new HttpError(400, "missing_feature", `candidates[${i}]: the feature '${field}' is in neither the candidate nor the context${err.hint ? ` (${err.hint})` : ""}`);
        }
        const owner = field === undefined ? `candidates[${i}]` : field in cand ? `candidates[${i}].${field}` : `context.${field}`;
        throw new HttpError(400, "bad_feature", `${owner}: ${err.message}${err.hint ? ` (${err.hint})` : ""}`);
      }
      throw err;
    }
    const timeoutMs = this.opts.timeoutMs ?? 2000;
    const { promise, job } = slot.score(batch);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        job.cancelled = true;
        reject(new HttpError(503, "timeout", `not scored within ${timeoutMs} ms; the server is overloaded`));
      }, timeoutMs);
    });
    let s: Scores;
    try {
      s = await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
    const rows = Array.from({ length: batch.size }, (_, i) => ({ index: i, p_ctr: s.p_ctr[i]!, p_cvr: s.p_cvr[i]!, p_ctcvr: s.p_ctcvr[i]! }));
    if (req.rank === null) return { model: slot.scorer.info.model, ranked_by: null, scores: rows };
    const rank = req.rank;
    const scored = rows.map((r) => ({
      ...r,
      score: typeof rank === "string" ? r[rank] : rank.evaluate((name) => (name === "p_ctr" || name === "p_cvr" || name === "p_ctcvr" ? r[name] : (req.candidates[r.index]![name] as number))),
    }));
    scored.sort((a, b) => b.score - a.score || a.index - b.index);
    return { model: slot.scorer.info.model, ranked_by: typeof rank === "string" ? rank : rank.text, scores: req.topK ? scored.slice(0, req.topK) : scored };
  }
}
