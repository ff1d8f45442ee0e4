/**
 * A small ESMM-shaped model on the input contract (embedFeatures), for testing the training
 * workflow without depending on the models branch: CTR and CVR towers of one hidden layer,
 * pCTCVR = pCTR × pCVR, loss = BCE(pCTR, click) + BCE(pCTCVR, conversion).
 * `ctrOnly` drops the CVR tower (a CTR-only model: no p_cvr, no p_ctcvr).
 */
import * as ops from "../../src/graph/ops.js";
import type { Value } from "../../src/graph/ir.js";
import type { FeatureSchema } from "../../src/features/schema.js";
import { layoutOf } from "../../src/features/batch.js";
import { CLICK_INPUT, CONVERSION_INPUT, embedFeatures, embeddedWidth } from "../../src/models/inputs.js";
import { binaryCrossEntropy } from "../../src/models/two_tower.js";
import type { ModelContext, ModelDefinition, ModelOutputs } from "../../src/train/model.js";
import type { RegisteredModel } from "../../src/models/index.js";

export interface TinyConfig {
  schema: FeatureSchema;
  hidden: number;
  ctrOnly?: boolean;
  dropout?: number;
}

function tower(ctx: ModelContext, name: string, x: Value, width: number, c: TinyConfig): Value {
  const w = ctx.param(`${name}.0.weight`, [width, c.hidden], { kind: "glorot_uniform", fanIn: width, fanOut: c.hidden });
  const b = ctx.param(`${name}.0.bias`, [c.hidden], { kind: "zeros" });
  let h = ops.Relu(ops.Gemm(x, w, b));
  if (c.dropout) h = ctx.dropout(`${name}.0.dropout`, h, c.dropout);
  const wo = ctx.param(`${name}.out.weight`, [c.hidden, 1], { kind: "glorot_uniform", fanIn: c.hidden, fanOut: 1 });
  const bo = ctx.param(`${name}.out.bias`, [1], { kind: "zeros" });
  return ops.Squeeze(ops.Sigmoid(ops.Gemm(h, wo, bo)), [1]);
}

export const tinyModel: ModelDefinition<TinyConfig> = {
  name: "tiny",
  build(ctx, c): ModelOutputs {
    const layout = layoutOf(c.schema);
    const x = embedFeatures(ctx, layout);
    const width = embeddedWidth(layout);
    const click = ctx.input(CLICK_INPUT, ctx.dtype, ["batch"]);
    const pCtr = tower(ctx, "ctr", x, width, c);
    const ctrLoss = binaryCrossEntropy(pCtr, click);
    if (c.ctrOnly) return { predictions: { p_ctr: pCtr }, losses: { ctr: ctrLoss }, loss: ctrLoss };
    const conversion = ctx.input(CONVERSION_INPUT, ctx.dtype, ["batch"]);
    const pCvr = tower(ctx, "cvr", x, width, c);
    const pCtcvr = ops.Mul(pCtr, pCvr);
    const ctcvrLoss = binaryCrossEntropy(pCtcvr, conversion);
    return { predictions: { p_ctr: pCtr, p_cvr: pCvr, p_ctcvr: pCtcvr }, losses: { ctr: ctrLoss, ctcvr: ctcvrLoss }, loss: ops.Add(ctrLoss, ctcvrLoss) };
  },
};

export const tinyEntry: RegisteredModel = {
  definition: tinyModel as ModelDefinition<unknown>,
  defaults: { hidden: 8 },
  validate: (c) => c as unknown as TinyConfig,
};

export const TEST_MODELS: Readonly<Record<string, RegisteredModel>> = {
  tiny: tinyEntry,
  "tiny-ctr": { ...tinyEntry, defaults: { hidden: 8, ctrOnly: true } },
};
