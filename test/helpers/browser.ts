/** What the headless-Chromium tests share: where Chromium is, and a static file server for a built page. */
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { extname, join, normalize } from "node:path";

export const CHROMIUM = process.env["MTL_CHROMIUM"] ?? "/usr/bin/chromium";
export const skipWithoutChromium: string | false = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (.ci/run installs it with apt-get install chromium; or set MTL_CHROMIUM)`;
/** Flags for a quiet, offline headless Chromium. */
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-gpu", "--disable-quic"];

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream", ".css": "text/css", ".json": "application/json" };

/** Serves `dir` on a free loopback port. */
export function serveStatic(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0]!)).replace(/^(\.\.[/\\])+/, "");
    const file = join(dir, path.endsWith("/") ? `${path}index.html` : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Headless Chromium on a profile in `work`, with one page whose uncaught errors are collected. */
export async function openChromium(work: string, timeoutMs: number): Promise<{ context: import("playwright-core").BrowserContext; page: import("playwright-core").Page; pageErrors: string[] }> {
  const { chromium } = await import("playwright-core");
  const context = await chromium.launchPersistentContext(join(work, "profile"), { executablePath: CHROMIUM, headless: true, timeout: 60_000, args: CHROMIUM_ARGS });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeoutMs);
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  return { context, page, pageErrors };
}
