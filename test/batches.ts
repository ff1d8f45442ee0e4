import type { TwoTowerConfig } from "../src/models/two_tower.js";
import { Rng } from "../src/util/prng.js";

/** The two-tower's step feeds (the input contract's names): ids of its one table, and the two labels. */
export type TwoTowerFeeds = {
  "ids.embedding": Int32Array;
  click: Float32Array;
  conversion: Float32Array;
};

/** Seeded batches; ids include padding zeros and repeats. A learnable signal: click depends on field 0's first id. */
export function makeBatch(seed: number, B: number, cfg: TwoTowerConfig): TwoTowerFeeds {
  const rng = new Rng(seed);
  const n = cfg.fields * cfg.idsPerField;
  const ids = new Int32Array(B * n), click = new Float32Array(B), buy = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < n; j++) ids[b * n + j] = rng.next() < 0.15 ? 0 : 1 + rng.int(Math.min(cfg.vocabSize - 1, 40));
    const signal = ids[b * n]! % 3 === 0 ? 0.8 : 0.15;
    click[b] = rng.next() < signal ? 1 : 0;
    buy[b] = click[b] && ids[b * n + 1]! % 2 === 0 && rng.next() < 0.7 ? 1 : 0;
  }
  return { "ids.embedding": ids, click, conversion: buy };
}

