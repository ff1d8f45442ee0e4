/**
 * A small multi-task two-tower model in the ESMM shape (Ma et al., SIGIR 2018): one shared
 * embedding table, sum-pooled multi-id fields, a CTR tower and a CVR tower, and
 *   pCTCVR = pCTR × pCVR                              (ESMM eq. 1)
 *   loss   = BCE(pCTR, click) + BCE(pCTCVR, buy)      (ESMM eq. 3)
 * The CVR tower gets no direct loss. A pure function from config to graph; models proper (ESMM,
 * ESCM2, ...) come in the models issue and generalise this.
 */
import * as ops from "../graph/ops.js";
import type { ModelContext, ModelDefinition, ModelOutputs, TableSpec } from "../train/model.js";
import { binaryCrossEntropy, tower } from "./layers.js";
import { sumPool } from "./inputs.js";

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

export function buildTwoTower(ctx: ModelContext, config: TwoTowerConfig): ModelOutputs {
  const { fields, idsPerField: k, embeddingDim: dim } = config;
  const table: TableSpec = {
    name: "embedding", rows: config.vocabSize, dim,
    init: { kind: "uniform", limit: config.embeddingInit ?? 0.05 }, paddingRow0: config.paddingRow0 ?? true,
  };
  // ids: [batch, fields * idsPerField], field-major; 0 is padding (a zero row adds nothing to a sum).
  const emb = ctx.lookup(table, "ids", ["batch", fields * k]); // [batch, F*K, D]
  const pooled = sumPool(ops.Reshape(emb, [-1, fields, k, dim]), k); // [batch, F, D]
  const x = ops.Reshape(pooled, [-1, fields * dim]);
  const click = ctx.input("click", ctx.dtype, ["batch"]);
  const buy = ctx.input("buy", ctx.dtype, ["batch"]);

  const input = { value: x, width: fields * dim };
  const pCtr = tower(ctx, "ctr", input, config.towerSizes, config);
  const pCvr = tower(ctx, "cvr", input, config.towerSizes, config);
  const pCtcvr = ops.Mul(pCtr, pCvr);
  const ctrLoss = binaryCrossEntropy(pCtr, click);
  const ctcvrLoss = binaryCrossEntropy(pCtcvr, buy);
  return {
    predictions: { p_ctr: pCtr, p_cvr: pCvr, p_ctcvr: pCtcvr },
    losses: { ctr: ctrLoss, ctcvr: ctcvrLoss },
    loss: ops.Add(ctrLoss, ctcvrLoss),
  };
}

export const twoTower: ModelDefinition<TwoTowerConfig> = { name: "two-tower", build: buildTwoTower };
