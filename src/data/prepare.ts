/** `mtl data prepare`: stream a text file through a reader into a binary shard. */
import type { FeatureSchema } from "../features/schema.js";
import { rejectedList } from "./inspect.js";
import { readData } from "./open.js";
import type { DataFormat, ReadProgress, ReadStats } from "./reader.js";
import { ShardWriter, type ShardSummary } from "./shard.js";

export interface PrepareOptions {
  format: DataFormat;
  schema?: FeatureSchema;
  skipBad?: boolean;
  truthFile?: string | null;
  delimiter?: string;
  onProgress?: (p: ReadProgress) => void;
}

export interface PrepareResult {
  shard: ShardSummary;
  stats: ReadStats;
}

export async function prepareShard(input: string, out: string, opts: PrepareOptions): Promise<PrepareResult> {
  const reader = readData(input, opts.format, {
    ...(opts.schema ? { schema: opts.schema } : {}),
    skipBad: opts.skipBad ?? false,
    ...(opts.truthFile !== undefined ? { truthFile: opts.truthFile } : {}),
    ...(opts.delimiter ? { delimiter: opts.delimiter } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    blockRows: 16384,
  });
  const blocks = reader.blocks();
  // The first block decides whether rows carry truth (CSV/JSONL learn it from the header / first row).
  const first = await blocks.next();
  const writer = await ShardWriter.create(out, reader.layout.schema, { truth: reader.stats.truth });
  try {
    if (!first.done) await writer.write(first.value);
    for await (const b of blocks) await writer.write(b);
    const s = reader.stats;
    const shard = await writer.close({
      source: { file: input, format: opts.format, lines: s.lines },
      rejected: rejectedList(s.rejected),
      unknownFields: [...s.unknownFields].map(([field, tokens]) => ({ field, tokens })),
    });
    return { shard, stats: s };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
