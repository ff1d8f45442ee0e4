/**
 * `mtl serve`: an exported model behind HTTP JSON.
 *
 *   POST /v1/score  {"context": {user features}, "candidates": [{item features}, ...], "rank": true}
 *                   → {"model", "ranked_by", "scores": [{"index", "p_ctr", "p_cvr", "p_ctcvr", "score"?}]}
 *   GET  /healthz   → {"status": "ok"} (503 while shutting down)
 *   GET  /v1/model  → the model's metadata: name, mtl version, schema, config, training summary
 *
 * This file is the HTTP lifecycle (routes, body limit, timeout, drain on close, reload). The request
 * contract (parse, validate, encode each candidate as context ∪ candidate) is request.ts, shared with
 * the browser; ranking is ranking.ts, shared too; micro-batching (every request queued while a run
 * goes on joins the next run) is batching.ts. The session runs in a worker thread, so the event
 * loop keeps accepting and encoding requests.
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
import { schemaHash, toSchemaJson } from "../features/schema.js";
import type { Scores } from "../models/feeds.js";
import { Scorer, type ScorerOptions } from "../scoring/scorer.js";
import { VERSION } from "../version.js";
import { ModelSlot } from "./batching.js";
import { parseFormula, type RankFormula } from "./formula.js";
import { rankCandidates, rankName } from "./ranking.js";
import { encodeScoreRequest, parseScoreRequest, RequestError } from "./request.js";

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
    s.slot = new ModelSlot(await Scorer.open(modelFile, opts), new Date(), opts.maxBatchRows ?? 16384);
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

  get model(): Scorer {
    return this.slot.scorer;
  }

  /** Session runs and rows of the current model since it was loaded. */
  get stats(): { runs: number; rows: number } {
    return { runs: this.slot.runs, rows: this.slot.rows };
  }

  /** Opens the model file again and swaps it in without dropping a request. */
  async reload(): Promise<void> {
    const next = new ModelSlot(await Scorer.open(this.modelFile, this.opts), new Date(), this.opts.maxBatchRows ?? 16384);
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
        if (req.method !== "GET" && req.method !== "HEAD") throw new RequestError(405, "method_not_allowed", "use GET");
        this.send(res, this.closing ? 503 : 200, { status: this.closing ? "shutting down" : "ok", model: this.slot.scorer.info.model });
      } else if (path === "/v1/model") {
        if (req.method !== "GET") throw new RequestError(405, "method_not_allowed", "use GET");
        this.send(res, 200, this.describe());
      } else if (path === "/v1/score") {
        if (req.method !== "POST") throw new RequestError(405, "method_not_allowed", "use POST with a JSON body");
        const body = await this.readBody(req);
        this.send(res, 200, await this.score(body));
      } else {
        throw new RequestError(404, "not_found", `no route ${path}; routes: POST /v1/score, GET /v1/model, GET /healthz`);
      }
    } catch (err) {
      if (res.headersSent) res.destroy();
      else if (err instanceof RequestError) {
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
      return Promise.reject(new RequestError(413, "body_too_large", `the body is ${declared} bytes; the limit is ${limit}`));
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
          reject(new RequestError(413, "body_too_large", `the body exceeds the limit of ${limit} bytes`));
          return;
        }
        chunks.push(c);
      });
      req.on("end", () => {
        if (!failed) resolve(Buffer.concat(chunks).toString("utf8"));
      });
      req.on("error", (err) => {
        if (!failed) reject(new RequestError(400, "bad_request", `reading the body failed: ${err.message}`));
        failed = true;
      });
    });
  }

  private async score(text: string): Promise<unknown> {
    const slot = this.slot; // the model this request is encoded for, even if a reload swaps it meanwhile
    const req = parseScoreRequest(text, slot.scorer.info.schema, { maxCandidates: this.opts.maxCandidates ?? 1000, formula: this.formula });
    const batch = encodeScoreRequest(slot.scorer.info.layout, req);
    const timeoutMs = this.opts.timeoutMs ?? 2000;
    const { promise, job } = slot.score(batch);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        job.cancelled = true;
        reject(new RequestError(503, "timeout", `not scored within ${timeoutMs} ms; the server is overloaded`));
      }, timeoutMs);
    });
    let s: Scores;
    try {
      s = await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return { model: slot.scorer.info.model, ranked_by: req.rank === null ? null : rankName(req.rank), scores: rankCandidates(s, req.candidates, req.rank, req.topK) };
  }
}
