/**
 * Command-line values yargs cannot check on its own. A numeric flag given text parses to NaN, and
 * NaN prints as `null` in messages; this names the flag and the text as typed instead.
 */
import { MtlError } from "../errors.js";

/** The text typed after `--name` (or `--name=`, or a one-letter alias), for messages. */
function typedValue(rawArgv: readonly string[], names: readonly string[]): string | undefined {
  for (let i = 0; i < rawArgv.length; i++) {
    const a = rawArgv[i]!;
    for (const n of names) {
      const flag = n.length === 1 ? `-${n}` : `--${n}`;
      if (a === flag) return rawArgv[i + 1];
      if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
    }
  }
  return undefined;
}

/** yargs middleware (run before validation): any numeric option that parsed to NaN is a usage error naming what was typed. */
export function rejectBadNumbers(rawArgv: readonly string[]): (args: Record<string, unknown>) => void {
  return (args) => {
    for (const [key, value] of Object.entries(args)) {
      if (typeof value !== "number" || !Number.isNaN(value) || key === "$0") continue;
      if (/[A-Z]/.test(key)) continue; // yargs' camelCase copy of a dashed name: reported under the dashed one
      const typed = typedValue(rawArgv, [key]);
      throw new MtlError("E_USAGE", `--${key} must be a number, got ${typed === undefined ? "no value" : `'${typed}'`}`);
    }
  };
}

/** `--output -` as `--output=-`: yargs reads a lone `-` after a long option as no value, but `-` names stdin/stdout. */
export function joinDashValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--[^=]+$/.test(a) && argv[i + 1] === "-") {
      out.push(`${a}=-`);
      i++;
    } else out.push(a);
  }
  return out;
}
