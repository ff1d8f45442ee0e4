/**
 * The seeds' tower shapes: a CVR tower sized apart from the CTR tower (PaddleRec cvr_fc_sizes),
 * dropout per layer (PyTorch's dropouts=[0.5, 0.5]) and BatchNorm before, after or without the
 * activation (the notebook's Linear → BatchNorm → Dropout), each against a plain computation.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MtlError } from "../src/errors.js";
import { esmm, esmmDefaults, esmmEntry, type EsmmConfig } from "../src/models/esmm.js";
import { escm2, escm2Defaults, type Escm2Config } from "../src/models/escm2.js";
import { naive, naiveDefaults, type NaiveConfig } from "../src/models/baselines.js";
import { buildTrainingStep, describeModel } from "../src/train/index.js";
import { assertClose, runTiny, spreadRunningStats, tinyBatch, tinySchema, tinyState } from "./helpers/models.js";
import { Ref, type Rows } from "./helpers/model_ref.js";

const esmmTiny: EsmmConfig = { ...esmmDefaults(), schema: tinySchema(), towerSizes: [5, 4] };

function shapes(params: readonly { name: string; shape: readonly number[] }[], prefix: string): number[][] {
  return params.filter((p) => p.name.startsWith(prefix) && p.name.endsWith(".weight")).map((p) => [...p.shape]);
}

test("cvrTowerSizes (PaddleRec cvr_fc_sizes) sizes the CVR tower apart from the CTR tower; null keeps them equal", () => {
  const d = describeModel(esmm, { ...esmmTiny, cvrTowerSizes: [6] });
  assert.deepEqual(shapes(d.params, "ctr."), [[9, 5], [5, 4], [4, 1]]);
  assert.deepEqual(shapes(d.params, "cvr."), [[9, 6], [6, 1]]);
  assert.deepEqual(shapes(describeModel(esmm, esmmTiny).params, "cvr."), [[9, 5], [5, 4], [4, 1]]);
  const n = describeModel(naive, { ...naiveDefaults(), schema: tinySchema(), towerSizes: [3], cvrTowerSizes: [7, 2] } as NaiveConfig);
  assert.deepEqual(shapes(n.params, "cvr."), [[9, 7], [7, 2], [2, 1]]);
  // ESCM2's towers backbone: the CVR and imputation towers take cvrTowerSizes
  const e = describeModel(escm2, { ...escm2Defaults(), schema: tinySchema(), backbone: "towers", towerSizes: [3], cvrTowerSizes: [2] } as Escm2Config);
  assert.deepEqual(shapes(e.params, "ctr."), [[9, 3], [3, 1]]);
  assert.deepEqual(shapes(e.params, "cvr."), [[9, 2], [2, 1]]);
  assert.deepEqual(shapes(e.params, "imputation."), [[9, 2], [2, 1]]);
  assert.throws(() => esmmEntry.validate({ ...esmmDefaults(), cvrTowerSizes: [0] }, "c"), /'cvrTowerSizes' of model esmm must be a list of positive integers, or null/);
});

test("dropout per layer: each hidden layer gets its own rate; a list shorter than a tower is refused", () => {
  const step = buildTrainingStep(esmm, { ...esmmTiny, dropout: [0.5, 0.25] }, { optimizer: { kind: "sgd" } });
  assert.deepEqual(step.signature.dropouts.map((d) => d.rate), [0.5, 0.25, 0.5, 0.25]);
  assert.deepEqual(buildTrainingStep(esmm, { ...esmmTiny, dropout: [0, 0.3] }, { optimizer: { kind: "sgd" } }).signature.dropouts.map((d) => d.rate), [0.3, 0.3]);
  assert.throws(() => buildTrainingStep(esmm, { ...esmmTiny, dropout: [0.5] }, { optimizer: { kind: "sgd" } }), (e: unknown) => e instanceof MtlError && /'dropout' lists 1 rates, but ctr has 2 hidden layers/.test(e.message));
  assert.throws(() => esmmEntry.validate({ ...esmmDefaults(), dropout: [0.5, 1] }, "c"), /'dropout' of model esmm must be a rate in \[0, 1\) or a non-empty list/);
  assert.doesNotThrow(() => esmmEntry.validate({ ...esmmDefaults(), dropout: [0.5, 0.5] }, "c"));
});

for (const placement of ["before-activation", "after-activation", "no-activation"] as const) {
  test(`BatchNorm ${placement}: eval equals the plain computation with the running statistics`, async () => {
    const config: EsmmConfig = { ...esmmTiny, batchNorm: placement, dropout: 0.5 };
    const state = tinyState(esmm, config);
    spreadRunningStats(state, 13);
    const batch = tinyBatch();
    const run = await runTiny(esmm, config, state, batch);
    const ref = new Ref(state);
    const relu = (z: number) => Math.max(0, z);
    const tower = (name: string, x: Rows) => {
      let h = x;
      for (let i = 0; i < 2; i++) {
        const layer = `${name}.${i}`;
        const [scale, bias, mu, v] = ["scale", "bias", "running_mean", "running_var"].map((s) => ref.w(`${layer}.bn.${s}`));
        const bn = (z: number, u: number) => scale![u]! * (z - mu![u]!) / Math.sqrt(v![u]! + 1e-5) + bias![u]!;
        h = ref.linear(layer, h).map((row) => row.map((z, u) =>
          placement === "before-activation" ? relu(bn(z, u)) : placement === "after-activation" ? bn(relu(z), u) : bn(z, u)));
      }
      return ref.head(`${name}.out`, h);
    };
    const x = ref.pooled(batch);
    assertClose(run.outputs["p_ctr"]!, tower("ctr", x), "p_ctr");
    assertClose(run.outputs["p_cvr"]!, tower("cvr", x), "p_cvr");
  });
}

test("batchNorm: true is before-activation; other strings are refused", () => {
  assert.throws(() => esmmEntry.validate({ ...esmmDefaults(), batchNorm: "sometimes" }, "c"), /'batchNorm' of model esmm must be true, false or one of "before-activation", "after-activation", "no-activation"/);
  const a = describeModel(esmm, { ...esmmTiny, batchNorm: true });
  const b = describeModel(esmm, { ...esmmTiny, batchNorm: "before-activation" });
  assert.deepEqual(a.params.map((p) => p.name), b.params.map((p) => p.name));
});
