"""fastai's heads: `AdaptiveConcatPool2d` and `create_head`, shared by torchvision and timm models."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn


class AdaptiveConcatPool2d(nn.Module):
    """Adaptive max pooling and adaptive average pooling, concatenated on the channel axis (max first)."""

    def __init__(self, size: int | tuple[int, int] = 1) -> None:
        super().__init__()
        self.size = size
        self.mp, self.ap = nn.AdaptiveMaxPool2d(size), nn.AdaptiveAvgPool2d(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 2C, size, size)."""
        return torch.cat([self.mp(x), self.ap(x)], 1)


def create_head(nf: int, n_out: int, lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                concat_pool: bool = True, init: Callable[[torch.Tensor], Any] = nn.init.kaiming_normal_,
                pool: bool = True) -> nn.Sequential:
    """fastai's head for a body with `nf` output channels: pool, flatten, BN1d-Dropout-Linear(no bias)-ReLU.

    Sizes are `[2*nf (nf without concat_pool), *lin_ftrs (default [512]), n_out]`; dropout defaults to
    `[ps/2, ..., ps]`; the last block has no ReLU. Linear weights get `init` (kaiming normal). With
    `pool=False` (bodies that output pooled (N, nf) features) there is no pooling layer and the sizes start
    at `nf` (fastai's `create_head(pool=False)`).
    """
    ftrs = [nf * 2 if concat_pool and pool else nf, *([512] if lin_ftrs is None else lin_ftrs), n_out]
    n_blocks = len(ftrs) - 1
    if isinstance(ps, (int, float)):
        drops = [ps / 2] * (n_blocks - 1) + [ps]
    else:
        drops = list(ps)
        if len(drops) != n_blocks:
            raise ValueError(f"ps has {len(drops)} dropout values for {n_blocks} head blocks ({ftrs}); "
                             "give one per block or a single float")
    layers: list[nn.Module] = []
    if pool:
        layers += [AdaptiveConcatPool2d() if concat_pool else nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    for i, (ni, no, p) in enumerate(zip(ftrs[:-1], ftrs[1:], drops)):
        layers += [nn.BatchNorm1d(ni)]
        if p:
            layers += [nn.Dropout(p)]
        lin = nn.Linear(ni, no, bias=False)
        init(lin.weight)
        layers += [lin]
        if i < n_blocks - 1:
            layers += [nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)
