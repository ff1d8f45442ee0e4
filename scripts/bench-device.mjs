// Training and scoring on each device this machine has (cpu, webgpu, cuda), with a device column:
// steps/s and rows/s, and how far each device's loss curve is from the CPU's. Not a test: prints
// measured numbers. Each device runs in a child process (a WebGPU that fails on the machine's own
// Vulkan drivers is retried on SwiftShader, Chromium's software Vulkan, and labelled as such: its
// speed means nothing there, its numbers must agree). See docs/gpu.md.
//   npm run bench:device [-- --steps 20 --batch 256 --score-batch 1024 --model esmm --devices cpu,webgpu,cuda]
// Other bench scripts can call benchDevices(opts) and print its rows with formatDeviceTable(rows).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const SWIFTSHADER_ICDS = ["/usr/lib/chromium/vk_swiftshader_icd.json", "/usr/lib64/chromium/vk_swiftshader_icd.json"];
const HERE = fileURLToPath(import.meta.url);

/** What runs "webgpu" here, for the table: the Vulkan ICD when one is forced, else the system's driver. */
function adapterLabel(env) {
  const icd = env.VK_ICD_FILENAMES ?? "";
  if (/swiftshader/i.test(icd)) return "SwiftShader (software adapter: speed means nothing)";
  return icd ? `Vulkan ICD ${icd}` : process.platform === "darwin" ? "Metal" : process.platform === "win32" ? "D3D12" : "system Vulkan driver";
}

/**
 * Runs the workload on each device in a child process. Returns one row per device:
 * { device, adapter, trainStepsPerSec, trainRowsPerSec, scoreRowsPerSec, losses, firstStepSecs, bytesPerStep, maxLossRelToCpu } or { device, error }.
 */
export function benchDevices({ devices = ["cpu", "webgpu", "cuda"], steps = 20, batch = 256, scoreBatch = 1024, model = "esmm", curveEvery = 1 } = {}) {
  const rows = [];
  for (const device of devices) {
    const args = [HERE, "--child", device, "--steps", String(steps), "--batch", String(batch), "--score-batch", String(scoreBatch), "--model", model, "--curve-every", String(curveEvery)];
    const attempt = (env) => {
      try {
        return JSON.parse(execFileSync(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 }).toString().trim().split("\n").pop());
      } catch (err) {
        const out = String(err.stdout ?? "").trim().split("\n").pop();
        try { return JSON.parse(out); } catch { return { device, error: String(err.stderr ?? err.message).split("\n").find((l) => l.trim()) ?? "failed" }; }
      }
    };
    let env = { ...process.env };
    let row = attempt(env);
    const icd = SWIFTSHADER_ICDS.find((f) => existsSync(f));
    if (device === "webgpu" && row.error && !env.VK_ICD_FILENAMES && icd) {
      env = { ...env, VK_ICD_FILENAMES: icd };
      row = attempt(env);
    }
    rows.push({ ...row, device, adapter: device === "webgpu" ? adapterLabel(env) : device === "cuda" ? "CUDA" : "host" });
  }
  const cpu = rows.find((r) => r.device === "cpu" && r.losses);
  for (const r of rows) {
    if (!r.losses || !cpu) continue;
    r.maxLossRelToCpu = Math.max(...r.losses.map((l, i) => Math.abs(l - cpu.losses[i]) / Math.abs(cpu.losses[i])));
  }
  return rows;
}

/** One table, one row per device. */
export function formatDeviceTable(rows) {
  const head = ["device", "adapter", "train steps/s", "train rows/s", "score rows/s", "first step s", "bytes/step", "final loss", "max |loss - cpu| / cpu", "note"];
  const body = rows.map((r) => r.error
    ? [r.device, r.adapter, "-", "-", "-", "-", "-", "-", "-", `unavailable: ${r.error}`]
    : [r.device, r.adapter, r.trainStepsPerSec.toFixed(2), r.trainRowsPerSec.toFixed(0), r.scoreRowsPerSec.toFixed(0), r.firstStepSecs.toFixed(2), String(r.bytesPerStep), r.losses.at(-1).toFixed(6), r.maxLossRelToCpu === undefined ? "-" : r.maxLossRelToCpu.toExponential(2), ""]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((cells) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** The child: one device, one model on the synthetic funnel; prints one JSON line. */
async function child(device, { steps, batch, scoreBatch, model, curveEvery }) {
  const { MODELS } = await import("../dist/src/models/index.js");
  const { toSchemaJson } = await import("../dist/src/features/schema.js");
  const { layoutOf } = await import("../dist/src/features/batch.js");
  const { SynthWorld, synthBatches } = await import("../dist/src/data/synth.js");
  const { stepFeeds } = await import("../dist/src/models/feeds.js");
  const { Trainer, buildTrainingStep, buildInferenceGraph, describeModel, initialState } = await import("../dist/src/train/index.js");
  const { encodeGraph } = await import("../dist/src/onnx/serialize.js");
  const { Session } = await import("../dist/src/runtime/session.js");
  const { isMtlError } = await import("../dist/src/errors.js");
  try {
    const world = new SynthWorld({ seed: 5, users: 5000, items: 2000, bias: 1 });
    const schema = world.schema({ dim: 8 });
    const layout = layoutOf(schema);
    const entry = MODELS[model];
    if (!entry || model === "two-tower") throw new Error(`--model: one of the schema models (${Object.keys(MODELS).filter((m) => m !== "two-tower").join(", ")})`);
    const config = entry.validate({ ...entry.defaults, schema: toSchemaJson(schema) }, "bench");
    const optimizer = { kind: "adam" };
    const state = initialState(describeModel(entry.definition, config), optimizer, { seed: 1 });
    const batches = [...synthBatches({ rows: (steps + 1) * batch, batchSize: batch, schema, seed: 9 }, world)].map((b) => stepFeeds(b, layout));
    const trainer = await Trainer.create(state, { train: buildTrainingStep(entry.definition, config, { optimizer }) }, { device, intraOpThreads: 1 });
    let t = performance.now();
    const losses = [(await trainer.step(batches[0], 1e-3)).loss];
    const firstStepSecs = (performance.now() - t) / 1000; // includes shader compilation on a GPU
    t = performance.now();
    for (let s = 1; s < steps; s++) {
      const r = await trainer.step(batches[s], 1e-3);
      if (s % curveEvery === 0 || s === steps - 1) losses.push(r.loss);
    }
    const trainSecs = (performance.now() - t) / 1000;
    const { fed, fetched } = trainer.lastStepBytes;
    await trainer.release();

    const session = await Session.create(encodeGraph(buildInferenceGraph(entry.definition, config, state)), { device, intraOpThreads: 1 });
    const scoring = [...synthBatches({ rows: scoreBatch, batchSize: scoreBatch, schema, seed: 11 }, world)].map((b) => stepFeeds(b, layout))[0];
    const feeds = {};
    for (const name of session.inputNames) {
      const v = scoring[name];
      feeds[name] = name.startsWith("ids.")
        ? { dtype: "int64", dims: [scoreBatch, v.length / scoreBatch], data: BigInt64Array.from(v, (x) => BigInt(x)) }
        : { dtype: "float32", dims: [scoreBatch, v.length / scoreBatch], data: v };
    }
    await session.run(feeds); // warm-up (shader compilation)
    const runs = 10;
    t = performance.now();
    for (let i = 0; i < runs; i++) await session.run(feeds);
    const scoreSecs = (performance.now() - t) / 1000;
    await session.release();
    process.stdout.write(JSON.stringify({
      device, trainStepsPerSec: (steps - 1) / trainSecs, trainRowsPerSec: ((steps - 1) * batch) / trainSecs, scoreRowsPerSec: (runs * scoreBatch) / scoreSecs,
      firstStepSecs, bytesPerStep: fed + fetched, losses,
    }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ device, error: isMtlError(err) ? err.format() : String(err.message ?? err) }) + "\n");
  }
}

if (process.argv[1] === HERE) {
  const { values } = parseArgs({
    options: {
      child: { type: "string" },
      steps: { type: "string", default: "20" },
      batch: { type: "string", default: "256" },
      "score-batch": { type: "string", default: "1024" },
      model: { type: "string", default: "esmm" },
      devices: { type: "string", default: "cpu,webgpu,cuda" },
      "curve-every": { type: "string", default: "1" },
      json: { type: "boolean", default: false },
    },
  });
  const opts = { steps: Number(values.steps), batch: Number(values.batch), scoreBatch: Number(values["score-batch"]), model: values.model, curveEvery: Number(values["curve-every"]) };
  if (values.child) await child(values.child, opts);
  else {
    const rows = benchDevices({ ...opts, devices: values.devices.split(",") });
    console.log(`${opts.model} on the synthetic funnel: ${opts.steps} Adam steps of ${opts.batch} rows (lr 1e-3), scoring ${opts.scoreBatch} rows x 10 runs, one onnxruntime thread`);
    console.log(values.json ? JSON.stringify(rows, null, 2) : formatDeviceTable(rows));
  }
}
