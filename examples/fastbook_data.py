"""Offline stand-ins for what fastbook's vision chapters 5 and 7 download, and the two helpers of `fastbook` they use.

Nothing here touches the network. The writers write small synthetic image datasets in the layouts of the real
archives, with a signal that a model can learn (each class has its own colours and shape), so the ported scripts
(`fastbook_05_pet_breeds.py`, `fastbook_07_sizing_and_tta.py`) run in seconds on a CPU:

- `write_pets(folder)`: fastai's `URLs.PETS` (Oxford-IIIT Pet): `images/<breed>_<n>.jpg`, cat breeds capitalised
  and dog breeds in lower case as in the real dataset (three cats, three dogs, two of them with underscores in the
  name, which the chapter's regex must keep), and an `annotations/` folder (`list.txt`), as the archive has.
- `write_imagenette(folder)`: fastai's `URLs.IMAGENETTE`: `train/<wnid>/<name>.JPEG` and `val/<wnid>/<name>.JPEG`
  for Imagenette's ten ImageNet classes (`n03028079` church and `n03425413` gas pump among them, the two the
  chapter's mixup picture shows).
- `write_grizzly(file)`: a picture standing in for fastbook's `images/grizzly.jpg` (a file of the book's repository
  that chapter 5's interpolation figure reads).

fastbook's own helpers that the cells call (from `from fastbook import *`, which the ports drop), written as
fastbook writes them: `plot_function` and `get_image_files_sorted`.

The writers are deterministic for a given `seed`, overwrite what they wrote before, and return the folder (or the
file) as a `pathlib.Path`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["write_pets", "write_imagenette", "write_grizzly", "plot_function", "get_image_files_sorted",
           "PET_BREEDS", "IMAGENETTE_CLASSES"]

# (breed, background RGB, shape RGB, shape): the first three are cats (capitalised, as in the real dataset)
PET_BREEDS = [
    ("Abyssinian", (200, 120, 60), (250, 230, 200), "circle"),
    ("Bengal", (230, 190, 60), (40, 30, 20), "square"),
    ("Ragdoll", (220, 220, 235), (90, 70, 140), "triangle"),
    ("beagle", (120, 80, 40), (255, 255, 255), "cross"),
    ("great_pyrenees", (40, 110, 40), (240, 240, 220), "ring"),
    ("staffordshire_bull_terrier", (40, 60, 160), (230, 80, 80), "stripes"),
]

# Imagenette's ten ImageNet classes (wnid, name), with a background and a shape colour each
IMAGENETTE_CLASSES = [
    ("n01440764", "tench", (60, 90, 60), (200, 180, 120), "circle"),
    ("n02102040", "English_springer", (90, 60, 40), (240, 240, 240), "square"),
    ("n02979186", "cassette_player", (30, 30, 30), (200, 60, 60), "triangle"),
    ("n03000684", "chain_saw", (200, 120, 20), (40, 40, 40), "cross"),
    ("n03028079", "church", (150, 180, 230), (120, 100, 90), "triangle"),
    ("n03394916", "French_horn", (110, 20, 40), (230, 190, 60), "ring"),
    ("n03417042", "garbage_truck", (120, 120, 120), (40, 140, 40), "square"),
    ("n03425413", "gas_pump", (240, 240, 240), (220, 30, 30), "stripes"),
    ("n03445777", "golf_ball", (60, 160, 60), (250, 250, 250), "circle"),
    ("n03888605", "parachute", (90, 150, 240), (240, 120, 30), "ring"),
]


def _picture(rng: np.random.Generator, bg: tuple, fg: tuple, shape: str, size: int | tuple[int, int]) -> Image.Image:
    """A `size` picture: background `bg` with noise, and a `shape` of colour `fg` at a random place and scale."""
    w, h = (size, size) if isinstance(size, int) else size
    jitter = rng.integers(-25, 26, 3)
    base = np.clip(np.array(bg) + jitter, 0, 255)
    a = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(a)
    d = ImageDraw.Draw(im)
    s = min(w, h)
    r = int(s * rng.uniform(0.22, 0.34))
    cx, cy = int(w / 2 + rng.integers(-s // 8, s // 8 + 1)), int(h / 2 + rng.integers(-s // 8, s // 8 + 1))
    col = tuple(int(c) for c in np.clip(np.array(fg) + rng.integers(-20, 21, 3), 0, 255))
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=col)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=col)
    elif shape == "cross":
        t = max(2, r // 3)
        d.rectangle([cx - r, cy - t, cx + r, cy + t], fill=col)
        d.rectangle([cx - t, cy - r, cx + t, cy + r], fill=col)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=col, width=max(2, r // 3))
    elif shape == "stripes":
        t = max(2, s // 16)
        for x0 in range(int(rng.integers(0, 2 * t)), w, 4 * t):
            d.rectangle([x0, 0, x0 + t, h], fill=col)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return im


def _fresh(folder: Path) -> Path:
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def write_pets(folder: str | Path = "oxford-iiit-pet", n_per_breed: int = 16, size: int = 64, seed: int = 0) -> Path:
    """Write a small PETS: `folder/images/<breed>_<n>.jpg` (`n` from 1), `n_per_breed` JPEGs of `size`x`size` for
    each of `PET_BREEDS`, and `folder/annotations/list.txt` (the real archive's `<name> <class id> <species>
    <breed id>` lines; species 1 is cat, 2 is dog)."""
    folder = _fresh(Path(folder))
    (folder / "images").mkdir()
    (folder / "annotations").mkdir()
    rng = np.random.default_rng(seed)
    lines = ["#Image CLASS-ID SPECIES BREED ID"]
    for class_id, (breed, bg, fg, shape) in enumerate(PET_BREEDS, start=1):
        cat = breed[0].isupper()
        for n in range(1, n_per_breed + 1):
            name = f"{breed}_{n}"
            _picture(rng, bg, fg, shape, size).save(folder / "images" / f"{name}.jpg", quality=92)
            lines.append(f"{name} {class_id} {1 if cat else 2} {class_id}")
    (folder / "annotations" / "list.txt").write_text("\n".join(lines) + "\n")
    return folder


def write_imagenette(folder: str | Path = "imagenette2", n_train: int = 6, n_valid: int = 2, size: int = 64,
                     seed: int = 0) -> Path:
    """Write a small IMAGENETTE: `folder/train/<wnid>/` (`n_train` JPEGs a class) and `folder/val/<wnid>/`
    (`n_valid` a class), `size`x`size`, named as ImageNet names its files (`<wnid>_<n>.JPEG`,
    `ILSVRC2012_val_<n>.JPEG`)."""
    folder = _fresh(Path(folder))
    rng = np.random.default_rng(seed)
    k = 0
    for wnid, _name, bg, fg, shape in IMAGENETTE_CLASSES:
        for split, n in (("train", n_train), ("val", n_valid)):
            (folder / split / wnid).mkdir(parents=True)
            for i in range(n):
                k += 1
                fname = f"{wnid}_{1000 + i}.JPEG" if split == "train" else f"ILSVRC2012_val_{k:08d}.JPEG"
                _picture(rng, bg, fg, shape, size).save(folder / split / wnid / fname, quality=92)
    return folder


def write_grizzly(file: str | Path = "images/grizzly.jpg", size: tuple[int, int] = (96, 64), seed: int = 0) -> Path:
    """Write a brown picture (a grizzly stand-in) to `file`, making its folder."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    _picture(np.random.default_rng(seed), (70, 120, 60), (110, 70, 40), "circle", size).save(file, quality=92)
    return file


# fastbook's helpers (fastbook/__init__.py), as fastbook writes them
def plot_function(f, tx=None, ty=None, title=None, min=-2, max=2, figsize=(6, 4)):  # noqa: A002 (fastbook's names)
    import matplotlib.pyplot as plt
    import torch

    x = torch.linspace(min, max, 100)
    fig, ax = plt.subplots(figsize=figsize)
    ax.plot(x, f(x))
    if tx is not None:
        ax.set_xlabel(tx)
    if ty is not None:
        ax.set_ylabel(ty)
    if title is not None:
        ax.set_title(title)


def get_image_files_sorted(path, recurse=True, folders=None):
    from minifastai.vision.all import get_image_files

    return get_image_files(path, recurse, folders).sorted()
