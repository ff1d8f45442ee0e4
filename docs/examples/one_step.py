# Runs one training step of an `mtl export --training` directory with Python's onnxruntime (no mtl),
# for any registered model: every name it feeds comes from signature.json.
#   python3 one_step.py <dir>        (needs: pip install onnxruntime numpy)
# Mirrors docs/examples/one-step.mjs step for step (same batch, same loss).
import json, struct, sys
import numpy as np
import onnxruntime as ort

d = sys.argv[1]
sig = json.load(open(f"{d}/signature.json"))["train_step"]
batch = 2
def dims_of(shape): return [batch if x == "batch" else x for x in shape]

# 1. The state file: a 20-byte prefix (magic, version 3, header length, header CRC-32), a JSON
#    header, then raw little-endian tensors at header offsets. (Versions 1 and 2: a 16-byte prefix.)
raw = open(f"{d}/state.mtlstate", "rb").read()
(version, hlen) = struct.unpack_from("<II", raw, 8)
start = 20 if version >= 3 else 16
header = json.loads(raw[start:start + hlen])
state = {t["name"]: np.frombuffer(raw, np.float32, int(np.prod(t["dims"])), t["offset"]).reshape(t["dims"]).copy()
         for t in header["tensors"]}

# 2. A batch of 2 examples. Each lookup takes global ids [batch, n] into its table (0 = padding).
#    Labels (click, conversion) and dense features are the other batch inputs: the first example
#    clicked and converted (and has 1 in every dense slot), the second did neither (zeros).
feeds = {}
rows_of = {t["name"]: t["rows"] for t in sig["tables"]}
ids = [(np.arange(int(np.prod(dims_of(l["shape"])))) * 7 % min(50, rows_of[l["table"]])).astype(np.int32).reshape(dims_of(l["shape"]))
       for l in sig["lookups"]]
for b in sig["batchInputs"]:
    value = np.zeros(dims_of(b["shape"]), {"float32": np.float32, "int32": np.int32, "int64": np.int64}[b["dtype"]])
    value[0] = 1
    feeds[b["name"]] = value
# Dropout (when the config asks for it): a keep-mask per layer; all true here.
for m in sig["dropouts"]:
    feeds[m["input"]] = np.ones(dims_of(m["shape"]), np.bool_)

# 3. Per table: the unique ids of all its lookups -> the rows the batch touches, and each lookup's
#    ids as local indices into that block. The state keeps each table row packed with its optimizer
#    slots, [weights | slot 1 | slot 2 ...]; part k goes to input names[k].
touched = {}
for table in sig["tables"]:
    mine = [(l, v) for l, v in zip(sig["lookups"], ids) if l["table"] == table["name"]]
    flat = np.concatenate([v.ravel() for _, v in mine])
    unique = list(dict.fromkeys(flat.tolist()))     # first-seen order, as the Node script
    index = {u: k for k, u in enumerate(unique)}
    for l, v in mine:
        feeds[f"{l['input']}__local"] = np.vectorize(index.get)(v).astype(np.int32)
    dim, rows = table["dim"], state[table["name"]][unique]
    names = [f"{table['name']}__rows"] + [f"{table['name']}__rows__{s}" for s in sig["slots"]]
    feeds.update({name: np.ascontiguousarray(rows[:, k * dim:(k + 1) * dim]) for k, name in enumerate(names)})
    touched[table["name"]] = len(unique)

# 4. Dense parameters and their slots, running statistics, step and learning rate.
for p in sig["params"]:
    for name in [p["name"]] + [f"{p['name']}__{s}" for s in sig["slots"]]:
        feeds[name] = state[name]
for s in sig["states"]:
    feeds[s["name"]] = state[s["name"]]
feeds.update({"step": np.array(1, np.int64), "lr": np.array(0.001, np.float32)})

session = ort.InferenceSession(f"{d}/train_step.onnx", providers=["CPUExecutionProvider"])
out = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
# Write back: state[table][unique, k*dim:(k+1)*dim] = out[f"{names[k]}__new"] (skip row 0 when paddingRow0);
# state[p] = out[f"{p}__new"], state[f"{p}__{s}"] = out[f"{p}__{s}__new"].
# The model's first prediction (p_ctr for the funnel models, p_lookalike for MetaHeac).
prediction = sig["predictions"][0]
print(json.dumps({"model": sig["model"], "loss": float(out["loss"]), "prediction": prediction, "p": out[prediction].tolist(), "rowsTouched": touched}))
