/**
 * One way for a trainer to get batches, whatever the data is: a shard, a text file (Ali-CCP, CSV,
 * JSONL, plain or .gz), a directory or glob of either (files.ts: name order), or the built-in
 * synthetic funnel. The trainer never knows which.
 *
 *   const data = await openDataSource("train.shard");                  // or "log.csv", or "synth:rows=200000,seed=1,bias=1"
 *   for await (const batch of data.batches({ batchSize: 1024, seed: 7, epoch, validFraction: 0.1, part: "train" })) ...
 *   await data.close();
 */
import { MtlError } from "../errors.js";
import { isStdio } from "../util/atomic.js";
import { layoutOf, type Batch, type Layout } from "../features/batch.js";
import type { FeatureSchema } from "../features/schema.js";
import { rebatch, shardBatches, type BatcherOptions } from "./batcher.js";
import { dataFiles } from "./files.js";
import { guessFormat, readData } from "./open.js";
import type { DataFormat } from "./reader.js";
import { isShardFile, ShardReader } from "./shard.js";
import { SYNTH_PRESETS, synthBatches, SynthWorld, type SynthOptions } from "./synth.js";

export interface DataSource {
  /** What the data is, for messages: the file, or the synth spec. */
  readonly name: string;
  readonly layout: Layout;
  /** Whether batches carry ground truth. */
  readonly truth: boolean;
  /** Rows, when known before reading (shards, synth). */
  readonly rows: number | null;
  /** A fresh pass over the data: shuffled (seed, epoch) and split as asked. */
  batches(opts: BatcherOptions): AsyncGenerator<Batch>;
  close(): Promise<void>;
}

export interface OpenDataOptions {
  /** Text files: the format (default: from the name). */
  format?: DataFormat;
  /** Text files: the schema (Ali-CCP default); shards: checked against the shard's. Synth: the schema to encode with. */
  schema?: FeatureSchema;
  skipBad?: boolean;
}

/** Parse `synth:rows=N,seed=S,bias=B,users=U,items=I,preset=P,ctr=R,cvr=R,stream=K` (every key optional but rows). */
export function parseSynthSpec(spec: string): SynthOptions & { rows: number } {
  const body = spec.slice("synth:".length);
  const out: Record<string, number | string> = {};
  const allowed = ["rows", "seed", "bias", "users", "items", "factors", "preset", "ctr", "cvr", "stream"];
  for (const part of body.split(",").filter(Boolean)) {
    const [k, v] = part.split("=");
    const ok = k !== undefined && v !== undefined && allowed.includes(k) && (k === "preset" ? Object.hasOwn(SYNTH_PRESETS, v) : Number.isFinite(Number(v)));
    if (!ok) {
      const hint = k === "preset" ? `presets: ${Object.keys(SYNTH_PRESETS).join(", ")}` : `write synth:rows=100000,seed=1,bias=1 (keys: ${allowed.join(", ")})`;
      throw new MtlError("E_USAGE", `bad synth spec '${spec}' at '${part}'`, { hint });
    }
    out[k] = k === "preset" ? v : Number(v);
  }
  if (out["rows"] === undefined) throw new MtlError("E_USAGE", `the synth spec '${spec}' needs rows=N`, { hint: "e.g. synth:rows=100000,seed=1" });
  return out as unknown as SynthOptions & { rows: number };
}

export async function openDataSource(spec: string, opts: OpenDataOptions = {}): Promise<DataSource> {
  if (isStdio(spec)) {
    throw new MtlError("E_USAGE", "training and evaluation data cannot come from standard input (-): it is read more than once (a first look for its layout, then each pass)", {
      hint: "save it to a file first, or make a shard: mtl data prepare --input - --out data.shard",
    });
  }
  if (spec.startsWith("synth:")) {
    const synth = parseSynthSpec(spec);
    const world = new SynthWorld(synth);
    const schema = opts.schema ?? world.schema();
    const layout = layoutOf(schema);
    return {
      name: spec, layout, truth: true, rows: synth.rows,
      batches: (b) => rebatch(layout, synthBatches({ ...synth, schema, batchSize: 16384 }, world), { ...b, truth: true }),
      close: async () => undefined,
    };
  }
  const files = dataFiles(spec);
  const shardFlags = await Promise.all(files.map((f) => isShardFile(f)));
  if (shardFlags.some(Boolean)) {
    const odd = files.find((_, i) => !shardFlags[i]);
    if (odd !== undefined) throw new MtlError("E_IO", "a data directory or pattern mixes shards and text files", { where: { file: odd }, hint: `read ${spec} as shards only or as text only` });
    const shards: ShardReader[] = [];
    try {
      for (const f of files) shards.push(await ShardReader.open(f, opts.schema ?? shards[0]?.layout.schema ? { expectSchema: opts.schema ?? shards[0]!.layout.schema } : {}));
    } catch (err) {
      await Promise.all(shards.map((s) => s.close()));
      throw err;
    }
    const first = shards[0]!;
    return {
      name: spec, layout: first.layout, truth: shards.every((s) => s.truth), rows: shards.reduce((n, s) => n + s.rows, 0),
      batches: (b) => shardBatches(shards, b), close: async () => void (await Promise.all(shards.map((s) => s.close()))),
    };
  }
  const format = opts.format ?? guessFormat(spec);
  const readOpts = { ...(opts.schema ? { schema: opts.schema } : {}), skipBad: opts.skipBad ?? false, blockRows: 16384 };
  // Learn the layout and whether rows carry truth from a first reader's first block.
  const probe = readData(spec, format, readOpts);
  const it = probe.blocks();
  await it.next();
  await it.return(undefined);
  const truth = probe.stats.truth;
  return {
    name: spec, layout: probe.layout, truth, rows: null,
    batches: (b) => rebatch(probe.layout, readData(spec, format, readOpts).blocks(), { ...b, truth }),
    close: async () => undefined,
  };
}
