/** A small seeded PRNG (mulberry32) so every test input is reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uniform(n: number, lo: number, hi: number, r: () => number): number[] {
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

export function ints(n: number, lo: number, hi: number, r: () => number): number[] {
  return Array.from({ length: n }, () => lo + Math.floor((hi - lo) * r()));
}
