/**
 * mtl as a Unix tool: the design card's two commands exactly as written, `-` for standard input and
 * output, pipes (gzip from a pipe: no positional read), /dev/stdout written in place (never renamed
 * over), output folders created, bad numbers named, help that ends with examples.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { writesInPlace } from "../src/util/atomic.js";
import { sniffFormat } from "../src/data/open.js";
import { EXAMPLES } from "../src/cli/examples.js";

const bin = fileURLToPath(new URL("../../bin/mtl.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "mtl-unix-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
// `mtl` on the PATH of the shell commands below, as an installed package puts it there.
const binDir = join(dir, "bin");
spawnSync("mkdir", ["-p", binDir]);
writeFileSync(join(binDir, "mtl"), `#!/bin/sh\nexec "${process.execPath}" "${bin}" "$@"\n`, { mode: 0o755 });

function sh(script: string, input?: string) {
  const r = spawnSync("bash", ["-c", `set -o pipefail; ${script}`], { cwd: dir, encoding: "utf8", input, env: { ...process.env, PATH: `${binDir}:${process.env["PATH"]}` } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const ROWS = 250;
const setup = sh(`mtl data synth --out test.txt --rows ${ROWS} --seed 4`);
assert.equal(setup.code, 0, setup.stderr);

function predictionLines(text: string): string[] {
  const lines = text.trim().split("\n");
  assert.equal(lines[0], "line,p_ctr,p_cvr,p_ctcvr");
  return lines.slice(1);
}

test("the card: `mtl export --model escm2` writes escm2.onnx in the current directory and prints where", () => {
  const r = sh("mtl export --model escm2");
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(dir, "escm2.onnx")));
  assert.match(r.stdout, new RegExp(`^wrote ${join(dir, "escm2.onnx").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}  [\\d.]+ MB\\n`));
});

test("the card: `mtl run model.onnx < test.txt > preds.csv` scores standard input onto standard output", () => {
  if (!existsSync(join(dir, "escm2.onnx"))) assert.equal(sh("mtl export --model escm2").code, 0);
  const r = sh("cp escm2.onnx model.onnx && mtl run model.onnx < test.txt > preds.csv");
  assert.equal(r.code, 0, r.stderr);
  const lines = predictionLines(readFileSync(join(dir, "preds.csv"), "utf8"));
  assert.equal(lines.length, ROWS);
  assert.deepEqual(lines.map((l) => Number(l.split(",")[0])), Array.from({ length: ROWS }, (_, i) => i + 1));
  // The summary goes to stderr, beside the predictions, not into them.
  assert.match(r.stderr, new RegExp(`scored ${ROWS} rows with escm2 .* -> <stdout>`));
});

test("`-` and pipes: gzip through a pipe (as - and as /dev/stdin), CSV and JSONL told from the data, JSONL out, --json summary", () => {
  writeFileSync(join(dir, "test.txt.gz"), gzipSync(readFileSync(join(dir, "test.txt"))));
  const want = readFileSync(join(dir, "preds.csv"), "utf8");
  for (const cmd of ["cat test.txt.gz | mtl run model.onnx -i - -o -", "cat test.txt.gz | mtl run model.onnx --input /dev/stdin --output -", "mtl run model.onnx -o - < test.txt.gz"]) {
    const r = sh(cmd);
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /ESPIPE|at .*\.js:\d+/);
    assert.equal(r.stdout, want, cmd);
  }
  const jsonl = sh("mtl run model.onnx --output-format jsonl --json < test.txt");
  assert.equal(jsonl.code, 0, jsonl.stderr);
  const rows = jsonl.stdout.trim().split("\n").map((l) => JSON.parse(l) as { line: number; p_ctr: number });
  assert.equal(rows.length, ROWS);
  assert.equal(rows[0]!.line, 1);
  const summary = JSON.parse(jsonl.stderr.trim().split("\n").at(-1)!) as { rows: number; model: string; output: string };
  assert.deepEqual([summary.rows, summary.model, summary.output], [ROWS, "escm2", "<stdout>"]);

  assert.equal(sniffFormat(Buffer.from('{"user": 1}\n')), "jsonl");
  assert.equal(sniffFormat(Buffer.from("\uFEFFuser,item,price\n1,2,3\n")), "csv");
  assert.equal(sniffFormat(Buffer.from("1,0,0,101:5788,109_14:20033\n")), "aliccp");
});

test("/dev/stdout and other special files are written in place, never renamed over; ordinary outputs get their folders", () => {
  const before = lstatSync("/dev/stdout").isSymbolicLink();
  for (const cmd of ["mtl run model.onnx -i test.txt -o /dev/stdout > via-dev-stdout.csv", "mtl run model.onnx -i test.txt -o /dev/stdout | cat > via-pipe.csv"]) {
    const r = sh(cmd);
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    assert.equal(lstatSync("/dev/stdout").isSymbolicLink(), before, `${cmd} left /dev/stdout as it was`);
  }
  assert.equal(predictionLines(readFileSync(join(dir, "via-dev-stdout.csv"), "utf8")).length, ROWS);
  assert.equal(predictionLines(readFileSync(join(dir, "via-pipe.csv"), "utf8")).length, ROWS);
  assert.equal(sh("ls -A | grep -c partial || true").stdout.trim(), "0", "no temporary file left beside the outputs");
  // A named pipe: written in place (a rename would replace the pipe with a file and the reader would wait forever).
  const fifo = sh("mkfifo out.fifo && (cat out.fifo > from-fifo.csv &) && mtl run model.onnx -i test.txt -o out.fifo && sleep 0.2 && test -p out.fifo");
  assert.equal(fifo.code, 0, fifo.stderr);
  assert.equal(predictionLines(readFileSync(join(dir, "from-fifo.csv"), "utf8")).length, ROWS);
  for (const p of ["-", "/dev/stdout", "/dev/null", join(dir, "out.fifo")]) assert.equal(writesInPlace(p), true, p);
  for (const p of [join(dir, "preds.csv"), join(dir, "new", "file.csv")]) assert.equal(writesInPlace(p), false, p);

  const deep = sh("mtl run model.onnx -i test.txt -o out/a/b/preds.jsonl && mtl export --model esmm -o models/x/esmm.onnx");
  assert.equal(deep.code, 0, deep.stderr);
  assert.equal(readFileSync(join(dir, "out/a/b/preds.jsonl"), "utf8").trim().split("\n").length, ROWS);
  assert.ok(existsSync(join(dir, "models/x/esmm.onnx")));
});

test("numeric flags refuse text naming the value; bare mtl says what to do once; every command's help ends with its examples", () => {
  for (const [cmd, flag] of [["mtl train -o r --epochs abc", "--epochs"], ["mtl run model.onnx --batch-size=lots", "--batch-size"], ["mtl demo --rows 1e", "--rows"]] as const) {
    const r = sh(cmd);
    assert.equal(r.code, 1, `${cmd}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^mtl: ${flag} must be a number, got '${cmd.split(/[ =]/).at(-1)}'`));
  }
  const bare = sh("mtl");
  assert.equal(bare.code, 2);
  assert.equal(bare.stderr.match(/mtl --help/g)?.length, 1, bare.stderr);
  for (const command of Object.keys(EXAMPLES)) {
    const r = sh(`mtl ${command} --help`);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    const tail = r.stdout.slice(r.stdout.lastIndexOf("Examples:"));
    assert.ok(r.stdout.includes("Examples:") && r.stdout.trimEnd().endsWith(tail.trimEnd()), `${command} --help ends with examples`);
    const shown = tail.split("\n").filter((l) => /^\s+mtl /.test(l));
    assert.ok(shown.length >= 2 && shown.length <= 3, `${command}: ${shown.length} examples`);
  }
});

test("`-` everywhere: export -o -, train --json, eval --json -, report -o -, data prepare --input - (format from the data), stdin refused for training data", () => {
  const exp = sh("mtl export --model esmm -o - > piped.onnx && mtl export --model esmm -o file.onnx && cmp piped.onnx file.onnx");
  assert.equal(exp.code, 0, exp.stderr);
  assert.match(exp.stderr, /wrote <stdout>/);
  const train = sh("mtl train --model esmm --train synth:rows=2000,seed=3 --batch-size 256 -o run --json");
  assert.equal(train.code, 0, train.stderr);
  const summary = JSON.parse(train.stdout) as { status: string; steps: number; runDir: string };
  assert.equal(summary.status, "completed");
  assert.ok(summary.steps > 0);
  const ev = sh("mtl eval run --data synth:rows=1000,seed=9 --json - > eval.json");
  assert.equal(ev.code, 0, ev.stderr);
  const metrics = JSON.parse(readFileSync(join(dir, "eval.json"), "utf8")) as { rows: number; metrics: { ctr_auc: number } };
  assert.equal(metrics.rows, 1000);
  assert.match(ev.stderr, /CTR AUC/, "the table goes to stderr");
  const rep = sh("mtl report run -o - > report.html");
  assert.equal(rep.code, 0, rep.stderr);
  assert.match(readFileSync(join(dir, "report.html"), "utf8"), /^<!doctype html>/);
  const prep = sh("gzip -c test.txt | mtl data prepare --input - --out piped.shard --json");
  assert.equal(prep.code, 0, prep.stderr);
  assert.equal((JSON.parse(prep.stdout) as { shard: { rows: number } }).shard.rows, ROWS);
  const inspect = sh("mtl data inspect /dev/stdin --json < test.txt");
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.equal((JSON.parse(inspect.stdout) as { rows: number }).rows, ROWS);
  const refused = sh("mtl train --train - -o run2 < test.txt");
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^mtl: training and evaluation data cannot come from standard input \(-\).*mtl data prepare --input -/);
});
