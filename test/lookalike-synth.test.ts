/** `mtl data synth --kind lookalike`: the layout, the hot/cold split, determinism, and that the built-in schema reads it. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { defaultLookalikeSchema } from "../src/features/lookalike.js";
import { readJsonl } from "../src/data/tabular.js";
import { LOOKALIKE_FILES, LookalikeWorld, writeLookalikeSynth, type LookalikeSynthSummary } from "../src/data/synth-lookalike.js";
import { MtlError } from "../src/errors.js";
import { formatReport, inspectData } from "../src/data/inspect.js";
import { readAll, REPO_ROOT, tempDir } from "./helpers/data.js";

const opts = { seed: 5, campaigns: 40, scale: 0.005, users: 3000 };

test("a look-alike world: Zipf campaign sizes, hot iff candidates >= T·scale, held-out campaigns split into seeds and candidates", async () => {
  const dir = join(tempDir(), "world");
  const progress: number[] = [];
  const s = await writeLookalikeSynth(dir, { ...opts, onProgress: (n) => progress.push(n) });
  assert.equal(s.hotThreshold, 20, "T = 4,000 x 0.005");
  assert.equal(progress.at(-1), s.rows);
  const sizes = s.campaigns.map((c) => c.candidates).sort((a, b) => b - a);
  assert.equal(sizes[0], 500, "the largest campaign has 100,000 x scale candidates");
  assert.equal(sizes[1], 250, "sizes fall as 1 / rank");
  for (const c of s.campaigns) {
    assert.equal(c.group, c.candidates >= 20 ? "hot" : "cold", `aid ${c.aid}`);
    assert.equal(c.stage1Rows + c.stage2Rows, c.candidates);
    if (c.role === "train") assert.equal(c.stage2Rows, 0);
    else assert.ok(c.stage1Rows > 0 && c.stage2Rows > 0 && Math.abs(c.stage1Rows - c.stage2Rows) <= 1, `aid ${c.aid}: half seeds, half candidates`);
    assert.ok(Math.abs(c.audienceWeights.reduce((a, x) => a + x, 0) - 1) < 1e-3);
  }
  assert.ok(s.campaigns.some((c) => c.group === "hot" && c.role === "test") && s.campaigns.some((c) => c.group === "cold" && c.role === "test"));
  assert.deepEqual(JSON.parse(readFileSync(join(dir, LOOKALIKE_FILES.campaigns), "utf8")), JSON.parse(JSON.stringify(s)));
  // every file reads with the built-in schema; rows land where campaigns.json says
  const schema = defaultLookalikeSchema();
  const rowsOf = async (file: string) => {
    const blocks = await readAll(readJsonl(join(dir, file), { schema }));
    const perAid = new Map<number, number>();
    for (const b of blocks) for (const a of b.task!) perAid.set(a, (perAid.get(a) ?? 0) + 1);
    return perAid;
  };
  const want = (pick: (c: LookalikeSynthSummary["campaigns"][number]) => number, role: string, group?: string) =>
    new Map(s.campaigns.filter((c) => c.role === role && (group === undefined || c.group === group)).map((c) => [c.aid, pick(c)]));
  assert.deepEqual(await rowsOf(LOOKALIKE_FILES.train), want((c) => c.stage1Rows, "train"));
  assert.deepEqual(await rowsOf(LOOKALIKE_FILES.hotSeeds), want((c) => c.stage1Rows, "test", "hot"));
  assert.deepEqual(await rowsOf(LOOKALIKE_FILES.hotCandidates), want((c) => c.stage2Rows, "test", "hot"));
  assert.deepEqual(await rowsOf(LOOKALIKE_FILES.coldSeeds), want((c) => c.stage1Rows, "test", "cold"));
  assert.deepEqual(await rowsOf(LOOKALIKE_FILES.coldCandidates), want((c) => c.stage2Rows, "test", "cold"));
  // the padded lists: values past `length` are random pads (the length column is needed to read them)
  const lines = readFileSync(join(dir, LOOKALIKE_FILES.train), "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, number | number[]>);
  assert.equal(lines.length, s.files[LOOKALIKE_FILES.train]);
  const padded = lines.filter((r) => (r.interest1_length as number) < 8);
  assert.ok(padded.length > 10);
  assert.ok(padded.some((r) => new Set((r.interest1 as number[]).slice(r.interest1_length as number)).size > 1), "pads vary");
  assert.ok(lines.every((r) => (r.interest1 as number[]).length === 10 && (r.kw1 as number[]).length === 5 && typeof r.true_p === "number"));
  assert.ok(lines.some((r) => r.label === 0) && lines.some((r) => r.label === 1));
  assert.ok(lines.some((r) => r.house === 0), "raw id 0 occurs (a real value)");
  // inspect speaks of the single label and the tasks
  const report = await inspectData(join(dir, LOOKALIKE_FILES.train), { format: "jsonl", schema });
  assert.equal(report.singleLabel, "label");
  const trainSizes = s.campaigns.filter((c) => c.role === "train").map((c) => c.candidates).sort((a, b) => a - b);
  assert.deepEqual(report.tasks, { column: "aid", count: trainSizes.length, minRows: trainSizes[0], medianRows: trainSizes[Math.floor((trainSizes.length - 1) / 2)], maxRows: trainSizes.at(-1) });
  assert.match(formatReport(report), /\n  label 'label'     [\d,]+ positive .*\n  tasks 'aid'       \d+, rows per task: min \d+/);
  // knowing the campaign is worth something: the campaign-blind truth ranks worse than the true p
  for (const g of ["hot", "cold"] as const) assert.ok(s.oracleAuc[g] > s.campaignBlindAuc[g] + 0.02, `${g}: ${s.oracleAuc[g]} vs ${s.campaignBlindAuc[g]}`);
});

test("the look-alike world is deterministic given the seed, and a seed changes it", async () => {
  const a = join(tempDir(), "a"), b = join(tempDir(), "b"), c = join(tempDir(), "c");
  await writeLookalikeSynth(a, opts);
  await writeLookalikeSynth(b, opts);
  await writeLookalikeSynth(c, { ...opts, seed: 6 });
  for (const f of Object.values(LOOKALIKE_FILES)) assert.equal(readFileSync(join(a, f), "utf8"), readFileSync(join(b, f), "utf8"), f);
  assert.notEqual(readFileSync(join(a, LOOKALIKE_FILES.train), "utf8"), readFileSync(join(c, LOOKALIKE_FILES.train), "utf8"));
});

test("synth never overwrites a world, and bad options are one clear error", async () => {
  const dir = join(tempDir(), "w");
  await writeLookalikeSynth(dir, opts);
  await assert.rejects(writeLookalikeSynth(dir, opts), (e: unknown) => e instanceof MtlError && /already exists/.test(e.message));
  assert.throws(() => new LookalikeWorld({ campaigns: 0 }), (e: unknown) => e instanceof MtlError && /campaigns must be a positive integer/.test(e.message));
  assert.throws(() => new LookalikeWorld({ scale: -1 }), (e: unknown) => e instanceof MtlError && /scale/.test(e.message));
  assert.throws(() => new LookalikeWorld({ seedFraction: 1 }), (e: unknown) => e instanceof MtlError && /seedFraction/.test(e.message));
});

test("mtl data synth --kind lookalike writes the same world and states T", async () => {
  const dir = join(tempDir(), "cli");
  const r = spawnSync(process.execPath, [join(REPO_ROOT, "bin", "mtl.js"), "data", "synth", "--kind", "lookalike", "--out", dir, "--campaigns", "40", "--scale", "0.005", "--users", "3000", "--seed", "5"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /hot campaigns have at least T = 20 candidates \(the paper's T = 4,000 times scale 0\.005\)/);
  assert.match(r.stdout, /train_stage1\.jsonl/);
  const api = join(tempDir(), "api");
  await writeLookalikeSynth(api, opts);
  for (const f of Object.values(LOOKALIKE_FILES)) assert.equal(readFileSync(join(dir, f), "utf8"), readFileSync(join(api, f), "utf8"), f);
  const again = spawnSync(process.execPath, [join(REPO_ROOT, "bin", "mtl.js"), "data", "synth", "--kind", "lookalike", "--out", dir], { encoding: "utf8" });
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already exists/);
  assert.ok(!/\n\s+at /.test(again.stderr), "no stack trace");
});
