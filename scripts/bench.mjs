// `npm run bench`: mtl beside PyTorch in one run. Every mtl row runs the same work as its PyTorch
// row (scripts/bench_torch.py, identical shapes and batches), alternating mtl / PyTorch within each
// round so that load on the machine hits both alike; each cell is the median over the rounds.
// Prints one Markdown table (and writes it with all raw measurements as JSON).
//
//   npm run bench                       # everything (~15 min on 2 quiet cores)
//   npm run bench -- --quick            # fewer steps, rows and rounds (~6 min): checks the bench runs
//   node scripts/bench.mjs --only train,e2e,score,serve,data,scaling,roofline --rounds 2 --e2e-rounds 1 --scaling-rounds 1 --out tmp/bench
//
// PyTorch references, each skipped with a message saying how to install it when missing:
//   2.x  a virtual environment .bench-venv/ (made here when missing: python3 -m venv, then pip
//        install torch==2.13.0+cpu numpy from the configured index), or --torch2 /path/to/python;
//   1.13 Debian's python3-torch under /usr/bin/python3 (apt-get install python3-torch
//        libopenblas0-pthread: without OpenBLAS, Debian's torch uses the reference BLAS, ~3 GFLOP/s).
// Both run with 2 threads (the machine's 2 cores; OMP_WAIT_POLICY=PASSIVE unless --omp-active);
// mtl runs onnxruntime on 1 thread in its worker and the row work on the main thread: 2 cores each.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    rounds: { type: "string" },
    "e2e-rounds": { type: "string" },
    "scaling-rounds": { type: "string" },
    out: { type: "string", default: join(root, "tmp", "bench") },
    torch2: { type: "string" },
    torch1: { type: "string", default: "/usr/bin/python3" },
    "no-install": { type: "boolean", default: false },
    // Another built mtl checkout (e.g. the main branch, with this bench-train.mjs copied into its
    // scripts/): its training step runs as one more engine of the train rows, for A/B of a change.
    baseline: { type: "string" },
    // PyTorch's OpenMP threads spin while waiting by default: on a loaded machine its 2-thread step
    // then runs ~7x slower than on 1 thread (measured). Passive waiting is its best setting there.
    "omp-active": { type: "boolean", default: false },
    // Per job, stop the measured steps after this many seconds (the rate is per step done).
    "max-seconds": { type: "string", default: "6" },
  },
});
const quick = args.quick;
const rounds = Number(args.rounds ?? (quick ? 1 : 2));
const e2eRounds = Number(args["e2e-rounds"] ?? 1);
const scalingRounds = Number(args["scaling-rounds"] ?? 1);
const sections = new Set((args.only ?? "roofline,train,e2e,score,serve,data,scaling").split(","));
const bin = join(root, "bin", "mtl.js");
const work = mkdtempSync(join(tmpdir(), "mtl-bench-"));
const log = (s) => process.stderr.write(`${s}\n`);
const TORCH_ENV = args["omp-active"] ? {} : { OMP_WAIT_POLICY: "PASSIVE" };
const results = { machine: machine(), started: new Date().toISOString(), quick, rounds, e2eRounds, scalingRounds, torch_env: TORCH_ENV, rows: [] };

function machine() {
  const c = cpus();
  return { cpu: c[0]?.model ?? "?", cores: c.length, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version, load_at_start: loadavg().map((x) => x.toFixed(2)).join(" ") };
}

// ---- processes ---------------------------------------------------------------------------------

/** Runs a command; resolves with its stdout, wall seconds and peak RSS (MiB, from /usr/bin/time when present). */
function runTimed(cmd, argv, { env } = {}) {
  const timed = existsSync("/usr/bin/time");
  const [file, list] = timed ? ["/usr/bin/time", ["-f", "__RSS_KB__ %M", cmd, ...argv]] : [cmd, argv];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(file, list, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const wall = (performance.now() - t0) / 1000;
      const m = /__RSS_KB__ (\d+)/.exec(err);
      if (code !== 0) reject(new Error(`${cmd} ${argv.join(" ")} exited with ${code}:\n${err.slice(-1500)}`));
      else resolve({ out, err, wall, rssMib: m ? Number(m[1]) / 1024 : NaN });
    });
  });
}

/** The last line of stdout that parses as a JSON object. */
function lastJson(out) {
  const lines = out.trim().split("\n").reverse();
  for (const l of lines) {
    if (!l.startsWith("{")) continue;
    try {
      return JSON.parse(l);
    } catch {}
  }
  throw new Error(`no JSON in output:\n${out.slice(-500)}`);
}
const allJson = (out) => out.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));

// ---- PyTorch references ----------------------------------------------------------------------------

function torchVersion(python) {
  try {
    return execFileSync(python, ["-c", "import torch, numpy; print(torch.__version__)"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

function findTorch2() {
  if (args.torch2) {
    const v = torchVersion(args.torch2);
    if (v) return { python: args.torch2, version: v };
    log(`PyTorch 2.x: ${args.torch2} cannot import torch and numpy; skipped`);
    return null;
  }
  const venv = join(root, ".bench-venv");
  const python = join(venv, "bin", "python");
  let v = existsSync(python) ? torchVersion(python) : null;
  if (!v && !args["no-install"]) {
    log("PyTorch 2.x: installing torch==2.13.0+cpu and numpy into .bench-venv/ (once) ...");
    try {
      if (!existsSync(python)) execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
      // --retries 0: where the default index is unreachable, go straight to the configured local ones.
      execFileSync(python, ["-m", "pip", "install", "-q", "--retries", "0", "torch==2.13.0+cpu", "numpy"], { stdio: "inherit" });
      v = torchVersion(python);
    } catch (err) {
      log(`  install failed: ${err.message.split("\n")[0]}`);
    }
  }
  if (v) return { python, version: v };
  log("PyTorch 2.x: not available; skipped. Install: python3 -m venv .bench-venv && .bench-venv/bin/pip install torch==2.13.0+cpu numpy (or pass --torch2 /path/to/python)");
  return null;
}

function findTorch1() {
  const v = existsSync(args.torch1) ? torchVersion(args.torch1) : null;
  if (v) return { python: args.torch1, version: v };
  log(`PyTorch 1.13 (Debian): ${args.torch1} cannot import torch; skipped. Install: apt-get install python3-torch libopenblas0-pthread`);
  return null;
}

const torch2 = findTorch2();
const torch1 = findTorch1();
results.torch = { "2": torch2?.version ?? null, "1": torch1?.version ?? null };

const limit = ["--max-seconds", args["max-seconds"]];
const torchRun = async (ref, argv) => {
  // End to end runs through the whole shard, as `mtl train` does: no time limit there.
  const r = await runTimed(ref.python, [join(root, "scripts", "bench_torch.py"), ...argv, ...(argv[0] === "shard" ? [] : limit)], { env: TORCH_ENV });
  return { ...lastJson(r.out), wall: r.wall, rss_mib: r.rssMib };
};
// glibc >= 2.35 backs its large allocations (the table and its slots) with transparent huge pages
// when asked to (THP "madvise" mode, Debian's default): fewer TLB misses on random rows.
const HUGE_PAGES = { GLIBC_TUNABLES: "glibc.malloc.hugetlb=1" };
const mtlTrain = async (argv, env, checkout = root) => {
  const r = await runTimed(process.execPath, [join(checkout, "scripts", "bench-train.mjs"), "--json", ...argv, ...limit], { env });
  return { ...lastJson(r.out), wall: r.wall, rss_mib: r.rssMib };
};

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs each engine's job once per round, alternating engines within the round; returns per engine
 * the runs and the median of `key`. A failing job is recorded and skipped, not fatal.
 */
async function alternate(label, engines, key = "examples_per_s", times = rounds) {
  const runs = Object.fromEntries(Object.keys(engines).map((k) => [k, []]));
  for (let r = 0; r < times; r++) {
    for (const [name, job] of Object.entries(engines)) {
      if (!job) continue;
      try {
        const res = await job();
        runs[name].push(res);
        log(`  ${label} [${name}] round ${r + 1}: ${fmt(res[key])}`);
      } catch (err) {
        log(`  ${label} [${name}] failed: ${err.message.split("\n").slice(0, 3).join(" | ")}`);
      }
    }
  }
  const med = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.length ? median(v.map((x) => x[key])) : null]));
  return { runs, med };
}

const fmt = (x, digits = 0) => (typeof x === "string" ? x : x === null || x === undefined || !Number.isFinite(x) ? "—" : x >= 1000 && digits === 0 ? Math.round(x).toLocaleString("en-US") : x.toFixed(digits));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "—");

function addRow(section, row) {
  results.rows.push({ section, ...row });
}

// ---- sections ----------------------------------------------------------------------------------

const steps = { mtl: quick ? 30 : 100, torch: quick ? 15 : 40, dense: quick ? 6 : 10 };

/** Training step rate: the reference ESMM and ESCM2-DR, uniform and Zipf(1.05) ids. */
async function trainSection() {
  for (const model of ["esmm", "escm2-dr"]) {
    for (const ids of ["uniform", "zipf"]) {
      const label = `${model} ${ids}`;
      log(`train: ${label}`);
      const common = ["--model", model, "--ids", ids];
      const { runs, med } = await alternate(label, {
        mtl: () => mtlTrain([...common, "--steps", String(steps.mtl)]),
        mtlHuge: () => mtlTrain([...common, "--steps", String(steps.mtl)], HUGE_PAGES),
        mtlBaseline: args.baseline && model === "esmm" && (() => mtlTrain([...common, "--steps", String(steps.mtl)], undefined, args.baseline)),
        // The rows' update inside the step graph (as `mtl export` writes it) on 1 onnxruntime thread: the
        // step before the host update and the lookups' gradient sums let it run on 2.
        mtlGraph: model === "esmm" && ids === "uniform" && (() => mtlTrain([...common, "--steps", String(steps.mtl), "--row-update", "graph"])),
        torch2: torch2 && (() => torchRun(torch2, ["train", ...common, "--steps", String(steps.torch)])),
        // The dense table is the slow recipe (Adam over all 737,946 rows each step): the ESMM uniform row only.
        torch2dense: torch2 && ids === "uniform" && model === "esmm" && (() => torchRun(torch2, ["train", ...common, "--table", "dense", "--steps", String(steps.dense), "--warmup", "2"])),
        torch1: torch1 && (() => torchRun(torch1, ["train", ...common, "--steps", String(steps.torch)])),
      });
      const rss = (k) => median(runs[k].map((x) => x.rss_mib ?? x.peak_rss_mib));
      addRow("train", {
        name: `train step, ${model === "esmm" ? "ESMM" : "ESCM2-DR"}, ${ids} ids`, unit: "examples/s",
        mtl: med.mtl, mtlHuge: med.mtlHuge, mtlBaseline: med.mtlBaseline, mtlGraph: med.mtlGraph, torch2: med.torch2, torch2dense: med.torch2dense, torch1: med.torch1,
        mtl_rss_mib: rss("mtl"), torch2_rss_mib: rss("torch2"), torch1_rss_mib: rss("torch1"),
        distinct_rows: runs.mtl[0]?.distinct_rows, fed_mib: runs.mtl[0]?.fed_mib, fetched_mib: runs.mtl[0]?.fetched_mib, runs,
      });
    }
  }
}

let trainShard = null;
async function ensureTrainShard() {
  if (trainShard) return trainShard;
  const { writeRandomShard } = await import(join(root, "scripts", "bench-lib.mjs"));
  trainShard = join(work, "train.shard");
  const groups = quick ? 4 : 16; // 65,536 or 262,144 rows: long enough that process start-up is a small part of end to end
  log(`writing a ${groups * 16384}-row shard of random ids ...`);
  await writeRandomShard(trainShard, { groups });
  return trainShard;
}

/** End to end: `mtl train` from a shard (process start, data loading, checkpoint included) vs PyTorch reading the same shard. */
async function e2eSection() {
  const shard = await ensureTrainShard();
  const rows = (quick ? 4 : 16) * 16384;
  const escm2Config = join(work, "escm2-dr.yaml");
  writeFileSync(escm2Config, "model: escm2\nmodelConfig: { counterfactualMode: DR, backbone: towers, towerSizes: [256, 64] }\n");
  for (const model of ["esmm", "escm2-dr"]) {
    log(`e2e: ${model}`);
    let n = 0;
    const mtlJob = (env) => async () => {
      const out = join(work, `run-${model}-${n++}`);
      const argv = [bin, "train", "--train", shard, "--out", out, "--valid-fraction", "0", "--checkpoint-every", "1000000", "--log-every", "1000000", "--epochs", "1"];
      if (model === "esmm") argv.push("--model", "esmm");
      else argv.push("--config", escm2Config);
      const r = await runTimed(process.execPath, argv, { env });
      rmSync(out, { recursive: true, force: true });
      return { examples_per_s: rows / r.wall, wall: r.wall, rss_mib: r.rssMib };
    };
    const torchJob = (ref) => async () => {
      const r = await torchRun(ref, ["shard", "--shard", shard, "--model", model]);
      return { ...r, examples_per_s: r.rows / r.wall, loop_examples_per_s: r.examples_per_s };
    };
    const { runs, med } = await alternate(`e2e ${model}`, { mtl: mtlJob(), mtlHuge: mtlJob(HUGE_PAGES), torch2: torch2 && torchJob(torch2), torch1: torch1 && torchJob(torch1) }, "examples_per_s", e2eRounds);
    const rss = (k) => median(runs[k].map((x) => x.rss_mib));
    addRow("e2e", {
      name: `train end to end from a shard, ${model === "esmm" ? "ESMM" : "ESCM2-DR"} (${rows.toLocaleString("en-US")} rows, process wall time)`, unit: "examples/s",
      mtl: med.mtl, mtlHuge: med.mtlHuge, torch2: med.torch2, torch1: med.torch1, mtl_rss_mib: rss("mtl"), torch2_rss_mib: rss("torch2"), torch1_rss_mib: rss("torch1"), runs,
    });
  }
}

let model = null;
async function ensureModel() {
  if (model) return model;
  model = join(work, "esmm.onnx");
  await runTimed(process.execPath, [bin, "export", "--model", "esmm", "-o", model]);
  return model;
}

/** Scoring at batch 1024: `mtl run` from shards and from text (rows/s as it reports them) vs PyTorch's eval forward. */
async function scoreSection() {
  const onnx = await ensureModel();
  const plain = await ensurePlainModel();
  const shard = await ensureTrainShard();
  const { writeAliccpText, writeRandomShard } = await import(join(root, "scripts", "bench-lib.mjs"));
  // The same rows' shape, but runs of 32 consecutive impressions share one user (the schema's context
  // features), as a log grouped by user or session does: the split graph then embeds and multiplies
  // each user's share once per run. PyTorch's forward computes every row in full either way.
  const grouped = join(work, "grouped.shard");
  await writeRandomShard(grouped, { groups: quick ? 4 : 16, userRun: USER_RUN });
  const text = join(work, "score.txt");
  const textRows = quick ? 10_000 : 50_000;
  await writeAliccpText(text, textRows, { distinct: textRows });
  const runScore = (input, { threads = 1, sessions, model = onnx } = {}) => async () => {
    const out = join(work, "pred.csv");
    const r = await runTimed(process.execPath, [bin, "run", model, "--input", input, "-o", out, "--batch-size", "1024", "--threads", String(threads), ...(sessions ? ["--sessions", String(sessions)] : [])]);
    rmSync(out, { force: true });
    const m = /: ([\d,]+) rows\/s/.exec(r.out);
    return { examples_per_s: m ? Number(m[1].replaceAll(",", "")) : NaN, wall: r.wall, rss_mib: r.rssMib };
  };
  const fwd = (ref) => async () => torchRun(ref, ["forward", "--batch", "1024", "--steps", quick ? "30" : "150"]);
  log("score: batch 1024");
  const { runs, med } = await alternate("score", {
    shard: runScore(shard), shard1: runScore(shard, { sessions: 1 }), shardThreads2: runScore(shard, { threads: 2, sessions: 1 }), shardPlain: runScore(shard, { model: plain }),
    grouped: runScore(grouped), groupedPlain: runScore(grouped, { model: plain }), text: runScore(text), torch2: torch2 && fwd(torch2), torch1: torch1 && fwd(torch1),
  });
  const row = (key, name) => addRow("score", { name, unit: "examples/s", mtl: med[key], torch2: med.torch2, torch1: med.torch1, mtl_rss_mib: median(runs[key].map((x) => x.rss_mib)), runs: { [key]: runs[key], ...(key === "shard" ? { torch2: runs.torch2, torch1: runs.torch1 } : {}) } });
  row("shard", "score, batch 1024: `mtl run` from a shard (its default: 2 sessions of 1 onnxruntime thread) vs PyTorch forward (2 threads)");
  row("shard1", "… `mtl run --sessions 1` (one session, one thread)");
  row("shardThreads2", "… `mtl run --sessions 1 --threads 2`");
  row("shardPlain", "… the same model exported with --no-context-split (every row is its own context here: the split's cost)");
  row("grouped", `… from a shard whose runs of ${USER_RUN} impressions share a user (a log grouped by user)`);
  row("groupedPlain", "… that shard, the model exported with --no-context-split");
  row("text", "score, batch 1024: `mtl run` from Ali-CCP text (879-token lines) vs PyTorch forward");
}

/** Impressions per user in the grouped scoring shard. */
const USER_RUN = 32;

let plainModel = null;
/** The same model exported without the context split (every feature per row), for the split's rows. */
async function ensurePlainModel() {
  if (plainModel) return plainModel;
  plainModel = join(work, "esmm-plain.onnx");
  await runTimed(process.execPath, [bin, "export", "--model", "esmm", "--no-context-split", "-o", plainModel]);
  return plainModel;
}

/**
 * Serving 1 context x 100 candidates through `mtl serve` (scripts/load-serve.mjs) vs PyTorch forward
 * of 100 rows; the exported model (its 13 user fields taken once per request) beside the same model
 * exported with --no-context-split, alternating; and the CPU a request costs each thread.
 */
async function serveSection() {
  const onnx = await ensureModel();
  const plain = await ensurePlainModel();
  const load = (concurrency, requests, file = onnx, sessions = 1) => async () => {
    const r = await runTimed(process.execPath, [join(root, "scripts", "load-serve.mjs"), "--json", "--model", file, "--concurrency", String(concurrency), "--requests", String(requests), "--sessions", String(sessions)]);
    return lastJson(r.out);
  };
  const fwd100 = (ref) => async () => torchRun(ref, ["forward", "--batch", "100", "--steps", quick ? "200" : "1000", "--warmup", "20"]);
  log("serve: 1 context x 100 candidates");
  const single = await alternate("serve c=1", { mtl: load(1, quick ? 500 : 2000), torch2: torch2 && fwd100(torch2), torch1: torch1 && fwd100(torch1) }, "p99_ms");
  const p50 = (k) => median(single.runs[k].map((x) => x.p50_ms));
  const p99 = (k) => median(single.runs[k].map((x) => x.p99_ms));
  addRow("serve", { name: "1 request of 1 context × 100 candidates, latency p50 (mtl: HTTP round trip; PyTorch: forward only)", unit: "ms", lowerIsBetter: true, mtl: p50("mtl"), torch2: p50("torch2"), torch1: p50("torch1") });
  addRow("serve", { name: "… latency p99", unit: "ms", lowerIsBetter: true, mtl: p99("mtl"), torch2: p99("torch2"), torch1: p99("torch1"), runs: single.runs });
  for (const c of [4, 64]) {
    const n = quick ? 2000 : c === 4 ? 5000 : 10000;
    // The exported model on one session and on two (--sessions 2), and the plain export, alternating.
    const { runs } = await alternate(`serve c=${c}`, { mtl: load(c, n), plain: load(c, n, plain), mtlSessions2: load(c, n, onnx, 2) }, "rps");
    const m = (key, k = "mtl") => median(runs[k].map((x) => x[key]));
    addRow("serve", { name: `mtl serve at concurrency ${c}: requests/s`, unit: "requests/s", mtl: m("rps"), errors: runs.mtl.reduce((t, x) => t + x.errors, 0), runs });
    addRow("serve", { name: `mtl serve at concurrency ${c}: p99 latency`, unit: "ms", lowerIsBetter: true, mtl: m("p99_ms") });
    addRow("serve", { name: `… the same model exported with --no-context-split: requests/s / p99 ms`, unit: "requests/s / ms", mtl: `${Math.round(m("rps", "plain")).toLocaleString("en-US")} / ${m("p99_ms", "plain").toFixed(1)}` });
    addRow("serve", { name: `… \`mtl serve --sessions 2\`: requests/s / p99 ms`, unit: "requests/s / ms", mtl: `${Math.round(m("rps", "mtlSessions2")).toLocaleString("en-US")} / ${m("p99_ms", "mtlSessions2").toFixed(1)}`, errors: runs.mtlSessions2.reduce((t, x) => t + x.errors, 0) });
    const cpu = (key) => median(runs.mtl.map((x) => x.cpu?.[key] ?? NaN));
    if (c === 64) {
      addRow("serve", {
        name: "CPU per request at concurrency 64: server main thread / session worker / other server threads (GC, libuv) / load client", unit: "µs",
        mtl: ["server_main_us", "server_worker_us", "server_other_us", "client_us"].map((k) => Math.round(cpu(k))).join(" / "),
        cpu_total_us: ["server_main_us", "server_worker_us", "server_other_us", "client_us"].reduce((t, k) => t + cpu(k), 0),
      });
    }
  }
}

async function dataSection() {
  log("data: text parsing and shard reading");
  const r = await runTimed(process.execPath, [join(root, "scripts", "bench-data.mjs"), "--skip-big", "--json"]);
  const d = lastJson(r.out);
  addRow("data", { name: "Ali-CCP text, read + parse + encode (879-token lines, one core)", unit: "lines/s", mtl: d.text_lines_per_s });
  addRow("data", { name: "shard, row groups", unit: "rows/s", mtl: d.shard_rows_per_s });
  addRow("data", { name: "shard through the shuffling batcher (batch 1024)", unit: "rows/s", mtl: d.batcher_rows_per_s });
}

/** Throughput vs batch size, step time vs vocabulary rows, peak RSS streaming 1M / 10M rows. */
async function scalingSection() {
  for (const batch of quick ? [256, 1024, 8192] : [256, 1024, 4096, 8192]) {
    log(`scaling: batch ${batch}`);
    const s = (n) => String(Math.max(quick ? 4 : 8, Math.round((n * 1024) / batch)));
    const { med } = await alternate(`batch ${batch}`, {
      mtl: () => mtlTrain(["--batch", String(batch), "--steps", s(steps.mtl), "--warmup", "3"]),
      torch2: torch2 && (() => torchRun(torch2, ["train", "--batch", String(batch), "--steps", s(steps.torch), "--warmup", "2"])),
    }, "examples_per_s", scalingRounds);
    addRow("scaling-batch", { name: `batch ${batch}, ESMM, uniform ids`, unit: "examples/s", mtl: med.mtl, torch2: med.torch2 });
  }
  for (const vocab of quick ? [10_000, 1_000_000, 10_000_000] : [10_000, 100_000, 1_000_000, 10_000_000]) {
    log(`scaling: vocabulary ${vocab}`);
    const { runs, med } = await alternate(`vocab ${vocab}`, {
      mtl: () => mtlTrain(["--vocab", String(vocab), "--steps", String(steps.mtl), "--warmup", "5"]),
      torch2: torch2 && (() => torchRun(torch2, ["train", "--vocab", String(vocab), "--steps", String(steps.torch)])),
    }, "ms_per_step", scalingRounds);
    const distinct = runs.mtl[0]?.distinct_rows;
    addRow("scaling-vocab", {
      name: `vocabulary ${vocab.toLocaleString("en-US")} rows, ESMM, uniform ids (${fmt(distinct)} distinct rows a batch)`, unit: "ms/step", lowerIsBetter: true,
      mtl: med.mtl, torch2: med.torch2, distinct_rows: distinct, mtl_rss_mib: median(runs.mtl.map((x) => x.rss_mib)), torch2_rss_mib: median(runs.torch2.map((x) => x.rss_mib)),
    });
  }
  const { writeRandomShard } = await import(join(root, "scripts", "bench-lib.mjs"));
  for (const rows of quick ? [262_144, 1_048_576] : [1_048_576, 10_485_760]) {
    log(`scaling: streaming ${rows} rows`);
    const file = join(work, "stream.shard");
    await writeRandomShard(file, { groups: rows / 16384, repeat: true });
    const r = await runTimed(process.execPath, ["--input-type=module", "-e", `
      const { ShardReader } = await import(${JSON.stringify(join(root, "dist", "src", "data", "shard.js"))});
      const { shardBatches } = await import(${JSON.stringify(join(root, "dist", "src", "data", "batcher.js"))});
      const s = await ShardReader.open(${JSON.stringify(file)});
      let n = 0; const t0 = performance.now();
      for await (const b of shardBatches(s, { batchSize: 1024, seed: 1 })) n += b.size;
      await s.close();
      console.log(JSON.stringify({ rows: n, rows_per_s: n / ((performance.now() - t0) / 1000) }));`]);
    const res = lastJson(r.out);
    addRow("scaling-stream", { name: `peak RSS streaming ${rows.toLocaleString("en-US")} rows through the shuffling batcher (${(statSync(file).size / 1e9).toFixed(2)} GB shard)`, unit: "MiB", lowerIsBetter: true, mtl: r.rssMib, rows_per_s: res.rows_per_s });
    rmSync(file, { force: true });
  }
}

/** The roofs: GEMM rate (onnxruntime, PyTorch), memory bandwidth, random-row rate. */
async function rooflineSection() {
  log("roofline: sgemm, memory");
  const r = await runTimed(process.execPath, [join(root, "scripts", "bench-roofline.mjs"), "--json", ...(quick ? ["--quick"] : [])]);
  results.roofline = JSON.parse(r.out.trim().split("\n").pop());
  const huge = await runTimed(process.execPath, [join(root, "scripts", "bench-roofline.mjs"), "--json", "--memory-only", ...(quick ? ["--quick"] : [])], { env: HUGE_PAGES });
  for (const row of JSON.parse(huge.out.trim().split("\n").pop())) results.roofline.push({ ...row, huge_pages: true });
  for (const ref of [torch2, torch1].filter(Boolean)) {
    const t = await runTimed(ref.python, [join(root, "scripts", "bench_torch.py"), "sgemm"], { env: TORCH_ENV });
    for (const row of allJson(t.out)) results.roofline.push({ ...row, engine: `torch ${row.torch} (${row.blas})` });
  }
}

// FLOPs per example of the GEMMs (multiply-adds x 2): forward, and a training step = 3x forward
// (forward, input gradient, weight gradient; the first layer's input gradient feeds the embeddings).
function gemmFlops(towers, widths = [276, 256, 64, 1]) {
  let f = 0;
  for (let i = 0; i + 1 < widths.length; i++) f += 2 * widths[i] * widths[i + 1];
  return { forward: towers * f, train: 3 * towers * f };
}

/**
 * The GEMM floor of a step: its towers' GEMMs at the fastest rate measured on these 2 cores (one
 * tower's 9 training GEMMs, or 3 forward ones, run together by onnxruntime on 1 or 2 threads and by
 * each PyTorch on 2; a loaded machine can make 2 threads slower than 1), as ms per step of 1024, with
 * the engine that set it.
 */
function gemmFloor(kind, towers) {
  const rows = (results.roofline ?? []).filter((x) => x.what === "tower gemms" && x.kind === kind && x.batch === 1024);
  if (!rows.length) return null;
  const best = rows.reduce((a, b) => (b.ms < a.ms ? b : a));
  return { ms: towers * best.ms, engine: `${best.engine}, ${best.threads} thread${best.threads === 1 ? "" : "s"}`, flops: towers * best.flops };
}

function rooflineText() {
  const roof = results.roofline ?? [];
  const find = (pred) => roof.find(pred);
  const tower = (engine, kind, threads) => find((x) => x.what === "tower gemms" && x.engine === engine && x.kind === kind && x.threads === threads);
  const ortSquare = find((x) => x.what === "sgemm" && x.engine === "onnxruntime" && x.pass === "square");
  const seq = find((x) => x.kind === "sequential copy");
  const gather = find((x) => x.kind === "random row gather" && !x.huge_pages);
  const scatter = find((x) => x.kind === "random row scatter" && !x.huge_pages);
  const hugeGather = find((x) => x.kind === "random row gather" && x.huge_pages);
  const hugeScatter = find((x) => x.kind === "random row scatter" && x.huge_pages);
  const lines = ["", "### Roofline", ""];
  // The GEMM floor: the fastest any engine measured here runs a step's GEMMs on the 2 cores.
  lines.push("GEMM floor per step of 1024: the step's GEMMs alone at the fastest rate measured on the 2 cores (every other op of a step and all the row traffic come on top), the examples/s that floor allows, and that ceiling over PyTorch's measured rate (the largest ratio any engine doing these GEMMs on these cores could reach):", "");
  lines.push("| | GEMM FLOPs/step | GEMM floor ms/step (engine) | ceiling examples/s | mtl measured | PyTorch 2 measured | ceiling / PyTorch 2 | ceiling / PyTorch 1.13 |", "|---|---|---|---|---|---|---|---|");
  for (const row of results.rows.filter((r) => r.section === "train")) {
    const towers = row.name.includes("ESCM2") ? 3 : 2;
    const floor = gemmFloor("train", towers);
    if (!floor) continue;
    const ceiling = 1024 / (floor.ms / 1000);
    lines.push(`| ${row.name} | ${fmt(floor.flops / 1e9, 2)} G | ${fmt(floor.ms, 2)} (${floor.engine}) | ${fmt(ceiling)} | ${fmt(row.mtl)} | ${fmt(row.torch2)} | ${ratio(ceiling, row.torch2)} | ${ratio(ceiling, row.torch1)} |`);
  }
  const score = results.rows.find((r) => r.section === "score");
  const fwdFloor = gemmFloor("forward", 2);
  if (fwdFloor) {
    const ceiling = 1024 / (fwdFloor.ms / 1000);
    lines.push(`| scoring forward, ESMM, batch 1024 | ${fmt(fwdFloor.flops / 1e9, 2)} G | ${fmt(fwdFloor.ms, 2)} (${fwdFloor.engine}) | ${fmt(ceiling)} | ${fmt(score?.mtl)} | ${fmt(score?.torch2)} | ${ratio(ceiling, score?.torch2)} | ${ratio(ceiling, score?.torch1)} |`);
  }
  lines.push("");
  // The GEMM rate each engine reaches inside its whole step (GEMM FLOPs over the measured step rate).
  if (results.rows.some((r) => r.section === "train" || r.section === "score")) lines.push("GEMM FLOP/s reached inside the whole step or forward:", "", "| | FLOPs/example (GEMMs) | mtl GFLOP/s | PyTorch 2 GFLOP/s |", "|---|---|---|---|");
  for (const row of results.rows.filter((r) => r.section === "train")) {
    const f = gemmFlops(row.name.includes("ESCM2") ? 3 : 2).train;
    lines.push(`| ${row.name} | ${(f / 1e6).toFixed(2)} M | ${fmt((row.mtl * f) / 1e9, 1)} | ${fmt((row.torch2 * f) / 1e9, 1)} |`);
  }
  // Scoring: the forward of ESMM's two towers (276 -> 256 -> 64 -> 1), 0.35 MFLOP an example.
  for (const row of results.rows.filter((r) => r.section === "score" && r.name.includes("shard"))) {
    const f = gemmFlops(2).forward;
    lines.push(`| ${row.name} | ${(f / 1e6).toFixed(2)} M | ${fmt((row.mtl * f) / 1e9, 1)} | ${fmt((row.torch2 * f) / 1e9, 1)} |`);
  }
  lines.push("");
  const shapes = roof.filter((x) => x.what === "sgemm" && x.engine === "onnxruntime" && x.threads === 1 && x.pass !== "square");
  if (shapes.length) {
    const torchEngines = [...new Set(roof.filter((x) => x.what === "sgemm" && String(x.engine).startsWith("torch")).map((x) => x.engine))];
    lines.push(`GEMM rates at the model's shapes, GFLOP/s (batch 1024; forward X·W+b, dX = dY·Wᵀ, dW = Xᵀ·dY; PyTorch on 2 threads):`, "");
    lines.push(`| GEMM | m×k×n | onnxruntime 1 thread | onnxruntime 2 threads | ${torchEngines.join(" | ")} |`, `|---|---|---|---|${torchEngines.map(() => "---").join("|")}|`);
    const at = (engine, s, threads) => find((x) => x.what === "sgemm" && x.engine === engine && x.pass === s.pass && x.layer === s.layer && (threads === undefined || x.threads === threads));
    for (const s of shapes) lines.push(`| ${s.pass}, layer ${s.layer} | ${s.m}×${s.k}×${s.n} | ${fmt(s.gflops, 1)} | ${fmt(at("onnxruntime", s, 2)?.gflops, 1)} | ${torchEngines.map((e) => fmt(at(e, s)?.gflops, 1)).join(" | ")} |`);
    const towerCell = (kind) => `| one tower's ${kind === "train" ? "9 training" : "3 forward"} GEMMs together, ms | | ${fmt(tower("onnxruntime", kind, 1)?.ms, 2)} | ${fmt(tower("onnxruntime", kind, 2)?.ms, 2)} | ${torchEngines.map((e) => fmt(tower(e, kind, 2)?.ms, 2)).join(" | ")} |`;
    lines.push(towerCell("train"), towerCell("forward"));
    const sq = torchEngines.map((e) => `${e} ${fmt(find((x) => x.engine === e && x.pass === "square")?.gflops, 0)}`).join(", ");
    lines.push("", `- square 2048³ on 2 threads: onnxruntime ${fmt(ortSquare?.gflops, 0)} GFLOP/s${sq ? `, ${sq}` : ""}.`);
  }
  if (seq) lines.push(`- memory: sequential copy ${fmt(seq.gbps, 1)} GB/s (read + write); random 144-byte rows (weights + 2 Adam slots) from the 106 MB table: gather ${fmt(gather?.ns_per_row, 0)} ns/row, scatter ${fmt(scatter?.ns_per_row, 0)} ns/row (${fmt(gather?.gbps, 2)} / ${fmt(scatter?.gbps, 2)} GB/s); with huge pages ${fmt(hugeGather?.ns_per_row, 0)} / ${fmt(hugeScatter?.ns_per_row, 0)} ns/row.`);
  const det = roof.filter((x) => x.what === "determinism");
  if (det.length) lines.push(`- the embedding gradient (ScatterND, reduction add, 70,656 rows into 1,000) run 5 times on the same inputs gives ${det.map((d) => `${d.distinct_results} distinct result${d.distinct_results === 1 ? "" : "s"} on ${d.threads} onnxruntime thread${d.threads === 1 ? "" : "s"}`).join(", ")}: a step with it runs on 1 thread so that training is reproducible; mtl train's step leaves it to the host (rowUpdate \"host\") and runs on 2.`);
  const copies = roof.filter((x) => x.what === "input copy");
  if (copies.length) lines.push(`- onnxruntime-node input copies: a run reading one element of a fed array takes ${copies.map((c) => `${fmt(c.ms_per_run, 3)} ms with ${c.input_mib} MiB fed`).join(", ")}: feeds are not copied.`);
  const esmm = results.rows.find((r) => r.section === "train" && r.name.includes("ESMM") && r.name.includes("uniform"));
  const ort1 = tower("onnxruntime", "train", 1);
  if (esmm && gather && scatter && ort1) {
    const msStep = (1024 / esmm.mtl) * 1000;
    const rowMs = (esmm.distinct_rows * (gather.ns_per_row + scatter.ns_per_row)) / 1e6;
    const moved = esmm.distinct_rows * 144 * 2 + (esmm.fed_mib + esmm.fetched_mib) * 2 ** 20;
    lines.push(`- ESMM uniform, per step of 1024: ${fmt(esmm.distinct_rows)} distinct rows; row traffic ${fmt(rowMs, 1)} ms at the measured random-row rate (gather + scatter); GEMMs ${fmt(2 * ort1.ms, 1)} ms on onnxruntime's 1 thread; measured step ${fmt(msStep, 1)} ms (two threads overlap). Bytes moved per step ≈ ${fmt(moved / 2 ** 20, 1)} MiB (table rows in and out, plus ${fmt(esmm.fed_mib, 1)} MiB fed and ${fmt(esmm.fetched_mib, 1)} MiB fetched across onnxruntime) = ${fmt((moved / (msStep / 1000)) / 1e9, 2)} GB/s of ${fmt(seq?.gbps, 1)} GB/s sequential.`);
  }
  return lines.join("\n");
}

/** CPU ms per step of the main thread and of the busiest other thread (the session worker), median over runs. */
function threadSplit(runs) {
  if (!runs?.length) return "—";
  const main = median(runs.map((r) => r.cpu_ms_per_step?.find((t) => t.thread === "main")?.ms_per_step));
  const worker = median(runs.map((r) => Math.max(...(r.cpu_ms_per_step ?? []).filter((t) => t.thread !== "main").map((t) => t.ms_per_step))));
  return `${fmt(main, 1)} / ${fmt(worker, 1)}`;
}

/** The training rows' thread split, and the A/B against --baseline when given. */
function splitText() {
  const rows = results.rows.filter((r) => r.section === "train");
  if (!rows.length) return "";
  const base = rows.some((r) => r.mtlBaseline);
  const lines = ["", "### Training step: where the CPU goes", "", `CPU ms per step, main thread / session worker (Linux per-thread counters, 10 ms ticks; robust to load where wall time is not)${base ? `, and the same step in the baseline checkout ${args.baseline}` : ""}:`, ""];
  lines.push(`| | mtl | mtl, huge pages | mtl, rows updated in the step graph (1 onnxruntime thread): examples/s |${base ? " baseline | baseline examples/s | mtl / baseline |" : ""}`, `|---|---|---|---|${base ? "---|---|---|" : ""}`);
  for (const r of rows) {
    lines.push(`| ${r.name} | ${threadSplit(r.runs.mtl)} | ${threadSplit(r.runs.mtlHuge)} | ${fmt(r.mtlGraph)} |${base ? ` ${threadSplit(r.runs.mtlBaseline)} | ${fmt(r.mtlBaseline)} | ${ratio(r.mtl, r.mtlBaseline)} |` : ""}`);
  }
  return lines.join("\n");
}

function table() {
  const head = [
    `mtl ${JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version}`,
    "mtl, huge pages",
    torch2 ? `PyTorch ${torch2.version} (sparse + SparseAdam)` : "PyTorch 2.x (not installed)",
    "mtl / PyTorch 2",
    torch2 ? `PyTorch ${torch2.version}, dense Adam` : "—",
    torch1 ? `PyTorch ${torch1.version} (Debian)` : "PyTorch 1.13 (not installed)",
    "mtl / PyTorch 1.13",
    "peak RSS MiB mtl / PyTorch 2",
  ];
  const lines = [`| | unit | ${head.join(" | ")} |`, `|---|---|${head.map(() => "---").join("|")}|`];
  const rel = (r, other) => (r.lowerIsBetter ? ratio(r[other], r.mtl) : ratio(r.mtl, r[other]));
  for (const r of results.rows) {
    const digits = r.unit === "ms" || r.unit === "ms/step" ? 2 : 0;
    const rss = r.mtl_rss_mib ? `${fmt(r.mtl_rss_mib)} / ${fmt(r.torch2_rss_mib)}` : "";
    lines.push(`| ${r.name} | ${r.unit} | ${fmt(r.mtl, digits)}${r.errors ? ` (${r.errors} errors)` : ""} | ${fmt(r.mtlHuge, digits)}${r.mtlHuge && r.torch2 ? ` (${ratio(r.mtlHuge, r.torch2)})` : ""} | ${fmt(r.torch2, digits)} | ${rel(r, "torch2")} | ${fmt(r.torch2dense, digits)} | ${fmt(r.torch1, digits)} | ${rel(r, "torch1")} | ${rss} |`);
  }
  return lines.join("\n");
}

try {
  if (sections.has("roofline")) await rooflineSection();
  if (sections.has("train")) await trainSection();
  if (sections.has("e2e")) await e2eSection();
  if (sections.has("score")) await scoreSection();
  if (sections.has("serve")) await serveSection();
  if (sections.has("data")) await dataSection();
  if (sections.has("scaling")) await scalingSection();
} finally {
  rmSync(work, { recursive: true, force: true });
}
results.finished = new Date().toISOString();
results.machine.load_at_end = loadavg().map((x) => x.toFixed(2)).join(" ");
const md = [
  `mtl bench, ${results.finished}: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memory_gib} GiB, Node ${results.machine.node}; load average ${results.machine.load_at_start} at the start, ${results.machine.load_at_end} at the end; ${rounds} round(s) (end to end ${e2eRounds}, scaling ${scalingRounds}), medians${quick ? " (--quick)" : ""}; command \`node scripts/bench.mjs ${process.argv.slice(2).join(" ")}\`.`,
  "",
  table(),
  splitText(),
  results.roofline ? rooflineText() : "",
].join("\n");
mkdirSync(dirname(args.out), { recursive: true });
writeFileSync(`${args.out}.json`, JSON.stringify(results, null, 1));
writeFileSync(`${args.out}.md`, md + "\n");
console.log(md);
log(`\nwrote ${args.out}.md and ${args.out}.json`);
