"""Layers fastai's models share (fastai's `fastai.layers`): `BatchNorm` with fastai's initial values,
`sigmoid_range`, `SigmoidRange`, `ConvLayer`, `ResBlock` and its squeeze-and-excitation and ResNeXt forms
(`SEModule`, `SEBlock`, `SEResNeXtBlock`). The vision head, the xresnets and the tabular model build on them."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["BatchNorm", "sigmoid_range", "SigmoidRange", "ConvLayer", "ResBlock", "SEModule", "SEBlock",
           "SEResNeXtBlock"]


def _nd(name: str, ndim: int, who: str) -> Any:
    """torch's `{name}{ndim}d` layer class (`Conv`, `BatchNorm`, `AvgPool`, ...), for ndim 1, 2 or 3."""
    if ndim not in (1, 2, 3):
        raise ValueError(f"{who}: ndim is 1, 2 or 3, got {ndim!r}")
    return getattr(nn, f"{name}{ndim}d")


def BatchNorm(nf: int, ndim: int = 2, zero: bool = False, **kwargs: object) -> nn.Module:  # noqa: N802 (fastai's)
    """fastai's `BatchNorm`: a `BatchNorm{ndim}d` of `nf` features with weight 1 (0 with `zero`) and bias 1e-3."""
    bn = _nd("BatchNorm", ndim, "BatchNorm")(nf, **kwargs)
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


class ConvLayer(nn.Sequential):
    """fastai's `ConvLayer`: an `ndim`-d convolution (2d by default; no bias when it is followed by BatchNorm),
    BatchNorm (weight 0 with `zero_bn`, fastai's `NormType.BatchZero`) and `act_cls` (ReLU; None for none), in
    that order."""

    def __init__(self, ni: int, nf: int, ks: int = 3, stride: int = 1, padding: int | None = None,
                 bn: bool = True, zero_bn: bool = False, act_cls: type[nn.Module] | None = nn.ReLU,
                 groups: int = 1, ndim: int = 2) -> None:
        pad = (ks - 1) // 2 if padding is None else padding
        conv = _nd("Conv", ndim, "ConvLayer")(ni, nf, ks, stride=stride, padding=pad, bias=not bn, groups=groups)
        nn.init.kaiming_normal_(conv.weight)
        layers: list[nn.Module] = [conv]
        if bn:
            layers.append(BatchNorm(nf, ndim, zero=zero_bn))
        if act_cls is not None:
            layers.append(act_cls())
        super().__init__(*layers)


class ResBlock(nn.Module):
    """fastai's `ResBlock` (its default arguments): `act(convpath(x) + idpath(x))`. The conv path is two 3x3
    ConvLayers (`expansion=1`) or 1x1-3x3-1x1 (`expansion=4`), its last BatchNorm starting at 0; the identity path
    average-pools when `stride > 1` and projects with a 1x1 ConvLayer when the channels change."""

    def __init__(self, expansion: int, ni: int, nf: int, stride: int = 1, groups: int = 1,
                 reduction: int | None = None, nh1: int | None = None, nh2: int | None = None, ks: int = 3,
                 ndim: int = 2) -> None:
        super().__init__()
        nh2 = nf if nh2 is None else nh2
        nh1 = nh2 if nh1 is None else nh1
        ni, nf = ni * expansion, nf * expansion
        if expansion == 1:
            path: list[nn.Module] = [ConvLayer(ni, nh2, ks, stride=stride, groups=groups, ndim=ndim),
                                     ConvLayer(nh2, nf, ks, zero_bn=True, act_cls=None, ndim=ndim)]
        else:
            path = [ConvLayer(ni, nh1, 1, ndim=ndim), ConvLayer(nh1, nh2, ks, stride=stride, groups=groups, ndim=ndim),
                    ConvLayer(nh2, nf, 1, zero_bn=True, act_cls=None, ndim=ndim)]
        if reduction:
            path.append(SEModule(nf, reduction, ndim=ndim))
        self.convpath = nn.Sequential(*path)
        idpath: list[nn.Module] = []
        if stride != 1:
            idpath.append(_nd("AvgPool", ndim, "ResBlock")(stride, ceil_mode=True))
        if ni != nf:
            idpath.append(ConvLayer(ni, nf, 1, act_cls=None, ndim=ndim))
        self.idpath = nn.Sequential(*idpath)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The residual sum, activated."""
        return self.act(self.convpath(x) + self.idpath(x))


class SEModule(nn.Module):
    """fastai's squeeze-and-excitation: the input times a per-channel gate (average pool, a 1x1 convolution down to
    `ceil(ch // reduction / 8) * 8` channels, ReLU, a 1x1 convolution back, sigmoid)."""

    def __init__(self, ch: int, reduction: int, ndim: int = 2) -> None:
        super().__init__()
        nf = math.ceil(ch // reduction / 8) * 8
        self.gate = nn.Sequential(_nd("AdaptiveAvgPool", ndim, "SEModule")(1),
                                  ConvLayer(ch, nf, 1, bn=False, ndim=ndim),
                                  ConvLayer(nf, ch, 1, bn=False, act_cls=nn.Sigmoid, ndim=ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` scaled by its gate."""
        return x * self.gate(x)


def SEBlock(expansion: int, ni: int, nf: int, groups: int = 1, reduction: int = 16,  # noqa: N802 (fastai's)
            stride: int = 1, **kwargs: Any) -> ResBlock:
    """fastai's `SEBlock`: a `ResBlock` with squeeze-and-excitation, inner widths `2 * nf` and `nf * expansion`."""
    return ResBlock(expansion, ni, nf, stride=stride, groups=groups, reduction=reduction, nh1=nf * 2,
                    nh2=nf * expansion, **kwargs)


def SEResNeXtBlock(expansion: int, ni: int, nf: int, groups: int = 32, reduction: int = 16,  # noqa: N802
                   stride: int = 1, base_width: int = 4, **kwargs: Any) -> ResBlock:
    """fastai's `SEResNeXtBlock`: a grouped (ResNeXt) `ResBlock`, `groups` groups of `base_width` per 64 channels,
    with squeeze-and-excitation unless `reduction` is 0."""
    w = math.floor(nf * (base_width / 64)) * groups
    return ResBlock(expansion, ni, nf, stride=stride, groups=groups, reduction=reduction, nh2=w, **kwargs)
