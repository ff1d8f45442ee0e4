// The on-device adaptation page: examples/web's build settings (mtl-onnx/web resolves to the compiled
// package, dist/src/web/index.js; npm run build first), rooted here.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import web from "../web/vite.config.mjs";

export default defineConfig({ ...web, root: fileURLToPath(new URL(".", import.meta.url)) });
