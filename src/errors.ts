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

  /** One line for a terminal: `file:line: field: message (hint)`. */
  format(): string {
    const { file, line, field } = this.where;
    const place = [file === undefined ? undefined : line === undefined ? file : `${file}:${line}`, field]
      .filter((p) => p !== undefined)
      .join(": ");
    const hint = this.hint ? ` (${this.hint})` : "";
    return `${place ? place + ": " : ""}${this.message}${hint}`;
  }
}

export function isMtlError(err: unknown): err is MtlError {
  return err instanceof MtlError;
}
