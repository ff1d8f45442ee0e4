#!/usr/bin/env node
/**
 * MetaHeac against its baselines on synthetic look-alike worlds (mtl data synth --kind lookalike),
 * one world and one model seed per seed. Per seed:
 *   metaheac       stage 1 (meta-training over the training campaigns: T = 5 campaigns ∝ size, support
 *                  and query batches of 32, inner SGD 2e-4, outer Adam 1e-3, `--meta-epochs` epochs of
 *                  ceil(rows / 32) outer steps), then stage 2 per held-out campaign: Adam 1e-3, 2 epochs,
 *                  batches of 32 on its seed rows (PaddleRec's infer_train_epoch, local_test_learning_rate)
 *   plain          the same network trained plainly (Adam 1e-3, batches of 32, shuffled) on the same rows
 *                  for `--plain-epochs` epochs (default 10: the rows one meta epoch processes, 2·T·32 per
 *                  step), scored as it is
 *   plain+adapt    that model adapted per campaign exactly as metaheac (isolates what meta-learning adds)
 *   scratch        a fresh network per campaign trained on its seed rows only (Adam 1e-3, `--scratch-epochs`)
 * Metrics on each held-out campaign's candidate rows, for hot and cold campaigns apart: the macro
 * average of per-campaign AUCs (campaigns with both labels among their candidates) and the global AUC
 * over all the group's candidates. Prints a markdown table (mean ± std over seeds, and paired
 * differences metaheac − baseline) and writes the raw numbers as JSON. Build first (npm run build).
 *
 *   node scripts/results-lookalike.mjs [--seeds 1,2,3,4,5] [--campaigns 40] [--scale 0.01] [--dim 16] [--local-lr 0.0002]
 *     [--methods metaheac,plain,plain+adapt,scratch] [--json out.json]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeLookalikeSynth, LOOKALIKE_FILES } from "../dist/src/data/synth-lookalike.js";
import { defaultLookalikeSchema } from "../dist/src/features/lookalike.js";
import { metaheac, metaheacDefaults } from "../dist/src/models/metaheac.js";
import { buildMetaTrainingStep } from "../dist/src/train/meta.js";
import { buildTrainingStep, describeModel } from "../dist/src/train/program.js";
import { initialState } from "../dist/src/train/state.js";
import { Trainer } from "../dist/src/train/trainer.js";
import { Session } from "../dist/src/runtime/session.js";
import { Rng } from "../dist/src/util/prng.js";
import { auc } from "../dist/src/metrics/binary.js";
import { drawEpisode, episodeFeeds, groupCampaigns, readCampaignRows } from "../dist/src/flow/meta-run.js";
import { Adapter, adaptOnSeeds } from "../dist/src/adapt/adapter.js";
import { feedsOfRows, scoreRows, selectRows } from "../dist/src/adapt/rows.js";
import { adaptationPrograms, weightsOfState } from "../dist/src/export/adaptation.js";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "1,2,3,4,5" },
    campaigns: { type: "string", default: "40" },
    scale: { type: "string", default: "0.01" },
    dim: { type: "string", default: "16" },
    "meta-epochs": { type: "string", default: "1" },
    "plain-epochs": { type: "string", default: "10" },
    "scratch-epochs": { type: "string", default: "10" },
    "local-lr": { type: "string", default: "0.0002" },
    methods: { type: "string", default: "metaheac,plain,plain+adapt,scratch" },
    json: { type: "string", default: "results-lookalike.json" },
  },
});
const seeds = values.seeds.split(",").filter(Boolean).map(Number);
const dim = Number(values.dim);
const schema = defaultLookalikeSchema({ dim });
const config = { ...metaheacDefaults(), schema, localLr: Number(values["local-lr"]) };
const wanted = new Set(values.methods.split(","));
const plainNeeded = wanted.has("plain") || wanted.has("plain+adapt");
const B = config.metaBatchSize, LR = 1e-3;
const adam = { kind: "adam" };
const log = (s) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

// Sessions are made once (a meta step over T = 5 campaigns is ~10k nodes: onnxruntime takes seconds
// to load it) and reused with each seed's fresh state.
const started = Date.now();
const fresh = (seed) => initialState(describeModel(metaheac, config), adam, { seed });
const metaTrainer = await Trainer.create(fresh(0), { train: buildMetaTrainingStep(metaheac, config, { optimizer: adam, tasks: config.taskCount, localLr: config.localLr }) });
const plainTrainer = plainNeeded && await Trainer.create(fresh(0), { train: buildTrainingStep(metaheac, config, { optimizer: adam }) });
const programs = adaptationPrograms(metaheac, config);
const adaptTrain = await Session.create(programs.train.bytes), adaptEval = await Session.create(programs.eval.bytes);
const run = async (p, feeds) => (p === "train" ? adaptTrain : adaptEval).run(feeds);
log(`sessions ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

function reset(trainer, state) {
  trainer.state.tensors.clear();
  for (const [k, t] of state.tensors) trainer.state.tensors.set(k, t);
  trainer.state.step = 0;
}

/** Per group: per-campaign AUCs, their macro average, and the global AUC over the group's candidates. */
function metrics(byCampaign) {
  const out = {};
  for (const group of ["hot", "cold"]) {
    const cs = byCampaign.filter((c) => c.group === group);
    const per = cs.map((c) => (c.labels.some((y) => y === 1) && c.labels.some((y) => y === 0) ? auc(c.scores, c.labels) : null)).filter((x) => x !== null);
    const scores = Float32Array.from(cs.flatMap((c) => [...c.scores])), labels = Uint8Array.from(cs.flatMap((c) => [...c.labels]));
    out[group] = { campaigns: cs.length, scored: per.length, macro: per.length ? per.reduce((a, b) => a + b, 0) / per.length : NaN, global: labels.length ? auc(scores, labels) : NaN, perCampaign: per };
  }
  return out;
}

const results = [];
let metaSteps = 0, metaSeconds = 0;
for (const seed of seeds) {
  const dir = mkdtempSync(join(tmpdir(), "mtl-lookalike-"));
  try {
    const world = await writeLookalikeSynth(join(dir, "world"), { seed, campaigns: Number(values.campaigns), scale: Number(values.scale) });
    const train = await readCampaignRows(join(dir, "world", LOOKALIKE_FILES.train), schema);
    const layout = train.layout;
    const held = [];
    for (const group of ["hot", "cold"]) {
      const s = await readCampaignRows(join(dir, "world", group === "hot" ? LOOKALIKE_FILES.hotSeeds : LOOKALIKE_FILES.coldSeeds), schema);
      const c = await readCampaignRows(join(dir, "world", group === "hot" ? LOOKALIKE_FILES.hotCandidates : LOOKALIKE_FILES.coldCandidates), schema);
      const sg = groupCampaigns(s.aid), cg = groupCampaigns(c.aid);
      sg.ids.forEach((aid, k) => {
        const j = cg.ids.indexOf(aid);
        if (j < 0) return;
        held.push({ aid, group, seeds: selectRows(layout, s.rows, sg.rows[k]), candidates: selectRows(layout, c.rows, cg.rows[j]) });
      });
    }
    log(`seed ${seed}: ${train.rows.size} training rows in ${groupCampaigns(train.aid).ids.length} campaigns; held out ${held.filter((h) => h.group === "hot").length} hot, ${held.filter((h) => h.group === "cold").length} cold (T = ${world.hotThreshold} candidates); oracle AUC hot ${world.oracleAuc.hot.toFixed(4)}, cold ${world.oracleAuc.cold.toFixed(4)}`);

    const campaigns = groupCampaigns(train.aid);
    const stepsPerEpoch = Math.ceil(train.rows.size / B);
    // metaheac stage 1
    reset(metaTrainer, fresh(seed));
    const t0 = Date.now();
    const total = stepsPerEpoch * Number(values["meta-epochs"]);
    function* episodes() {
      for (let s = 1; s <= total; s++) yield episodeFeeds(layout, train.rows, drawEpisode(campaigns, config.taskCount, B, seed, s));
    }
    await metaTrainer.fit(episodes(), { lr: LR });
    metaSteps += total;
    metaSeconds += (Date.now() - t0) / 1000;
    log(`seed ${seed}: meta-trained ${total} outer steps in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const metaWeights = weightsOfState(metaTrainer.state, programs.train.signature);

    // plain global model
    let plainWeights = null;
    if (plainNeeded) {
    reset(plainTrainer, fresh(seed));
    const rng = new Rng(seed, 3);
    function* plainBatches() {
      for (let e = 0; e < Number(values["plain-epochs"]); e++) {
        const order = rng.shuffle(Int32Array.from({ length: train.rows.size }, (_, i) => i));
        for (let at = 0; at < order.length; at += B) yield feedsOfRows(layout, train.rows, order.subarray(at, Math.min(order.length, at + B)));
      }
    }
    const t1 = Date.now();
    await plainTrainer.fit(plainBatches(), { lr: LR });
    log(`seed ${seed}: plain model trained (${Number(values["plain-epochs"])} epochs) in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    plainWeights = weightsOfState(plainTrainer.state, programs.train.signature);
    }
    const scratchWeights = weightsOfState(fresh(seed + 1000), programs.train.signature);

    const plan = { epochs: config.adaptEpochs, lr: config.adaptLr, batchSize: config.adaptBatchSize, seed: 2021 };
    const methods = Object.fromEntries([...wanted].map((m) => [m, []]));
    for (const h of held) {
      const slice = (which) => feedsOfRows(layout, h.seeds, which);
      const score = async (weights, adaptPlan) => {
        const adapter = new Adapter(programs.train.signature, programs.eval.signature, weights, run);
        if (adaptPlan) await adaptOnSeeds(adapter, h.seeds.size, adaptPlan, slice);
        return scoreRows(adapter, layout, h.candidates);
      };
      const entry = (scores) => ({ aid: h.aid, group: h.group, scores, labels: h.candidates.click });
      if (methods.metaheac) methods.metaheac.push(entry(await score(metaWeights, plan)));
      if (methods.plain) methods.plain.push(entry(await score(plainWeights, null)));
      if (methods["plain+adapt"]) methods["plain+adapt"].push(entry(await score(plainWeights, plan)));
      if (methods.scratch) methods.scratch.push(entry(await score(scratchWeights, { ...plan, epochs: Number(values["scratch-epochs"]) })));
    }
    const r = { seed, trainRows: train.rows.size, hotThreshold: world.hotThreshold, oracle: world.oracleAuc, held: held.map((h) => ({ aid: h.aid, group: h.group, seeds: h.seeds.size, candidates: h.candidates.size })), methods: {} };
    for (const [m, list] of Object.entries(methods)) r.methods[m] = metrics(list);
    results.push(r);
    log(`seed ${seed}: ${Object.entries(r.methods).map(([m, x]) => `${m} hot ${x.hot.global.toFixed(4)}/${x.hot.macro.toFixed(4)} cold ${x.cold.global.toFixed(4)}/${x.cold.macro.toFixed(4)}`).join("; ")}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
await metaTrainer.release();
if (plainTrainer) await plainTrainer.release();
await adaptTrain.release();
await adaptEval.release();

const stat = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x));
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : 0;
  return `${m.toFixed(4)} ± ${sd.toFixed(4)}`;
};
const cols = [["hot", "global"], ["hot", "macro"], ["cold", "global"], ["cold", "macro"]];
const lines = [
  `| method | hot global AUC | hot macro AUC | cold global AUC | cold macro AUC |`, `|---|---|---|---|---|`,
  ...Object.keys(results[0].methods).map((m) => `| ${m} | ${cols.map(([g, k]) => stat(results.map((r) => r.methods[m][g][k]))).join(" | ")} |`),
  `| oracle (true p) | ${stat(results.map((r) => r.oracle.hot))} | | ${stat(results.map((r) => r.oracle.cold))} | |`,
  ``, `Paired differences, metaheac − baseline (mean ± std over seeds):`, ``,
  `| baseline | hot global | hot macro | cold global | cold macro |`, `|---|---|---|---|---|`,
  ...Object.keys(results[0].methods).filter((m) => m !== "metaheac").map((m) => `| ${m} | ${cols.map(([g, k]) => stat(results.map((r) => r.methods.metaheac[g][k] - r.methods[m][g][k]))).join(" | ")} |`),
  ``, `meta-training: ${(metaSteps / metaSeconds).toFixed(2)} outer steps/s (T = ${config.taskCount}, batches of ${B}, dim ${dim}), ${results.length} seeds, ${((Date.now() - started) / 1000).toFixed(0)} s in all`,
];
process.stdout.write(lines.join("\n") + "\n");
writeFileSync(values.json, JSON.stringify({ settings: values, results, metaStepsPerSecond: metaSteps / metaSeconds }, null, 1) + "\n");
