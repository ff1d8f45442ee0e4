/**
 * The hostile-input suite (issue 15): for each family of abuse, a fixed sample of cases, each of
 * which mtl must handle: refuse with one clear line (an MtlError, exit 1, no stack trace), or do
 * the right thing, and never lose or silently corrupt data. Each family prints one line,
 * `hostile <family>: N cases tried, M handled`, and fails if M < N.
 *
 * MTL_HOSTILE_FULL=1 runs larger samples (more bit flips, line mutations and kill-and-resume
 * trials); the default keeps the suite within its time budget.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { chmodSync, closeSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { crc32 } from "node:zlib";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MtlError, escapeControl } from "../src/errors.js";
import { toSchemaJson } from "../src/features/schema.js";
import { readData } from "../src/data/open.js";
import { decodeModel, encodeModel, onnx } from "../src/onnx/proto.js";
import { Scorer } from "../src/scoring/scorer.js";
import { META_KEYS } from "../src/scoring/metadata.js";
import { schemaHash, validateSchema } from "../src/features/schema.js";
import { ScoringServer } from "../src/serve/server.js";
import { ModelSlot } from "../src/serve/batching.js";
import { WebScorer } from "../src/web/index.js";
import { defaultRunConfig, type RunConfig } from "../src/flow/config.js";
import { trainRun } from "../src/flow/run.js";
import { loadRun, lockRunDirectory } from "../src/flow/rundir.js";
import { TrainingState } from "../src/train/state.js";
import { removeOrphanTemporaries } from "../src/util/atomic.js";
import { inspectCommand } from "../src/cli/inspect.js";
import { exportScoringModel, scoringRecords, scoringSchema } from "./helpers/scoring.js";

const FULL = process.env["MTL_HOSTILE_FULL"] === "1";
const bin = fileURLToPath(new URL("../../bin/mtl.js", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "mtl-hostile-"));
test.after(() => rmSync(work, { recursive: true, force: true }));

/** A seeded PRNG (LCG), so every run tries the same sample. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function mtl(args: string[], opts: { cwd?: string } = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", ...opts });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Progress lines a long command prints on stderr before it fails (not part of the error). */
const PROGRESS = /^(prepare|run|synth|train|inspect): |^building /;

/** A refusal done right: exit 1, one line on stderr (besides progress) matching `pattern`, no stack trace, no raw escape byte. */
function oneLine(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code 1, got ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n").filter((l) => !PROGRESS.test(l));
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |\u001b/);
}

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(async () => (typeof p === "function" ? p() : p), (e: unknown) => {
    assert.ok(e instanceof MtlError, `an MtlError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.format(), pattern);
    return true;
  });
}

interface Case {
  name: string;
  run: () => unknown;
}

/** Runs a family's cases, prints its one line, fails naming every case not handled. */
async function family(t: TestContext, name: string, cases: Case[]): Promise<void> {
  const failures: string[] = [];
  for (const c of cases) {
    try {
      await c.run();
    } catch (err) {
      failures.push(`${c.name}: ${err instanceof Error ? err.message.split("\n").slice(0, 4).join(" | ") : String(err)}`);
    }
  }
  const line = `hostile ${name}: ${cases.length} cases tried, ${cases.length - failures.length} handled`;
  t.diagnostic(line);
  assert.deepEqual(failures, [], `${name}: cases not handled`);
}

// ---------------------------------------------------------------- fixtures

const COLUMNS = ["user", "age", "hist", "item", "tags", "tag_w", "price", "click", "buy"];
function csvOf(rows: Record<string, unknown>[], header = COLUMNS): string {
  const cell = (v: unknown) => (Array.isArray(v) ? v.join("|") : String(v));
  return [header.join(","), ...rows.map((r) => header.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}
const labelled = scoringRecords(600, 9).map((r, i) => ({ ...r, click: i % 3 === 0 ? 1 : 0, buy: i % 9 === 0 ? 1 : 0 }));
const dataCsv = join(work, "data.csv");
writeFileSync(dataCsv, csvOf(labelled));
const schemaFile = join(work, "schema.json");
writeFileSync(schemaFile, JSON.stringify(toSchemaJson(scoringSchema())));
const model = exportScoringModel(work, "model.onnx").file;

function runConfig(over: Partial<RunConfig["training"]> = {}, modelName = "esmm"): RunConfig {
  const c = defaultRunConfig();
  c.model = modelName;
  c.modelConfig = modelName === "esmm" ? { towerSizes: [8] } : {};
  c.data = { train: dataCsv, schema: schemaFile };
  c.training = { ...c.training, batchSize: 64, epochs: 2, lr: 0.01, checkpointEvery: 3, logEvery: 2, validFraction: 0.2, seed: 4, ...over };
  return c;
}
const configYaml = join(work, "run.yaml");
writeFileSync(configYaml, `model: esmm
modelConfig: { towerSizes: [8] }
data: { train: ${dataCsv}, schema: ${schemaFile} }
training: { batchSize: 32, epochs: 2, lr: 0.01, checkpointEvery: 2, logEvery: 2, validFraction: 0.2, seed: 4 }
`);

let runs: Promise<{ esmm: string; naive: string }> | null = null;
/** Two finished runs (esmm and naive) on the same data, made once. */
function finishedRuns(): Promise<{ esmm: string; naive: string }> {
  runs ??= (async () => {
    const esmm = join(work, "run-esmm"), naive = join(work, "run-naive");
    await trainRun({ config: runConfig(), out: esmm });
    await trainRun({ config: runConfig({}, "naive"), out: naive });
    return { esmm, naive };
  })();
  return runs;
}

function copyRun(from: string, name: string): string {
  const to = join(work, name);
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) if (!f.startsWith(".")) copyFileSync(join(from, f), join(to, f));
  return to;
}

/** A model file with its metadata edited by `edit` (the weights untouched). */
function editedModel(name: string, edit: (m: onnx.ModelProto) => void): string {
  const m = decodeModel(readFileSync(model), model);
  edit(m);
  const file = join(work, name);
  writeFileSync(file, encodeModel(m));
  return file;
}

function setMeta(m: onnx.ModelProto, key: string, value: string): void {
  const e = (m.metadataProps as onnx.StringStringEntryProto[]).find((p) => p.key === key);
  if (e) e.value = value;
  else m.metadataProps.push(new onnx.StringStringEntryProto({ key, value }));
}

/** The shop model whose schema claims a larger `age` vocabulary than its table has (hash updated, so only the graph check can tell). */
const disagreeing = editedModel("disagree.onnx", (m) => {
  const schema = toSchemaJson(scoringSchema()) as { features: { name: string; vocab_size?: number }[] };
  schema.features.find((f) => f.name === "age")!.vocab_size = 50;
  setMeta(m, META_KEYS.schema, JSON.stringify(schema));
  setMeta(m, META_KEYS.schemaHash, schemaHash(validateSchema(schema)));
});

// ---------------------------------------------------------------- families

test("hostile data: mutated lines, duplicate headers, malformed quoting, ids past 2^53, directories and escapes", async (t) => {
  const schema = scoringSchema();
  const read = async (file: string, format: "csv" | "jsonl", skipBad = false) => {
    const r = readData(file, format, { schema, skipBad });
    let rows = 0;
    const ids: number[][] = [];
    for await (const b of r.blocks()) {
      rows += b.size;
      ids.push([...b.ids[0]!.subarray(0, b.size)]);
    }
    return { rows, stats: r.stats, userIds: ids.flat() };
  };
  const file = (name: string, text: string) => {
    const p = join(work, name);
    writeFileSync(p, text);
    return p;
  };
  const good = csvOf(labelled.slice(0, 5));
  const cases: Case[] = [
    { name: "CSV header naming a column twice", run: () => rejectsWith(read(file("dup.csv", good.replace("price,click", "price,price")), "csv"), "E_DATA", /dup\.csv:1: price: the header names the column 'price' twice/) },
    {
      name: "CSV quoted newline (with --skip-bad) keeps no bogus row", run: async () => {
        const lines = good.split("\n");
        lines.splice(2, 1, lines[2]!.replace(/^u(\d+),/, '"u$1\nsplit",'));
        const r = await read(file("qnl.csv", lines.join("\n")), "csv", true);
        assert.equal(r.rows, 4, "the broken record is left out, and its second half too");
        assert.equal(r.stats.rejected.get("column_count")?.count, 2);
      },
    },
    { name: "CSV quote inside an unquoted cell", run: () => rejectsWith(read(file("stray.csv", good.replace(/\nu(\d+),/, '\nu$1"x,')), "csv"), "E_DATA", /stray\.csv:2: .*a quote inside an unquoted cell/) },
    {
      name: "JSONL ids past 2^53 are refused naming line and field; as strings they stay distinct", run: async () => {
        const rec = (user: unknown) => JSON.stringify({ ...labelled[0], user });
        await rejectsWith(read(file("big.jsonl", `${rec(1)}\n${rec(12345678901234567891)}\n`), "jsonl"), "E_DATA", /big\.jsonl:2: user: .*beyond 2\^53/);
        const r = await read(file("bigs.jsonl", `${rec("12345678901234567891")}\n${rec("12345678901234567892")}\n`), "jsonl");
        assert.notEqual(r.userIds[0], r.userIds[1]);
      },
    },
    ...(["prepare", "inspect", "run", "eval"] as const).map((cmd): Case => ({
      name: `a directory as data: ${cmd}`, run: async () => {
        const d = join(work, `dir-as-data-${cmd}.csv`);
        mkdirSync(d, { recursive: true });
        const args = cmd === "prepare" ? ["data", "prepare", "--input", d, "--out", join(work, "x.shard"), "--format", "csv", "--schema", schemaFile]
          : cmd === "inspect" ? ["data", "inspect", d, "--format", "csv", "--schema", schemaFile]
          : cmd === "run" ? ["run", model, "--input", d, "--format", "csv", "--output", join(work, "p.csv")]
          : ["eval", (await finishedRuns()).esmm, "--data", d];
        oneLine(mtl(args), /cannot read the data: it is a directory|the data directory holds no files/);
      },
    })),
    {
      name: "terminal escapes in a data value are escaped in the message", run: () => {
        const evil = file("evil.csv", good.replace(/\n(u\d+),(\d+),/, "\n$1,\u001b]0;pwned\u0007\u001b[2J,"));
        const r = mtl(["run", model, "--input", evil, "--output", join(work, "evil-p.csv")]);
        oneLine(r, /\\x1b\]0;pwned\\x07\\x1b\[2J/);
      },
    },
  ];
  // Byte mutations of Ali-CCP-format lines: every one parses or is refused as an MtlError, never a crash.
  const synth = join(work, "synth.txt");
  assert.equal(mtl(["data", "synth", "--out", synth, "--rows", "40", "--seed", "2"]).code, 0);
  const lines = readFileSync(synth, "utf8").trim().split("\n");
  const rand = lcg(77);
  const mutations = FULL ? 400 : 40;
  for (let k = 0; k < mutations; k++) {
    const line = Buffer.from(lines[k % lines.length]!, "utf8");
    const kind = k % 4;
    const at = Math.floor(rand() * line.length);
    const mutated = kind === 0 ? Buffer.concat([line.subarray(0, at), line.subarray(at + 1)]) // delete a byte
      : kind === 1 ? Buffer.concat([line.subarray(0, at), Buffer.from([Math.floor(rand() * 256)]), line.subarray(at)]) // insert one
      : kind === 2 ? Buffer.from(line.map((b, i) => (i === at ? b ^ (1 << Math.floor(rand() * 8)) : b))) // flip a bit
      : line.subarray(0, at); // cut short
    cases.push({
      name: `Ali-CCP line mutation ${k} (${["delete", "insert", "flip", "truncate"][kind]} at ${at})`, run: async () => {
        const p = join(work, `mut-${k}.txt`);
        writeFileSync(p, Buffer.concat([Buffer.from(lines.slice(0, 3).join("\n") + "\n"), mutated, Buffer.from("\n")]));
        try {
          const r = readData(p, "aliccp", { truthFile: null });
          for await (const b of r.blocks()) void b;
        } catch (err) {
          assert.ok(err instanceof MtlError, `refused as an MtlError, got ${String((err as Error).stack)}`);
          assert.match(err.format(), /mut-\d+\.txt:4\b/, "naming the mutated line");
        }
      },
    });
  }
  await family(t, "data", cases);
});

test("hostile models: flipped weight bits, metadata that disagrees with the graph, truncation, onnxruntime's internals", async (t) => {
  const bytes = readFileSync(model);
  const decoded = decodeModel(bytes, model);
  // Where each initializer's raw bytes sit in the file.
  const regions = (decoded.graph!.initializer as onnx.TensorProto[]).filter((i) => i.rawData.byteLength >= 16).map((i) => {
    const head = Buffer.from(i.rawData.subarray(0, 16));
    return { name: i.name, at: bytes.indexOf(head), unique: bytes.indexOf(head) === bytes.lastIndexOf(head), length: i.rawData.byteLength };
  }).filter((r) => r.at >= 0 && r.unique); // zero-initialised biases look alike: keep tensors whose bytes can be found
  const rand = lcg(5);
  const flips = FULL ? 300 : 25;
  const cases: Case[] = [];
  for (let k = 0; k < flips; k++) {
    const r = regions[k % regions.length]!;
    const offset = r.at + Math.floor(rand() * r.length);
    const bit = Math.floor(rand() * 8);
    cases.push({
      name: `bit ${bit} of byte ${offset} (${r.name})`, run: async () => {
        const flipped = Buffer.from(bytes);
        flipped[offset]! ^= 1 << bit;
        const file = join(work, `flip-${k}.onnx`);
        writeFileSync(file, flipped);
        await rejectsWith(Scorer.open(file, { worker: false }), "E_INTEGRITY", new RegExp(`initializer '${r.name.replace(/\./g, "\\.")}'`));
        rmSync(file);
      },
    });
  }
  const flippedFile = join(work, "flipped.onnx");
  const flipped = Buffer.from(bytes);
  flipped[regions[0]!.at + 3]! ^= 0x10;
  writeFileSync(flippedFile, flipped);
  const opsRenamed = editedModel("badop.onnx", (m) => {
    (m.graph!.node as onnx.NodeProto[])[0]!.opType = "NoSuchOp";
  });
  const escapes = editedModel("escapes.onnx", (m) => setMeta(m, "note", "\u001b]0;pwned\u0007\u001b[2J"));
  cases.push(
    { name: "run refuses a flipped model in one line", run: () => oneLine(mtl(["run", flippedFile, "--input", dataCsv, "--output", join(work, "f.csv")]), /weights do not match their checksum: initializer/) },
    { name: "--skip-checksum loads a model edited on purpose", run: async () => (await Scorer.open(flippedFile, { worker: false, skipChecksum: true })).release() },
    { name: "mtl/web refuses a flipped model", run: () => rejectsWith(WebScorer.load(readFileSync(flippedFile)), "E_INTEGRITY") },
    { name: "inspect refuses a flipped model", run: () => rejectsWith(inspectCommand(flippedFile, true), "E_INTEGRITY") },
    { name: "serve refuses a model whose schema disagrees with its table", run: () => rejectsWith(ScoringServer.start(disagreeing, { port: 0 }), "E_MODEL", /table 'age' has 50 rows of 4, the graph's has 10 of 4/) },
    { name: "mtl/web refuses it too", run: () => rejectsWith(WebScorer.load(readFileSync(disagreeing)), "E_MODEL", /table 'age'/) },
    { name: "a truncated model", run: () => { const f = join(work, "cut.onnx"); writeFileSync(f, bytes.subarray(0, bytes.length >> 1)); oneLine(mtl(["run", f, "--input", dataCsv, "--output", join(work, "c.csv")]), /not an ONNX model|checksum/); } },
    {
      name: "onnxruntime's refusal is one mtl line, without its source paths or log lines", run: () => {
        const r = mtl(["run", opsRenamed, "--input", dataCsv, "--output", join(work, "o.csv")]);
        oneLine(r, /onnxruntime cannot load the model: .*NoSuchOp/);
        assert.doesNotMatch(r.stderr, /onnxruntime_src|\.cc:\d+|\[E:onnxruntime/);
        const verbose = mtl(["run", opsRenamed, "--input", dataCsv, "--output", join(work, "o.csv"), "--verbose"]);
        assert.match(verbose.stderr, /the underlying error was/);
      },
    },
    {
      name: "terminal escapes in model metadata are escaped by inspect", run: () => {
        const r = mtl(["inspect", escapes]);
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(r.stdout, /\u001b|\u0007/);
        assert.match(r.stdout, /\\x1b\]0;pwned/);
      },
    },
  );
  await family(t, "models", cases);
});

test("hostile run directories: damaged state headers, a directory for a state, another model's checkpoint, a cut metrics line", async (t) => {
  const { esmm, naive } = await finishedRuns();
  const ckpt = readFileSync(join(esmm, "checkpoint.mtlstate"));
  /** The checkpoint with its header JSON replaced (checksum recomputed: only the content check can tell). */
  const withHeader = (text: string, fixCrc = true): Buffer => {
    const hlen = ckpt.readUInt32LE(12);
    const head = Buffer.from(text.padEnd(hlen, " "), "utf8");
    const out = Buffer.from(ckpt);
    head.copy(out, 20);
    if (fixCrc) out.writeUInt32LE(crc32(head), 16);
    return out;
  };
  const header = ckpt.toString("utf8", 20, 20 + ckpt.readUInt32LE(12)).trimEnd();
  const damaged = (name: string, bytes: Buffer | null, pattern: RegExp): Case => ({
    name, run: () => {
      const dir = copyRun(esmm, `damaged-${name.replace(/\W+/g, "-")}`);
      rmSync(join(dir, "best.mtlstate"));
      if (bytes) writeFileSync(join(dir, "checkpoint.mtlstate"), bytes);
      oneLine(mtl(["eval", dir, "--data", dataCsv]), pattern);
    },
  });
  const cases: Case[] = [
    damaged("header {}", withHeader("{}"), /checkpoint\.mtlstate: the header's step is not/),
    damaged("header null", withHeader("null"), /the header is not a JSON object/),
    damaged("tensors null", withHeader(header.replace(/"tensors":\[.*\]\}$/, '"tensors":null}')), /the header has no tensor table/),
    damaged("an edited step (checksum not fixed)", withHeader(header.replace(/^\{"step":\d+/, '{"step":1'), false), /the header .* fails its checksum/),
    damaged("a truncated checkpoint", ckpt.subarray(0, ckpt.length - 100), /runs past the end of the file/),
    {
      name: "best.mtlstate is a directory", run: () => {
        const dir = copyRun(esmm, "best-is-dir");
        rmSync(join(dir, "best.mtlstate"));
        mkdirSync(join(dir, "best.mtlstate"));
        oneLine(mtl(["eval", dir, "--data", dataCsv]), /best\.mtlstate: cannot read the checkpoint: it is a directory/);
      },
    },
    ...(["eval", "export", "resume"] as const).map((cmd): Case => ({
      name: `another model's checkpoint is refused by ${cmd}`, run: async () => {
        const dir = copyRun(esmm, `foreign-${cmd}`);
        for (const f of ["checkpoint.mtlstate", "best.mtlstate"]) copyFileSync(join(naive, f), join(dir, f));
        if (cmd === "eval") oneLine(mtl(["eval", dir, "--data", dataCsv]), /the checkpoint is not of this run: it holds model 'naive', run.json trains 'esmm'/);
        else if (cmd === "export") oneLine(mtl(["export", "--checkpoint", dir, "-o", join(work, "foreign.onnx")]), /not of this run/);
        else {
          rmSync(join(dir, "summary.json"));
          await rejectsWith(trainRun({ config: runConfig(), out: dir, resume: true }), "E_CHECKPOINT", /not of this run/);
        }
      },
    })),
    {
      name: "a checkpoint with another model config (same model) is refused", run: async () => {
        const dir = copyRun(esmm, "other-config");
        const s = TrainingState.load(join(dir, "best.mtlstate"));
        s.info = { ...s.info, configHash: "0badc0de" };
        s.save(join(dir, "best.mtlstate"));
        await rejectsWith(async () => loadRun(dir), "E_CHECKPOINT", /model config hash is 0badc0de/);
      },
    },
    {
      name: "a metrics.jsonl whose last line was cut by a crash resumes", run: async () => {
        const dir = join(work, "cut-metrics");
        const stop = new AbortController();
        await trainRun({ config: runConfig({ epochs: 1 }), out: dir, signal: stop.signal, onEvent: (e) => e.kind === "checkpoint" && stop.abort() });
        writeFileSync(join(dir, "metrics.jsonl"), readFileSync(join(dir, "metrics.jsonl"), "utf8") + '{"type":"step","st');
        const s = await trainRun({ config: runConfig({ epochs: 1 }), out: dir, resume: true });
        assert.equal(s.status, "completed");
        for (const l of readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n")) JSON.parse(l);
      },
    },
  ];
  await family(t, "run-directories", cases);
});

test("hostile kills: SIGKILL at random moments of mtl train (checkpoint writes included), then --resume: bit-identical", async (t) => {
  const straight = join(work, "kill-straight");
  const full = mtl(["train", "--config", configYaml, "--out", straight]);
  assert.equal(full.code, 0, full.stderr);
  const want = TrainingState.load(join(straight, "checkpoint.mtlstate"));
  const rand = lcg(31);
  const trials = FULL ? 12 : 2;
  const cases: Case[] = Array.from({ length: trials }, (_, k): Case => ({
    name: `trial ${k}`, run: async () => {
      const dir = join(work, `kill-${k}`);
      const delayMs = Math.floor(rand() * 40);
      await new Promise<void>((resolve, reject) => {
        const p = spawn(process.execPath, [bin, "train", "--config", configYaml, "--out", dir], { stdio: "ignore" });
        const poll = setInterval(() => {
          if (existsSync(join(dir, "checkpoint.mtlstate"))) {
            clearInterval(poll);
            setTimeout(() => p.kill("SIGKILL"), delayMs); // a moment after the first checkpoint: often mid-write of the next
          }
        }, 1);
        p.on("exit", () => {
          clearInterval(poll);
          resolve();
        });
        p.on("error", reject);
      });
      if (!existsSync(join(dir, "summary.json"))) {
        const r = mtl(["train", "--out", dir, "--resume"]);
        assert.equal(r.code, 0, r.stderr);
      }
      const got = TrainingState.load(join(dir, "checkpoint.mtlstate"));
      assert.equal(got.step, want.step);
      for (const [name, tensor] of want.tensors) assert.deepEqual(Buffer.from(got.get(name)!.buffer), Buffer.from(tensor.data.buffer), `tensor ${name}`);
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith(".")), [], "no lock or temporary file left");
    },
  }));
  await family(t, "kills", cases);
});

test("hostile disk: a full filesystem (tmpfs) gives one line naming the path and leaves nothing under a final name", async (t) => {
  if (process.getuid?.() !== 0) return t.skip("needs root to mount a small tmpfs");
  const mnt = join(work, "full");
  mkdirSync(mnt);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt], { stdio: "ignore" });
  } catch {
    return t.skip("cannot mount a tmpfs here");
  }
  try {
    const { esmm } = await finishedRuns();
    const run = copyRun(esmm, "run-for-disk");
    /** Fills the tmpfs but for `free` bytes: an output larger than that fails part way through. */
    const fill = (free: number) => {
      rmSync(join(mnt, "filler"), { force: true });
      const chunk = Buffer.alloc(4096, 1);
      const fd = openSync(join(mnt, "filler"), "w");
      try {
        for (;;) writeSync(fd, chunk);
      } catch { /* full */ } finally {
        closeSync(fd);
      }
      truncateSync(join(mnt, "filler"), Math.max(0, statSync(join(mnt, "filler")).size - free));
    };
    const outputs: [string, string[], string][] = [
      ["prepare", ["data", "prepare", "--input", dataCsv, "--schema", schemaFile, "--out", join(mnt, "d.shard")], join(mnt, "d.shard")],
      ["synth", ["data", "synth", "--out", join(mnt, "s.txt"), "--rows", "3000"], join(mnt, "s.txt")],
      ["run", ["run", model, "--input", dataCsv, "--output", join(mnt, "p.csv")], join(mnt, "p.csv")],
      ["report", ["report", run, "-o", join(mnt, "r.html")], join(mnt, "r.html")],
      ["eval --json", ["eval", run, "--data", dataCsv, "--json", join(mnt, "e.json")], join(mnt, "e.json")],
      ["export", ["export", "--checkpoint", run, "-o", join(mnt, "m.onnx")], join(mnt, "m.onnx")],
      ["export --training", ["export", "--model", "esmm", "--schema", schemaFile, "--training", "-o", join(mnt, "tr")], join(mnt, "tr")],
      ["train", ["train", "--config", configYaml, "--out", join(mnt, "run")], join(mnt, "run", "summary.json")],
    ];
    const cases = outputs.map(([name, args, out]): Case => ({
      name, run: () => {
        fill(8192);
        const r = mtl(args);
        oneLine(r, new RegExp(`${mnt.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/\\S+: cannot write the .*: no space left on the device \\(ENOSPC\\)`));
        assert.ok(!existsSync(out), `nothing under the final name ${out}`);
        const left = readdirSync(mnt).filter((f) => f !== "filler" && f !== "run");
        assert.deepEqual(left, [], "no partial or temporary file left");
        rmSync(join(mnt, "run"), { recursive: true, force: true });
      },
    }));
    await family(t, "disk", cases);
  } finally {
    spawnSync("umount", [mnt]);
  }
});

async function post(url: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${url}/v1/score`, { method: "POST", headers, body });
  const text = await res.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, headers: res.headers };
}

/** Resolves with how long until the server closed a raw socket that sent `send` (and then nothing). */
function closedAfter(port: number, send: string): Promise<{ ms: number; reply: string }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let reply = "";
    const s = connect(port, "127.0.0.1", () => s.write(send));
    s.on("data", (d) => (reply += d.toString()));
    s.on("close", () => resolve({ ms: Date.now() - started, reply }));
    s.on("error", () => undefined);
    setTimeout(() => {
      s.destroy();
      reject(new Error(`still open after 8 s`));
    }, 8000);
  });
}

test("hostile HTTP: content types, Host and Origin, slow and idle sockets, connection cap, limits, isolation, drain", async (t) => {
  const records = scoringRecords(20, 3);
  const body = (cands: Record<string, unknown>[]) => JSON.stringify({ context: { user: "u1", age: 3, hist: ["i1"] }, candidates: cands.map(({ item, tags, tag_w, price }) => ({ item, tags, tag_w, price })) });
  const good = body(records);
  const server = await ScoringServer.start(model, { port: 0, bodyTimeoutMs: 300, allowOrigins: ["https://app.example.com"], log: () => undefined });
  const url = server.url, port = server.address.port;
  const raw = (lines: string[]) => lines.join("\r\n") + "\r\n\r\n";
  const cases: Case[] = [
    { name: "text/plain (a cross-origin form post) gets 415", run: async () => assert.equal((await post(url, good, { "content-type": "text/plain" })).status, 415) },
    { name: "no content-type gets 415", run: async () => assert.equal((await closedAfter(port, raw(["POST /v1/score HTTP/1.1", "Host: 127.0.0.1", `Content-Length: ${good.length}`]) + good)).reply.split(" ")[1], "415") },
    { name: "Host: evil.example.com reading /v1/model gets 403", run: async () => assert.match((await closedAfter(port, raw(["GET /v1/model HTTP/1.1", "Host: evil.example.com", "Connection: close"]))).reply, /^HTTP\/1\.1 403/) },
    { name: "Host: localhost:port is served", run: async () => assert.match((await closedAfter(port, raw(["GET /healthz HTTP/1.1", `Host: localhost:${port}`, "Connection: close"]))).reply, /^HTTP\/1\.1 200/) },
    { name: "a page of another origin gets 403", run: async () => assert.equal((await post(url, good, { "content-type": "application/json", origin: "http://evil.example.com" })).status, 403) },
    {
      name: "an allowed origin is scored, with CORS headers; its preflight gets 204", run: async () => {
        const r = await post(url, good, { "content-type": "application/json", origin: "https://app.example.com" });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get("access-control-allow-origin"), "https://app.example.com");
        const pre = await fetch(`${url}/v1/score`, { method: "OPTIONS", headers: { origin: "https://app.example.com", "access-control-request-method": "POST" } });
        assert.equal(pre.status, 204);
      },
    },
    {
      name: "a stalled body is cut at the body timeout (408)", run: async () => {
        const r = await closedAfter(port, raw(["POST /v1/score HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Content-Length: 1000"]) + good.slice(0, 10));
        assert.ok(r.ms < 3000, `closed after ${r.ms} ms`);
      },
    },
    { name: "an idle socket (nothing sent) is closed", run: async () => assert.ok((await closedAfter(port, "")).ms < 3000) },
    {
      name: "connections beyond --max-connections are refused, the server goes on", run: async () => {
        const capped = await ScoringServer.start(model, { port: 0, maxConnections: 4, log: () => undefined });
        try {
          let closedByServer = 0;
          const sockets = await Promise.all(Array.from({ length: 8 }, () => new Promise<import("node:net").Socket>((resolve) => {
            const s = connect(capped.address.port, "127.0.0.1", () => resolve(s));
            s.on("close", () => closedByServer++);
            s.on("error", () => undefined);
          })));
          for (let i = 0; i < 100 && closedByServer < 4; i++) await new Promise((r) => setTimeout(r, 10));
          assert.equal(closedByServer, 4, "the four beyond the cap are closed at once");
          for (const s of sockets) s.destroy();
          await new Promise((r) => setTimeout(r, 50));
          assert.equal((await post(capped.url, good)).status, 200);
        } finally {
          await capped.close();
        }
      },
    },
    {
      name: "an id past 2^53 in a request is a 400 naming it; as a string it scores", run: async () => {
        const r = await post(url, JSON.stringify({ context: { user: 12345678901234567891, age: 3, hist: [] }, candidates: [{ item: "i1", tags: [], tag_w: [], price: 1 }] }));
        assert.equal(r.status, 400);
        assert.match(r.json.error.message, /user.*beyond 2\^53/);
        assert.equal((await post(url, JSON.stringify({ context: { user: "12345678901234567891", age: 3, hist: [] }, candidates: [{ item: "i1", tags: [], tag_w: [], price: 1 }] }))).status, 200);
      },
    },
    {
      name: "one out-of-range id among 60 concurrent good requests fails only itself", run: async () => {
        const bad = JSON.stringify({ context: { user: "u1", age: 99, hist: [] }, candidates: [{ item: "i1", tags: [], tag_w: [], price: 1 }] });
        const rs = await Promise.all(Array.from({ length: 61 }, (_, i) => post(url, i === 30 ? bad : good)));
        assert.deepEqual(rs.map((r) => r.status), rs.map((_, i) => (i === 30 ? 400 : 200)));
      },
    },
    {
      name: "a failing session run fails only the request at fault (isolation inside a micro-batch)", run: async () => {
        const real = await Scorer.open(model, { worker: false });
        try {
          const fake = { info: real.info, sessionCount: real.sessionCount, score: async (b: { size: number; ids: Int32Array[] }) => {
            if (b.ids.some((ids) => ids.includes(-7))) throw new Error("index out of bounds");
            return real.score(b as never);
          } };
          const slot = new ModelSlot(fake as unknown as Scorer, new Date(), 1 << 20);
          const { encodeRecords } = await import("../src/features/encode.js");
          const jobs = Array.from({ length: 10 }, (_, i) => {
            const batch = encodeRecords(real.info.layout, records.slice(0, 3) as never, { labels: false });
            if (i === 4) batch.ids[0]![0] = -7;
            return slot.score(batch).promise;
          });
          const settled = await Promise.allSettled(jobs);
          assert.deepEqual(settled.map((s) => s.status), settled.map((_, i) => (i === 4 ? "rejected" : "fulfilled")));
        } finally {
          await real.release();
        }
      },
    },
    ...([["timeoutMs", 0], ["maxCandidates", 0], ["port", 70000], ["maxBodyBytes", 0], ["maxConnections", -1], ["bodyTimeoutMs", 1.5]] as const).map(([key, value]): Case => ({
      name: `start refuses ${key} ${value}`, run: () => rejectsWith(ScoringServer.start(model, { [key]: value }), "E_USAGE"),
    })),
    { name: "mtl serve --port 70000 is one line", run: () => oneLine(mtl(["serve", model, "--port", "70000"]), /--port must be an integer from 0 to 65535, got 70000/) },
    { name: "mtl serve --allow-origin with a path is refused", run: () => oneLine(mtl(["serve", model, "--allow-origin", "https://a.example/x"]), /--allow-origin/) },
  ];
  try {
    await family(t, "http", cases);
  } finally {
    await server.close();
  }
  // Drain: once close() is called no new connection is accepted, and every request in flight is answered.
  const drain = await ScoringServer.start(model, { port: 0, log: () => undefined });
  const big = body(scoringRecords(400, 2));
  const inFlight = Array.from({ length: 30 }, () => post(drain.url, big));
  while (drain.received < 30) await new Promise((r) => setTimeout(r, 1));
  const drainPort = drain.address.port;
  const closing = drain.close();
  const late = await new Promise<string>((resolve) => {
    const s = connect(drainPort, "127.0.0.1", () => resolve("accepted"));
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
  });
  const answered = await Promise.all(inFlight);
  await closing;
  await family(t, "http-drain", [
    { name: "a connection after SIGTERM is refused", run: () => assert.equal(late, "ECONNREFUSED") },
    { name: "every request in flight is answered 200", run: () => assert.deepEqual(answered.map((r) => r.status), answered.map(() => 200)) },
  ]);
});

test("hostile writers: concurrent runs, stale locks, the user's directory, outputs over inputs, orphan temporaries", async (t) => {
  const { esmm } = await finishedRuns();
  const sameBytes = (file: string, before: Buffer) => assert.deepEqual(readFileSync(file), before, `${file} unchanged`);
  const deadPid = (() => {
    const p = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    return Number(p.stdout);
  })();
  const cases: Case[] = [
    {
      name: "a second mtl train into the same --out fails at once naming the first's pid", run: async () => {
        const out = join(work, "two-writers");
        // The first run is made long (it would otherwise finish before the second starts on a fast machine)
        // and is stopped with Ctrl-C once the others have been refused.
        const first = spawn(process.execPath, [bin, "train", "--config", configYaml, "--out", out, "--epochs", "100000"], { stdio: "ignore" });
        const exited = new Promise<number | null>((r) => first.on("exit", (code) => r(code)));
        try {
          for (let waited = 0; !existsSync(join(out, ".lock")); waited += 5) {
            if (waited > 60_000 || first.exitCode !== null) throw new Error("the first run never showed a lock");
            await new Promise((r) => setTimeout(r, 5));
          }
          const second = mtl(["train", "--config", configYaml, "--out", out, "--resume"]);
          oneLine(second, new RegExp(`being written by process ${first.pid}`));
          const fresh = mtl(["train", "--config", configYaml, "--out", out]);
          assert.equal(fresh.code, 1, fresh.stderr);
          assert.equal(first.exitCode, null, "the first run was still training while the others were refused");
        } finally {
          if (first.exitCode === null && first.signalCode === null) first.kill("SIGINT");
        }
        assert.equal(await exited, 130, "the first run stopped at Ctrl-C");
        assert.ok(existsSync(join(out, "checkpoint.mtlstate")), "the first run kept its checkpoint undisturbed");
        assert.ok(!existsSync(join(out, ".lock")), "and released its lock");
      },
    },
    {
      name: "two runs in one process: the second is refused", run: async () => {
        const out = join(work, "two-in-process");
        mkdirSync(out);
        const release = lockRunDirectory(out);
        try {
          await rejectsWith(trainRun({ config: runConfig({ epochs: 1 }), out }), "E_LOCKED", /this one/);
        } finally {
          release();
        }
      },
    },
    {
      name: "a stale lock of a dead process is taken over", run: async () => {
        const out = join(work, "stale-lock");
        mkdirSync(out);
        writeFileSync(join(out, ".lock"), `${deadPid}\n`);
        const s = await trainRun({ config: runConfig({ epochs: 1 }), out });
        assert.equal(s.status, "completed");
        assert.ok(!existsSync(join(out, ".lock")));
      },
    },
    {
      name: "--out that is the user's own directory is refused, its files untouched", run: async () => {
        const out = join(work, "users-dir");
        mkdirSync(out);
        writeFileSync(join(out, "metrics.jsonl"), "mine\n");
        writeFileSync(join(out, "summary.json"), "{\"mine\":true}\n");
        await rejectsWith(trainRun({ config: runConfig({ epochs: 1 }), out }), "E_RUN", /not an mtl run and not empty/);
        assert.equal(readFileSync(join(out, "metrics.jsonl"), "utf8"), "mine\n");
        assert.equal(readFileSync(join(out, "summary.json"), "utf8"), "{\"mine\":true}\n");
      },
    },
    {
      name: "run --output its own --input (also through a hard link)", run: () => {
        const input = join(work, "in-out.csv");
        writeFileSync(input, csvOf(labelled.slice(0, 20)));
        const before = readFileSync(input);
        oneLine(mtl(["run", model, "--input", input, "--output", input]), /the output is the data this command reads/);
        const link = join(work, "in-out-link.csv");
        linkSync(input, link);
        oneLine(mtl(["run", model, "--input", input, "--output", link]), /the output is the data/);
        sameBytes(input, before);
      },
    },
    {
      name: "data prepare --out its own --input", run: () => {
        const input = join(work, "prep-self.csv");
        writeFileSync(input, csvOf(labelled.slice(0, 20)));
        const before = readFileSync(input);
        oneLine(mtl(["data", "prepare", "--input", input, "--out", input, "--schema", schemaFile]), /the output is the data/);
        sameBytes(input, before);
      },
    },
    {
      name: "eval --json over the run's checkpoint", run: () => {
        const f = join(esmm, "checkpoint.mtlstate");
        const before = readFileSync(f);
        oneLine(mtl(["eval", esmm, "--data", dataCsv, "--json", f]), /a file of the run \(checkpoint\.mtlstate\)/);
        sameBytes(f, before);
      },
    },
    {
      name: "report -o over the run's run.json", run: () => {
        const f = join(esmm, "run.json");
        const before = readFileSync(f);
        oneLine(mtl(["report", esmm, "-o", f]), /a file of the run \(run\.json\)/);
        sameBytes(f, before);
      },
    },
    {
      name: "export -o over the run's best state", run: () => {
        const f = join(esmm, "best.mtlstate");
        const before = readFileSync(f);
        oneLine(mtl(["export", "--checkpoint", esmm, "-o", f]), /a file of the run \(best\.mtlstate\)/);
        sameBytes(f, before);
      },
    },
    {
      name: "orphan temporaries of dead processes are cleaned, a live one's kept", run: () => {
        const d = join(work, "orphans");
        mkdirSync(d);
        writeFileSync(join(d, `.checkpoint.mtlstate.tmp-${deadPid}`), "x");
        writeFileSync(join(d, `.p.csv.partial-${deadPid}`), "x");
        writeFileSync(join(d, `.alive.tmp-${process.pid}`), "x");
        writeFileSync(join(d, "mine.tmp-1"), "x");
        assert.deepEqual(removeOrphanTemporaries(d).sort(), [`.checkpoint.mtlstate.tmp-${deadPid}`, `.p.csv.partial-${deadPid}`]);
        assert.deepEqual(readdirSync(d).sort(), [`.alive.tmp-${process.pid}`, "mine.tmp-1"]);
        // And a command writing in a directory cleans it.
        const d2 = join(work, "orphans-cli");
        mkdirSync(d2);
        writeFileSync(join(d2, `.p.csv.partial-${deadPid}`), "x");
        assert.equal(mtl(["run", model, "--input", dataCsv, "--output", join(d2, "p.csv")]).code, 0);
        assert.deepEqual(readdirSync(d2), ["p.csv"]);
      },
    },
    {
      name: "an unwritable --out directory is one line", run: () => {
        if (process.getuid?.() === 0) return; // root writes anywhere: nothing to refuse
        const d = join(work, "ro");
        mkdirSync(d);
        chmodSync(d, 0o500);
        oneLine(mtl(["run", model, "--input", dataCsv, "--output", join(d, "p.csv")]), /permission denied/);
      },
    },
  ];
  await family(t, "writers", cases);
});

test("escapeControl escapes C0, C1 and line separators, keeps the rest", () => {
  assert.equal(escapeControl("a\u001b[2Jb\u0007\n\u009b\u2028é"), "a\\x1b[2Jb\\x07\\x0a\\x9b\\u{2028}é");
});
