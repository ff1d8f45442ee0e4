/**
 * The host side of training: every tensor a run needs to continue, as typed arrays, plus the step
 * count and the PRNG state (dropout masks). Saved as one file, written atomically (temp file, fsync,
 * rename, fsync of the directory): a crash leaves the old checkpoint or the new one, never half of one.
 *
 * File format (little-endian), readable without mtl:
 *   bytes 0..7   magic "MTLSTATE"
 *   bytes 8..11  uint32 format version (3)
 *   bytes 12..15 uint32 header length H
 *   bytes 16..19 uint32 CRC-32 of the H header bytes (version 3; versions 1 and 2 start the header here)
 *   bytes 20..   H bytes of UTF-8 JSON: { step, rng, info, tensors: [{ name, dtype, dims, offset, bytes, crc32 }] }
 *   then the tensors' raw data; each `offset` is from the start of the file and 64-byte aligned.
 *
 * Version 3 checksums the header too: an edited step, epoch or batch position (which a resume
 * trusts) is refused like a flipped weight. Version 2 files still load and resume (same PRNG).
 *
 * Version 2: `rng` is the four uint32 words of the xoshiro128** dropout PRNG (src/util/prng.ts).
 * Version 1 kept one word of a mulberry32 PRNG, which mtl no longer draws from: a version 1 file
 * still loads (its tensors and step are the same digits; eval and export read it), but its dropout
 * stream cannot be continued, so `formatVersion` tells a resume to refuse it.
 */
import { readFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { MtlError } from "../errors.js";
import { type DType, BYTES_PER_ELEMENT, arrayFromBytes, bytesOfArray, dtypeOfArray } from "../graph/dtype.js";
import { ioError, writeFileAtomic } from "../util/atomic.js";
import { fnv1a32 } from "../util/hash.js";
import { Rng, type RngWords } from "../util/prng.js";
import { optimizerSlots, type OptimizerConfig } from "../optim/index.js";
import { tableMemory } from "../optim/simd.js";
import type { FloatDType, Init, ParamSpec, StateSpec, TableSpec } from "./model.js";
import { slotName } from "./program.js";

export type FloatArray = Float32Array | Float64Array;

export interface StateTensor {
  dims: number[];
  data: FloatArray;
}

const MAGIC = "MTLSTATE";
const VERSION = 3;
/** The state file format this mtl writes. */
export const STATE_FORMAT_VERSION = VERSION;
/** The oldest state format a run resumes from: version 1's dropout PRNG is gone. */
export const RESUMABLE_STATE_FORMAT = 2;
const PREFIX_BYTES = 20;
/** The stream of Rng(seed, stream) that a fresh state's dropout masks start from. */
const DROPOUT_STREAM = 0x64726f70;
const ALIGN = 64;

export class TrainingState {
  /** Updates applied so far. The next step is number step + 1. */
  step = 0;
  /** The dropout PRNG's state words (Rng.words()); advanced by the trainer. */
  rng: RngWords;
  /** The file format this state was loaded from (VERSION for a state made here): resume needs the current one. */
  formatVersion = VERSION;
  /** Free-form JSON the run wants back on resume (model, config, optimizer, data position...). */
  info: Record<string, unknown> = {};
  /**
   * Named tensors: dense params `p` and their slots `p__s`; tables `t` as [rows, dim * (1 + slots)],
   * each row its weights followed by its optimizer slots (the training step's packed layout);
   * states `x` (BatchNorm running statistics).
   */
  readonly tensors = new Map<string, StateTensor>();

  constructor(seed = 0) {
    this.rng = new Rng(seed, DROPOUT_STREAM).words();
  }

  get(name: string): FloatArray | undefined {
    return this.tensors.get(name)?.data;
  }

  require(name: string): StateTensor {
    const t = this.tensors.get(name);
    if (!t) throw new MtlError("E_STATE", `the training state has no tensor '${name}'`, { where: { field: name } });
    return t;
  }

  set(name: string, dims: number[], data: FloatArray): void {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new MtlError("E_STATE", `tensor '${name}': dims [${dims}] need ${n} values, got ${data.length}`);
    this.tensors.set(name, { dims, data });
  }

  /** A deep copy (for tests and for keeping a best-so-far snapshot). */
  clone(): TrainingState {
    const s = new TrainingState();
    s.rng = [...this.rng];
    s.formatVersion = this.formatVersion;
    s.step = this.step;
    s.info = structuredClone(this.info);
    for (const [k, t] of this.tensors) s.tensors.set(k, { dims: [...t.dims], data: t.data.slice() });
    return s;
  }

  /** Writes the checkpoint atomically. */
  save(path: string): void {
    const names = [...this.tensors.keys()].sort();
    const entries: { name: string; dtype: DType; dims: number[]; offset: number; bytes: number; crc32: number }[] = [];
    const draft = (offsetBase: number) => {
      entries.length = 0;
      let offset = offsetBase;
      for (const name of names) {
        const t = this.tensors.get(name)!;
        offset = align(offset);
        const bytes = t.data.byteLength;
        entries.push({ name, dtype: dtypeOfArray(t.data), dims: t.dims, offset, bytes, crc32: crc32(bytesOfArray(t.data)) });
        offset += bytes;
      }
      return JSON.stringify({ step: this.step, rng: this.rng, info: this.info, tensors: entries });
    };
    // The header's own length moves the offsets; iterate until it is stable (twice at most in practice).
    let header = draft(ALIGN);
    for (let i = 0; i < 4; i++) {
      const dataStart = align(PREFIX_BYTES + Buffer.byteLength(header));
      const next = draft(dataStart);
      if (next === header) break;
      header = next;
    }
    const headerBytes = Buffer.from(header, "utf8");
    const prefix = Buffer.alloc(PREFIX_BYTES);
    prefix.write(MAGIC, 0, "latin1");
    prefix.writeUInt32LE(VERSION, 8);
    prefix.writeUInt32LE(headerBytes.length, 12);
    prefix.writeUInt32LE(crc32(headerBytes), 16);

    const tensors = this.tensors;
    function* pieces(): Generator<Uint8Array> {
      yield prefix;
      yield headerBytes;
      let pos = prefix.byteLength + headerBytes.byteLength;
      for (const e of entries) {
        if (pos < e.offset) yield new Uint8Array(e.offset - pos);
        yield bytesOfArray(tensors.get(e.name)!.data);
        pos = e.offset + e.bytes;
      }
    }
    writeFileAtomic(path, pieces(), "checkpoint");
  }

  static load(path: string): TrainingState {
    let buf: Buffer;
    try {
      buf = readFileSync(path);
    } catch (err) {
      throw ioError(err, path, "checkpoint", "read");
    }
    const bad = (msg: string): never => {
      throw new MtlError("E_CHECKPOINT", msg, { where: { file: path }, hint: "the file is not an mtl checkpoint or it is damaged; use an earlier one" });
    };
    if (buf.length < 16 || buf.toString("latin1", 0, 8) !== MAGIC) bad("not an mtl state file (bad magic)");
    const version = buf.readUInt32LE(8);
    if (version < 1 || version > VERSION) bad(`state format version ${version}; this mtl reads versions 1 to ${VERSION}`);
    const hlen = buf.readUInt32LE(12);
    const start = version >= 3 ? PREFIX_BYTES : 16;
    if (start + hlen > buf.length) bad("truncated header");
    const headerBytes = buf.subarray(start, start + hlen);
    if (version >= 3 && crc32(headerBytes) !== buf.readUInt32LE(16)) bad("the header (step, position, tensor table) fails its checksum");
    let header: unknown;
    try {
      header = JSON.parse(headerBytes.toString("utf8"));
    } catch {
      return bad("the header is not valid JSON");
    }
    const h = checkHeader(header, version, bad);
    const s = new TrainingState();
    // Version 1's one mulberry32 word seeds a stream: deterministic, but not the old masks (see formatVersion).
    s.rng = version === 1 ? new Rng(h.rng as number, DROPOUT_STREAM).words() : [...(h.rng as RngWords)];
    s.formatVersion = version;
    s.step = h.step;
    s.info = h.info;
    for (const e of h.tensors) {
      if (e.dtype !== "float32" && e.dtype !== "float64") bad(`tensor '${e.name}' has dtype ${e.dtype}`);
      if (e.offset + e.bytes > buf.length) bad(`tensor '${e.name}' runs past the end of the file (truncated?)`);
      const bytes = buf.subarray(e.offset, e.offset + e.bytes);
      if (crc32(bytes) !== e.crc32) bad(`tensor '${e.name}' fails its checksum`);
      const n = e.dims.reduce((a, b) => a * b, 1);
      if (n * BYTES_PER_ELEMENT[e.dtype] !== e.bytes) bad(`tensor '${e.name}' has ${e.bytes} bytes for dims [${e.dims}]`);
      s.tensors.set(e.name, { dims: e.dims, data: arrayFromBytes(e.dtype, bytes) as FloatArray });
    }
    return s;
  }
}

interface StateHeader {
  step: number;
  rng: number | RngWords;
  info: Record<string, unknown>;
  tensors: { name: string; dtype: DType; dims: number[]; offset: number; bytes: number; crc32: number }[];
}

/** The parsed header, every field checked (a header of `{}`, `null` or `tensors: null` is a damaged file, not a crash). */
function checkHeader(v: unknown, version: number, bad: (msg: string) => never): StateHeader {
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
  const count = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  if (!isObject(v)) return bad("the header is not a JSON object");
  if (!count(v["step"])) bad("the header's step is not a non-negative integer");
  const rng = v["rng"];
  // PRNG words are stored as int32 or uint32 (Rng.fromWords takes either); crc32s as uint32.
  const word = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= -0x80000000 && x <= 0xffffffff;
  if (version === 1 ? !word(rng) : !(Array.isArray(rng) && rng.length === 4 && rng.every(word))) bad("the header's rng is not a PRNG state");
  if (v["info"] !== undefined && v["info"] !== null && !isObject(v["info"])) bad("the header's info is not an object");
  const tensors = v["tensors"];
  if (!Array.isArray(tensors)) return bad("the header has no tensor table");
  for (const [i, e] of tensors.entries()) {
    if (!isObject(e) || typeof e["name"] !== "string" || !Array.isArray(e["dims"]) || !e["dims"].every(count) || !count(e["offset"]) || !count(e["bytes"]) || !word(e["crc32"])) {
      bad(`tensor entry ${i} of the header is malformed`);
    }
  }
  return { step: v["step"] as number, rng: rng as StateHeader["rng"], info: (v["info"] as Record<string, unknown> | null) ?? {}, tensors: tensors as StateHeader["tensors"] };
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/** Fills `out` per `init`, from a PRNG seeded by (seed, name): each tensor's values do not depend on the others. */
export function initialize(out: FloatArray, init: Init, seed: number, name: string): void {
  const rng = new Rng(seed, fnv1a32(name));
  switch (init.kind) {
    case "zeros": out.fill(0); return;
    case "ones": out.fill(1); return;
    case "constant": out.fill(init.value); return;
    case "uniform": for (let i = 0; i < out.length; i++) out[i] = (rng.next() * 2 - 1) * init.limit; return;
    case "normal": for (let i = 0; i < out.length; i++) out[i] = rng.normal() * init.std; return;
    case "glorot_uniform": {
      const limit = Math.sqrt(6 / (init.fanIn + init.fanOut));
      for (let i = 0; i < out.length; i++) out[i] = (rng.next() * 2 - 1) * limit;
      return;
    }
  }
}

export interface StateLayout {
  params: ParamSpec[];
  tables: TableSpec[];
  states: StateSpec[];
}

/** A fresh state for a model's parameters, tables, states and the optimizer's slots. */
export function initialState(layout: StateLayout, optimizer: OptimizerConfig, opts: { seed?: number; dtype?: FloatDType } = {}): TrainingState {
  const seed = opts.seed ?? 0;
  const Arr = (opts.dtype ?? "float32") === "float64" ? Float64Array : Float32Array;
  const state = new TrainingState(seed);
  const slots = optimizerSlots(optimizer);
  for (const p of layout.params) {
    const data = new Arr(p.shape.reduce((a, b) => a * b, 1));
    initialize(data, p.init, seed, p.name);
    state.set(p.name, [...p.shape], data);
    for (const s of slots) state.set(slotName(p.name, s.name), [...p.shape], new Arr(data.length).fill(s.initial));
  }
  for (const t of layout.tables) {
    const weights = new Arr(t.rows * t.dim);
    initialize(weights, t.init, seed, t.name);
    if (t.paddingRow0) weights.fill(0, 0, t.dim);
    if (slots.length === 0) {
      state.set(t.name, [t.rows, t.dim], weights);
      continue;
    }
    const width = t.dim * (1 + slots.length);
    // On a SharedArrayBuffer from the start: the trainer shares it with its session's thread
    // (src/runtime/rows.ts) and would otherwise copy it there, doubling the table's peak memory.
    // For Adam in float32, on the memory of the rows' SIMD kernel (optim/simd.ts) where it can run.
    const adam = optimizer.kind === "adam" || optimizer.kind === "adamw";
    const packed = (adam && Arr === Float32Array ? tableMemory(t.rows * width, t.dim)?.data : undefined)
      ?? (Arr === Float64Array ? new Float64Array(new SharedArrayBuffer(t.rows * width * 8)) : new Float32Array(new SharedArrayBuffer(t.rows * width * 4)));
    for (let r = 0; r < t.rows; r++) {
      packed.set(weights.subarray(r * t.dim, (r + 1) * t.dim), r * width);
      slots.forEach((s, k) => {
        if (s.initial !== 0) packed.fill(s.initial, r * width + (k + 1) * t.dim, r * width + (k + 2) * t.dim);
      });
    }
    state.set(t.name, [t.rows, width], packed);
  }
  for (const x of layout.states) {
    const data = new Arr(x.shape.reduce((a, b) => a * b, 1));
    initialize(data, x.init, seed, x.name);
    state.set(x.name, [...x.shape], data);
  }
  return state;
}
