/**
 * A synthetic impression funnel with known truth, in Ali-CCP's fields and id space.
 *
 * The world (fixed by the seed): users and items with latent factors and categorical features.
 *   - Users: a segment (Zipf over segments) whose centroid plus noise gives the user's latent
 *     vectors; profile fields 121..129 derived from the segment and user; multi-valued histories
 *     109_14 (categories), 110_14 (shops), 127_14 (brands), 150_14 (intentions), with lengths
 *     1..maxHistory and values drawn near the user's preferences (Zipf over each vocabulary).
 *   - Items: a category (Zipf) whose centroid plus noise gives the item's latent vectors; shop,
 *     brand, 1–3 intention nodes (210); popularity by Zipf rank.
 *   - Cross fields 508, 509, 702, 853 hash (user attribute, item attribute) pairs; 301 is a context
 *     (3 scenarios).
 * Each impression: user ~ Zipf(user activity), item ~ Zipf(item popularity), context uniform.
 *   conversion logit  z_v = cvrBias + u_v·v_v + quality_i          (true CVR = σ(z_v))
 *   click logit       z_c = ctrBias + u_c·v_c + context_k + bias·(z_v − cvrBias)/sd_v
 *                     (true CTR = σ(z_c); sd_v is the prior standard deviation of u_v·v_v + quality)
 *   click ~ Bernoulli(true CTR); potential conversion ~ Bernoulli(true CVR) for EVERY impression;
 *   buy = click · potential conversion (what a real log shows).
 * With bias > 0, impressions likely to be clicked are also likely to convert, so the clicked
 * impressions' mean true CVR exceeds the whole space's: a CVR model trained on clicks only is
 * biased (inspect prints both means).
 *
 * Everything is drawn from seeded xoshiro128** streams: the world from stream 1, impressions from
 * stream 2, so a seed gives the same rows in a file or in memory, on any machine.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { commitFile, ioError, temporaryPath } from "../util/atomic.js";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import { BatchBuilder, layoutOf, type Batch, type Layout } from "../features/batch.js";
import { fnv1a32 } from "../util/hash.js";
import { ALICCP_FIELDS, defaultAliccpSchema, type FeatureSchema } from "../features/schema.js";
import { MtlError } from "../errors.js";
import { Rng } from "../util/prng.js";
import { ZipfSampler } from "./random.js";
import { TRUTH_HEADER } from "./truth.js";

export interface SynthOptions {
  /** Default 0. */
  seed?: number;
  /** Selection-bias strength (click propensity's loading on conversion propensity). Default 1. */
  bias?: number;
  users?: number;
  items?: number;
  /** Latent dimension. Default 8. */
  factors?: number;
  /** Intercepts of the click and conversion logits (defaults give CTR ≈ 8%, CVR ≈ 10%). */
  ctrBias?: number;
  cvrBias?: number;
  /** Longest multi-valued user history. Default 40. */
  maxHistory?: number;
  /**
   * Observed rates to calibrate the intercepts to (overriding ctrBias/cvrBias): `ctr` = clicks /
   * impressions, `cvr` = conversions / clicks (what a log shows), both in (0, 1). Solved at any bias
   * on a Monte-Carlo sample of impressions, so a selection-bias sweep keeps the observed rates fixed.
   */
  ctr?: number;
  cvr?: number;
  /** A named world (SYNTH_PRESETS): its observed rates; explicit ctr/cvr/ctrBias/cvrBias win. */
  preset?: SynthPresetName;
  /** The impression stream of the seed (default 2). Another stream draws other impressions of the same world: a test set. */
  stream?: number;
}

/** Named worlds: observed rates, and why each exists (docs/data.md, docs/results.md). */
export const SYNTH_PRESETS = {
  /** Ali-CCP's train split (ESMM paper): 42.3M impressions, 1.6M clicks (3.9%), 9k conversions (0.56% of clicks). */
  aliccp: { ctr: 0.039, cvr: 0.0056 },
  /** Quick runs: 10% CTR, 20% of clicks convert (plenty of conversions in 100k impressions). */
  dense: { ctr: 0.1, cvr: 0.2 },
  /** The sparser quick level: 10% CTR, 5% of clicks convert (a quarter of dense's conversions). */
  sparse: { ctr: 0.1, cvr: 0.05 },
} as const satisfies Record<string, { ctr: number; cvr: number }>;
export type SynthPresetName = keyof typeof SYNTH_PRESETS;

/** Cardinalities of the synthetic fields (besides users and items). */
const CARDINALITY: Readonly<Record<string, number>> = {
  "121": 97, "122": 13, "124": 3, "125": 8, "126": 4, "127": 4, "128": 3, "129": 6,
  "206": 300, "207": 4000, "216": 6000, "210": 1500,
  "109_14": 300, "110_14": 4000, "127_14": 6000, "150_14": 1500,
  "508": 20000, "509": 8000, "702": 8000, "853": 8000, "301": 3,
};

/** A generated impression before encoding: ids per field (in ALICCP_FIELDS order) and the truth. */
export interface SynthRow {
  sampleId: number;
  click: 0 | 1;
  buy: 0 | 1;
  trueCtr: number;
  trueCvr: number;
  conversionPotential: 0 | 1;
  /** ids[f] holds `lengths[f]` ids of field ALICCP_FIELDS[f] (global Ali-CCP-style id space, 1-based). */
  readonly ids: Int32Array[];
  readonly lengths: Int32Array;
}

/** The Rng stream of the calibration sample (impression streams are 2..CALIBRATION_STREAM − 1). */
const CALIBRATION_STREAM = 1000;
const CALIBRATION_SAMPLE = 50_000;

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** The fixed world of users and items, and a stream of impressions drawn from it. */
export class SynthWorld {
  readonly seed: number;
  readonly bias: number;
  readonly users: number;
  readonly items: number;
  readonly factors: number;
  readonly ctrBias: number;
  readonly cvrBias: number;
  /** The impression stream (Rng stream of the seed; 1 is the world's). */
  readonly stream: number;
  /** First id of each field in the global space (ids of field f are offset[f] + 0..size[f]-1). */
  readonly offset: Int32Array;
  readonly size: Int32Array;
  /** Largest id used + 1: a vocab_size that fits every id. */
  readonly vocabSize: number;
  private readonly f: Record<string, number>;
  // users
  private readonly userSegment: Int32Array;
  private readonly userProfile: Int32Array; // [users, 8] values of 121..129
  private readonly userClickVec: Float32Array;
  private readonly userConvVec: Float32Array;
  private readonly historyStart: Int32Array; // [users*4 + 1] into historyIds, per (user, history field)
  private readonly historyIds: Int32Array;
  // items
  private readonly itemCategory: Int32Array;
  private readonly itemShop: Int32Array;
  private readonly itemBrand: Int32Array;
  private readonly itemIntent: Int32Array; // [items, 3], -1 = none
  private readonly itemClickVec: Float32Array;
  private readonly itemConvVec: Float32Array;
  private readonly itemQuality: Float32Array;
  private readonly convSd: number;
  private readonly userSampler: ZipfSampler;
  private readonly itemSampler: ZipfSampler;
  private readonly itemOfRank: Int32Array;
  private readonly userOfRank: Int32Array;

  constructor(opts: SynthOptions = {}) {
    this.seed = opts.seed ?? 0;
    this.bias = opts.bias ?? 1;
    this.users = opts.users ?? 20_000;
    this.items = opts.items ?? 30_000;
    this.factors = opts.factors ?? 8;
    this.ctrBias = opts.ctrBias ?? -2.9;
    this.cvrBias = opts.cvrBias ?? -2.5;
    const maxHistory = opts.maxHistory ?? 40;
    for (const [k, v] of Object.entries({ users: this.users, items: this.items, factors: this.factors, maxHistory }))
      if (!Number.isInteger(v) || v < 1) throw new MtlError("E_USAGE", `synth ${k} must be a positive integer, got ${v}`, { where: { field: k } });
    if (!Number.isFinite(this.bias)) throw new MtlError("E_USAGE", `synth bias must be a finite number`, { where: { field: "bias" } });
    if (opts.preset !== undefined && !Object.hasOwn(SYNTH_PRESETS, opts.preset))
      throw new MtlError("E_USAGE", `unknown synth preset '${opts.preset}'`, { where: { field: "preset" }, hint: `choose one of ${Object.keys(SYNTH_PRESETS).join(", ")}` });
    const preset = opts.preset !== undefined ? SYNTH_PRESETS[opts.preset] : undefined;
    const targetCtr = opts.ctr ?? (opts.ctrBias === undefined ? preset?.ctr : undefined);
    const targetCvr = opts.cvr ?? (opts.cvrBias === undefined ? preset?.cvr : undefined);
    for (const [k, v] of Object.entries({ ctr: targetCtr, cvr: targetCvr }))
      if (v !== undefined && !(v > 0 && v < 1)) throw new MtlError("E_USAGE", `synth ${k} must be a rate in (0, 1), got ${v}`, { where: { field: k } });
    this.stream = opts.stream ?? 2;
    if (!Number.isInteger(this.stream) || this.stream < 2 || this.stream >= CALIBRATION_STREAM)
      throw new MtlError("E_USAGE", `synth stream must be an integer in 2..${CALIBRATION_STREAM - 1} (1 draws the world), got ${this.stream}`, { where: { field: "stream" } });
    this.f = Object.fromEntries(ALICCP_FIELDS.map((name, i) => [name, i]));
    this.size = new Int32Array(ALICCP_FIELDS.length);
    this.offset = new Int32Array(ALICCP_FIELDS.length);
    let next = 1;
    ALICCP_FIELDS.forEach((name, i) => {
      const n = name === "101" ? this.users : name === "205" ? this.items : CARDINALITY[name]!;
      this.size[i] = n;
      this.offset[i] = next;
      next += n;
    });
    this.vocabSize = next;
    const rng = new Rng(this.seed, 1);
    const k = this.factors;
    const scale = 1 / Math.sqrt(k);
    const nSeg = CARDINALITY["121"]!;
    const nCat = CARDINALITY["206"]!;
    // centroids: segments and categories carry most of the signal (so categorical features generalise)
    const segC = Float32Array.from({ length: nSeg * k }, () => rng.normal() * scale * 1.1);
    const segV = Float32Array.from({ length: nSeg * k }, () => rng.normal() * scale * 1.1);
    const catC = Float32Array.from({ length: nCat * k }, () => rng.normal() * 1.1);
    const catV = Float32Array.from({ length: nCat * k }, () => rng.normal() * 1.1);
    const segZipf = new ZipfSampler(nSeg, 1.0);
    const catZipf = new ZipfSampler(nCat, 1.0);
    // users
    const U = this.users;
    this.userSegment = new Int32Array(U);
    this.userProfile = new Int32Array(U * 8);
    this.userClickVec = new Float32Array(U * k);
    this.userConvVec = new Float32Array(U * k);
    const profileFields = ["122", "124", "125", "126", "127", "128", "129"];
    const histFields = ["109_14", "110_14", "127_14", "150_14"];
    const histZipf = histFields.map((h) => new ZipfSampler(CARDINALITY[h]!, 1.05));
    const starts: number[] = [0];
    const hist: number[] = [];
    for (let u = 0; u < U; u++) {
      const s = segZipf.sample(rng);
      this.userSegment[u] = s;
      this.userProfile[u * 8] = s;
      profileFields.forEach((pf, j) => {
        const card = CARDINALITY[pf]!;
        // profile values depend on the segment (mostly) so they carry signal
        this.userProfile[u * 8 + 1 + j] = rng.next() < 0.7 ? (s * 7 + j * 13) % card : rng.int(card);
      });
      for (let d = 0; d < k; d++) {
        this.userClickVec[u * k + d] = segC[s * k + d]! + rng.normal() * scale * 0.6;
        this.userConvVec[u * k + d] = segV[s * k + d]! + rng.normal() * scale * 0.6;
      }
      histFields.forEach((_, h) => {
        const len = 1 + Math.min(maxHistory - 1, Math.floor(-Math.log(1 - rng.next()) * maxHistory * 0.3));
        const card = histZipf[h]!.n;
        for (let j = 0; j < len; j++) {
          // a segment-specific rotation of a Zipf draw: users of a segment share favourite values
          hist.push((histZipf[h]!.sample(rng) + s * 31) % card);
        }
        starts.push(hist.length);
      });
    }
    this.historyStart = Int32Array.from(starts);
    this.historyIds = Int32Array.from(hist);
    // items
    const I = this.items;
    this.itemCategory = new Int32Array(I);
    this.itemShop = new Int32Array(I);
    this.itemBrand = new Int32Array(I);
    this.itemIntent = new Int32Array(I * 3).fill(-1);
    this.itemClickVec = new Float32Array(I * k);
    this.itemConvVec = new Float32Array(I * k);
    this.itemQuality = new Float32Array(I);
    const shopZipf = new ZipfSampler(CARDINALITY["207"]!, 1.0);
    const brandZipf = new ZipfSampler(CARDINALITY["216"]!, 1.0);
    const intentCard = CARDINALITY["210"]!;
    for (let i = 0; i < I; i++) {
      const c = catZipf.sample(rng);
      this.itemCategory[i] = c;
      this.itemShop[i] = (shopZipf.sample(rng) + c * 7) % CARDINALITY["207"]!;
      this.itemBrand[i] = (brandZipf.sample(rng) + c * 11) % CARDINALITY["216"]!;
      const nIntent = 1 + rng.int(3);
      for (let j = 0; j < nIntent; j++) this.itemIntent[i * 3 + j] = (c * 5 + rng.int(40)) % intentCard;
      for (let d = 0; d < k; d++) {
        this.itemClickVec[i * k + d] = catC[c * k + d]! + rng.normal() * 0.5;
        this.itemConvVec[i * k + d] = catV[c * k + d]! + rng.normal() * 0.5;
      }
      this.itemQuality[i] = rng.normal() * 0.5;
    }
    // prior sd of the conversion score (by Monte Carlo over random user-item pairs, from the world stream)
    let s1 = 0, s2 = 0;
    const m = 4000;
    for (let j = 0; j < m; j++) {
      const v = this.convScore(rng.int(U), rng.int(I));
      s1 += v;
      s2 += v * v;
    }
    this.convSd = Math.sqrt(Math.max(s2 / m - (s1 / m) ** 2, 1e-6));
    this.userSampler = new ZipfSampler(U, 0.8);
    this.itemSampler = new ZipfSampler(I, 1.0);
    // popularity ranks are a seeded permutation of ids (id order carries no signal)
    this.userOfRank = rng.shuffle(Int32Array.from({ length: U }, (_, i) => i));
    this.itemOfRank = rng.shuffle(Int32Array.from({ length: I }, (_, i) => i));
    if (targetCtr !== undefined || targetCvr !== undefined) this.calibrate(targetCtr, targetCvr);
  }

  /**
   * Solve the intercepts for observed rates on CALIBRATION_SAMPLE impressions drawn as draw() draws
   * them, from their own stream (the world and the impression streams are untouched). The click
   * logit does not involve cvrBias (it loads on z_v − cvrBias), so ctrBias is solved first:
   *   mean σ(z_c) = ctr,   then   Σ σ(z_c)·σ(z_v) / Σ σ(z_c) = cvr   (conversions per click).
   * Both are monotone in their intercept: bisection.
   */
  private calibrate(ctr: number | undefined, cvr: number | undefined): void {
    const rng = new Rng(this.seed, CALIBRATION_STREAM);
    const n = CALIBRATION_SAMPLE;
    const clickPart = new Float64Array(n), convPart = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const u = this.userOfRank[this.userSampler.sample(rng)]!;
      const i = this.itemOfRank[this.itemSampler.sample(rng)]!;
      const ctx = rng.int(3);
      const conv = this.convScore(u, i);
      convPart[j] = conv;
      clickPart[j] = this.clickScore(u, i) + (ctx - 1) * 0.3 + this.bias * conv / this.convSd;
    }
    const solve = (rate: (b: number) => number, target: number) => {
      let lo = -30, hi = 30;
      for (let it = 0; it < 60; it++) {
        const mid = (lo + hi) / 2;
        if (rate(mid) < target) lo = mid;
        else hi = mid;
      }
      return (lo + hi) / 2;
    };
    const mutable = this as { ctrBias: number; cvrBias: number };
    if (ctr !== undefined) mutable.ctrBias = solve((b) => clickPart.reduce((a, c) => a + sigmoid(b + c), 0) / n, ctr);
    if (cvr !== undefined) {
      const pClick = clickPart.map((c) => sigmoid(this.ctrBias + c));
      const clicks = pClick.reduce((a, p) => a + p, 0);
      mutable.cvrBias = solve((b) => pClick.reduce((a, p, j) => a + p * sigmoid(b + convPart[j]!), 0) / clicks, cvr);
    }
  }

  private convScore(u: number, i: number): number {
    const k = this.factors;
    let dot = 0;
    for (let d = 0; d < k; d++) dot += this.userConvVec[u * k + d]! * this.itemConvVec[i * k + d]!;
    return dot + this.itemQuality[i]!;
  }

  private clickScore(u: number, i: number): number {
    const k = this.factors;
    let dot = 0;
    for (let d = 0; d < k; d++) dot += this.userClickVec[u * k + d]! * this.itemClickVec[i * k + d]!;
    return dot;
  }

  /** A reusable row buffer: room for the longest history in multi-valued fields, 3 intention nodes, 1 id elsewhere. */
  newRow(): SynthRow {
    let longest = 3;
    for (let j = 0; j + 1 < this.historyStart.length; j++) longest = Math.max(longest, this.historyStart[j + 1]! - this.historyStart[j]!);
    return {
      sampleId: 0, click: 0, buy: 0, trueCtr: 0, trueCvr: 0, conversionPotential: 0,
      ids: ALICCP_FIELDS.map((name) => new Int32Array(name.endsWith("_14") || name === "210" ? longest : 1)),
      lengths: new Int32Array(ALICCP_FIELDS.length),
    };
  }

  /** Draw impression number `sampleId` (1-based, consecutive) from `rng` into `row`. */
  draw(rng: Rng, sampleId: number, row: SynthRow): SynthRow {
    const u = this.userOfRank[this.userSampler.sample(rng)]!;
    const i = this.itemOfRank[this.itemSampler.sample(rng)]!;
    const ctx = rng.int(3);
    const zv = this.cvrBias + this.convScore(u, i);
    const zc = this.ctrBias + this.clickScore(u, i) + (ctx - 1) * 0.3 + this.bias * (zv - this.cvrBias) / this.convSd;
    const ctr = Math.fround(sigmoid(zc));
    const cvr = Math.fround(sigmoid(zv));
    const click = rng.next() < ctr ? 1 : 0;
    const potential = rng.next() < cvr ? 1 : 0;
    row.sampleId = sampleId;
    row.trueCtr = ctr;
    row.trueCvr = cvr;
    row.click = click;
    row.conversionPotential = potential;
    row.buy = (click & potential) as 0 | 1;
    const f = this.f;
    const set1 = (name: string, value: number) => {
      const fi = f[name]!;
      row.ids[fi]![0] = this.offset[fi]! + value;
      row.lengths[fi] = 1;
    };
    const seg = this.userSegment[u]!;
    set1("101", u);
    ["121", "122", "124", "125", "126", "127", "128", "129"].forEach((name, j) => set1(name, this.userProfile[u * 8 + j]!));
    ["109_14", "110_14", "127_14", "150_14"].forEach((name, h) => {
      const fi = f[name]!;
      const a = this.historyStart[u * 4 + h]!, b = this.historyStart[u * 4 + h + 1]!;
      const dst = row.ids[fi]!;
      for (let j = a; j < b; j++) dst[j - a] = this.offset[fi]! + this.historyIds[j]!;
      row.lengths[fi] = b - a;
    });
    const cat = this.itemCategory[i]!, shop = this.itemShop[i]!, brand = this.itemBrand[i]!;
    set1("205", i);
    set1("206", cat);
    set1("207", shop);
    set1("216", brand);
    const fi210 = f["210"]!;
    let n210 = 0;
    for (let j = 0; j < 3; j++) {
      const v = this.itemIntent[i * 3 + j]!;
      if (v >= 0) row.ids[fi210]![n210++] = this.offset[fi210]! + v;
    }
    row.lengths[fi210] = n210;
    const cross = (name: string, a: number, b: number) => set1(name, fnv1a32(`${a}|${b}`) % CARDINALITY[name]!);
    cross("508", seg, cat);
    cross("509", this.userProfile[u * 8 + 3]!, shop);
    cross("702", this.userProfile[u * 8 + 4]!, brand);
    cross("853", this.userProfile[u * 8 + 1]!, this.itemIntent[i * 3]!);
    set1("301", ctx);
    return row;
  }

  /** A schema that reads every synthetic field: the default Ali-CCP schema, its vocabulary sized to this world. */
  schema(opts: { maxLen?: number; dim?: number } = {}): FeatureSchema {
    return defaultAliccpSchema({ ...opts, vocabSize: this.vocabSize });
  }
}

/** Ali-CCP text of a row (sample_id,click,buy,field:id,...), fields in ALICCP_FIELDS order. */
export function formatAliccpRow(row: SynthRow): string {
  const parts: string[] = [`${row.sampleId},${row.click},${row.buy}`];
  for (let f = 0; f < ALICCP_FIELDS.length; f++) {
    const name = ALICCP_FIELDS[f]!;
    const ids = row.ids[f]!;
    for (let j = 0; j < row.lengths[f]!; j++) parts.push(`${name}:${ids[j]}`);
  }
  return parts.join(",");
}

/** The sidecar line of a row: sample_id,true_ctr,true_cvr,conversion_potential. */
export function formatTruthRow(row: SynthRow): string {
  return `${row.sampleId},${row.trueCtr},${row.trueCvr},${row.conversionPotential}`;
}

/** Encode a synthetic row into the next row of a builder, as the Ali-CCP reader would encode its text. */
export function encodeSynthRow(b: BatchBuilder, fieldToFeature: Int32Array, row: SynthRow): void {
  const layout = b.layout;
  const r = b.size;
  b.clearRow(r);
  for (let f = 0; f < ALICCP_FIELDS.length; f++) {
    const fi = fieldToFeature[f]!;
    if (fi < 0) continue;
    const c = layout.idFeatures[fi]!;
    const w = layout.tables[c.table]!.width;
    const n = Math.min(row.lengths[f]!, c.feature.maxLen);
    const dst = b.ids[c.table]!;
    const src = row.ids[f]!;
    for (let j = 0; j < row.lengths[f]!; j++) {
      const id = c.feature.hashBuckets !== null ? 1 + (fnv1a32(String(src[j])) % c.feature.hashBuckets) : src[j]!;
      if (c.feature.vocabSize !== null && id >= c.feature.vocabSize)
        throw new MtlError("E_SCHEMA", `synthetic id ${id} of field ${ALICCP_FIELDS[f]} does not fit vocab_size ${c.feature.vocabSize}`, { where: { field: c.feature.name }, hint: `use a vocab_size of at least ${id + 1} (SynthWorld.schema() sizes it)` });
      if (j < n) dst[r * w + c.offset + j] = id;
    }
    if (b.rawIdCounts) b.rawIdCounts[r * layout.idFeatures.length + fi] = row.lengths[f]!;
  }
  b.click[r] = row.click;
  b.conversion[r] = row.buy;
  b.sampleKey[r] = fnv1a32(String(row.sampleId));
  if (b.truthCtr) {
    b.truthCtr[r] = row.trueCtr;
    b.truthCvr![r] = row.trueCvr;
    b.truthConversion![r] = row.conversionPotential;
  }
  b.size = r + 1;
}

function fieldMap(layout: Layout): Int32Array {
  return Int32Array.from(ALICCP_FIELDS.map((name) => layout.idFeatures.findIndex((c) => c.feature.source === name)));
}

export interface SynthBatchOptions extends SynthOptions {
  rows: number;
  batchSize?: number;
  /** Default: world.schema(). Fields the schema lacks are left out; ids must fit its vocab_size. */
  schema?: FeatureSchema;
}

/**
 * The in-process generator: batches of synthetic rows with ground truth, no file. Yields exactly
 * what reading `mtl data synth` output with the same options gives (click=0 & buy=1 never occurs here).
 */
export function* synthBatches(opts: SynthBatchOptions, world: SynthWorld = new SynthWorld(opts)): Generator<Batch> {
  const schema = opts.schema ?? world.schema();
  const layout = layoutOf(schema);
  const map = fieldMap(layout);
  const b = new BatchBuilder(layout, opts.batchSize ?? 8192, { truth: true });
  const rng = new Rng(world.seed, world.stream);
  const row = world.newRow();
  for (let n = 1; n <= opts.rows; n++) {
    encodeSynthRow(b, map, world.draw(rng, n, row));
    if (b.full) yield b.take();
  }
  if (b.size > 0) yield b.take();
}

/** Summary of what synth wrote: rates and the selection-bias evidence. */
export interface SynthSummary {
  rows: number;
  clicks: number;
  conversions: number;
  /** Mean true CVR over all impressions vs over clicked impressions: the selection bias. */
  meanTrueCvrAll: number;
  meanTrueCvrClicked: number;
  meanTrueCtr: number;
  /** Potential conversions over all impressions (observable only in synthetic data). */
  potentialConversionRate: number;
  vocabSize: number;
}

async function writeLine(out: WriteStream, s: string): Promise<void> {
  if (out.errored) throw out.errored;
  if (!out.write(s)) await once(out, "drain");
}

/**
 * Write `rows` impressions to `file` (Ali-CCP format) and the truth sidecar `<file>.truth.csv`.
 * Streams: memory does not grow with rows. Written to temporary siblings and committed at the end (src/util/atomic.ts).
 */
export async function writeSynth(file: string, opts: SynthOptions & { rows: number; onProgress?: (rows: number) => void }): Promise<SynthSummary> {
  if (!Number.isInteger(opts.rows) || opts.rows < 1) throw new MtlError("E_USAGE", `rows must be a positive integer, got ${opts.rows}`, { where: { field: "rows" } });
  const world = new SynthWorld(opts);
  const truthFile = `${file}.truth.csv`;
  const dataTmp = temporaryPath(file, "partial"), truthTmp = temporaryPath(truthFile, "partial");
  const opened = async (path: string): Promise<WriteStream> => {
    const stream = createWriteStream(path, { highWaterMark: 1 << 20 });
    try {
      await once(stream, "open");
    } catch (err) {
      throw new MtlError("E_IO", `cannot write: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file: path }, hint: "check that the directory exists and is writable", cause: err });
    }
    // A failed write (disk full) errors the stream: writeLine and finished() report it, never an unhandled 'error'.
    stream.on("error", () => undefined);
    return stream;
  };
  const data = await opened(dataTmp);
  let truth: WriteStream;
  try {
    truth = await opened(truthTmp);
  } catch (err) {
    data.destroy();
    await rm(dataTmp, { force: true });
    throw err;
  }
  const sum: SynthSummary = { rows: 0, clicks: 0, conversions: 0, meanTrueCvrAll: 0, meanTrueCvrClicked: 0, meanTrueCtr: 0, potentialConversionRate: 0, vocabSize: world.vocabSize };
  let cvrAll = 0, cvrClicked = 0, ctrAll = 0, potential = 0;
  try {
    await writeLine(truth, TRUTH_HEADER + "\n");
    const rng = new Rng(world.seed, world.stream);
    const row = world.newRow();
    let dataChunk: string[] = [];
    let truthChunk: string[] = [];
    for (let n = 1; n <= opts.rows; n++) {
      world.draw(rng, n, row);
      dataChunk.push(formatAliccpRow(row));
      truthChunk.push(formatTruthRow(row));
      sum.clicks += row.click;
      sum.conversions += row.buy;
      cvrAll += row.trueCvr;
      ctrAll += row.trueCtr;
      potential += row.conversionPotential;
      if (row.click) cvrClicked += row.trueCvr;
      if (dataChunk.length === 2048 || n === opts.rows) {
        await writeLine(data, dataChunk.join("\n") + "\n");
        await writeLine(truth, truthChunk.join("\n") + "\n");
        dataChunk = [];
        truthChunk = [];
        if (n % 65536 < 2048) opts.onProgress?.(n);
      }
    }
    data.end();
    truth.end();
    await Promise.all([finished(data), finished(truth)]);
    commitFile(dataTmp, file);
    commitFile(truthTmp, truthFile);
  } catch (err) {
    data.destroy();
    truth.destroy();
    await rm(dataTmp, { force: true });
    await rm(truthTmp, { force: true });
    throw ioError(err, file, "synthetic data");
  }
  sum.rows = opts.rows;
  sum.meanTrueCvrAll = cvrAll / opts.rows;
  sum.meanTrueCvrClicked = sum.clicks ? cvrClicked / sum.clicks : NaN;
  sum.meanTrueCtr = ctrAll / opts.rows;
  sum.potentialConversionRate = potential / opts.rows;
  opts.onProgress?.(opts.rows);
  return sum;
}
