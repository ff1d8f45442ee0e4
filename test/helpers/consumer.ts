/**
 * A fresh project that installs mtl the way a user does: `npm pack` of this checkout (already
 * built), then `npm install <tarball>` in an empty temporary folder with nothing but the npm
 * registry (and npm's cache, which keeps repeated runs quick). Tests then run its `npx mtl`, type-check
 * a TypeScript file that imports the package under `tsc --strict`, or bundle a page with Vite.
 *
 * One consumer serves many checks: install once (`installConsumer`), then add assertions with
 * `consumer.mtl(...)`, `consumer.typecheck({...})` and `consumer.viteBuild(...)`.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file runs from dist/test/helpers). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const require = createRequire(import.meta.url);

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a user's shell: npm's own `npm_*` variables (set when this runs under
 * `npm test`) and any onnxruntime install flag are removed, so the child npm sees no setting of ours.
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || /^ONNXRUNTIME_NODE_INSTALL/.test(k) || k === "INIT_CWD") continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = userEnv(), input?: string): CommandResult {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, { cwd, env, encoding: "utf8", input, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mustRun(what: string, cmd: string, args: readonly string[], cwd: string, env?: NodeJS.ProcessEnv): CommandResult {
  const r = run(cmd, args, cwd, env);
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}): ${cmd} ${args.join(" ")}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `npm pack` of the built checkout into `dir`; returns the tarball's path. */
export function packTarball(dir: string): string {
  // --ignore-scripts: the tests run after the build (the prepack script would build again).
  mustRun("npm pack", "npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], REPO_ROOT);
  const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error(`npm pack wrote no tarball into ${dir}`);
  return join(dir, tgz);
}

export interface Consumer {
  /** The project folder (package.json, node_modules). */
  readonly dir: string;
  readonly tarball: string;
  /** What `npm install` printed (warnings included). */
  readonly installLog: string;
  /** `npx mtl <args>` in the project. */
  mtl(args: readonly string[], input?: string): CommandResult;
  /** Any command in the project, with a user's environment. */
  run(cmd: string, args: readonly string[], env?: Record<string, string>): CommandResult;
  /**
   * Writes `files` (relative paths → text) into the project and runs `tsc --strict` over the .ts
   * ones, against the installed package's declarations (skipLibCheck off); with `outDir` it also
   * emits JavaScript there (to run), else nothing.
   */
  typecheck(files: Readonly<Record<string, string>>, opts?: { outDir?: string }): CommandResult;
  /** Writes `files` (index.html and its modules) into `<dir>/<name>` and bundles them with Vite; returns the output folder. */
  viteBuild(name: string, files: Readonly<Record<string, string>>): Promise<string>;
  remove(): void;
}

export interface ConsumerOptions {
  /** More packages for the one `npm install` (e.g. "@types/node@20"). */
  alsoInstall?: readonly string[];
}

/** Packs this checkout and installs it into a new temporary project. */
export function installConsumer(opts: ConsumerOptions = {}): Consumer {
  const root = mkdtempSync(join(tmpdir(), "mtl-consumer-"));
  const dir = join(root, "app");
  mkdirSync(dir);
  const tarball = packTarball(root);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "mtl-consumer", version: "1.0.0", private: true, type: "module" }, null, 2) + "\n");
  // No flags: what a user types. --prefer-offline only lets npm reuse its cache.
  const install = mustRun("npm install", "npm", ["install", tarball, ...(opts.alsoInstall ?? []), "--no-audit", "--no-fund", "--prefer-offline"], dir);
  const tsc = join(dirname(require.resolve("typescript/package.json")), "bin", "tsc");
  const consumer: Consumer = {
    dir,
    tarball,
    installLog: install.stdout + install.stderr,
    mtl: (args, input) => run("npx", ["--no-install", "mtl", ...args], dir, userEnv(), input),
    run: (cmd, args, env = {}) => run(cmd, args, dir, userEnv(env)),
    typecheck(files, opts = {}) {
      for (const [name, text] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), text);
      }
      const tsconfig = {
        compilerOptions: {
          target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022", "DOM"], types: ["node"],
          strict: true, skipLibCheck: false, ...(opts.outDir ? { outDir: opts.outDir, rootDir: "." } : { noEmit: true }),
        },
        files: Object.keys(files).filter((f) => f.endsWith(".ts")),
      };
      writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
      return run(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], dir);
    },
    async viteBuild(name, files) {
      const site = join(dir, name);
      for (const [file, text] of Object.entries(files)) {
        mkdirSync(dirname(join(site, file)), { recursive: true });
        writeFileSync(join(site, file), text);
      }
      const outDir = join(site, "dist");
      // Vite from this checkout; every import of the page resolves in the consumer's node_modules.
      const { build } = await import("vite");
      await build({ root: site, configFile: false, logLevel: "warn", base: "./", build: { outDir, emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 4096, rolldownOptions: { checks: { bundlerTimings: false } } } });
      return outDir;
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
  return consumer;
}
