/**
 * MetaHeac — Meta Hybrid Experts and Critics (Zhu et al., KDD 2021, "Learning to Expand Audience
 * via Meta Hybrid Experts and Critics for Recommendation and Advertising", arXiv:2105.14688).
 * PaddleRec's models/multitask/metaheac/net.py is the reference for shapes and defaults.
 *
 *   user fields ──▶ e_u = static ⊕ masked-mean(dynamic)  [batch, U·d] ──┬─▶ K experts E_k(e_u) = ReLU(W_k e_u + b_k)
 *   ad fields   ──▶ e_a                                  [batch, A·d]   │
 *   task vector   t = mean_u(e_u) ⊕ e_a                  [batch, (A+1)·d]
 *   expert gate   α = softmax(W₂ ReLU(W₁ t))  over K                    (Eq. 3)
 *   mixed         h = Σ_k α_k E_k(e_u)                                  (Eq. 4)
 *   critics       c_j = sigmoid(w_j·h + b_j), j = 1..C                  (Eq. 5)
 *   critic gate   β = softmax(W₄ ReLU(W₃ t))  over C                    (Eq. 6)
 *   prediction    ŷ = Σ_j β_j c_j                                        (Eq. 7)
 *   loss          L = BCE(ŷ, y)                                          (Eq. 8)
 *
 * The equation numbers follow the paper's §4.1 (hybrid experts, hybrid critics); they could not be
 * re-checked against the PDF offline, the formulas against net.py they were. The meta-learning of
 * stage 1 (inner step on a campaign's support set, outer step on its query set, the paper's Eq. 9–10)
 * lives in src/train/meta.ts; it builds this same function several times in one graph.
 *
 * Which id features are the ad (task) side is the config's `adFeatures`; every other id feature is a
 * user field. All of them must embed in the same dim (the task vector averages user fields). The
 * look-alike label travels in the input contract's `click` column (the data has one label). The
 * default schema is the built-in look-alike schema (src/features/lookalike.ts).
 */
import { MtlError } from "../errors.js";
import { layoutOf, type Layout } from "../features/batch.js";
import { LOOKALIKE_AD_FIELDS, defaultLookalikeSchema } from "../features/lookalike.js";
import * as ops from "../graph/ops.js";
import type { Value } from "../graph/ir.js";
import type { ModelContext, ModelDefinition, ModelOutputs } from "../train/model.js";
import { COMMON_RULES, boolean, commonDefaults, embeddedInput, nonEmptyLayerSizes, positiveInt, positiveNumber, registered, type CommonConfig, type Rule } from "./config.js";
import { CLICK_INPUT } from "./inputs.js";
import { type Activation, binaryCrossEntropy, experts, linear, mixExperts } from "./layers.js";


export const METAHEAC_PREDICTION = "p_lookalike";

export interface MetaheacConfig extends CommonConfig {
  /** Id features on the ad (task) side; the rest are user fields. Default PaddleRec's six ad columns (reader_train.py `ad_col`). */
  adFeatures: string[];
  /** K, the experts (PaddleRec `num_expert`). Default 8. */
  expertCount: number;
  /**
   * Hidden sizes of each expert (PaddleRec `mlp_dims`; its net.py applies only the first layer, so
   * the default is that one layer of 64).
   */
  expertSizes: number[];
  /** Hidden width of both task gates (PaddleRec: `mlp_dims[-1]`). Default 64. */
  gateHidden: number;
  /** C, the critics (PaddleRec `num_output`). Default 5. */
  criticCount: number;

  // Meta-learning hyperparameters (stage 1 and 2), kept beside the network so a run records them.
  /** T, campaigns sampled per outer step (PaddleRec `task_count`). Default 5. */
  taskCount: number;
  /** α, the inner SGD step on a campaign's support set (PaddleRec `local_lr`). Default 2e-4. */
  localLr: number;
  /** Inner SGD steps per campaign. Default 1 (PaddleRec). */
  innerSteps: number;
  /** First-order meta-gradient (PaddleRec's). false differentiates through the inner step. Default true. */
  firstOrder: boolean;
  /** Rows of each support and each query batch (PaddleRec `batch_size`). Default 32. */
  metaBatchSize: number;
  /** Stage 2: epochs over a campaign's seed users (PaddleRec `infer_train_epoch`). Default 2. */
  adaptEpochs: number;
  /** Stage 2: Adam learning rate (PaddleRec `local_test_learning_rate`). Default 1e-3. */
  adaptLr: number;
  /** Stage 2: minibatch rows of the fine-tuning (PaddleRec reuses `batch_size`). Default 32. */
  adaptBatchSize: number;
}

export function metaheacDefaults(): MetaheacConfig {
  return {
    ...commonDefaults(), schema: defaultLookalikeSchema(), adFeatures: [...LOOKALIKE_AD_FIELDS], expertCount: 8, expertSizes: [64], gateHidden: 64, criticCount: 5,
    taskCount: 5, localLr: 2e-4, innerSteps: 1, firstOrder: true, metaBatchSize: 32, adaptEpochs: 2, adaptLr: 1e-3, adaptBatchSize: 32,
  };
}

/** Where each id feature's pooled embedding sits in the input layer's output (see inputs.ts). */
export interface FieldColumns {
  name: string;
  offset: number;
  dim: number;
}

/** The user and ad fields of a layout for MetaHeac; fails naming the feature when the split cannot work. */
export function splitFields(layout: Layout, adFeatures: readonly string[]): { user: FieldColumns[]; ad: FieldColumns[]; dim: number } {
  const fields: FieldColumns[] = [];
  let offset = 0;
  for (const t of layout.tables) {
    for (const f of t.features) {
      fields.push({ name: f.feature.name, offset, dim: t.dim });
      offset += t.dim;
    }
  }
  for (const name of adFeatures) {
    if (!fields.some((f) => f.name === name)) {
      throw new MtlError("E_CONFIG", `metaheac: ad feature '${name}' is not an id feature of the schema`, { where: { field: "adFeatures" }, hint: `id features: ${fields.map((f) => f.name).join(", ")}` });
    }
  }
  const ad = fields.filter((f) => adFeatures.includes(f.name));
  const user = fields.filter((f) => !adFeatures.includes(f.name));
  if (ad.length === 0) throw new MtlError("E_CONFIG", "metaheac needs at least one ad feature (adFeatures)", { where: { field: "adFeatures" } });
  if (user.length === 0) throw new MtlError("E_CONFIG", "metaheac needs at least one user feature besides the ad features", { where: { field: "adFeatures" } });
  const dim = fields[0]!.dim;
  const odd = fields.find((f) => f.dim !== dim);
  if (odd) throw new MtlError("E_CONFIG", `metaheac: feature '${odd.name}' embeds in dim ${odd.dim}, the others in ${dim}; the task vector averages fields, so all must share one dim`, { where: { field: odd.name } });
  if (layout.denseWidth > 0) throw new MtlError("E_CONFIG", "metaheac takes id features only (PaddleRec's look-alike fields); the schema has dense features", { where: { field: "schema" } });
  return { user, ad, dim };
}

/** A task-driven gate: softmax(W₂ ReLU(W₁ t + b₁) + b₂) over `count` choices, [batch, count] (Eq. 3, 6). */
export function taskGate(ctx: ModelContext, name: string, task: Activation, hidden: number, count: number): Value {
  const h: Activation = { value: ops.Relu(linear(ctx, `${name}.0`, task, hidden).value), width: hidden };
  return ops.Softmax(linear(ctx, `${name}.1`, h, count).value, { axis: 1 });
}

/** The network and its loss; predictions `p_lookalike` [batch] and, outside inference, the two gates. */
export function buildMetaheac(ctx: ModelContext, c: MetaheacConfig): ModelOutputs {
  const layout = layoutOf(c.schema);
  const { user, ad, dim } = splitFields(layout, c.adFeatures);
  const x = embeddedInput(ctx, c).value;
  const column = (f: FieldColumns) => ops.Slice(x, [f.offset], [f.offset + dim], [1]);
  const userParts = user.map(column);
  // e_u = static ⊕ masked-mean(dynamic): the input layer already pooled each dynamic field.
  const userEmb: Activation = { value: userParts.length === 1 ? userParts[0]! : ops.Concat(userParts, { axis: 1 }), width: user.length * dim };
  // t = mean over the user fields ⊕ the ad fields (net.py: concat(mean(emb, axis=1), ad_emb)).
  const userMean = ops.Mul(userParts.length === 1 ? userParts[0]! : ops.Sum(...userParts), 1 / user.length);
  const task: Activation = { value: ops.Concat([userMean, ...ad.map(column)], { axis: 1 }), width: (ad.length + 1) * dim };

  const expertOutputs = experts(ctx, "expert", userEmb, c.expertCount, c.expertSizes);
  const expertGate = taskGate(ctx, "expert_gate", task, c.gateHidden, c.expertCount); // α (Eq. 3)
  const h = mixExperts(expertGate, expertOutputs); // h = Σ_k α_k E_k (Eq. 4)
  const critics = Array.from({ length: c.criticCount }, (_, j) => ops.Sigmoid(linear(ctx, `critic.${j}`, h, 1).value)); // c_j (Eq. 5)
  const criticGate = taskGate(ctx, "critic_gate", task, c.gateHidden, c.criticCount); // β (Eq. 6)
  const mixed = mixExperts(criticGate, critics.map((v) => ({ value: v, width: 1 }))).value; // ŷ = Σ_j β_j c_j (Eq. 7)
  const prediction = ops.Squeeze(mixed, [1]);
  const label = ctx.input(CLICK_INPUT, ctx.dtype, ["batch"]);
  const loss = binaryCrossEntropy(prediction, label); // Eq. 8
  // The gates are outputs of the training and eval programs (inspection, tests), not of the scoring graph.
  const gates: Record<string, Value> = ctx.mode === "inference" ? {} : { expert_gate: expertGate, critic_gate: criticGate };
  return {
    predictions: { [METAHEAC_PREDICTION]: prediction, ...gates },
    losses: { bce: loss },
    loss,
  };
}

export const metaheac: ModelDefinition<MetaheacConfig> = { name: "metaheac", build: buildMetaheac };

const featureNames: Rule = (v) => (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === "string" && s.length > 0) ? null : "a non-empty list of feature names");

export const METAHEAC_RULES: Readonly<Record<keyof MetaheacConfig, Rule>> = {
  ...COMMON_RULES,
  adFeatures: featureNames, expertCount: positiveInt, expertSizes: nonEmptyLayerSizes, gateHidden: positiveInt, criticCount: positiveInt,
  taskCount: positiveInt, localLr: positiveNumber, innerSteps: positiveInt, firstOrder: boolean, metaBatchSize: positiveInt,
  adaptEpochs: positiveInt, adaptLr: positiveNumber, adaptBatchSize: positiveInt,
};

export const metaheacEntry = registered(metaheac, metaheacDefaults, METAHEAC_RULES,
  "MetaHeac (KDD 2021): look-alike model, hybrid experts and critics gated by the campaign, meta-trained over campaigns, adapted per campaign (mtl adapt)");
