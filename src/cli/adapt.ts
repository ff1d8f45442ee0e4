/** `mtl adapt`: a thin command over src/flow/adapt.ts. */
import { auc } from "../metrics/binary.js";
import { adaptCampaign, type AdaptOptions } from "../flow/adapt.js";
import { progressPrinter } from "./data.js";
import { formatCount } from "./format.js";

export async function adaptCommand(args: Omit<AdaptOptions, "onStep">): Promise<void> {
  const progress = progressPrinter("adapt");
  let r;
  try {
    r = await adaptCampaign({ ...args, onStep: (done, total) => progress.update(`fine-tuning: step ${formatCount(done)}/${formatCount(total)}`) });
  } finally {
    progress.done();
  }
  const lines = [
    `adapted ${r.model} on ${formatCount(r.seeds)} seed rows: ${r.plan.epochs} epochs of Adam (lr ${r.plan.lr}, batch ${r.plan.batchSize}) in ${r.adaptSeconds.toFixed(2)} s; epoch losses ${r.epochLosses.map((l) => l.toFixed(4)).join(", ")}`,
    `scored ${formatCount(r.candidates)} candidates in ${r.scoreSeconds.toFixed(2)} s -> ${r.output}`,
  ];
  const positives = r.labels.reduce((s, y) => s + y, 0);
  if (positives > 0 && positives < r.labels.length) lines.push(`candidate AUC (their labels): ${auc(r.scores, r.labels).toFixed(4)}`);
  process.stdout.write(lines.join("\n") + "\n");
}
