/** `mtl demo`: a thin command over src/demo/demo.ts that shows progress and prints the comparison. */
import { formatMetric, type FunnelMetrics } from "../metrics/funnel.js";
import { runDemo } from "../demo/demo.js";
import type { RunEvent } from "../flow/run.js";
import { table } from "./format.js";
import { device, runProgress } from "./train.js";

/** The comparison's rows: the job's metric first. */
const DEMO_COLUMNS: readonly { key: keyof FunnelMetrics; label: string }[] = [
  { key: "cvr_auc_entire", label: "CVR AUC (entire, true)" },
  { key: "cvr_bias", label: "CVR bias" },
  { key: "ctcvr_auc", label: "CTCVR AUC" },
  { key: "ctr_auc", label: "CTR AUC" },
  { key: "cvr_auc", label: "CVR AUC (clicked)" },
];

export async function demoCommand(args: { out: string; force: boolean; rows?: number; seed?: number; json?: boolean; device?: string }): Promise<void> {
  const progress = new Map<string, (e: RunEvent) => void>();
  const say = (line: string) => process.stderr.write(`demo: ${line}\n`);
  const dev = device(args.device);
  const res = await runDemo({
    out: args.out, force: args.force, ...(dev ? { device: dev } : {}),
    world: { ...(args.rows !== undefined ? { impressions: args.rows } : {}), ...(args.seed !== undefined ? { seed: args.seed } : {}) },
    onMessage: say,
    onEvent: (model, e) => {
      let p = progress.get(model);
      if (!p) progress.set(model, (p = runProgress(model, { every: 3 })));
      p(e);
    },
  });
  if (args.json) {
    process.stdout.write(JSON.stringify(res) + "\n");
    return;
  }
  const rows = [["", ...res.models.map((m) => m.name)]];
  for (const c of DEMO_COLUMNS) rows.push([c.label, ...res.models.map((m) => formatMetric(m.metrics[c.key] as number | null, c.key))]);
  rows.push(["lr / epochs (best)", ...res.models.map((m) => `${m.lr} / ${m.epochs} (${m.bestEpoch})`)]);
  const scored = [["#", "click", "buy", "true CVR", "p_ctr", "p_cvr", "p_ctcvr"], ...res.scored.map((s) => [
    String(s.sample), String(s.click), String(s.conversion), s.trueCvr === null ? "-" : s.trueCvr.toFixed(4),
    ...[s.p_ctr, s.p_cvr, s.p_ctcvr].map((v) => (v === null ? "-" : v.toFixed(4))),
  ])];
  const w = res.world, r = res.worldRates, m = res.models[0]!.metrics;
  process.stdout.write([
    `mtl demo: preset ${w.preset}, selection bias ${w.bias}, seed ${w.seed}: ${w.impressions.toLocaleString("en-US")} training impressions (a quarter for validation), ${m.impressions.toLocaleString("en-US")} test impressions never trained on.`,
    `Selection bias: clicked impressions convert at ${r.meanTrueCvrClicked.toFixed(3)} (true CVR), the whole space at ${r.meanTrueCvrAll.toFixed(3)}; sparsity: ${(100 * r.ctr).toFixed(1)}% of impressions are clicked, ${(100 * r.cvrOfClicks).toFixed(1)}% of clicks convert.`,
    "",
    table(rows),
    "",
    "CVR AUC (entire, true): pCVR ranked against every impression's potential conversion (known only in synthetic data);",
    "CVR bias: mean pCVR - mean true CVR over all impressions.",
    "",
    `Reading: ${res.reading}`,
    `Exported ${res.best} to ${res.exported}. Scores of test impressions from the exported model:`,
    table(scored),
    "",
    `done in ${res.seconds.toFixed(1)} s. Runs in ${args.out}/<model>; try: mtl report ${args.out}/${res.best}`,
  ].join("\n") + "\n");
}
