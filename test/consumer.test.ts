/**
 * The package as a user gets it: `npm pack`, install the tarball into a fresh project, compile a
 * TypeScript service under `tsc --strict` against the published declarations, and score an
 * exported model with the public `Scorer` — the same numbers as the in-repo scorer.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Scorer } from "../src/scoring/scorer.js";
import { exportScoringModel, scoringRecords } from "./helpers/scoring.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name: string; devDependencies: Record<string, string> };
const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");

const SERVICE = (name: string) => `import { Scorer, MtlError, type ScoringRecord } from "${name}";

const records: ScoringRecord[] = JSON.parse(process.argv[3]!);
try {
  const scorer: Scorer = await Scorer.open(process.argv[2]!);
  const scores = await scorer.scoreRecords(records);
  const ranked = await scorer.rank(records[0]!, records.slice(1), "p_ctcvr", 3);
  console.log(JSON.stringify({ p_ctcvr: Array.from(scores.p_ctcvr), top: ranked.map((c) => c.index) }));
  await scorer.release();
} catch (err) {
  if (err instanceof MtlError) console.error(err.message);
  process.exit(1);
}
`;

test("a fresh project installs the packed tarball, compiles under tsc --strict and scores with Scorer", { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-consumer-"));
  try {
    const run = (cmd: string, args: string[], cwd: string) =>
      execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_fund: "false", npm_config_audit: "false", ONNXRUNTIME_NODE_INSTALL: "skip" } });
    // ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's install step otherwise fetches its CUDA
    // provider from outside the npm registry (issue 16 makes the plain install work without it).
    // dist/ is already built by `npm test`; pack without running the build again.
    const tgz = run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], root).trim().split("\n").pop()!;
    const app = join(dir, "app");
    run("mkdir", ["-p", app], dir);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join(dir, tgz), `@types/node@${pkg.devDependencies["@types/node"]}`], app);
    writeFileSync(join(app, "service.ts"), SERVICE(pkg.name));
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", types: ["node"], outDir: "out", skipLibCheck: false },
      files: ["service.ts"],
    }));
    // Any error in the published declarations (a missing .d.ts, an `any` leak under strict) fails here.
    run(process.execPath, [tsc, "-p", "."], app);

    const model = exportScoringModel(dir, "model.onnx").file;
    const records = scoringRecords(8);
    const out = JSON.parse(run(process.execPath, [join(app, "out", "service.js"), model, JSON.stringify(records)], app)) as { p_ctcvr: number[]; top: number[] };
    const here = await Scorer.open(model, { worker: false });
    try {
      const expected = await here.scoreRecords(records);
      assert.deepEqual(out.p_ctcvr, Array.from(expected.p_ctcvr));
      const ranked = await here.rank(records[0]!, records.slice(1), "p_ctcvr", 3);
      assert.deepEqual(out.top, ranked.map((c) => c.index));
    } finally {
      await here.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
