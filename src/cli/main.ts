/**
 * The `mtl` command line: thin yargs commands over the library. Commands compute nothing themselves.
 * A user error prints one line (`mtl: file:line: what is wrong (hint)`) and exits 1; a usage error
 * exits 2; anything else is a bug and prints its stack.
 */
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { escapeControl, isMtlError } from "../errors.js";
import { describeIoError } from "../util/atomic.js";
import { VERSION } from "../version.js";
import { registerDataCommands } from "./data.js";
import { inspectCommand } from "./inspect.js";
import { exportCommand } from "./export.js";
import { runCommand } from "./run.js";
import { serveCommand } from "./serve.js";
import { evalCommand, trainCommand } from "./train.js";
import { reportCommand } from "./report.js";
import { demoCommand } from "./demo.js";
import { adaptCommand } from "./adapt.js";
import { withExamples } from "./examples.js";
import { joinDashValues, rejectBadNumbers } from "./args.js";
import { MODELS } from "../models/index.js";
import { OPTIMIZER_KINDS } from "../optim/index.js";
import { DEVICES, parseDevice } from "../runtime/session.js";

/** --device on every command that runs a model; docs/gpu.md says what each needs. */
const DEVICE_OPTION = { type: "string", choices: DEVICES, describe: "where onnxruntime runs the model: cpu, webgpu (Vulkan/Metal/D3D12 driver) or cuda (ONNXRUNTIME_NODE_INSTALL=cuda12); see docs/gpu.md" } as const;

export async function main(rawArgv: string[] = hideBin(process.argv)): Promise<void> {
  const argv = joinDashValues(rawArgv);
  const cli = yargs(argv)
    .scriptName("mtl")
    .usage("$0 <command> [options]\n\nMulti-task conversion-rate models as ONNX graphs: build, train, serve.")
    .version(VERSION)
    .option("verbose", { type: "boolean", default: false, global: true, describe: "show onnxruntime's own log lines and the raw text behind an error" })
    .middleware((a) => {
      if (a.verbose) process.env["MTL_VERBOSE"] = "1";
    })
    .strict()
    .demandCommand(1, "name a command")
    .middleware(rejectBadNumbers(argv), true)
    .recommendCommands()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .command(
      "inspect <model>",
      "summarise an .onnx file: IR version, opsets, inputs, outputs, ops, parameters, metadata",
      (y) =>
        withExamples(y, "inspect")
          .positional("model", { type: "string", demandOption: true, describe: "path to an .onnx file" })
          .option("json", { type: "boolean", default: false, describe: "print the summary as JSON" })
          .option("skip-checksum", { type: "boolean", default: false, describe: "summarise a model whose weights fail their checksum (mtl.weights)" })
          .option("device", { ...DEVICE_OPTION, describe: "also load the model on this device and print which nodes onnxruntime runs where" }),
      async (args) => inspectCommand(args.model, args.json, args["skip-checksum"], args.device),
    )
    .command("data", "data: prepare shards, synthesize a funnel with known truth, inspect files", (y) => withExamples(registerDataCommands(y), "data"))
    .command(
      "export",
      "write a model as ONNX: the scoring model (raw features in, p_ctr/p_cvr/p_ctcvr out, schema embedded), trained (--checkpoint) or freshly initialised; with --training, a directory of train_step.onnx, eval.onnx, inference.onnx, state.mtlstate and signature.json",
      (y) =>
        withExamples(y, "export")
          .option("model", { type: "string", choices: Object.keys(MODELS), describe: "model name (optional with --checkpoint)" })
          .option("checkpoint", { type: "string", describe: "a run directory of `mtl train` (run.json, best.mtlstate or checkpoint.mtlstate, summary.json); with --training its trained state is exported" })
          .option("schema", { type: "string", describe: "feature schema JSON file, - for standard input (sets the config's schema)" })
          .option("fp16", { type: "boolean", describe: "store embedding tables as float16 (a Cast to float32 follows each lookup)" })
          .option("max-piece-mb", { type: "number", describe: "split tables so no initializer exceeds this many MiB (default 128: WebGPU's guaranteed buffer binding size)" })
          .option("context-split", { type: "boolean", describe: "take the schema's context features once per context, not once per row (default true; --no-context-split writes plain ids.<table> inputs only; see docs/serving.md)" })
          .option("out", { alias: "o", type: "string", describe: "output .onnx file (- for standard output), or directory with --training (default: <model>.onnx, or <model>-training/, in the current directory)" })
          .option("json", { type: "boolean", default: false, describe: "print what was written as JSON" })
          .option("training", { type: "boolean", default: false, describe: "write the training artifacts (see docs/training-artifacts.md)" })
          .option("config", { type: "string", describe: "JSON file of model settings over the defaults (the ESMM reference configuration)" })
          .option("optimizer", { type: "string", choices: [...OPTIMIZER_KINDS], describe: "optimizer built into train_step.onnx (--training; default adam)" })
          .option("clip-norm", { type: "number", describe: "clip gradients by this global L2 norm" })
          .option("seed", { type: "number", describe: "seed of the initial weights (default 0; not with --checkpoint)" })
          .option("opset", { type: "number", describe: "ai.onnx opset (16..21, default 17)" }),
      async (args) => exportCommand({
        model: args.model, checkpoint: args.checkpoint, schema: args.schema, fp16: args.fp16, maxPieceMb: args["max-piece-mb"], contextSplit: args["context-split"], out: args.out, json: args.json, training: args.training, config: args.config, optimizer: args.optimizer,
        seed: args.seed, clipNorm: args["clip-norm"], opset: args.opset,
      }),
    )
    .command(
      "run <model>",
      "score a data file with an exported model (its embedded schema reads the rows): predictions as CSV or JSONL",
      (y) =>
        withExamples(y, "run")
          .positional("model", { type: "string", demandOption: true, describe: "an .onnx file written by mtl export" })
          .option("input", { alias: "i", type: "string", default: "-", describe: "data file: text (.gz read transparently), a shard written by mtl data prepare, or - for standard input" })
          .option("format", { type: "string", choices: ["aliccp", "csv", "jsonl"], describe: "input format (default: from the file name; for standard input, from its first line)" })
          .option("output", { alias: "o", type: "string", default: "-", describe: "predictions: .csv, or .jsonl (line, p_ctr, p_cvr, p_ctcvr per row); - for standard output" })
          .option("output-format", { type: "string", choices: ["csv", "jsonl"], describe: "predictions format (default: from the output name; csv for standard output)" })
          .option("json", { type: "boolean", default: false, describe: "print the summary as JSON (on stderr when predictions go to standard output)" })
          .option("batch-size", { type: "number", default: 8192, describe: "rows per session run" })
          .option("skip-bad", { type: "boolean", default: false, describe: "skip bad rows and count them (default: stop at the first, naming its line)" })
          .option("threads", { type: "number", default: 1, describe: "onnxruntime threads inside each session (parsing runs on its own thread beside them)" })
          .option("sessions", { type: "number", describe: "sessions of the model, each in its own worker thread, scoring blocks side by side (default 2, 1 on a 1-core machine; each holds a copy of the weights)" })
          .option("skip-checksum", { type: "boolean", default: false, describe: "load a model whose weights fail their checksum (a file you edited on purpose)" })
          .option("device", DEVICE_OPTION),
      async (args) => runCommand({
        model: args.model, input: args.input, output: args.output, format: args.format, outputFormat: args["output-format"], json: args.json, batchSize: args["batch-size"], skipBad: args["skip-bad"], threads: args.threads, sessions: args.sessions, skipChecksum: args["skip-checksum"], device: args.device,
      }),
    )
    .command(
      "serve <model>",
      "serve an exported model over HTTP JSON: POST /v1/score (one context, many candidates), GET /v1/model, GET /healthz",
      (y) =>
        withExamples(y, "serve")
          .positional("model", { type: "string", demandOption: true, describe: "an .onnx file written by mtl export" })
          .option("port", { type: "number", default: 8080, describe: "TCP port (0: any free port)" })
          .option("host", { type: "string", default: "127.0.0.1", describe: "address to listen on (loopback by default)" })
          .option("threads", { type: "number", default: 1, describe: "onnxruntime threads inside each session (HTTP and encoding run on the main thread beside them)" })
          .option("sessions", { type: "number", default: 1, describe: "sessions of the model, each in its own worker thread: up to this many micro-batches score at once (each holds a copy of the weights)" })
          .option("max-body-kb", { type: "number", default: 1024, describe: "largest request body (413 beyond)" })
          .option("max-candidates", { type: "number", default: 1000, describe: "most candidates in one request" })
          .option("timeout-ms", { type: "number", default: 2000, describe: "per-request scoring timeout (503 beyond)" })
          .option("rank-formula", { type: "string", describe: "what \"rank\": true sorts by (default p_ctcvr), e.g. \"p_ctcvr * bid\"" })
          .option("max-connections", { type: "number", default: 1024, describe: "most open connections; more are refused" })
          .option("body-timeout-ms", { type: "number", default: 10_000, describe: "a request whose headers and body take longer is answered 408 and closed" })
          .option("allow-origin", { type: "string", array: true, default: [] as string[], describe: "a browser origin (https://app.example.com) allowed to call the server, and a Host it may be reached by beyond loopback names; repeatable; '*' allows any" })
          .option("skip-checksum", { type: "boolean", default: false, describe: "load a model whose weights fail their checksum (a file you edited on purpose)" })
          .option("device", DEVICE_OPTION),
      async (args) => serveCommand({
        model: args.model, port: args.port, host: args.host, threads: args.threads, sessions: args.sessions, device: args.device, maxBodyKb: args["max-body-kb"],
        maxCandidates: args["max-candidates"], timeoutMs: args["timeout-ms"], rankFormula: args["rank-formula"],
        maxConnections: args["max-connections"], bodyTimeoutMs: args["body-timeout-ms"], allowOrigins: args["allow-origin"].map(String), skipChecksum: args["skip-checksum"],
      }),
    )
    .command(
      "train",
      "train a model: writes a run directory (run.json, checkpoints, metrics.jsonl, summary.json); --resume continues it exactly",
      (y) =>
        withExamples(y, "train")
          .option("model", { type: "string", describe: `model name (${Object.keys(MODELS).join(", ")}); default esmm or the config's` })
          .option("train", { type: "string", describe: "training data: a shard, a text file (Ali-CCP, CSV, JSONL; .gz ok) or synth:rows=N,seed=S,bias=B" })
          .option("valid", { type: "string", describe: "validation data (default: --valid-fraction of --train held out by sample id)" })
          .option("out", { alias: "o", type: "string", describe: "run directory (default: a PaddleRec config's runner.model_save_path)" })
          .option("config", { alias: "m", type: "string", describe: "YAML config naming every knob, or PaddleRec's own config.yaml as it is (-m, as PaddleRec's trainer); see docs/workflow.md" })
          .option("epochs", { type: "number", describe: "passes over the training data (default 1)" })
          .option("batch-size", { type: "number", describe: "examples per step (default 1024)" })
          .option("lr", { type: "number", describe: "base learning rate (default 0.001; the schedule is in the config)" })
          .option("seed", { type: "number", describe: "seed of the weights and of the data order" })
          .option("valid-fraction", { type: "number", describe: "share of --train held out for validation when there is no --valid (default 0.1)" })
          .option("checkpoint-every", { type: "number", describe: "steps between checkpoints (also at each epoch end)" })
          .option("log-every", { type: "number", describe: "steps between metrics.jsonl step records (default: about 1% of the run)" })
          .option("patience", { type: "number", describe: "early stopping: epochs without improvement on the validation set (0 = off)" })
          .option("resume", { type: "boolean", default: false, describe: "continue the run in --out from its last checkpoint" })
          .option("json", { type: "boolean", default: false, describe: "print the run's summary as JSON" })
          .option("device", DEVICE_OPTION),
      async (args) => trainCommand({
        model: args.model, train: args.train, valid: args.valid, out: args.out, config: args.config, epochs: args.epochs,
        batchSize: args["batch-size"], lr: args.lr, seed: args.seed, validFraction: args["valid-fraction"],
        checkpointEvery: args["checkpoint-every"], logEvery: args["log-every"], patience: args.patience, resume: args.resume, device: args.device, json: args.json,
      }),
    )
    .command(
      "adapt <model>",
      "MetaHeac stage 2: fine-tune a copy of a meta-trained model on one campaign's seed rows (Adam) and score its candidates",
      (y) =>
        y
          .positional("model", { type: "string", demandOption: true, describe: "a metaheac run directory (mtl train) or its exported bundle (mtl export --checkpoint)" })
          .option("seeds", { type: "string", demandOption: true, describe: "the campaign's seed rows with labels (look-alike JSONL)" })
          .option("candidates", { type: "string", demandOption: true, describe: "rows to score (look-alike JSONL; labels, when present, give an AUC)" })
          .option("output", { alias: "o", type: "string", demandOption: true, describe: "scores as CSV: row, [aid,] label, p_lookalike" })
          .option("epochs", { type: "number", describe: "passes over the seeds (default the model's adaptEpochs, PaddleRec's infer_train_epoch 2)" })
          .option("lr", { type: "number", describe: "Adam learning rate (default the model's adaptLr, PaddleRec's local_test_learning_rate 1e-3)" })
          .option("batch-size", { type: "number", describe: "seed rows per step (default the model's adaptBatchSize)" })
          .option("seed", { type: "number", describe: "seed of the one shuffle of the seed rows (default 2021)" })
          .option("threads", { type: "number", default: 1, describe: "onnxruntime threads" })
          .option("device", DEVICE_OPTION),
      async (args) => adaptCommand({
        model: args.model, seeds: args.seeds, candidates: args.candidates, output: args.output, epochs: args.epochs, lr: args.lr,
        batchSize: args["batch-size"], seed: args.seed, intraOpThreads: args.threads, ...(args.device ? { device: parseDevice(args.device) } : {}),
      }),
    )
    .command(
      "eval [run]",
      "evaluate a run's best state (or --latest checkpoint) on a data set: exact CTR/CVR/CTCVR AUC, logloss, PCOC, GAUC, CVR bias",
      (y) =>
        withExamples(y, "eval")
          .positional("run", { type: "string", describe: "run directory written by mtl train (default: the config's runner.infer_load_path)" })
          .option("data", { type: "string", describe: "a shard, a text file, a directory or glob of them, or synth:... (default: the config's or the run's test data)" })
          .option("config", { alias: "m", type: "string", describe: "a config (PaddleRec's config.yaml too): its infer_load_path, test_data_dir, infer_batch_size, use_gpu are the defaults" })
          .option("json", { type: "string", describe: "also write the metrics (and ROC/calibration curves) as JSON to this file (- for standard output)" })
          .option("latest", { type: "boolean", default: false, describe: "use checkpoint.mtlstate instead of best.mtlstate" })
          .option("split", { type: "string", default: "all", choices: ["all", "valid", "train"], describe: "all rows, or the run's own held-out (valid) or training rows of this data, split by sample id as in training" })
          .option("batch-size", { type: "number" })
          .option("device", DEVICE_OPTION),
      async (args) => evalCommand({ run: args.run, data: args.data, config: args.config, json: args.json, latest: args.latest, split: args.split, batchSize: args["batch-size"], device: args.device }),
    )
    .command(
      "report <run>",
      "write one self-contained HTML report of a run: loss and AUC curves, ROC per task, reliability plot, config and data",
      (y) =>
        withExamples(y, "report")
          .positional("run", { type: "string", demandOption: true, describe: "run directory written by mtl train" })
          .option("out", { alias: "o", type: "string", describe: "HTML file, - for standard output (default <run>/report.html)" }),
      async (args) => reportCommand({ run: args.run, out: args.out }),
    )
    .command(
      "demo",
      "the quick start: on a synthetic funnel with strong selection bias, train the naive CVR baseline, ESMM and ESCM2, compare them on test impressions, export the one the comparison supports and score records with it",
      (y) =>
        withExamples(y, "demo")
          .option("out", { alias: "o", type: "string", default: "mtl-demo", describe: "directory for the runs and the exported model (an earlier demo's output there is replaced)" })
          .option("force", { type: "boolean", default: false, describe: "replace runs in --out that no demo wrote" })
          .option("rows", { type: "number", describe: "training impressions (default 30,000: the documented demo world)" })
          .option("seed", { type: "number", describe: "the world's seed (default 1)" })
          .option("json", { type: "boolean", default: false, describe: "print the comparison and the scored records as JSON" })
          .option("device", DEVICE_OPTION),
      async (args) => demoCommand({ out: args.out, force: args.force, json: args.json, device: args.device, ...(args.rows !== undefined ? { rows: args.rows } : {}), ...(args.seed !== undefined ? { seed: args.seed } : {}) }),
    )
    .example("mtl demo", "the quick start: train, compare and export on a synthetic funnel")
    .example("mtl export --model escm2", "write ./escm2.onnx (freshly initialised)")
    .example("mtl run escm2.onnx < test.txt > preds.csv", "score records from standard input")
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`mtl: ${msg} (see mtl --help)\n`);
      process.exit(2);
    });
  try {
    await cli.parseAsync();
  } catch (err) {
    const verbose = process.env["MTL_VERBOSE"] === "1";
    if (isMtlError(err)) {
      process.stderr.write(`mtl: ${err.format()}\n`);
      const cause = err.cause instanceof Error ? err.cause.message : err.cause;
      if (verbose && cause !== undefined) process.stderr.write(`mtl: the underlying error was:\n${String(cause)}\n`);
      process.exit(1);
    }
    // A file-system error that no command translated (it names its path): still one line.
    const io = err as NodeJS.ErrnoException;
    if (!verbose && io instanceof Error && typeof io.code === "string" && typeof io.syscall === "string") {
      process.stderr.write(`mtl: ${escapeControl(`${io.path ? io.path + ": " : ""}cannot ${io.syscall}: ${describeIoError(io)}`)}\n`);
      process.exit(1);
    }
    throw err;
  }
}
