import type { Rng } from "../util/prng.js";

/**
 * Zipf-like sampling over ranks 0..n-1 with P(k) ∝ 1 / (k + 1)^s, by binary search in a
 * precomputed CDF (O(log n) per draw).
 */
export class ZipfSampler {
  private readonly cdf: Float64Array;
  constructor(readonly n: number, readonly s: number) {
    this.cdf = new Float64Array(n);
    let acc = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = acc += 1 / Math.pow(k + 1, s);
    for (let k = 0; k < n; k++) this.cdf[k]! /= acc;
  }
  sample(rng: Rng): number {
    const u = rng.next();
    let lo = 0, hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
