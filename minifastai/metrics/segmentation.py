"""Segmentation metrics (fastai's names): foreground accuracy, Dice, multi-class Dice, Jaccard.

The counts stay tensors on the device during the validation pass; `value` reads them once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..torch_core import flatten_check
from .core import Metric

if TYPE_CHECKING:
    from ..learner import Learner


def foreground_acc(inp: torch.Tensor, targ: torch.Tensor, bkg_idx: int = 0, axis: int = 1) -> torch.Tensor:
    """Accuracy over the pixels whose target is not the background class `bkg_idx`."""
    targ = targ.squeeze(1)
    mask = targ != bkg_idx
    return (inp.argmax(dim=axis)[mask] == targ[mask]).float().mean()


class Dice(Metric):
    """Dice coefficient `2 |pred ∩ targ| / (|pred| + |targ|)` for a binary mask, over the validation set."""

    def __init__(self, axis: int = 1) -> None:
        self.axis = axis
        self.reset()

    def reset(self) -> None:
        """Zero the intersection and union counts."""
        self.inter: Any = 0
        self.union: Any = 0

    def accumulate(self, learn: Learner) -> None:
        """Add the batch's intersection and union (as tensors, on the device)."""
        pred, targ = flatten_check(learn.pred.argmax(dim=self.axis), learn.y)
        self.inter = self.inter + (pred * targ).float().sum()
        self.union = self.union + (pred + targ).float().sum()

    @property
    def value(self) -> float | None:
        """2 * intersection / union (None when both masks are empty)."""
        union = float(self.union)
        return 2.0 * float(self.inter) / union if union > 0 else None


class JaccardCoeff(Dice):
    """Jaccard index `|pred ∩ targ| / |pred ∪ targ|` for a binary mask (from Dice's counts)."""

    @property
    def value(self) -> float | None:
        """intersection / (union - intersection) (None when both masks are empty)."""
        union, inter = float(self.union), float(self.inter)
        return inter / (union - inter) if union > 0 else None


class DiceMulti(Metric):
    """Mean over classes of each class's Dice coefficient (macro F1) for multi-class segmentation; a class absent
    from both predictions and targets is left out of the mean."""

    def __init__(self, axis: int = 1) -> None:
        self.axis = axis
        self.reset()

    def reset(self) -> None:
        """Forget every class's counts."""
        self.inter: dict[int, Any] = {}
        self.union: dict[int, Any] = {}

    def accumulate(self, learn: Learner) -> None:
        """Add each class's intersection and union for this batch."""
        pred, targ = flatten_check(learn.pred.argmax(dim=self.axis), learn.y)
        for c in range(learn.pred.shape[self.axis]):
            p, t = (pred == c).float(), (targ == c).float()
            self.inter[c] = self.inter.get(c, 0) + (p * t).sum()
            self.union[c] = self.union.get(c, 0) + (p + t).sum()

    @property
    def value(self) -> float:
        """The mean of the classes' Dice coefficients."""
        scores = [2.0 * float(self.inter[c]) / float(self.union[c]) if float(self.union[c]) > 0 else np.nan
                  for c in self.inter]
        return float(np.nanmean(scores)) if scores else float("nan")
