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
import type { CommonConfig } from "../src/models/config.js";
import { trainerBatch } from "../src/train/batches.js";
import { Trainer, buildEvalProgram, buildTrainingStep, describeModel, initialState, type ModelDefinition } from "../src/train/index.js";
import { assertClose, runTiny, tinyBatch, tinySchema, tinyState } from "./helpers/models.js";
import { Ref, logLoss, mean } from "./helpers/model_ref.js";

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
    const heldFeeds = trainerBatch(held, synthLayout);
    const before = (await trainer.evaluate(heldFeeds)).loss;
    let steps = 0;
    for (const b of synthBatches({ rows: 2048 + 40 * 256, batchSize: 256, schema: synthSchema, seed: 5 }, world)) {
      if (steps++ < 8) continue; // the first 2,048 rows are the held-out set
      await trainer.step(trainerBatch(b, synthLayout), 0.01);
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
