/** Shared test helpers for the data tests. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DataReader } from "../../src/data/reader.js";
import type { ReadBlock } from "../../src/features/batch.js";

/** The repository root (tests run from dist/test). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** The small real samples shared by the team: ../shared/data from the repo root (MTL_SHARED_DATA overrides it, e.g. for a git worktree elsewhere). */
export const SHARED_DATA = process.env.MTL_SHARED_DATA ?? join(REPO_ROOT, "..", "shared", "data");

export function tempDir(prefix = "mtl-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeTemp(dir: string, name: string, content: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

export async function readAll(reader: DataReader): Promise<ReadBlock[]> {
  const out: ReadBlock[] = [];
  for await (const b of reader.blocks()) out.push(b);
  return out;
}
