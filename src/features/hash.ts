/**
 * Hashed features: a raw value `v` of a `hash_buckets` feature becomes the id
 * `1 + fnv1a32(utf8(v)) % buckets` (FNV-1a of src/util/hash.ts); id 0 stays the padding id.
 */
import { fnv1a32 } from "../util/hash.js";

/** The id of a raw value in a `hash_buckets` feature: 1 + fnv1a32(value) % buckets, in [1, buckets]. */
export function hashBucket(value: string, buckets: number): number {
  return 1 + (fnv1a32(value) % buckets);
}

/** The string a JSON value is hashed as: strings as they are, numbers and booleans by `String(v)`. */
export function hashKey(value: string | number | boolean): string {
  return typeof value === "string" ? value : String(value);
}
