/** `mtl report`: a thin command over src/report/html.ts. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MtlError } from "../errors.js";
import { buildReport } from "../report/html.js";

export async function reportCommand(args: { run: string; out?: string }): Promise<void> {
  const html = buildReport(args.run);
  const out = args.out ?? join(args.run, "report.html");
  try {
    writeFileSync(out, html);
  } catch (err) {
    throw new MtlError("E_IO", `cannot write the report: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { where: { file: out } });
  }
  process.stdout.write(`wrote ${out} (${(html.length / 1024).toFixed(0)} kB)\n`);
}
