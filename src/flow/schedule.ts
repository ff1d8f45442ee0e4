/**
 * Learning-rate schedules as pure functions of the 1-based step number (the trainer feeds `lr` as
 * a graph input each step, so a schedule never rebuilds a graph and a resumed run gets the same
 * rates from the step count alone).
 *
 *   warm-up (linear):  lr · step / warmupSteps                        for step ≤ warmupSteps
 *   constant:          lr
 *   exponential:       lr · decayRate^((step − warmupSteps) / decaySteps)   (TF's exponential_decay;
 *                      with `staircase` the exponent is floored, so decaySteps = steps per epoch
 *                      gives PyTorch's per-epoch ExponentialLR(gamma = decayRate))
 */
import { MtlError } from "../errors.js";

export interface LrSchedule {
  kind: "constant" | "exponential";
  /** Exponential: the factor per `decaySteps` steps (0 < decayRate ≤ 1 to decay). */
  decayRate?: number;
  decaySteps?: number;
  staircase?: boolean;
  /** Linear warm-up from lr / warmupSteps to lr over the first warmupSteps steps (0 = none). */
  warmupSteps?: number;
}

export function checkSchedule(s: LrSchedule, field = "schedule"): LrSchedule {
  const bad = (key: string, what: string): never => {
    throw new MtlError("E_CONFIG", `'${key}' ${what}`, { where: { field: `${field}.${key}` } });
  };
  if (s.kind !== "constant" && s.kind !== "exponential") bad("kind", `must be constant or exponential, got ${JSON.stringify(s.kind)}`);
  const warm = s.warmupSteps ?? 0;
  if (!(Number.isInteger(warm) && warm >= 0)) bad("warmupSteps", `must be an integer >= 0, got ${JSON.stringify(s.warmupSteps)}`);
  if (s.kind === "exponential") {
    if (!(typeof s.decayRate === "number" && s.decayRate > 0)) bad("decayRate", `must be a number > 0, got ${JSON.stringify(s.decayRate)}`);
    if (!(Number.isInteger(s.decaySteps) && s.decaySteps! > 0)) bad("decaySteps", `must be a positive integer, got ${JSON.stringify(s.decaySteps)}`);
  }
  return s;
}

/** The learning rate of step `step` (1-based). */
export function learningRate(base: number, s: LrSchedule, step: number): number {
  const warm = s.warmupSteps ?? 0;
  if (warm > 0 && step <= warm) return (base * step) / warm;
  if (s.kind === "constant") return base;
  const t = (step - warm) / s.decaySteps!;
  return base * s.decayRate! ** (s.staircase ? Math.floor(t) : t);
}
