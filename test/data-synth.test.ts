import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { writeSynth, synthBatches, SynthWorld } from "../src/data/synth.js";
import { readAliccp } from "../src/data/aliccp.js";
import { inspectData } from "../src/data/inspect.js";
import { Rng } from "../src/util/prng.js";
import { defaultAliccpSchema, parseSchema } from "../src/features/schema.js";
import type { Batch } from "../src/features/batch.js";
import { readAll, REPO_ROOT, tempDir, writeTemp } from "./helpers/data.js";

test("Rng: xoshiro128** streams are deterministic per (seed, stream) and roughly uniform", () => {
  const a = new Rng(42, 1), b = new Rng(42, 1), c = new Rng(42, 2), d = new Rng(43, 1);
  const xs = Array.from({ length: 1000 }, () => a.nextU32());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.nextU32()));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => c.nextU32()));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => d.nextU32()));
  const r = new Rng(1);
  let sum = 0, sq = 0;
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    const z = r.normal();
    sq += z * z;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.005, `mean ${sum / n}`);
  assert.ok(Math.abs(sq / n - 1) < 0.02, `normal variance ${sq / n}`);
});

test("synth: same seed gives the same bytes; another seed other bytes", async () => {
  const dir = tempDir();
  const opts = { rows: 3000, seed: 11, users: 400, items: 600 };
  await writeSynth(join(dir, "a.txt"), opts);
  await writeSynth(join(dir, "b.txt"), opts);
  await writeSynth(join(dir, "c.txt"), { ...opts, seed: 12 });
  assert.ok(readFileSync(join(dir, "a.txt")).equals(readFileSync(join(dir, "b.txt"))));
  assert.ok(readFileSync(join(dir, "a.txt.truth.csv")).equals(readFileSync(join(dir, "b.txt.truth.csv"))));
  assert.ok(!readFileSync(join(dir, "a.txt")).equals(readFileSync(join(dir, "c.txt"))));
});

test("synth: the file read back (with its truth sidecar) equals the in-process generator's batches", async () => {
  const dir = tempDir();
  const opts = { rows: 5000, seed: 3, users: 700, items: 900, bias: 1.5 };
  const file = join(dir, "s.txt");
  await writeSynth(file, opts);
  const world = new SynthWorld(opts);
  const fromFile = await readAll(readAliccp(file, { schema: world.schema(), blockRows: 2048 }));
  const inProcess = [...synthBatches({ ...opts, batchSize: 2048 })];
  const strip = (bs: Batch[]) => bs.map((b) => ({ ...b, rawIdCounts: undefined, lines: undefined }));
  assert.deepEqual(strip(fromFile), strip(inProcess));
  // every id fits the default Ali-CCP vocabulary too
  const dflt = await readAll(readAliccp(file));
  assert.equal(dflt.reduce((a, b) => a + b.size, 0), 5000);
});

test("synth: labels follow the truth, conversions only where clicked, and --bias makes the clicked CVR biased", async () => {
  const stats = (bias: number) => {
    let n = 0, clicks = 0, buys = 0, ctr = 0, cvr = 0, cvrClicked = 0, potential = 0;
    for (const b of synthBatches({ rows: 40_000, seed: 4, bias, users: 3000, items: 4000 })) {
      for (let i = 0; i < b.size; i++) {
        const t = b.truth!;
        assert.equal(b.conversion[i], b.click[i]! & t.conversion[i]!, "buy = click AND potential conversion");
        n++; clicks += b.click[i]!; buys += b.conversion[i]!; ctr += t.ctr[i]!; cvr += t.cvr[i]!; potential += t.conversion[i]!;
        if (b.click[i]) cvrClicked += t.cvr[i]!;
      }
    }
    return { n, clickRate: clicks / n, meanCtr: ctr / n, potentialRate: potential / n, meanCvr: cvr / n, meanCvrClicked: cvrClicked / clicks, observedCvr: buys / clicks };
  };
  for (const bias of [0, 2]) {
    const s = stats(bias);
    // Bernoulli draws agree with the truth within 5 binomial standard deviations
    assert.ok(Math.abs(s.clickRate - s.meanCtr) < 5 * Math.sqrt(s.meanCtr / s.n), JSON.stringify(s));
    assert.ok(Math.abs(s.potentialRate - s.meanCvr) < 5 * Math.sqrt(s.meanCvr / s.n), JSON.stringify(s));
    // and the observed CVR among clicks estimates the clicked impressions' mean true CVR
    assert.ok(Math.abs(s.observedCvr - s.meanCvrClicked) < 5 * Math.sqrt(s.meanCvrClicked / (s.clickRate * s.n)), JSON.stringify(s));
    if (bias === 0) assert.ok(Math.abs(s.meanCvrClicked / s.meanCvr - 1) < 0.1, `no bias: ${JSON.stringify(s)}`);
    else assert.ok(s.meanCvrClicked / s.meanCvr > 1.5, `bias 2: ${JSON.stringify(s)}`);
  }
});

test("inspect reports rates, the selection bias, coverage, occupancy and rejected rows", async () => {
  const dir = tempDir();
  const file = join(dir, "s.txt");
  await writeSynth(file, { rows: 2000, seed: 1, bias: 2, users: 300, items: 300 });
  const rep = await inspectData(file);
  assert.equal(rep.rows, 2000);
  assert.ok(rep.truth && rep.truth.meanTrueCvrClicked > rep.truth.meanTrueCvrAll);
  assert.equal(rep.features.length, 23);
  assert.ok(rep.features.every((f) => f.coverage === 1));
  assert.equal(rep.features.find((f) => f.name === "101")!.histogram[1], 2000);
  assert.equal(rep.tables[0]!.rows, 737_947);
  const bad = writeTemp(dir, "bad.txt", "1,1,0,101:1,150_14:2,150_14:3,150_14:4,150_14:5\n2,0,1,101:2\n3,x,0,101:1\n4,0,0,101:3,777:1\n");
  const r2 = await inspectData(bad);
  assert.equal(r2.rows, 2);
  assert.deepEqual(r2.rejected.map((x) => [x.reason, x.count, x.firstLine]), [["click0_buy1", 1, 2], ["bad_label", 1, 3]]);
  assert.deepEqual(r2.unknownFields, [{ field: "777", tokens: 1 }]);
  const h = r2.features.find((f) => f.name === "150_14")!;
  assert.deepEqual(h.histogram.slice(0, 5), [1, 0, 0, 0, 1]);
  assert.equal(h.truncatedRows, 0.5);
  assert.equal(r2.tables[0]!.idsSeen, 4); // kept rows store ids {1, 2, 3, 4} (150_14:5 is past max_len 3)
});

test("CLI: synth -> prepare -> inspect end to end, and a bad row prints one line and exits 1", () => {
  const dir = tempDir();
  const mtl = join(REPO_ROOT, "bin", "mtl.js");
  const run = (...args: string[]) => spawnSync(process.execPath, [mtl, ...args], { encoding: "utf8" });
  const s = run("data", "synth", "--out", join(dir, "s.txt"), "--rows", "1500", "--seed", "2", "--users", "200", "--items", "200");
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /mean true CVR: all impressions [\d.]+%, clicked impressions [\d.]+%/);
  const p = run("data", "prepare", "--input", join(dir, "s.txt"), "--out", join(dir, "s.shard"));
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /wrote .*s\.shard: 1,500 rows .*with ground truth/);
  const i = run("data", "inspect", join(dir, "s.shard"), "--json");
  assert.equal(i.status, 0, i.stderr);
  assert.equal(JSON.parse(i.stdout).rows, 1500);
  const bad = writeTemp(dir, "bad.txt", "1,0,0,101:1\n2,0,0,101:-4\n");
  const b = run("data", "prepare", "--input", bad, "--out", join(dir, "b.shard"));
  assert.equal(b.status, 1);
  assert.equal(b.stderr.trim().split("\n").length, 1, b.stderr);
  assert.match(b.stderr, /^mtl: .*bad\.txt:2: 101: non-integer or negative id: '-4'/);
  const sc = run("data", "schema");
  assert.equal(sc.status, 0, sc.stderr);
  assert.deepEqual(parseSchema(sc.stdout), defaultAliccpSchema());
  const nt = run("data", "prepare", "--input", join(dir, "s.txt"), "--out", join(dir, "nt.shard"), "--truth", "none");
  assert.equal(nt.status, 0, nt.stderr);
  assert.doesNotMatch(nt.stdout, /with ground truth/);
  // Missing output folders are created; a file in the way is one line.
  const deep = run("data", "synth", "--out", join(dir, "new", "dir", "s.txt"), "--rows", "5");
  assert.equal(deep.status, 0, deep.stderr);
  const blocked = run("data", "synth", "--out", join(dir, "s.txt", "x.txt"), "--rows", "5");
  assert.equal(blocked.status, 1);
  assert.match(blocked.stderr, /^mtl: .*cannot create the output folder .*(ENOTDIR|EEXIST)/);
  const k = run("data", "prepare", "--input", bad, "--out", join(dir, "b.shard"), "--skip-bad");
  assert.equal(k.status, 0, k.stderr);
  assert.match(k.stdout, /1 rows[\s\S]*bad_id: 1 \(first: .*bad\.txt:2/);
});

test("synth presets: the observed rates are calibrated at every selection bias, the clicked impressions' true CVR pulls away as bias grows", () => {
  const rates = (bias: number, preset: "dense" | "sparse") => {
    let n = 0, clicks = 0, buys = 0, cvrAll = 0, cvrClicked = 0;
    for (const b of synthBatches({ rows: 20_000, seed: 3, bias, preset, users: 2000, items: 3000 })) {
      for (let r = 0; r < b.size; r++) {
        n++;
        clicks += b.click[r]!;
        buys += b.conversion[r]!;
        cvrAll += b.truth!.cvr[r]!;
        if (b.click[r]) cvrClicked += b.truth!.cvr[r]!;
      }
    }
    return { ctr: clicks / n, cvr: buys / clicks, gap: cvrClicked / clicks / (cvrAll / n) };
  };
  for (const bias of [0, 4]) {
    const d = rates(bias, "dense");
    assert.ok(Math.abs(d.ctr - 0.1) < 0.01, `dense bias ${bias}: CTR ${d.ctr}`);
    assert.ok(Math.abs(d.cvr - 0.2) < 0.03, `dense bias ${bias}: conversions per click ${d.cvr}`);
    const s = rates(bias, "sparse");
    assert.ok(Math.abs(s.cvr - 0.05) < 0.015, `sparse bias ${bias}: conversions per click ${s.cvr}`);
  }
  assert.ok(rates(0, "dense").gap < 1.2, "bias 0 is the control: clicked impressions convert like the space");
  assert.ok(rates(4, "dense").gap > 3, "bias 4: clicked impressions convert several times as often");
  // The Ali-CCP preset's intercepts put the click rate at its 3.9%.
  const w = new SynthWorld({ seed: 3, preset: "aliccp", users: 2000, items: 3000 });
  assert.ok(w.ctrBias < -3.5 && w.cvrBias < w.ctrBias, `aliccp intercepts ${w.ctrBias}, ${w.cvrBias}`);
});

test("synth: defaults keep their intercepts; explicit intercepts win over a preset; another stream draws other impressions of the same world", () => {
  const plain = new SynthWorld({ seed: 1, users: 300, items: 400 });
  assert.equal(plain.ctrBias, -2.9);
  assert.equal(plain.cvrBias, -2.5);
  const mixed = new SynthWorld({ seed: 1, users: 300, items: 400, preset: "dense", cvrBias: -1 });
  assert.equal(mixed.cvrBias, -1);
  assert.notEqual(mixed.ctrBias, -2.9);
  const opts = { rows: 500, seed: 1, users: 300, items: 400 };
  const a = [...synthBatches(opts)][0]!, two = [...synthBatches({ ...opts, stream: 2 })][0]!, three = [...synthBatches({ ...opts, stream: 3 })][0]!;
  assert.deepEqual(two.truth!.cvr, a.truth!.cvr);
  assert.notDeepEqual(three.truth!.cvr, a.truth!.cvr);
  assert.throws(() => new SynthWorld({ stream: 1 }), /stream must be an integer in 2\.\.999/);
  assert.throws(() => new SynthWorld({ preset: "criteo" as "dense" }), /unknown synth preset 'criteo'/);
  assert.throws(() => new SynthWorld({ ctr: 1.5 }), /synth ctr must be a rate in \(0, 1\)/);
});

test("synth specs name a preset, rates and a stream; a bad preset names the choices", async () => {
  const { parseSynthSpec } = await import("../src/data/source.js");
  assert.deepEqual(parseSynthSpec("synth:rows=10,preset=aliccp,stream=3,ctr=0.05"), { rows: 10, preset: "aliccp", stream: 3, ctr: 0.05 });
  assert.throws(() => parseSynthSpec("synth:rows=10,preset=criteo"), (e: Error & { hint?: string }) => /bad synth spec/.test(e.message) && /aliccp, dense, sparse/.test(String(e.hint)));
});
