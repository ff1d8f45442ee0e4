// The on-device adaptation page, built against the compiled package (npm run build first): `mtl/web`
// resolves to dist/src/web/index.js, the module the package exports.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  resolve: { alias: { "mtl/web": fileURLToPath(new URL("../../dist/src/web/index.js", import.meta.url)) } },
  optimizeDeps: { exclude: ["onnxruntime-web"] },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 2048 },
  server: { host: "127.0.0.1" },
  preview: { host: "127.0.0.1" },
});
