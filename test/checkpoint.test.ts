import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TrainingState } from "../src/train/index.js";
import { CHILD_TOTAL, trainTo } from "./train_child.js";

const child = fileURLToPath(new URL("./train_child.js", import.meta.url));

function sameState(a: TrainingState, b: TrainingState): void {
  assert.equal(a.step, b.step);
  assert.deepEqual(a.rng, b.rng);
  assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name)!;
    assert.deepEqual(t.dims, u.dims);
    assert.ok(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength)), `tensor ${name} differs`);
  }
}

test("SIGKILL mid-training, resume from the last checkpoint: bit-identical to never stopping", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-ckpt-"));
  const reference = mkdtempSync(join(tmpdir(), "mtl-ckpt-ref-"));
  try {
    // A child process trains with a checkpoint after every step; we kill it once it reports step 4.
    const killedAt = await new Promise<number>((resolve, reject) => {
      const p = spawn(process.execPath, [child], { env: { ...process.env, MTL_TRAIN_CHILD: dir }, stdio: ["ignore", "pipe", "inherit"] });
      let seen = 0;
      p.stdout.on("data", (chunk: Buffer) => {
        for (const m of chunk.toString().matchAll(/step (\d+)/g)) seen = Number(m[1]);
        if (seen >= 4) p.kill("SIGKILL");
      });
      p.on("exit", (_code, signal) => (signal === "SIGKILL" ? resolve(seen) : reject(new Error(`child exited without being killed (step ${seen})`))));
    });
    assert.ok(killedAt < CHILD_TOTAL, "killed before the end");
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".tmp")).length <= 1, true);
    const resumedFrom = TrainingState.load(join(dir, "state.mtlstate")).step;
    assert.ok(resumedFrom >= 4 && resumedFrom < CHILD_TOTAL, `checkpoint at step ${resumedFrom}`);
    const resumed = await trainTo(dir, CHILD_TOTAL, true);
    const straight = await trainTo(reference, CHILD_TOTAL, false);
    sameState(resumed, straight);
    sameState(TrainingState.load(join(dir, "state.mtlstate")), straight);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(reference, { recursive: true, force: true });
  }
});

test("checkpoints round-trip and damaged ones are refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-state-"));
  try {
    const s = new TrainingState(77);
    s.step = 3;
    s.info = { model: "two-tower" };
    s.set("w", [2, 2], Float32Array.of(1, 2, 3, 4));
    s.set("b", [3], Float64Array.of(0.5, -1, 1e-300));
    const path = join(dir, "s.mtlstate");
    s.save(path);
    const back = TrainingState.load(path);
    sameState(s, back);
    assert.deepEqual(back.info, { model: "two-tower" });
    assert.deepEqual(readdirSync(dir), ["s.mtlstate"], "no temp file left behind");

    const bytes = readFileSync(path);
    writeFileSync(join(dir, "truncated"), bytes.subarray(0, bytes.length - 5));
    assert.throws(() => TrainingState.load(join(dir, "truncated")), (e: Error & { code?: string }) => e.code === "E_CHECKPOINT" && /truncated|past the end/.test(e.message));
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1]! ^= 0xff;
    writeFileSync(join(dir, "flipped"), flipped);
    assert.throws(() => TrainingState.load(join(dir, "flipped")), (e: Error & { code?: string }) => e.code === "E_CHECKPOINT" && /checksum/.test(e.message));
    writeFileSync(join(dir, "junk"), "hello");
    assert.throws(() => TrainingState.load(join(dir, "junk")), (e: Error & { code?: string }) => e.code === "E_CHECKPOINT");
    // A failed save leaves the previous checkpoint as it was (missing folders are created; a file in the way is not).
    assert.throws(() => s.save(join(dir, "junk", "x.mtlstate")));
    sameState(TrainingState.load(path), s);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A version 3 state file as an older mtl wrote it: version 2 (no header checksum, the header at
 * byte 16), or version 1 (also one mulberry32 word in `rng`). The header moves 4 bytes up and is
 * padded with 4 spaces, so every tensor offset stays where it was.
 */
function asOlderVersion(v3: Buffer, version: 1 | 2, word = 0): Buffer {
  const out = Buffer.from(v3);
  const hlen = out.readUInt32LE(12);
  let header = out.toString("utf8", 20, 20 + hlen) + "    ";
  if (version === 1) {
    const rng = /"rng":\[[0-9,]+\]/.exec(header)![0];
    header = header.replace(rng, `"rng":${word}`.padEnd(rng.length, " "));
  }
  out.write(header, 16, "utf8");
  out.writeUInt32LE(hlen + 4, 12);
  out.writeUInt32LE(version, 8);
  return out;
}

test("a version 1 state file still loads to the same digits; resuming a run from one is refused naming the format version", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-state-v1-"));
  try {
    const s = new TrainingState(5);
    s.step = 12;
    s.info = { model: "esmm" };
    s.set("w", [3], Float32Array.of(0.25, -1.5, 3));
    const v3 = join(dir, "v3.mtlstate");
    s.save(v3);
    assert.equal(TrainingState.load(v3).formatVersion, 3);
    const v2 = join(dir, "v2.mtlstate");
    writeFileSync(v2, asOlderVersion(readFileSync(v3), 2));
    const two = TrainingState.load(v2);
    assert.equal(two.formatVersion, 2);
    assert.deepEqual([...two.get("w")!], [0.25, -1.5, 3]);
    assert.deepEqual(two.rng, s.rng);
    const v1 = join(dir, "v1.mtlstate");
    writeFileSync(v1, asOlderVersion(readFileSync(v3), 1, 12345));
    const old = TrainingState.load(v1);
    assert.equal(old.formatVersion, 1);
    assert.equal(old.step, 12);
    assert.deepEqual([...old.get("w")!], [0.25, -1.5, 3]);

    const run = join(dir, "run");
    mkdirSync(run);
    writeFileSync(join(run, "run.json"), JSON.stringify({ model: "esmm", modelConfig: {}, optimizer: { kind: "adam" }, training: {}, data: { train: "synth:rows=100", valid: null }, schemaOverrides: {} }));
    writeFileSync(join(run, "checkpoint.mtlstate"), readFileSync(v1));
    const { trainRun } = await import("../src/flow/run.js");
    const { defaultRunConfig } = await import("../src/flow/config.js");
    await assert.rejects(trainRun({ config: defaultRunConfig(), out: run, resume: true }), (e: Error & { code?: string }) => e.code === "E_CHECKPOINT" && /state format version 1\b.*version 2 on/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
