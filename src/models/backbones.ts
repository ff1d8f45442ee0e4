/**
 * Backbones: what sits between the shared input layer and one probability per task. Each returns a
 * probability [batch] per task name; the models choose a backbone and a loss. Parameter names:
 *   separate towers   `<task>.<i>`, head `<task>.out`
 *   shared bottom     `bottom.<i>`, then towers as above
 *   MMoE              experts `expert.<e>.<i>`, gates `gate.<task>`, then towers
 *   PLE               level l: experts `ple.<l>.<group>.expert.<e>.<i>`, gates `ple.<l>.gate.<group>`
 *                     (group = a task or `shared`), then towers
 * and the funnel objective shared by the CTR/CVR models (CTR over impressions, CVR over clicks,
 * CTCVR over impressions, each with a weight).
 */
import { MtlError } from "../errors.js";
import * as ops from "../graph/ops.js";
import type { Value } from "../graph/ir.js";
import type { ModelContext, ModelOutputs } from "../train/model.js";
import { type Activation, type LayerOptions, binaryCrossEntropy, experts, maskedBinaryCrossEntropy, mixExperts, mlp, softmaxGate, tower, weighted, type LossOptions } from "./layers.js";

export type TaskProbabilities = Record<string, Value>;

/** One MLP tower per task on the same input (ESMM's CTR and CVR towers). */
export function separateTowers(ctx: ModelContext, x: Activation, tasks: readonly string[], towerSizes: readonly number[] | ((task: string) => readonly number[]), opts: LayerOptions): TaskProbabilities {
  return Object.fromEntries(tasks.map((task) => [task, tower(ctx, task, x, typeof towerSizes === "function" ? towerSizes(task) : towerSizes, opts)]));
}

/** Shared-Bottom (Caruana 1997): one shared MLP, then a tower per task. */
export function sharedBottom(ctx: ModelContext, x: Activation, tasks: readonly string[], bottomSizes: readonly number[], towerSizes: readonly number[], opts: LayerOptions): TaskProbabilities {
  return separateTowers(ctx, mlp(ctx, "bottom", x, bottomSizes, opts), tasks, towerSizes, opts);
}

export interface MmoeShape {
  /** Number of experts (PaddleRec `expert_num`). */
  expertCount: number;
  /** Hidden sizes of each expert (PaddleRec: one layer of `expert_size`). */
  expertSizes: readonly number[];
  /** Hidden sizes of each task tower on the gated mix (PaddleRec: one layer of `tower_size`). */
  towerSizes: readonly number[];
}

/**
 * MMoE (Ma et al., KDD 2018): experts f_e shared by all tasks, a softmax gate per task,
 *   g^k(x) = softmax(W_gk·x)                 (eq. 5)
 *   f^k(x) = Σ_e g^k(x)_e · f_e(x)           (eq. 4)
 *   y_k    = h^k(f^k(x))                     (eq. 3; h^k a tower)
 */
export function mmoe(ctx: ModelContext, x: Activation, tasks: readonly string[], shape: MmoeShape, opts: LayerOptions): TaskProbabilities {
  const shared = experts(ctx, "expert", x, shape.expertCount, shape.expertSizes, opts);
  return Object.fromEntries(tasks.map((task) => {
    const mixed = mixExperts(softmaxGate(ctx, `gate.${task}`, x, shape.expertCount), shared);
    return [task, tower(ctx, task, mixed, shape.towerSizes, opts)];
  }));
}

export interface PleShape {
  /** Extraction levels (CGC layers stacked). */
  levels: number;
  /** Task-specific experts per task per level (m_k). */
  taskExperts: number;
  /** Shared experts per level (m_s). */
  sharedExperts: number;
  /** Hidden sizes of every expert. */
  expertSizes: readonly number[];
  /** Hidden sizes of each task tower. */
  towerSizes: readonly number[];
}

/**
 * PLE (Tang et al., RecSys 2020): stacked customized gate control (CGC) levels. At level j, task k
 * mixes its own experts E_k and the shared ones E_s with a softmax gate on its own input,
 *   g^{k,j} = w^{k,j}(g^{k,j-1}) · S^{k,j}(g^{k,j-1}),  S^{k,j} = [E_k; E_s],  w = softmax(W·input)
 * and the shared branch (every level but the last) mixes all experts of the level with its own
 * gate on the shared input. Level 1's inputs are all x. Towers t^k sit on g^{k,N}: y_k = t^k(g^{k,N}).
 */
export function ple(ctx: ModelContext, x: Activation, tasks: readonly string[], shape: PleShape, opts: LayerOptions): TaskProbabilities {
  let taskInputs: Activation[] = tasks.map(() => x);
  let sharedInput = x;
  for (let level = 0; level < shape.levels; level++) {
    const prefix = `ple.${level}`;
    const own = tasks.map((task, k) => experts(ctx, `${prefix}.${task}.expert`, taskInputs[k]!, shape.taskExperts, shape.expertSizes, opts));
    const common = experts(ctx, `${prefix}.shared.expert`, sharedInput, shape.sharedExperts, shape.expertSizes, opts);
    const nextTask = tasks.map((task, k) => {
      const choices = [...own[k]!, ...common];
      return mixExperts(softmaxGate(ctx, `${prefix}.gate.${task}`, taskInputs[k]!, choices.length), choices);
    });
    if (level < shape.levels - 1) {
      const all = [...own.flat(), ...common];
      sharedInput = mixExperts(softmaxGate(ctx, `${prefix}.gate.shared`, sharedInput, all.length), all);
    }
    taskInputs = nextTask;
  }
  return Object.fromEntries(tasks.map((task, k) => [task, tower(ctx, task, taskInputs[k]!, shape.towerSizes, opts)]));
}

/** Weights of the funnel objective's terms; a zero weight leaves the term out of the loss and the outputs. */
export interface FunnelWeights {
  /** BCE(pCTR, click) over all impressions. */
  ctrWeight: number;
  /** BCE(pCVR, conversion) over the clicked impressions only (the naive CVR objective). */
  cvrWeight: number;
  /** BCE(pCTR·pCVR, conversion) over all impressions (ESMM's CTCVR objective). */
  ctcvrWeight: number;
}

/**
 * Predictions p_ctr, p_cvr, p_ctcvr = p_ctr·p_cvr and the weighted sum of
 *   ctr:   BCE(pCTR, click) over impressions
 *   cvr:   BCE(pCVR, conversion) over clicked impressions (conversion = click AND buy, so on clicks it is buy)
 *   ctcvr: BCE(pCTCVR, conversion) over impressions
 */
export function funnelObjective(pCtr: Value, pCvr: Value, labels: { click: Value; conversion: Value }, w: FunnelWeights, loss: LossOptions = {}): ModelOutputs {
  const pCtcvr = ops.Mul(pCtr, pCvr);
  const losses: Record<string, Value> = {};
  const terms: Value[] = [];
  const add = (name: string, weight: number, make: () => Value) => {
    if (weight === 0) return;
    const term = make();
    losses[name] = term;
    terms.push(weighted(term, weight));
  };
  add("ctr", w.ctrWeight, () => binaryCrossEntropy(pCtr, labels.click, loss));
  add("cvr", w.cvrWeight, () => maskedBinaryCrossEntropy(pCvr, labels.conversion, labels.click, loss));
  add("ctcvr", w.ctcvrWeight, () => binaryCrossEntropy(pCtcvr, labels.conversion, loss));
  if (terms.length === 0) throw new MtlError("E_CONFIG", "every loss weight is 0: the model would learn nothing", { where: { field: "ctrWeight" }, hint: "give ctrWeight, cvrWeight or ctcvrWeight a positive value" });
  return {
    predictions: { p_ctr: pCtr, p_cvr: pCvr, p_ctcvr: pCtcvr },
    losses,
    loss: terms.length === 1 ? terms[0]! : ops.Sum(...terms),
  };
}
