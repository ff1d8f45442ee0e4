/**
 * Files that are not files: `-` (standard input or output, in every file argument of mtl) and
 * special files such as /dev/stdout, /dev/null or a named pipe. Those are written in place, never
 * through a temporary file and a rename: a rename would replace the device or the /dev/stdout link
 * (as root, a regular file then sits where /dev/stdout was) instead of writing to it.
 */
import { createWriteStream, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { MtlError } from "../errors.js";

/** `-`: standard input where a file is read, standard output where one is written. */
export const STDIO = "-";

export function isStdio(path: string): boolean {
  return path === STDIO;
}

/** How a file argument is named in messages: `-` reads as what it stands for. */
export function displayName(path: string, direction: "in" | "out"): string {
  return isStdio(path) ? (direction === "in" ? "<stdin>" : "<stdout>") : path;
}

/**
 * Whether `path` must be written in place: `-`, an existing target that is not a regular file
 * (a device, a pipe, a socket), or a path whose symbolic links pass through /dev or /proc
 * (/dev/stdout → /proc/self/fd/1 → whatever fd 1 is, even a regular file the shell redirected to).
 */
export function writesInPlace(path: string): boolean {
  if (isStdio(path)) return true;
  let current = resolve(path);
  for (let hop = 0; hop < 40; hop++) {
    if (/^\/(dev|proc)\//.test(current)) return true;
    let link: string;
    try {
      if (!lstatSync(current).isSymbolicLink()) break;
      link = readlinkSync(current);
    } catch {
      return false; // does not exist (yet): an ordinary new file
    }
    current = isAbsolute(link) ? link : resolve(dirname(current), link);
  }
  try {
    return !statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Creates the folder `path` will be written into (an output's parent folders, like `mkdir -p`). */
export function ensureParentDir(path: string): void {
  if (writesInPlace(path)) return;
  const dir = dirname(resolve(path));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new MtlError("E_IO", `cannot create the output folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { where: { file: path }, cause: err });
  }
}

/** A stream being written to its destination; `commit` makes it whole, `abort` leaves no trace. */
export interface OutputStream {
  /** The destination as messages should name it (`<stdout>` for `-`). */
  readonly name: string;
  write(text: string | Uint8Array): Promise<void>;
  /** Finishes the write: flushes, and for an ordinary file renames the temporary file over the target. */
  commit(): Promise<void>;
  /** After an error: an ordinary file's temporary file is removed and the target left as it was. */
  abort(): void;
}

function writeTo(stream: NodeJS.WritableStream, chunk: string | Uint8Array): Promise<void> {
  return new Promise((resolveWrite, reject) => {
    stream.write(chunk, (err?: Error | null) => (err ? reject(err) : resolveWrite()));
  });
}

/**
 * Opens `path` for a streamed write: standard output for `-`, in place for a special file, else a
 * temporary sibling renamed over the target by `commit` (parent folders are created first).
 */
export async function openOutputStream(path: string, what = "output"): Promise<OutputStream> {
  const name = displayName(path, "out");
  const fail = (err: unknown): never => {
    throw new MtlError("E_IO", `cannot write the ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { where: { file: name }, cause: err });
  };
  if (isStdio(path)) {
    return {
      name,
      write: (chunk) => writeTo(process.stdout, chunk).catch(fail),
      commit: async () => undefined,
      abort: () => undefined,
    };
  }
  const inPlace = writesInPlace(path);
  ensureParentDir(path);
  const target = inPlace ? path : temporaryPath(path);
  const stream = createWriteStream(target);
  await new Promise<void>((resolveOpen, reject) => {
    stream.once("open", () => resolveOpen());
    stream.once("error", reject);
  }).catch(fail);
  return {
    name,
    write: (chunk) => writeTo(stream, chunk).catch(fail),
    async commit() {
      await new Promise<void>((resolveEnd, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolveEnd()))).catch(fail);
      if (!inPlace) {
        try {
          renameSync(target, path);
        } catch (err) {
          rmSync(target, { force: true });
          fail(err);
        }
      }
    },
    abort() {
      stream.destroy();
      if (!inPlace) rmSync(target, { force: true });
    },
  };
}

/** The temporary sibling a write of `path` goes to (same folder, so the rename stays on one filesystem). */
export function temporaryPath(path: string, tag = "partial"): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${process.pid}`);
}
