#!/usr/bin/env node
/**
 * The models compared on the synthetic funnel: every model × seed × selection-bias strength, one
 * epoch each with the models' default configurations and the demo's settings (Adam, lr 0.001,
 * batch 1024), evaluated on the 20% of impressions held out by sample id (no model selection on
 * them: one epoch, no early stopping). Prints a markdown table of mean ± std and writes the raw
 * numbers as JSON. Build first (npm run build).
 *
 *   node scripts/results-funnel.mjs [--rows 200000] [--seeds 1,2,3,4,5] [--bias 1,2] [--models naive,esmm,escm2,...] [--json out.json]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { defaultRunConfig, trainRun } from "../dist/src/index.js";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "200000" },
    seeds: { type: "string", default: "1,2,3,4,5" },
    bias: { type: "string", default: "1,2" },
    models: { type: "string", default: "naive,esmm,escm2,escm2-ipw,escm2-towers,escm2-ipw-towers,shared-bottom,mmoe,ple,aitm" },
    json: { type: "string", default: "results-funnel.json" },
  },
});
const list = (s) => s.split(",").filter(Boolean);
/** Variants: a name with settings over a registered model. */
const VARIANTS = {
  "escm2-ipw": { model: "escm2", modelConfig: { counterfactualMode: "IPW" } },
  // ESCM2 on ESMM's towers: the counterfactual risk without the MMoE backbone's confound.
  "escm2-towers": { model: "escm2", modelConfig: { backbone: "towers" } },
  "escm2-ipw-towers": { model: "escm2", modelConfig: { backbone: "towers", counterfactualMode: "IPW" } },
};
const METRICS = [["ctr_auc", "CTR AUC"], ["cvr_auc", "CVR AUC (clicked)"], ["cvr_auc_entire", "CVR AUC (entire, true)"], ["ctcvr_auc", "CTCVR AUC"], ["cvr_bias", "CVR bias"]];

const work = mkdtempSync(join(tmpdir(), "mtl-results-"));
const raw = [];
const started = Date.now();
try {
  for (const bias of list(values.bias).map(Number)) {
    for (const name of list(values.models)) {
      for (const seed of list(values.seeds).map(Number)) {
        const v = VARIANTS[name] ?? { model: name, modelConfig: {} };
        const config = defaultRunConfig();
        config.model = v.model;
        config.modelConfig = { ...v.modelConfig };
        config.data.train = `synth:rows=${values.rows},seed=${seed},bias=${bias}`;
        config.training = { ...config.training, epochs: 1, batchSize: 1024, lr: 0.001, seed, validFraction: 0.2, checkpointEvery: 1_000_000, logEvery: 1000 };
        const out = join(work, `${name}-${bias}-${seed}`);
        const t0 = Date.now();
        const summary = await trainRun({ config, out, intraOpThreads: 1 });
        rmSync(out, { recursive: true, force: true });
        raw.push({ bias, model: name, seed, seconds: (Date.now() - t0) / 1000, metrics: summary.best.metrics });
        process.stderr.write(`bias ${bias} ${name} seed ${seed}: ${METRICS.map(([k]) => `${k} ${summary.best.metrics[k]?.toFixed(4)}`).join(" ")} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
writeFileSync(values.json, JSON.stringify({ command: `node scripts/results-funnel.mjs ${process.argv.slice(2).join(" ")}`.trim(), rows: Number(values.rows), raw }, null, 2) + "\n");

const stat = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { m, sd };
};
const fmt = (k, { m, sd }) => `${k === "cvr_bias" && m >= 0 ? "+" : ""}${m.toFixed(4)} ± ${sd.toFixed(4)}`;
const lines = [];
for (const bias of list(values.bias).map(Number)) {
  lines.push(`\n**bias ${bias}** (synth:rows=${values.rows}, seeds ${values.seeds}; mean ± sample std over seeds)\n`);
  lines.push(`| model | ${METRICS.map(([, l]) => l).join(" | ")} |`);
  lines.push(`|---|${METRICS.map(() => "---").join("|")}|`);
  for (const name of list(values.models)) {
    const rs = raw.filter((r) => r.bias === bias && r.model === name);
    lines.push(`| ${name} | ${METRICS.map(([k]) => (rs.some((r) => r.metrics[k] === null) ? "-" : fmt(k, stat(rs.map((r) => r.metrics[k]))))).join(" | ")} |`);
  }
}
process.stdout.write(lines.join("\n") + `\n\n${raw.length} runs in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
