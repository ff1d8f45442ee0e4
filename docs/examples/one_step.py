# Runs one training step of an `mtl export --training` directory with Python's onnxruntime (no mtl).
#   python3 one_step.py <dir>        (needs: pip install onnxruntime numpy)
# Mirrors docs/examples/one-step.mjs line for line.
import json, struct, sys
import numpy as np
import onnxruntime as ort

d = sys.argv[1]
sig = json.load(open(f"{d}/signature.json"))["train_step"]

# 1. The state file: 16-byte prefix, a JSON header, then raw little-endian tensors at header offsets.
raw = open(f"{d}/state.mtlstate", "rb").read()
(hlen,) = struct.unpack_from("<I", raw, 12)
header = json.loads(raw[16:16 + hlen])
state = {t["name"]: np.frombuffer(raw, np.float32, int(np.prod(t["dims"])), t["offset"]).reshape(t["dims"]).copy()
         for t in header["tensors"]}

# 2. A batch of 2 examples: global ids [batch, fields * idsPerField] (0 = padding) and labels.
n, batch = sig["lookups"][0]["shape"][1], 2
ids = (np.arange(batch * n) * 7 % 50).astype(np.int32).reshape(batch, n)
click, conversion = np.array([1, 0], np.float32), np.array([1, 0], np.float32)  # conversion = click AND buy

# 3. Unique ids -> the rows they touch, and ids as local indices. The state keeps each table row
#    packed with its optimizer slots, [weights | slot 1 | slot 2 ...]; part k goes to input names[k].
table, dim = sig["tables"][0]["name"], sig["tables"][0]["dim"]
unique, local = np.unique(ids, return_inverse=True)
rows = state[table][unique]
names = [f"{table}__rows"] + [f"{table}__rows__{s}" for s in sig["slots"]]
feeds = {name: np.ascontiguousarray(rows[:, k * dim:(k + 1) * dim]) for k, name in enumerate(names)}

# 4. Feeds: local ids, labels, dense parameters and their slots, step and learning rate.
feeds.update({f"{sig['lookups'][0]['input']}__local": local.reshape(batch, n).astype(np.int32),
              "click": click, "conversion": conversion, "step": np.array(1, np.int64), "lr": np.array(0.001, np.float32)})
for p in sig["params"]:
    for name in [p["name"]] + [f"{p['name']}__{s}" for s in sig["slots"]]:
        feeds[name] = state[name]
for s in sig["states"]:
    feeds[s["name"]] = state[s["name"]]

session = ort.InferenceSession(f"{d}/train_step.onnx", providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]
out = dict(zip(names, session.run(None, feeds)))
# Write back: state[table][unique, k*dim:(k+1)*dim] = out[f"{names[k]}__new"] (skip row 0 when paddingRow0);
# state[p] = out[f"{p}__new"], state[f"{p}__{s}"] = out[f"{p}__{s}__new"].
print(json.dumps({"loss": float(out["loss"]), "p_ctr": out["p_ctr"].tolist()}))
