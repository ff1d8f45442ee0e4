/**
 * Which execution provider runs each node of a model on a device, as onnxruntime decides it when the
 * session loads: read from its verbose log ("Node placements"), which onnxruntime writes to the
 * process's stderr, so a child process loads the model and this side reads what it printed.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MtlError } from "../errors.js";
import type { Graph } from "../graph/ir.js";
import type { Device } from "./session.js";

export interface PlacedNode {
  op: string;
  name: string;
}

export interface Placement {
  device: Device;
  /** Nodes per onnxruntime provider (e.g. WebGpuExecutionProvider, CPUExecutionProvider), copies included. */
  nodeCounts: Record<string, number>;
  /** The nodes the CPU runs while the rest runs on the device (empty on cpu, where all do). */
  cpuNodes: PlacedNode[];
  /** On a device: onnxruntime put every node on the CPU (its log then names none of them). */
  allOnCpu: boolean;
  /** MemcpyToHost / MemcpyFromHost nodes onnxruntime inserted between the two. */
  copies: number;
}

const CPU = "CPUExecutionProvider";

/** Parses the "Node placements" block of onnxruntime's verbose session log. */
export function parsePlacementLog(log: string, device: Device): Placement {
  const nodeCounts: Record<string, number> = {};
  const cpuNodes: PlacedNode[] = [];
  let copies = 0;
  let provider: string | null = null;
  let inBlock = false;
  let allOnCpu = false;
  for (const line of log.split("\n")) {
    if (!line.includes("VerifyEachNodeIsAssignedToAnEp]")) {
      if (inBlock) break;
      continue;
    }
    const text = line.slice(line.indexOf("VerifyEachNodeIsAssignedToAnEp]") + "VerifyEachNodeIsAssignedToAnEp]".length);
    if (/Node placements/.test(text)) {
      inBlock = true;
      continue;
    }
    const header = /placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(text);
    if (header) {
      provider = header[1]!;
      nodeCounts[provider] = Number(header[2]);
      if (/All nodes placed/.test(text) && provider === CPU && device !== "cpu") allOnCpu = true;
      continue;
    }
    const node = /^ {3}(\w+) \((.*)\)\s*$/.exec(text);
    if (node && provider) {
      if (/^Memcpy(To|From)Host$/.test(node[1]!)) copies++;
      else if (provider === CPU && device !== "cpu") cpuNodes.push({ op: node[1]!, name: node[2]! });
    }
  }
  if (Object.keys(nodeCounts).length === 0) {
    throw new MtlError("E_RUN", "onnxruntime's log has no node placements", { hint: "this onnxruntime build may log differently; see docs/gpu.md" });
  }
  return { device, nodeCounts, cpuNodes, allOnCpu, copies };
}

/** Loads the model on `device` in a child process and reports where onnxruntime placed each node. */
export async function measurePlacement(model: string | Uint8Array, device: Device): Promise<Placement> {
  let dir: string | null = null;
  let file: string;
  if (typeof model === "string") file = model;
  else {
    dir = await mkdtemp(join(tmpdir(), "mtl-placement-"));
    file = join(dir, "model.onnx");
    await writeFile(file, model);
  }
  try {
    const child = fileURLToPath(new URL("./placement-child.js", import.meta.url));
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(process.execPath, [child, file, device], { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err && !stdout.trim()) reject(new MtlError("E_RUN", `placement child failed: ${stderr.split("\n").find((l) => l.trim()) ?? err.message}`));
        else resolve({ stdout, stderr });
      });
    });
    const reply = JSON.parse(stdout.trim().split("\n").pop()!) as { ok: true } | { ok: false; code: string; message: string; hint?: string };
    if (!reply.ok) throw new MtlError(reply.code, reply.message, { where: { file: typeof model === "string" ? model : "<model bytes>" }, ...(reply.hint ? { hint: reply.hint } : {}) });
    return parsePlacementLog(stderr, device);
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** `ReduceProd ×2, Cast ×3`: the CPU nodes by op, most first. */
export function formatCpuNodes(p: Placement): string {
  if (p.allOnCpu) return "all of them";
  const nodes = p.cpuNodes;
  const byOp = new Map<string, number>();
  for (const n of nodes) byOp.set(n.op, (byOp.get(n.op) ?? 0) + 1);
  return [...byOp].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([op, n]) => (n > 1 ? `${op} ×${n}` : op)).join(", ") || "none";
}

/**
 * The CPU nodes of a placement that carry more than a scalar or a shape: an output of rank 2 or
 * more, or a float output of rank 1. onnxruntime keeps shape arithmetic and int64 scalars on the CPU
 * by design; anything else there is a node the device cannot run. A node the graph does not name
 * (one onnxruntime made) counts as heavy.
 */
export function heavyCpuNodes(placement: Placement, graph: Graph): PlacedNode[] {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const onCpu = placement.allOnCpu ? graph.nodes.filter((n) => n.opType !== "Constant").map((n) => ({ op: n.opType, name: n.name })) : placement.cpuNodes;
  return onCpu.filter((p) => {
    const node = byName.get(p.name);
    return !node || node.outputs.some((v) => v.rank > 1 || (v.rank === 1 && v.dtype.startsWith("float")));
  });
}

/** Refuses a model that would run anything heavier than shape arithmetic on the CPU beside `device`. */
export async function refuseHeavyCpuNodes(bytes: Uint8Array, graph: Graph, device: Device, source: string): Promise<void> {
  const heavy = heavyCpuNodes(await measurePlacement(bytes, device), graph);
  if (heavy.length === 0) return;
  const list = heavy.slice(0, 8).map((n) => `${n.op} (${n.name})`).join(", ") + (heavy.length > 8 ? `, and ${heavy.length - 8} more` : "");
  throw new MtlError("E_DEVICE", `${heavy.length} node(s) have no ${device} kernel and would run on the CPU: ${list}`, {
    where: { file: source }, hint: "see docs/gpu.md; use --device cpu",
  });
}
