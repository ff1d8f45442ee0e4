/** `mtl report`: a thin command over src/report/html.ts. */
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.js";
import { buildReport } from "../report/html.js";

export async function reportCommand(args: { run: string; out?: string }): Promise<void> {
  const html = buildReport(args.run);
  const out = args.out ?? join(args.run, "report.html");
  writeFileAtomic(out, html, "report");
  process.stdout.write(`wrote ${out} (${(html.length / 1024).toFixed(0)} kB)\n`);
}
