#!/usr/bin/env node
/**
 * The synth presets' rates at each selection bias (docs/data.md's table): observed CTR, conversions
 * per click, and the mean true CVR over all impressions vs over clicked ones. Build first.
 *
 *   node scripts/synth-presets.mjs [rows=100000] [seed=1]
 */
import { SYNTH_PRESETS, SynthWorld, synthBatches } from "../dist/src/data/synth.js";

const rows = Number(process.argv[2] ?? 100000), seed = Number(process.argv[3] ?? 1);
process.stdout.write("| preset | β | b_c | b_v | observed CTR | conversions / click | mean true CVR, all | mean true CVR, clicked |\n|---|---|---|---|---|---|---|---|\n");
for (const preset of Object.keys(SYNTH_PRESETS)) for (const bias of [0, 1, 2, 4]) {
  const world = new SynthWorld({ seed, bias, preset });
  let n = 0, clicks = 0, buys = 0, cvrAll = 0, cvrClicked = 0;
  for (const b of synthBatches({ rows, seed, bias, preset }, world)) {
    for (let r = 0; r < b.size; r++) {
      n++;
      clicks += b.click[r];
      buys += b.conversion[r];
      cvrAll += b.truth.cvr[r];
      if (b.click[r]) cvrClicked += b.truth.cvr[r];
    }
  }
  const pct = (x) => `${(100 * x).toFixed(2)}%`;
  process.stdout.write(`| ${preset} | ${bias} | ${world.ctrBias.toFixed(3)} | ${world.cvrBias.toFixed(3)} | ${pct(clicks / n)} | ${pct(buys / clicks)} | ${(cvrAll / n).toFixed(4)} | ${(cvrClicked / clicks).toFixed(4)} |\n`);
}
