/**
 * A synthetic look-alike world with known truth, in the Tencent look-alike columns of PaddleRec's
 * MetaHeac example (so `defaultLookalikeSchema()` reads it as it reads the real sample), laid out as
 * PaddleRec lays out its MetaHeac data: meta-training campaigns in `train_stage1`, held-out
 * campaigns split into a seed part (`test_stage1`, to adapt on) and a candidate part (`test_stage2`,
 * to score), separately for hot and cold campaigns (PaddleRec's infer_hot / infer_cold).
 *
 * The world (fixed by the seed, stream 1):
 *   - P personas with centres μ_p ~ N(0, I_d), popularity Zipf(1); user u has persona p_u and latent
 *     z_u = μ_{p_u} + 0.5·ε_u. Static user fields come from the persona (probability 0.8, else uniform),
 *     `age` from z_u's first coordinate; each dynamic list (interest1..3, kw1..2, topic1..2) has a
 *     length uniform in 0..max_len, values from a persona-rotated Zipf over the field's ids
 *     (probability 0.7, else uniform), and random pad values after `length` (so a reader that ignores
 *     the length column sees noise).
 *   - A shared audience factors a_k (unit vectors in R^d). Campaign c mixes a few of them:
 *       π_c ~ Dirichlet(α·1_A), α = 0.3                                          (1)
 *       w_c = normalise(Σ_k π_{c,k} a_k + τ·ε_c), τ = 0.3                         (2)
 *     so campaigns share structure (what meta-learning can learn) and each has its own mixture and
 *     noise (what one global model averages away). Its ad fields follow its dominant audience
 *     k* = argmax_k π_{c,k} (adCategoryId, productId, productType) or are random (advertiserId,
 *     creativeSize); campaignId = c mod 138; the task id aid = c + 1.
 *   - Campaign sizes are Zipf-like over a seeded rank r_c (1 = largest):
 *       n_c = max(10, round(L·scale / r_c))                                        (3)
 *     with L = 100,000 candidates (an assumed size of a large real campaign) and `scale` the size of
 *     this world relative to the paper's. Hot campaigns have n_c ≥ T·scale, T = 4,000 (the paper's
 *     threshold), cold ones fewer.
 * Rows (campaign c from its own stream 100 + c, so a campaign's rows do not depend on the others):
 * n_c distinct users (uniform; with replacement only when n_c exceeds the users), each labelled
 *       p = σ(b_c + β·⟨z_u, w_c⟩),  label ~ Bernoulli(p)                           (4)
 * with β = 2 and b_c = logit(r_c), a base rate r_c ~ U(0.15, 0.4). The true p is written as `true_p`
 * (the schema does not read it). A fraction (default 0.2) of the hot and of the cold campaigns is
 * held out; each held-out campaign's rows split into a seed part (default the first half) and a
 * candidate part.
 */
import { mkdir, rm, stat } from "node:fs/promises";
import { createWriteStream, type WriteStream } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { LOOKALIKE_AD, LOOKALIKE_USER_DYNAMIC, LOOKALIKE_USER_STATIC } from "../features/lookalike.js";
import { auc } from "../metrics/binary.js";
import { commitFile, temporaryPath, writeJsonAtomic } from "../util/atomic.js";
import { Rng } from "../util/prng.js";
import { ZipfSampler } from "./random.js";

/** The paper's hot/cold threshold on a campaign's candidates, at full size. */
export const PAPER_HOT_THRESHOLD = 4000;
/** Candidates of the largest campaign at scale 1 (an assumption; sizes fall as 1 / rank). */
export const LARGEST_CAMPAIGN = 100_000;
const MIN_CAMPAIGN = 10;

export interface LookalikeSynthOptions {
  /** Default 0. */
  seed?: number;
  /** Campaigns (tasks). Default 100. */
  campaigns?: number;
  /** Size relative to the paper's world: the largest campaign has 100,000·scale candidates, T = 4,000·scale. Default 0.05. */
  scale?: number;
  /** Users in the world. Default 20,000. */
  users?: number;
  /** Shared latent audience factors. Default 6. */
  audiences?: number;
  /** Latent dimension. Default 8. */
  factors?: number;
  /** Personas users come from. Default 40. */
  personas?: number;
  /** Fraction of the hot and of the cold campaigns held out for stage 2. Default 0.2. */
  heldOutFraction?: number;
  /** Fraction of a held-out campaign's rows in its seed part (test_stage1). Default 0.5. */
  seedFraction?: number;
}

export type CampaignGroup = "hot" | "cold";

/** One campaign: what it is and where its rows went. */
export interface CampaignInfo {
  readonly aid: number;
  readonly group: CampaignGroup;
  /** "train": all rows in train_stage1; "test": a seed part in <group>/test_stage1 and candidates in <group>/test_stage2. */
  readonly role: "train" | "test";
  readonly candidates: number;
  readonly positives: number;
  /** Rows in train_stage1 (role train) or <group>/test_stage1 (role test). */
  readonly stage1Rows: number;
  /** Rows in <group>/test_stage2 (role test; 0 otherwise). */
  readonly stage2Rows: number;
  /** π_c of eq. (1). */
  readonly audienceWeights: readonly number[];
  readonly dominantAudience: number;
  readonly baseRate: number;
}

export interface LookalikeSynthSummary {
  readonly seed: number;
  readonly scale: number;
  /** T·scale: campaigns with at least this many candidates are hot. */
  readonly hotThreshold: number;
  readonly paperHotThreshold: number;
  readonly rows: number;
  readonly positives: number;
  readonly files: Readonly<Record<string, number>>;
  /** AUC of the true p over the held-out candidate rows (the ceiling a model can reach), per group. */
  readonly oracleAuc: { readonly hot: number; readonly cold: number };
  /**
   * AUC over the same rows of the campaign-blind truth: a user's true p averaged over all campaigns
   * (the best a model that ignores the campaign can rank by). The gap to oracleAuc is what
   * knowing the campaign is worth.
   */
  readonly campaignBlindAuc: { readonly hot: number; readonly cold: number };
  readonly campaigns: readonly CampaignInfo[];
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** Gamma(shape, 1) by Marsaglia–Tsang (shape < 1 through the U^(1/shape) boost). */
function gamma(rng: Rng, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * Math.pow(1 - rng.next(), 1 / shape);
  const d = shape - 1 / 3, c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = rng.normal();
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

function positiveInt(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 1) throw new MtlError("E_USAGE", `synth ${field} must be a positive integer, got ${v}`, { where: { field } });
  return v;
}

function fraction(v: number, field: string, open: boolean): number {
  if (!(v >= 0 && v <= 1) || (open && (v === 0 || v === 1))) throw new MtlError("E_USAGE", `synth ${field} must be in ${open ? "(0, 1)" : "[0, 1]"}, got ${v}`, { where: { field } });
  return v;
}

/** The world of users and campaigns; rows are drawn per campaign. */
export class LookalikeWorld {
  readonly seed: number;
  readonly scale: number;
  readonly users: number;
  readonly factors: number;
  readonly hotThreshold: number;
  readonly campaigns: readonly Omit<CampaignInfo, "role" | "stage1Rows" | "stage2Rows" | "positives">[];
  readonly heldOut: ReadonlySet<number>;
  readonly seedFraction: number;
  private readonly latent: Float64Array; // [users, d]
  private readonly staticIds: Int32Array; // [users, 7]
  private readonly dynamicIds: Int32Array[]; // per dynamic field: [users, maxLen], pads included
  private readonly dynamicLength: Int32Array[]; // per dynamic field: [users]
  private readonly campaignVec: Float64Array; // [campaigns, d]
  private readonly campaignBias: Float64Array;
  private readonly adIds: Int32Array; // [campaigns, 6]

  constructor(opts: LookalikeSynthOptions = {}) {
    this.seed = opts.seed ?? 0;
    const nCampaigns = positiveInt(opts.campaigns ?? 100, "campaigns");
    this.scale = opts.scale ?? 0.05;
    if (!(this.scale > 0) || !Number.isFinite(this.scale)) throw new MtlError("E_USAGE", `synth scale must be a positive number, got ${this.scale}`, { where: { field: "scale" } });
    const U = (this.users = positiveInt(opts.users ?? 20_000, "users"));
    const A = positiveInt(opts.audiences ?? 6, "audiences");
    const d = (this.factors = positiveInt(opts.factors ?? 8, "factors"));
    const P = positiveInt(opts.personas ?? 40, "personas");
    const heldOutFraction = fraction(opts.heldOutFraction ?? 0.2, "heldOutFraction", false);
    this.seedFraction = fraction(opts.seedFraction ?? 0.5, "seedFraction", true);
    this.hotThreshold = Math.max(1, Math.round(PAPER_HOT_THRESHOLD * this.scale));
    const rng = new Rng(this.seed, 1);
    // personas and users
    const centres = Float64Array.from({ length: P * d }, () => rng.normal());
    const personaZipf = new ZipfSampler(P, 1.0);
    const persona = new Int32Array(U);
    this.latent = new Float64Array(U * d);
    for (let u = 0; u < U; u++) {
      const p = (persona[u] = personaZipf.sample(rng));
      for (let j = 0; j < d; j++) this.latent[u * d + j] = centres[p * d + j]! + 0.5 * rng.normal();
    }
    // static fields: the persona's value (probability 0.8) or uniform; age from the first latent coordinate
    const nStatic = LOOKALIKE_USER_STATIC.length;
    this.staticIds = new Int32Array(U * nStatic);
    // a persona's favourite value of a field: a fixed hash of (persona, field), reduced mod the field's ids
    const favourite = (p: number, salt: number) => (Math.imul(p + 1, 2654435761) ^ Math.imul(salt + 7, 40503)) >>> 0;
    for (let u = 0; u < U; u++) {
      LOOKALIKE_USER_STATIC.forEach(([name, maxIdx], f) => {
        const card = maxIdx + 1;
        let v = rng.next() < 0.8 ? (favourite(persona[u]!, f) % card) : rng.int(card);
        if (name === "age") v = Math.min(maxIdx, Math.max(0, Math.floor(((this.latent[u * d]! + 2.5) / 5) * card)));
        this.staticIds[u * nStatic + f] = v;
      });
    }
    // dynamic lists: persona-rotated Zipf values, a uniform length, random pads after it
    this.dynamicIds = [];
    this.dynamicLength = [];
    LOOKALIKE_USER_DYNAMIC.forEach(([, maxIdx, maxLen], f) => {
      const card = maxIdx + 1;
      const zipf = new ZipfSampler(card, 1.05);
      const ids = new Int32Array(U * maxLen);
      const len = new Int32Array(U);
      for (let u = 0; u < U; u++) {
        const n = (len[u] = rng.int(maxLen + 1));
        const shift = favourite(persona[u]!, 100 + f) % card;
        for (let j = 0; j < maxLen; j++) ids[u * maxLen + j] = j < n && rng.next() < 0.7 ? (zipf.sample(rng) + shift) % card : rng.int(card);
      }
      this.dynamicIds.push(ids);
      this.dynamicLength.push(len);
    });
    // audiences (eq. 2's a_k) and campaigns
    const unit = (v: Float64Array): Float64Array => {
      const norm = Math.hypot(...v) || 1;
      return v.map((x) => x / norm);
    };
    const audiences = Array.from({ length: A }, () => unit(Float64Array.from({ length: d }, () => rng.normal())));
    const rank = rng.shuffle(Int32Array.from({ length: nCampaigns }, (_, i) => i + 1));
    this.campaignVec = new Float64Array(nCampaigns * d);
    this.campaignBias = new Float64Array(nCampaigns);
    this.adIds = new Int32Array(nCampaigns * LOOKALIKE_AD.length);
    const campaigns: LookalikeWorld["campaigns"][number][] = [];
    for (let c = 0; c < nCampaigns; c++) {
      const g = Array.from({ length: A }, () => gamma(rng, 0.3)); // eq. (1)
      const gs = g.reduce((a, x) => a + x, 0) || 1;
      const pi = g.map((x) => x / gs);
      const mix = new Float64Array(d);
      for (let k = 0; k < A; k++) for (let j = 0; j < d; j++) mix[j]! += pi[k]! * audiences[k]![j]!;
      for (let j = 0; j < d; j++) mix[j]! += (0.3 / Math.sqrt(d)) * rng.normal();
      this.campaignVec.set(unit(mix), c * d); // eq. (2)
      const baseRate = 0.15 + 0.25 * rng.next();
      this.campaignBias[c] = Math.log(baseRate / (1 - baseRate));
      const dominant = pi.indexOf(Math.max(...pi));
      const ad = [rng.int(79), c % 138, rng.int(15), (dominant * 5 + rng.int(3)) % 40, (dominant * 3 + rng.int(4)) % 33, dominant % 4];
      this.adIds.set(ad, c * LOOKALIKE_AD.length);
      const candidates = Math.max(MIN_CAMPAIGN, Math.round((LARGEST_CAMPAIGN * this.scale) / rank[c]!)); // eq. (3)
      campaigns.push({ aid: c + 1, group: candidates >= this.hotThreshold ? "hot" : "cold", candidates, audienceWeights: pi.map((x) => Math.round(x * 1e4) / 1e4), dominantAudience: dominant, baseRate: Math.round(baseRate * 1e4) / 1e4 });
    }
    this.campaigns = campaigns;
    // held out: the same fraction of hot and of cold campaigns, seeded
    const heldOut = new Set<number>();
    for (const group of ["hot", "cold"] as const) {
      const members = Int32Array.from(campaigns.filter((x) => x.group === group).map((x) => x.aid));
      rng.shuffle(members);
      const k = Math.max(heldOutFraction > 0 && members.length >= 2 ? 1 : 0, Math.round(members.length * heldOutFraction));
      for (let i = 0; i < k; i++) heldOut.add(members[i]!);
    }
    this.heldOut = heldOut;
  }

  /** The users of campaign `aid` and their true p (eq. 4) and labels, from the campaign's own stream. */
  drawCampaign(aid: number): { users: Int32Array; trueP: Float64Array; labels: Uint8Array } {
    const c = aid - 1;
    const info = this.campaigns[c]!;
    const rng = new Rng(this.seed, 100 + c);
    const n = info.candidates;
    const users = new Int32Array(n);
    if (n > this.users) for (let i = 0; i < n; i++) users[i] = rng.int(this.users);
    else {
      const taken = new Set<number>();
      for (let i = 0; i < n; i++) {
        let u = rng.int(this.users);
        while (taken.has(u)) u = rng.int(this.users);
        taken.add(u);
        users[i] = u;
      }
    }
    const d = this.factors;
    const trueP = new Float64Array(n);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += this.latent[users[i]! * d + j]! * this.campaignVec[c * d + j]!;
      trueP[i] = sigmoid(this.campaignBias[c]! + 2 * dot);
      labels[i] = rng.next() < trueP[i]! ? 1 : 0;
    }
    return { users, trueP, labels };
  }

  /** A user's true p averaged over every campaign (eq. 4 without knowing c). */
  campaignBlindP(user: number): number {
    const d = this.factors;
    let sum = 0;
    for (let c = 0; c < this.campaigns.length; c++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += this.latent[user * d + j]! * this.campaignVec[c * d + j]!;
      sum += sigmoid(this.campaignBias[c]! + 2 * dot);
    }
    return sum / this.campaigns.length;
  }

  /** One row as a JSON line, keys in the real data's order (then `true_p`). */
  formatRow(aid: number, user: number, label: number, trueP: number): string {
    const o: Record<string, number | number[]> = { label, aid };
    const nStatic = LOOKALIKE_USER_STATIC.length;
    LOOKALIKE_USER_STATIC.forEach(([name], f) => (o[name] = this.staticIds[user * nStatic + f]!));
    LOOKALIKE_USER_DYNAMIC.forEach(([name, , maxLen], f) => (o[name] = Array.from(this.dynamicIds[f]!.subarray(user * maxLen, (user + 1) * maxLen))));
    LOOKALIKE_USER_DYNAMIC.forEach(([name], f) => (o[`${name}_length`] = this.dynamicLength[f]![user]!));
    const na = LOOKALIKE_AD.length;
    LOOKALIKE_AD.forEach(([name], f) => (o[name] = this.adIds[(aid - 1) * na + f]!));
    o.true_p = Math.round(trueP * 1e6) / 1e6;
    return JSON.stringify(o);
  }
}

/** The files of a look-alike world, relative to its directory (PaddleRec's train/ and infer_hot|infer_cold/ as one folder each). */
export const LOOKALIKE_FILES = {
  train: "train_stage1.jsonl",
  hotSeeds: join("hot", "test_stage1.jsonl"),
  hotCandidates: join("hot", "test_stage2.jsonl"),
  coldSeeds: join("cold", "test_stage1.jsonl"),
  coldCandidates: join("cold", "test_stage2.jsonl"),
  campaigns: "campaigns.json",
} as const;

async function writeLine(out: WriteStream, s: string): Promise<void> {
  if (!out.write(s)) await once(out, "drain");
}

/**
 * Write a look-alike world into directory `dir` (created; refused when it already holds these files,
 * so nothing is overwritten): the five JSONL files of LOOKALIKE_FILES and campaigns.json (the
 * summary with every campaign's split). Each file is written to a temporary sibling and committed
 * (fsync, rename) when complete (src/util/atomic.ts).
 */
export async function writeLookalikeSynth(dir: string, opts: LookalikeSynthOptions & { onProgress?: (rows: number, total: number) => void } = {}): Promise<LookalikeSynthSummary> {
  const world = new LookalikeWorld(opts);
  for (const f of Object.values(LOOKALIKE_FILES)) {
    const exists = await stat(join(dir, f)).then(() => true, () => false);
    if (exists) throw new MtlError("E_USAGE", `${join(dir, f)} already exists`, { where: { file: join(dir, f) }, hint: "write the world into a new directory (synth never overwrites data)" });
  }
  try {
    await mkdir(join(dir, "hot"), { recursive: true });
    await mkdir(join(dir, "cold"), { recursive: true });
  } catch (err) {
    throw new MtlError("E_IO", `cannot create the output directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file: dir }, cause: err });
  }
  const keys = ["train", "hotSeeds", "hotCandidates", "coldSeeds", "coldCandidates"] as const;
  const streams = new Map<(typeof keys)[number], WriteStream>();
  const lines: Record<string, number> = {};
  const total = world.campaigns.reduce((s, c) => s + c.candidates, 0);
  const scored = { hot: { p: [] as number[], blind: [] as number[], y: [] as number[] }, cold: { p: [] as number[], blind: [] as number[], y: [] as number[] } };
  const infos: CampaignInfo[] = [];
  let rows = 0, positives = 0;
  try {
    for (const k of keys) {
      const s = createWriteStream(temporaryPath(join(dir, LOOKALIKE_FILES[k]), "partial"), { highWaterMark: 1 << 20 });
      streams.set(k, s);
      await once(s, "open");
      lines[LOOKALIKE_FILES[k]] = 0;
    }
    for (const c of world.campaigns) {
      const { users, trueP, labels } = world.drawCampaign(c.aid);
      const test = world.heldOut.has(c.aid);
      const n = users.length;
      const seedRows = test ? Math.min(n - 1, Math.max(1, Math.round(n * world.seedFraction))) : n;
      let chunk: string[] = [];
      let target: (typeof keys)[number] = test ? (c.group === "hot" ? "hotSeeds" : "coldSeeds") : "train";
      let pos = 0;
      for (let i = 0; i < n; i++) {
        if (i === seedRows) {
          await writeLine(streams.get(target)!, chunk.length ? chunk.join("\n") + "\n" : "");
          chunk = [];
          target = c.group === "hot" ? "hotCandidates" : "coldCandidates";
        }
        chunk.push(world.formatRow(c.aid, users[i]!, labels[i]!, trueP[i]!));
        lines[LOOKALIKE_FILES[target]]!++;
        pos += labels[i]!;
        if (test && i >= seedRows) {
          scored[c.group].p.push(trueP[i]!);
          scored[c.group].blind.push(world.campaignBlindP(users[i]!));
          scored[c.group].y.push(labels[i]!);
        }
        if (chunk.length === 4096) {
          await writeLine(streams.get(target)!, chunk.join("\n") + "\n");
          chunk = [];
        }
      }
      if (chunk.length) await writeLine(streams.get(target)!, chunk.join("\n") + "\n");
      rows += n;
      positives += pos;
      infos.push({ ...c, role: test ? "test" : "train", positives: pos, stage1Rows: seedRows, stage2Rows: n - seedRows });
      opts.onProgress?.(rows, total);
    }
    for (const s of streams.values()) s.end();
    await Promise.all([...streams.values()].map((s) => once(s, "finish")));
    for (const k of keys) commitFile(temporaryPath(join(dir, LOOKALIKE_FILES[k]), "partial"), join(dir, LOOKALIKE_FILES[k]));
  } catch (err) {
    for (const s of streams.values()) s.destroy();
    await Promise.all(keys.map((k) => rm(temporaryPath(join(dir, LOOKALIKE_FILES[k]), "partial"), { force: true })));
    throw err;
  }
  const oracle = (g: "hot" | "cold", by: "p" | "blind") => (scored[g].y.length ? auc(Float64Array.from(scored[g][by]), Uint8Array.from(scored[g].y)) : NaN);
  const summary: LookalikeSynthSummary = {
    seed: world.seed, scale: world.scale, hotThreshold: world.hotThreshold, paperHotThreshold: PAPER_HOT_THRESHOLD,
    rows, positives, files: lines,
    oracleAuc: { hot: oracle("hot", "p"), cold: oracle("cold", "p") },
    campaignBlindAuc: { hot: oracle("hot", "blind"), cold: oracle("cold", "blind") },
    campaigns: infos,
  };
  writeJsonAtomic(join(dir, LOOKALIKE_FILES.campaigns), summary, "campaign summary");
  return summary;
}
