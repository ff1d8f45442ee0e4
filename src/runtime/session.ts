/**
 * A small layer over onnxruntime-node: sessions from bytes or a path, typed feeds and fetches,
 * thread and optimisation options, and the device: `cpu`, `webgpu` (onnxruntime-node's bundled WebGPU
 * provider: Dawn over Vulkan, Metal or D3D12) or `cuda` (where onnxruntime's CUDA provider is
 * installed). Models never touch this; the trainer and the server do. See docs/gpu.md.
 */
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type * as ort from "onnxruntime-node";
import { refreshRows, stageRows, sumLookupGrads, writeBackRows, type TableRows } from "./rows.js";
import { MtlError } from "../errors.js";
import { type DType, type TypedArray, dtypeOfArray } from "../graph/dtype.js";
import type { ModelSession, RunOptions } from "./model-session.js";

export const DEVICES = ["cpu", "webgpu", "cuda"] as const;
export type Device = (typeof DEVICES)[number];

/** A device name from a flag or a config; anything else is an MtlError naming `field`. */
export function parseDevice(name: string, field = "device"): Device {
  if ((DEVICES as readonly string[]).includes(name)) return name as Device;
  throw new MtlError("E_DEVICE", `unknown device '${name}'`, { where: { field }, hint: `use ${DEVICES.join(", ")}` });
}

export interface SessionOptions {
  device?: Device;
  /**
   * On webgpu: let onnxruntime run nodes the device has no kernel for on the CPU (default false: the
   * session refuses to load instead, so nothing falls back silently). mtl's training step needs it for
   * its int64 scalars (the step count's Cast, a batch size), which onnxruntime keeps on the CPU;
   * test/gpu.test.ts pins that nothing else of any model's step lands there.
   */
  cpuFallback?: boolean;
  /** Threads inside one op (default: onnxruntime's choice, one per core). */
  intraOpThreads?: number;
  /**
   * Whether the intra-op (and inter-op) threads spin while they wait for work (onnxruntime's default,
   * true). Off (`session.intra_op.allow_spinning = 0`), they sleep: slower to wake, but they burn no core that
   * the caller's thread or other processes need.
   */
  spinning?: boolean;
  /** Threads across independent ops (default 1; ops run sequentially). */
  interOpThreads?: number;
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /** Sequential (default) or parallel execution of independent nodes (with `interOpThreads`). */
  executionMode?: "sequential" | "parallel";
  /** onnxruntime's own profiler: per-node times written as JSON to `<profile>_<date>.json` when the session is released. */
  profile?: string;
  /** Names the model in errors. */
  source?: string;
  /** onnxruntime's verbose log on stderr (src/runtime/placement.ts reads its node placements). */
  verboseLog?: boolean;
}

/** A tensor crossing the boundary: dtype, dims and a typed array in row-major order. */
export interface Tensor {
  dtype: DType;
  dims: readonly number[];
  data: TypedArray;
}

/** A tensor from a typed array; the dtype follows the array (pass "bool" for a Uint8Array of booleans). */
export function makeTensor(data: TypedArray, dims: readonly number[], dtype: DType = dtypeOfArray(data)): Tensor {
  return { dtype, dims, data };
}

export const WEBGPU_HINT =
  "WebGPU needs a GPU driver: Vulkan on Linux (the GPU vendor's Vulkan driver, or mesa-vulkan-drivers, with libvulkan1), Metal on macOS, D3D12 on Windows; see docs/gpu.md, or use --device cpu";
/**
 * onnxruntime-node is an optional dependency (a browser-only user, or an npm whose install step
 * could not finish, goes without it), so it is loaded on first use: everything that does not run
 * a model (help, export, inspect, data) works without it, and a missing one is one clear error.
 */
let ortModule: typeof ort | null = null;
async function loadOnnxruntime(): Promise<typeof ort> {
  if (ortModule) return ortModule;
  try {
    ortModule = await import("onnxruntime-node");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw err;
    throw new MtlError("E_RUNTIME", "onnxruntime-node is not installed (an optional dependency of mtl-onnx, needed to run models in Node)", {
      hint: "npm install onnxruntime-node@1.30.0 (where its install step cannot reach NuGet: ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0)",
      cause: err,
    });
  }
  return ortModule;
}

export const CUDA_HINT =
  "install onnxruntime's CUDA provider: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --foreground-scripts (needs CUDA 12 and cuDNN 9), or use --device cpu";

/** Whether onnxruntime-node's CUDA provider library is present beside its binding. */
export function cudaInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(dirname(require.resolve("onnxruntime-node")));
    const binDir = join(root, "bin");
    const stack = [binDir];
    while (stack.length) {
      const dir = stack.pop()!;
      if (!existsSync(dir)) continue;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) stack.push(join(dir, e.name));
        else if (/onnxruntime_providers_cuda\.(so|dll)$/.test(e.name)) return true;
      }
    }
  } catch {
    return false;
  }
  return false;
}

/** Whether this platform's onnxruntime-node build carries the WebGPU provider (not Linux arm64 in 1.30). */
export async function webgpuBundled(): Promise<boolean> {
  return (await loadOnnxruntime()).listSupportedBackends().some((b) => b.name === "webgpu" && b.bundled);
}

/** A session on this thread (see ModelSession; openSession picks this or a WorkerSession). */
export class Session implements ModelSession {
  private constructor(
    private readonly inner: ort.InferenceSession,
    readonly device: Device,
    readonly source: string,
  ) {}

  get inputNames(): readonly string[] {
    return this.inner.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.inner.outputNames;
  }

  static async create(model: Uint8Array | string, opts: SessionOptions = {}): Promise<Session> {
    const device = opts.device ?? "cpu";
    const source = opts.source ?? (typeof model === "string" ? model : "<model bytes>");
    parseDevice(device);
    if (device === "cuda" && !cudaInstalled()) {
      throw new MtlError("E_DEVICE", "the CUDA execution provider is not installed in onnxruntime-node", { hint: CUDA_HINT });
    }
    if (device === "webgpu" && !(await webgpuBundled())) {
      throw new MtlError("E_DEVICE", `onnxruntime-node has no WebGPU provider on ${process.platform}-${process.arch}`, { hint: "its prebuilt binaries carry WebGPU on Linux x64, macOS and Windows; use --device cpu" });
    }
    // Session config entries (onnxruntime flattens `extra` into dotted keys).
    const config: Record<string, string | Record<string, string>> = {};
    if (device === "webgpu" && !opts.cpuFallback) config["disable_cpu_ep_fallback"] = "1";
    if (opts.spinning !== undefined) {
      config["intra_op"] = { allow_spinning: opts.spinning ? "1" : "0" };
      config["inter_op"] = { allow_spinning: opts.spinning ? "1" : "0" }; // the parallel executor's threads
    }
    const options: ort.InferenceSession.SessionOptions = {
      // The device alone, never "cpu" after it: onnxruntime adds its CPU provider itself for nodes the
      // device lacks, which on webgpu disable_cpu_ep_fallback turns into a load error (see cpuFallback).
      executionProviders: [device],
      graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
      // Verbose for the placement child (src/runtime/placement.ts reads the node placements).
      logSeverityLevel: opts.verboseLog ? 0 : onnxruntimeLogSeverity(),
      ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
      ...(opts.interOpThreads ? { interOpNumThreads: opts.interOpThreads } : {}),
      ...(opts.executionMode ? { executionMode: opts.executionMode } : {}),
      ...(opts.profile ? { enableProfiling: true, profileFilePrefix: opts.profile } : {}),
      ...(Object.keys(config).length ? { extra: { session: config } } : {}),
    };
    const runtime = await loadOnnxruntime();
    runtime.env.logLevel = opts.verboseLog ? "verbose" : onnxruntimeLogSeverity() === 4 ? "fatal" : "warning";
    try {
      const inner = typeof model === "string"
        ? await runtime.InferenceSession.create(model, options)
        : await runtime.InferenceSession.create(model, options);
      return new Session(inner, device, source);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (device === "cuda" && /cuda|providers_shared/i.test(why)) {
        throw new MtlError("E_DEVICE", `the CUDA execution provider failed to load: ${onnxruntimeMessage(why)}`, { hint: CUDA_HINT, cause: err });
      }
      if (device === "webgpu" && /WebGPU adapter|adapter_result|webgpu_context/i.test(why)) {
        throw new MtlError("E_DEVICE", "no WebGPU adapter: onnxruntime's WebGPU provider found no usable GPU driver", { hint: WEBGPU_HINT, cause: err });
      }
      if (/fallback to CPU EP has been explicitly disabled/.test(why)) {
        throw new MtlError("E_DEVICE", `some nodes of the model have no ${device} kernel and would run on the CPU`, {
          where: { file: source }, hint: `\`mtl inspect --device ${device} <model>\` lists them; use --device cpu`, cause: err,
        });
      }
      throw new MtlError("E_MODEL", `onnxruntime cannot load the model: ${onnxruntimeMessage(why)}`, { where: { file: source }, cause: err });
    }
  }

  /**
   * Runs the model. Every graph input must be fed; `opts.fetches` picks outputs (default: all).
   * Returns tensors that own their data (copied out of onnxruntime's buffers only when needed).
   * On this thread nothing moves: the `transfer` buffers go straight back through `onInputs`.
   * `opts.rows`: table rows refreshed into the feeds before the run and written back after it (rows.ts).
   * `deferWriteBack`: the rows are staged (their `share`) but not written back: the caller (the session
   * worker, after it replied) calls `writeBackRows` itself.
   */
  async run(feeds: Readonly<Record<string, Tensor>>, opts: RunOptions & { deferWriteBack?: boolean } = {}): Promise<Record<string, Tensor>> {
    const fetches = opts.fetches ?? this.outputNames;
    const rows = opts.rows ?? [];
    refreshRows(rows, feeds);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const t = feeds[name];
      if (!t) {
        throw new MtlError("E_FEED", `missing input '${name}'`, { where: { file: this.source, field: name }, hint: `the model takes ${this.inputNames.join(", ")}` });
      }
      ortFeeds[name] = toOrt(t, name, this.source);
    }
    for (const name of Object.keys(feeds)) {
      if (!this.inputNames.includes(name)) {
        throw new MtlError("E_FEED", `the model has no input '${name}'`, { where: { file: this.source, field: name }, hint: `inputs are ${this.inputNames.join(", ")}` });
      }
    }
    for (const name of fetches) {
      if (!this.outputNames.includes(name)) {
        throw new MtlError("E_FEED", `the model has no output '${name}'`, { where: { file: this.source, field: name }, hint: `outputs are ${this.outputNames.join(", ")}` });
      }
    }
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.inner.run(ortFeeds, [...fetches]);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new MtlError("E_RUN", `onnxruntime failed to run the model: ${onnxruntimeMessage(why)}`, { where: { file: this.source }, cause: err });
    }
    const out: Record<string, Tensor> = {};
    for (const name of fetches) {
      const t = result[name]!;
      out[name] = { dtype: t.type as DType, dims: [...t.dims], data: t.data as TypedArray };
    }
    sumLookupGrads(rows, feeds, out);
    stageRows(rows, out);
    if (!opts.deferWriteBack) writeBackRows(rows, out);
    opts.onInputs?.([...(opts.transfer ?? [])]);
    return out;
  }

  async release(): Promise<void> {
    await this.inner.release();
  }
}

function toOrt(t: Tensor, name: string, source: string): ort.Tensor {
  const expected = t.dtype === "bool" ? "uint8" : t.dtype;
  if (dtypeOfArray(t.data) !== expected) {
    throw new MtlError("E_FEED", `input '${name}' is ${t.dtype} but its data is a ${t.data.constructor.name}`, { where: { file: source, field: name } });
  }
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) {
    throw new MtlError("E_FEED", `input '${name}' has dims [${t.dims.join(", ")}] (${n} elements) but ${t.data.length} values`, { where: { file: source, field: name } });
  }
  // Session.create loaded the module before any session could run.
  return new ortModule!.Tensor(t.dtype, t.data as never, [...t.dims]);
}

/**
 * onnxruntime's own voice, kept out of mtl's output unless asked for (MTL_VERBOSE=1, which
 * `mtl --verbose` sets): its log lines are silenced (severity fatal only; warnings and errors reach
 * the user as mtl errors instead), and its error text is translated to one line.
 */
export function onnxruntimeLogSeverity(): 0 | 1 | 2 | 3 | 4 {
  return process.env["MTL_VERBOSE"] === "1" ? 2 : 4;
}

/**
 * One line of an onnxruntime error for users: ANSI colours, the `[ONNXRuntimeError] : 2 :
 * INVALID_ARGUMENT :` prefix and the source locations of onnxruntime's C++ (`/onnxruntime_src/...
 * file.cc:123 fn`) removed. The raw text stays the MtlError's cause (printed under --verbose).
 */
export function onnxruntimeMessage(raw: string): string {
  const clean = raw.replace(/\u001b\[[0-9;]*m/g, "");
  const line = clean.split("\n").find((l) => l.trim()) ?? clean;
  const text = line
    .replace(/\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*[A-Z_]+\s*:\s*/g, "")
    .replace(/\s*\S*(onnxruntime_src|onnxruntime\/core|\.cc|\.h):\d+\S*(\s+\S+\(\S*\))?/g, "")
    .replace(/\s+/g, " ")
    .trim();
  return text.length > 300 ? `${text.slice(0, 297)}...` : text || "unknown error";
}

