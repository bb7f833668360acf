"""MixUp and CutMix (fastai's `fastai.callback.mixup`): training batches blended with a shuffled copy of
themselves, and the loss blended the same way.

`MixUp(alpha=0.4)`: each item `x` becomes `lerp(x_shuffled, x, lam)` with `lam = max(l, 1 - l)`, `l ~ Beta(alpha,
alpha)` per item. `CutMix(alpha=1.0)`: a random box of each image is pasted from the shuffled batch, `lam` the
share of the image left. For class targets (a loss with `y_int`, or integer targets) the loss becomes
`lerp(loss(pred, y_shuffled), loss(pred, y), lam)`; other targets are blended as the inputs. Validation is
untouched. The random draws are fastai's, in fastai's order, so a seeded run gives fastai's batches.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions.beta import Beta

from ..losses import per_item_loss
from .core import Callback

__all__ = ["reduce_loss", "MixHandler", "MixUp", "CutMix"]


def reduce_loss(loss: Tensor, reduction: str = "mean") -> Tensor:
    """`loss` reduced as `reduction` says (`'mean'`, `'sum'`, anything else: as it is)."""
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _unsqueeze(t: Tensor, n: int) -> Tensor:
    return t.reshape(*t.shape, *([1] * n))


class MixHandler(Callback):
    """Base of MixUp and CutMix: during training the learner's loss blends the two targets by `lam`."""

    run_valid = False

    def __init__(self, alpha: float = 0.5) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"{type(self).__name__}: alpha must be a number > 0 (the Beta distribution's), "
                             f"got {alpha!r}")
        self.alpha = float(alpha)
        self.distrib = Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
        self.lam: Tensor | float = 1.0
        self.yb1: tuple = ()
        self.stack_y = False
        self._old_lf: Any = None

    def before_train(self) -> None:
        """Put the blending loss in place for class targets (a loss with fastai's `y_int`)."""
        lf = self.learn.loss_func
        self.stack_y = bool(getattr(lf, "y_int", False)) or self._int_targets()
        if self.stack_y:
            self._old_lf, self._none_lf = lf, per_item_loss(lf)
            self.learn.loss_func = self.lf

    def _int_targets(self) -> bool:
        """torch's cross-entropy (no fastai `y_int`) takes class indices too: blend its losses."""
        return isinstance(self.learn.loss_func, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss))

    def after_train(self) -> None:
        """Give the learner its loss back."""
        if self._old_lf is not None:
            self.learn.loss_func, self._old_lf = self._old_lf, None

    def after_cancel_train(self) -> None:
        """A cancelled training phase gives the loss back too."""
        self.after_train()

    def after_cancel_fit(self) -> None:
        """So does a cancelled fit."""
        self.after_train()

    def after_fit(self) -> None:
        """And every fit's end, even after an error."""
        self.after_train()

    def lf(self, pred: Tensor, *yb: Any) -> Tensor:
        """The original loss on both targets, blended by `lam` (item by item), then reduced as it reduces."""
        if not self.learn.training:
            return self._old_lf(pred, *yb)
        loss = torch.lerp(self._none_lf(pred, *self.yb1), self._none_lf(pred, *yb), self.lam)
        return reduce_loss(loss, getattr(self._old_lf, "reduction", "mean"))


class MixUp(MixHandler):
    """fastai's MixUp (https://arxiv.org/abs/1710.09412): each training item blended with another of its batch."""

    def __init__(self, alpha: float = 0.4) -> None:
        super().__init__(alpha)

    def before_batch(self) -> None:
        """Draw `lam` per item and a shuffle, and blend the inputs (and float targets)."""
        x, y = self.learn.x, self.learn.y
        lam = self.distrib.sample((y.size(0),)).squeeze().to(x.device)
        lam = torch.stack([lam, 1 - lam], 1)
        self.lam = lam.max(1)[0]
        shuffle = torch.randperm(y.size(0)).to(x.device)
        xb, yb = self.learn.xb, self.learn.yb
        xb1, self.yb1 = tuple(t[shuffle] for t in xb), tuple(t[shuffle] for t in yb)
        w = _unsqueeze(self.lam, x.dim() - 1)
        self.learn.xb = tuple(torch.lerp(a, b, w) for a, b in zip(xb1, xb))
        if not self.stack_y:
            self.learn.yb = tuple(torch.lerp(a, b, _unsqueeze(self.lam, y.dim() - 1)) for a, b in zip(self.yb1, yb))


class CutMix(MixHandler):
    """fastai's CutMix (https://arxiv.org/abs/1905.04899): a random box of each training image from another."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha)

    def before_batch(self) -> None:
        """Draw `lam`, a shuffle and a box; paste the box from the shuffled images."""
        x, y = self.learn.x, self.learn.y
        if x.dim() != 4:
            raise ValueError(f"CutMix cuts boxes out of image batches (N, C, H, W); got inputs of shape "
                             f"{tuple(x.shape)}")
        bs, _, h, w = x.size()
        lam = self.distrib.sample((1,)).to(x.device)
        shuffle = torch.randperm(bs).to(x.device)
        xb1, self.yb1 = x[shuffle], (y[shuffle],)
        x1, y1, x2, y2 = self.rand_bbox(w, h, lam, x.device)
        mixed = x.clone()
        mixed[..., y1:y2, x1:x2] = xb1[..., y1:y2, x1:x2]
        self.learn.xb = (mixed, *self.learn.xb[1:])
        self.lam = float(1 - ((x2 - x1) * (y2 - y1)) / float(w * h))
        if not self.stack_y:
            self.learn.yb = tuple(torch.lerp(a, b, self.lam) for a, b in zip(self.yb1, self.learn.yb))

    @staticmethod
    def rand_bbox(w: int, h: int, lam: Tensor, device: torch.device | None = None) -> tuple[int, int, int, int]:
        """fastai's box: sides `round(W * sqrt(1 - lam))` by `round(H * sqrt(1 - lam))` around a uniform centre,
        clipped to the image; (x1, y1, x2, y2)."""
        cut_rat = torch.sqrt(1.0 - lam)
        cut_w = torch.round(w * cut_rat).long()
        cut_h = torch.round(h * cut_rat).long()
        cx = torch.randint(0, w, (1,))
        cy = torch.randint(0, h, (1,))
        x1 = torch.clamp(cx - torch.div(cut_w, 2, rounding_mode="floor"), 0, w)
        y1 = torch.clamp(cy - torch.div(cut_h, 2, rounding_mode="floor"), 0, h)
        x2 = torch.clamp(cx + torch.div(cut_w, 2, rounding_mode="floor"), 0, w)
        y2 = torch.clamp(cy + torch.div(cut_h, 2, rounding_mode="floor"), 0, h)
        return int(x1), int(y1), int(x2), int(y2)
