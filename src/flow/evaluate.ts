/**
 * `mtl eval`: a run directory's best state (or its latest checkpoint) over a data set, with the
 * funnel metrics of src/metrics/funnel.ts computed exactly over every row.
 */
import { openDataSource } from "../data/source.js";
import { MtlError } from "../errors.js";
import type { FunnelCurves, FunnelMetrics } from "../metrics/funnel.js";
import type { RegisteredModel } from "../models/index.js";
import type { Device } from "../runtime/session.js";
import { buildEvalProgram } from "../train/program.js";
import { evaluatePass } from "./run.js";
import { loadRun } from "./rundir.js";
import { Trainer } from "../train/trainer.js";

export interface EvalResult {
  run: string;
  model: string;
  checkpoint: string;
  step: number;
  data: string;
  split: "all" | "valid" | "train";
  rows: number;
  loss: number | null;
  metrics: FunnelMetrics;
  curves: FunnelCurves;
}

export interface EvalOptions {
  runDir: string;
  data: string;
  /** "best" (default: best.mtlstate when the run has one, else the latest checkpoint) or "latest". */
  which?: "best" | "latest";
  batchSize?: number;
  /**
   * Which rows: "all" (default), or the run's own split of the data by sample id — "valid" (the rows
   * it held out, run.json's data.validFraction) or "train".
   */
  split?: "all" | "valid" | "train";
  device?: Device;
  /** Of the accuracy / precision / recall / F1 metrics (default: the run's training.classificationThreshold, else 0.5). */
  threshold?: number;
  models?: Readonly<Record<string, RegisteredModel>>;
  onProgress?: (rows: number) => void;
}

export async function evaluateRun(opts: EvalOptions): Promise<EvalResult> {
  const { manifest, entry, config, schema, state, checkpoint } = loadRun(opts.runDir, { which: opts.which ?? "best", ...(opts.models ? { models: opts.models } : {}) });
  const source = await openDataSource(opts.data, { schema });
  const trainer = await Trainer.create(state, { eval: buildEvalProgram(entry.definition, config) }, { ...(opts.device ? { device: opts.device } : {}), intraOpThreads: 2 });
  try {
    const split = opts.split ?? "all";
    if (split !== "all" && !(manifest.data.validFraction > 0)) {
      throw new MtlError("E_USAGE", `the run held out no rows of its training data (validFraction 0), so there is no '${split}' split`, { where: { file: opts.runDir }, hint: "evaluate all rows of a separate data set instead" });
    }
    const batches = source.batches({ batchSize: opts.batchSize ?? 4096, shuffle: false, ...(split === "all" ? {} : { validFraction: manifest.data.validFraction, part: split }) });
    const res = await evaluatePass(trainer, source.layout, batches, opts.onProgress);
    return {
      run: opts.runDir, model: manifest.model, checkpoint, step: state.step, data: opts.data, split, rows: res.collector.size,
      loss: res.loss, metrics: res.collector.metrics({ threshold: opts.threshold ?? manifest.training.classificationThreshold ?? 0.5 }), curves: res.collector.curves(),
    };
  } finally {
    await trainer.release();
    await source.close();
  }
}
