/**
 * WebGPU for the tests: onnxruntime-node's WebGPU provider on whatever Vulkan driver is set, or on
 * SwiftShader, the software Vulkan driver Debian's chromium package ships (.ci/run installs it with
 * libvulkan1), so the GPU code paths run on a machine without a GPU. Says why when neither works.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Graph } from "../../src/graph/ir.js";
import * as ops from "../../src/graph/ops.js";
import { encodeGraph } from "../../src/onnx/serialize.js";
import { isMtlError } from "../../src/errors.js";
import { Session } from "../../src/runtime/session.js";

export const SWIFTSHADER_ICDS = ["/usr/lib/chromium/vk_swiftshader_icd.json", "/usr/lib64/chromium/vk_swiftshader_icd.json"];

/**
 * Points Vulkan at SwiftShader unless VK_ICD_FILENAMES is set already (MTL_TEST_VULKAN=system keeps
 * the machine's own drivers, for a run on a real GPU), then loads a one-node model on webgpu.
 * Resolves to false when WebGPU runs, else to the reason for skipping.
 */
export async function webgpuSkip(): Promise<string | false> {
  if (!process.env["VK_ICD_FILENAMES"] && process.env["MTL_TEST_VULKAN"] !== "system") {
    const icd = SWIFTSHADER_ICDS.find((f) => existsSync(f));
    if (!icd) return `no Vulkan driver for WebGPU: SwiftShader's ICD is not at ${SWIFTSHADER_ICDS[0]} (apt-get install chromium libvulkan1; or set VK_ICD_FILENAMES)`;
    process.env["VK_ICD_FILENAMES"] = icd;
  }
  // Dawn's window-system probe prints "error: XDG_RUNTIME_DIR is invalid" on a headless machine; a
  // private runtime directory keeps that noise out of the test output.
  process.env["XDG_RUNTIME_DIR"] ??= mkdtempSync(join(tmpdir(), "mtl-xdg-"));
  const g = new Graph();
  g.output(ops.Relu(g.input("x", "float32", [2])), "y");
  try {
    const s = await Session.create(encodeGraph(g), { device: "webgpu" });
    await s.release();
    return false;
  } catch (err) {
    if (isMtlError(err) && err.code === "E_DEVICE") return `WebGPU unavailable (VK_ICD_FILENAMES=${process.env["VK_ICD_FILENAMES"] ?? "unset"}): ${err.message}; install libvulkan1 and chromium (SwiftShader)`;
    throw err;
  }
}

/** Whether the adapter in use is SwiftShader (a software rasteriser: its speed means nothing). */
export function softwareAdapter(): boolean {
  return /swiftshader/i.test(process.env["VK_ICD_FILENAMES"] ?? "");
}
