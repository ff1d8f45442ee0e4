/**
 * scripts/lookalike-pickle-to-jsonl.py: PaddleRec's pickled pandas frames to JSONL with the standard
 * library only. Fixtures made by scripts/make-lookalike-pickle-fixture.py with pandas (protocols 4
 * and 5); the expected JSONL was written there by pandas, not by the converter.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, tempDir } from "./helpers/data.js";

const SCRIPT = join(REPO_ROOT, "scripts", "lookalike-pickle-to-jsonl.py");
const FIXTURES = join(REPO_ROOT, "fixtures");
const python = spawnSync("python3", ["--version"], { encoding: "utf8" }).status === 0 ? "python3" : null;

function convert(src: string, dst: string) {
  return spawnSync(python!, [SCRIPT, src, dst], { encoding: "utf8" });
}

test("pickled look-alike frames (pandas 2 and 3, protocols 4 and 5) convert to the rows pandas wrote, columns unchanged", (t) => {
  if (!python) return t.skip("no python3 on this machine");
  const want = readFileSync(join(FIXTURES, "lookalike-frame.jsonl"), "utf8");
  const pickles = readdirSync(FIXTURES).filter((f) => /^lookalike-frame.*\.pkl$/.test(f));
  assert.ok(pickles.length >= 4, `fixtures: ${pickles.join(", ")}`);
  for (const p of pickles) {
    const out = join(tempDir(), "out.jsonl");
    const r = convert(join(FIXTURES, p), out);
    assert.equal(r.status, 0, `${p}: ${r.stderr}`);
    assert.match(r.stderr, /6 rows, 30 columns/);
    assert.deepEqual(readFileSync(out, "utf8").split("\n").map((l) => (l ? JSON.parse(l) : l)), want.split("\n").map((l) => (l ? JSON.parse(l) : l)), p);
    const first = JSON.parse(readFileSync(out, "utf8").split("\n")[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(first).slice(0, 4), ["label", "aid", "carrier", "consumptionAbility"], "column order kept");
    assert.ok(!existsSync(`${out}.partial`));
  }
});

test("the restricted unpickler refuses any other global (no code runs), and nothing is overwritten", (t) => {
  if (!python) return t.skip("no python3 on this machine");
  const dir = tempDir();
  const marker = join(dir, "pwned");
  // protocol 0: os.system("touch <marker>")
  const evil = join(dir, "evil.pkl");
  writeFileSync(evil, `cos\nsystem\n(S'touch ${marker}'\ntR.`);
  const r = convert(evil, join(dir, "out.jsonl"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: .*evil\.pkl: the pickle needs os\.system, which this converter does not allow/);
  assert.equal(r.stderr.trim().split("\n").length, 1, "one line, no traceback");
  assert.ok(!existsSync(marker), "the pickle's code did not run");
  assert.ok(!existsSync(join(dir, "out.jsonl")));
  const notPickle = join(dir, "x.pkl");
  writeFileSync(notPickle, "hello");
  const r2 = convert(notPickle, join(dir, "out.jsonl"));
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /^error: .*x\.pkl: not a readable pickled DataFrame/);
  const existing = join(dir, "keep.jsonl");
  writeFileSync(existing, "keep me\n");
  const r3 = convert(join(FIXTURES, "lookalike-frame-pandas3.p4.pkl"), existing);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /already exists/);
  assert.equal(readFileSync(existing, "utf8"), "keep me\n");
});
