// Build: generate the ONNX protobuf module from onnx/onnx.proto, compile TypeScript, and copy the
// generated JavaScript next to the compiled code (tsc does not copy .js sources).
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, existsSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const proto = join(root, "onnx", "onnx.proto");
const genDir = join(root, "onnx", "generated");
const genJs = join(genDir, "onnx_pb.js");

function run(script, args) {
  try {
    execFileSync(process.execPath, [script, ...args], { cwd: root, stdio: "inherit" });
  } catch {
    console.error(`build failed: ${script.split(/[\\/]/).slice(-3).join("/")} exited non-zero (its output is above)`);
    process.exit(1);
  }
}

// npm leaves the optional onnxruntime-node out when its install step cannot download its CUDA
// provider (a machine that reaches only the npm registry): say how to add it instead of tsc's errors.
if (!existsSync(join(root, "node_modules", "onnxruntime-node", "package.json"))) {
  console.error("build failed: node_modules/onnxruntime-node is missing (npm drops this optional dependency when its install step cannot reach NuGet); install it with: ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save onnxruntime-node@1.30.0");
  process.exit(1);
}

// Regenerate only when the schema is newer than the generated module (keeps rebuilds fast).
if (!existsSync(genJs) || statSync(genJs).mtimeMs < statSync(proto).mtimeMs) {
  mkdirSync(genDir, { recursive: true });
  const pbjs = join(dirname(require.resolve("protobufjs-cli/package.json")), "bin", "pbjs");
  run(pbjs, [
    "-t", "static-module", "-w", "esm", "--force-number",
    "--no-create", "--no-verify", "--no-convert", "--no-delimited", "--no-typeurl",
    "-d", "-o", genJs, proto,
  ]);
}
// A clean dist: compiled tests of deleted sources must not keep running.
rmSync(join(root, "dist"), { recursive: true, force: true });
const tsc = join(dirname(require.resolve("typescript/package.json")), "bin", "tsc");
run(tsc, ["-p", root]);
mkdirSync(join(root, "dist", "onnx", "generated"), { recursive: true });
cpSync(genJs, join(root, "dist", "onnx", "generated", "onnx_pb.js"));
// Its declarations ship too: the published .d.ts files import them (a consumer's strict tsc needs them).
cpSync(genJs.replace(/\.js$/, ".d.ts"), join(root, "dist", "onnx", "generated", "onnx_pb.d.ts"));
