/** The one atomic writer (src/util/atomic.ts): all or nothing, and no temporary file left behind. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commitFile, temporaryPath, writeFileAtomic, writeJsonAtomic, writesInPlace } from "../src/util/atomic.js";

test("writeFileAtomic writes strings, bytes and pieces, and leaves no temporary file", () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-atomic-"));
  try {
    const target = join(dir, "out.bin");
    assert.equal(writeFileAtomic(target, "héllo"), 6);
    assert.equal(readFileSync(target, "utf8"), "héllo");
    assert.equal(writeFileAtomic(target, [Uint8Array.of(1, 2), Uint8Array.of(), Uint8Array.of(3)]), 3);
    assert.deepEqual([...readFileSync(target)], [1, 2, 3]);
    writeJsonAtomic(join(dir, "a.json"), { x: 1 });
    assert.equal(readFileSync(join(dir, "a.json"), "utf8"), '{\n  "x": 1\n}\n');
    assert.deepEqual(readdirSync(dir).sort(), ["a.json", "out.bin"]);
    assert.equal(temporaryPath(target), join(dir, `.out.bin.tmp-${process.pid}`), "a hidden sibling in the same directory");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failure mid-write leaves the target as it was and removes the temporary file", () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-atomic-"));
  try {
    const target = join(dir, "state.bin");
    writeFileSync(target, "the old contents");
    function* failing(): Generator<Uint8Array> {
      yield new Uint8Array(1 << 16).fill(7);
      throw new Error("disk on fire");
    }
    assert.throws(() => writeFileAtomic(target, failing(), "checkpoint"), (e: Error & { code?: string }) => e.code === "E_IO" && /cannot write the checkpoint: disk on fire/.test(e.message));
    assert.equal(readFileSync(target, "utf8"), "the old contents");
    assert.deepEqual(readdirSync(dir), ["state.bin"]);
    // Missing folders are created; a folder that cannot be (a file is in the way): one E_IO line naming the file.
    writeFileAtomic(join(dir, "new", "deeper", "x.json"), "{}");
    assert.equal(readFileSync(join(dir, "new", "deeper", "x.json"), "utf8"), "{}");
    assert.throws(() => writeFileAtomic(join(dir, "state.bin", "x.json"), "{}", "JSON"), (e: Error & { code?: string }) => e.code === "E_IO" && /cannot create the output folder .*(ENOTDIR|EEXIST)/.test(e.message) && (e as Error & { where: { file?: string } }).where.file === join(dir, "state.bin", "x.json"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("special files are written in place, never renamed over: /dev/null stays a device, a FIFO stays a FIFO, and commitFile copies into them", () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-atomic-"));
  try {
    assert.equal(writeFileAtomic("/dev/null", "gone"), 4);
    assert.ok(statSync("/dev/null").isCharacterDevice());
    const tmp = temporaryPath("/dev/null", "partial");
    assert.ok(tmp.startsWith(tmpdir()), `the temporary file of a special target is not made in /dev: ${tmp}`);
    writeFileSync(tmp, "streamed");
    commitFile(tmp, "/dev/null");
    assert.ok(statSync("/dev/null").isCharacterDevice());
    assert.equal(existsSync(tmp), false);
    for (const p of ["-", "/dev/stdout", "/dev/null"]) assert.equal(writesInPlace(p), true, p);
    assert.equal(writesInPlace(join(dir, "plain.txt")), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
