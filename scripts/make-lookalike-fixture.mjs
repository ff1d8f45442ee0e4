// Writes fixtures/lookalike/: a tiny look-alike world in PaddleRec's MetaHeac columns (the built-in
// look-alike schema), sized by config.yaml's max_idxs. Run once; the files are committed.
//   node scripts/make-lookalike-fixture.mjs
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = join(import.meta.dirname, "..", "fixtures", "lookalike");
const MAX = {
  carrier: 3, consumptionAbility: 2, LBS: 9, age: 5, education: 7, gender: 2, house: 1,
  interest1: 11, interest2: 9, interest3: 5, kw1: 13, kw2: 11, topic1: 9, topic2: 7,
  advertiserId: 7, campaignId: 9, creativeSize: 4, adCategoryId: 5, productId: 6, productType: 3,
};
const LISTS = { interest1: 10, interest2: 10, interest3: 10, kw1: 5, kw2: 5, topic1: 5, topic2: 5 };
let a = 12345;
const rnd = () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0) / 4294967296);
const int = (n) => Math.floor(rnd() * n);

function row(aid, taste) {
  const r = { label: 0, aid };
  for (const f of ["carrier", "consumptionAbility", "LBS", "age", "education", "gender", "house"]) r[f] = int(MAX[f] + 1);
  let score = 0;
  for (const [f, len] of Object.entries(LISTS)) {
    const n = int(len + 1);
    const ids = Array.from({ length: n }, () => int(MAX[f] + 1));
    if (f === "interest1") score += ids.filter((x) => x === taste).length;
    r[f] = [...ids, ...new Array(len - n).fill(MAX[f])]; // padded with an arbitrary real id, as the real data
    r[`${f}_length`] = n;
  }
  r.label = rnd() < 1 / (1 + Math.exp(-(score - 1))) ? 1 : 0;
  r.advertiserId = aid % (MAX.advertiserId + 1);
  r.campaignId = aid % (MAX.campaignId + 1);
  r.creativeSize = aid % 5;
  r.adCategoryId = aid % 6;
  r.productId = aid % 7;
  r.productType = aid % 4;
  return r;
}
const lines = (rows) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
mkdirSync(dir, { recursive: true });
const train = [];
for (const [aid, n] of [[1, 80], [2, 50], [3, 30], [4, 20], [5, 12]]) for (let i = 0; i < n; i++) train.push(row(aid, aid % 12));
writeFileSync(join(dir, "train.jsonl"), lines(train));
writeFileSync(join(dir, "seeds.jsonl"), lines(Array.from({ length: 40 }, () => row(7, 7))));
writeFileSync(join(dir, "candidates.jsonl"), lines(Array.from({ length: 30 }, () => row(7, 7))));
