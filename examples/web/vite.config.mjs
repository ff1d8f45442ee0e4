// The example page, built against the compiled package (npm run build first): `mtl-onnx/web` resolves
// to dist/src/web/index.js, the same module the package exports.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  resolve: { alias: { "mtl-onnx/web": fileURLToPath(new URL("../../dist/src/web/index.js", import.meta.url)) } },
  // onnxruntime-web finds its .wasm next to its own module (new URL(..., import.meta.url)); dev-mode
  // pre-bundling would move the module away from it.
  optimizeDeps: { exclude: ["onnxruntime-web"] },
  // onnxruntime-web is one ~0.5 MB module (plus its .wasm); splitting it would not help the page.
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 2048, rolldownOptions: { checks: { bundlerTimings: false } } },
  server: { host: "127.0.0.1" },
  preview: { host: "127.0.0.1" },
});
