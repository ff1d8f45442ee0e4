// How learnable is the synthetic funnel? AUCs of the TRUE probabilities (an oracle model) on
// synthetic rows: the ceiling a trained model can approach. Exact rank AUC (ties broken by order).
//   npm run build && node scripts/synth-oracle-auc.mjs [rows] [seed]
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { synthBatches } = await import(join(root, "dist", "src", "index.js"));
const rows = Number(process.argv[2] ?? 200_000);
const seed = Number(process.argv[3] ?? 1);

function auc(score, label) {
  const order = Array.from(score.keys()).sort((a, b) => score[a] - score[b]);
  let pos = 0, neg = 0, rankSum = 0;
  order.forEach((i, r) => (label[i] ? (pos++, (rankSum += r + 1)) : neg++));
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

for (const bias of [0, 1, 2]) {
  const ctr = [], cvr = [], ctcvr = [], click = [], potential = [], buy = [], cvrClicked = [], buyClicked = [];
  for (const b of synthBatches({ rows, seed, bias })) {
    for (let i = 0; i < b.size; i++) {
      ctr.push(b.truth.ctr[i]); cvr.push(b.truth.cvr[i]); ctcvr.push(b.truth.ctr[i] * b.truth.cvr[i]);
      click.push(b.click[i]); potential.push(b.truth.conversion[i]); buy.push(b.conversion[i]);
      if (b.click[i]) (cvrClicked.push(b.truth.cvr[i]), buyClicked.push(b.conversion[i]));
    }
  }
  console.log(
    `bias ${bias}: oracle AUC  CTR ${auc(ctr, click).toFixed(3)}  CVR clicked ${auc(cvrClicked, buyClicked).toFixed(3)}  ` +
      `CVR entire space ${auc(cvr, potential).toFixed(3)}  CTCVR ${auc(ctcvr, buy).toFixed(3)}  (${rows} rows, seed ${seed})`,
  );
}
