/** The one atomic writer (src/util/atomic.ts): all or nothing, and no temporary file left behind. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { temporaryPath, writeFileAtomic, writeJsonAtomic } from "../src/util/atomic.js";

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
    // A directory that does not exist: one E_IO line naming the file.
    assert.throws(() => writeFileAtomic(join(dir, "no-such-dir", "x.json"), "{}", "JSON"), (e: Error & { code?: string }) => e.code === "E_IO" && /cannot write the JSON: ENOENT/.test(e.message) && (e as Error & { where: { file?: string } }).where.file === join(dir, "no-such-dir", "x.json"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
