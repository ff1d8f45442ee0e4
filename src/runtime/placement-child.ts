/**
 * The child side of measurePlacement: loads one model on one device with onnxruntime's verbose log
 * on (it goes to stderr, where the parent reads the node placements) and prints one JSON line.
 */
import { isMtlError } from "../errors.js";
import { Session, parseDevice } from "./session.js";

const [file, deviceName] = process.argv.slice(2);
try {
  const session = await Session.create(file!, { device: parseDevice(deviceName!), cpuFallback: true, verboseLog: true });
  await session.release();
  process.stdout.write(JSON.stringify({ ok: true }) + "\n");
} catch (err) {
  const reply = isMtlError(err) ? { ok: false, code: err.code, message: err.message, hint: err.hint } : { ok: false, code: "E_RUN", message: String(err) };
  process.stdout.write(JSON.stringify(reply) + "\n");
}
