/**
 * The package as a user installs it: the packed tarball into a fresh project with nothing but the
 * npm registry, then `npx mtl`, a TypeScript import under `tsc --strict`, and a Vite build of a page
 * that imports the browser entry. Skips, saying why, when npm cannot reach the registry.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { installConsumer, REPO_ROOT, userEnv, type Consumer } from "./helpers/consumer.js";
import { Scorer } from "../src/scoring/scorer.js";
import { exportScoringModel, scoringRecords } from "./helpers/scoring.js";

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
  name: string; private?: boolean; license: string; bin: Record<string, string>; files: string[];
  dependencies: Record<string, string>; optionalDependencies?: Record<string, string>; scripts: Record<string, string>;
};

function registryReachable(): string | false {
  const r = spawnSync("npm", ["view", "yargs", "version", "--prefer-offline"], { encoding: "utf8", env: userEnv(), timeout: 60_000 });
  return r.status === 0 ? false : `npm cannot reach the registry (${(r.stderr || r.error?.message || "").split("\n")[0]})`;
}

test("package.json: publishable under a free name, the command is mtl, onnxruntime-node optional, a LICENSE", () => {
  assert.notEqual(pkg.private, true);
  assert.equal(pkg.name, "mtl-onnx");
  assert.deepEqual(Object.keys(pkg.bin), ["mtl"]);
  assert.equal(pkg.license, "Apache-2.0");
  assert.match(readFileSync(join(REPO_ROOT, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0, January 2004/);
  assert.ok(pkg.files.includes("LICENSE"));
  // A browser-only user, or an npm whose onnxruntime-node install step cannot reach NuGet, still installs.
  assert.equal(pkg.dependencies["onnxruntime-node"], undefined);
  assert.ok(pkg.optionalDependencies?.["onnxruntime-node"]);
  // `prepare` would run in consumers' installs of the tarball and warn; the build runs before packing.
  assert.equal(pkg.scripts["prepare"], undefined);
  assert.ok(pkg.scripts["prepack"]);
  assert.equal(existsSync(join(REPO_ROOT, ".npmrc")), false, "no project .npmrc (its onnxruntime key is an unknown npm config that warns on every command)");
});

const offline = registryReachable();

test("npm install <tarball> into a fresh project: npx mtl, tsc --strict over both entries, a Vite build of the browser entry", { skip: offline, timeout: 600_000 }, async (t) => {
  let consumer: Consumer | null = null;
  try {
    consumer = installConsumer({ alsoInstall: ["@types/node@20"] });
    const c = consumer;
    assert.doesNotMatch(c.installLog, /Unknown (project|user|env) config|deprecated/i, c.installLog);
    const ls = c.run("npm", ["ls"]);
    assert.equal(ls.status, 0, `npm ls: ${ls.stdout}${ls.stderr}`);

    await t.test("npx mtl --help lists the commands and ends with examples", () => {
      const r = c.mtl(["--help"]);
      assert.equal(r.status, 0, r.stderr);
      for (const cmd of ["export", "run", "train", "serve", "demo"]) assert.match(r.stdout, new RegExp(`mtl ${cmd}`));
      assert.match(r.stdout, /Examples:\n(.+\n){2,}\s*$/);
    });

    await t.test("tsc --strict type-checks a program importing mtl-onnx and mtl-onnx/web", () => {
      const r = c.typecheck({
        "src/node.ts": [
          'import { Graph, ops, encodeGraph, MtlError, isMtlError, type FeatureSchema } from "mtl-onnx";',
          'const g = new Graph({ name: "relu" });',
          'g.output(ops.Relu(g.input("x", "float32", [2])), "y");',
          "const bytes: Uint8Array = encodeGraph(g);",
          "const schema: FeatureSchema | null = null;",
          'const err: unknown = new MtlError("E_X", "m");',
          "export const ok: boolean = bytes.byteLength > 0 && schema === null && isMtlError(err);",
        ].join("\n") + "\n",
        "src/web.ts": [
          'import { WebScorer, type WebScorerOptions, type RankedCandidate } from "mtl-onnx/web";',
          'const opts: WebScorerOptions = { device: "wasm" };',
          "export async function top(model: Uint8Array): Promise<RankedCandidate | undefined> {",
          "  const s = await WebScorer.load(model, opts);",
          '  const ranked = await s.rank({ user: "u1" }, [{ item: "i1" }]);',
          "  await s.release();",
          "  return ranked[0];",
          "}",
        ].join("\n") + "\n",
      });
      assert.equal(r.status, 0, `tsc:\n${r.stdout}${r.stderr}`);
    });

    await t.test("Vite bundles a page importing mtl-onnx/web; the WebGPU build is a separate chunk the wasm path does not load", async () => {
      const out = await c.viteBuild("site", {
        "index.html": '<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>\n',
        "main.js": 'import { WebScorer } from "mtl-onnx/web";\nglobalThis.load = (bytes) => WebScorer.load(bytes);\n',
      });
      const files = readdirSync(join(out, "assets"));
      assert.ok(files.some((f) => /^ort-wasm-simd-threaded(-[\w-]+)?\.wasm$/.test(f)), `the plain wasm binary is emitted: ${files.join(", ")}`);
      const html = readFileSync(join(out, "index.html"), "utf8");
      const entry = /src="\.\/assets\/([^"]+\.js)"/.exec(html)?.[1];
      assert.ok(entry, html);
      const entryText = readFileSync(join(out, "assets", entry), "utf8");
      // The page's own chunk is small: onnxruntime-web comes as chunks imported on demand.
      assert.ok(statSync(join(out, "assets", entry)).size < 300_000, `entry chunk ${entry} is ${statSync(join(out, "assets", entry)).size} bytes`);
      assert.doesNotMatch(entryText, /jsep\.wasm/, "the entry chunk does not reference the WebGPU (jsep) binary");
    });

    await t.test("the design card's commands in the fresh project: mtl export --model escm2, then mtl run escm2.onnx < data > preds", () => {
      // Export needs no onnxruntime: it runs before onnxruntime-node is looked at.
      const exp = c.mtl(["export", "--model", "escm2"]);
      assert.equal(exp.status, 0, exp.stderr);
      assert.ok(existsSync(join(c.dir, "escm2.onnx")));
      assert.match(exp.stdout, new RegExp(`wrote ${join(c.dir, "escm2.onnx").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
      const ort = c.run(process.execPath, ["-e", "import('onnxruntime-node').then(() => console.log('yes'), () => console.log('no'))"]);
      if (!/yes/.test(ort.stdout)) {
        // Its install step could not reach NuGet, so npm left the optional dependency out: mtl says how to add it.
        const r = c.mtl(["run", "escm2.onnx"], "");
        assert.equal(r.status, 1);
        assert.match(r.stderr, /onnxruntime-node is not installed .*ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node/);
        const add = c.run("npm", ["install", "onnxruntime-node@1.30.0", "--no-audit", "--no-fund", "--prefer-offline"], { ONNXRUNTIME_NODE_INSTALL: "skip" });
        assert.equal(add.status, 0, add.stdout + add.stderr);
      }
      const data = c.mtl(["data", "synth", "--out", "test.txt", "--rows", "200"]);
      assert.equal(data.status, 0, data.stderr);
      const run = c.mtl(["run", "escm2.onnx"], readFileSync(join(c.dir, "test.txt"), "utf8"));
      assert.equal(run.status, 0, run.stderr);
      const lines = run.stdout.trim().split("\n");
      assert.equal(lines[0], "line,p_ctr,p_cvr,p_ctcvr");
      assert.equal(lines.length, 201);
      assert.match(run.stderr, /scored 200 rows with escm2/);
    });

    await t.test("a TypeScript service imports Scorer from mtl-onnx, compiles under tsc --strict and scores as the in-repo Scorer", async () => {
      const service = [
        'import { Scorer, MtlError, type ScoringRecord } from "mtl-onnx";',
        "const records: ScoringRecord[] = JSON.parse(process.argv[3]!);",
        "try {",
        "  const scorer: Scorer = await Scorer.open(process.argv[2]!);",
        "  const scores = await scorer.scoreRecords(records);",
        '  const ranked = await scorer.rank(records[0]!, records.slice(1), "p_ctcvr", 3);',
        "  console.log(JSON.stringify({ p_ctcvr: Array.from(scores.p_ctcvr), top: ranked.map((c) => c.index) }));",
        "  await scorer.release();",
        "} catch (err) {",
        "  if (err instanceof MtlError) console.error(err.message);",
        "  process.exit(1);",
        "}",
      ].join("\n") + "\n";
      const tsc = c.typecheck({ "service/service.ts": service }, { outDir: "out" });
      assert.equal(tsc.status, 0, `tsc:\n${tsc.stdout}${tsc.stderr}`);
      const model = exportScoringModel(join(c.dir, "models"), "model.onnx").file;
      const records = scoringRecords(8);
      const r = c.run(process.execPath, [join(c.dir, "out", "service", "service.js"), model, JSON.stringify(records)]);
      assert.equal(r.status, 0, r.stderr);
      const got = JSON.parse(r.stdout) as { p_ctcvr: number[]; top: number[] };
      const here = await Scorer.open(model, { worker: false });
      try {
        const expected = await here.scoreRecords(records);
        assert.deepEqual(got.p_ctcvr, Array.from(expected.p_ctcvr));
        const ranked = await here.rank(records[0]!, records.slice(1), "p_ctcvr", 3);
        assert.deepEqual(got.top, ranked.map((x) => x.index));
      } finally {
        await here.release();
      }
    });
  } finally {
    consumer?.remove();
  }
});
