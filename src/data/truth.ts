/**
 * The ground-truth sidecar of a synthetic Ali-CCP file: `<data>.truth.csv`, a CSV with the header
 * `sample_id,true_ctr,true_cvr,conversion_potential` and then one line per data line, in the same
 * order. A sidecar (not extra columns) keeps the data file in PaddleRec's exact format, so PaddleRec
 * itself can train on it. `true_ctr` is the probability the click was drawn from, `true_cvr` the
 * conversion probability given a click, `conversion_potential` the conversion drawn for every
 * impression (observed in `buy` only when click = 1).
 */
import { RowError } from "../features/encode.js";
import { LineSplitter, openByteSource } from "./lines.js";

export const TRUTH_HEADER = "sample_id,true_ctr,true_cvr,conversion_potential";

export interface TruthRow {
  sampleId: string;
  ctr: number;
  cvr: number;
  conversion: 0 | 1;
  /** Line in the sidecar. */
  line: number;
}

export class TruthSidecar {
  private queue: TruthRow[] = [];
  private head = 0;
  private done = false;
  private constructor(
    readonly file: string,
    private readonly chunks: AsyncGenerator<Buffer>,
    private readonly split: LineSplitter,
  ) {}

  static async open(file: string): Promise<TruthSidecar> {
    const src = await openByteSource(file);
    return new TruthSidecar(file, src.chunks(), new LineSplitter());
  }

  private bad(message: string, line: number): RowError {
    return new RowError("truth_mismatch", message, { file: this.file, line }, "regenerate the sidecar with mtl data synth");
  }

  private async fill(): Promise<void> {
    this.queue = [];
    this.head = 0;
    while (this.queue.length === 0 && !this.done) {
      const r = await this.chunks.next();
      if (r.done) {
        this.split.finish();
        this.done = true;
      } else this.split.push(r.value);
      for (const l of this.split.lines) {
        const s = Buffer.from(l.buf.buffer, l.buf.byteOffset + l.start, l.end - l.start).toString("utf8");
        if (l.line === 1) {
          if (s !== TRUTH_HEADER) throw this.bad(`expected the header '${TRUTH_HEADER}', got '${s.slice(0, 80)}'`, 1);
          continue;
        }
        const parts = s.split(",");
        const ctr = Number(parts[1]);
        const cvr = Number(parts[2]);
        if (parts.length !== 4 || !(ctr >= 0 && ctr <= 1) || !(cvr >= 0 && cvr <= 1) || (parts[3] !== "0" && parts[3] !== "1") || parts[1] === "" || parts[2] === "")
          throw this.bad(`expected sample_id,true_ctr,true_cvr,conversion_potential with probabilities and a 0/1, got '${s.slice(0, 80)}'`, l.line);
        this.queue.push({ sampleId: parts[0]!, ctr, cvr, conversion: parts[3] === "1" ? 1 : 0, line: l.line });
      }
    }
  }

  /** The truth for data line `dataLine` (errors name the data file and line when the sidecar ran out). */
  async next(dataFile: string, dataLine: number): Promise<TruthRow> {
    if (this.head >= this.queue.length) await this.fill();
    const t = this.queue[this.head++];
    if (!t) throw new RowError("truth_mismatch", `the sidecar ${this.file} ends before this line`, { file: dataFile, line: dataLine }, "regenerate the sidecar with mtl data synth");
    return t;
  }

  /** Check the sidecar has no rows beyond the data's `dataLines`. */
  async end(dataFile: string, dataLines: number): Promise<void> {
    if (this.head >= this.queue.length) await this.fill();
    const t = this.queue[this.head];
    if (t) throw new RowError("truth_mismatch", `the sidecar ${this.file} has more rows (line ${t.line}) than the data's ${dataLines} lines`, { file: dataFile }, "regenerate the sidecar with mtl data synth");
  }
}
