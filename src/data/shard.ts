/**
 * Binary shards: encoded rows in a compact columnar file that an epoch reads at memory speed.
 *
 * Layout (little-endian), format version 1:
 *   header, 64 bytes:
 *      0  8 bytes  magic "MTLSHARD"
 *      8  u32      format version (1)
 *     12  u32      flags (bit 0: rows carry ground truth; bit 1: rows carry a task id)
 *     16  16 bytes schema hash (ASCII hex, see schemaHash)
 *     32  f64      rows
 *     40  f64      clicks
 *     48  f64      conversions
 *     56  f64      byte offset of the footer
 *   row groups, back to back; each holds its rows' columns one after another, every column
 *   starting on an 8-byte boundary, in this order:
 *      per table: ids int32 [rows, width]; per weighted table: weights float32 [rows, width];
 *      dense float32 [rows, denseWidth]; click uint8 [rows]; conversion uint8 [rows];
 *      sample key uint32 [rows]; with truth: true CTR float32, true CVR float32, potential conversion uint8;
 *      with a task id (the schema names a `task` column): task int32 [rows].
 *   footer: UTF-8 JSON {schema, rowGroups: [{offset, rows}], source, rejected}, to the end of the file.
 * A shard is written to a temporary sibling and committed (fsync, rename, fsync of the directory) when complete, so a crash never leaves a
 * half-written file under the final name.
 */
import { open, rm, stat, type FileHandle } from "node:fs/promises";
import { commitFile, ioError, temporaryPath } from "../util/atomic.js";
import { MtlError } from "../errors.js";
import { layoutOf, userKeys, type Batch, type Layout } from "../features/batch.js";
import { schemaHash, toSchemaJson, validateSchema, type FeatureSchema, type SchemaInput } from "../features/schema.js";

export const SHARD_MAGIC = "MTLSHARD";
export const SHARD_VERSION = 1;
const HEADER_BYTES = 64;
const FLAG_TRUTH = 1;
const FLAG_TASK = 2;

const align8 = (n: number) => (n + 7) & ~7;

interface ColumnPlan {
  readonly name: string;
  readonly bytesPerRow: number;
  readonly kind: "i32" | "f32" | "u8" | "u32";
}

function columnsOf(layout: Layout, truth: boolean): ColumnPlan[] {
  const task = layout.schema.task !== null;
  const cols: ColumnPlan[] = [];
  layout.tables.forEach((t) => cols.push({ name: `ids:${t.name}`, bytesPerRow: 4 * t.width, kind: "i32" }));
  layout.tables.forEach((t) => t.weighted && cols.push({ name: `weights:${t.name}`, bytesPerRow: 4 * t.width, kind: "f32" }));
  cols.push({ name: "dense", bytesPerRow: 4 * layout.denseWidth, kind: "f32" });
  cols.push({ name: "click", bytesPerRow: 1, kind: "u8" }, { name: "conversion", bytesPerRow: 1, kind: "u8" }, { name: "sample_key", bytesPerRow: 4, kind: "u32" });
  if (truth) cols.push({ name: "true_ctr", bytesPerRow: 4, kind: "f32" }, { name: "true_cvr", bytesPerRow: 4, kind: "f32" }, { name: "conversion_potential", bytesPerRow: 1, kind: "u8" });
  if (task) cols.push({ name: "task", bytesPerRow: 4, kind: "i32" });
  return cols;
}

function groupBytes(cols: readonly ColumnPlan[], rows: number): number {
  let n = 0;
  for (const c of cols) n += align8(c.bytesPerRow * rows);
  return n;
}

export interface ShardSummary {
  readonly rows: number;
  readonly clicks: number;
  readonly conversions: number;
  readonly truth: boolean;
  readonly schemaHash: string;
  readonly rowGroups: number;
  readonly bytes: number;
}

/** Writes batches as row groups. create() -> write()* -> close(). */
export class ShardWriter {
  private rows = 0;
  private clicks = 0;
  private conversions = 0;
  private offset = HEADER_BYTES;
  private readonly groups: { offset: number; rows: number }[] = [];
  private readonly cols: ColumnPlan[];

  private constructor(
    readonly file: string,
    private readonly partial: string,
    private readonly fh: FileHandle,
    readonly layout: Layout,
    readonly truth: boolean,
  ) {
    this.cols = columnsOf(layout, truth);
  }

  static async create(file: string, schema: FeatureSchema, opts: { truth: boolean }): Promise<ShardWriter> {
    if (schema.sampleWeight !== null) {
      throw new MtlError("E_SCHEMA", "shards do not store sample weights yet", { where: { field: "sample_weight" }, hint: "train on the CSV/JSONL file itself (a directory of them works too)" });
    }
    const partial = temporaryPath(file, "partial");
    let fh: FileHandle;
    try {
      fh = await open(partial, "w");
    } catch (err) {
      throw new MtlError("E_IO", `cannot write the shard: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file }, hint: "check that the directory exists and is writable", cause: err });
    }
    try {
      await fh.write(Buffer.alloc(HEADER_BYTES), 0, HEADER_BYTES, 0);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(partial, { force: true });
      throw ioError(err, file, "shard");
    }
    return new ShardWriter(file, partial, fh, layoutOf(schema), opts.truth);
  }

  async write(batch: Batch): Promise<void> {
    const n = batch.size;
    if (n === 0) return;
    if (this.truth && !batch.truth) throw new MtlError("E_SHARD", "this shard stores ground truth but the batch has none", { where: { file: this.file } });
    const buf = Buffer.alloc(groupBytes(this.cols, n));
    let at = 0;
    const put = (src: ArrayBufferView, bytes: number) => {
      buf.set(new Uint8Array(src.buffer, src.byteOffset, bytes), at);
      at += align8(bytes);
    };
    const { tables, denseWidth } = this.layout;
    tables.forEach((t, i) => put(batch.ids[i]!, 4 * t.width * n));
    tables.forEach((t, i) => t.weighted && put(batch.weights[i]!, 4 * t.width * n));
    put(batch.dense, 4 * denseWidth * n);
    put(batch.click, n);
    put(batch.conversion, n);
    put(batch.sampleKey, 4 * n);
    if (this.truth) {
      put(batch.truth!.ctr, 4 * n);
      put(batch.truth!.cvr, 4 * n);
      put(batch.truth!.conversion, n);
    }
    if (this.layout.schema.task !== null) {
      if (!batch.task) throw new MtlError("E_SHARD", "this shard stores a task id per row but the batch has none", { where: { file: this.file } });
      put(batch.task, 4 * n);
    }
    for (let r = 0; r < n; r++) {
      this.clicks += batch.click[r]!;
      this.conversions += batch.conversion[r]!;
    }
    await this.fh.write(buf, 0, buf.length, this.offset).catch((err: unknown) => {
      throw ioError(err, this.file, "shard");
    });
    this.groups.push({ offset: this.offset, rows: n });
    this.offset += buf.length;
    this.rows += n;
  }

  /** Write the footer and header, and move the file into place. `extra` lands in the footer (source file, rejected counts). */
  async close(extra: Record<string, unknown> = {}): Promise<ShardSummary> {
    const schema = this.layout.schema;
    const hash = schemaHash(schema);
    const footer = Buffer.from(JSON.stringify({ ...extra, schema: toSchemaJson(schema), rowGroups: this.groups }), "utf8");
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(SHARD_MAGIC, 0, "latin1");
    header.writeUInt32LE(SHARD_VERSION, 8);
    header.writeUInt32LE((this.truth ? FLAG_TRUTH : 0) | (schema.task !== null ? FLAG_TASK : 0), 12);
    header.write(hash, 16, "latin1");
    header.writeDoubleLE(this.rows, 32);
    header.writeDoubleLE(this.clicks, 40);
    header.writeDoubleLE(this.conversions, 48);
    header.writeDoubleLE(this.offset, 56);
    try {
      await this.fh.write(footer, 0, footer.length, this.offset);
      await this.fh.write(header, 0, HEADER_BYTES, 0);
      await this.fh.close();
    } catch (err) {
      throw ioError(err, this.file, "shard");
    }
    commitFile(this.partial, this.file);
    return { rows: this.rows, clicks: this.clicks, conversions: this.conversions, truth: this.truth, schemaHash: hash, rowGroups: this.groups.length, bytes: this.offset + footer.length };
  }

  /** Give up: close and delete the partial file. */
  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.partial, { force: true });
  }
}

/** An open shard: header facts, its schema and layout, and row groups read on demand. */
export class ShardReader implements ShardSummary {
  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    readonly layout: Layout,
    readonly rows: number,
    readonly clicks: number,
    readonly conversions: number,
    readonly truth: boolean,
    readonly schemaHash: string,
    readonly groups: readonly { offset: number; rows: number }[],
    readonly bytes: number,
    /** The footer's other entries (source file, rejected rows...). */
    readonly info: Record<string, unknown>,
  ) {}

  get rowGroups(): number {
    return this.groups.length;
  }

  get schema(): FeatureSchema {
    return this.layout.schema;
  }

  /**
   * Open a shard. With `expectSchema`, the shard's schema hash must match it (a shard written for
   * another schema would feed the wrong ids to a model).
   */
  static async open(file: string, opts: { expectSchema?: FeatureSchema } = {}): Promise<ShardReader> {
    const bad = (msg: string, hint?: string) => new MtlError("E_SHARD", msg, { where: { file }, ...(hint ? { hint } : {}) });
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      throw new MtlError("E_IO", `cannot read the shard: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file }, cause: err });
    }
    const fh = await open(file, "r");
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      const { bytesRead } = await fh.read(header, 0, HEADER_BYTES, 0);
      if (bytesRead < HEADER_BYTES || header.toString("latin1", 0, 8) !== SHARD_MAGIC)
        throw bad("not an mtl shard (bad magic bytes in the header)", "make one with mtl data prepare");
      const version = header.readUInt32LE(8);
      if (version !== SHARD_VERSION) throw bad(`shard format version ${version}; this mtl reads version ${SHARD_VERSION}`, "re-run mtl data prepare with this mtl");
      const flags = header.readUInt32LE(12);
      const hash = header.toString("latin1", 16, 32);
      const rows = header.readDoubleLE(32);
      const clicks = header.readDoubleLE(40);
      const conversions = header.readDoubleLE(48);
      const footerAt = header.readDoubleLE(56);
      if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(footerAt) || footerAt < HEADER_BYTES || footerAt > size)
        throw bad(`corrupt header (rows ${rows}, footer at ${footerAt} in a ${size}-byte file)`, "the file is truncated or damaged; re-run mtl data prepare");
      const footerBuf = Buffer.alloc(size - footerAt);
      await fh.read(footerBuf, 0, footerBuf.length, footerAt);
      let footer: { schema: SchemaInput; rowGroups: { offset: number; rows: number }[] } & Record<string, unknown>;
      try {
        footer = JSON.parse(footerBuf.toString("utf8"));
      } catch {
        throw bad("corrupt footer (not JSON)", "the file is truncated or damaged; re-run mtl data prepare");
      }
      const schema = validateSchema(footer.schema, file);
      if (schemaHash(schema) !== hash) throw bad(`the header's schema hash ${hash} does not match the schema stored in the shard (${schemaHash(schema)})`, "the file is damaged; re-run mtl data prepare");
      if (opts.expectSchema) {
        const want = schemaHash(opts.expectSchema);
        if (want !== hash)
          throw bad(`schema hash mismatch: the shard was written for schema ${hash}, the given schema is ${want}`, "prepare the data again with this schema, or use the schema the shard was made with");
      }
      const layout = layoutOf(schema);
      const truth = (flags & FLAG_TRUTH) !== 0;
      if (((flags & FLAG_TASK) !== 0) !== (schema.task !== null)) throw bad("the header's task flag does not match the stored schema", "the file is damaged; re-run mtl data prepare");
      const cols = columnsOf(layout, truth);
      let total = 0;
      let expectAt = HEADER_BYTES;
      for (const g of footer.rowGroups) {
        if (g.offset !== expectAt || !(g.rows > 0)) throw bad("corrupt row-group index in the footer", "re-run mtl data prepare");
        expectAt += groupBytes(cols, g.rows);
        total += g.rows;
      }
      if (total !== rows || expectAt !== footerAt) throw bad(`the header says ${rows} rows but the row groups hold ${total}`, "the file is damaged; re-run mtl data prepare");
      const { schema: _s, rowGroups, ...info } = footer;
      return new ShardReader(file, fh, layout, rows, clicks, conversions, truth, hash, rowGroups, size, info);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Read row group `i` as a batch whose arrays are views on one freshly read buffer. */
  async readGroup(i: number): Promise<Batch> {
    const g = this.groups[i];
    if (!g) throw new MtlError("E_SHARD", `no row group ${i} (the shard has ${this.groups.length})`, { where: { file: this.file } });
    const n = g.rows;
    const cols = columnsOf(this.layout, this.truth);
    const bytes = groupBytes(cols, n);
    const ab = new ArrayBuffer(bytes);
    const { bytesRead } = await this.fh.read(new Uint8Array(ab), 0, bytes, g.offset);
    if (bytesRead !== bytes) throw new MtlError("E_SHARD", `row group ${i} is truncated`, { where: { file: this.file }, hint: "re-run mtl data prepare" });
    let at = 0;
    const take = <T>(make: (buffer: ArrayBuffer, offset: number, length: number) => T, bytesPerElement: number, elements: number): T => {
      const v = make(ab, at, elements);
      at += align8(bytesPerElement * elements);
      return v;
    };
    const i32 = (len: number) => take((b, o, l) => new Int32Array(b, o, l), 4, len);
    const f32 = (len: number) => take((b, o, l) => new Float32Array(b, o, l), 4, len);
    const u8 = (len: number) => take((b, o, l) => new Uint8Array(b, o, l), 1, len);
    const u32 = (len: number) => take((b, o, l) => new Uint32Array(b, o, l), 4, len);
    const { tables, denseWidth } = this.layout;
    const ids = tables.map((t) => i32(t.width * n));
    const weights = tables.map((t) => (t.weighted ? f32(t.width * n) : null));
    const dense = f32(denseWidth * n);
    const click = u8(n);
    const conversion = u8(n);
    const sampleKey = u32(n);
    const truth = this.truth ? { ctr: f32(n), cvr: f32(n), conversion: u8(n) } : null;
    const task = this.layout.schema.task !== null ? i32(n) : null;
    const user = userKeys(this.layout, ids, n);
    return { size: n, ids, weights, dense, click, conversion, truth, userId: user, sampleKey, task };
  }

  /** Every row group in file order. */
  async *batches(): AsyncGenerator<Batch> {
    for (let i = 0; i < this.groups.length; i++) yield await this.readGroup(i);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Whether a file starts with the shard magic bytes. */
export async function isShardFile(file: string): Promise<boolean> {
  const fh = await open(file, "r").catch(() => null);
  if (!fh) return false;
  try {
    // A pipe (/dev/stdin) cannot be read by position (ESPIPE): it is no shard, and is left unread.
    if (!(await fh.stat()).isFile()) return false;
    const b = Buffer.alloc(8);
    // a directory opens but cannot be read (EISDIR): not a shard; data/files.ts lists its files
    const { bytesRead } = await fh.read(b, 0, 8, 0).catch(() => ({ bytesRead: 0 }));
    return bytesRead === 8 && b.toString("latin1") === SHARD_MAGIC;
  } finally {
    await fh.close();
  }
}
