/**
 * The one error type mtl raises for things a user can fix: bad input, a bad model file, a graph
 * whose shapes do not fit. `code` is stable (tests and scripts match on it); `where` names the file
 * and line, or the field, at fault; `hint` says what to do about it.
 */
export interface ErrorLocation {
  file?: string;
  line?: number;
  field?: string;
}

export class MtlError extends Error {
  readonly code: string;
  readonly where: ErrorLocation;
  readonly hint: string | undefined;

  constructor(code: string, message: string, opts: { where?: ErrorLocation; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "MtlError";
    this.code = code;
    this.where = opts.where ?? {};
    this.hint = opts.hint;
  }

  /**
   * One line for a terminal: `file:line: field: message (hint)`, with control characters escaped
   * (messages quote bytes from data files and model metadata, which must not drive the terminal).
   */
  format(): string {
    const { file, line, field } = this.where;
    const place = [file === undefined ? undefined : line === undefined ? file : `${file}:${line}`, field]
      .filter((p) => p !== undefined)
      .join(": ");
    const hint = this.hint ? ` (${this.hint})` : "";
    return escapeControl(`${place ? place + ": " : ""}${this.message}${hint}`);
  }
}

export function isMtlError(err: unknown): err is MtlError {
  return err instanceof MtlError;
}

/**
 * `text` safe to print on one terminal line: C0 and C1 control characters (ESC, CR, LF, BEL, ...)
 * and DEL become `\xNN` / `\u{NNNN}` escapes, so a value from a data file cannot set the window
 * title, clear the screen or forge another line.
 */
export function escapeControl(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u{${n.toString(16)}}`;
  });
}
