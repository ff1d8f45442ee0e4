/**
 * Crossed features (TF's crossed_column: a hashed cross of two or more fields), element-wise products
 * of pooled embeddings (the Keras ESMM article's adid × device), and TF's -1 padding in a hashed list
 * (lookalike-data's padding_id) feeding a cross.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { layoutOf } from "../src/features/batch.js";
import { encodeRecords } from "../src/features/encode.js";
import { parseSchema, toSchemaJson, validateSchema } from "../src/features/schema.js";
import { MtlError } from "../src/errors.js";
import { embeddedWidth } from "../src/models/inputs.js";
import { esmm, esmmDefaults } from "../src/models/esmm.js";
import { describeModel } from "../src/train/index.js";
import { defaultRunConfig } from "../src/flow/config.js";
import { trainRun } from "../src/flow/run.js";
import { tempDir } from "./helpers/data.js";

const dir = tempDir("mtl-cross-");
test.after(() => rmSync(dir, { recursive: true, force: true }));

const SCHEMA = {
  features: [
    { name: "adid", kind: "id", hash_buckets: 50, dim: 4 },
    { name: "device", kind: "id", hash_buckets: 20, dim: 4 },
    { name: "tags", kind: "ids", max_len: 3, hash_buckets: 40, dim: 4, padding_id: -1 },
    { name: "adid_x_device", kind: "id", cross: ["adid", "device"], hash_buckets: 1000, dim: 4 },
    { name: "device_x_tags", kind: "ids", cross: ["device", "tags"], hash_buckets: 1000, dim: 4 },
  ],
  labels: { click: "click", conversion: "buy" },
  products: [["adid", "device"]],
};

function rows(records: Record<string, unknown>[]) {
  const layout = layoutOf(validateSchema(SCHEMA));
  const b = encodeRecords(layout, records.map((r) => ({ click: 1, buy: 0, ...r })) as never);
  const col = (name: string) => {
    const c = layout.idFeatures.find((f) => f.feature.name === name)!;
    const w = layout.tables[c.table]!.width;
    return Array.from({ length: b.size }, (_, r) => Array.from(b.ids[c.table]!.subarray(r * w + c.offset, r * w + c.offset + c.feature.maxLen)));
  };
  return { layout, col };
}

test("a cross has one id per combination of its sources' ids; the same values give the same cross, padding gives none", () => {
  const { col } = rows([
    { adid: "a1", device: "ios", tags: "t1|t2" },
    { adid: "a1", device: "ios", tags: "t2" },
    { adid: "a2", device: "ios", tags: "" },
    { adid: "a1", device: "web", tags: "t1|-1|-1" },
  ]);
  const ad = col("adid_x_device");
  assert.equal(ad[0]![0], ad[1]![0], "same adid and device, same cross id");
  assert.notEqual(ad[0]![0], ad[2]![0]);
  assert.notEqual(ad[0]![0], ad[3]![0]);
  for (const [id] of ad) assert.ok(id! >= 1 && id! <= 1000);
  const dt = col("device_x_tags");
  // default max_len: 1 × 3 combinations
  assert.equal(dt[0]!.length, 3);
  assert.equal(dt[0]!.filter((x) => x !== 0).length, 2);
  assert.equal(dt[0]![1], dt[1]![0], "(ios, t2) is the same cross id in both rows");
  assert.deepEqual(dt[2], [0, 0, 0], "no tags: no cross ids");
  // TF's -1 padding is never hashed: [t1, -1, -1] holds one tag, so one cross id
  assert.deepEqual(col("tags")[3]!.filter((x) => x !== 0).length, 1);
  assert.equal(dt[3]!.filter((x) => x !== 0).length, 1);
});

test("schema checks for crosses and products; the file format round-trips them", () => {
  const bad = (over: Record<string, unknown>, pattern: RegExp) => assert.throws(() => validateSchema({ ...SCHEMA, ...over }), (e: unknown) => e instanceof MtlError && pattern.test(e.format()));
  bad({ features: [...SCHEMA.features, { name: "x", kind: "ids", cross: ["adid"], hash_buckets: 9 }] }, /features\.x\.cross: expected a list of two or more distinct feature names/);
  bad({ features: [...SCHEMA.features, { name: "x", kind: "ids", cross: ["adid", "nope"], hash_buckets: 9 }] }, /'nope' is not an id feature/);
  bad({ features: [...SCHEMA.features, { name: "x", kind: "ids", cross: ["adid", "device"] }] }, /a cross needs hash_buckets/);
  bad({ features: [...SCHEMA.features, { name: "x", kind: "ids", cross: ["adid", "device"], hash_buckets: 9, source: "col" }] }, /'source' does not apply to a cross/);
  bad({ features: [...SCHEMA.features, { name: "x", kind: "ids", cross: ["adid", "adid_x_device"], hash_buckets: 9 }] }, /'adid_x_device' is a cross itself/);
  bad({ products: [["adid", "nope"]] }, /products\[0\]: 'nope' is not an id feature/);
  bad({ products: [["adid"]] }, /products\[0\]: expected two or more feature names/);
  const s = validateSchema(SCHEMA);
  assert.deepEqual(parseSchema(JSON.stringify(toSchemaJson(s))), s);
});

test("products: the element-wise product of adid and device joins the input (dim wider); crosses get their own tables", () => {
  const schema = validateSchema(SCHEMA);
  const layout = layoutOf(schema);
  // 5 pooled features of 4 + one product of 4
  assert.equal(embeddedWidth(layout), 5 * 4 + 4);
  const d = describeModel(esmm, { ...esmmDefaults(), schema, towerSizes: [6] });
  assert.deepEqual(d.params.find((p) => p.name === "ctr.0.weight")!.shape, [24, 6]);
  assert.deepEqual(d.tables.map((t) => [t.name, t.rows]).filter(([n]) => String(n).includes("_x_")), [["adid_x_device", 1001], ["device_x_tags", 1001]]);
});

test("ESMM trains on CSV rows with crosses and a product; the loss falls", async () => {
  const schemaFile = join(dir, "schema.json");
  writeFileSync(schemaFile, JSON.stringify(SCHEMA));
  const lines = ["adid,device,tags,click,buy"];
  let seed = 9;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 1500; i++) {
    const ad = Math.floor(rand() * 8), dev = Math.floor(rand() * 3);
    // clicks follow the (adid, device) pair: only a cross (or the product) can learn it
    const click = (ad + dev) % 3 === 0 ? (rand() < 0.8 ? 1 : 0) : rand() < 0.1 ? 1 : 0;
    lines.push(`a${ad},d${dev},t${ad % 4}|-1|-1,${click},${click && rand() < 0.3 ? 1 : 0}`);
  }
  const data = join(dir, "rows.csv");
  writeFileSync(data, lines.join("\n") + "\n");
  const config = defaultRunConfig();
  config.data = { train: data, schema: schemaFile };
  config.modelConfig = { towerSizes: [8] };
  config.training = { ...config.training, batchSize: 64, epochs: 3, lr: 0.01, validFraction: 0.2 };
  const losses: number[] = [];
  const summary = await trainRun({ config, out: join(dir, "run"), onEvent: (e) => void (e.kind === "epoch" && losses.push(e.trainLoss)) });
  assert.equal(summary.status, "completed");
  assert.ok(losses[2]! < losses[0]!, `train loss ${losses.join(" → ")}`);
  assert.ok(summary.best!.metrics.ctr_auc! > 0.7, String(summary.best!.metrics.ctr_auc));
});
