/**
 * A small multi-task two-tower model in the ESMM shape (Ma et al., SIGIR 2018): one shared
 * embedding table, sum-pooled multi-id fields, a CTR tower and a CVR tower, and
 *   pCTCVR = pCTR × pCVR                              (ESMM eq. 1)
 *   loss   = BCE(pCTR, click) + BCE(pCTCVR, conversion)   (ESMM eq. 3; conversion = click AND buy)
 * The CVR tower gets no direct loss. It follows the input contract (src/models/inputs.ts): its
 * fields are the features of `twoTowerSchema(config)`, one table `embedding` fed as `ids.embedding`,
 * and the labels are `click` and `conversion`, so the feeds contract (src/models/feeds.ts) feeds it
 * from a data batch like any model. The bench and the engine's tests use it for its fixed layout.
 */
import * as ops from "../graph/ops.js";
import { layoutOf } from "../features/batch.js";
import { validateSchema, type FeatureSchema } from "../features/schema.js";
import type { ModelContext, ModelDefinition, ModelOutputs } from "../train/model.js";
import { binaryCrossEntropy, tower } from "./layers.js";
import { embedFeatures, labelInputs } from "./inputs.js";

export interface TwoTowerConfig {
  /** Rows of the shared embedding table (ids 0..vocabSize-1; 0 is padding when paddingRow0). */
  vocabSize: number;
  embeddingDim: number;
  fields: number;
  idsPerField: number;
  /** Hidden layer sizes of each tower; a final 1-unit layer and a sigmoid follow. */
  towerSizes: number[];
  paddingRow0?: boolean;
  /** BatchNormalization after each hidden layer's Gemm (before ReLU). */
  batchNorm?: boolean;
  /** Dropout rate after each hidden layer's ReLU (0 = none). */
  dropout?: number;
  /** Uniform init range of the embeddings. */
  embeddingInit?: number;
}

/** The ESMM reference configuration of the bench: 23 fields × 3 ids, table 737,946 × 12, towers 276→256→64→1. */
export const ESMM_REFERENCE: TwoTowerConfig = {
  vocabSize: 737_946, embeddingDim: 12, fields: 23, idsPerField: 3, towerSizes: [256, 64], paddingRow0: true,
};

/** Binary cross-entropy, mean over the batch (moved to layers.ts; re-exported for existing callers). */
export { binaryCrossEntropy };

/** The schema of the two-tower's id layout: `fields` sum-pooled features f0, f1, ... of `idsPerField` ids each in one table `embedding`. */
export function twoTowerSchema(config: TwoTowerConfig): FeatureSchema {
  return validateSchema({
    features: Array.from({ length: config.fields }, (_, f) => ({
      name: `f${f}`, kind: "ids", max_len: config.idsPerField, pooling: "sum", vocab_size: config.vocabSize, table: "embedding", dim: config.embeddingDim,
    })),
  });
}

export function buildTwoTower(ctx: ModelContext, config: TwoTowerConfig): ModelOutputs {
  const { fields, embeddingDim: dim } = config;
  // ids.embedding: [batch, fields * idsPerField], field-major; 0 is padding (a zero row adds nothing to a sum).
  const x = embedFeatures(ctx, layoutOf(twoTowerSchema(config)), { paddingRow0: config.paddingRow0 ?? true, embeddingInit: config.embeddingInit }); // [batch, F*D]
  const { click, conversion } = labelInputs(ctx);

  const input = { value: x, width: fields * dim };
  const pCtr = tower(ctx, "ctr", input, config.towerSizes, config);
  const pCvr = tower(ctx, "cvr", input, config.towerSizes, config);
  const pCtcvr = ops.Mul(pCtr, pCvr);
  const ctrLoss = binaryCrossEntropy(pCtr, click);
  const ctcvrLoss = binaryCrossEntropy(pCtcvr, conversion);
  return {
    predictions: { p_ctr: pCtr, p_cvr: pCvr, p_ctcvr: pCtcvr },
    losses: { ctr: ctrLoss, ctcvr: ctcvrLoss },
    loss: ops.Add(ctrLoss, ctcvrLoss),
  };
}

export const twoTower: ModelDefinition<TwoTowerConfig> = { name: "two-tower", build: buildTwoTower };
