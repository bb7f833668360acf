"""Layers fastai's models share (fastai's `fastai.layers`): `BatchNorm` with fastai's initial values,
`sigmoid_range` and `SigmoidRange`. The vision head and the tabular model both build on them."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["BatchNorm", "sigmoid_range", "SigmoidRange"]


def BatchNorm(nf: int, ndim: int = 2, zero: bool = False, **kwargs: object) -> nn.Module:  # noqa: N802 (fastai's)
    """fastai's `BatchNorm`: a `BatchNorm{ndim}d` of `nf` features with weight 1 (0 with `zero`) and bias 1e-3."""
    if ndim not in (1, 2, 3):
        raise ValueError(f"BatchNorm: ndim is 1, 2 or 3, got {ndim!r}")
    bn = getattr(nn, f"BatchNorm{ndim}d")(nf, **kwargs)
    if bn.affine:
        with torch.no_grad():
            bn.weight.fill_(0.0 if zero else 1.0)
            bn.bias.fill_(1e-3)
    return bn


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Sigmoid scaled to (low, high)."""
    return torch.sigmoid(x) * (high - low) + low


class SigmoidRange(nn.Module):
    """`sigmoid_range` as a layer."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Squash `x` into (low, high)."""
        return sigmoid_range(x, self.low, self.high)

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"
