"""Vision: one fine-tuning epoch of MobileNetV2 at 64 px through `DataBlock(...).dataloaders`, against a hand-written
torchvision ImageFolder + DataLoader + loop doing the same work; and decode + augment throughput.

Data: scikit-learn's 1,797 digits (10 classes) written as 64x64 PNG files (80% train, 20% valid).
Model: MobileNetV2 with torchvision's ImageNet weights (the offline file, when available) and fastai's head,
unfrozen: the second phase of `fine_tune`. Per epoch, both sides decode every PNG, apply the item transform
(`Resize(64)`), collate, apply `aug_transforms()` to each training batch (flip, warp, rotate, zoom,
brightness, contrast: the same functions, so the same arithmetic), normalize with ImageNet statistics,
train with AdamW and a one-cycle schedule (bs 64, last partial batch dropped), then validate (loss and
accuracy). minifastai: `learn.fit_one_cycle(1, 1e-3)`. Hand-written: `torchvision.datasets.ImageFolder`
with the same decoder, a `DataLoader`, `torch.optim.AdamW` with the Learner's parameter groups and
`OneCycleLR`. Runs alternate; the median of the per-pair ratios is printed, for wall-clock and for this
process's CPU time (steadier on a shared machine). Target: <= 1.05x.

Throughput: images/s of decode + item transform + collate + batch augmentation + normalization through
`ImageDataLoaders` (no model), with torchvision's `decode_image` against PIL; the faster is the default
(`minifastai.vision.image_files.DEFAULT_BACKEND`).

Usage: python bench/vision.py [--repeats 3] [--threads 1] [--size 64] [--bs 64] [--skip-fit] [--skip-decode]
       [--profile]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
LR = 1e-3


def make_tree(root: Path, size: int) -> Path:
    from pretrain_digits import write_digits_tree

    return write_digits_tree(root / f"digits{size}", classes=range(10), size=size)


def weights() -> tuple[dict | None, str]:
    """torchvision's MobileNetV2 ImageNet state dict, from the offline package or the hub cache."""
    from pretrain_digits import packaged_mobilenet_weights, place_mobilenet_weights

    from minifastai.vision import load_weights

    path = packaged_mobilenet_weights() or place_mobilenet_weights()
    if path is None:
        return None, "random weights (MobileNetV2 ImageNet file not available; the work is the same)"
    return load_weights(path), f"ImageNet weights ({path.name})"


def fresh_learner(tree: Path, sd: dict | None, bs: int, backend: str | None = None):
    """An unfrozen vision_learner over the digits tree, its model starting from `sd`."""
    from minifastai import accuracy
    from minifastai.basics import CategoryBlock, DataBlock, GrandparentSplitter, parent_label
    from minifastai.vision import (
        ImageBlock,
        Resize,
        aug_transforms,
        get_image_files,
        imagenet_stats,
        mobilenet_v2,
        vision_learner,
    )

    # fastai's way of building the data: a DataBlock (its loaders are the ones ImageDataLoaders.from_folder builds)
    digits = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, splitter=GrandparentSplitter(),
                       get_y=parent_label, item_tfms=Resize(64), batch_tfms=aug_transforms())
    dls = digits.dataloaders(tree, bs=bs, device="cpu", backend=backend)
    if sd is None:
        learn = vision_learner(dls, mobilenet_v2, pretrained=False, metrics=accuracy)
        dls.normalize(*imagenet_stats)
    else:
        learn = vision_learner(dls, mobilenet_v2, weights=sd, metrics=accuracy)
    learn.unfreeze()
    return learn


def param_groups(learn) -> list[dict]:
    """What the Learner builds: per layer group, weight decay on weights, none on biases and norm layers."""
    from minifastai.groups import NORM_TYPES

    no_wd = {id(p) for m in learn.model.modules() for n, p in m.named_parameters(recurse=False)
             if isinstance(m, NORM_TYPES) or n.endswith("bias")}
    groups = []
    for g in learn.layer_groups:
        groups.append({"params": [p for p in g if id(p) not in no_wd], "weight_decay": 0.01})
        groups.append({"params": [p for p in g if id(p) in no_wd], "weight_decay": 0.0})
    return groups


def hand_loop(learn, tree: Path, bs: int) -> float:
    """The same epoch written directly with torchvision and PyTorch (the model and transforms are shared)."""
    from torchvision.datasets import ImageFolder
    from torchvision.io import ImageReadMode, decode_image, read_file

    from minifastai.vision.transforms import Resize, apply_affine, apply_lighting, aug_transforms, imagenet_stats

    def loader(path: str) -> torch.Tensor:
        return decode_image(read_file(path), mode=ImageReadMode.RGB)

    resize = Resize(64)
    train_ds = ImageFolder(str(tree / "train"), loader=loader, transform=lambda x: resize(x, train=True))
    valid_ds = ImageFolder(str(tree / "valid"), loader=loader, transform=lambda x: resize(x, train=False))
    train_dl = torch.utils.data.DataLoader(train_ds, bs, shuffle=True, drop_last=True)
    valid_dl = torch.utils.data.DataLoader(valid_ds, bs)
    aug = aug_transforms()
    mean = torch.tensor(imagenet_stats[0])[:, None, None]
    std = torch.tensor(imagenet_stats[1])[:, None, None]
    model = learn.model
    opt = torch.optim.AdamW(param_groups(learn), lr=LR, betas=(0.9, 0.99), eps=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, total_steps=len(train_dl), pct_start=0.25, div_factor=25.0, final_div_factor=1e5 / 25,
        base_momentum=0.85, max_momentum=0.95)
    model.train()
    losses = []
    for x, y in train_dl:
        x = x.float().div_(255)
        x = apply_lighting(aug[4:], apply_affine(aug[:4], x, True))
        x = (x - mean) / std
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.detach())
    model.eval()
    tot, correct = torch.zeros(()), torch.zeros(())
    with torch.no_grad():
        for x, y in valid_dl:
            out = model((x.float().div_(255) - mean) / std)
            tot += F.cross_entropy(out, y) * len(y)
            correct += (out.argmax(-1) == y).sum()
    torch.stack(losses).mean().item()
    return float(correct / len(valid_ds))


def learner_loop(learn) -> float:
    """One epoch of `fit_one_cycle` (progress output discarded)."""
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit_one_cycle(1, LR)
    row, names = list(learn.recorder.values[-1]), learn.recorder.metric_names
    return float(row[names.index("accuracy") - (len(names) - len(row)) // 2])  # rows with or without epoch/time


def bench_fit(tree: Path, bs: int, repeats: int, profile: bool) -> None:
    sd, desc = weights()
    state = {k: v.clone() for k, v in fresh_learner(tree, sd, bs).model.state_dict().items()}

    def make():
        learn = fresh_learner(tree, sd, bs)
        learn.model.load_state_dict(state)
        return learn

    hand_loop(make(), tree, bs)  # warm-up: lazy imports, allocator
    learner_loop(make())
    wall: dict[str, list[float]] = {"hand": [], "mini": []}
    cpu: dict[str, list[float]] = {"hand": [], "mini": []}
    accs = {}
    for r in range(repeats):
        for which in (("hand", "mini") if r % 2 == 0 else ("mini", "hand")):
            learn = make()
            torch.manual_seed(r)
            t, c = time.perf_counter(), time.process_time()
            accs[which] = hand_loop(learn, tree, bs) if which == "hand" else learner_loop(learn)
            wall[which].append(time.perf_counter() - t)
            cpu[which].append(time.process_time() - c)
    n_train = len(make().dls.train)
    print(f"fine-tuning epoch, MobileNetV2 at 64 px, {desc}, bs {bs} ({n_train} train batches), {repeats} "
          "alternating pairs, target <= 1.05x:", flush=True)
    for name, d in (("wall", wall), ("cpu ", cpu)):
        ratios = [m / h for h, m in zip(d["hand"], d["mini"])]
        print(f"  {name} time: hand-written {statistics.median(d['hand']):.2f}s, minifastai "
              f"{statistics.median(d['mini']):.2f}s, median ratio {statistics.median(ratios):.3f}x "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f}); fastest runs {min(d['mini']) / min(d['hand']):.3f}x",
              flush=True)
    print(f"  valid accuracy after the epoch: hand-written {accs['hand']:.3f}, minifastai {accs['mini']:.3f}",
          flush=True)
    if profile:
        for name, f in (("hand-written", lambda: hand_loop(make(), tree, bs)),
                        ("minifastai", lambda: learner_loop(make()))):
            pr = cProfile.Profile()
            pr.runcall(f)
            print(f"--- profile, {name}")
            pstats.Stats(pr).sort_stats("tottime").print_stats(14)


def bench_decode(tree: Path, bs: int, repeats: int) -> None:
    """Images/s of the data pipeline alone (training loader: decode, Resize, collate, aug_transforms,
    normalize), per decoder."""
    from minifastai.vision import ImageDataLoaders, Resize, aug_transforms, imagenet_stats, read_image

    rates: dict[str, list[float]] = {"torchvision": [], "pil": []}
    raw: dict[str, list[float]] = {"torchvision": [], "pil": []}
    files = None
    for r in range(repeats):
        for backend in (("torchvision", "pil") if r % 2 == 0 else ("pil", "torchvision")):
            dls = ImageDataLoaders.from_folder(tree, item_tfms=Resize(64), batch_tfms=aug_transforms(), bs=bs,
                                               device="cpu", backend=backend)
            dls.normalize(*imagenet_stats)
            files = dls.train.items
            t = time.perf_counter()
            n = sum(len(b[1]) for b in dls.train)
            rates[backend].append(n / (time.perf_counter() - t))
            t = time.perf_counter()
            for f in files:
                read_image(f, backend)
            raw[backend].append(len(files) / (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"decode + augment ({len(files or [])} PNG files, 64 px, bs {bs}, median of {repeats}):", flush=True)
    for k in rates:
        print(f"  {k:11s}: {med[k]:7.0f} images/s through the training loader; decode alone "
              f"{statistics.median(raw[k]):7.0f} images/s", flush=True)
    from minifastai.vision.image_files import DEFAULT_BACKEND

    best = max(med, key=med.get)
    print(f"  faster: {best} ({med[best] / min(med.values()):.2f}x); default is {DEFAULT_BACKEND!r}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--skip-fit", action="store_true", help="only the decode + augment throughput")
    ap.add_argument("--skip-decode", action="store_true", help="only the fine-tuning epoch")
    ap.add_argument("--profile", action="store_true", help="also print cProfile tables of one run of each")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore", message="The image decoding", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as tmp:
        tree = make_tree(Path(tmp), args.size)
        if not args.skip_decode:
            bench_decode(tree, args.bs, max(args.repeats, 3))
        if not args.skip_fit:
            bench_fit(tree, args.bs, args.repeats, args.profile)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")


if __name__ == "__main__":
    main()
