/**
 * onnxruntime-web, imported on demand: the plain wasm build (`onnxruntime-web/wasm`) unless WebGPU is
 * asked for (`onnxruntime-web/webgpu`), each once. Bundlers make each build its own chunk, so a page
 * that only scores or adapts on wasm never downloads the WebGPU build.
 */
import type * as ort from "onnxruntime-web";

export type WebDevice = "wasm" | "webgpu";
export type OrtWeb = typeof ort;

const builds: Partial<Record<WebDevice, Promise<OrtWeb>>> = {};

export function ortBuild(device: WebDevice): Promise<OrtWeb> {
  return (builds[device] ??= device === "webgpu" ? import("onnxruntime-web/webgpu") : import("onnxruntime-web/wasm"));
}
