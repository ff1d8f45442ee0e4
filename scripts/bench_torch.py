#!/usr/bin/env python3
"""The PyTorch side of `npm run bench` (scripts/bench.mjs): the same work as mtl's bench rows, on
identical shapes and batches, printed as one JSON object per measurement on stdout.

The model is the ESMM reference configuration of scripts/bench-train.mjs: 23 fields x 3 ids
sum-pooled, one shared table 737,946 x 12 (row 0 padding), towers 276->256->64->1 (ReLU, sigmoid),
BCE(pCTR, click) + BCE(pCTR*pCVR, buy), Adam lr 1e-3, batch 1024. ESCM2-DR adds the imputation
tower and the doubly robust risk with the alternating gradients of src/models/escm2.ts.
The table is nn.Embedding(sparse=True) with SparseAdam (PyTorch's fastest CPU recipe for a large
table) or, with --table dense, a plain nn.Embedding under the same Adam as the towers.

  python scripts/bench_torch.py train   --model esmm|escm2-dr --ids uniform|zipf --table sparse|dense --batch 1024 --steps 60
  python scripts/bench_torch.py forward --batch 1024 --steps 60         # scoring: eval-mode forward, no autograd
  python scripts/bench_torch.py shard   --shard data.shard --batch 1024 # end to end: one epoch from an mtl shard
  python scripts/bench_torch.py sgemm                                   # float32 GEMM rate at the model's shapes
Not a test: prints measured numbers.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn

FIELDS, IDS_PER_FIELD, DIM = 23, 3, 12
EPS = 1e-7


def tower(width, sizes):
    layers, w = [], width
    for units in sizes:
        layers += [nn.Linear(w, units), nn.ReLU()]
        w = units
    layers.append(nn.Linear(w, 1))
    return nn.Sequential(*layers)


class TwoTowers(nn.Module):
    """ESMM (two towers) or ESCM2 with separate towers (three with DR) on one sum-pooled table."""

    def __init__(self, vocab, sizes, tasks, sparse):
        super().__init__()
        self.embedding = nn.Embedding(vocab, DIM, padding_idx=0, sparse=sparse)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.towers = nn.ModuleList(tower(FIELDS * DIM, sizes) for _ in range(tasks))

    def forward(self, ids):
        x = self.embedding(ids).view(-1, FIELDS, IDS_PER_FIELD, DIM).sum(2).view(-1, FIELDS * DIM)
        return [torch.sigmoid(t(x)).squeeze(1) for t in self.towers]


def log_loss(p, y):
    q = p.clamp(EPS, 1 - EPS)
    return -(y * q.log() + (1 - y) * (1 - q).log())


def esmm_loss(out, click, buy):
    p_ctr, p_cvr = out[0], out[1]
    return log_loss(p_ctr, click).mean() + log_loss(p_ctr * p_cvr, buy).mean()


def escm2_dr_loss(out, click, buy):
    """L_ctr + 0.5 R_DR + 0.5 L_ctcvr with alternating DR gradients, as src/models/escm2.ts."""
    p_ctr, p_cvr, delta_hat = out
    inv = (1.0 / p_ctr.detach().clamp(min=1e-6)).clamp(max=15.0)  # 1/o-hat, clipped; no gradient to pCTR
    o_over = click * inv
    delta = log_loss(p_cvr, buy)
    err = (delta_hat.detach() + o_over * (delta - delta_hat.detach())).mean()  # R_err
    e = delta.detach() - delta_hat
    imp = (o_over * e * e).mean()  # R_imp
    return log_loss(p_ctr, click).mean() + 0.5 * (err + imp) + 0.5 * log_loss(p_ctr * p_cvr, buy).mean()


def make_ids(kind, vocab, n, rng, zipf_cdf):
    if kind == "uniform":
        return rng.integers(1, vocab, size=n, dtype=np.int64)
    # Zipf(1.05) ranks over the vocabulary, scattered through the table by the bijection of bench-train.mjs.
    ranks = np.searchsorted(zipf_cdf, rng.random(n), side="right").astype(np.int64)
    return 1 + (ranks * 2654435761) % (vocab - 1)


def synthetic_batches(kind, vocab, batch, count=32, seed=42):
    rng = np.random.default_rng(seed)
    cdf = None
    if kind == "zipf":
        w = np.arange(1, vocab, dtype=np.float64) ** -1.05
        cdf = np.cumsum(w)
        cdf /= cdf[-1]
    out = []
    for _ in range(count):
        ids = make_ids(kind, vocab, batch * FIELDS * IDS_PER_FIELD, rng, cdf).reshape(batch, -1)
        click = (rng.random(batch) < 0.2).astype(np.float32)
        buy = click * (rng.random(batch) < 0.1).astype(np.float32)
        out.append((torch.from_numpy(ids), torch.from_numpy(click), torch.from_numpy(buy)))
    return out


def build(model, vocab, table):
    tasks = 3 if model == "escm2-dr" else 2
    net = TwoTowers(vocab, [256, 64], tasks, sparse=(table == "sparse"))
    if table == "sparse":
        dense = [p for n, p in net.named_parameters() if not n.startswith("embedding")]
        opts = [torch.optim.SparseAdam([net.embedding.weight], lr=1e-3), torch.optim.Adam(dense, lr=1e-3)]
    else:
        opts = [torch.optim.Adam(net.parameters(), lr=1e-3)]
    return net, opts, (escm2_dr_loss if model == "escm2-dr" else esmm_loss)


def train_step(net, opts, loss_fn, ids, click, buy):
    for o in opts:
        o.zero_grad(set_to_none=True)
    loss = loss_fn(net(ids), click, buy)
    loss.backward()
    for o in opts:
        o.step()
    return loss


def over_time(a, t0):
    """--max-seconds: a loaded machine stops the measured loop early (the rate is still per step done)."""
    return a.max_seconds > 0 and time.perf_counter() - t0 > a.max_seconds


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def blas():
    """The BLAS torch calls for GEMMs (Debian's build uses the system libblas.so.3 alternative)."""
    cfg = torch.__config__.show()
    for key in ("BLAS_INFO=", "USE_MKL=ON"):
        at = cfg.find(key)
        if at >= 0:
            return cfg[at:].split(",")[0].split("\n")[0].strip()
    return "unknown"


def emit(row):
    row.update(torch=torch.__version__, blas=blas(), threads=torch.get_num_threads(), peak_rss_mib=round(peak_rss_mib(), 1))
    print(json.dumps(row), flush=True)


def cmd_train(a):
    net, opts, loss_fn = build(a.model, a.vocab, a.table)
    batches = synthetic_batches(a.ids, a.vocab, a.batch)
    for s in range(a.warmup):
        train_step(net, opts, loss_fn, *batches[s % len(batches)])
    t0 = time.perf_counter()
    steps = 0
    while steps < a.steps and not over_time(a, t0):
        loss = train_step(net, opts, loss_fn, *batches[steps % len(batches)])
        steps += 1
    secs = time.perf_counter() - t0
    distinct = float(np.mean([len(np.unique(b[0].numpy())) for b in batches[:8]]))
    emit(dict(what="train", model=a.model, ids=a.ids, table=a.table, batch=a.batch, vocab=a.vocab, steps=steps,
              examples_per_s=steps * a.batch / secs, ms_per_step=1000 * secs / steps, loss=loss.item(), distinct_rows=distinct))


def cmd_forward(a):
    """Scoring: eval-mode forward of pCTR, pCVR, pCTCVR; per-call latency quantiles too (batch 100 = one request)."""
    net, _, _ = build("esmm", a.vocab, "sparse")
    net.eval()
    batches = synthetic_batches("uniform", a.vocab, a.batch)
    times = np.zeros(a.steps)
    with torch.inference_mode():
        for s in range(a.warmup):
            net(batches[s % len(batches)][0])
        t0 = time.perf_counter()
        steps = 0
        while steps < a.steps and not over_time(a, t0):
            t = time.perf_counter()
            p = net(batches[steps % len(batches)][0])
            _ = p[0] * p[1]  # pCTCVR, as the exported model computes it
            times[steps] = time.perf_counter() - t
            steps += 1
        secs = time.perf_counter() - t0
        times = times[:steps]
    emit(dict(what="forward", model="esmm", batch=a.batch, vocab=a.vocab, steps=steps,
              examples_per_s=steps * a.batch / secs, ms_per_step=1000 * secs / steps,
              p50_ms=1000 * float(np.quantile(times, 0.5)), p99_ms=1000 * float(np.quantile(times, 0.99))))


def read_shard(path):
    """An mtl shard (format version 1, src/data/shard.ts): its vocabulary and an iterator of (ids int32 [rows, width], click, conversion) per row group."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:8] != b"MTLSHARD":
            sys.exit(f"{path}: not an mtl shard")
        footer_at = int(np.frombuffer(head, np.float64, 1, 56)[0])
        f.seek(footer_at)
        footer = json.loads(f.read())
    tables = {}
    for feat in footer["schema"]["features"]:
        if feat["kind"] == "dense":
            sys.exit(f"{path}: dense columns are not read by this bench")
        if feat["kind"] == "weighted_ids" or feat.get("pooling") == "mean":
            sys.exit(f"{path}: weighted tables are not read by this bench")
        t = feat.get("table", feat["name"])
        tables[t] = tables.get(t, 0) + (feat.get("max_len", 1) if feat["kind"] == "ids" else 1)
    if len(tables) != 1:
        sys.exit(f"{path}: this bench reads one-table shards")
    width = next(iter(tables.values()))
    vocab = max(f.get("vocab_size", 0) for f in footer["schema"]["features"])
    return vocab, groups(path, footer["rowGroups"], width)


def groups(path, row_groups, width):
    align = lambda n: (n + 7) & ~7
    data = np.memmap(path, dtype=np.uint8, mode="r")
    for g in row_groups:
        at, n = g["offset"], g["rows"]
        ids = np.frombuffer(data, np.int32, n * width, at).reshape(n, width)
        at += align(4 * width * n)
        at += 0  # dense width 0
        click = np.frombuffer(data, np.uint8, n, at)
        at += align(n)
        conv = np.frombuffer(data, np.uint8, n, at)
        yield ids, click, conv


def cmd_shard(a):
    """One epoch from a shard, reading, shuffling inside each row group, converting and training: data loading included."""
    t_setup = time.perf_counter()
    vocab, row_groups = read_shard(a.shard)
    net, opts, loss_fn = build(a.model, vocab, a.table)
    rng = np.random.default_rng(1)
    rows = 0
    t0 = time.perf_counter()
    for ids, click, conv in row_groups:
        order = rng.permutation(len(click))
        for s in range(0, len(order) - a.batch + 1, a.batch):
            pick = order[s:s + a.batch]
            x = torch.from_numpy(ids[pick].astype(np.int64))
            c = torch.from_numpy(click[pick].astype(np.float32))
            y = torch.from_numpy(conv[pick].astype(np.float32))
            train_step(net, opts, loss_fn, x, c, y)
            rows += a.batch
            if (a.max_rows and rows >= a.max_rows) or over_time(a, t0):
                break
        if (a.max_rows and rows >= a.max_rows) or over_time(a, t0):
            break
    secs = time.perf_counter() - t0
    emit(dict(what="shard", model=a.model, table=a.table, batch=a.batch, rows=rows, examples_per_s=rows / secs,
              seconds=secs, setup_s=t0 - t_setup))


def tower_gemms(batch, widths=(FIELDS * DIM, 256, 64, 1)):
    """The GEMMs of one tower's training step, as scripts/bench-roofline.mjs lists them: per layer the
    forward X[B,in]·W+b, the input gradient dY·Wᵀ and the weight gradient Xᵀ·dY."""
    out = []
    for i in range(len(widths) - 1):
        fin, fout = widths[i], widths[i + 1]
        x, w, b, dy = torch.randn(batch, fin), torch.randn(fin, fout), torch.randn(fout), torch.randn(batch, fout)
        out.append(("forward", i, (batch, fin, fout), lambda x=x, w=w, b=b: torch.addmm(b, x, w)))
        out.append(("dX", i, (batch, fout, fin), lambda dy=dy, w=w: torch.mm(dy, w.t())))
        out.append(("dW", i, (fin, batch, fout), lambda x=x, dy=dy: torch.mm(x.t(), dy)))
    return out


def time_best(fn, reps, rounds=5):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / reps


def cmd_sgemm(a):
    """float32 GEMM rate at each GEMM shape of a tower's training step, one tower's GEMMs together
    (train: 9, forward: 3), and a square 2048 one (the machine's peak); best of 5 rounds."""
    gemms = tower_gemms(a.batch)
    for (pass_, layer, (m, k, n), fn) in gemms:
        for _ in range(3):
            fn()
        secs = time_best(fn, max(3, int(0.3e9 / (2 * m * k * n))))
        emit(dict(what="sgemm", engine="torch", **{"pass": pass_}, layer=layer, m=m, k=k, n=n, ms=1000 * secs, gflops=2 * m * k * n / secs / 1e9))
    for kind, chosen in (("train", gemms), ("forward", [g for g in gemms if g[0] == "forward"])):
        flops = sum(2 * m * k * n for (_, _, (m, k, n), _) in chosen)
        run = lambda: [fn() for (_, _, _, fn) in chosen]
        run()
        secs = time_best(run, max(3, int(1e9 / flops)))
        emit(dict(what="tower gemms", engine="torch", kind=kind, batch=a.batch, gemms=len(chosen), flops=flops, ms=1000 * secs, gflops=flops / secs / 1e9))
    x, w = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(x, w)
    secs = time_best(lambda: torch.mm(x, w), 3, 3)
    emit(dict(what="sgemm", engine="torch", **{"pass": "square"}, m=2048, k=2048, n=2048, ms=1000 * secs, gflops=2 * 2048 ** 3 / secs / 1e9))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["train", "forward", "shard", "sgemm"])
    p.add_argument("--model", default="esmm", choices=["esmm", "escm2-dr"])
    p.add_argument("--ids", default="uniform", choices=["uniform", "zipf"])
    p.add_argument("--table", default="sparse", choices=["sparse", "dense"])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--vocab", type=int, default=737_946)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--shard")
    p.add_argument("--max-rows", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.what == "shard" and not a.shard:
        p.error("shard needs --shard")
    {"train": cmd_train, "forward": cmd_forward, "shard": cmd_shard, "sgemm": cmd_sgemm}[a.what](a)


if __name__ == "__main__":
    main()
