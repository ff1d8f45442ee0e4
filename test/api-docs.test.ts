/**
 * docs/api.md's examples are complete ES modules: each runs against the built package (imports of
 * "mtl-onnx" resolve to dist/src/index.js) and must exit 0, so the API document cannot drift from the code.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const doc = readFileSync(join(root, "docs", "api.md"), "utf8");
const entry = pathToFileURL(join(root, "dist", "src", "index.js")).href;

/** Each ```js block with the "## " heading it stands under. */
function examples(): { heading: string; code: string }[] {
  const out: { heading: string; code: string }[] = [];
  let heading = "";
  const re = /^## (.+)$|^```js\n([\s\S]*?)^```$/gm;
  for (const m of doc.matchAll(re)) {
    if (m[1] !== undefined) heading = m[1];
    else out.push({ heading, code: m[2]! });
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), "mtl-api-docs-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("docs/api.md has an example for each part of the API", () => {
  assert.ok(examples().length >= 8, `found ${examples().length} examples`);
});

examples().forEach(({ heading, code }, i) => {
  test(`docs/api.md example ${i + 1} runs: ${heading}`, () => {
    assert.match(code, /from "mtl-onnx"/, "an example imports the package root by its npm name, mtl-onnx (package.json)");
    const file = join(dir, `example-${i + 1}.mjs`);
    writeFileSync(file, code.replaceAll('from "mtl-onnx"', `from ${JSON.stringify(entry)}`));
    const out = execFileSync(process.execPath, [file], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    assert.ok(out.trim().length > 0, "the example prints what it computed");
  });
});
