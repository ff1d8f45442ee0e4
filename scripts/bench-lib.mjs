// Inputs the bench scripts share: Ali-CCP text lines shaped like PaddleRec's real sample, and
// shards of the built-in Ali-CCP schema filled with uniformly random ids.
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { ALICCP_FIELDS, ALICCP_VOCAB_SIZE, defaultAliccpSchema } = await import(join(root, "dist", "src", "features", "schema.js"));
const { ShardWriter } = await import(join(root, "dist", "src", "data", "shard.js"));

// Token counts per field as in PaddleRec's real Ali-CCP sample (line 1 of train_small.txt has 879
// tokens: 150_14 191, 127_14 209, 109_14 117, 110_14 342, 210 3, the rest 0 or 1).
const MULTI = { "150_14": 191, "127_14": 209, "109_14": 117, "110_14": 342, "210": 3 };

/** A seeded LCG: draws in [0, n). */
export function lcg(seed = 12345) {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
}

/** One Ali-CCP line (without its sample id): "click,buy,field:id,..." with the real sample's token counts. */
export function aliccpLineBody(rand) {
  const t = [rand(25) === 0 ? "1" : "0", "0"];
  for (const f of ALICCP_FIELDS) {
    const n = MULTI[f] ?? 1;
    for (let k = 0; k < n; k++) t.push(`${f}:${1 + rand(737946)}`);
  }
  return t.join(",");
}

/**
 * Writes `count` lines (or until `targetBytes`) to `file`; `distinct` bodies are generated and
 * reused with fresh sample ids, which keeps a multi-GB file cheap to write.
 */
export async function writeAliccpText(file, count, { targetBytes = Infinity, distinct = 2000, seed = 12345 } = {}) {
  const rand = lcg(seed);
  const out = createWriteStream(file, { highWaterMark: 1 << 22 });
  const bodies = Array.from({ length: Math.min(distinct, count) }, () => aliccpLineBody(rand));
  let bytes = 0;
  let n = 0;
  while (n < count && bytes < targetBytes) {
    const chunk = [];
    for (let j = 0; j < 500 && n < count; j++, n++) chunk.push(`${n + 1},${bodies[n % bodies.length]}`);
    const s = chunk.join("\n") + "\n";
    bytes += Buffer.byteLength(s);
    if (!out.write(s)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return { lines: n, bytes };
}

/**
 * A shard of the built-in Ali-CCP schema (23 fields x 3 ids, one shared table) with `groups` row
 * groups of `groupRows` rows of uniformly random ids (every id slot filled, as the training bench
 * draws them), clicks at 20% and conversions at 10% of clicks. With `repeat`, the first group is
 * written `groups` times (fast for very large files; the rows repeat). With `userRun` K, runs of K
 * consecutive rows share the 13 user fields' ids (the schema's context: ALICCP_FIELDS' first 13),
 * as a log grouped by user or session does; the other fields stay random per row.
 */
export async function writeRandomShard(file, { groups, groupRows = 16384, seed = 7, repeat = false, userRun = 1 }) {
  const schema = defaultAliccpSchema();
  const width = ALICCP_FIELDS.length * 3;
  const userWidth = schema.context.length * 3;
  const rand = lcg(seed);
  const w = await ShardWriter.create(file, schema, { truth: false });
  let block = null;
  for (let g = 0; g < groups; g++) {
    if (!block || !repeat) {
      const ids = new Int32Array(groupRows * width);
      for (let i = 0; i < ids.length; i++) ids[i] = 1 + rand(ALICCP_VOCAB_SIZE - 1);
      if (userRun > 1) for (let r = 0; r < groupRows; r++) if (r % userRun) ids.copyWithin(r * width, (r - (r % userRun)) * width, (r - (r % userRun)) * width + userWidth);
      const click = new Uint8Array(groupRows), conversion = new Uint8Array(groupRows), sampleKey = new Uint32Array(groupRows);
      for (let r = 0; r < groupRows; r++) {
        click[r] = rand(5) === 0 ? 1 : 0;
        conversion[r] = click[r] && rand(10) === 0 ? 1 : 0;
        sampleKey[r] = (Math.imul(g * groupRows + r + 1, 0x9e3779b1) >>> 0);
      }
      block = { size: groupRows, ids: [ids], weights: [null], dense: new Float32Array(0), click, conversion, truth: null, userId: null, sampleKey, task: null };
    }
    await w.write(block);
  }
  await w.close();
  return { rows: groups * groupRows };
}
