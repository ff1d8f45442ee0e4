/**
 * A small layer over onnxruntime-node: sessions from bytes or a path, typed feeds and fetches,
 * thread and optimisation options, and the device: `cpu`, `webgpu` (onnxruntime-node's bundled WebGPU
 * provider: Dawn over Vulkan, Metal or D3D12) or `cuda` (where onnxruntime's CUDA provider is
 * installed). Models never touch this; the trainer and the server do. See docs/gpu.md.
 */
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
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
  /** Threads across independent ops (default 1; ops run sequentially). */
  interOpThreads?: number;
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
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
export function webgpuBundled(): boolean {
  return ort.listSupportedBackends().some((b) => b.name === "webgpu" && b.bundled);
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
    if (device === "webgpu" && !webgpuBundled()) {
      throw new MtlError("E_DEVICE", `onnxruntime-node has no WebGPU provider on ${process.platform}-${process.arch}`, { hint: "its prebuilt binaries carry WebGPU on Linux x64, macOS and Windows; use --device cpu" });
    }
    const options: ort.InferenceSession.SessionOptions = {
      // The device alone, never "cpu" after it: onnxruntime adds its CPU provider itself for nodes the
      // device lacks, which on webgpu disable_cpu_ep_fallback turns into a load error (see cpuFallback).
      executionProviders: [device],
      graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
      // Fatal only: every error comes back as an exception, which mtl turns into one line of its own.
      logSeverityLevel: opts.verboseLog ? 0 : 4,
      ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
      ...(opts.interOpThreads ? { interOpNumThreads: opts.interOpThreads } : {}),
      ...(device === "webgpu" && !opts.cpuFallback ? { extra: { session: { disable_cpu_ep_fallback: "1" } } } : {}),
    };
    try {
      const inner = typeof model === "string"
        ? await ort.InferenceSession.create(model, options)
        : await ort.InferenceSession.create(model, options);
      return new Session(inner, device, source);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (device === "cuda" && /cuda|providers_shared/i.test(why)) {
        throw new MtlError("E_DEVICE", `the CUDA execution provider failed to load: ${firstLine(why)}`, { hint: CUDA_HINT, cause: err });
      }
      if (device === "webgpu" && /WebGPU adapter|adapter_result|webgpu_context/i.test(why)) {
        throw new MtlError("E_DEVICE", "no WebGPU adapter: onnxruntime's WebGPU provider found no usable GPU driver", { hint: WEBGPU_HINT, cause: err });
      }
      if (/fallback to CPU EP has been explicitly disabled/.test(why)) {
        throw new MtlError("E_DEVICE", `some nodes of the model have no ${device} kernel and would run on the CPU`, {
          where: { file: source }, hint: `\`mtl inspect --device ${device} <model>\` lists them; use --device cpu`, cause: err,
        });
      }
      throw new MtlError("E_MODEL", `onnxruntime cannot load the model: ${firstLine(why)}`, { where: { file: source }, cause: err });
    }
  }

  /**
   * Runs the model. Every graph input must be fed; `opts.fetches` picks outputs (default: all).
   * Returns tensors that own their data (copied out of onnxruntime's buffers only when needed).
   * On this thread nothing moves: the `transfer` buffers go straight back through `onInputs`.
   */
  async run(feeds: Readonly<Record<string, Tensor>>, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    const fetches = opts.fetches ?? this.outputNames;
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
      throw new MtlError("E_RUN", `onnxruntime failed to run the model: ${firstLine(why)}`, { where: { file: this.source }, cause: err });
    }
    const out: Record<string, Tensor> = {};
    for (const name of fetches) {
      const t = result[name]!;
      out[name] = { dtype: t.type as DType, dims: [...t.dims], data: t.data as TypedArray };
    }
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
  return new ort.Tensor(t.dtype, t.data as never, [...t.dims]);
}

function firstLine(s: string): string {
  // onnxruntime messages carry ANSI colours and multi-line context; one line is what users need.
  const clean = s.replace(/\u001b\[[0-9;]*m/g, "");
  return clean.split("\n").find((l) => l.trim()) ?? clean;
}
