/** `mtl data prepare | synth | inspect | schema`: thin commands over src/data. */
import { readFile } from "node:fs/promises";
import type { Argv } from "yargs";
import { escapeControl, MtlError } from "../errors.js";
import { refuseOverwritingInput } from "../util/atomic.js";
import { defaultAliccpSchema, parseSchema, toSchemaJson, type FeatureSchema } from "../features/schema.js";
import { defaultLookalikeSchema } from "../features/lookalike.js";
import { formatReport, inspectData } from "../data/inspect.js";
import { resolveFormat } from "../data/open.js";
import { prepareShard } from "../data/prepare.js";
import { DATA_FORMATS, totalRejected, type DataFormat, type ReadProgress, type ReadStats } from "../data/reader.js";
import { SYNTH_PRESETS, writeSynth, type SynthPresetName } from "../data/synth.js";
import { LOOKALIKE_FILES, writeLookalikeSynth } from "../data/synth-lookalike.js";
import { formatBytes, formatCount } from "./format.js";
import { withExamples } from "./examples.js";

/** Progress on stderr: a rewritten line on a terminal, a plain line every 5 s otherwise. */
export function progressPrinter(label: string): { update: (text: string) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  const start = Date.now();
  let last = start; // a job that ends within the first interval prints no progress at all
  let shown = false;
  return {
    update(text: string) {
      const now = Date.now();
      if (now - last < (tty ? 200 : 5000)) return;
      last = now;
      const line = `${label}: ${text} (${((now - start) / 1000).toFixed(0)} s)`;
      if (tty) {
        process.stderr.write(`\r\x1b[2K${line}`);
        shown = true;
      } else process.stderr.write(line + "\n");
    },
    done() {
      if (shown) process.stderr.write("\r\x1b[2K");
    },
  };
}

function readProgressText(start: number) {
  return (p: ReadProgress): string => {
    const secs = Math.max((Date.now() - start) / 1000, 1e-3);
    const frac = p.fileBytes > 0 ? p.bytesRead / p.fileBytes : 0;
    return `${formatCount(p.lines)} lines, ${formatCount(p.rows)} rows, ${(100 * frac).toFixed(1)}% of ${formatBytes(p.fileBytes)}, ${formatCount(Math.round(p.lines / secs))} lines/s`;
  };
}

async function loadSchema(file: string | undefined): Promise<FeatureSchema | undefined> {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new MtlError("E_IO", `cannot read the schema: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file }, cause: err });
  }
  return parseSchema(text, file);
}

async function checkFormat(f: string | undefined, file: string): Promise<DataFormat> {
  if (f !== undefined && !DATA_FORMATS.includes(f as DataFormat)) throw new MtlError("E_USAGE", `unknown format '${f}'`, { hint: `use one of ${DATA_FORMATS.join(", ")}` });
  return resolveFormat(file, f as DataFormat | undefined);
}

/** Reader statistics as plain JSON (their Maps as objects). */
function statsJson(stats: ReadStats): Record<string, unknown> {
  return { ...stats, rejected: Object.fromEntries(stats.rejected), unknownFields: Object.fromEntries(stats.unknownFields) };
}

export async function prepareCommand(args: { input: string; out: string; format?: string; schema?: string; skipBad: boolean; truth?: string; delimiter?: string; json?: boolean }): Promise<void> {
  const format = await checkFormat(args.format, args.input);
  refuseOverwritingInput(args.out, [{ path: args.input, what: "the data" }, ...(args.truth && args.truth !== "none" ? [{ path: args.truth, what: "the truth sidecar" }] : []), ...(args.schema ? [{ path: args.schema, what: "the schema" }] : [])]);
  const schema = await loadSchema(args.schema);
  const start = Date.now();
  const progress = progressPrinter("prepare");
  const text = readProgressText(start);
  const res = await prepareShard(args.input, args.out, {
    format,
    ...(schema ? { schema } : {}),
    skipBad: args.skipBad,
    ...(args.truth !== undefined ? { truthFile: args.truth === "none" ? null : args.truth } : {}),
    ...(args.delimiter ? { delimiter: args.delimiter } : {}),
    onProgress: (p) => progress.update(text(p)),
  });
  progress.done();
  const secs = (Date.now() - start) / 1000;
  const { shard, stats } = res;
  if (args.json) {
    process.stdout.write(JSON.stringify({ out: args.out, seconds: secs, shard, stats: statsJson(stats) }) + "\n");
    return;
  }
  const out = [
    `wrote ${args.out}: ${formatCount(shard.rows)} rows (${formatCount(shard.clicks)} clicks, ${formatCount(shard.conversions)} conversions${shard.truth ? ", with ground truth" : ""}), ${formatBytes(shard.bytes)}, schema ${shard.schemaHash}`,
    `read ${formatCount(stats.lines)} lines in ${secs.toFixed(1)} s (${formatCount(Math.round(stats.lines / Math.max(secs, 1e-3)))} lines/s)`,
  ];
  if (stats.unknownFields.size) out.push(`ignored fields not in the schema: ${[...stats.unknownFields].map(([f, n]) => `${f} (${formatCount(n)} tokens)`).join(", ")}`);
  if (totalRejected(stats) > 0) {
    out.push("rows left out:");
    for (const [reason, r] of stats.rejected) out.push(`  ${reason}: ${formatCount(r.count)} (first: ${escapeControl(r.example)})`);
  }
  if (stats.unterminatedLastLine) out.push("warning: the last line had no newline (it parsed and was kept)");
  process.stdout.write(out.join("\n") + "\n");
}

/** `mtl data synth --kind lookalike`: a look-alike world in a directory (see src/data/synth-lookalike.ts). */
export async function lookalikeSynthCommand(args: { out: string; seed: number; campaigns?: number; scale?: number; users?: number; json?: boolean }): Promise<void> {
  const progress = progressPrinter("synth");
  const s = await writeLookalikeSynth(args.out, {
    seed: args.seed,
    ...(args.campaigns !== undefined ? { campaigns: args.campaigns } : {}),
    ...(args.scale !== undefined ? { scale: args.scale } : {}),
    ...(args.users !== undefined ? { users: args.users } : {}),
    onProgress: (n, total) => progress.update(`${formatCount(n)} of ${formatCount(total)} rows`),
  });
  progress.done();
  if (args.json) {
    process.stdout.write(JSON.stringify({ out: args.out, ...s }) + "\n");
    return;
  }
  const count = (group: string, role: string) => s.campaigns.filter((c) => c.group === group && c.role === role).length;
  const out = [
    `wrote ${args.out}: a look-alike world of ${formatCount(s.campaigns.length)} campaigns, ${formatCount(s.rows)} rows (${(100 * s.positives / Math.max(s.rows, 1)).toFixed(1)}% positive), seed ${s.seed}, scale ${s.scale}`,
    `hot campaigns have at least T = ${formatCount(s.hotThreshold)} candidates (the paper's T = ${formatCount(s.paperHotThreshold)} times scale ${s.scale}): ` +
      `${count("hot", "train") + count("hot", "test")} hot (${count("hot", "test")} held out), ${count("cold", "train") + count("cold", "test")} cold (${count("cold", "test")} held out)`,
    ...Object.entries(s.files).map(([f, n]) => `  ${f.padEnd(22)} ${formatCount(n)} rows`),
    `  ${LOOKALIKE_FILES.campaigns.padEnd(22)} every campaign's size, group, split and audience mixture`,
    `AUC on the held-out candidates of the true p: hot ${s.oracleAuc.hot.toFixed(4)}, cold ${s.oracleAuc.cold.toFixed(4)}; ` +
      `of the campaign-blind truth (p averaged over campaigns): hot ${s.campaignBlindAuc.hot.toFixed(4)}, cold ${s.campaignBlindAuc.cold.toFixed(4)}`,
    `read it with the built-in look-alike schema (mtl data schema --builtin lookalike)`,
  ];
  process.stdout.write(out.join("\n") + "\n");
}

export async function synthCommand(args: { out: string; rows: number; seed: number; bias: number; users?: number; items?: number; maxHistory?: number; preset?: string; ctr?: number; cvr?: number; json?: boolean }): Promise<void> {
  const progress = progressPrinter("synth");
  const start = Date.now();
  const s = await writeSynth(args.out, {
    rows: args.rows, seed: args.seed, bias: args.bias,
    ...(args.users !== undefined ? { users: args.users } : {}),
    ...(args.items !== undefined ? { items: args.items } : {}),
    ...(args.maxHistory !== undefined ? { maxHistory: args.maxHistory } : {}),
    ...(args.preset !== undefined ? { preset: args.preset as SynthPresetName } : {}),
    ...(args.ctr !== undefined ? { ctr: args.ctr } : {}),
    ...(args.cvr !== undefined ? { cvr: args.cvr } : {}),
    onProgress: (n) => progress.update(`${formatCount(n)} of ${formatCount(args.rows)} rows, ${formatCount(Math.round(n / Math.max((Date.now() - start) / 1000, 1e-3)))} rows/s`),
  });
  progress.done();
  if (args.json) {
    process.stdout.write(JSON.stringify({ out: args.out, truth: `${args.out}.truth.csv`, seed: args.seed, bias: args.bias, ...s }) + "\n");
    return;
  }
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  process.stdout.write(
    [
      `wrote ${args.out} (Ali-CCP format) and ${args.out}.truth.csv (ground truth): ${formatCount(s.rows)} rows, seed ${args.seed}, bias ${args.bias}`,
      `click rate ${pct(s.clicks / s.rows)}, conversion rate ${pct(s.conversions / s.rows)}, CVR among clicks ${pct(s.conversions / Math.max(s.clicks, 1))}`,
      `mean true CVR: all impressions ${pct(s.meanTrueCvrAll)}, clicked impressions ${pct(s.meanTrueCvrClicked)} (selection bias ratio ${(s.meanTrueCvrClicked / s.meanTrueCvrAll).toFixed(2)})`,
      `ids fit vocab_size ${formatCount(s.vocabSize)} (the default Ali-CCP schema's 737,947 holds them)`,
    ].join("\n") + "\n",
  );
}

export async function inspectDataCommand(args: { file: string; format?: string; schema?: string; json: boolean; truth?: string }): Promise<void> {
  const schema = await loadSchema(args.schema);
  const start = Date.now();
  const progress = progressPrinter("inspect");
  const text = readProgressText(start);
  const report = await inspectData(args.file, {
    format: await checkFormat(args.format, args.file),
    ...(schema ? { schema } : {}),
    ...(args.truth !== undefined ? { truthFile: args.truth === "none" ? null : args.truth } : {}),
    onProgress: (p) => progress.update(text(p)),
  });
  progress.done();
  process.stdout.write(args.json ? JSON.stringify(report, null, 2) + "\n" : formatReport(report).split("\n").map(escapeControl).join("\n") + "\n");
}

export function registerDataCommands(y: Argv): Argv {
  return y
    .command(
      "prepare",
      "encode a text data file (Ali-CCP, CSV/TSV, JSONL; .gz too) into a binary shard",
      (c) =>
        withExamples(c, "data prepare")
          .option("input", { type: "string", demandOption: true, describe: "the text file (- for standard input)" })
          .option("out", { type: "string", demandOption: true, describe: "the shard to write" })
          .option("format", { type: "string", choices: DATA_FORMATS as unknown as string[], describe: "input format (default: from the file name; aliccp otherwise)" })
          .option("schema", { type: "string", describe: "feature schema (JSON); default: the built-in Ali-CCP schema" })
          .option("skip-bad", { type: "boolean", default: false, describe: "skip bad rows and count them by reason (default: stop at the first)" })
          .option("truth", { type: "string", describe: "Ali-CCP ground-truth sidecar (default <input>.truth.csv when present; 'none' to ignore)" })
          .option("delimiter", { type: "string", describe: "CSV delimiter (default: tab for .tsv, comma otherwise)" })
          .option("json", { type: "boolean", default: false, describe: "print the shard's summary and the reader's statistics as JSON" }),
      async (a) => prepareCommand({ input: a.input, out: a.out, format: a.format, schema: a.schema, skipBad: a["skip-bad"], truth: a.truth, delimiter: a.delimiter, json: a.json }),
    )
    .command(
      "synth",
      "write synthetic data with known truth: an impression funnel (Ali-CCP format + <out>.truth.csv) or a look-alike world (--kind lookalike: a directory)",
      (c) =>
        withExamples(c, "data synth")
          .option("kind", { type: "string", choices: ["funnel", "lookalike"], default: "funnel", describe: "funnel: ESMM/ESCM2 impressions; lookalike: MetaHeac campaigns in PaddleRec's train_stage1/test_stage1/test_stage2 layout" })
          .option("out", { type: "string", demandOption: true, describe: "the file to write (lookalike: the directory)" })
          .option("campaigns", { type: "number", describe: "lookalike: campaigns (default 100)" })
          .option("scale", { type: "number", describe: "lookalike: size relative to the paper's world; the largest campaign has 100,000 x scale candidates, T = 4,000 x scale (default 0.05)" })
          .option("rows", { type: "number", default: 100_000, describe: "impressions" })
          .option("seed", { type: "number", default: 0 })
          .option("bias", { type: "number", default: 1, describe: "selection bias: how much click propensity follows conversion propensity (0 = none)" })
          .option("users", { type: "number", describe: "users in the world (default 20,000)" })
          .option("items", { type: "number", describe: "items in the world (default 30,000)" })
          .option("max-history", { type: "number", describe: "longest multi-valued user field (default 40; real Ali-CCP lines reach ~350)" })
          .option("preset", { type: "string", choices: Object.keys(SYNTH_PRESETS), describe: "a world calibrated to observed rates: aliccp (Ali-CCP's 3.9% CTR, 0.56% CVR of clicks), dense, sparse (docs/data.md)" })
          .option("ctr", { type: "number", describe: "calibrate to this observed click rate (overrides the preset's)" })
          .option("cvr", { type: "number", describe: "calibrate to this observed conversions-per-click rate (overrides the preset's)" })
          .option("json", { type: "boolean", default: false, describe: "print the summary as JSON" }),
      async (a) => (a.kind === "lookalike"
        ? lookalikeSynthCommand({ out: a.out, seed: a.seed, campaigns: a.campaigns, scale: a.scale, users: a.users, json: a.json })
        : synthCommand({ out: a.out, rows: a.rows, seed: a.seed, bias: a.bias, users: a.users, items: a.items, maxHistory: a["max-history"], preset: a.preset, ctr: a.ctr, cvr: a.cvr, json: a.json })),
    )
    .command(
      "inspect <file>",
      "summarise a data file or shard: rates, coverage, ids per row, vocabulary occupancy, rejected rows",
      (c) =>
        withExamples(c, "data inspect")
          .positional("file", { type: "string", demandOption: true })
          .option("format", { type: "string", choices: DATA_FORMATS as unknown as string[], describe: "text format (default: from the file name; shards are detected)" })
          .option("schema", { type: "string", describe: "feature schema (JSON); default: the built-in Ali-CCP schema" })
          .option("truth", { type: "string", describe: "Ali-CCP ground-truth sidecar ('none' to ignore)" })
          .option("json", { type: "boolean", default: false }),
      async (a) => inspectDataCommand({ file: a.file, format: a.format, schema: a.schema, truth: a.truth, json: a.json }),
    )
    .command(
      "schema",
      "print a built-in feature schema (JSON) to start your own from",
      (c) => withExamples(c, "data schema").option("builtin", { type: "string", choices: ["aliccp", "lookalike"], default: "aliccp", describe: "aliccp: PaddleRec's ESMM fields; lookalike: the Tencent look-alike columns of PaddleRec's MetaHeac" }),
      async (a) => {
        const schema = a.builtin === "lookalike" ? defaultLookalikeSchema() : defaultAliccpSchema();
        process.stdout.write(JSON.stringify(toSchemaJson(schema), null, 2) + "\n");
      },
    )
    .demandCommand(1, "name a data command: prepare, synth, inspect, schema");
}
