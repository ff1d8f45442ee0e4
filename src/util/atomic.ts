/**
 * The one way mtl writes a file: into a temporary sibling (same directory, so the rename cannot
 * cross a filesystem), fsync, rename over the target, fsync of the directory (so the rename itself
 * survives a power cut). A crash or an error leaves the old file or the new one, never half of one,
 * and no temporary file behind on an error.
 *
 * Streams (predictions, shards, synthetic data) write to `temporaryPath(target)` themselves and
 * finish with `commitFile`; whole files go through `writeFileAtomic`.
 *
 * Beside it, what every command writing files shares: the temporary files of a writer that was
 * killed are removed by the next one writing in that directory (removeOrphanTemporaries, called by
 * temporaryPath); an output that is one of the command's inputs is refused by device and inode
 * (refuseOverwritingInput); a disk-full or permission error becomes one line naming the path (ioError).
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { MtlError } from "../errors.js";

/** The temporary sibling a write of `path` goes to: hidden, per process, in the same directory. */
export function temporaryPath(path: string, tag = "tmp"): string {
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

/** Flushes `tmp` to disk, renames it over `path` and flushes the directory entry. */
export function commitFile(tmp: string, path: string): void {
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
  const tmp = temporaryPath(path);
  let fd: number | null = null;
  let pos = 0;
  try {
    fd = openSync(tmp, "w");
    const pieces = typeof content === "string" ? [Buffer.from(content, "utf8")] : content instanceof Uint8Array ? [content] : content;
    for (const piece of pieces) {
      let done = 0;
      while (done < piece.byteLength) done += writeSync(fd, piece, done, piece.byteLength - done, pos + done);
      pos += piece.byteLength;
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw ioError(err, path, what);
  }
  syncDirectoryOf(path);
  return pos;
}

/** Writes `value` as indented JSON with a final newline, atomically. */
export function writeJsonAtomic(path: string, value: unknown, what = "file"): number {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n", what);
}
