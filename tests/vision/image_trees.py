"""Shared by the vision tests: a folder tree of random PNG images, and an export rewritten as a crafted one."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from minifastai.persist import with_checksum


def write_tree(root: Path, n_per_class: int = 5, classes=("a", "b"), size=(6, 6)) -> Path:
    """`root/{train,valid}/<class>/<i>.png`: `n_per_class` random RGB images of `size` per class and split."""
    rng = np.random.default_rng(0)
    for split in ("train", "valid"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(root / split / c / f"{i}.png")
    return root


def tampered(tmp_path: Path, state: dict, change: Callable[[dict], Any]) -> Path:
    """`state` (an export's, read with torch.load) changed by `change`, written with a valid checksum, as a crafted
    file would be; its path."""
    state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}
    state["dls"] = {**state["dls"], "item_tfms": [dict(d) for d in state["dls"]["item_tfms"]],
                    "batch_tfms": [dict(d) for d in state["dls"].get("batch_tfms", [])]}
    state.pop("checksum", None)
    change(state)
    path = tmp_path / "tampered.pkl"
    torch.save(with_checksum(state), path)
    return path
