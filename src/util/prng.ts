/**
 * mtl's one seeded pseudo-random generator: xoshiro128** (Blackman & Vigna, 2018) seeded through
 * splitmix32, on 32-bit integer arithmetic (Math.imul), so a seed gives the same stream on every
 * platform. It draws the initial weights (a stream per tensor name), the dropout masks (its four
 * state words are kept in the training state, so a resumed run draws the same masks), the
 * synthetic data and the batch order. Not cryptographic. Pure TypeScript.
 */

/** The four uint32 state words of an Rng (what a checkpoint stores). */
export type RngWords = [number, number, number, number];

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | null = null;

  constructor(seed: number, stream = 0) {
    // splitmix32 expands (seed, stream) into the 128-bit state; never all zero.
    let s = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(stream | 0, 0x85ebca6b) ^ (Math.floor(seed / 2 ** 32) | 0)) >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /**
   * The generator's whole position, to store in a checkpoint: its four state words. Taken between
   * the two normals of a Box–Muller pair it would lose the cached one, so that is refused.
   */
  words(): RngWords {
    if (this.spareNormal !== null) throw new Error("Rng.words(): a normal of the last pair is still cached; take the state after an even number of normal() draws");
    return [this.a, this.b, this.c, this.d];
  }

  /** A generator at the position `words()` returned. */
  static fromWords(words: RngWords): Rng {
    const r = new Rng(0);
    r.a = words[0] >>> 0;
    r.b = words[1] >>> 0;
    r.c = words[2] >>> 0;
    r.d = words[3] >>> 0;
    if ((r.a | r.b | r.c | r.d) === 0) r.a = 1;
    return r;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller, pairs cached). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T, n = a.length): T {
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
