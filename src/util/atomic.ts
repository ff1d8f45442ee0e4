/**
 * The one way mtl writes a file: into a temporary sibling (same directory, so the rename cannot
 * cross a filesystem), fsync, rename over the target, fsync of the directory (so the rename itself
 * survives a power cut). A crash or an error leaves the old file or the new one, never half of one,
 * and no temporary file behind on an error.
 *
 * Streams (predictions, shards, synthetic data) write to `temporaryPath(target)` themselves and
 * finish with `commitFile`, or use `openOutputStream`; whole files go through `writeFileAtomic`.
 * Every write creates the target's missing parent folders.
 *
 * Files that are not files are written in place, never through a temporary file and a rename:
 * `-` (standard output, in every file argument of mtl) and special files such as /dev/stdout,
 * /dev/null or a named pipe. A rename would replace the device or the /dev/stdout link (as root, a
 * regular file then sits where /dev/stdout was) instead of writing to it.
 *
 * Beside it, what every command writing files shares: the temporary files of a writer that was
 * killed are removed by the next one writing in that directory (removeOrphanTemporaries, called by
 * temporaryPath); an output that is one of the command's inputs is refused by device and inode
 * (refuseOverwritingInput); a disk-full or permission error becomes one line naming the path (ioError).
 */
import { closeSync, createWriteStream, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
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

/**
 * The temporary sibling a write of `path` goes to: hidden, per process, in the same directory
 * (whose missing folders this creates, as every write does). A target written in place gets a
 * temporary file in the system's temporary folder instead (nothing is created in /dev).
 */
export function temporaryPath(path: string, tag = "tmp"): string {
  if (writesInPlace(path)) return join(tmpdir(), `mtl-${basename(path) || "stdout"}.${tag}-${process.pid}`);
  ensureParentDir(path);
  removeOrphanTemporaries(dirname(path));
  return join(dirname(path), `.${basename(path)}.${tag}-${process.pid}`);
}

/** What temporaryPath names: `.<name>.<tag>-<pid>`. */
const TEMPORARY_NAME = /^\..+\.(tmp|partial)-(\d+)$/;
const swept = new Set<string>();

/** Whether process `pid` exists (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temporary files of writers that died (killed mid-write, their `.x.tmp-<pid>` is all
 * that is left) from `dir`, once per directory per process: the next mtl command writing there
 * cleans up after the dead one. Files of live processes are left alone.
 */
export function removeOrphanTemporaries(dir: string): string[] {
  const key = resolve(dir);
  if (swept.has(key)) return [];
  swept.add(key);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMPORARY_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || processAlive(pid)) continue;
    rmSync(join(dir, name), { force: true, recursive: true });
    removed.push(name);
  }
  return removed;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is exhausted",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "the filesystem is read-only",
  ENOENT: "no such file or directory",
  EISDIR: "it is a directory",
  ENOTDIR: "a part of the path is not a directory",
  EEXIST: "it already exists",
  EMFILE: "too many open files",
  EIO: "an input/output error of the device",
};

/** A Node file-system error in words: "no space left on the device (ENOSPC)". */
export function describeIoError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === undefined) return err instanceof Error ? err.message : String(err);
  return ERRNO_TEXT[code] ? `${ERRNO_TEXT[code]} (${code})` : code;
}

/** A failed read or write of `path` as one MtlError line (an MtlError passes through). */
export function ioError(err: unknown, path: string, what: string, verb: "read" | "write" = "write"): MtlError {
  if (err instanceof MtlError) return err;
  return new MtlError("E_IO", `cannot ${verb} the ${what}: ${describeIoError(err)}`, { where: { file: path }, cause: err });
}

/** A file's identity: device and inode (names lie: links, `./`, symlinks); null when it does not exist. */
function identity(path: string): string | null {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

/**
 * Refuses to write `output` when it is one of `inputs` (the same device and inode): a command must
 * never replace what it reads. `inputs` are the files read, by what they are ("the data", "run.json").
 */
export function refuseOverwritingInput(output: string, inputs: readonly { path: string; what: string }[], flag = "--out"): void {
  const out = identity(output);
  if (out === null) return;
  for (const i of inputs) {
    if (identity(i.path) === out) {
      throw new MtlError("E_USAGE", `the output is ${i.what} this command reads (${i.path}); writing it would destroy the input`, { where: { file: output }, hint: `choose another ${flag}` });
    }
  }
}

function fsyncPath(path: string, flags: "r" | "r+"): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDirectoryOf(path: string): void {
  try {
    fsyncPath(dirname(path), "r");
  } catch {
    // Some filesystems cannot fsync a directory; the rename is still atomic there.
  }
}

/** Copies `tmp` into a target written in place (a special file, `-`), then removes `tmp`. */
function copyInPlace(tmp: string, path: string): void {
  const from = openSync(tmp, "r");
  const to = isStdio(path) ? 1 : openSync(path, "w");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(from, buf, 0, buf.length, null)) > 0;) {
      for (let done = 0; done < n;) done += writeSync(to, buf, done, n - done);
    }
  } finally {
    closeSync(from);
    if (to !== 1) closeSync(to);
    rmSync(tmp, { force: true });
  }
}

/**
 * Flushes `tmp` to disk, renames it over `path` and flushes the directory entry; for a target
 * written in place (`writesInPlace`) the bytes are copied into it instead of renamed over it.
 */
export function commitFile(tmp: string, path: string): void {
  if (writesInPlace(path)) return copyInPlace(tmp, path);
  try {
    fsyncPath(tmp, statSync(tmp).isDirectory() ? "r" : "r+");
    renameSync(tmp, path);
  } catch (err) {
    throw ioError(err, path, "file");
  }
  syncDirectoryOf(path);
}

/** What a whole-file write takes: a string (UTF-8), bytes, or pieces written in order. */
export type FileContent = string | Uint8Array | Iterable<Uint8Array>;

/**
 * Writes `content` to `path` atomically; returns the bytes written. On any error (including one
 * thrown by a `content` iterator mid-write) the temporary file is removed and the target is left
 * as it was; the error becomes an E_IO MtlError naming `path` (an MtlError passes through).
 */
export function writeFileAtomic(path: string, content: FileContent, what = "file"): number {
  const inPlace = writesInPlace(path);
  ensureParentDir(path);
  const tmp = inPlace ? path : temporaryPath(path);
  let fd: number | null = null;
  let pos = 0;
  try {
    fd = isStdio(path) ? 1 : openSync(tmp, "w");
    const pieces = typeof content === "string" ? [Buffer.from(content, "utf8")] : content instanceof Uint8Array ? [content] : content;
    for (const piece of pieces) {
      let done = 0;
      // In place: sequential writes (a pipe or a terminal has no positions).
      while (done < piece.byteLength) done += writeSync(fd, piece, done, piece.byteLength - done, inPlace ? null : pos + done);
      pos += piece.byteLength;
    }
    if (inPlace) {
      if (fd !== 1) closeSync(fd);
      return pos;
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== null && fd !== 1) closeSync(fd);
    if (!inPlace) rmSync(tmp, { force: true });
    throw ioError(err, displayName(path, "out"), what);
  }
  syncDirectoryOf(path);
  return pos;
}

/** Writes `value` as indented JSON with a final newline, atomically. */
export function writeJsonAtomic(path: string, value: unknown, what = "file"): number {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n", what);
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
    throw ioError(err, name, what);
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
  const target = inPlace ? path : temporaryPath(path, "partial");
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
          commitFile(target, path);
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
