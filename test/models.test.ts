/**
 * Every model against its paper's formula: outputs and each loss term of a tiny float64 batch, run
 * in onnxruntime-node, equal a plain TypeScript computation from the same weights; gradients where
 * the paper stops them; and a short training run on the synthetic funnel where the loss falls.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { MtlError } from "../src/errors.js";
import { layoutOf } from "../src/features/batch.js";
import { SynthWorld, synthBatches } from "../src/data/synth.js";
import { getModel, MODELS } from "../src/models/index.js";
import { esmm, esmmDefaults, type EsmmConfig } from "../src/models/esmm.js";
import { escm2, escm2Defaults, type Escm2Config } from "../src/models/escm2.js";
import * as ops from "../src/graph/ops.js";
import { ctrOnly, ctrOnlyDefaults, naive, naiveDefaults, type CtrOnlyConfig, type NaiveConfig } from "../src/models/baselines.js";
import { mmoeDefaults, mmoeModel, pleDefaults, pleModel, sharedBottomDefaults, sharedBottomModel, type MmoeConfig, type PleConfig, type SharedBottomConfig } from "../src/models/multitask.js";
import { aitm, aitmDefaults, type AitmConfig } from "../src/models/aitm.js";
import type { CommonConfig } from "../src/models/config.js";
import { stepFeeds } from "../src/models/feeds.js";
import { Trainer, buildEvalProgram, buildInferenceGraph, buildTrainingStep, describeModel, initialState, type ModelDefinition, type TrainingState } from "../src/train/index.js";
import { encodeGraph } from "../src/onnx/serialize.js";
import { Session } from "../src/runtime/session.js";
import { assertClose, runTiny, spreadRunningStats, tinyBatch, tinySchema, tinyState, type TinyBatch } from "./helpers/models.js";
import { Ref, logLoss, mean, mix, sum, type Rows } from "./helpers/model_ref.js";

// ---------------------------------------------------------------- a short training run per model

const world = new SynthWorld({ seed: 5, users: 300, items: 200, bias: 1 });
const synthSchema = world.schema({ dim: 4 });
const synthLayout = layoutOf(synthSchema);

/** Adam on 40 synthetic batches of 256; the held-out loss (2,048 rows) must fall by a fifth. */
async function lossFalls<C>(t: TestContext, model: ModelDefinition<C>, config: C): Promise<void> {
  const optimizer = { kind: "adam" as const };
  const state = initialState(describeModel(model, config), optimizer, { seed: 1 });
  const trainer = await Trainer.create(state, { train: buildTrainingStep(model, config, { optimizer }), eval: buildEvalProgram(model, config) }, { worker: false });
  try {
    const held = [...synthBatches({ rows: 2048, batchSize: 2048, schema: synthSchema, seed: 5 }, world)][0]!;
    const heldFeeds = stepFeeds(held, synthLayout);
    const before = (await trainer.evaluate(heldFeeds)).loss;
    let steps = 0;
    for (const b of synthBatches({ rows: 2048 + 40 * 256, batchSize: 256, schema: synthSchema, seed: 5 }, world)) {
      if (steps++ < 8) continue; // the first 2,048 rows are the held-out set
      await trainer.step(stepFeeds(b, synthLayout), 0.01);
    }
    const after = (await trainer.evaluate(heldFeeds)).loss;
    t.diagnostic(`${model.name}: held-out loss ${before.toFixed(4)} -> ${after.toFixed(4)}`);
    assert.ok(Number.isFinite(after) && after < before * 0.8, `${model.name}: held-out loss ${before.toFixed(4)} -> ${after.toFixed(4)}`);
  } finally {
    await trainer.release();
  }
}

/** Small towers on the synthetic schema. */
function onSynth<C extends CommonConfig>(config: C): C {
  return { ...config, schema: synthSchema };
}

// ---------------------------------------------------------------- ESMM

const esmmTiny: EsmmConfig = { ...esmmDefaults(), schema: tinySchema(), towerSizes: [5, 4], ctrWeight: 0.7, ctcvrWeight: 1.3 };

test("ESMM: pCTR, pCVR, pCTCVR = pCTR·pCVR and w_ctr·BCE(pCTR, click) + w_ctcvr·BCE(pCTCVR, conversion) (eqs. 1, 3)", async () => {
  const state = tinyState(esmm, esmmTiny);
  const batch = tinyBatch();
  const run = await runTiny(esmm, esmmTiny, state, batch, [
    { name: "ctcvr", of: (o) => o["loss_ctcvr"]!, params: ["cvr.0.weight", "cvr.out.bias"] },
  ]);
  const ref = new Ref(state);
  const x = ref.pooled(batch);
  const pCtr = ref.tower("ctr", x, 2), pCvr = ref.tower("cvr", x, 2);
  const pCtcvr = pCtr.map((p, i) => p * pCvr[i]!);
  assertClose(run.outputs["p_ctr"]!, pCtr, "p_ctr");
  assertClose(run.outputs["p_cvr"]!, pCvr, "p_cvr");
  assertClose(run.outputs["p_ctcvr"]!, pCtcvr, "p_ctcvr");
  const ctr = mean(pCtr.map((p, i) => logLoss(p, batch.click[i]!)));
  const ctcvr = mean(pCtcvr.map((p, i) => logLoss(p, batch.conversion[i]!)));
  assertClose(run.outputs["loss_ctr"]!, ctr, "loss_ctr");
  assertClose(run.outputs["loss_ctcvr"]!, ctcvr, "loss_ctcvr");
  assertClose(run.outputs["loss"]!, 0.7 * ctr + 1.3 * ctcvr, "loss");
  assert.deepEqual(Object.keys(run.outputs).filter((k) => k.startsWith("loss_")).sort(), ["loss_ctcvr", "loss_ctr"], "the CVR tower has no loss of its own");
  // The CVR tower learns through the CTCVR loss only: its gradient there is not zero.
  assert.ok(run.gradients["ctcvr"]!["cvr.out.bias"]!.some((v) => Math.abs(v) > 1e-6));
});

test("ESMM: the loss falls on the synthetic funnel", async (t) => {
  await lossFalls(t, esmm, onSynth({ ...esmmDefaults(), towerSizes: [16, 8] }));
});

// ---------------------------------------------------------------- registry and config checks

test("registry: every model's defaults validate; unknown keys and bad values name the field", () => {
  for (const [name, entry] of Object.entries(MODELS)) {
    const defaults = entry.defaults as Record<string, unknown>;
    assert.doesNotThrow(() => entry.validate({ ...defaults }, "defaults"), `defaults of ${name}`);
  }
  const entry = getModel("esmm");
  const base = entry.defaults as Record<string, unknown>;
  const fails = (patch: Record<string, unknown>, field: string) =>
    assert.throws(() => entry.validate({ ...base, ...patch }, "exp.yaml"), (e: unknown) => e instanceof MtlError && e.code === "E_CONFIG" && e.where.field === field && e.where.file === "exp.yaml");
  fails({ towerSizes: [256, -1] }, "towerSizes");
  fails({ ctrWeight: "1" }, "ctrWeight");
  fails({ dropout: 1 }, "dropout");
  fails({ ctr_fc_sizes: [1] }, "ctr_fc_sizes");
  // A schema given as JSON is validated into a FeatureSchema.
  const json = { features: [{ name: "a", kind: "id", vocab_size: 5, dim: 2 }] };
  const cfg = entry.validate({ ...base, schema: json }, "exp.yaml") as EsmmConfig;
  assert.equal(cfg.schema.features[0]!.name, "a");
});

// ---------------------------------------------------------------- ESCM²

/** The TypeScript ESCM² on the tiny batch: predictions and every risk, from the paper's formulas. */
/** `frozenWeights`: use these 1/ô instead of recomputing them (what the stop-gradient means for a derivative). */
/** Values the stop-gradients hold fixed: 1/ô, and in alternating DR δ̂ (for R_err) and δ (for R_imp). */
interface Frozen {
  w: number[];
  dHat?: number[];
  delta?: number[];
}

function escm2Reference(state: TrainingState, batch: TinyBatch, c: Escm2Config, frozen?: Frozen) {
  const ref = new Ref(state);
  const x = ref.pooled(batch);
  const tasks = c.counterfactualMode === "DR" ? ["ctr", "cvr", "imputation"] : ["ctr", "cvr"];
  const p: Record<string, number[]> = {};
  if (c.backbone === "towers") {
    for (const t of tasks) p[t] = ref.tower(t, x, c.towerSizes.length);
  } else {
    const experts = Array.from({ length: c.expertCount }, (_, e) => ref.mlp(`expert.${e}`, x, c.expertSizes.length));
    for (const t of tasks) p[t] = ref.tower(t, mix(ref.gate(`gate.${t}`, x), experts), c.mmoeTowerSizes.length);
  }
  const pCtr = p["ctr"]!, pCvr = p["cvr"]!;
  const pCtcvr = pCtr.map((v, i) => v * pCvr[i]!);
  const o = batch.click;
  const delta = pCvr.map((v, i) => logLoss(v, batch.conversion[i]!)); // δ
  const w = frozen?.w ?? pCtr.map((v) => Math.min(1 / Math.max(v, c.propensityFloor), c.propensityClip)); // 1/ô, clipped
  const ctr = mean(pCtr.map((v, i) => logLoss(v, o[i]!)));
  const ctcvr = mean(pCtcvr.map((v, i) => logLoss(v, batch.conversion[i]!)));
  const risks: Record<string, number> = {};
  if (c.counterfactualMode === "IPW") {
    const terms = o.map((oi, i) => oi * delta[i]! * w[i]!);
    risks["cvr"] = c.ipwNormalization === "batch" ? mean(terms) : sum(terms) / Math.max(sum(o), 1);
  } else {
    const dHat = p["imputation"]!; // δ̂
    // Values are the same either way; `frozen` only matters to finite differences (the stop-gradients).
    const dHatErr = frozen?.dHat ?? dHat, deltaImp = frozen?.delta ?? delta;
    risks["cvr_err"] = mean(o.map((oi, i) => dHatErr[i]! + oi * w[i]! * (delta[i]! - dHatErr[i]!)));
    risks["cvr_imp"] = mean(o.map((oi, i) => oi * w[i]! * (deltaImp[i]! - dHat[i]!) ** 2));
    risks["cvr"] = risks["cvr_err"]! + risks["cvr_imp"]!;
  }
  const loss = ctr + c.counterfactualWeight * risks["cvr"]! + c.globalWeight * ctcvr;
  const losses: Record<string, number> = { ctr, ctcvr, ...risks };
  return { pCtr, pCvr, pCtcvr, w, dHat: p["imputation"], delta, losses, loss };
}

const escm2Tiny = (patch: Partial<Escm2Config>): Escm2Config => ({
  ...escm2Defaults(), schema: tinySchema(), towerSizes: [5, 4], expertCount: 3, expertSizes: [4], mmoeTowerSizes: [3],
  counterfactualWeight: 0.3, globalWeight: 0.6, ...patch,
});

/** The CTR branch's own parameters: its tower (and, with MMoE, its gate). */
const ctrBranch = (params: string[]) => params.filter((n) => n.startsWith("ctr.") || n === "gate.ctr.weight" || n === "gate.ctr.bias");

for (const backbone of ["towers", "mmoe"] as const) {
  for (const [mode, norm, active] of [["IPW", "batch", "floor"], ["IPW", "clicks", "clip"], ["DR", "batch", "floor"], ["DR", "batch", "clip"]] as const) {
    test(`ESCM² ${mode}${mode === "IPW" ? ` (÷ ${norm})` : ""}, ${backbone} backbone, ${active} active: predictions, every risk, and the stop-gradient on ô`, async () => {
      const batch = tinyBatch();
      const probe = escm2Tiny({ backbone, counterfactualMode: mode, ipwNormalization: norm });
      const state = tinyState(escm2, probe, 3, 1.0);
      // Pick the floor or the clip from this batch's clicked pCTRs so that it bites on some clicked rows and not on others.
      const clickedCtr = [...new Set(escm2Reference(state, batch, probe).pCtr.filter((_, i) => batch.click[i] === 1))].sort((a, b) => a - b);
      const between = (clickedCtr[0]! + clickedCtr[1]!) / 2;
      const config = active === "floor" ? { ...probe, propensityFloor: between, propensityClip: 1e6 } : { ...probe, propensityFloor: 1e-6, propensityClip: 1 / between };
      const want = escm2Reference(state, batch, config);
      const limited = want.pCtr.filter((v, i) => batch.click[i] === 1 && (active === "floor" ? v < config.propensityFloor : 1 / v > config.propensityClip));
      assert.ok(limited.length >= 1 && limited.length < batch.click.filter((c) => c === 1).length, `the ${active} applies to some clicked rows, not all`);

      const run = await runTiny(escm2, config, state, batch, []);
      const ctr = ctrBranch(run.params);
      assert.ok(ctr.length >= 2, `CTR branch parameters: ${ctr.join(", ")}`);
      const cvrParams = run.params.filter((n) => n.startsWith("cvr."));
      const withGrads = await runTiny(escm2, config, state, batch, [
        { name: "risk", of: (o) => o["loss_cvr"]!, params: [...ctr, ...cvrParams] },
        { name: "total", of: (o) => o["loss"]!, params: ctr },
        { name: "ctr+global", of: (o) => ops.Add(o["loss_ctr"]!, ops.Mul(o["loss_ctcvr"]!, config.globalWeight)), params: ctr },
      ]);
      assertClose(run.outputs["p_ctr"]!, want.pCtr, "p_ctr");
      assertClose(run.outputs["p_cvr"]!, want.pCvr, "p_cvr");
      assertClose(run.outputs["p_ctcvr"]!, want.pCtcvr, "p_ctcvr");
      const terms = Object.keys(run.outputs).filter((k) => k.startsWith("loss_")).map((k) => k.slice(5)).sort();
      assert.deepEqual(terms, Object.keys(want.losses).sort(), "loss terms");
      for (const [name, value] of Object.entries(want.losses)) assertClose(run.outputs[`loss_${name}`]!, value, `loss_${name}`);
      assertClose(run.outputs["loss"]!, want.loss, "loss");
      assertClose(withGrads.outputs["loss"]!, want.loss, "loss (gradient run)");

      // ô = stopGradient(max(pCTR, floor)): the CVR risk sends nothing into the CTR branch ...
      for (const n of ctr) assert.ok(withGrads.gradients["risk"]![n]!.every((v) => v === 0), `d R_cvr / d ${n} is 0`);
      // ... while it does train the CVR tower,
      assert.ok(cvrParams.some((n) => withGrads.gradients["risk"]![n]!.some((v) => Math.abs(v) > 1e-8)), "R_cvr trains the CVR tower");
      // ... the CTR branch learns from L_ctr + λ_g·L_ctcvr and nothing else,
      for (const n of ctr) assertClose(withGrads.gradients["total"]![n]!, withGrads.gradients["ctr+global"]![n]!, `d loss / d ${n}`, 1e-12);
      // ... and without the stop-gradient it would not be 0: R_cvr does move with the CTR head's bias (finite difference).
      const h = 1e-5, bias = state.get("ctr.out.bias")!;
      bias[0]! += h;
      const moved = escm2Reference(state, batch, config).losses["cvr"]!;
      bias[0]! -= h;
      assert.ok(Math.abs((moved - want.losses["cvr"]!) / h) > 1e-4, `R_cvr depends on pCTR through ô (finite difference ${(moved - want.losses["cvr"]!) / h})`);
    });
  }
}

test("ESCM²: PaddleRec's defaults (DR, MMoE 8×16, towers 8, floor 1e-6, clip 15, λ_cf = λ_g = 0.5), IPW ÷ batch", () => {
  const d = escm2Defaults();
  assert.deepEqual(
    [d.counterfactualMode, d.backbone, d.expertCount, d.expertSizes, d.mmoeTowerSizes, d.propensityFloor, d.propensityClip, d.counterfactualWeight, d.globalWeight, d.ipwNormalization],
    ["DR", "mmoe", 8, [16], [8], 1e-6, 15, 0.5, 0.5, "batch"],
  );
});

for (const mode of ["IPW", "DR"] as const) {
  test(`ESCM² ${mode}: the loss falls on the synthetic funnel`, async (t) => {
    await lossFalls(t, escm2, onSynth({ ...escm2Defaults(), counterfactualMode: mode }));
  });
}

// ---------------------------------------------------------------- baselines, Shared-Bottom, MMoE, PLE, AITM

interface Expected {
  predictions: Record<string, number[]>;
  losses: Record<string, number>;
  loss: number;
}

/** The funnel objective by hand: BCE(pCTR) over all, BCE(pCVR) over clicked rows, BCE(pCTR·pCVR) over all. */
function funnelReference(batch: TinyBatch, pCtr: number[], pCvr: number[], w: { ctrWeight: number; cvrWeight: number; ctcvrWeight: number }): Expected {
  const o = batch.click, r = batch.conversion;
  const pCtcvr = pCtr.map((v, i) => v * pCvr[i]!);
  const all: Record<string, [number, number]> = {
    ctr: [w.ctrWeight, mean(pCtr.map((v, i) => logLoss(v, o[i]!)))],
    cvr: [w.cvrWeight, sum(pCvr.map((v, i) => o[i]! * logLoss(v, r[i]!))) / Math.max(sum(o), 1)],
    ctcvr: [w.ctcvrWeight, mean(pCtcvr.map((v, i) => logLoss(v, r[i]!)))],
  };
  const losses: Record<string, number> = {};
  let loss = 0;
  for (const [name, [weight, value]] of Object.entries(all)) {
    if (weight === 0) continue;
    losses[name] = value;
    loss += weight * value;
  }
  return { predictions: { p_ctr: pCtr, p_cvr: pCvr, p_ctcvr: pCtcvr }, losses, loss };
}

async function checkAgainstReference<C>(model: ModelDefinition<C>, config: C, reference: (ref: Ref, x: Rows, batch: TinyBatch) => Expected, scale = 0.8): Promise<Expected> {
  const batch = tinyBatch();
  const state = tinyState(model, config, 3, scale);
  const run = await runTiny(model, config, state, batch);
  const ref = new Ref(state);
  const want = reference(ref, ref.pooled(batch), batch);
  assert.deepEqual(Object.keys(run.outputs).filter((k) => k.startsWith("p_")).sort(), Object.keys(want.predictions).sort(), "predictions");
  for (const [name, values] of Object.entries(want.predictions)) assertClose(run.outputs[name]!, values, name);
  assert.deepEqual(Object.keys(run.outputs).filter((k) => k.startsWith("loss_")).map((k) => k.slice(5)).sort(), Object.keys(want.losses).sort(), "loss terms");
  for (const [name, value] of Object.entries(want.losses)) assertClose(run.outputs[`loss_${name}`]!, value, `loss_${name}`);
  assertClose(run.outputs["loss"]!, want.loss, "loss");
  return want;
}

test("naive CVR (ESMM's BASE): BCE(pCTR) over impressions + BCE(pCVR) over clicked impressions only", async () => {
  const config: NaiveConfig = { ...naiveDefaults(), schema: tinySchema(), towerSizes: [5, 4], ctrWeight: 0.8, cvrWeight: 1.5 };
  await checkAgainstReference(naive, config, (ref, x, batch) => funnelReference(batch, ref.tower("ctr", x, 2), ref.tower("cvr", x, 2), { ...config, ctcvrWeight: 0 }));
});

test("naive CVR: a batch without clicks gives a CVR loss of 0, not NaN", async () => {
  const config: NaiveConfig = { ...naiveDefaults(), schema: tinySchema(), towerSizes: [3] };
  const batch = { ...tinyBatch(), click: new Array<number>(8).fill(0), conversion: new Array<number>(8).fill(0) };
  const run = await runTiny(naive, config, tinyState(naive, config), batch);
  assert.equal(run.outputs["loss_cvr"]![0], 0);
});

test("CTR-only: p_ctr and BCE(pCTR, click); no p_cvr or p_ctcvr at all", async () => {
  const config: CtrOnlyConfig = { ...ctrOnlyDefaults(), schema: tinySchema(), towerSizes: [5, 4] };
  await checkAgainstReference(ctrOnly, config, (ref, x, batch) => {
    const pCtr = ref.tower("ctr", x, 2);
    const ctr = mean(pCtr.map((v, i) => logLoss(v, batch.click[i]!)));
    return { predictions: { p_ctr: pCtr }, losses: { ctr }, loss: ctr };
  });
});

const weights = { ctrWeight: 0.7, cvrWeight: 0.4, ctcvrWeight: 0.5 };

test("Shared-Bottom: towers on one shared MLP; every funnel term", async () => {
  const config: SharedBottomConfig = { ...sharedBottomDefaults(), schema: tinySchema(), bottomSizes: [6, 5], towerSizes: [4], ...weights };
  await checkAgainstReference(sharedBottomModel, config, (ref, x, batch) => {
    const bottom = ref.mlp("bottom", x, 2);
    return funnelReference(batch, ref.tower("ctr", bottom, 1), ref.tower("cvr", bottom, 1), weights);
  });
});

test("MMoE: f^k = Σ_e softmax(W_gk·x)_e·f_e(x), towers per task (eqs. 3–5); every funnel term", async () => {
  const config: MmoeConfig = { ...mmoeDefaults(), schema: tinySchema(), expertCount: 3, expertSizes: [5, 4], towerSizes: [3], ...weights };
  await checkAgainstReference(mmoeModel, config, (ref, x, batch) => {
    const experts = [0, 1, 2].map((e) => ref.mlp(`expert.${e}`, x, 2));
    const p = (task: string) => ref.tower(task, mix(ref.gate(`gate.${task}`, x), experts), 1);
    return funnelReference(batch, p("ctr"), p("cvr"), weights);
  });
});

for (const levels of [1, 2, 3]) {
  test(`PLE, ${levels} level(s): task-specific and shared experts, task gates over own + shared, shared gate over all; every funnel term`, async () => {
    const config: PleConfig = { ...pleDefaults(), schema: tinySchema(), levels, taskExperts: 2, sharedExperts: 2, expertSizes: [4], towerSizes: [3], ...weights };
    await checkAgainstReference(pleModel, config, (ref, x, batch) => {
      const tasks = ["ctr", "cvr"];
      let taskIn: Rows[] = [x, x];
      let sharedIn = x;
      for (let l = 0; l < levels; l++) {
        const own = tasks.map((t, k) => [0, 1].map((e) => ref.mlp(`ple.${l}.${t}.expert.${e}`, taskIn[k]!, 1)));
        const common = [0, 1].map((e) => ref.mlp(`ple.${l}.shared.expert.${e}`, sharedIn, 1));
        const next = tasks.map((t, k) => mix(ref.gate(`ple.${l}.gate.${t}`, taskIn[k]!), [...own[k]!, ...common]));
        if (l < levels - 1) sharedIn = mix(ref.gate(`ple.${l}.gate.shared`, sharedIn), [...own[0]!, ...own[1]!, ...common]);
        taskIn = next;
      }
      return funnelReference(batch, ref.tower("ctr", taskIn[0]!, 1), ref.tower("cvr", taskIn[1]!, 1), weights);
    });
  });
}

/** rows · W (no bias), W [k, k] row-major. */
function project(ref: Ref, name: string, rows: Rows): Rows {
  const W = ref.w(`${name}.weight`);
  const k = rows[0]!.length;
  return rows.map((r) => Array.from({ length: k }, (_, o) => sum(r.map((v, i) => v * W[i * k + o]!))));
}

/** AITM by hand: towers, transfer, attention over {p_{t−1}, q_t}, heads, losses and the calibrator. */
function aitmReference(ref: Ref, batch: TinyBatch, c: AitmConfig): Expected {
  const x = ref.pooled(batch);
  const layers = c.towerSizes.length;
  const qClick = ref.mlp("ctr", x, layers), qConversion = ref.mlp("ctcvr", x, layers);
  const transferred = ref.mlp("transfer", qClick, 1); // p_{t−1}
  const k = c.towerSizes[layers - 1]!;
  const score = (u: Rows) => {
    const q = project(ref, "ait.query", u), key = project(ref, "ait.key", u);
    return q.map((row, b) => sum(row.map((v, i) => v * key[b]![i]!)) / Math.sqrt(k));
  };
  const [s0, s1] = [score(transferred), score(qConversion)];
  const [v0, v1] = [project(ref, "ait.value", transferred), project(ref, "ait.value", qConversion)];
  const z = batch.click.map((_, b) => {
    const m = Math.max(s0[b]!, s1[b]!), e0 = Math.exp(s0[b]! - m), e1 = Math.exp(s1[b]! - m);
    const w0 = e0 / (e0 + e1), w1 = e1 / (e0 + e1);
    return v0[b]!.map((v, i) => w0 * v + w1 * v1[b]![i]!);
  });
  const pCtr = ref.head("ctr.out", qClick), pCtcvr = ref.head("ctcvr.out", z);
  const pCvr = pCtcvr.map((v, i) => Math.min(Math.max(v / Math.max(pCtr[i]!, 1e-7), 0), 1));
  const ctr = mean(pCtr.map((v, i) => logLoss(v, batch.click[i]!)));
  const ctcvr = mean(pCtcvr.map((v, i) => logLoss(v, batch.conversion[i]!)));
  const calibration = sum(pCtcvr.map((v, i) => Math.max(v - pCtr[i]!, 0)));
  return { predictions: { p_ctr: pCtr, p_cvr: pCvr, p_ctcvr: pCtcvr }, losses: { ctr, ctcvr, calibration }, loss: c.ctrWeight * ctr + c.ctcvrWeight * ctcvr + c.calibrationWeight * calibration };
}

test("AITM: attention transfer from the click tower, pCTCVR from z_t, calibrator α·Σ max(pCTCVR − pCTR, 0)", async () => {
  const config: AitmConfig = { ...aitmDefaults(), schema: tinySchema(), towerSizes: [5, 4], ctrWeight: 0.9, ctcvrWeight: 1.1, calibrationWeight: 0.6 };
  const want = await checkAgainstReference(aitm, config, (ref, _x, batch) => aitmReference(ref, batch, config), 1.0);
  const over = want.predictions["p_ctcvr"]!.filter((v, i) => v > want.predictions["p_ctr"]![i]!).length;
  assert.ok(over > 0 && over < 8, `the calibrator is active on some rows, not all (${over} of 8)`);
});

test("AITM: the conversion loss reaches the click tower through the transfer (and the calibrator)", async () => {
  const config: AitmConfig = { ...aitmDefaults(), schema: tinySchema(), towerSizes: [5, 4] };
  const state = tinyState(aitm, config, 3, 1.0);
  const run = await runTiny(aitm, config, state, tinyBatch(), [{ name: "ctcvr", of: (o) => o["loss_ctcvr"]!, params: ["ctr.0.weight", "transfer.0.weight"] }]);
  for (const n of ["ctr.0.weight", "transfer.0.weight"]) assert.ok(run.gradients["ctcvr"]![n]!.some((v) => Math.abs(v) > 1e-9), `d L_ctcvr / d ${n} is not 0`);
});

for (const [name, model, config] of [
  ["naive", naive, { ...naiveDefaults(), towerSizes: [16, 8] }],
  ["ctr-only", ctrOnly, { ...ctrOnlyDefaults(), towerSizes: [16, 8] }],
  ["shared-bottom", sharedBottomModel, { ...sharedBottomDefaults(), bottomSizes: [16], towerSizes: [8] }],
  ["mmoe", mmoeModel, mmoeDefaults()],
  ["ple", pleModel, pleDefaults()],
  ["aitm", aitm, { ...aitmDefaults(), towerSizes: [16, 8] }],
] as [string, ModelDefinition<CommonConfig>, CommonConfig][]) {
  test(`${name}: the loss falls on the synthetic funnel`, async (t) => {
    await lossFalls(t, model, onSynth(config));
  });
}

// ---------------------------------------------------------------- every registered model: inference graph and options

/** A small config of each registered schema-driven model on the tiny schema. */
function smallConfig(name: string): Record<string, unknown> {
  const entry = getModel(name);
  const base = { ...(entry.defaults as Record<string, unknown>), schema: tinySchema() };
  const sizes: Record<string, Record<string, unknown>> = {
    naive: { towerSizes: [4] }, "ctr-only": { towerSizes: [4] }, esmm: { towerSizes: [4] },
    escm2: { expertCount: 2, expertSizes: [4], mmoeTowerSizes: [3] },
    "shared-bottom": { bottomSizes: [4], towerSizes: [3] }, mmoe: { expertCount: 2, expertSizes: [4], towerSizes: [3] },
    ple: { taskExperts: 1, sharedExperts: 1, expertSizes: [4], towerSizes: [3] }, aitm: { towerSizes: [4] },
    metaheac: { adFeatures: ["f2"], expertCount: 2, expertSizes: [4], gateHidden: 3, criticCount: 2 },
  };
  return entry.validate({ ...base, ...sizes[name] }, "test") as Record<string, unknown>;
}

for (const name of Object.keys(MODELS).filter((n) => n !== "two-tower")) {
  test(`${name}: the inference graph takes ids only (no labels) and predicts what the eval program predicts`, async () => {
    const entry = getModel(name);
    const config = smallConfig(name);
    const state = tinyState(entry.definition, config);
    const batch = tinyBatch();
    const evalRun = await runTiny(entry.definition, config, state, batch);
    const g = buildInferenceGraph(entry.definition, config, state, { dtype: "float64" });
    assert.deepEqual(g.inputs.map((i) => i.name), ["ids.shared"], "inference inputs");
    const session = await Session.create(encodeGraph(g));
    const out = await session.run({ "ids.shared": { dtype: "int64", dims: [8, 6], data: BigInt64Array.from(batch.ids, (v) => BigInt(v)) } });
    await session.release();
    const predictions = Object.keys(evalRun.outputs).filter((k) => k.startsWith("p_"));
    assert.deepEqual(Object.keys(out).sort(), predictions.sort());
    assert.ok(predictions.includes(name === "metaheac" ? "p_lookalike" : "p_ctr"));
    for (const p of predictions) assertClose(Array.from(out[p]!.data as Float64Array), evalRun.outputs[p]!, `${name} ${p}`, 1e-12);
  });
}

test("ESMM with BatchNorm and Dropout: eval uses the running statistics (BN after each Gemm, before ReLU) and no dropout", async () => {
  const config: EsmmConfig = { ...esmmTiny, batchNorm: true, dropout: 0.5 };
  const state = tinyState(esmm, config);
  spreadRunningStats(state, 11);
  const batch = tinyBatch();
  const run = await runTiny(esmm, config, state, batch);
  const ref = new Ref(state);
  const bnTower = (name: string, x: Rows) => {
    let h = x;
    for (let i = 0; i < 2; i++) {
      const layer = `${name}.${i}`;
      const [scale, bias, mu, v] = ["scale", "bias", "running_mean", "running_var"].map((s) => ref.w(`${layer}.bn.${s}`));
      h = ref.linear(layer, h).map((row) => row.map((z, u) => Math.max(0, scale![u]! * (z - mu![u]!) / Math.sqrt(v![u]! + 1e-5) + bias![u]!)));
    }
    return ref.head(`${name}.out`, h);
  };
  const x = ref.pooled(batch);
  assertClose(run.outputs["p_ctr"]!, bnTower("ctr", x), "p_ctr");
  assertClose(run.outputs["p_cvr"]!, bnTower("cvr", x), "p_cvr");
  // In training, each hidden layer has a dropout mask input and BN updates its running statistics.
  const step = buildTrainingStep(esmm, config, { optimizer: { kind: "sgd" } });
  assert.equal(step.signature.dropouts.length, 4);
  assert.equal(step.signature.states.length, 8);
});

test("config checks: ESCM²'s mode, normalisation and backbone; PLE's levels; AITM's towers", () => {
  const fails = (name: string, patch: Record<string, unknown>, field: string) => {
    const entry = getModel(name);
    assert.throws(() => entry.validate({ ...(entry.defaults as Record<string, unknown>), ...patch }, "exp.yaml"), (e: unknown) => e instanceof MtlError && e.where.field === field, `${name}.${field}`);
  };
  fails("escm2", { counterfactualMode: "ips" }, "counterfactualMode");
  fails("escm2", { ipwNormalization: "impressions" }, "ipwNormalization");
  fails("escm2", { backbone: "ple" }, "backbone");
  fails("escm2", { propensityFloor: 0 }, "propensityFloor");
  fails("escm2", { propensityClip: -1 }, "propensityClip");
  fails("escm2", { counterfact_mode: "DR" }, "counterfact_mode");
  fails("ple", { levels: 0 }, "levels");
  fails("aitm", { towerSizes: [] }, "towerSizes");
  fails("mmoe", { expertCount: 1.5 }, "expertCount");
  fails("naive", { cvrWeight: -1 }, "cvrWeight");
});

// ---------------------------------------------------------------- backward passes against finite differences

/**
 * d loss / d param from the training graph's autodiff equals a central finite difference of the
 * TypeScript loss, on a few entries of each parameter (and of the embedding rows the batch uses).
 */
async function gradientsMatchFiniteDifferences<C>(model: ModelDefinition<C>, config: C, loss: (state: TrainingState, batch: TinyBatch) => number, params: string[], scale = 0.8): Promise<void> {
  const batch = tinyBatch();
  const state = tinyState(model, config, 3, scale);
  const inputs = params.map((n) => (n === "shared" ? "shared__rows" : n));
  const run = await runTiny(model, config, state, batch, [{ name: "loss", of: (o) => o["loss"]!, params: inputs }]);
  const h = 1e-6;
  params.forEach((name, k) => {
    const data = state.get(name)!;
    const grad = run.gradients["loss"]![inputs[k]!]!;
    const entries = name === "shared" ? [batch.ids[0]! * 3, batch.ids[2]! * 3 + 1, batch.ids[7]! * 3 + 2] : [0, Math.floor(data.length / 2), data.length - 1];
    for (const i of entries) {
      const keep = data[i]!;
      data[i] = keep + h;
      const up = loss(state, batch);
      data[i] = keep - h;
      const down = loss(state, batch);
      data[i] = keep;
      const fd = (up - down) / (2 * h);
      assert.ok(Math.abs(grad[i]! - fd) <= 1e-6 * (1 + Math.abs(fd)), `d loss / d ${name}[${i}]: autodiff ${grad[i]}, finite difference ${fd}`);
    }
  });
}

for (const [mode, drGradients] of [["IPW", "alternating"], ["DR", "alternating"], ["DR", "joint"]] as const) {
  test(`ESCM² ${mode}${mode === "DR" ? ` (${drGradients})` : ""}: the training gradient equals finite differences of the TS loss with the stop-gradient values held fixed`, async () => {
    const config = escm2Tiny({ backbone: "towers", counterfactualMode: mode, propensityClip: 2.5, drGradients });
    const tasks = mode === "DR" ? ["ctr", "cvr", "imputation"] : ["ctr", "cvr"];
    let frozen: Frozen | undefined;
    await gradientsMatchFiniteDifferences(escm2, config, (state, batch) => {
      if (!frozen) {
        // The unperturbed values the stop-gradients hold: 1/ô always; δ̂ and δ in alternating DR.
        const r = escm2Reference(state, batch, config);
        frozen = mode === "DR" && drGradients === "alternating" ? { w: r.w, dHat: r.dHat!, delta: r.delta } : { w: r.w };
      }
      return escm2Reference(state, batch, config, frozen).loss;
    }, ["shared", ...tasks.flatMap((t) => [`${t}.0.weight`, `${t}.out.bias`])]);
  });
}

test("AITM: the training gradient (attention, transfer, calibrator) equals finite differences", async () => {
  const config: AitmConfig = { ...aitmDefaults(), schema: tinySchema(), towerSizes: [5, 4] };
  await gradientsMatchFiniteDifferences(aitm, config, (state, batch) => aitmReference(new Ref(state), batch, config).loss,
    ["shared", "ctr.0.weight", "ctcvr.1.weight", "transfer.0.weight", "ait.query.weight", "ait.key.weight", "ait.value.weight", "ctcvr.out.bias"], 1.0);
});
