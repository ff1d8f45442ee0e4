#!/usr/bin/env node
/**
 * The counterfactual benchmark on the synthetic funnel (docs/results.md): the ESMM and ESCM² papers'
 * claims measured against each impression's true CVR. Protocol in src/flow/benchmark.ts: train on
 * stream 2 of a world with early stopping on validation CTCVR AUC, the learning rate chosen per
 * model from a grid on validation (on a tuning world, seed 0, never a reported seed), scored once on
 * test impressions from stream 3. Phases:
 *   tune    every variant × --grid on the tuning cell (--tune-preset, --tune-bias, seed 0)
 *   claim1  naive and esmm on every --presets × --bias × --seeds cell
 *   peers   esmm, shared-bottom, mmoe, ple, aitm on the peer cell (--peer-preset, --peer-bias)
 *   claim2  ESCM2 (IPW, DR) and ESMM on ESMM's towers and on the MMoE backbone, every cell
 * Every run's result is a JSON file in --cache (its name is the run's full key): a rerun skips what
 * is there, so an interrupted sweep continues, and `--shard i/n` splits the runs between processes
 * sharing one cache. Prints the tables (markdown) from the cache. Build first (npm run build).
 *
 *   node scripts/results-funnel.mjs [--impressions 30000] [--test-impressions 20000] [--seeds 1,2,3,4,5]
 *     [--presets dense,sparse] [--bias 0,1,2,4] [--grid 0.001,0.003,0.01,0.03] [--phases tune,claim1,peers,claim2] [--mmoe-presets dense,sparse]
 *     [--cache results-cache] [--shard 0/1] [--tables-only] [--json results-funnel.json]
 *
 * On a real log (Ali-CCP's files, prepared with `mtl data prepare`): the same protocol — the grid
 * chosen per model on the training file's validation split, early stopping, then the test file —
 * on the metrics a log can show (no true CVR: no entire-space CVR AUC, no CVR bias):
 *
 *   node scripts/results-funnel.mjs --train aliccp-train.shard --test aliccp-test.shard [--seeds 1,2,3] [--grid ...]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { BENCHMARK_BUDGET, cellData, chooseLearningRate, trainAndTest } from "../dist/src/flow/benchmark.js";
import { parseSynthSpec } from "../dist/src/data/source.js";
import { synthBatches } from "../dist/src/data/synth.js";

const { values } = parseArgs({
  options: {
    impressions: { type: "string", default: "30000" },
    "test-impressions": { type: "string", default: "20000" },
    seeds: { type: "string", default: "1,2,3,4,5" },
    presets: { type: "string", default: "dense,sparse" },
    bias: { type: "string", default: "0,1,2,4" },
    grid: { type: "string", default: "0.001,0.003,0.01,0.03" },
    "tune-preset": { type: "string", default: "dense" },
    "tune-bias": { type: "string", default: "2" },
    "peer-preset": { type: "string", default: "dense" },
    "peer-bias": { type: "string", default: "2" },
    phases: { type: "string", default: "tune,claim1,peers,claim2" },
    // The MMoE half of claim 2 costs 3 runs a cell: a shorter sweep can leave a preset out.
    "mmoe-presets": { type: "string", default: "dense,sparse" },
    cache: { type: "string", default: "results-cache" },
    shard: { type: "string", default: "0/1" },
    "tables-only": { type: "boolean", default: false },
    json: { type: "string", default: "" },
    train: { type: "string" },
    test: { type: "string" },
  },
});
const list = (s) => s.split(",").filter(Boolean);
const impressions = Number(values.impressions), testImpressions = Number(values["test-impressions"]);
const seeds = list(values.seeds).map(Number), presets = list(values.presets), biases = list(values.bias).map(Number);
const grid = list(values.grid).map(Number);
const phases = new Set(list(values.phases));
const mmoePresets = list(values["mmoe-presets"]);
const [shardIndex, shardCount] = values.shard.split("/").map(Number);
const budget = BENCHMARK_BUDGET;

/** Variants: a name, the registered model and its settings. */
const VARIANTS = {
  naive: { model: "naive", modelConfig: {}, label: "naive (CVR on clicks)" },
  esmm: { model: "esmm", modelConfig: {}, label: "ESMM (towers)" },
  "escm2-ipw": { model: "escm2", modelConfig: { backbone: "towers", counterfactualMode: "IPW" }, label: "ESCM2-IPW (towers)" },
  "escm2-dr": { model: "escm2", modelConfig: { backbone: "towers", counterfactualMode: "DR" }, label: "ESCM2-DR (towers)" },
  // ESMM's objective on ESCM2's MMoE backbone: ESCM2 with no counterfactual risk and the full CTCVR weight.
  "esmm-mmoe": { model: "escm2", modelConfig: { backbone: "mmoe", counterfactualMode: "IPW", counterfactualWeight: 0, globalWeight: 1 }, label: "ESMM (MMoE)" },
  "escm2-ipw-mmoe": { model: "escm2", modelConfig: { backbone: "mmoe", counterfactualMode: "IPW" }, label: "ESCM2-IPW (MMoE)" },
  "escm2-dr-mmoe": { model: "escm2", modelConfig: { backbone: "mmoe", counterfactualMode: "DR" }, label: "ESCM2-DR (MMoE)" },
  "shared-bottom": { model: "shared-bottom", modelConfig: {}, label: "Shared-Bottom" },
  mmoe: { model: "mmoe", modelConfig: {}, label: "MMoE" },
  ple: { model: "ple", modelConfig: {}, label: "PLE" },
  aitm: { model: "aitm", modelConfig: {}, label: "AITM" },
};
const CLAIM1 = ["naive", "esmm"];
const PEERS = ["esmm", "shared-bottom", "mmoe", "ple", "aitm"];
const CLAIM2_TOWERS = ["esmm", "escm2-ipw", "escm2-dr"];
const CLAIM2_MMOE = ["esmm-mmoe", "escm2-ipw-mmoe", "escm2-dr-mmoe"];
const CLAIM2 = [...CLAIM2_TOWERS, ...CLAIM2_MMOE];
const tuned = [...new Set([...CLAIM1, ...PEERS, ...CLAIM2])];

const sizeKey = `n${impressions}-t${testImpressions}-e${budget.epochs}-p${budget.patience}-b${budget.batchSize}-v${budget.validFraction}`;
const tuneCell = { preset: values["tune-preset"], bias: Number(values["tune-bias"]), seed: 0, impressions, testImpressions };
const keyOf = (phase, variant, cell, lr) => `${phase}--${variant}--${cell.preset}-bias${cell.bias}-seed${cell.seed}--lr${lr}--${sizeKey}`;
mkdirSync(values.cache, { recursive: true });
const cachePath = (key) => join(values.cache, `${key}.json`);
const cached = (key) => (existsSync(cachePath(key)) ? JSON.parse(readFileSync(cachePath(key), "utf8")) : null);

const work = mkdtempSync(join(tmpdir(), "mtl-results-"));
let ran = 0;
/** Which shard trains a run: a hash of its key, so every process agrees whatever its cache holds. */
const shardOf = (key) => [...key].reduce((h, ch) => (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0, 7) % shardCount;
const started = Date.now();
/** The run's result: from the cache, or trained now when this shard owns it (null: another shard's, not there yet). */
async function run(phase, variant, cell, lr, { test = true } = {}) {
  const key = keyOf(phase, variant, cell, lr);
  const hit = cached(key);
  if (hit || values["tables-only"]) return hit;
  if (shardOf(key) !== shardIndex) return null;
  const v = VARIANTS[variant];
  const t0 = Date.now();
  const r = await trainAndTest({ model: v.model, modelConfig: v.modelConfig, cell, lr, budget, test, out: join(work, key), cleanup: true });
  const record = { key, phase, variant, cell, lr, ...r };
  writeFileSync(cachePath(key) + ".partial", JSON.stringify(record, null, 1) + "\n");
  renameSync(cachePath(key) + ".partial", cachePath(key));
  ran++;
  const m = r.test ?? r.valid;
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${key}: ${r.epochs} epochs (best ${r.bestEpoch}), ${test ? "test" : "valid"} ctcvr ${m.ctcvr_auc?.toFixed(4)} cvr_entire ${m.cvr_auc_entire?.toFixed(4)} bias ${m.cvr_bias?.toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  return record;
}
/** Wait for another shard's result (a shared cache), unless printing tables only. */
async function await_(phase, variant, cell, lr, opts) {
  for (;;) {
    const r = await run(phase, variant, cell, lr, opts);
    if (r || values["tables-only"]) return r;
    if (!existsSync(cachePath(keyOf(phase, variant, cell, lr)))) await sleep(5000);
  }
}

function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
function sd(xs) {
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)) : 0;
}
function signed(x, d = 4) {
  return `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(d)}`;
}
const chosenLr = {};
if (values.train !== undefined || values.test !== undefined) {
  if (!values.train || !values.test) {
    process.stderr.write("results-funnel: a real log needs both --train and --test\n");
    process.exit(2);
  }
  await realLog(values.train, values.test);
  process.exit(0);
}

/** The protocol on a real log: every variant, its rate chosen on the training file's validation split, scored on the test file. */
async function realLog(train, test) {
  const data = { train, test };
  const tag = `real-${[train, test].map((f) => f.replace(/[^A-Za-z0-9.-]+/g, "_")).join("--")}`;
  const cellOf = (seed) => ({ preset: tag, bias: 0, seed, impressions: 0, testImpressions: 0 });
  const work = mkdtempSync(join(tmpdir(), "mtl-results-"));
  const runReal = async (variant, seed, lr, withTest) => {
    const key = `${tag}--${variant}--seed${seed}--lr${lr}--${withTest ? "test" : "valid"}`;
    const hit = cached(key);
    if (hit) return hit;
    const v = VARIANTS[variant];
    const r = await trainAndTest({ model: v.model, modelConfig: v.modelConfig, cell: cellOf(seed), data, lr, budget, test: withTest, out: join(work, key), cleanup: true });
    writeFileSync(cachePath(key), JSON.stringify({ key, variant, seed, lr, ...r }, null, 1) + "\n");
    process.stderr.write(`${key}: ${r.epochs} epochs, ctcvr ${(r.test ?? r.valid).ctcvr_auc?.toFixed(4)}\n`);
    return r;
  };
  const rows = [];
  try {
    for (const v of tuned) {
      const tunedRuns = [];
      for (const lr of grid) tunedRuns.push(await runReal(v, 0, lr, false));
      const lr = chooseLearningRate(tunedRuns);
      const runs = [];
      for (const seed of seeds) runs.push(await runReal(v, seed, lr, true));
      rows.push({ v, lr, runs });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const f = (runs, k) => (runs.some((r) => r.test[k] === null) ? "—" : `${mean(runs.map((r) => r.test[k])).toFixed(4)} ± ${sd(runs.map((r) => r.test[k])).toFixed(4)}`);
  const esmm = rows.find((r) => r.v === "esmm");
  const lines = [`Test file ${test}, trained on ${train} (${budget.validFraction * 100}% validation split), seeds ${seeds.join(",")}: mean ± std over seeds.\n`,
    "| model | lr | CTR AUC | CVR AUC (clicked) | CTCVR AUC | Δ CTCVR AUC vs ESMM (seeds higher) |", "|---|---|---|---|---|---|"];
  for (const { v, lr, runs } of rows) {
    const ds = runs.map((r, i) => r.test.ctcvr_auc - esmm.runs[i].test.ctcvr_auc);
    lines.push(`| ${VARIANTS[v].label} | ${lr} | ${f(runs, "ctr_auc")} | ${f(runs, "cvr_auc")} | ${f(runs, "ctcvr_auc")} | ${v === "esmm" ? "—" : `${signed(mean(ds))} ± ${sd(ds).toFixed(4)} (${ds.filter((d) => d > 0).length}/${ds.length})`} |`);
  }
  process.stdout.write(lines.join("\n") + "\n");
}
const cells = [];
for (const preset of presets) for (const bias of biases) for (const seed of seeds) cells.push({ preset, bias, seed, impressions, testImpressions });
const peerCells = seeds.map((seed) => ({ preset: values["peer-preset"], bias: Number(values["peer-bias"]), seed, impressions, testImpressions }));
try {
  if (phases.has("tune")) {
    for (const v of tuned) for (const lr of grid) await run("tune", v, tuneCell, lr, { test: false });
    for (const v of tuned) {
      const runs = [];
      for (const lr of grid) runs.push(await await_("tune", v, tuneCell, lr, { test: false }));
      chosenLr[v] = runs.every(Boolean) ? chooseLearningRate(runs) : null;
    }
  }
  const lrOf = (v) => chosenLr[v] ?? 0.001;
  if (phases.has("claim1")) for (const c of cells) for (const v of CLAIM1) await run("sweep", v, c, lrOf(v));
  if (phases.has("peers")) for (const c of peerCells) for (const v of PEERS) await run("sweep", v, c, lrOf(v));
  // ESCM2's risks on ESMM's towers first (ESMM's runs are claim 1's), then the MMoE backbone.
  if (phases.has("claim2")) {
    for (const c of cells) for (const v of CLAIM2_TOWERS) await run("sweep", v, c, lrOf(v));
    for (const c of cells.filter((c) => mmoePresets.includes(c.preset))) for (const v of CLAIM2_MMOE) await run("sweep", v, c, lrOf(v));
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

// ---------------------------------------------------------------- tables from the cache
const result = (v, c) => cached(keyOf("sweep", v, c, chosenLr[v] ?? 0.001));
/** Paired by seed: mean ± std of metric(a) − metric(b), and the seeds where the difference favours a. */
function paired(a, b, preset, bias, metric, better) {
  const ds = [];
  for (const seed of seeds) {
    const c = { preset, bias, seed, impressions, testImpressions };
    const ra = result(a, c), rb = result(b, c);
    if (ra && rb) ds.push(metric(ra.test) - metric(rb.test));
  }
  if (!ds.length) return "—";
  const wins = ds.filter((d) => better(d)).length;
  return `${signed(mean(ds))} ± ${sd(ds).toFixed(4)} (${wins}/${ds.length})`;
}
const auc = (m) => m.cvr_auc_entire;
const absBias = (m) => Math.abs(m.cvr_bias);
const up = (d) => d > 0, down = (d) => d < 0;
const out = [];
out.push(`Sizes: ${impressions.toLocaleString("en-US")} training impressions per world (${budget.validFraction * 100}% of them the validation split), ${testImpressions.toLocaleString("en-US")} test impressions (stream 3); up to ${budget.epochs} epochs, early stopping after ${budget.patience} epoch without a better validation CTCVR AUC; batch ${budget.batchSize}, Adam.`);
if (Object.keys(chosenLr).length) {
  out.push(`\n**Learning rates chosen on validation** (tuning world ${tuneCell.preset}, bias ${tuneCell.bias}, seed 0; grid ${grid.join(", ")}; validation CTCVR AUC per rate):\n`);
  out.push(`| variant | ${grid.map((g) => `lr ${g}`).join(" | ")} | chosen |`, `|---|${grid.map(() => "---").join("|")}|---|`);
  for (const v of tuned) out.push(`| ${VARIANTS[v].label} | ${grid.map((lr) => cached(keyOf("tune", v, tuneCell, lr))?.valid.ctcvr_auc?.toFixed(4) ?? "—").join(" | ")} | ${chosenLr[v] ?? "—"} |`);
}
const claimTable = (title, pairs) => {
  out.push(`\n**${title}** (paired by seed: mean ± std over seeds of the difference, and in parentheses the seeds where it favours the first model)\n`);
  out.push("| world | bias | comparison | Δ CVR AUC (entire, true) | Δ \\|CVR bias\\| | Δ CTCVR AUC |", "|---|---|---|---|---|---|");
  for (const preset of presets) for (const bias of biases) for (const [a, b] of pairs.filter(([a]) => !a.endsWith("-mmoe") || mmoePresets.includes(preset)))
    out.push(`| ${preset} | ${bias} | ${VARIANTS[a].label} − ${VARIANTS[b].label} | ${paired(a, b, preset, bias, auc, up)} | ${paired(a, b, preset, bias, absBias, down)} | ${paired(a, b, preset, bias, (m) => m.ctcvr_auc, up)} |`);
};
const levelsTable = (title, variants) => {
  out.push(`\n**${title}** (test, mean ± std over seeds)\n`);
  out.push("| world | bias | model | CVR AUC (entire, true) | CVR bias | CTCVR AUC | epochs (best) |", "|---|---|---|---|---|---|---|");
  for (const preset of presets) for (const bias of biases) for (const v of variants) {
    const rs = seeds.map((seed) => result(v, { preset, bias, seed, impressions, testImpressions })).filter(Boolean);
    if (!rs.length) continue;
    const f = (g, s = false) => `${s ? signed(mean(rs.map(g))) : mean(rs.map(g)).toFixed(4)} ± ${sd(rs.map(g)).toFixed(4)}`;
    out.push(`| ${preset} | ${bias} | ${VARIANTS[v].label} | ${f((r) => r.test.cvr_auc_entire)} | ${f((r) => r.test.cvr_bias, true)} | ${f((r) => r.test.ctcvr_auc)} | ${mean(rs.map((r) => r.epochs)).toFixed(1)} (${mean(rs.map((r) => r.bestEpoch)).toFixed(1)}) |`);
  }
};
if (phases.has("claim1")) {
  levelsTable("Claim 1 — naive vs ESMM, levels", CLAIM1);
  claimTable("Claim 1 — ESMM vs naive", [["esmm", "naive"]]);
}
if (phases.has("claim2")) {
  levelsTable("Claim 2 — ESCM2 vs ESMM, levels", CLAIM2);
  claimTable("Claim 2 — ESCM2 vs ESMM on each backbone", [["escm2-ipw", "esmm"], ["escm2-dr", "esmm"], ["escm2-ipw-mmoe", "esmm-mmoe"], ["escm2-dr-mmoe", "esmm-mmoe"]]);
}
if (phases.has("peers")) {
  const pc = peerCells[0];
  out.push(`\n**Peers on CTCVR AUC** (${pc.preset}, bias ${pc.bias}; test; paired by seed against ESMM: mean ± std of the difference, seeds where the peer is higher)\n`);
  out.push("| model | CTCVR AUC | Δ vs ESMM | CTR AUC | CVR AUC (entire, true) |", "|---|---|---|---|---|");
  for (const v of PEERS) {
    const rs = peerCells.map((c) => [result(v, c), result("esmm", c)]).filter(([a, b]) => a && b);
    if (!rs.length) continue;
    const f = (g) => `${mean(rs.map(([a]) => g(a.test))).toFixed(4)} ± ${sd(rs.map(([a]) => g(a.test))).toFixed(4)}`;
    const ds = rs.map(([a, b]) => a.test.ctcvr_auc - b.test.ctcvr_auc);
    out.push(`| ${VARIANTS[v].label} | ${f((m) => m.ctcvr_auc)} | ${v === "esmm" ? "—" : `${signed(mean(ds))} ± ${sd(ds).toFixed(4)} (${ds.filter(up).length}/${ds.length})`} | ${f((m) => m.ctr_auc)} | ${f((m) => m.cvr_auc_entire)} |`);
  }
}
// The measurement behind the bias claims: CVR bias by decile of true click propensity, mean over seeds.
if (phases.has("claim2")) {
  for (const bias of biases.filter((b) => b > 0).slice(-1)) {
    const preset = presets[0];
    out.push(`\n**CVR bias by true-CTR decile** (${preset}, bias ${bias}; test; mean over seeds of mean pCVR − mean true CVR in each decile, lowest propensity first)\n`);
    const vs = ["naive", "esmm", "escm2-ipw", "escm2-dr"];
    out.push(`| decile | mean true CTR | mean true CVR | ${vs.map((v) => VARIANTS[v].label).join(" | ")} |`, `|---|---|---|${vs.map(() => "---").join("|")}|`);
    const rs = Object.fromEntries(vs.map((v) => [v, seeds.map((seed) => result(v, { preset, bias, seed, impressions, testImpressions })).filter(Boolean)]));
    const any = rs["esmm"]?.[0] ?? rs["naive"]?.[0];
    if (any) for (let k = 0; k < 10; k++) {
      const base = rs["esmm"].length ? rs["esmm"] : rs["naive"];
      out.push(`| ${k + 1} | ${mean(base.map((r) => r.testByPropensity[k].mean_true_ctr)).toFixed(4)} | ${mean(base.map((r) => r.testByPropensity[k].mean_true_cvr)).toFixed(4)} | ${vs.map((v) => (rs[v].length ? signed(mean(rs[v].map((r) => r.testByPropensity[k].cvr_bias))) : "—")).join(" | ")} |`);
    }
  }
}
// IPW's reach, measured on the test impressions with the TRUE propensity: an impression's expected
// weight is E[o·min(1/p, clip)] = min(1, clip·p), so the clipped risk covers mean(min(1, clip·p)) of the
// impression space (1 = unbiased). ESCM2's clip is 15 (PaddleRec's default).
if (phases.has("claim2")) {
  const clip = 15;
  out.push(`\n**IPW's reach** (test impressions, true propensity p, mean over seeds): the share of impressions with p < 1/${clip}, where ESCM2's clipped weight min(1/p, ${clip}) under-weights them, and the weight the clipped risk gives the impression space, mean(min(1, ${clip}·p)) (1 would be unbiased)\n`);
  out.push("| world | bias | share with p < 1/15 | mean min(1, 15·p) |", "|---|---|---|---|");
  for (const preset of presets) for (const bias of biases) {
    const shares = [], reach = [];
    for (const seed of seeds) {
      const spec = parseSynthSpec(cellData({ preset, bias, seed, impressions, testImpressions }).test);
      let n = 0, below = 0, covered = 0;
      for (const b of synthBatches(spec)) for (let r = 0; r < b.size; r++) {
        const p = b.truth.ctr[r];
        n++;
        if (p < 1 / clip) below++;
        covered += Math.min(1, clip * p);
      }
      shares.push(below / n);
      reach.push(covered / n);
    }
    out.push(`| ${preset} | ${bias} | ${(100 * mean(shares)).toFixed(1)}% | ${mean(reach).toFixed(3)} |`);
  }
}
const all = readdirSync(values.cache).filter((f) => f.endsWith(`--${sizeKey}.json`)).map((f) => JSON.parse(readFileSync(join(values.cache, f), "utf8")));
out.push(`\n${all.length} runs in the cache for these sizes, ${all.reduce((a, r) => a + r.seconds, 0).toFixed(0)} s of training and testing in all (this process ran ${ran} in ${((Date.now() - started) / 1000).toFixed(0)} s).`);
process.stdout.write(out.join("\n") + "\n");
if (values.json) writeFileSync(values.json, JSON.stringify({ command: `node scripts/results-funnel.mjs ${process.argv.slice(2).join(" ")}`.trim(), chosenLr, runs: all }, null, 1) + "\n");
