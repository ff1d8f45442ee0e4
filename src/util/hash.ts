/**
 * mtl's one string hash, for `hash_buckets` features, sample-id splits, schema fingerprints and the
 * per-tensor seeds of initial weights: 32-bit FNV-1a (Fowler–Noll–Vo, offset basis 0x811c9dc5,
 * prime 0x01000193) over the UTF-8 bytes of the string. Pure arithmetic on `Math.imul`, no Node API, so Node and the browser give the same
 * ids (src/features/hash.ts turns it into bucket ids).
 *
 * Why FNV-1a: it is one line per byte, has published test vectors ("a" -> 0xe40c292c,
 * "foobar" -> 0xbf9cf968), and feature values are short, so its weaker avalanche than murmur3 does
 * not matter for bucket spread at the table sizes mtl uses.
 */
export const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over bytes[start, end), continuing from `h` (pass FNV_OFFSET_BASIS to start). */
export function fnv1a32Bytes(bytes: Uint8Array, start = 0, end = bytes.length, h = FNV_OFFSET_BASIS): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h >>> 0;
}

/** FNV-1a over the UTF-8 encoding of `s` (encoded on the fly; lone surrogates become U+FFFD as TextEncoder does). */
export function fnv1a32(s: string, h = FNV_OFFSET_BASIS): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | (c & 63)), FNV_PRIME);
      continue;
    }
    if (c >= 0xd800 && c < 0xe000) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (cp >> 18)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 12) & 63)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 6) & 63)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | (cp & 63)), FNV_PRIME);
        continue;
      }
      c = 0xfffd;
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 63)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | (c & 63)), FNV_PRIME);
  }
  return h >>> 0;
}

/** CRC-32 (IEEE 802.3, reflected polynomial 0xedb88320), the table built once. */
let CRC_TABLE: Uint32Array | null = null;

/**
 * CRC-32 of bytes, continuing from `crc` (0 to start): the checksum zlib, PNG and gzip use, in pure
 * TypeScript so the browser verifies a model's weights as Node does (node:zlib gives the same digits).
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (CRC_TABLE === null) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  const table = CRC_TABLE;
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
