"""Normalization: `Normalize` (per-channel mean and std, the last batch transform; `decode` undoes it) and
ImageNet's statistics (`imagenet_stats` as fastai has them, `IMAGENET_STATS` as tuples). Not tabular's
`Normalize` proc, which fastai keeps apart too.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .transform_base import ImageTransform

__all__ = ["Normalize", "imagenet_stats", "IMAGENET_STATS"]

imagenet_stats: tuple[list[float], list[float]] = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
IMAGENET_STATS: tuple[tuple[float, ...], tuple[float, ...]] = (tuple(imagenet_stats[0]), tuple(imagenet_stats[1]))


class Normalize(ImageTransform):
    """Normalize batches with per-channel `mean` and `std` (last batch transform; `decode` undoes it)."""

    order = 99

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        mean_l, std_l = [float(m) for m in mean], [float(s) for s in std]
        if len(mean_l) != len(std_l) or not mean_l or any(s <= 0 or not math.isfinite(s) for s in std_l):
            raise ValueError(f"Normalize needs as many means as stds (one per channel) and stds > 0, got "
                             f"mean={list(mean)}, std={list(std)}")
        self.mean, self.std = mean_l, std_l
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    @classmethod
    def from_stats(cls, mean: Sequence[float], std: Sequence[float]) -> Normalize:
        """fastai's constructor: `Normalize.from_stats(*imagenet_stats)`."""
        return cls(mean, std)

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        key = (x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = tuple(  # type: ignore[assignment]
                torch.tensor(s, device=x.device, dtype=x.dtype)[:, None, None] for s in (self.mean, self.std))
        return self._cache[key]

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        mean, std = self._stats(x)
        return (x - mean) / std

    def decode(self, x: Tensor) -> Tensor:
        """Undo the normalization."""
        mean, std = self._stats(x)
        return x * std + mean

    def export_args(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std)}
