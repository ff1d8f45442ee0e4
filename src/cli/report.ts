/** `mtl report`: a thin command over src/report/html.ts. */
import { join } from "node:path";
import { refuseOverwritingInput, writeFileAtomic, writesInPlace } from "../util/atomic.js";
import { runInputs } from "../flow/rundir.js";
import { buildReport } from "../report/html.js";

export async function reportCommand(args: { run: string; out?: string }): Promise<void> {
  const out = args.out ?? join(args.run, "report.html");
  refuseOverwritingInput(out, runInputs(args.run), "--out");
  const html = buildReport(args.run);
  writeFileAtomic(out, html, "report");
  // `-o -` (or /dev/stdout): the HTML is standard output's; the note goes to stderr.
  (writesInPlace(out) ? process.stderr : process.stdout).write(`wrote ${out} (${(html.length / 1024).toFixed(0)} kB)\n`);
}
