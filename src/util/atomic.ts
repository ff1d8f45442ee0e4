/**
 * The one way mtl writes a file: into a temporary sibling (same directory, so the rename cannot
 * cross a filesystem), fsync, rename over the target, fsync of the directory (so the rename itself
 * survives a power cut). A crash or an error leaves the old file or the new one, never half of one,
 * and no temporary file behind on an error.
 *
 * Streams (predictions, shards, synthetic data) write to `temporaryPath(target)` themselves and
 * finish with `commitFile`; whole files go through `writeFileAtomic`.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { MtlError } from "../errors.js";

/** The temporary sibling a write of `path` goes to: hidden, per process, in the same directory. */
export function temporaryPath(path: string, tag = "tmp"): string {
  return join(dirname(path), `.${basename(path)}.${tag}-${process.pid}`);
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
  fsyncPath(tmp, "r+");
  renameSync(tmp, path);
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
    if (err instanceof MtlError) throw err;
    throw new MtlError("E_IO", `cannot write the ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { where: { file: path }, cause: err });
  }
  syncDirectoryOf(path);
  return pos;
}

/** Writes `value` as indented JSON with a final newline, atomically. */
export function writeJsonAtomic(path: string, value: unknown, what = "file"): number {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n", what);
}
