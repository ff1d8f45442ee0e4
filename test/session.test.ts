/** The session layer: feeds are checked by name, dtype and size; devices fail clearly. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Graph, ops, encodeGraph, Session, makeTensor, MtlError, cudaInstalled, VERSION } from "../src/index.js";

const model = () => {
  const g = new Graph();
  g.output(ops.Relu(g.input("x", "float32", ["batch", 2])), "y");
  return encodeGraph(g);
};

const code = (c: string) => (e: unknown) => e instanceof MtlError && e.code === c;

test("runs with thread and optimisation options", async () => {
  const s = await Session.create(model(), { intraOpThreads: 1, interOpThreads: 1, graphOptimizationLevel: "basic" });
  const out = await s.run({ x: makeTensor(Float32Array.of(-1, 2), [1, 2]) });
  assert.deepEqual([...out.y!.data], [0, 2]);
  assert.deepEqual(s.inputNames, ["x"]);
});

test("a missing, unknown or mistyped feed is an MtlError naming the input", async () => {
  const s = await Session.create(model());
  await assert.rejects(s.run({}), /missing input 'x'/);
  await assert.rejects(s.run({ x: makeTensor(new Float32Array(2), [1, 2]), z: makeTensor(new Float32Array(1), [1]) }), /no input 'z'/);
  await assert.rejects(s.run({ x: makeTensor(new Float32Array(3), [1, 2]) }), /\(2 elements\) but 3 values/);
  await assert.rejects(s.run({ x: { dtype: "float32", dims: [1, 2], data: new Float64Array(2) } }), /float32 but its data is a Float64Array/);
  await assert.rejects(s.run({ x: makeTensor(new Float32Array(2), [1, 2]) }, { fetches: ["nope"] }), /no output 'nope'/);
  await assert.rejects(s.run({ x: makeTensor(new Float32Array(3), [1, 3]) }), code("E_RUN"));
});

test("bytes that onnxruntime refuses give E_MODEL naming the source", async () => {
  await assert.rejects(Session.create(new Uint8Array([8, 1]), { source: "x.onnx" }), (e: unknown) => code("E_MODEL")(e) && /x\.onnx/.test((e as MtlError).format()));
});

test("device cuda without the provider installed says how to install it", { skip: cudaInstalled() ? "the CUDA provider is installed here" : false }, async () => {
  await assert.rejects(Session.create(model(), { device: "cuda" }), (e: unknown) => {
    assert.ok(code("E_DEVICE")(e));
    assert.match((e as MtlError).hint ?? "", /ONNXRUNTIME_NODE_INSTALL=cuda12/);
    return true;
  });
});

test("VERSION matches package.json", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  assert.equal(VERSION, pkg.version);
});

// ---------------------------------------------------------------- one ModelSession interface, two threads
for (const worker of [false, true]) {
  test(`openSession (${worker ? "worker thread" : "this thread"}): the same ModelSession contract, fetches, transfer and errors`, async () => {
    const { openSession } = await import("../src/runtime/model-session.js");
    const { WorkerSession } = await import("../src/runtime/worker-session.js");
    const s = await openSession(model(), { worker, intraOpThreads: 1 });
    try {
      assert.equal(s instanceof WorkerSession, worker, "openSession chose the thread asked for");
      assert.deepEqual(s.inputNames, ["x"]);
      const x = makeTensor(Float32Array.of(1, -2), [1, 2]);
      const all = await s.run({ x });
      assert.deepEqual(Object.keys(all).sort(), [...s.outputNames].sort());
      const want = all[s.outputNames[0]!]!;
      const data = Float32Array.of(1, -2);
      let back: ArrayBuffer[] = [];
      const one = await s.run({ x: makeTensor(data, [1, 2]) }, { fetches: [s.outputNames[0]!], transfer: [data.buffer], onInputs: (b) => (back = b) });
      assert.deepEqual(Object.keys(one), [s.outputNames[0]]);
      assert.deepEqual(Array.from(one[s.outputNames[0]!]!.data as Float32Array), Array.from(want.data as Float32Array));
      assert.equal(back.length, 1, "the transferred feed buffer comes back for reuse");
      assert.equal(back[0]!.byteLength, 8);
      await assert.rejects(s.run({}), (e: unknown) => e instanceof MtlError && e.code === "E_FEED" && /missing input 'x'/.test(e.message));
      await assert.rejects(s.run({ x }, { fetches: ["nope"] }), (e: unknown) => e instanceof MtlError && /no output 'nope'/.test(e.message));
    } finally {
      await s.release();
    }
  });
}
