"""GPU benchmark: fine-tuning a ResNet-50 (fastai's head, 3 layer groups, discriminative LRs, one-cycle, AdamW)
at 224 px on synthetic images for a fixed number of batches, with bfloat16 autocast and channels-last, without
and with `torch.compile`: minifastai against a hand-written PyTorch loop doing the same work, in the same
process, runs alternating; prints images/s and the median time ratio (goal: <= 1.02x).

It also checks that no training batch synchronises the host with the device: one extra run of each loop
executes under `torch.cuda.set_sync_debug_mode("error")` (a synchronising call raises).

    python bench/gpu.py                       # on a CUDA machine: ResNet-50, 224 px, batch 128, 30 batches
    python bench/gpu.py --batches 50 --bs 64  # other sizes; --no-compile skips the compiled runs

Without CUDA it runs a tiny size (ResNet-18 at 32 px, compiled with the `aot_eager` backend) so that
`make bench` exercises the code: those figures mean nothing about GPU speed.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from minifastai import Callback, DataLoaders  # noqa: E402
from minifastai.vision import vision_learner  # noqa: E402

LRS = slice(1e-5, 1e-3)
N_CLASSES = 10


class Synthetic:
    """`n` batches cycling over a few fixed random batches that live on the device (no loading cost)."""

    def __init__(self, n: int, bs: int, size: int, device: torch.device, distinct: int = 4) -> None:
        g = torch.Generator(device="cpu").manual_seed(0)
        self.n = n
        self.xs = [torch.randn(bs, 3, size, size, generator=g).to(device).contiguous(memory_format=torch.channels_last)
                   for _ in range(distinct)]
        self.ys = [torch.randint(0, N_CLASSES, (bs,), generator=g).to(device) for _ in range(distinct)]

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for i in range(self.n):
            yield self.xs[i % len(self.xs)], self.ys[i % len(self.ys)]


class NoSync(Callback):
    """Makes every synchronising CUDA call an error during the training batches (the epoch's end, where the
    Recorder reads the losses once, is outside)."""

    order = 0  # after TrainEvalCallback (-10), before the Recorder (50)

    def before_train(self) -> None:
        torch.cuda.set_sync_debug_mode("error")

    def after_train(self) -> None:
        torch.cuda.set_sync_debug_mode(0)

    def after_fit(self) -> None:
        torch.cuda.set_sync_debug_mode(0)


def param_groups(model: nn.Module, groups: list[list[nn.Parameter]], lrs: list[float], wd: float = 0.01) -> list:
    """Per layer group: weights with weight decay, norm-layer parameters and biases without (as minifastai)."""
    norm = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)
    no_wd = {id(p) for m in model.modules() for n, p in m.named_parameters(recurse=False)
             if isinstance(m, norm) or n.endswith("bias")}
    out = []
    for g, lr in zip(groups, lrs):
        for decay, ps in ((wd, [p for p in g if id(p) not in no_wd]), (0.0, [p for p in g if id(p) in no_wd])):
            if ps:
                out.append({"params": ps, "lr": lr, "weight_decay": decay})
    return out


class HandLoop:
    """The same fine-tuning written by hand: AdamW, OneCycleLR per param group, bf16 autocast, channels-last."""

    def __init__(self, model: nn.Module, groups: list[list[nn.Parameter]], lrs: list[float]) -> None:
        self.model = model
        pgs = param_groups(model, groups, lrs)
        self.max_lrs = [pg["lr"] for pg in pgs]
        self.opt = torch.optim.AdamW(pgs, betas=(0.9, 0.99), eps=1e-5)

    def run(self, data: Synthetic, check_syncs: bool = False) -> float:
        model, opt, dev = self.model, self.opt, data.xs[0].device
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.max_lrs, total_steps=len(data), pct_start=0.25, div_factor=25.0,
            final_div_factor=1e5 / 25, base_momentum=0.85, max_momentum=0.95)
        model.train()
        losses = []
        if check_syncs:
            torch.cuda.set_sync_debug_mode("error")
        try:
            for x, y in data:
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    loss = F.cross_entropy(model(x).float(), y)
                loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.detach())
        finally:
            if check_syncs:
                torch.cuda.set_sync_debug_mode(0)
        return float(torch.stack(losses).mean())


def make_pair(args: argparse.Namespace, data: Synthetic, compiled: bool):
    torch.manual_seed(0)
    dls = DataLoaders(data, None, device=data.xs[0].device)
    learn = vision_learner(dls, args.arch, pretrained=False, n_out=N_CLASSES)
    learn.unfreeze()
    hand_model = copy.deepcopy(learn.model).to(dls.device)
    hand = HandLoop(hand_model, learn.splitter(hand_model), learn.lr_range(LRS))
    learn.to_bf16().to_channels_last()
    hand_model.to(memory_format=torch.channels_last)
    if compiled:
        kwargs = {"backend": args.backend} if args.dynamic is None else {"backend": args.backend, "dynamic": False}
        learn.compile(**kwargs)
        hand.model = torch.compile(hand_model, **kwargs)  # the usual way by hand (same parameters)
    return learn, hand


def mini_run(learn, check_syncs: bool = False) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit_one_cycle(1, LRS, cbs=NoSync() if check_syncs else None)
    return float(learn.recorder.train_loss)


def timed(f, *args, cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    f(*args)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t


def bench(args: argparse.Namespace, data: Synthetic, compiled: bool, cuda: bool) -> bool:
    label = f"compiled ({args.backend})" if compiled else "eager"
    t0 = time.perf_counter()
    learn, hand = make_pair(args, data, compiled)
    hand.run(data)  # warm-up: cuDNN autotuning, optimizer state, compilation
    mini_run(learn)
    warm = time.perf_counter() - t0
    hand_t, mini_t, ratios = [], [], []
    for _ in range(args.repeats):
        th = timed(hand.run, data, cuda=cuda)
        tm = timed(mini_run, learn, cuda=cuda)
        hand_t.append(th)
        mini_t.append(tm)
        ratios.append(tm / th)
    items = len(data) * data.xs[0].shape[0]
    print(f"{label:20s}: hand-written {items / statistics.median(hand_t):8.1f} img/s, minifastai "
          f"{items / statistics.median(mini_t):8.1f} img/s, median ratio {statistics.median(ratios):.3f}x "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}; {args.repeats} alternating runs, warm-up {warm:.0f}s)",
          flush=True)
    if not cuda:
        print(f"{'':20s}  host-device sync check skipped: it needs CUDA", flush=True)
        return True
    ok = True
    for name, f in (("hand-written", lambda: hand.run(data, check_syncs=True)),
                    ("minifastai", lambda: mini_run(learn, check_syncs=True))):
        try:
            f()
            print(f"{'':20s}  {name}: 0 host-device syncs in {len(data)} training batches "
                  '(torch.cuda.set_sync_debug_mode("error"))', flush=True)
        except RuntimeError as e:
            ok = False
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"{'':20s}  {name}: SYNC in a training batch: {str(e).splitlines()[0]} "
                  f"({where.filename}:{where.lineno})", flush=True)
    return ok


def main() -> None:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="resnet50" if cuda else "resnet18")
    p.add_argument("--size", type=int, default=224 if cuda else 32)
    p.add_argument("--bs", type=int, default=128 if cuda else 4)
    p.add_argument("--batches", type=int, default=30 if cuda else 3)
    p.add_argument("--repeats", type=int, default=5 if cuda else 2)
    p.add_argument("--backend", default="inductor" if cuda else "aot_eager")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled runs")
    p.add_argument("--only-compile", action="store_true", help="skip the eager runs")
    p.add_argument("--dynamic", choices=["false"], default=None, help="compile with dynamic=False")
    args = p.parse_args()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    else:
        torch.set_num_threads(1)
        print(f"device: CPU (no CUDA), torch {torch.__version__}: a tiny size so that the code runs; these "
              "figures mean nothing about GPU speed", flush=True)
    print(f"task: fine-tune {args.arch} (fastai head, 3 layer groups, lr {LRS.start:g}..{LRS.stop:g}, one-cycle, "
          f"AdamW) at {args.size} px, batch {args.bs}, {args.batches} batches per run, bf16 autocast, channels-last",
          flush=True)
    data = Synthetic(args.batches, args.bs, args.size, device)
    ok = True if args.only_compile else bench(args, data, compiled=False, cuda=cuda)
    if not args.no_compile:
        try:
            ok = bench(args, data, compiled=True, cuda=cuda) and ok
        except Exception:
            ok = False
            print("compiled runs FAILED:\n" + traceback.format_exc(), flush=True)
    print("goal: minifastai <= 1.02x the hand-written loop, 0 host-device syncs per training batch", flush=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
