"""Tabular: preprocessing time and memory at scale, and one epoch of `fit_one_cycle` against a hand-written loop.

Two benchmarks, each against a plain PyTorch/pandas path written by hand in this file:

**Training** (default): synthetic rows with 6 categorical columns (cardinality 3, 10, 30, 100, 300, 1000,
string values), 8 continuous columns (5% missing in one), a 3-class target. Preprocessing is
`TabularDataLoaders.from_df` (FillMissing, Categorify, Normalize fitted on 80% of the rows). Training is one
epoch of `learn.fit_one_cycle(1, 1e-2)` with `tabular_learner(dls, metrics=accuracy)` against a hand-written
loop over the same rows as int64/float32 tensors and the same model (same initial weights): per epoch one
`torch.randperm` and contiguous batches, the same `torch.optim.AdamW` param groups (weight decay 0.01 on
weights, none on biases and BatchNorm), torch's `OneCycleLR` with fastai's shape, the same validation (loss
and accuracy at twice the batch size). Runs alternate; the median of the per-pair ratios is printed, for
wall-clock time and for this process's CPU time. Targets: <= 1.15x at bs 128, <= 1.05x at bs 1024 (at 200k
and at 2M rows).

**Scale** (`--scale`): a parquet file of `--rows` rows (default 2,000,000: 6 categorical string columns of
cardinality 3-1000, 8 float32 columns each 5% missing, a 3-class string target, and one unused text column),
read with `pd.read_parquet` (pandas' pyarrow-backed strings). Each measurement runs in a fresh process:
after reading the DataFrame it resets the peak-RSS counter (`/proc/self/clear_refs`), builds the training and
validation tensors, and reads the kernel's high-water mark (`VmHWM`): extra peak memory = that peak - the
RSS before building, which sees numpy, pandas, pyarrow and torch allocations alike. Plain path: pandas
`Categorical` codes with the training rows' sorted vocab, `fillna(median)`, `(x - mean) / std`, `torch`
tensors indexed by the split. Targets: minifastai no slower than the plain path, and its extra peak memory
no more than the DataFrame's own size (`memory_usage(deep=True)`). `from_parquet` (reads only the needed
columns, strings straight from the file's dictionary pages) is measured too, as total peak memory over the
process before reading. `--train` also trains one epoch (bs 1024) in the minifastai process.

Usage:
    python bench/tabular.py [--rows 200000] [--repeats 5] [--bs 128 1024] [--device cpu] [--profile]
    python bench/tabular.py --scale [--rows 2000000] [--repeats 3] [--train]
    python bench/tabular.py --scale --rows 20000000 --modes --train   # 20M rows: from_parquet and one epoch
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

CARDS = (3, 10, 30, 100, 300, 1000)
N_CONT, LR = 8, 1e-2
CAT_NAMES = [f"cat{i}" for i in range(len(CARDS))]
CONT_NAMES = [f"cont{j}" for j in range(N_CONT)]


def make_df(n: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic rows whose 3-class target depends on every column."""
    rng = np.random.default_rng(seed)
    cols, logits = {}, np.zeros((n, 3))
    for i, k in enumerate(CARDS):
        codes = rng.integers(0, k, n)
        cols[f"cat{i}"] = np.array([f"c{i}_{j}" for j in range(k)], dtype=object)[codes]
        logits += rng.normal(0, 0.5, (k, 3))[codes]
    for j in range(N_CONT):
        x = rng.normal(j, 1 + j, n)
        logits += np.outer((x - j) / (1 + j), rng.normal(0, 0.5, 3))
        cols[f"cont{j}"] = x
    cols["cont0"][rng.random(n) < 0.05] = np.nan
    y = (logits + rng.gumbel(size=(n, 3))).argmax(1)
    cols["y"] = np.array(["low", "mid", "high"], dtype=object)[y]
    return pd.DataFrame(cols)


def build_dls(df: pd.DataFrame, bs: int = 128, device: str = "cpu"):
    from minifastai.tabular import TabularDataLoaders

    return TabularDataLoaders.from_df(df, cat_names=CAT_NAMES, cont_names=CONT_NAMES, y_names="y", valid_pct=0.2,
                                      seed=0, bs=bs, device=device)


# ---- training speed -----------------------------------------------------------------------------
def param_groups(model: torch.nn.Module, wd: float = 0.01) -> list[dict]:
    """What the Learner builds: weight decay on weights, none on biases and norm layers."""
    from minifastai.groups import NORM_TYPES

    decay, no_decay = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            (no_decay if isinstance(m, NORM_TYPES) or name.endswith("bias") else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def hand_loop(model: torch.nn.Module, train: tuple, valid: tuple, bs: int) -> float:
    """One epoch of one-cycle training and a validation pass, written directly in PyTorch."""
    n = len(train[0])
    sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    opt = torch.optim.AdamW(param_groups(model), lr=LR, betas=(0.9, 0.99), eps=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, total_steps=len(sizes), pct_start=0.25, div_factor=25.0, final_div_factor=1e5 / 25,
        base_momentum=0.85, max_momentum=0.95)
    model.train()
    perm = torch.randperm(n, device=train[0].device)
    losses = []
    for x_cat, x_cont, y in zip(*(t.index_select(0, perm).split(sizes) for t in train)):
        loss = F.cross_entropy(model(x_cat, x_cont), y)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.detach())
    model.eval()
    tot, correct = torch.zeros((), device=y.device), torch.zeros((), device=y.device)
    with torch.no_grad():
        for x_cat, x_cont, y in zip(*(t.split(2 * bs) for t in valid)):
            out = model(x_cat, x_cont)
            tot += F.cross_entropy(out, y) * len(y)
            correct += (out.argmax(-1) == y).sum()
    torch.stack(losses).mean().item()
    return float(correct / len(valid[0]))


def learner_loop(learn) -> None:
    """One epoch of `fit_one_cycle` (progress output discarded)."""
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit_one_cycle(1, LR)


def valid_accuracy(learn) -> float:
    """Accuracy on the validation rows (read after the timed part)."""
    preds, targs = learn.get_preds()
    return float((preds.argmax(1) == targs.reshape(-1)).float().mean())


def fresh(dls, state: dict):
    """A tabular learner whose model starts from `state` (the same weights for both loops)."""
    from minifastai import accuracy
    from minifastai.tabular import tabular_learner

    learn = tabular_learner(dls, metrics=accuracy)
    learn.model.load_state_dict(state)
    return learn


def plain_tensors(tensors: tuple) -> tuple:
    """What a hand-written loop holds: int64 codes, float32 values, int64 targets of shape (rows,)."""
    x_cat, x_cont, y = tensors
    return x_cat.long(), x_cont, y.long().reshape(-1)


def bench_prep(df: pd.DataFrame, repeats: int) -> tuple[list[float], list[float]]:
    build_dls(df)  # warm-up (pandas and torch lazy imports)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        build_dls(df)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def bench_fit(df: pd.DataFrame, bs: int, repeats: int, profile: bool, device: str) -> None:
    from minifastai.tabular import tabular_learner

    dls = build_dls(df, bs, device)
    train, valid = plain_tensors(dls.train.tensors), plain_tensors(dls.valid.tensors)
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in tabular_learner(dls).model.state_dict().items()}

    def hand(r: int) -> float:
        return hand_loop(fresh(dls, state).model.to(device), train, valid, bs)

    # warm-up both loops: lazy imports (fastprogress, optimizer internals) and allocator are paid here
    hand(0)
    learner_loop(fresh(dls, state))
    wall: dict[str, list[float]] = {"hand": [], "mini": []}
    cpu: dict[str, list[float]] = {"hand": [], "mini": []}
    accs = {}
    for r in range(repeats):
        for which in (("hand", "mini") if r % 2 == 0 else ("mini", "hand")):
            learn = fresh(dls, state)
            torch.manual_seed(r)
            t, c = time.perf_counter(), time.process_time()
            if which == "hand":
                accs[which] = hand_loop(learn.model.to(device), train, valid, bs)
            else:
                learner_loop(learn)
            wall[which].append(time.perf_counter() - t)
            cpu[which].append(time.process_time() - c)
            if which == "mini":
                accs[which] = valid_accuracy(learn)
    target = 1.15 if bs <= 128 else 1.05
    print(f"bs {bs:5d} ({len(dls.train)} train batches of {dls.train.n:,} rows on {device}, {repeats} alternating "
          f"pairs, target <= {target}x):", flush=True)
    for name, d in (("wall", wall), ("cpu ", cpu)):
        ratios = [m / h for h, m in zip(d["hand"], d["mini"])]
        ok = "PASS" if statistics.median(ratios) <= target else "FAIL"
        print(f"  {name} time: hand-written {statistics.median(d['hand']):.3f}s, minifastai "
              f"{statistics.median(d['mini']):.3f}s, median ratio {statistics.median(ratios):.3f}x {ok} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f}); fastest runs {min(d['mini']) / min(d['hand']):.3f}x",
              flush=True)
    print(f"  valid accuracy: hand-written {accs['hand']:.3f}, minifastai {accs['mini']:.3f}", flush=True)
    if profile:
        for name, f in (("hand-written", lambda: hand(0)), ("minifastai", lambda: learner_loop(fresh(dls, state)))):
            pr = cProfile.Profile()
            pr.runcall(f)
            print(f"--- profile, {name}, bs {bs}")
            pstats.Stats(pr).sort_stats("tottime").print_stats(14)


# ---- scale: the table ---------------------------------------------------------------------------
def write_scale_table(path: Path, n: int, seed: int = 0, chunk: int = 1_000_000) -> None:
    """`n` rows written in row groups of `chunk` (so 20M rows never sit in memory at once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    effects = [rng.normal(0, 0.5, (k, 3)).astype(np.float32) for k in CARDS]
    slopes = rng.normal(0, 0.5, (N_CONT, 3)).astype(np.float32)
    labels = [pa.array([f"c{i}_{j}" for j in range(k)]) for i, k in enumerate(CARDS)]
    notes = pa.array([f"free text note number {j} that no model reads" for j in range(5000)])
    writer = None
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        cols: dict[str, pa.Array] = {}
        logits = np.zeros((m, 3), np.float32)
        for i, k in enumerate(CARDS):
            codes = rng.integers(0, k, m).astype(np.int32)
            cols[f"cat{i}"] = pa.DictionaryArray.from_arrays(codes, labels[i]).cast(pa.large_string())
            logits += effects[i][codes]
        for j in range(N_CONT):
            x = rng.normal(j, 1 + j, m).astype(np.float32)
            logits += np.outer((x - j) / (1 + j), slopes[j])
            x[rng.random(m) < 0.05] = np.nan
            cols[f"cont{j}"] = pa.array(x, from_pandas=True)  # NaN -> null, as pandas writes missing floats
        y = (logits + rng.gumbel(size=(m, 3))).argmax(1).astype(np.int32)
        cols["y"] = pa.DictionaryArray.from_arrays(y, pa.array(["low", "mid", "high"])).cast(pa.large_string())
        cols["note"] = pa.DictionaryArray.from_arrays(rng.integers(0, 5000, m).astype(np.int32),
                                                      notes).cast(pa.large_string())
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


NEEDED = CAT_NAMES + CONT_NAMES + ["y"]


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def _reset_peak() -> float:
    """Reset the kernel's peak-RSS counter of this process; returns the RSS now (MiB). Memory that is free but
    still held (pyarrow's pool, glibc's heap) is returned first, so the baseline is what is alive."""
    import ctypes

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mib("VmRSS")


def plain_build(df: pd.DataFrame, valid_pct: float = 0.2, seed: int = 0) -> tuple[tuple, tuple]:
    """The plain pandas/torch path: what one writes by hand for FillMissing + Categorify + Normalize, using
    pandas' fast paths (`astype("category")` hashes pyarrow strings in pyarrow)."""
    n = len(df)
    train_rows = np.ones(n, dtype=bool)
    train_rows[np.random.default_rng(seed).permutation(n)[: int(valid_pct * n)]] = False
    cats = []
    for c in CAT_NAMES:
        col = df[c].astype("category")
        codes = col.cat.codes.to_numpy()
        seen = np.bincount(codes[train_rows & (codes >= 0)], minlength=len(col.cat.categories)) > 0
        vocab = sorted(col.cat.categories[seen])
        cats.append(col.cat.set_categories(vocab).cat.codes.to_numpy().astype(np.int64) + 1)
    conts = df[CONT_NAMES]
    na = conts.isna()
    for c in CONT_NAMES:
        if na[c][train_rows].any():
            cats.append(na[c].to_numpy().astype(np.int64) + 1)
    conts = conts.fillna(conts[train_rows].median())
    trc = conts[train_rows]
    conts = (conts - trc.mean()) / (trc.std(ddof=0) + 1e-7)
    x_cat = torch.from_numpy(np.stack(cats, 1))
    x_cont = torch.from_numpy(conts.to_numpy(np.float32))
    ycol = df["y"].astype("category")
    y = torch.from_numpy(ycol.cat.set_categories(sorted(ycol.cat.categories)).cat.codes.to_numpy().astype(np.int64))
    tr, va = torch.from_numpy(np.flatnonzero(train_rows)), torch.from_numpy(np.flatnonzero(~train_rows))
    return tuple(t[tr] for t in (x_cat, x_cont, y)), tuple(t[va] for t in (x_cat, x_cont, y))


def measure(mode: str, file: str, train: bool) -> dict:
    """One measurement in this (fresh) process; see the module docstring."""
    torch.set_num_threads(1)
    import pyarrow  # noqa: F401  (imports paid before measuring)

    import minifastai.tabular as T

    out: dict = {"mode": mode}
    base0 = _reset_peak()
    if mode == "parquet":
        t, c = time.perf_counter(), time.process_time()
        dls = T.TabularDataLoaders.from_parquet(file, cat_names=CAT_NAMES, cont_names=CONT_NAMES, y_names="y",
                                                valid_pct=0.2, seed=0, bs=1024, device="cpu")
        out["time"], out["cpu"] = time.perf_counter() - t, time.process_time() - c
        out["total_peak"] = _status_mib("VmHWM") - base0
        out["tensors"] = (dls.train.nbytes + dls.valid.nbytes) / 2**20
    else:
        df = pd.read_parquet(file, columns=NEEDED)
        read_peak = _status_mib("VmHWM") - base0
        out["df"] = float(df.memory_usage(deep=True).sum()) / 2**20
        base = _reset_peak()
        t, c = time.perf_counter(), time.process_time()
        if mode == "plain":
            tr, va = plain_build(df)
            out["tensors"] = sum(x.element_size() * x.nelement() for x in (*tr, *va)) / 2**20
        else:
            dls = T.TabularDataLoaders.from_df(df, cat_names=CAT_NAMES, cont_names=CONT_NAMES, y_names="y",
                                               valid_pct=0.2, seed=0, bs=1024, device="cpu")
            out["tensors"] = (dls.train.nbytes + dls.valid.nbytes) / 2**20
        out["time"], out["cpu"] = time.perf_counter() - t, time.process_time() - c
        out["extra_peak"] = _status_mib("VmHWM") - base
        out["total_peak"] = max(read_peak, _status_mib("VmHWM") - base0)
    if train and mode != "plain":
        from minifastai import accuracy

        learn = T.tabular_learner(dls, metrics=accuracy)
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            learn.fit_one_cycle(1, LR)
        out["epoch"] = time.perf_counter() - t
        out["accuracy"] = valid_accuracy(learn)
        out["train_batches"] = len(dls.train)
        out["peak_rss"] = _status_mib("VmHWM")
    return out


def run_measure(mode: str, file: Path, train: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--measure", mode, "--file", str(file)] + (["--train"] if train else [])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"measurement {mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_scale(rows: int, repeats: int, train: bool, keep: str | None, modes: list[str]) -> None:
    tmp = tempfile.TemporaryDirectory()
    file = Path(keep) if keep else Path(tmp.name) / f"table_{rows}.parquet"
    if not file.exists():
        t = time.perf_counter()
        write_scale_table(file, rows)
        print(f"wrote {rows:,} rows to {file} ({file.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t:.1f}s", flush=True)
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for r in range(repeats if modes else 0):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            runs[mode].append(run_measure(mode, file))
            print(f"  run {r}: {runs[mode][-1]}", flush=True)

    def med(mode: str, key: str) -> float:
        return statistics.median(x[key] for x in runs[mode])

    if set(modes) != {"plain", "mini", "parquet"}:
        if train:
            train_run(file)
        tmp.cleanup()
        return

    df_mib = med("mini", "df")
    print(f"\nscale: {rows:,} rows, 6 categorical string columns (cardinality 3-1000), 8 float32 columns "
          f"(5% missing each), 3-class target; DataFrame of the 15 used columns: {df_mib:.0f} MiB "
          f"(pandas {pd.__version__}, pyarrow-backed strings); medians of {repeats} fresh processes each")
    print("| path | build time (wall) | build time (CPU) | extra peak memory | tensors built |\n|---|---|---|---|---|")
    for mode, name in (("plain", "plain pandas/torch"), ("mini", "minifastai `from_df`")):
        print(f"| {name} | {med(mode, 'time'):.2f} s | {med(mode, 'cpu'):.2f} s | +{med(mode, 'extra_peak'):.0f} MiB | "
              f"{med(mode, 'tensors'):.0f} MiB |")
    for key in ("time", "cpu"):
        ratio = med("mini", key) / med("plain", key)
        print(f"target: {'wall' if key == 'time' else 'CPU'} time no slower than the plain path: {ratio:.2f}x "
              f"{'PASS' if ratio <= 1.0 else 'FAIL'}")
    extra = med("mini", "extra_peak")
    print(f"target: extra peak memory <= the DataFrame's size: {extra:.0f} MiB <= {df_mib:.0f} MiB "
          f"{'PASS' if extra <= df_mib else 'FAIL'}")
    print(f"from_parquet (reads 15 of the file's 16 columns): {med('parquet', 'time'):.2f} s and "
          f"{med('parquet', 'total_peak'):.0f} MiB peak in all, against {med('mini', 'total_peak'):.0f} MiB for "
          f"pd.read_parquet + from_df", flush=True)
    if train:
        train_run(file)
    tmp.cleanup()


def train_run(file: Path) -> None:
    res = run_measure("parquet", file, train=True)
    print(f"from_parquet + one epoch of fit_one_cycle at bs 1024 ({res['train_batches']:,} batches, 1 thread): "
          f"build {res['time']:.1f} s ({res['cpu']:.1f} s CPU), tensors {res['tensors'] / 1024:.2f} GiB, epoch "
          f"{res['epoch']:.1f} s, valid accuracy {res['accuracy']:.3f}, peak RSS of the process "
          f"{res['peak_rss'] / 1024:.2f} GiB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=None, help="rows (default 200,000; --scale: 2,000,000)")
    ap.add_argument("--repeats", type=int, default=None, help="alternating pairs (default 5; --scale: 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--bs", type=int, nargs="*", default=[128, 1024])
    ap.add_argument("--device", default="cpu", help="training benchmark device (cpu, cuda)")
    ap.add_argument("--profile", action="store_true", help="also print cProfile tables of one run of each")
    ap.add_argument("--scale", action="store_true", help="build time and peak memory against the plain path")
    ap.add_argument("--train", action="store_true", help="--scale: also train one epoch (from_parquet, bs 1024)")
    ap.add_argument("--keep", default=None, help="--scale: parquet file to reuse (written if missing)")
    ap.add_argument("--modes", nargs="*", default=["plain", "mini", "parquet"],
                    help="--scale: which builds to measure (20M rows: the plain path needs over 12 GB; leave it out)")
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--file", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.measure:
        print(json.dumps(measure(args.measure, args.file, args.train)))
        return
    if args.scale:
        bench_scale(args.rows or 2_000_000, args.repeats or 3, args.train, args.keep, args.modes)
        return
    rows, repeats = args.rows or 200_000, args.repeats or 5
    df = make_df(rows)
    import minifastai.tabular  # noqa: F401  (pay imports before timing)

    wall, cpu = bench_prep(df, max(repeats, 3))
    print(f"preprocessing {rows:,} rows (from_df, procs fitted on 80%): wall median "
          f"{statistics.median(wall):.3f}s (min {min(wall):.3f}, max {max(wall):.3f}), cpu median "
          f"{statistics.median(cpu):.3f}s (min {min(cpu):.3f}, max {max(cpu):.3f})", flush=True)
    for bs in args.bs:
        bench_fit(df, bs, repeats, args.profile, args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.device}")


if __name__ == "__main__":
    main()
