/** The ONNX schema and the IR round trip: decode → encode gives identical bytes; builds are deterministic. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Graph, ops, tensor, encodeGraph, decodeModel, graphFromProto, Session, makeTensor, VERSION } from "../src/index.js";
import { encodeModel, onnx } from "../src/onnx/proto.js";

function sampleGraph(): Graph {
  const g = new Graph({ name: "sample" });
  g.metadata.set("mtl.model", "sample");
  g.metadata.set("note", "ünïcødé ✓");
  const ids = g.input("ids", "int64", ["batch", 3]);
  const table = g.initializer("table", tensor("float32", [10, 4], Float32Array.from({ length: 40 }, (_, i) => i / 10)));
  const w = g.initializer("w", tensor("float32", [4, 2], Float32Array.of(0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8)));
  const pooled = ops.ReduceSum(ops.Gather(table, ids), { axes: [1], keepdims: 0 });
  const logits = ops.Gemm(pooled, w, null, {});
  const [a, b] = ops.Split(logits, { axis: 1, split: [1, 1] });
  g.output(ops.Sigmoid(a!), "p_ctr");
  g.output(ops.Mul(ops.Sigmoid(a!), ops.Sigmoid(b!)), "p_ctcvr");
  g.output(ops.Clip(ops.Div(ops.Cast(ops.Shape(ids), { to: "float32" }), 2), 0, 1), "const_like");
  return g;
}

test("building the same graph twice gives byte-identical files", () => {
  assert.deepEqual(encodeGraph(sampleGraph()), encodeGraph(sampleGraph()));
});

test("decode then encode gives identical bytes", () => {
  const bytes = encodeGraph(sampleGraph());
  assert.deepEqual(encodeModel(decodeModel(bytes)), bytes);
});

test("reading a file into the IR and writing it again gives identical bytes, initializers included", () => {
  const bytes = encodeGraph(sampleGraph());
  const g = graphFromProto(decodeModel(bytes));
  assert.deepEqual(encodeGraph(g), bytes);
  const table = g.initializers.find((v) => v.name === "table")!;
  assert.equal(table.dtype, "float32");
  assert.deepEqual(table.shape, [10, 4]);
  assert.equal((table.data!.data as Float32Array)[13], Math.fround(1.3));
  assert.equal(g.metadata.get("note"), "ünïcødé ✓");
  const out = g.outputs.find((v) => v.name === "p_ctr")!;
  assert.deepEqual(out.shape, ["batch", 1]);
});

test("the model records IR version, opset, producer and metadata", () => {
  const m = decodeModel(encodeGraph(sampleGraph()));
  assert.equal(Number(m.irVersion), 8);
  assert.deepEqual(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [["", 17]]);
  assert.equal(m.producerName, "mtl");
  assert.equal(m.producerVersion, VERSION);
  assert.deepEqual(m.metadataProps.map((p) => p.key), ["mtl.model", "note"]);
});

test("a model from another producer round-trips exactly: typed data fields, unknown fields, external data", () => {
  const T = onnx.TensorProto.DataType;
  const model: onnx.ModelProto.$Properties = {
    irVersion: 9,
    producerName: "elsewhere",
    producerVersion: "1.0",
    domain: "ai.example",
    modelVersion: 3,
    docString: "hand-written",
    graph: {
      name: "g",
      node: [{ input: ["x", "w"], output: ["y"], name: "mm", opType: "MatMul", docString: "doc" }],
      initializer: [
        { name: "w", dims: [2, 2], dataType: T.FLOAT, floatData: [1, 2, 3, 4] },
        { name: "k", dims: [3], dataType: T.INT64, int64Data: [-1, 0, 2 ** 40] },
        { name: "e", dims: [2], dataType: T.FLOAT, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: "location", value: "w.bin" }, { key: "offset", value: "0" }, { key: "length", value: "8" }] },
      ],
      input: [{ name: "x", type: { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimParam: "N" }, { dimValue: 2 }] } } } }],
      output: [{ name: "y", type: { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimParam: "N" }, {}] } } } }],
      valueInfo: [],
    },
    opsetImport: [{ domain: "", version: 19 }, { domain: "com.example", version: 1 }],
    metadataProps: [{ key: "k", value: "v" }],
  };
  const base = encodeModel(model);
  // Field 99 (varint 7) appended: a field this schema does not know survives decode → encode.
  const bytes = new Uint8Array([...base, 0x98, 0x06, 0x07]);
  assert.ok(Buffer.from(encodeModel(decodeModel(bytes))).equals(bytes));

  // The IR reads typed fields and external data (relative to the model's directory).
  const dir = mkdtempSync(join(tmpdir(), "mtl-schema-"));
  writeFileSync(join(dir, "w.bin"), Buffer.from(Float32Array.of(5, 6).buffer));
  const g = graphFromProto(decodeModel(bytes), { baseDir: dir });
  const get = (n: string) => Array.from(g.initializers.find((v) => v.name === n)!.data!.data as ArrayLike<number | bigint>, Number);
  assert.deepEqual(get("w"), [1, 2, 3, 4]);
  assert.deepEqual(get("k"), [-1, 0, 2 ** 40]);
  assert.deepEqual(get("e"), [5, 6]);
  assert.throws(() => graphFromProto(decodeModel(bytes)), /external file 'w\.bin'/);
});

test("a file written by mtl loads in onnxruntime from its path", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mtl-schema-"));
  const path = join(dir, "m.onnx");
  writeFileSync(path, encodeGraph(sampleGraph()));
  const s = await Session.create(path);
  const out = await s.run({ ids: makeTensor(BigInt64Array.of(1n, 2n, 3n), [1, 3]) });
  assert.deepEqual(out.p_ctr!.dims, [1, 1]);
  assert.deepEqual([...out.const_like!.data], [0.5, 1]);
  assert.equal(readFileSync(path).byteLength > 0, true);
});
