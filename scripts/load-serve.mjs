// Load test for `mtl serve` (a measurement, not a CI test): N requests of 1 context x C candidates
// at concurrency K over loopback keep-alive connections, against a server in its own process.
// Prints errors, p50/p99 latency, requests/s and the server's RSS before and after.
//
//   npm run build && node scripts/load-serve.mjs [--requests 20000] [--concurrency 64] [--candidates 100] [--threads 1] [--sessions 1] [--rounds 1] [--model file.onnx] [--bad-fraction 0.01]
//   node scripts/load-serve.mjs --json ...    (also one JSON object per round, for scripts/bench.mjs)
//   node scripts/load-serve.mjs --url http://127.0.0.1:8080 --pid <server pid>    (a server you started, e.g. under --cpu-prof)
//
// Without --model it exports the ESMM reference configuration (Ali-CCP schema, 737,947 x 12 table,
// towers 256 -> 64) freshly initialised; the scores do not matter for speed.
//
// --bad-fraction F: that share of the requests carries an out-of-range id (one candidate's item id
// past the vocabulary). Those must get 400 and every other request 200: one bad request must never
// fail another in its micro-batch. Failures are counted apart for the good and the bad requests.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "bin", "mtl.js");
const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" }, concurrency: { type: "string", default: "64" },
    candidates: { type: "string", default: "100" }, threads: { type: "string", default: "1" }, sessions: { type: "string", default: "1" }, model: { type: "string" },
    url: { type: "string" }, pid: { type: "string" }, rounds: { type: "string", default: "1" }, "bad-fraction": { type: "string", default: "0" },
    json: { type: "boolean", default: false },
  },
});
const total = Number(args.requests), concurrency = Number(args.concurrency), candidates = Number(args.candidates), badFraction = Number(args["bad-fraction"]);
const tmp = mkdtempSync(join(tmpdir(), "mtl-load-"));
let model = args.model;
if (!model && !args.url) {
  model = join(tmp, "esmm.onnx");
  execFileSync(process.execPath, [bin, "export", "--model", "esmm", "-o", model], { stdio: "inherit" });
}

const CONTEXT = ["101", "109_14", "110_14", "127_14", "150_14", "121", "122", "124", "125", "126", "127", "128", "129"];
const ITEM = ["205", "206", "207", "210", "216", "508", "509", "702", "853", "301"];
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const ids = (n) => Array.from({ length: n }, () => 1 + Math.floor(rand() * 737_946));
const bodies = Array.from({ length: 200 }, () => JSON.stringify({
  context: Object.fromEntries(CONTEXT.map((f) => [f, ids(f.endsWith("_14") ? 3 : 1)])),
  candidates: Array.from({ length: candidates }, () => Object.fromEntries(ITEM.map((f) => [f, ids(1)]))),
}));

// A request with an id past the vocabulary (737,947) in one candidate: the server must answer 400.
const badBodies = Array.from({ length: 20 }, (_, k) => {
  const b = JSON.parse(bodies[k]);
  b.candidates[k % candidates]["205"] = [737_947 + k];
  return JSON.stringify(b);
});
// Which requests are bad: every 1/F-th, spread evenly (the same ones in every run).
const isBad = (i) => badFraction > 0 && Math.floor((i + 1) * badFraction) > Math.floor(i * badFraction);

const server = args.url ? null : spawn(process.execPath, [bin, "serve", model, "--port", "0", "--threads", args.threads, "--sessions", args.sessions], { stdio: ["ignore", "pipe", "inherit"] });
const serverPid = server ? server.pid : Number(args.pid);
const url = args.url ? new URL(args.url) : await new Promise((resolve, reject) => {
  let out = "";
  server.stdout.on("data", (d) => {
    out += d;
    const m = /listening on (http:\/\/[^\s]+)/.exec(out);
    if (m) resolve(new URL(m[1]));
  });
  server.on("exit", (code) => reject(new Error(`mtl serve exited with ${code}`)));
});
const rss = () => (serverPid ? Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${serverPid}/status`, "utf8"))[1]) / 1024 : NaN);

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
function post(body) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = http.request({ host: url.hostname, port: url.port, path: "/v1/score", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        let ok = res.statusCode === 200;
        if (ok) ok = JSON.parse(Buffer.concat(chunks).toString()).scores.length === candidates;
        resolve({ ok, ms, status: res.statusCode });
      });
    });
    req.on("error", (e) => resolve({ ok: false, ms: 0, status: e.code }));
    req.end(body);
  });
}

async function phase(n) {
  let next = 0, errors = 0, bad = 0, badMishandled = 0;
  const latencies = new Float64Array(n);
  const statuses = new Map();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      if (isBad(i)) {
        bad++;
        const r = await post(badBodies[i % badBodies.length]);
        latencies[i] = r.ms;
        if (r.status !== 400) {
          badMishandled++;
          statuses.set(`bad:${r.status}`, (statuses.get(`bad:${r.status}`) ?? 0) + 1);
        }
        continue;
      }
      const r = await post(bodies[i % bodies.length]);
      latencies[i] = r.ms;
      if (!r.ok) {
        errors++;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  latencies.sort();
  const q = (p) => latencies[Math.min(n - 1, Math.floor(p * n))];
  return { n, errors, bad, badMishandled, statuses, secs, rps: n / secs, p50: q(0.5), p99: q(0.99), max: latencies[n - 1] };
}

await phase(Math.min(1000, total)); // warm-up (not counted)
// --rounds N repeats the measured phase on the same server: RSS after each round shows whether memory stays flat.
// CPU time of the server's threads (the main thread, the session worker, the rest: V8's GC helpers
// and libuv) and of this client over a phase: what a request costs the machine, whatever the load.
const CLK_TCK = 100;
function serverCpuMs() {
  const out = { main: 0, worker: 0, other: 0 };
  if (!serverPid) return null;
  try {
    const tasks = readdirSync(`/proc/${serverPid}/task`).map((t) => {
      const stat = readFileSync(`/proc/${serverPid}/task/${t}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return { tid: Number(t), ms: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK };
    });
    for (const t of tasks) {
      if (t.tid === serverPid) out.main += t.ms;
      else out.other += t.ms;
    }
    // The session workers are the busiest threads after the main one (one per --sessions).
    for (const t of tasks.filter((t) => t.tid !== serverPid).sort((a, b) => b.ms - a.ms).slice(0, Number(args.sessions))) {
      out.worker += t.ms;
      out.other -= t.ms;
    }
    return out;
  } catch {
    return null; // not Linux, or the server is gone
  }
}

for (let round = 1; round <= Number(args.rounds); round++) {
  const rssBefore = rss();
  const cpuBefore = serverCpuMs();
  const clientBefore = process.cpuUsage();
  const r = await phase(total);
  const client = process.cpuUsage(clientBefore);
  const cpuAfter = serverCpuMs();
  const rssAfter = rss();
  const perRequest = (ms) => (1000 * ms) / r.n; // µs
  const cpu = cpuBefore && cpuAfter ? {
    server_main_us: perRequest(cpuAfter.main - cpuBefore.main), server_worker_us: perRequest(cpuAfter.worker - cpuBefore.worker),
    server_other_us: perRequest(cpuAfter.other - cpuBefore.other), client_us: perRequest((client.user + client.system) / 1000),
  } : null;
  console.log(`mtl serve load${Number(args.rounds) > 1 ? ` (round ${round})` : ""}: ${r.n} requests of 1 context x ${candidates} candidates, concurrency ${concurrency}, server onnxruntime threads ${args.threads}, sessions ${args.sessions}`);
  console.log(`  errors ${r.errors} among ${r.n - r.bad} good requests${r.errors || r.badMishandled ? " " + JSON.stringify([...r.statuses]) : ""}`);
  if (r.bad) console.log(`  ${r.bad} requests with an out-of-range id: ${r.bad - r.badMishandled} answered 400, ${r.badMishandled} otherwise`);
  console.log(`  ${r.rps.toFixed(0)} requests/s (${(r.rps * candidates).toFixed(0)} candidates/s) in ${r.secs.toFixed(2)} s`);
  console.log(`  latency p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.max.toFixed(2)} ms`);
  console.log(`  server RSS ${rssBefore.toFixed(0)} MiB before, ${rssAfter.toFixed(0)} MiB after`);
  if (cpu) console.log(`  CPU per request: server main thread ${cpu.server_main_us.toFixed(0)} µs, session worker${Number(args.sessions) > 1 ? "s" : ""} ${cpu.server_worker_us.toFixed(0)} µs, other server threads ${cpu.server_other_us.toFixed(0)} µs, this client ${cpu.client_us.toFixed(0)} µs (10 ms ticks)`);
  if (args.json) {
    console.log(JSON.stringify({ what: "serve", round, requests: r.n, concurrency, candidates, threads: Number(args.threads), sessions: Number(args.sessions), errors: r.errors, rps: r.rps, p50_ms: r.p50, p99_ms: r.p99, max_ms: r.max, rss_before_mib: rssBefore, rss_after_mib: rssAfter, cpu }));
  }
}
agent.destroy();
if (server) {
  server.kill("SIGTERM");
  await new Promise((resolve) => server.on("exit", resolve));
}
rmSync(tmp, { recursive: true, force: true });
