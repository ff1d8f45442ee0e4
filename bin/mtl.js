#!/usr/bin/env node
import("../dist/src/cli/main.js").then(
  (cli) => cli.main(process.argv.slice(2)),
  (err) => {
    if (err && err.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/src/cli/main.js")) {
      console.error("mtl: the package is not built yet; run `npm run build` (npm test builds too)");
    } else {
      console.error(err);
    }
    process.exit(1);
  },
);
