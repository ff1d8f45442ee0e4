/**
 * Optimizers as update rules inside the step graph. Each takes a parameter, its gradient and its
 * slots (optimizer state such as Adam's moments) as graph Values and returns their new values; the
 * learning rate and the step count are graph inputs, so a schedule needs no rebuild. The same rule
 * updates a dense parameter and a block of embedding rows: applied to only the rows a batch touched,
 * it is the lazy (row-sparse) form, as PaddleRec's lazy_mode.
 */
import { MtlError } from "../errors.js";
import * as ops from "../graph/ops.js";
import type { Value } from "../graph/ir.js";

export type OptimizerConfig =
  | { kind: "sgd"; momentum?: number; weightDecay?: number }
  | { kind: "adam"; beta1?: number; beta2?: number; epsilon?: number }
  | { kind: "adamw"; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number }
  | { kind: "adagrad"; epsilon?: number; initialAccumulator?: number };

export type OptimizerKind = OptimizerConfig["kind"];
export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ["sgd", "adam", "adamw", "adagrad"];

/** Every knob with its default filled in (what a checkpoint records). */
export type ResolvedOptimizer =
  | { kind: "sgd"; momentum: number; weightDecay: number }
  | { kind: "adam"; beta1: number; beta2: number; epsilon: number }
  | { kind: "adamw"; beta1: number; beta2: number; epsilon: number; weightDecay: number }
  | { kind: "adagrad"; epsilon: number; initialAccumulator: number };

export function resolveOptimizer(c: OptimizerConfig): ResolvedOptimizer {
  switch (c.kind) {
    case "sgd": return { kind: "sgd", momentum: c.momentum ?? 0, weightDecay: c.weightDecay ?? 0 };
    case "adam": return { kind: "adam", beta1: c.beta1 ?? 0.9, beta2: c.beta2 ?? 0.999, epsilon: c.epsilon ?? 1e-8 };
    case "adamw": return { kind: "adamw", beta1: c.beta1 ?? 0.9, beta2: c.beta2 ?? 0.999, epsilon: c.epsilon ?? 1e-8, weightDecay: c.weightDecay ?? 0.01 };
    case "adagrad": return { kind: "adagrad", epsilon: c.epsilon ?? 1e-10, initialAccumulator: c.initialAccumulator ?? 0 };
    default:
      throw new MtlError("E_CONFIG", `unknown optimizer '${(c as { kind: string }).kind}'`, { where: { field: "optimizer" }, hint: `use one of ${OPTIMIZER_KINDS.join(", ")}` });
  }
}

/** The slots each optimizer keeps per parameter, and the value they start at. */
export function optimizerSlots(c: OptimizerConfig): { name: string; initial: number }[] {
  const r = resolveOptimizer(c);
  switch (r.kind) {
    case "sgd": return r.momentum ? [{ name: "momentum", initial: 0 }] : [];
    case "adam":
    case "adamw": return [{ name: "m", initial: 0 }, { name: "v", initial: 0 }];
    case "adagrad": return [{ name: "accum", initial: r.initialAccumulator }];
  }
}

export interface Updated {
  param: Value;
  slots: Value[];
}

/** One step graph's update rule, and the step's scalars for the same rule done on the host (host.ts). */
export type Updater = ((param: Value, grad: Value, slots: readonly Value[]) => Updated) & {
  /**
   * The scalars of this step the rule uses beside its constants, as the graph computes them (so a
   * host update of table rows is bit-identical to the graph's): sgd, adagrad [lr]; adam [step size,
   * sqrt(1 - beta2^t)]; adamw those and lr * weight decay.
   */
  scalars(): Value[];
};

/**
 * Builds the update rule for one step graph. `step` is the 1-based number of this update (an int64
 * or float scalar input), `lr` a float scalar input. Bias corrections are built once and shared.
 */
export function createUpdater(config: OptimizerConfig, step: Value, lr: Value): Updater {
  const c = resolveOptimizer(config);
  const dtype = lr.dtype;
  const t = step.dtype === dtype ? step : ops.Cast(step, { to: dtype });
  let corrections: { stepSize: Value; sqrtBc2: Value } | undefined;
  // PyTorch's form (torch.optim.Adam): step_size = lr / (1 - beta1^t); denom = sqrt(v) / sqrt(1 - beta2^t) + eps
  const adamCorrections = (beta1: number, beta2: number) =>
    (corrections ??= {
      stepSize: ops.Div(lr, ops.Sub(1, ops.Pow(lr.graph.scalar(beta1, dtype), t))),
      sqrtBc2: ops.Sqrt(ops.Sub(1, ops.Pow(lr.graph.scalar(beta2, dtype), t))),
    });

  let lrDecay: Value | undefined;
  const decay = (weightDecay: number) => (lrDecay ??= ops.Mul(lr, weightDecay));
  const rule = (param: Value, grad: Value, slots: readonly Value[]): Updated => {
    switch (c.kind) {
      case "sgd": {
        const g = c.weightDecay ? ops.Add(grad, ops.Mul(param, c.weightDecay)) : grad;
        if (!c.momentum) return { param: ops.Sub(param, ops.Mul(g, lr)), slots: [] };
        const buf = ops.Add(ops.Mul(slots[0]!, c.momentum), g); // v = mu v + g
        return { param: ops.Sub(param, ops.Mul(buf, lr)), slots: [buf] };
      }
      case "adam":
      case "adamw": {
        const { stepSize, sqrtBc2 } = adamCorrections(c.beta1, c.beta2);
        const m = ops.Add(ops.Mul(slots[0]!, c.beta1), ops.Mul(grad, 1 - c.beta1));
        const v = ops.Add(ops.Mul(slots[1]!, c.beta2), ops.Mul(ops.Mul(grad, grad), 1 - c.beta2));
        const denom = ops.Add(ops.Div(ops.Sqrt(v), sqrtBc2), c.epsilon);
        // AdamW (decoupled weight decay): p <- p - lr * wd * p, before the Adam step.
        const decayed = c.kind === "adamw" && c.weightDecay ? ops.Sub(param, ops.Mul(param, decay(c.weightDecay))) : param;
        return { param: ops.Sub(decayed, ops.Mul(stepSize, ops.Div(m, denom))), slots: [m, v] };
      }
      case "adagrad": {
        const acc = ops.Add(slots[0]!, ops.Mul(grad, grad));
        return { param: ops.Sub(param, ops.Div(ops.Mul(grad, lr), ops.Add(ops.Sqrt(acc), c.epsilon))), slots: [acc] };
      }
    }
  };
  const scalars = (): Value[] => {
    if (c.kind === "sgd" || c.kind === "adagrad") return [lr];
    const { stepSize, sqrtBc2 } = adamCorrections(c.beta1, c.beta2);
    return c.kind === "adamw" ? [stepSize, sqrtBc2, decay(c.weightDecay)] : [stepSize, sqrtBc2];
  };
  return Object.assign(rule, { scalars });
}

/**
 * Scales every gradient by min(1, maxNorm / ||g||), ||g|| the global L2 norm over all of them.
 * Returns the scaled gradients and the norm (before clipping).
 */
export function clipByGlobalNorm(grads: readonly Value[], maxNorm: number): { grads: Value[]; norm: Value } {
  if (!(maxNorm > 0)) throw new MtlError("E_CONFIG", `clip norm must be > 0, got ${maxNorm}`, { where: { field: "clipNorm" } });
  const squares = grads.map((g) => ops.ReduceSum(ops.Mul(g, g), { keepdims: 0 }));
  const norm = ops.Sqrt(ops.addAll(squares));
  const scale = ops.Div(maxNorm, ops.Max(norm, maxNorm));
  return { grads: grads.map((g) => ops.Mul(g, scale)), norm };
}
