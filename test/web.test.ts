/** The same builder-made file runs in onnxruntime-web's wasm backend (under Node) with the same result. */
import { test } from "node:test";
import * as ortWeb from "onnxruntime-web";
import { Graph, ops, tensor, encodeGraph, Session, makeTensor } from "../src/index.js";
import { assertClose } from "./helpers/run.js";
import { rng, uniform, ints } from "./helpers/rng.js";

test("a two-tower scoring graph gives the same scores in onnxruntime-node and onnxruntime-web (wasm)", async () => {
  const r = rng(5);
  const g = new Graph({ name: "parity" });
  const ids = g.input("ids", "int64", ["batch", 6]);
  const table = g.initializer("table", tensor("float32", [50, 8], Float32Array.from(uniform(400, -0.5, 0.5, r))));
  const w1 = g.initializer("w1", tensor("float32", [16, 8], Float32Array.from(uniform(128, -0.5, 0.5, r))));
  const b1 = g.initializer("b1", tensor("float32", [8], Float32Array.from(uniform(8, -0.1, 0.1, r))));
  const w2 = g.initializer("w2", tensor("float32", [8, 2], Float32Array.from(uniform(16, -0.5, 0.5, r))));
  const emb = ops.Reshape(ops.ReduceSum(ops.Reshape(ops.Gather(table, ids), [0, 2, 3, 8]), { axes: [2], keepdims: 0 }), [0, 16]);
  const logits = ops.Gemm(ops.Relu(ops.Gemm(emb, w1, b1)), w2);
  const p = ops.Sigmoid(logits);
  const [ctr, cvr] = ops.Split(p, { axis: 1, split: [1, 1] });
  g.output(ctr!, "p_ctr");
  g.output(ops.Mul(ctr!, cvr!), "p_ctcvr");
  const bytes = encodeGraph(g);

  const batch = 33;
  const idData = BigInt64Array.from(ints(batch * 6, 0, 50, r), (v) => BigInt(v));
  const node = await Session.create(bytes);
  const fromNode = await node.run({ ids: makeTensor(idData, [batch, 6]) });

  ortWeb.env.wasm.numThreads = 1;
  const web = await ortWeb.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const fromWeb = await web.run({ ids: new ortWeb.Tensor("int64", idData, [batch, 6]) });
  for (const name of ["p_ctr", "p_ctcvr"]) {
    const expected = { shape: [...fromNode[name]!.dims], data: Array.from(fromNode[name]!.data as Float32Array) };
    assertClose({ dtype: "float32", dims: fromWeb[name]!.dims, data: fromWeb[name]!.data as Float32Array }, expected, 1e-6, 1e-7);
  }
  await web.release();
});
