// Runs one training step of an `mtl export --training` directory with plain onnxruntime (no mtl).
//   node docs/examples/one-step.mjs <dir>            (onnxruntime-node; ORT=onnxruntime-web for the wasm binding)
// Prints the loss and writes nothing back; see docs/training-artifacts.md for what each name means.
import { readFileSync } from "node:fs";
const ort = await import(process.env.ORT ?? "onnxruntime-node");
const dir = process.argv[2];
const sig = JSON.parse(readFileSync(`${dir}/signature.json`, "utf8")).train_step;

// 1. The state file: 16-byte prefix, a JSON header, then raw little-endian tensors at header offsets.
const file = readFileSync(`${dir}/state.mtlstate`);
const header = JSON.parse(file.toString("utf8", 16, 16 + file.readUInt32LE(12)));
const state = {};
for (const t of header.tensors) {
  const bytes = file.buffer.slice(file.byteOffset + t.offset, file.byteOffset + t.offset + t.bytes);
  state[t.name] = { dims: t.dims, data: new Float32Array(bytes) };
}

// 2. A batch of 2 examples: global ids [batch, fields * idsPerField] (0 = padding) and labels.
const n = sig.lookups[0].shape[1], batch = 2;
const ids = Int32Array.from({ length: batch * n }, (_, i) => (i * 7) % 50);
const click = Float32Array.of(1, 0), conversion = Float32Array.of(1, 0);  // conversion = click AND buy

// 3. Unique ids -> the rows they touch, and ids as local indices. The state keeps each table row
//    packed with its optimizer slots, [weights | slot 1 | slot 2 ...]; part k goes to input names[k].
const table = sig.tables[0], dim = table.dim, width = state[table.name].dims[1];
const unique = [...new Set(ids)];
const local = Int32Array.from(ids, (id) => unique.indexOf(id));
const names = [`${table.name}__rows`, ...sig.slots.map((s) => `${table.name}__rows__${s}`)];
const feeds = {};
names.forEach((name, k) => {
  const part = new Float32Array(unique.length * dim);
  unique.forEach((id, u) => part.set(state[table.name].data.subarray(id * width + k * dim, id * width + (k + 1) * dim), u * dim));
  feeds[name] = new ort.Tensor("float32", part, [unique.length, dim]);
});

// 4. Feeds: local ids, labels, dense parameters and their slots, step and learning rate.
Object.assign(feeds, {
  [`${sig.lookups[0].input}__local`]: new ort.Tensor("int32", local, [batch, n]),
  click: new ort.Tensor("float32", click, [batch]),
  conversion: new ort.Tensor("float32", conversion, [batch]),
  step: new ort.Tensor("int64", BigInt64Array.of(1n), []),
  lr: new ort.Tensor("float32", Float32Array.of(0.001), []),
});
for (const p of sig.params) {
  for (const name of [p.name, ...sig.slots.map((s) => `${p.name}__${s}`)]) feeds[name] = new ort.Tensor("float32", state[name].data, state[name].dims);
}
for (const s of sig.states) feeds[s.name] = new ort.Tensor("float32", state[s.name].data, state[s.name].dims);

const session = await ort.InferenceSession.create(`${dir}/train_step.onnx`);
const out = await session.run(feeds);
// out[`${name}__new`] for each of `names` holds the updated rows and slots: write row u back into
// table row unique[u] (except row 0 when paddingRow0). out[`<param>__new`] and out[`<param>__<slot>__new`] replace the dense state.
console.log(JSON.stringify({ loss: out.loss.data[0], p_ctr: Array.from(out.p_ctr.data), rowsUpdated: out[`${table.name}__rows__new`].dims }));
