/**
 * `mtl report` rendered by headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
 * for a 1-epoch and a 3-epoch run: no script or console error, every legend entry drawn (a lone
 * point too), no two text labels of a chart overlapping, the AUC in each ROC legend. Skips, saying
 * why, when Chromium is not installed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const CHROMIUM = process.env["MTL_CHROMIUM"] ?? "/usr/bin/chromium";
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (.ci/run installs it with apt-get install chromium; or set MTL_CHROMIUM)`;
const bin = fileURLToPath(new URL("../../bin/mtl.js", import.meta.url));

interface ChartCheck { title: string; legend: string[]; drawn: string[]; overlaps: string[] }

test("the report of a 1-epoch and a 3-epoch run renders in Chromium: no errors, every series drawn, no overlapping labels, AUC in the ROC legends", { skip, timeout: 300_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), "mtl-report-browser-"));
  let context: import("playwright-core").BrowserContext | null = null;
  try {
    const { chromium } = await import("playwright-core");
    context = await chromium.launchPersistentContext(join(work, "profile"), {
      executablePath: CHROMIUM, headless: true, timeout: 60_000,
      args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-gpu"],
    });
    for (const epochs of [1, 3]) {
      const run = join(work, `run${epochs}`);
      const train = spawnSync(process.execPath, [bin, "train", "--model", "esmm", "--train", "synth:rows=4000,seed=2", "--batch-size", "256", "--epochs", String(epochs), "-o", run], { encoding: "utf8" });
      assert.equal(train.status, 0, train.stderr);
      const report = spawnSync(process.execPath, [bin, "report", run], { encoding: "utf8" });
      assert.equal(report.status, 0, report.stderr);

      const page = await context.newPage();
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
      await page.setViewportSize({ width: 1250, height: 1600 });
      await page.goto(pathToFileURL(join(run, "report.html")).href);
      // (This callback runs in the page; the test is compiled without the DOM library, hence the loose types.)
      const charts = await page.$$eval("figure.chart", (figs) => figs.map((fig) => {
        const f = fig as unknown as {
          querySelector(s: string): { textContent: string | null } | null;
          querySelectorAll(s: string): ArrayLike<{ textContent: string | null; getAttribute(n: string): string | null; getBoundingClientRect(): { left: number; right: number; top: number; bottom: number } }>;
        };
        const title = f.querySelector("figcaption")?.textContent ?? "";
        const legend = Array.from(f.querySelectorAll(".legend span")).map((s) => s.textContent ?? "");
        const drawn = Array.from(f.querySelectorAll("[data-series]")).map((e) => e.getAttribute("data-series") ?? "");
        const boxes = Array.from(f.querySelectorAll("svg text")).map((t) => ({ text: t.textContent ?? "", r: t.getBoundingClientRect() }));
        const overlaps: string[] = [];
        for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
          const a = boxes[i]!.r, b = boxes[j]!.r;
          if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) overlaps.push(`'${boxes[i]!.text}' / '${boxes[j]!.text}'`);
        }
        return { title, legend, drawn, overlaps };
      })) as ChartCheck[];
      assert.deepEqual(problems, [], `run${epochs}`);
      assert.ok(charts.length >= 8, `${charts.length} charts`);
      for (const c of charts) {
        if (c.legend.length === 0) continue; // "no data"
        for (const name of c.legend) assert.ok(c.drawn.includes(name), `run${epochs} '${c.title}': series '${name}' is in the legend but not drawn`);
        assert.deepEqual(c.overlaps, [], `run${epochs} '${c.title}': overlapping labels`);
      }
      const loss = charts.find((c) => c.title === "Training loss")!;
      assert.ok(loss.drawn.filter((n) => n === "loss").length >= 1, "the training loss curve is drawn");
      for (const task of ["CTR", "CVR", "CTCVR"]) {
        assert.ok(charts.some((c) => c.legend.some((l) => new RegExp(`^${task} ROC \\(AUC 0\\.\\d{4}\\)$`).test(l))), `${task} ROC legend names its AUC`);
      }
      await page.close();
    }
  } finally {
    await context?.close();
    rmSync(work, { recursive: true, force: true });
  }
});
