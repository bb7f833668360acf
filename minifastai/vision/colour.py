"""Colour (lighting) batch transforms, as fastai: `Brightness` and `Contrast` (`LightingTfm`s) change float
batches in logit space, with parameters drawn per image; consecutive ones share one logit/sigmoid
(`apply_lighting`). Training only.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .transform_base import Draw, ImageTransform, _check_prob, _draw_mask

__all__ = ["LightingTfm", "apply_lighting", "Brightness", "Contrast"]


def _logit(x: Tensor) -> Tensor:
    x = x.clamp(1e-7, 1 - 1e-7)
    return -(1 / x - 1).log()


class LightingTfm(ImageTransform):
    """Base of the lighting transforms: applied in logit space; consecutive ones share one logit/sigmoid.
    Training only."""

    order = 40
    train_only = True
    images_only = True  # fastai's lighting changes images only: masks and points pass unchanged

    def __init__(self, max_lighting: float = 0.2, p: float = 0.75, draw: Draw = None, batch: bool = False) -> None:
        if not 0 <= max_lighting < 1:
            raise ValueError(f"max_lighting={max_lighting} must be in [0, 1)")
        self.max_lighting, self.p, self.draw, self.batch = float(max_lighting), _check_prob(p), draw, bool(batch)

    def logit_fn(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        """A function applied to the batch in logit space, drawn for this batch."""
        raise NotImplementedError

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        return apply_lighting([self], x)

    def export_args(self) -> dict[str, Any]:
        return {"max_lighting": self.max_lighting, "p": self.p, "batch": self.batch}


def apply_lighting(tfms: Sequence[LightingTfm], x: Tensor) -> Tensor:
    """sigmoid(f_n(...f_1(logit(x)))) for consecutive lighting transforms (training batches)."""
    fns = [t.logit_fn(x) for t in tfms]
    y = _logit(x)
    for f in fns:
        y = f(y)
    return torch.sigmoid(y)


class Brightness(LightingTfm):
    """Change the brightness of each image by up to `max_lighting`, with probability `p`."""

    def logit_fn(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        lo, hi = 0.5 * (1 - self.max_lighting), 0.5 * (1 + self.max_lighting)

        def default(t: Tensor) -> Tensor:
            if self.batch:
                return t.new_zeros(t.size(0)) + random.uniform(lo, hi)
            return t.new_empty(t.size(0)).uniform_(lo, hi)

        change = _logit(_draw_mask(x, default, self.draw, self.p, 0.5, self.batch))[:, None, None, None]
        return lambda y: y + change


class Contrast(LightingTfm):
    """Change the contrast of each image by a factor in [1 - max_lighting, 1 / (1 - max_lighting)], with
    probability `p`."""

    def logit_fn(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        lo, hi = math.log(1 - self.max_lighting), -math.log(1 - self.max_lighting)

        def default(t: Tensor) -> Tensor:
            if self.batch:
                return torch.exp(t.new_zeros(t.size(0)) + random.uniform(lo, hi))
            return torch.exp(t.new_empty(t.size(0)).uniform_(lo, hi))

        change = _draw_mask(x, default, self.draw, self.p, 1.0, self.batch)[:, None, None, None]
        return lambda y: y * change
