/** Sample weights (a schema column) in every loss term, and reduction: sum | mean, against plain sums. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { layoutOf } from "../src/features/batch.js";
import { encodeRecords } from "../src/features/encode.js";
import { validateSchema } from "../src/features/schema.js";
import { stepFeeds } from "../src/models/feeds.js";
import { esmm, esmmDefaults, type EsmmConfig } from "../src/models/esmm.js";
import { naive, naiveDefaults, type NaiveConfig } from "../src/models/baselines.js";
import { escm2, escm2Defaults, type Escm2Config } from "../src/models/escm2.js";
import { Trainer, buildEvalProgram, describeModel, initialState, type ModelDefinition } from "../src/train/index.js";
import { ShardWriter } from "../src/data/shard.js";
import { MtlError } from "../src/errors.js";
import { tempDir } from "./helpers/data.js";
import { join } from "node:path";

const schema = validateSchema({
  features: [{ name: "u", kind: "id", hash_buckets: 30, dim: 3 }, { name: "i", kind: "id", hash_buckets: 30, dim: 3 }],
  labels: { click: "click", conversion: "buy" },
  sample_weight: "w",
});
const records = [
  { u: "a", i: "x", click: 1, buy: 1, w: 2 },
  { u: "b", i: "y", click: 0, buy: 0, w: 0.5 },
  { u: "c", i: "x", click: 1, buy: 0, w: 0 },
  { u: "a", i: "z", click: 0, buy: 0, w: 1 },
  { u: "d", i: "y", click: 1, buy: 0, w: 3 },
];
const w = records.map((r) => r.w), click = records.map((r) => r.click), buy = records.map((r) => r.buy);
const bce = (p: number, y: number) => { const q = Math.min(Math.max(p, 1e-7), 1 - 1e-7); return -(y * Math.log(q) + (1 - y) * Math.log(1 - q)); };

async function evaluate<C>(model: ModelDefinition<C>, config: C) {
  const layout = layoutOf(schema);
  const state = initialState(describeModel(model, config), { kind: "sgd" }, { seed: 3 });
  const trainer = await Trainer.create(state, { eval: buildEvalProgram(model, config) });
  try {
    const r = await trainer.evaluate(stepFeeds(encodeRecords(layout, records), layout));
    const p = (k: string) => Array.from(r.predictions[k]!);
    return { loss: r.loss, losses: r.losses, pCtr: p("p_ctr"), pCvr: p("p_cvr"), pCtcvr: p("p_ctcvr") };
  } finally {
    await trainer.release();
  }
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

for (const reduction of ["mean", "sum"] as const) {
  test(`ESMM with sample weights, reduction ${reduction}: each term is Σ w·ℓ ${reduction === "mean" ? "/ rows" : ""}`, async () => {
    const r = await evaluate(esmm, { ...esmmDefaults(), schema, towerSizes: [4], reduction } as EsmmConfig);
    const div = reduction === "mean" ? records.length : 1;
    close(r.losses["ctr"]!, sum(r.pCtr.map((p, k) => w[k]! * bce(p, click[k]!))) / div, "ctr");
    close(r.losses["ctcvr"]!, sum(r.pCtcvr.map((p, k) => w[k]! * bce(p, buy[k]!))) / div, "ctcvr");
    close(r.loss, r.losses["ctr"]! + r.losses["ctcvr"]!, "total");
  });
}

test("the naive model's clicked-only CVR term: Σ click·w·ℓ / Σ click (mean), Σ click·w·ℓ (sum)", async () => {
  for (const reduction of ["mean", "sum"] as const) {
    const r = await evaluate(naive, { ...naiveDefaults(), schema, towerSizes: [4], reduction } as NaiveConfig);
    const clicked = sum(click);
    close(r.losses["cvr"]!, sum(r.pCvr.map((p, k) => click[k]! * w[k]! * bce(p, buy[k]!))) / (reduction === "mean" ? clicked : 1), `cvr ${reduction}`);
  }
});

test("ESCM2 IPW: the weights reach the counterfactual risk too", async () => {
  const r = await evaluate(escm2, { ...escm2Defaults(), schema, counterfactualMode: "IPW", backbone: "towers", towerSizes: [4] } as Escm2Config);
  const risk = sum(r.pCvr.map((p, k) => w[k]! * click[k]! * bce(p, buy[k]!) / Math.max(r.pCtr[k]!, 1e-6))) / records.length;
  close(r.losses["cvr"]!, risk, "R_IPS");
  close(r.losses["ctr"]!, sum(r.pCtr.map((p, k) => w[k]! * bce(p, click[k]!))) / records.length, "ctr");
});

test("a row without its weight is refused naming the column; shards refuse weighted schemas", async () => {
  assert.throws(() => encodeRecords(layoutOf(schema), [{ u: "a", i: "x", click: 1, buy: 0 }]), (e: unknown) => e instanceof MtlError && /the record has no 'w'/.test(e.message));
  assert.throws(() => encodeRecords(layoutOf(schema), [{ u: "a", i: "x", click: 1, buy: 0, w: -1 }]), (e: unknown) => e instanceof MtlError && /sample weight \(a number >= 0\), got -1/.test(e.message));
  await assert.rejects(ShardWriter.create(join(tempDir("mtl-w-"), "s.shard"), schema, { truth: false }), /shards do not store sample weights/);
});
