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
 * feature, naming the candidate and field), 413 over the body limit, 415 for a body that is not
 * JSON, 503 on the per-request timeout; one bad request never fails another (batching.ts). Every
 * limit is checked at start (validateServeOptions). `close()` (SIGTERM in the CLI) stops accepting
 * connections at once, answers every request in flight (and one more on each open connection,
 * marked `connection: close`), then resolves.
 *
 * Connections: headers and body must arrive within `bodyTimeoutMs` (408, then closed), an idle
 * keep-alive socket closes after 5 s, at most `maxConnections` are open. Host and Origin are
 * checked against DNS rebinding and cross-site pages: Host must be a loopback name, an IP address,
 * the listen address or an allowed origin's host; a request with an Origin (a browser) must come
 * from a loopback origin or one in `allowOrigins`, which also get CORS headers. `reload()` (SIGHUP in the CLI) opens the model file again and swaps it in: requests
 * already queued finish on the old session, new ones use the new; if the new file fails to load,
 * the old model keeps serving.
 *
 * Why node:http and no framework: three routes, JSON in and out, a body limit and a timeout are a
 * few dozen lines here; a framework would add dependencies and per-request overhead on the hot path
 * without removing any of the validation code, which is specific to the model's schema.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { basename } from "node:path";
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
  /** Most open connections (default 1024). */
  maxConnections?: number;
  /** Headers and body must arrive within this many ms (default 10,000), else 408 and the connection closes. */
  bodyTimeoutMs?: number;
  /** Browser origins allowed beyond loopback ones ("https://app.example.com"; "*" allows any). */
  allowOrigins?: readonly string[];
  log?: (line: string) => void;
}

const DEFAULTS = { port: 8080, maxBodyBytes: 1 << 20, maxCandidates: 1000, timeoutMs: 2000, maxBatchRows: 16384, maxConnections: 1024, bodyTimeoutMs: 10_000 } as const;
const KEEP_ALIVE_MS = 5000;

/** Refuses limits that would start a server refusing everything (0 candidates, a 0 ms timeout) or not start at all. */
export function validateServeOptions(opts: ServeOptions): void {
  const check = (key: keyof typeof DEFAULTS, flag: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = opts[key];
    if (v === undefined) return;
    if (!(typeof v === "number" && Number.isInteger(v) && v >= min && v <= max)) {
      throw new MtlError("E_USAGE", `${flag} must be an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? "any" : max}, got ${String(v)}`, { where: { field: flag } });
    }
  };
  check("port", "--port", 0, 65535);
  check("maxBodyBytes", "--max-body-kb", 1);
  check("maxCandidates", "--max-candidates", 1);
  check("timeoutMs", "--timeout-ms", 1);
  check("maxBatchRows", "maxBatchRows", 1);
  check("maxConnections", "--max-connections", 1);
  check("bodyTimeoutMs", "--body-timeout-ms", 1);
  if (opts.intraOpThreads !== undefined && !(Number.isInteger(opts.intraOpThreads) && opts.intraOpThreads >= 1)) {
    throw new MtlError("E_USAGE", `--threads must be a positive integer, got ${String(opts.intraOpThreads)}`, { where: { field: "--threads" } });
  }
  if (opts.sessions !== undefined && !(Number.isInteger(opts.sessions) && opts.sessions >= 1)) {
    throw new MtlError("E_USAGE", `--sessions must be a positive integer, got ${String(opts.sessions)}`, { where: { field: "--sessions" } });
  }
  for (const o of opts.allowOrigins ?? []) {
    if (o !== "*" && !/^https?:\/\/[^/\s]+$/.test(o)) throw new MtlError("E_USAGE", `--allow-origin '${o}' is not an origin (scheme://host[:port], no path) or '*'`, { where: { field: "--allow-origin" } });
  }
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1"]);
const IP_LITERAL = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f]*:[0-9a-f:.]*)$/i;

/** The host name of a Host header or an origin's authority, without port or brackets, lower case. */
function hostName(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith("[")) return a.slice(1, a.indexOf("]") < 0 ? undefined : a.indexOf("]"));
  const colon = a.lastIndexOf(":");
  return colon >= 0 && a.indexOf(":") === colon ? a.slice(0, colon) : a;
}

const isLoopbackName = (h: string) => LOOPBACK_NAMES.has(h) || h.endsWith(".localhost");

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
  private readonly allowOrigins: ReadonlySet<string>;

  private constructor(readonly modelFile: string, private readonly opts: ServeOptions) {
    this.formula = parseFormula(opts.rankFormula ?? "p_ctcvr");
    this.log = opts.log ?? ((l) => process.stderr.write(l + "\n"));
    this.allowOrigins = new Set((opts.allowOrigins ?? []).map((o) => o.toLowerCase()));
    const bodyTimeout = opts.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs;
    // Node checks these timeouts every connectionsCheckingInterval (30 s by default, which let a
    // stalled body hang on for ~88 s): check often enough that the documented limit holds.
    this.server = createServer({
      headersTimeout: bodyTimeout, requestTimeout: bodyTimeout, keepAliveTimeout: KEEP_ALIVE_MS,
      connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(bodyTimeout / 4))),
    }, (req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = KEEP_ALIVE_MS;
    this.server.maxConnections = opts.maxConnections ?? DEFAULTS.maxConnections;
    // A socket silent for longer than any request may take (body + scoring) is dead: close it.
    this.server.setTimeout(bodyTimeout + (opts.timeoutMs ?? DEFAULTS.timeoutMs) + KEEP_ALIVE_MS, (socket) => socket.destroy());
  }

  static async start(modelFile: string, opts: ServeOptions = {}): Promise<ScoringServer> {
    validateServeOptions(opts);
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
      // Stop listening at once: no new connection is accepted. Requests in flight are answered, and
      // so is one more arriving on a connection already open, each marked `connection: close`, so
      // every client moves on; idle connections are closed as they become idle. A hard deadline
      // bounds the wait (a request in flight ends within the body and scoring timeouts anyway).
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      const deadline = Date.now() + Math.max(10_000, 4 * (this.opts.timeoutMs ?? DEFAULTS.timeoutMs));
      const QUIET_MS = 100;
      while (Date.now() < deadline) {
        if (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.add(resolve));
        else if (Date.now() - this.lastRequestAt < QUIET_MS) await new Promise((r) => setTimeout(r, QUIET_MS - (Date.now() - this.lastRequestAt)));
        else break;
        this.server.closeIdleConnections();
      }
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

  /**
   * Refuses a request by a Host name that is not ours (DNS rebinding: evil.example.com resolving to
   * 127.0.0.1) or from a browser page of an origin not allowed; sets CORS headers for an allowed one.
   */
  private checkHostAndOrigin(req: IncomingMessage, res: ServerResponse): void {
    const any = this.allowOrigins.has("*");
    const host = req.headers.host;
    if (!any) {
      const name = host === undefined ? "" : hostName(host);
      const listen = hostName(this.opts.host ?? "127.0.0.1");
      const allowedHost = name !== "" && (isLoopbackName(name) || IP_LITERAL.test(name) || name === listen || [...this.allowOrigins].some((o) => hostName(new URL(o).host) === name));
      if (!allowedHost) throw new RequestError(403, "forbidden_host", `Host '${host ?? ""}' is not a name this server answers to; start it with --allow-origin to add one`);
    }
    const origin = req.headers.origin;
    if (origin === undefined) return;
    let originHost = "";
    try {
      originHost = hostName(new URL(origin).host);
    } catch {
      // "null" (a sandboxed page or a file:) or garbage: not loopback, so only '*' allows it.
    }
    if (!(any || this.allowOrigins.has(origin.toLowerCase()) || isLoopbackName(originHost))) {
      throw new RequestError(403, "forbidden_origin", `Origin '${origin}' is not allowed; start the server with --allow-origin ${origin} to allow it`);
    }
    res.setHeader("access-control-allow-origin", origin);
    res.setHeader("vary", "Origin");
  }

  /** Requests received since start. */
  received = 0;

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.received++;
    this.inFlight++;
    this.lastRequestAt = Date.now();
    try {
      const path = (req.url ?? "/").split("?")[0];
      this.checkHostAndOrigin(req, res);
      if (req.method === "OPTIONS") {
        // A CORS preflight from an allowed origin (checkHostAndOrigin refused the others).
        res.writeHead(204, { "access-control-allow-methods": "GET, POST", "access-control-allow-headers": "content-type", "access-control-max-age": "600", ...(this.closing ? { connection: "close" } : {}) });
        res.end();
        return;
      }
      if (path === "/healthz") {
        if (req.method !== "GET" && req.method !== "HEAD") throw new RequestError(405, "method_not_allowed", "use GET");
        this.send(res, this.closing ? 503 : 200, { status: this.closing ? "shutting down" : "ok", model: this.slot.scorer.info.model });
      } else if (path === "/v1/model") {
        if (req.method !== "GET") throw new RequestError(405, "method_not_allowed", "use GET");
        this.send(res, 200, this.describe());
      } else if (path === "/v1/score") {
        if (req.method !== "POST") throw new RequestError(405, "method_not_allowed", "use POST with a JSON body");
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        if (type !== "application/json" && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
          req.resume();
          throw new RequestError(415, "unsupported_media_type", `the body must be JSON sent as content-type application/json, got ${type ? `'${type}'` : "none"}`);
        }
        const body = await this.readBody(req);
        this.send(res, 200, await this.score(body));
      } else {
        throw new RequestError(404, "not_found", `no route ${path}; routes: POST /v1/score, GET /v1/model, GET /healthz`);
      }
    } catch (err) {
      if (res.headersSent) res.destroy();
      else if (err instanceof RequestError) {
        if (err.status === 413 || err.status === 415 || err.status === 403) res.setHeader("connection", "close");
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
      model: info.model, mtl_version: info.version, server_version: VERSION, file: basename(this.modelFile),
      loaded_at: this.slot.loadedAt.toISOString(), schema_hash: schemaHash(info.schema), schema: toSchemaJson(info.schema),
      config: info.config, training_summary: info.summary, tables: info.tables, inputs: this.slot.scorer.inputNames,
      outputs: ["p_ctr", "p_cvr", "p_ctcvr"], rank_formula: this.formula.text,
      limits: {
        max_body_bytes: this.opts.maxBodyBytes ?? DEFAULTS.maxBodyBytes, max_candidates: this.opts.maxCandidates ?? DEFAULTS.maxCandidates, timeout_ms: this.opts.timeoutMs ?? DEFAULTS.timeoutMs,
        body_timeout_ms: this.opts.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs, max_connections: this.opts.maxConnections ?? DEFAULTS.maxConnections,
      },
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
