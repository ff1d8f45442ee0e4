// A/B of Trainer options inside one process, for a machine shared with other work: one trainer per
// configuration (each with its own session worker and table), fit() over chunks of steps in turn,
// the order reversed every turn, many turns. A turn counts only when the rest of the machine used
// under --quiet percent of its cores meanwhile (/proc/stat's busy time minus this process's), so
// load from elsewhere does not decide the ratio. Prints per configuration the median examples/s and
// the median per-turn ratio to the first configuration, over the quiet turns.
//   node scripts/bench-ab.mjs [--model esmm|escm2-dr --turns 40 --chunk 10 --quiet 5] 'label={"rowShare":0}' 'label={...trainer options}' ...
//   (a configuration's "rowUpdate": "graph" | "host" picks the step program: TrainingOptions.rowUpdate)
// Not a test: prints measured numbers.
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { twoTower, ESMM_REFERENCE } from "../dist/src/models/two_tower.js";
import { escm2, escm2Defaults } from "../dist/src/models/escm2.js";
import { defaultAliccpSchema } from "../dist/src/features/schema.js";
import { Trainer, buildTrainingStep, describeModel, initialState } from "../dist/src/train/index.js";
import { Rng } from "../dist/src/util/prng.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string", default: "esmm" },
    turns: { type: "string", default: "40" },
    chunk: { type: "string", default: "10" },
    quiet: { type: "string", default: "5" },
    verbose: { type: "boolean", default: false },
  },
});
const cfg = ESMM_REFERENCE, optimizer = { kind: "adam" }, B = 1024, n = cfg.fields * cfg.idsPerField;
const model = values.model === "escm2-dr"
  ? { definition: escm2, config: { ...escm2Defaults(), counterfactualMode: "DR", backbone: "towers", towerSizes: cfg.towerSizes, schema: defaultAliccpSchema({ vocabSize: cfg.vocabSize }) }, ids: "ids.shared" }
  : values.model === "esmm" ? { definition: twoTower, config: cfg, ids: "ids.embedding" } : null;
if (!model) throw new Error(`--model must be esmm or escm2-dr, got ${values.model}`);
if (!positionals.length) throw new Error(`give configurations as 'label={"rowShare":0}'`);
// Uniform ids, as bench-train.mjs draws them.
const rng = new Rng(42, 1);
const batches = Array.from({ length: 32 }, () => {
  const ids = new Int32Array(B * n).map(() => 1 + rng.int(cfg.vocabSize - 1));
  const click = new Float32Array(B).map(() => (rng.next() < 0.2 ? 1 : 0)), conversion = new Float32Array(B).map((_, b) => (click[b] && rng.next() < 0.1 ? 1 : 0));
  return { [model.ids]: ids, click, conversion };
});
// A configuration's "rowUpdate" ("graph" or "host") picks the step program; the rest are Trainer options.
const programs = new Map();
const programOf = (rowUpdate = "graph") => {
  if (!programs.has(rowUpdate)) programs.set(rowUpdate, buildTrainingStep(model.definition, model.config, { optimizer, rowUpdate }));
  return programs.get(rowUpdate);
};
const cfgs = [];
for (const spec of positionals) {
  const at = spec.indexOf("=");
  if (at < 1) throw new Error(`a configuration is label={json trainer options}, got '${spec}'`);
  const state = initialState(describeModel(model.definition, model.config), optimizer, { seed: 1 });
  const { rowUpdate, ...options } = JSON.parse(spec.slice(at + 1));
  const trainer = await Trainer.create(state, { train: programOf(rowUpdate) }, { intraOpThreads: 1, ...options });
  await trainer.fit(batches.slice(0, 8), { lr: 1e-3 }); // warm-up
  cfgs.push({ label: spec.slice(0, at), trainer, rates: [] });
}
const cores = cpus().length;
const busyMs = () => {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return ((f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) * 1000) / 100; // user nice system irq softirq steal, 10 ms ticks
};
const ownMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const turns = Number(values.turns), chunk = Number(values.chunk);
const quiet = [];
let at = 0;
for (let t = 0; t < turns; t++) {
  let foreign = 0, wall = 0;
  for (const c of t % 2 ? [...cfgs].reverse() : cfgs) {
    const part = Array.from({ length: chunk }, (_, k) => batches[(at + k) % batches.length]);
    const b0 = busyMs(), o0 = ownMs(), t0 = performance.now();
    await c.trainer.fit(part, { lr: 1e-3 });
    const dt = performance.now() - t0;
    foreign += busyMs() - b0 - (ownMs() - o0);
    wall += dt;
    c.rates[t] = (chunk * B) / (dt / 1000);
  }
  at += chunk;
  const share = foreign / (cores * wall);
  if (values.verbose) console.log(`turn ${t + 1}: the rest of the machine ${(100 * share).toFixed(1)}% of the cores; ${cfgs.map((c) => `${c.label} ${Math.round(c.rates[t])}`).join(", ")}`);
  if (share < Number(values.quiet) / 100) quiet.push(t);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return !s.length ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`${values.model}, ${quiet.length} of ${turns} turns of ${chunk} steps quiet (the rest of the machine under ${values.quiet}% of the cores); medians over those:`);
for (const c of cfgs) {
  const ratios = quiet.map((t) => c.rates[t] / cfgs[0].rates[t]);
  const m = median(ratios);
  console.log(`  ${c.label}: ${Math.round(median(quiet.map((t) => c.rates[t])))} examples/s; / ${cfgs[0].label}: ${m.toFixed(3)} (quartiles ${median(ratios.filter((x) => x <= m)).toFixed(3)}–${median(ratios.filter((x) => x >= m)).toFixed(3)})`);
  await c.trainer.release();
}
