/**
 * The `mtl` command line: thin yargs commands over the library. Commands compute nothing themselves.
 * A user error prints one line (`mtl: file:line: what is wrong (hint)`) and exits 1; a usage error
 * exits 2; anything else is a bug and prints its stack.
 */
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { isMtlError } from "../errors.js";
import { VERSION } from "../version.js";
import { registerDataCommands } from "./data.js";
import { inspectCommand } from "./inspect.js";
import { exportCommand } from "./export.js";
import { evalCommand, trainCommand } from "./train.js";
import { reportCommand } from "./report.js";
import { demoCommand } from "./demo.js";
import { MODELS } from "../models/index.js";
import { OPTIMIZER_KINDS } from "../optim/index.js";

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  const cli = yargs(argv)
    .scriptName("mtl")
    .usage("$0 <command> [options]\n\nMulti-task conversion-rate models as ONNX graphs: build, train, serve.")
    .version(VERSION)
    .strict()
    .demandCommand(1, "name a command (see mtl --help)")
    .recommendCommands()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .command(
      "inspect <model>",
      "summarise an .onnx file: IR version, opsets, inputs, outputs, ops, parameters, metadata",
      (y) =>
        y
          .positional("model", { type: "string", demandOption: true, describe: "path to an .onnx file" })
          .option("json", { type: "boolean", default: false, describe: "print the summary as JSON" }),
      async (args) => inspectCommand(args.model, args.json),
    )
    .command("data", "data: prepare shards, synthesize a funnel with known truth, inspect files", (y) => registerDataCommands(y))
    .command(
      "export",
      "write a model as ONNX: with --training, a directory of train_step.onnx, eval.onnx, inference.onnx, state.mtlstate and signature.json; without, a freshly initialised inference model",
      (y) =>
        y
          .option("model", { type: "string", demandOption: true, choices: Object.keys(MODELS), describe: "model name" })
          .option("out", { alias: "o", type: "string", demandOption: true, describe: "output directory (--training) or .onnx file" })
          .option("training", { type: "boolean", default: false, describe: "write the training artifacts (see docs/training-artifacts.md)" })
          .option("config", { type: "string", describe: "JSON file of model settings over the defaults (the ESMM reference configuration)" })
          .option("optimizer", { type: "string", default: "adam", choices: [...OPTIMIZER_KINDS], describe: "optimizer built into train_step.onnx" })
          .option("clip-norm", { type: "number", describe: "clip gradients by this global L2 norm" })
          .option("seed", { type: "number", default: 0, describe: "seed of the initial weights" })
          .option("opset", { type: "number", describe: "ai.onnx opset (16..21, default 17)" }),
      async (args) => exportCommand({
        model: args.model, out: args.out, training: args.training, config: args.config, optimizer: args.optimizer,
        seed: args.seed, clipNorm: args["clip-norm"], opset: args.opset,
      }),
    )
    .command(
      "train",
      "train a model: writes a run directory (run.json, checkpoints, metrics.jsonl, summary.json); --resume continues it exactly",
      (y) =>
        y
          .option("model", { type: "string", describe: `model name (${Object.keys(MODELS).join(", ")}); default esmm or the config's` })
          .option("train", { type: "string", describe: "training data: a shard, a text file (Ali-CCP, CSV, JSONL; .gz ok) or synth:rows=N,seed=S,bias=B" })
          .option("valid", { type: "string", describe: "validation data (default: --valid-fraction of --train held out by sample id)" })
          .option("out", { alias: "o", type: "string", demandOption: true, describe: "run directory" })
          .option("config", { type: "string", describe: "YAML config naming every knob (PaddleRec keys accepted); see docs/workflow.md" })
          .option("epochs", { type: "number", describe: "passes over the training data (default 1)" })
          .option("batch-size", { type: "number", describe: "examples per step (default 1024)" })
          .option("lr", { type: "number", describe: "base learning rate (default 0.001; the schedule is in the config)" })
          .option("seed", { type: "number", describe: "seed of the weights and of the data order" })
          .option("valid-fraction", { type: "number", describe: "share of --train held out for validation when there is no --valid (default 0.1)" })
          .option("checkpoint-every", { type: "number", describe: "steps between checkpoints (also at each epoch end)" })
          .option("log-every", { type: "number", describe: "steps between metrics.jsonl step records" })
          .option("patience", { type: "number", describe: "early stopping: epochs without improvement on the validation set (0 = off)" })
          .option("resume", { type: "boolean", default: false, describe: "continue the run in --out from its last checkpoint" })
          .option("device", { type: "string", choices: ["cpu", "cuda"], describe: "where onnxruntime runs the steps" }),
      async (args) => trainCommand({
        model: args.model, train: args.train, valid: args.valid, out: args.out, config: args.config, epochs: args.epochs,
        batchSize: args["batch-size"], lr: args.lr, seed: args.seed, validFraction: args["valid-fraction"],
        checkpointEvery: args["checkpoint-every"], logEvery: args["log-every"], patience: args.patience, resume: args.resume, device: args.device,
      }),
    )
    .command(
      "eval <run>",
      "evaluate a run's best state (or --latest checkpoint) on a data set: exact CTR/CVR/CTCVR AUC, logloss, PCOC, GAUC, CVR bias",
      (y) =>
        y
          .positional("run", { type: "string", demandOption: true, describe: "run directory written by mtl train" })
          .option("data", { type: "string", demandOption: true, describe: "a shard, a text file or synth:..." })
          .option("json", { type: "string", describe: "also write the metrics (and ROC/calibration curves) as JSON here" })
          .option("latest", { type: "boolean", default: false, describe: "use checkpoint.mtlstate instead of best.mtlstate" })
          .option("split", { type: "string", default: "all", choices: ["all", "valid", "train"], describe: "all rows, or the run's own held-out (valid) or training rows of this data, split by sample id as in training" })
          .option("batch-size", { type: "number" })
          .option("device", { type: "string", choices: ["cpu", "cuda"] }),
      async (args) => evalCommand({ run: args.run, data: args.data, json: args.json, latest: args.latest, split: args.split, batchSize: args["batch-size"], device: args.device }),
    )
    .command(
      "report <run>",
      "write one self-contained HTML report of a run: loss and AUC curves, ROC per task, reliability plot, config and data",
      (y) =>
        y
          .positional("run", { type: "string", demandOption: true, describe: "run directory written by mtl train" })
          .option("out", { alias: "o", type: "string", describe: "HTML file (default <run>/report.html)" }),
      async (args) => reportCommand({ run: args.run, out: args.out }),
    )
    .command(
      "demo",
      "the quick start: on the built-in synthetic funnel, train the naive CVR baseline, ESMM and ESCM2, compare them, export the best and score records with it",
      (y) =>
        y
          .option("out", { alias: "o", type: "string", default: "mtl-demo", describe: "directory for the runs and the exported model" })
          .option("rows", { type: "number", default: 200000, describe: "synthetic impressions (20% held out for evaluation)" })
          .option("bias", { type: "number", default: 1, describe: "selection-bias strength of the synthetic funnel" })
          .option("seed", { type: "number", default: 1 })
          .option("epochs", { type: "number", default: 1 }),
      async (args) => demoCommand({ out: args.out, rows: args.rows, bias: args.bias, seed: args.seed, epochs: args.epochs }),
    )
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`mtl: ${msg}\n(see mtl --help)\n`);
      process.exit(2);
    });
  try {
    await cli.parseAsync();
  } catch (err) {
    if (isMtlError(err)) {
      process.stderr.write(`mtl: ${err.format()}\n`);
      process.exit(1);
    }
    throw err;
  }
}
