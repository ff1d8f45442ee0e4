// Runs one training step of an `mtl export --training` directory with plain onnxruntime (no mtl),
// for any registered model: every name it feeds comes from signature.json.
//   node docs/examples/one-step.mjs <dir>            (onnxruntime-node; ORT=onnxruntime-web for the wasm binding)
// Prints the loss and writes nothing back; see docs/training-artifacts.md for what each name means.
import { readFileSync } from "node:fs";
const ort = await import(process.env.ORT ?? "onnxruntime-node");
const dir = process.argv[2];
const sig = JSON.parse(readFileSync(`${dir}/signature.json`, "utf8")).train_step;
const batch = 2;
const dimsOf = (shape) => shape.map((d) => (d === "batch" ? batch : d));
const sizeOf = (dims) => dims.reduce((a, b) => a * b, 1);

// 1. The state file: a 20-byte prefix (magic, version 3, header length, header CRC-32), a JSON
//    header, then raw little-endian tensors at header offsets. (Versions 1 and 2: a 16-byte prefix.)
const file = readFileSync(`${dir}/state.mtlstate`);
const start = file.readUInt32LE(8) >= 3 ? 20 : 16;
const header = JSON.parse(file.toString("utf8", start, start + file.readUInt32LE(12)));
const state = {};
for (const t of header.tensors) {
  const bytes = file.buffer.slice(file.byteOffset + t.offset, file.byteOffset + t.offset + t.bytes);
  state[t.name] = { dims: t.dims, data: new Float32Array(bytes) };
}

// 2. A batch of 2 examples. Each lookup takes global ids [batch, n] into its table (0 = padding).
//    Labels (click, conversion) and dense features are the other batch inputs: the first example
//    clicked and converted (and has 1 in every dense slot), the second did neither (zeros).
const feeds = {};
const ids = sig.lookups.map((l) => {
  const rows = sig.tables.find((t) => t.name === l.table).rows;
  return Int32Array.from({ length: sizeOf(dimsOf(l.shape)) }, (_, i) => (i * 7) % Math.min(50, rows));
});
for (const b of sig.batchInputs) {
  const dims = dimsOf(b.shape), perExample = sizeOf(dims) / batch;
  const values = Array.from({ length: sizeOf(dims) }, (_, i) => (i < perExample ? 1 : 0));
  feeds[b.name] = b.dtype === "int64" ? new ort.Tensor("int64", BigInt64Array.from(values, BigInt), dims)
    : new ort.Tensor(b.dtype, b.dtype === "int32" ? Int32Array.from(values) : Float32Array.from(values), dims);
}
// Dropout (when the config asks for it): a keep-mask per layer; all true here.
for (const d of sig.dropouts) feeds[d.input] = new ort.Tensor("bool", new Uint8Array(sizeOf(dimsOf(d.shape))).fill(1), dimsOf(d.shape));

// 3. Per table: the unique ids of all its lookups -> the rows the batch touches, and each lookup's
//    ids as local indices into that block. The state keeps each table row packed with its optimizer
//    slots, [weights | slot 1 | slot 2 ...]; part k goes to input names[k].
const touched = {};
for (const table of sig.tables) {
  const mine = sig.lookups.map((l, j) => [l, ids[j]]).filter(([l]) => l.table === table.name);
  const unique = [...new Set(mine.flatMap(([, v]) => [...v]))];
  const index = new Map(unique.map((id, u) => [id, u]));
  for (const [l, v] of mine) feeds[`${l.input}__local`] = new ort.Tensor("int32", Int32Array.from(v, (id) => index.get(id)), dimsOf(l.shape));
  const dim = table.dim, width = state[table.name].dims[1];
  const names = [`${table.name}__rows`, ...sig.slots.map((s) => `${table.name}__rows__${s}`)];
  names.forEach((name, k) => {
    const part = new Float32Array(unique.length * dim);
    unique.forEach((id, u) => part.set(state[table.name].data.subarray(id * width + k * dim, id * width + (k + 1) * dim), u * dim));
    feeds[name] = new ort.Tensor("float32", part, [unique.length, dim]);
  });
  touched[table.name] = unique.length;
}

// 4. Dense parameters and their slots, running statistics, step and learning rate.
for (const p of sig.params) {
  for (const name of [p.name, ...sig.slots.map((s) => `${p.name}__${s}`)]) feeds[name] = new ort.Tensor("float32", state[name].data, state[name].dims);
}
for (const s of sig.states) feeds[s.name] = new ort.Tensor("float32", state[s.name].data, state[s.name].dims);
feeds.step = new ort.Tensor("int64", BigInt64Array.of(1n), []);
feeds.lr = new ort.Tensor("float32", Float32Array.of(0.001), []);

const session = await ort.InferenceSession.create(`${dir}/train_step.onnx`);
const out = await session.run(feeds);
// out[`${name}__new`] for each of `names` holds the updated rows and slots: write row u back into
// table row unique[u] (except row 0 when paddingRow0). out[`<param>__new`] and out[`<param>__<slot>__new`] replace the dense state.
// The model's first prediction (p_ctr for the funnel models, p_lookalike for MetaHeac).
const prediction = sig.predictions[0];
console.log(JSON.stringify({ model: sig.model, loss: out.loss.data[0], prediction, p: Array.from(out[prediction].data), rowsTouched: touched }));
