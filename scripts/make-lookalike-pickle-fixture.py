#!/usr/bin/env python3
"""Make the pickle fixtures the converter test reads (needs pandas and numpy: run it in a venv).

    python3 -m venv /tmp/pd && /tmp/pd/bin/pip install pandas
    /tmp/pd/bin/python scripts/make-lookalike-pickle-fixture.py fixtures

writes <dir>/lookalike-frame-pandas<major>.p<protocol>.pkl (pandas' to_pickle, protocols 4 and 5:
PaddleRec's files are protocol 4) and <dir>/lookalike-frame.jsonl, the rows the converter must
produce, written here by pandas/numpy code that shares nothing with the converter (the same rows for
every pandas version: numpy's PCG64 stream is stable). The committed fixtures come from pandas 2.2.3
(numpy 1.26) and pandas 3.0.6 (numpy 2.4). Six rows in the Tencent look-alike columns, with list
cells as numpy arrays (as PaddleRec stores them), a real id 0 (`house`), pads after each length,
and an int32 column and a float column so more than one block kind is exercised.
"""
import json
import sys

import numpy as np
import pandas as pd

STATIC = ["carrier", "consumptionAbility", "LBS", "age", "education", "gender", "house"]
DYNAMIC = [("interest1", 10), ("interest2", 10), ("interest3", 10), ("kw1", 5), ("kw2", 5), ("topic1", 5), ("topic2", 5)]
AD = ["advertiserId", "campaignId", "creativeSize", "adCategoryId", "productId", "productType"]


def main(out_dir):
    prefix = f"{out_dir}/lookalike-frame-pandas{pd.__version__.split('.')[0]}"
    rng = np.random.default_rng(2021)
    n = 6
    cols = {"label": np.array([1, 0, 1, 1, 0, 1], dtype=np.int64), "aid": np.array([2, 2, 9, 9, 9, 17], dtype=np.int64)}
    for i, name in enumerate(STATIC):
        cols[name] = rng.integers(0, 3 + i, n).astype(np.int64)
    cols["house"] = np.array([0, 1, 0, 0, 1, 0], dtype=np.int64)
    lengths = {}
    for name, width in DYNAMIC:
        lengths[name] = rng.integers(0, width + 1, n).astype(np.int64)
        pad = 80 + width
        cells = []
        for r in range(n):
            cell = rng.integers(0, 200000 if name.startswith("kw") else 120, width).astype(np.int64)
            cell[lengths[name][r]:] = pad
            cells.append(cell)
        cols[name] = cells
    for name, _ in DYNAMIC:
        cols[f"{name}_length"] = lengths[name]
    for i, name in enumerate(AD):
        cols[name] = rng.integers(0, 10 + i, n).astype(np.int64)
    cols["productType"] = cols["productType"].astype(np.int32)
    frame = pd.DataFrame(cols)
    frame["score"] = np.linspace(0.125, 0.75, n)  # a float64 block (exactly representable values)
    for protocol in (4, 5):
        frame.to_pickle(f"{prefix}.p{protocol}.pkl", protocol=protocol)
    with open(f"{out_dir}/lookalike-frame.jsonl", "w", encoding="utf-8") as out:
        for r in range(n):
            row = {}
            for name in frame.columns:
                v = frame[name].iloc[r]
                row[name] = [int(x) for x in v] if isinstance(v, np.ndarray) else (float(v) if isinstance(v, (float, np.floating)) else int(v))
            out.write(json.dumps(row) + "\n")
    print(f"pandas {pd.__version__}, numpy {np.__version__}: wrote {prefix}.p4.pkl, {prefix}.p5.pkl, {out_dir}/lookalike-frame.jsonl")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures")
