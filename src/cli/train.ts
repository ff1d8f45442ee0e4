/** `mtl train` and `mtl eval`: thin commands over src/flow/run.ts and src/flow/evaluate.ts. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { refuseOverwritingInput, writeJsonAtomic } from "../util/atomic.js";
import { runInputs } from "../flow/rundir.js";
import { MtlError } from "../errors.js";
import { METRIC_COLUMNS, formatMetric, type FunnelMetrics } from "../metrics/funnel.js";
import { cudaInstalled, type Device } from "../runtime/session.js";
import { applyFlags, defaultRunConfig, readRunConfig, type RunConfig } from "../flow/config.js";
import { evaluateRun } from "../flow/evaluate.js";
import { trainRun, type RunEvent } from "../flow/run.js";
import { metaTrainRun } from "../flow/meta-run.js";
import { readJson, RUN_FILES, type RunManifest } from "../flow/rundir.js";
import { checkImpliedModel } from "../flow/paddlerec.js";
import { formatCount, table } from "./format.js";
import { progressPrinter } from "./data.js";

export interface TrainArgs {
  model?: string;
  train?: string;
  valid?: string;
  /** The run directory; PaddleRec's runner.model_save_path when not given. */
  out?: string;
  config?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  validFraction?: number;
  checkpointEvery?: number;
  logEvery?: number;
  patience?: number;
  resume: boolean;
  device?: string;
  /** Print the run's summary (summary.json) as JSON instead of the table. */
  json?: boolean;
}

function device(d: string | undefined): Device | undefined {
  if (d === undefined) return undefined;
  if (d !== "cpu" && d !== "cuda") throw new MtlError("E_USAGE", `unknown device '${d}'`, { hint: "use cpu or cuda" });
  return d;
}

function duration(secs: number): string {
  if (!Number.isFinite(secs)) return "?";
  const s = Math.round(secs);
  return s >= 3600 ? `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * Progress of a run on stderr: on a terminal a bar rewritten in place (epoch, step, rate, ETA,
 * loss); otherwise a plain line every `every` seconds. Epoch results are always printed.
 */
export function runProgress(label: string, opts: { every?: number; write?: (s: string) => void; tty?: boolean } = {}): (e: RunEvent) => void {
  const write = opts.write ?? ((s: string) => process.stderr.write(s));
  const tty = opts.tty ?? process.stderr.isTTY === true;
  const every = (opts.every ?? 5) * 1000;
  let start = Date.now(), startExamples = 0, startStep = 0;
  let timing = false, last = 0, shown = false, stepsPerEpoch: number | null = null, epochs = 1, lossEma: number | null = null;
  const clear = () => {
    if (shown) write("\r\x1b[2K");
    shown = false;
  };
  return (e) => {
    switch (e.kind) {
      case "start":
        stepsPerEpoch = e.stepsPerEpoch;
        epochs = e.epochs;
        if (e.resumedFrom > 0) write(`${label}: resuming at step ${e.resumedFrom}\n`);
        return;
      case "step": {
        lossEma = lossEma === null ? e.loss : 0.95 * lossEma + 0.05 * e.loss;
        const now = Date.now();
        if (!timing) {
          // Rates count from the first step seen (after any resume and the programs' start-up).
          timing = true;
          start = now;
          startExamples = e.examples;
          startStep = e.step;
          last = now;
        }
        if (now - last < (tty ? 250 : every)) return;
        last = now;
        const secs = Math.max((now - start) / 1000, 1e-3);
        const rate = (e.examples - startExamples) / secs;
        const stepRate = (e.step - startStep) / secs;
        const total = stepsPerEpoch !== null ? stepsPerEpoch * epochs : null;
        const eta = total !== null ? (total - e.step) / Math.max(stepRate, 1e-9) : NaN;
        const frac = total !== null ? Math.min(e.step / total, 1) : null;
        const bar = frac !== null ? `[${"#".repeat(Math.round(frac * 24)).padEnd(24, ".")}] ${(100 * frac).toFixed(0).padStart(3)}% ` : "";
        const text = `${label}: ${bar}epoch ${e.epoch + 1}/${epochs} step ${formatCount(e.step)}${total !== null ? "/" + formatCount(total) : ""}  ${formatCount(Math.round(rate))} ex/s  ETA ${duration(eta)}  loss ${lossEma.toFixed(4)}  lr ${e.lr.toPrecision(3)}`;
        if (tty) {
          write(`\r\x1b[2K${text}`);
          shown = true;
        } else write(text + "\n");
        return;
      }
      case "evaluating":
        clear();
        if (!tty) write(`${label}: epoch ${e.epoch + 1}: evaluating on the validation set\n`);
        return;
      case "epoch": {
        clear();
        const v = e.valid;
        const parts = [`train loss ${e.trainLoss.toFixed(4)}`];
        if (e.validLoss !== null) parts.push(`valid loss ${e.validLoss.toFixed(4)}`);
        if (v) for (const k of ["ctr_auc", "cvr_auc", "ctcvr_auc"] as const) if (v[k] !== null) parts.push(`${k} ${v[k].toFixed(4)}`);
        write(`${label}: epoch ${e.epoch + 1} done at step ${formatCount(e.step)}: ${parts.join(", ")}${e.improved ? " (best)" : ""}\n`);
        return;
      }
      case "checkpoint":
        return;
      case "warning":
        clear();
        write(`${label}: warning: ${e.message}\n`);
        return;
      case "done":
        clear();
        return;
    }
  };
}

export async function trainCommand(args: TrainArgs): Promise<void> {
  if (args.resume) {
    const given = (["model", "train", "valid", "config", "epochs", "batchSize", "lr", "seed", "validFraction", "checkpointEvery", "logEvery", "patience"] as const).filter((k) => args[k] !== undefined);
    if (given.length) process.stderr.write(`train: --resume continues with the settings in ${args.out}/run.json; ignoring ${given.map((k) => "--" + k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())).join(", ")}\n`);
  }
  let config: RunConfig = args.config ? readRunConfig(args.config) : defaultRunConfig();
  const pr = config.paddleRec;
  if (args.model) config.model = checkImpliedModel(args.model, pr?.impliedModel, args.config) ?? args.model;
  if (args.train) config.data.train = args.train;
  if (args.valid) config.data.valid = args.valid;
  config = applyFlags(config, {
    epochs: args.epochs, batchSize: args.batchSize, lr: args.lr, seed: args.seed, validFraction: args.validFraction,
    checkpointEvery: args.checkpointEvery, logEvery: args.logEvery, patience: args.patience,
  });
  const out = args.out ?? pr?.saveDir;
  if (out === undefined) throw new MtlError("E_USAGE", "no run directory", { hint: "pass --out <dir> (or runner.model_save_path in a PaddleRec config)" });
  if (pr?.unused.length && !args.resume) process.stderr.write(`train: ${args.config}: understood but unused: ${pr.unused.join("; ")}\n`);
  const dev = configDevice(args.device, pr?.device, "train");
  // Ctrl-C: stop at the next batch, after a checkpoint (a second Ctrl-C quits at once).
  const stop = new AbortController();
  const onInt = () => {
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write("\ntrain: stopping after the current batch and a checkpoint (Ctrl-C again to quit now)\n");
    stop.abort();
  };
  process.on("SIGINT", onInt);
  let summary;
  try {
    // MetaHeac trains over campaigns (stage 1), not over a stream of rows.
    const run = config.model === "metaheac" ? metaTrainRun : trainRun;
    summary = await run({ config, out, resume: args.resume, ...(dev ? { device: dev } : {}), onEvent: runProgress("train"), signal: stop.signal });
  } finally {
    process.off("SIGINT", onInt);
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ ...summary, runDir: args.out }) + "\n");
    if (summary.status === "interrupted") process.exitCode = 130;
    return;
  }
  if (summary.status === "interrupted") {
    process.stdout.write(`interrupted at step ${formatCount(summary.steps)}; checkpoint written. Continue with: mtl train --out ${out} --resume\n`);
    process.exitCode = 130;
    return;
  }
  const lines = [`${summary.status === "early_stopped" ? "stopped early" : "finished"}: ${formatCount(summary.steps)} steps, ${summary.epochs} epochs, ${formatCount(summary.examples)} examples in ${summary.seconds.toFixed(1)} s`];
  if (summary.best) {
    lines.push(`best ${summary.earlyStoppingMetric} ${summary.best.value.toFixed(4)} at epoch ${summary.best.epoch} (step ${formatCount(summary.best.step)}), validation metrics:`);
    lines.push(metricsTable([{ name: "valid", metrics: summary.best.metrics }]));
  }
  lines.push(`run directory: ${out}`);
  process.stdout.write(lines.join("\n") + "\n");
  // PaddleRec's test_data_dir: the test set is evaluated once, with the best state, after training.
  const test = config.data.test;
  if (test !== undefined && !args.resume) {
    const res = await evaluateRun({ runDir: out, data: test, ...(pr?.eval.batchSize ? { batchSize: pr.eval.batchSize } : {}), ...(dev ? { device: dev } : {}) });
    const file = join(out, "test.json");
    writeJsonAtomic(file, res, "test metrics");
    process.stdout.write(`test (${test}, ${formatCount(res.rows)} rows) with ${res.checkpoint}:\n${metricsTable([{ name: "test", metrics: res.metrics }])}\nwrote ${file}\n`);
  }
}

/**
 * The device: --device, else the config's (PaddleRec's use_gpu). A config asking for a GPU on a
 * machine without onnxruntime's CUDA provider runs on the CPU with a warning, so the file runs as it is.
 */
function configDevice(flag: string | undefined, fromConfig: Device | undefined, label: string): Device | undefined {
  const given = device(flag);
  if (given) return given;
  if (fromConfig === "cuda" && !cudaInstalled()) {
    process.stderr.write(`${label}: the config sets use_gpu, but onnxruntime's CUDA provider is not installed: running on the CPU\n`);
    return "cpu";
  }
  return fromConfig;
}

/** Metrics side by side: one column per named result, one row per metric that any result has. */
export function metricsTable(results: readonly { name: string; metrics: FunnelMetrics }[]): string {
  const rows = [["metric", ...results.map((r) => r.name)]];
  for (const c of METRIC_COLUMNS) {
    if (results.every((r) => r.metrics[c.key] == null)) continue;
    rows.push([c.label, ...results.map((r) => formatMetric(r.metrics[c.key] as number | null, c.key))]);
  }
  if (results.some((r) => r.metrics.ctr_accuracy != null)) rows.push(["threshold (accuracy ... F1)", ...results.map((r) => String(r.metrics.threshold ?? 0.5))]);
  rows.push(["rows (impressions/clicks/conversions)", ...results.map((r) => `${r.metrics.impressions}/${r.metrics.clicks}/${r.metrics.conversions}`)]);
  const notes = results.flatMap((r) => Object.entries(r.metrics.not_computable ?? {}).map(([k, why]) => `${results.length > 1 ? r.name + ": " : ""}${k}: ${why}`));
  return table(rows) + (notes.length ? `\nnot computable on these rows: ${notes.join("; ")}` : "");
}

export async function evalCommand(args: { run?: string; data?: string; config?: string; json?: string; latest: boolean; split: string; batchSize?: number; device?: string }): Promise<void> {
  if (!["all", "valid", "train"].includes(args.split)) throw new MtlError("E_USAGE", `unknown split '${args.split}'`, { hint: "use all, valid or train" });
  // A PaddleRec config gives the defaults: infer_load_path, test_data_dir, infer_batch_size, use_gpu.
  const config = args.config ? readRunConfig(args.config) : undefined;
  const pr = config?.paddleRec;
  const run = args.run ?? pr?.eval.run;
  if (run === undefined) throw new MtlError("E_USAGE", "name the run directory", { hint: "mtl eval <run> (or --config with runner.infer_load_path)" });
  const data = args.data ?? config?.data.test ?? testDataOf(run);
  if (data === undefined) throw new MtlError("E_USAGE", "no data to evaluate on", { hint: "pass --data <file|dir> (or --config with runner.test_data_dir)" });
  const batchSize = args.batchSize ?? pr?.eval.batchSize;
  const dev = configDevice(args.device, pr?.device, "eval");
  if (args.json) refuseOverwritingInput(args.json, [...runInputs(run), { path: data, what: "the data" }], "--json");
  const progress = progressPrinter("eval");
  const start = Date.now();
  const res = await evaluateRun({
    runDir: run, data, which: args.latest ? "latest" : "best", split: args.split as "all" | "valid" | "train", ...(batchSize ? { batchSize } : {}), ...(dev ? { device: dev } : {}),
    onProgress: (rows) => progress.update(`${formatCount(rows)} rows scored, ${formatCount(Math.round(rows / Math.max((Date.now() - start) / 1000, 1e-3)))} rows/s`),
  });
  progress.done();
  // `--json -`: the JSON is standard output's, the table goes beside it on stderr.
  const text = args.json === "-" ? process.stderr : process.stdout;
  const out = [`${res.model} from ${res.checkpoint} (step ${formatCount(res.step)}) on ${res.data}${res.split === "all" ? "" : ` (the run's ${res.split} split)`}: ${formatCount(res.rows)} rows${res.loss !== null ? `, loss ${res.loss.toFixed(4)}` : ""}`, metricsTable([{ name: res.model, metrics: res.metrics }])];
  text.write(out.join("\n") + "\n");
  if (args.json) {
    writeJsonAtomic(args.json, res, "JSON");
    if (args.json !== "-") process.stdout.write(`wrote ${args.json}\n`);
  }
}

/** The test data a run was configured with (PaddleRec's test_data_dir), if any. */
function testDataOf(run: string): string | undefined {
  const file = join(run, RUN_FILES.run);
  if (!existsSync(file)) return undefined;
  return readJson<RunManifest>(file, "run.json").data.test ?? undefined;
}
