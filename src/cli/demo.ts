/** `mtl demo`: a thin command over src/demo/demo.ts that shows progress and prints the comparison. */
import { METRIC_COLUMNS, formatMetric } from "../metrics/funnel.js";
import { runDemo } from "../demo/demo.js";
import type { RunEvent } from "../flow/run.js";
import { table } from "./format.js";
import { runProgress } from "./train.js";

export async function demoCommand(args: { out: string; rows: number; bias: number; seed: number; epochs: number }): Promise<void> {
  const progress = new Map<string, (e: RunEvent) => void>();
  const say = (line: string) => process.stderr.write(`demo: ${line}\n`);
  const res = await runDemo({
    ...args,
    onMessage: say,
    onEvent: (model, e) => {
      let p = progress.get(model);
      if (!p) progress.set(model, (p = runProgress(model, { every: 3 })));
      p(e);
    },
  });
  const rows = [["", ...res.models.map((m) => `${m.name}`)]];
  for (const c of METRIC_COLUMNS) {
    if (res.models.every((m) => m.metrics[c.key] === null)) continue;
    rows.push([c.label, ...res.models.map((m) => formatMetric(m.metrics[c.key] as number | null, c.key))]);
  }
  rows.push(["train time (s)", ...res.models.map((m) => m.seconds.toFixed(1))]);
  const scored = [["#", "click", "buy", "true CVR", "p_ctr", "p_cvr", "p_ctcvr"], ...res.scored.map((s) => [
    String(s.sample), String(s.click), String(s.conversion), s.trueCvr === null ? "-" : s.trueCvr.toFixed(4),
    ...[s.p_ctr, s.p_cvr, s.p_ctcvr].map((v) => (v === null ? "-" : v.toFixed(4))),
  ])];
  const m = res.models[0]!.metrics;
  process.stdout.write([
    `mtl demo on ${res.data}: held-out ${m.impressions.toLocaleString("en-US")} impressions, ${m.clicks.toLocaleString("en-US")} clicks, ${m.conversions.toLocaleString("en-US")} conversions`,
    ...(res.missing.length ? [`(not in this build: ${res.missing.join(", ")})`] : []),
    "",
    table(rows),
    "",
    `CVR AUC (entire, true): pCVR ranked against the potential conversion of every impression (known only in synthetic data);`,
    `CVR bias: mean pCVR - mean true CVR over all impressions.`,
    "",
    `best by CTCVR AUC: ${res.best}; exported to ${res.exported}. Scores of held-out impressions from the exported model:`,
    table(scored),
    "",
    `done in ${res.seconds.toFixed(1)} s. Runs in ${args.out}/<model>; try: mtl report ${args.out}/${res.best}`,
  ].join("\n") + "\n");
}
