"""Tabular: preprocessing time, and one epoch of `fit_one_cycle` against a hand-written loop.

200,000 synthetic rows: 6 categorical columns (cardinality 3, 10, 30, 100, 300, 1000, string values),
8 continuous columns (5% missing in one), a 3-class target. Preprocessing is
`TabularDataLoaders.from_df` (FillMissing, Categorify, Normalize fitted on the 160,000 training rows,
tensors for all rows); target <= 0.25 s.

Training: one epoch of `learn.fit_one_cycle(1, 1e-2)` with `tabular_learner(dls, metrics=accuracy)`
at batch sizes 128 and 1024, against a hand-written loop over the same preprocessed tensors and the same
model (same initial weights): per epoch one `torch.randperm` and contiguous batches, the same
`torch.optim.AdamW` param groups (weight decay 0.01 on weights, none on biases and BatchNorm), torch's
`OneCycleLR` with fastai's shape, the same validation (loss and accuracy at twice the batch size). Runs
alternate; the median of the per-pair ratios is printed, for wall-clock time and for this process's
CPU time (steadier when other programs share the machine; with 1 torch thread both measure the same
work). Targets: <= 1.15x at bs 128, <= 1.05x at bs 1024.

Usage: python bench/tabular.py [--repeats 5] [--threads 1] [--rows 200000] [--profile]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import statistics
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

CARDS = (3, 10, 30, 100, 300, 1000)
N_CONT, LR = 8, 1e-2


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


CAT_NAMES = [f"cat{i}" for i in range(len(CARDS))]
CONT_NAMES = [f"cont{j}" for j in range(N_CONT)]


def build_dls(df: pd.DataFrame, bs: int = 128):
    from minifastai.tabular import TabularDataLoaders

    return TabularDataLoaders.from_df(df, CAT_NAMES, CONT_NAMES, "y", valid_pct=0.2, seed=0, bs=bs,
                                      device="cpu")


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
    perm = torch.randperm(n)
    losses = []
    for x_cat, x_cont, y in zip(*(t.index_select(0, perm).split(sizes) for t in train)):
        loss = F.cross_entropy(model(x_cat, x_cont), y)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.detach())
    model.eval()
    tot, correct = torch.zeros(()), torch.zeros(())
    with torch.no_grad():
        for x_cat, x_cont, y in zip(*(t.split(2 * bs) for t in valid)):
            out = model(x_cat, x_cont)
            tot += F.cross_entropy(out, y) * len(y)
            correct += (out.argmax(-1) == y).sum()
    torch.stack(losses).mean().item()
    return float(correct / len(valid[0]))


def learner_loop(learn) -> float:
    """One epoch of `fit_one_cycle` (progress output discarded)."""
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit_one_cycle(1, LR)
    return learn.recorder.values[-1][3]


def fresh(dls, state: dict):
    """A tabular learner whose model starts from `state` (the same weights for both loops)."""
    from minifastai import accuracy
    from minifastai.tabular import tabular_learner

    learn = tabular_learner(dls, metrics=accuracy)
    learn.model.load_state_dict(state)
    return learn


def bench_prep(df: pd.DataFrame, repeats: int) -> tuple[list[float], list[float]]:
    build_dls(df)  # warm-up (pandas and torch lazy imports)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        build_dls(df)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def bench_fit(df: pd.DataFrame, bs: int, repeats: int, profile: bool) -> None:
    from minifastai.tabular import tabular_learner

    dls = build_dls(df, bs)
    train, valid = dls.train.tensors, dls.valid.tensors
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in tabular_learner(dls).model.state_dict().items()}
    # warm-up both loops: lazy imports (fastprogress, optimizer internals) and allocator are paid here
    hand_loop(fresh(dls, state).model, train, valid, bs)
    learner_loop(fresh(dls, state))
    wall: dict[str, list[float]] = {"hand": [], "mini": []}
    cpu: dict[str, list[float]] = {"hand": [], "mini": []}
    accs = {}
    for r in range(repeats):
        for which in (("hand", "mini") if r % 2 == 0 else ("mini", "hand")):
            learn = fresh(dls, state)
            torch.manual_seed(r)
            t, c = time.perf_counter(), time.process_time()
            accs[which] = hand_loop(learn.model, train, valid, bs) if which == "hand" else learner_loop(learn)
            wall[which].append(time.perf_counter() - t)
            cpu[which].append(time.process_time() - c)
    target = 1.15 if bs <= 128 else 1.05
    print(f"bs {bs:5d} ({len(dls.train)} train batches, {repeats} alternating pairs, target <= {target}x):", flush=True)
    for name, d in (("wall", wall), ("cpu ", cpu)):
        ratios = [m / h for h, m in zip(d["hand"], d["mini"])]
        print(f"  {name} time: hand-written {statistics.median(d['hand']):.3f}s, minifastai "
              f"{statistics.median(d['mini']):.3f}s, median ratio {statistics.median(ratios):.3f}x "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f}); fastest runs {min(d['mini']) / min(d['hand']):.3f}x",
              flush=True)
    print(f"  valid accuracy: hand-written {accs['hand']:.3f}, minifastai {accs['mini']:.3f}", flush=True)
    if profile:
        for name, f in (("hand-written", lambda: hand_loop(fresh(dls, state).model, train, valid, bs)),
                        ("minifastai", lambda: learner_loop(fresh(dls, state)))):
            pr = cProfile.Profile()
            pr.runcall(f)
            print(f"--- profile, {name}, bs {bs}")
            pstats.Stats(pr).sort_stats("tottime").print_stats(14)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--bs", type=int, nargs="*", default=[128, 1024])
    ap.add_argument("--profile", action="store_true", help="also print cProfile tables of one run of each")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    df = make_df(args.rows)
    import minifastai.tabular  # noqa: F401  (pay imports before timing)

    wall, cpu = bench_prep(df, max(args.repeats, 5))
    print(f"preprocessing {args.rows:,} rows (from_df, procs fitted on 80%; target <= 0.25s): wall median "
          f"{statistics.median(wall):.3f}s (min {min(wall):.3f}, max {max(wall):.3f}), cpu median "
          f"{statistics.median(cpu):.3f}s (min {min(cpu):.3f}, max {max(cpu):.3f})", flush=True)
    for bs in args.bs:
        bench_fit(df, bs, args.repeats, args.profile)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")


if __name__ == "__main__":
    main()
