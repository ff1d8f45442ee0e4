/**
 * The engine (graph builder, autodiff, optimizers, runtime sessions, training programs, state and
 * trainer) imports nothing from the rooms built on it: the run workflow, the models, scoring,
 * export, serving, the demo, reports, the browser entry and the command line. Scans the import
 * statements of the sources and names each offending import.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ENGINE = ["src/train", "src/graph", "src/autodiff", "src/optim", "src/runtime"];
const ABOVE_ENGINE = ["src/flow", "src/models", "src/scoring", "src/export", "src/serve", "src/cli", "src/demo", "src/report", "src/web"];

/** The module specifiers a TypeScript source imports or re-exports (static and dynamic). */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g;
  for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

function sourcesUnder(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** Each import of an engine file that lands in a module above the engine, as "file -> target". */
function layeringViolations(files: readonly string[], read: (file: string) => string): string[] {
  const bad: string[] = [];
  for (const file of files) {
    for (const spec of importsOf(read(file))) {
      if (!spec.startsWith(".")) continue;
      const target = relative(root, resolve(root, dirname(file), spec)).replace(/\.js$/, ".ts");
      const edge = `${file} -> ${target}`;
      if (ABOVE_ENGINE.some((d) => target === d || target.startsWith(d + "/"))) bad.push(edge);
    }
  }
  return bad;
}

test("the import scanner finds static, type-only, re-export, multi-line and dynamic imports", () => {
  const text = [
    'import { a } from "../flow/run.js";',
    'import type { B } from "../models/index.js";',
    'export { c } from "./sibling.js";',
    "import {\n  d,\n  e,\n} from '../scoring/feeds.js';",
    'const m = await import("../cli/main.js");',
    'import "./side-effect.js";',
  ].join("\n");
  assert.deepEqual(importsOf(text), ["../flow/run.js", "../models/index.js", "./sibling.js", "../scoring/feeds.js", "../cli/main.js", "./side-effect.js"]);
  assert.deepEqual(
    layeringViolations(["src/train/x.ts"], () => text),
    ["src/train/x.ts -> src/flow/run.ts", "src/train/x.ts -> src/models/index.ts", "src/train/x.ts -> src/scoring/feeds.ts", "src/train/x.ts -> src/cli/main.ts"],
  );
});

test("the engine (train, graph, autodiff, optim, runtime) imports nothing from the modules above it", () => {
  const files = ENGINE.flatMap(sourcesUnder);
  assert.ok(files.length > 10, `found only ${files.length} engine sources under ${root}`);
  const bad = layeringViolations(files, (f) => readFileSync(join(root, f), "utf8"));
  assert.deepEqual(bad, [], `engine files import from above the engine:\n  ${bad.join("\n  ")}`);
});
