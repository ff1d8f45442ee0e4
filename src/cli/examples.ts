/**
 * The examples at the end of each command's help, all in one place (commands add options in
 * main.ts; their examples live here). Every example is a command line that works as written on a
 * fresh install, from the quick start to scoring a pipe.
 */
import type { Argv } from "yargs";

export const EXAMPLES: Readonly<Record<string, readonly (readonly [command: string, what: string])[]>> = {
  inspect: [
    ["mtl inspect escm2.onnx", "IR version, opsets, inputs, outputs, parameters and metadata"],
    ["mtl inspect escm2.onnx --json", "the same as JSON"],
  ],
  export: [
    ["mtl export --model escm2", "a freshly initialised ESCM2 scoring model: ./escm2.onnx"],
    ["mtl export --checkpoint runs/escm2 -o model.onnx", "the best state of a trained run"],
    ["mtl export --model esmm --training -o esmm-train/", "train_step.onnx, eval.onnx, inference.onnx, state and signature"],
  ],
  run: [
    ["mtl run model.onnx < test.txt > preds.csv", "score standard input (format told from the data), predictions on standard output"],
    ["mtl run model.onnx -i test.csv.gz -o preds.jsonl", "a file in, JSONL out"],
    ["zcat test.txt.gz | mtl run model.onnx --skip-bad > preds.csv", "a pipe; bad rows are skipped and counted"],
  ],
  serve: [
    ["mtl serve model.onnx --port 8080", "POST /v1/score on 127.0.0.1:8080"],
    ["mtl serve model.onnx --rank-formula \"p_ctcvr * bid\"", "rank candidates by expected value"],
  ],
  train: [
    ["mtl train --model escm2 --train synth:rows=200000,seed=1 -o runs/escm2", "ESCM2 on the synthetic funnel, 10% held out"],
    ["mtl train --config escm2.yaml -o runs/escm2 --epochs 5", "every knob from a config file"],
    ["mtl train -o runs/escm2 --resume", "continue an interrupted run exactly"],
  ],
  eval: [
    ["mtl eval runs/escm2 --data test.txt", "AUC, logloss, PCOC, GAUC of the best state"],
    ["mtl eval runs/escm2 --data synth:rows=50000,seed=9 --json metrics.json", "also write metrics and curves as JSON"],
  ],
  report: [
    ["mtl report runs/escm2", "runs/escm2/report.html"],
    ["mtl report runs/escm2 -o escm2.html", "the report somewhere else"],
  ],
  demo: [
    ["mtl demo", "naive CVR, ESMM and ESCM2 on the documented world (selection bias 2, 30,000 impressions), into ./mtl-demo"],
    ["mtl demo --rows 4000 -o /tmp/demo", "a quicker look (a second demo there starts afresh)"],
  ],
  data: [
    ["mtl data synth --out synth.txt --rows 100000", "a synthetic impression log with known truth"],
    ["mtl data prepare --input synth.txt --out synth.shard", "encode it into a binary shard"],
    ["mtl data inspect synth.shard", "what is in it"],
  ],
  "data prepare": [
    ["mtl data prepare --input train.txt.gz --out train.shard", "Ali-CCP text into a binary shard"],
    ["mtl data prepare --input log.csv --schema schema.json --out log.shard", "a CSV log with its own schema"],
  ],
  "data synth": [
    ["mtl data synth --out synth.txt --rows 100000", "an Ali-CCP-format log and synth.txt.truth.csv"],
    ["mtl data synth --out biased.txt --bias 2 --seed 3", "stronger selection bias"],
    ["mtl data synth --kind lookalike --out lookalike/", "a look-alike world of campaigns (MetaHeac) in PaddleRec's layout"],
  ],
  "data inspect": [
    ["mtl data inspect train.txt.gz", "rates, coverage, ids per row, rejected rows"],
    ["mtl data inspect train.shard --json", "the same as JSON"],
  ],
  "data schema": [
    ["mtl data schema > schema.json", "the built-in Ali-CCP schema, to edit"],
    ["mtl data schema | mtl export --model esmm --schema - -o esmm.onnx", "export with a schema from a pipe"],
  ],
};

/** Adds the command's examples (they print last in its help). */
export function withExamples<T>(y: Argv<T>, command: keyof typeof EXAMPLES): Argv<T> {
  for (const [line, what] of EXAMPLES[command] ?? []) y.example(line, what);
  return y;
}
