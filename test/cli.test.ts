/** `mtl` end to end: help, version, inspect on good and bad files. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Graph, ops, tensor, encodeGraph, VERSION } from "../src/index.js";

const bin = fileURLToPath(new URL("../../bin/mtl.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "mtl-cli-"));

function mtl(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function modelFile(): { path: string; bytes: Uint8Array } {
  const g = new Graph({ name: "two_tower" });
  g.metadata.set("mtl.model", "test");
  const ids = g.input("ids", "int64", ["batch", 3]);
  const table = g.initializer("table", tensor("float32", [100, 4], new Float32Array(400)));
  const w = g.initializer("w", tensor("float32", [4, 1], new Float32Array(4)));
  g.output(ops.Sigmoid(ops.Gemm(ops.ReduceSum(ops.Gather(table, ids), { axes: [1], keepdims: 0 }), w)), "p_ctr");
  const bytes = encodeGraph(g);
  const path = join(dir, "model.onnx");
  writeFileSync(path, bytes);
  return { path, bytes };
}

test("--help lists inspect; --version prints the version", () => {
  const help = mtl("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /mtl inspect <model>/);
  const v = mtl("--version");
  assert.equal(v.stdout.trim(), VERSION);
});

test("inspect prints the summary of a builder-made file", () => {
  const { path } = modelFile();
  const r = mtl("inspect", path);
  assert.equal(r.code, 0, r.stderr);
  for (const want of [/IR version\s+8/, /opsets\s+ai\.onnx 17/, /producer\s+mtl /, /ids\s+int64\s+\[batch, 3\]/, /p_ctr\s+float32\s+\[batch, 1\]/,
    /parameters\s+404 in 2 initializers \(1\.62 kB\)/, /Gather\s+1/, /mtl\.model\s+test/]) {
    assert.match(r.stdout, want);
  }
  const json = JSON.parse(mtl("inspect", path, "--json").stdout) as { parameterCount: number; opCounts: Record<string, number> };
  assert.equal(json.parameterCount, 404);
  assert.equal(json.opCounts.ReduceSum, 1);
});

function assertOneLineError(args: string[], pattern: RegExp) {
  const r = mtl(...args);
  assert.equal(r.code, 1, `exit code for ${args.join(" ")}`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

test("inspect on a truncated, non-ONNX, empty or missing file: one line naming the file, exit 1", () => {
  const { bytes } = modelFile();
  const truncated = join(dir, "truncated.onnx");
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  assertOneLineError(["inspect", truncated], /^mtl: .*truncated\.onnx: not a valid ONNX model: protobuf decoding failed/);
  const text = join(dir, "notes.txt");
  writeFileSync(text, "hello, this is not a model\n");
  assertOneLineError(["inspect", text], /^mtl: .*notes\.txt: not (a valid ONNX model|an ONNX model)/);
  const empty = join(dir, "empty.onnx");
  writeFileSync(empty, "");
  assertOneLineError(["inspect", empty], /^mtl: .*empty\.onnx: empty file \(0 bytes\), not an ONNX model$/);
  assertOneLineError(["inspect", join(dir, "missing.onnx")], /^mtl: .*missing\.onnx: cannot read the model: no such file$/);
  assertOneLineError(["inspect", dir], /is a directory/);
});

test("an unknown command is a usage error (exit 2)", () => {
  const r = mtl("frobnicate");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Unknown argument|Unknown command/i);
});
