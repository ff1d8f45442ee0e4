/**
 * `mtl adapt`: MetaHeac's stage 2 on onnxruntime-node. Loads a metaheac run directory or an
 * exported adaptation bundle, fine-tunes a copy on one campaign's seed rows (src/adapt/adapter.ts,
 * the code the browser runs too) and writes a score per candidate row.
 */
import { createWriteStream } from "node:fs";
import { MtlError } from "../errors.js";
import type { Batch, Layout } from "../features/batch.js";
import type { FeatureSchema } from "../features/schema.js";
import { openDataSource } from "../data/source.js";
import { Session, type Tensor } from "../runtime/session.js";
import { METAHEAC_PREDICTION } from "../models/metaheac.js";
import { Adapter, adaptOnSeeds, type AdaptationPlan, type PlainTensor } from "../adapt/adapter.js";
import { concatRows, feedsOfRows, scoreRows } from "../adapt/rows.js";
import { loadAdaptable } from "../export/adaptation.js";

export interface AdaptOptions {
  /** A metaheac run directory or an exported adaptation bundle directory. */
  model: string;
  seeds: string;
  candidates: string;
  output: string;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  seed?: number;
  intraOpThreads?: number;
  onStep?: (done: number, total: number) => void;
}

export interface AdaptResult {
  model: string;
  seeds: number;
  candidates: number;
  plan: AdaptationPlan;
  epochLosses: number[];
  adaptSeconds: number;
  scoreSeconds: number;
  output: string;
  scores: Float32Array;
  labels: Uint8Array;
}

async function readRows(spec: string, schema: FeatureSchema, what: string): Promise<{ layout: Layout; rows: Batch; aid: Int32Array | null }> {
  const source = await openDataSource(spec, { schema });
  try {
    const batches: Batch[] = [];
    for await (const b of source.batches({ batchSize: 65536, shuffle: false })) batches.push(b);
    const rows = concatRows(source.layout, batches);
    if (rows.size === 0) throw new MtlError("E_DATA", `the ${what} file has no rows`, { where: { file: spec } });
    return { layout: source.layout, rows, aid: rows.task };
  } finally {
    await source.close();
  }
}

function checkPositive(v: number | undefined, flag: string, integer: boolean): void {
  if (v === undefined) return;
  if (!(Number.isFinite(v) && v > 0 && (!integer || Number.isInteger(v)))) throw new MtlError("E_USAGE", `--${flag} must be a positive ${integer ? "integer" : "number"}, got ${v}`, { where: { field: flag } });
}

export async function adaptCampaign(opts: AdaptOptions): Promise<AdaptResult> {
  checkPositive(opts.epochs, "epochs", true);
  checkPositive(opts.lr, "lr", false);
  checkPositive(opts.batchSize, "batch-size", true);
  const m = loadAdaptable(opts.model);
  const plan: AdaptationPlan = {
    epochs: opts.epochs ?? m.plan.epochs, lr: opts.lr ?? m.plan.lr, batchSize: opts.batchSize ?? m.plan.batchSize, seed: opts.seed ?? m.plan.seed,
  };
  const seeds = await readRows(opts.seeds, m.config.schema, "seeds");
  const candidates = await readRows(opts.candidates, m.config.schema, "candidates");
  const sessionOptions = { intraOpThreads: opts.intraOpThreads ?? 1 };
  const train = await Session.create(m.programs.train.bytes, { ...sessionOptions, source: "<metaheac adaptation step>" });
  const evaluation = await Session.create(m.programs.eval.bytes, { ...sessionOptions, source: "<metaheac eval program>" });
  try {
    const adapter = new Adapter(m.programs.train.signature, m.programs.eval.signature, m.weights,
      async (program, feeds) => (await (program === "train" ? train : evaluation).run(feeds as Record<string, Tensor>)) as Record<string, PlainTensor>);
    const t0 = Date.now();
    const epochLosses = await adaptOnSeeds(adapter, seeds.rows.size, plan, (which) => feedsOfRows(seeds.layout, seeds.rows, which), opts.onStep);
    const t1 = Date.now();
    const scores = await scoreRows(adapter, candidates.layout, candidates.rows);
    const t2 = Date.now();
    await writeScores(opts.output, scores, candidates.rows, candidates.aid);
    return {
      model: m.source, seeds: seeds.rows.size, candidates: candidates.rows.size, plan, epochLosses,
      adaptSeconds: (t1 - t0) / 1000, scoreSeconds: (t2 - t1) / 1000, output: opts.output, scores, labels: candidates.rows.click,
    };
  } finally {
    await train.release();
    await evaluation.release();
  }
}

/** CSV: row (1-based, in candidate order), aid where the rows carry it, label, score. */
function writeScores(path: string, scores: Float32Array, rows: Batch, aid: Int32Array | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(path);
    out.on("error", (err) => reject(new MtlError("E_IO", `cannot write the scores: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file: path } })));
    const lines: string[] = [aid ? `row,aid,label,${METAHEAC_PREDICTION}` : `row,label,${METAHEAC_PREDICTION}`];
    for (let r = 0; r < scores.length; r++) lines.push(aid ? `${r + 1},${aid[r]},${rows.click[r]},${scores[r]}` : `${r + 1},${rows.click[r]},${scores[r]}`);
    out.end(lines.join("\n") + "\n", () => resolve());
  });
}
