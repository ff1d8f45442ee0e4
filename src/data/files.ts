/**
 * A data argument as a list of files: a file is itself; a directory is the files in it (not in its
 * subdirectories; names starting with "." left out), in name order; a glob (`*`, `?`, `[...]` in
 * any path segment, e.g. `data/part-*.txt.gz`) is the files it matches, in path order. Name order
 * is code-unit order, the same on every machine (PaddleRec takes `os.listdir`'s, which is not).
 * A ground-truth sidecar `<file>.truth.csv` beside its data file is the file's, not data of its own.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";

const GLOB_CHARS = /[*?[]/;

export function isGlob(spec: string): boolean {
  return GLOB_CHARS.test(spec);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** One glob segment as a regular expression over a file name. */
function segmentPattern(segment: string): RegExp {
  let re = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const close = segment.indexOf("]", i + 1);
      if (close < 0) re += "\\[";
      else {
        const body = segment.slice(i + 1, close);
        re += `[${body.startsWith("!") ? "^" + body.slice(1) : body}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

function expandGlob(spec: string): string[] {
  const absolute = spec.startsWith("/");
  const segments = spec.split("/").filter((s, i) => s !== "" || i === 0);
  let paths = [absolute ? "/" : segments[0] === "" ? "." : ""];
  for (const segment of absolute ? segments.slice(1) : segments) {
    const next: string[] = [];
    for (const base of paths) {
      if (!isGlob(segment)) {
        next.push(base === "" ? segment : join(base, segment));
        continue;
      }
      const dir = base === "" ? "." : base;
      if (!isDirectory(dir)) continue;
      const re = segmentPattern(segment);
      for (const name of readdirSync(dir).sort(byName)) if (re.test(name) && !(name.startsWith(".") && !segment.startsWith("."))) next.push(base === "" ? name : join(base, name));
    }
    paths = next;
  }
  return withoutSidecars(paths.filter(isFile)).sort(byName);
}

/** Names without the `<file>.truth.csv` sidecars of files also named. */
function withoutSidecars(names: string[]): string[] {
  const all = new Set(names);
  return names.filter((n) => !(n.endsWith(".truth.csv") && all.has(n.slice(0, -".truth.csv".length))));
}

/**
 * The files a data argument names. A plain path that is not a directory is returned as it is (the
 * reader then names it if it cannot be opened); a directory or glob without files is an error.
 */
export function dataFiles(spec: string): string[] {
  if (isDirectory(spec)) {
    const names = readdirSync(spec).filter((n) => !n.startsWith("."));
    const files = withoutSidecars(names).sort(byName).map((n) => join(spec, n)).filter(isFile);
    if (!files.length) throw new MtlError("E_IO", "the data directory holds no files", { where: { file: spec }, hint: "point at a directory of data files: Ali-CCP text, CSV, JSONL, .gz or shards" });
    return files;
  }
  if (!isFile(spec) && isGlob(spec)) {
    const files = expandGlob(spec);
    if (!files.length) throw new MtlError("E_IO", "no file matches the pattern", { where: { file: spec }, hint: "quote the pattern so the shell leaves it to mtl, and check the directory" });
    return files;
  }
  return [spec];
}
