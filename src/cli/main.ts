/**
 * The `mtl` command line: thin yargs commands over the library. Commands compute nothing themselves.
 * A user error prints one line (`mtl: file:line: what is wrong (hint)`) and exits 1; a usage error
 * exits 2; anything else is a bug and prints its stack.
 */
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { isMtlError } from "../errors.js";
import { VERSION } from "../version.js";
import { registerDataCommands } from "./data.js";
import { inspectCommand } from "./inspect.js";

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  const cli = yargs(argv)
    .scriptName("mtl")
    .usage("$0 <command> [options]\n\nMulti-task conversion-rate models as ONNX graphs: build, train, serve.")
    .version(VERSION)
    .strict()
    .demandCommand(1, "name a command (see mtl --help)")
    .recommendCommands()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .command(
      "inspect <model>",
      "summarise an .onnx file: IR version, opsets, inputs, outputs, ops, parameters, metadata",
      (y) =>
        y
          .positional("model", { type: "string", demandOption: true, describe: "path to an .onnx file" })
          .option("json", { type: "boolean", default: false, describe: "print the summary as JSON" }),
      async (args) => inspectCommand(args.model, args.json),
    )
    .command("data", "data: prepare shards, synthesize a funnel with known truth, inspect files", (y) => registerDataCommands(y))
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`mtl: ${msg}\n(see mtl --help)\n`);
      process.exit(2);
    });
  try {
    await cli.parseAsync();
  } catch (err) {
    if (isMtlError(err)) {
      process.stderr.write(`mtl: ${err.format()}\n`);
      process.exit(1);
    }
    throw err;
  }
}
