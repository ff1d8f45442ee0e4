import { isMtlError, MtlError } from "../errors.js";
import { schemaHash } from "../features/schema.js";
import { ScoringServer } from "../serve/server.js";
import { device } from "./train.js";

export interface ServeArgs {
  model: string;
  port: number;
  host: string;
  threads: number;
  sessions?: number;
  device?: string;
  maxBodyKb: number;
  maxCandidates: number;
  timeoutMs: number;
  rankFormula?: string;
  maxConnections?: number;
  bodyTimeoutMs?: number;
  allowOrigins?: string[];
  skipChecksum?: boolean;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export async function serveCommand(args: ServeArgs): Promise<void> {
  const log = (line: string) => process.stderr.write(line + "\n");
  if (!(args.maxBodyKb > 0)) throw new MtlError("E_USAGE", `--max-body-kb must be positive, got ${args.maxBodyKb}`, { where: { field: "--max-body-kb" } });
  const dev = device(args.device);
  const server = await ScoringServer.start(args.model, {
    port: args.port, host: args.host, intraOpThreads: args.threads, sessions: args.sessions ?? 1, ...(dev ? { device: dev } : {}), maxBodyBytes: Math.max(1, Math.floor(args.maxBodyKb * 1024)),
    maxCandidates: args.maxCandidates, timeoutMs: args.timeoutMs, rankFormula: args.rankFormula, log,
    ...(args.maxConnections !== undefined ? { maxConnections: args.maxConnections } : {}),
    ...(args.bodyTimeoutMs !== undefined ? { bodyTimeoutMs: args.bodyTimeoutMs } : {}),
    ...(args.allowOrigins ? { allowOrigins: args.allowOrigins } : {}),
    skipChecksum: args.skipChecksum ?? false,
  });
  const { info } = server.model;
  if (!LOOPBACK.has(args.host)) {
    log(`mtl serve: warning: listening on ${args.host}, beyond this machine; mtl serve has no authentication`);
    if (!(args.allowOrigins ?? []).length) log("mtl serve: requests must name it by IP address or a loopback name; for a host name add --allow-origin http://<name>:<port>");
  }
  process.stdout.write(`mtl serve: ${args.model} (${info.model}, schema ${schemaHash(info.schema)}) listening on ${server.url}\n`);
  process.stdout.write("POST /v1/score, GET /v1/model, GET /healthz; SIGHUP reloads the model file, SIGTERM drains and exits\n");
  let reloading = false;
  process.on("SIGHUP", () => {
    if (reloading) return;
    reloading = true;
    server.reload().catch((err: unknown) => {
      log(`mtl serve: reload failed, still serving the previous model: ${isMtlError(err) ? err.format() : String(err)}`);
    }).finally(() => (reloading = false));
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log(`mtl serve: ${signal}: finishing requests in flight`);
      server.close().then(resolve, (err: unknown) => {
        log(`mtl serve: shutdown error: ${String(err)}`);
        resolve();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  log("mtl serve: stopped");
}
