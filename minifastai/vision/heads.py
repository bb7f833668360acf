"""fastai's head and body cutting, shared by torchvision and timm models: `AdaptiveConcatPool2d`, `create_head`
(pool, flatten, BatchNorm-Dropout-Linear blocks), `create_body` (a model without its pooling and classifier),
`num_features` (the channels a body outputs) and `check_head_args` (the head's arguments, checked where they come
from: `vision_learner`'s keywords or an export's entries).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["AdaptiveConcatPool2d", "create_head", "create_body", "num_features", "check_head_args"]


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


_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AvgPool2d, nn.MaxPool2d, AdaptiveConcatPool2d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _is_head_like(m: nn.Module) -> bool:
    """A trailing child that belongs to the classifier: a pooling layer, a block that ends with adaptive
    pooling (squeezenet's classifier), or a block without convolutions (avgpool, fc, classifier)."""
    mods = list(m.modules())
    leaves = [x for x in mods if not list(x.children())]
    adaptive = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, AdaptiveConcatPool2d)
    return (isinstance(m, _POOLS) or (bool(leaves) and isinstance(leaves[-1], adaptive))
            or not any(isinstance(x, _CONVS) for x in mods))


def create_body(model: nn.Module, cut: int | Callable[[nn.Module], nn.Module] | None = None) -> nn.Sequential:
    """The model without its pooling and classifier: `children[:cut]`, `cut(model)`, or (None) automatic.

    Automatic: drop the trailing children that pool or have no convolution (torchvision's avgpool/fc,
    classifier blocks). Models whose forward does more than run their children in order (e.g. Inception's
    auxiliary branch) need an explicit `cut`.
    """
    if callable(cut):
        body = cut(model)
        return body if isinstance(body, nn.Sequential) else nn.Sequential(body)
    children = list(model.children())
    if cut is None:
        cut = len(children)
        while cut > 0 and _is_head_like(children[cut - 1]):
            cut -= 1
    body = nn.Sequential(*children[:cut])
    if len(body) == 0:
        names = [n for n, _ in model.named_children()]
        raise ValueError(f"cutting {type(model).__name__} at {cut} leaves an empty body; pass cut= (an index "
                         f"into its children {names} or a function model -> body)")
    return body


def num_features(body: nn.Module) -> int:
    """Channels of the body's output, from one dummy forward pass (eval mode, no grad, mode restored)."""
    was_training = body.training
    body.eval()
    try:
        with torch.no_grad():
            for size in (64, 224):
                try:
                    out = body(torch.zeros(1, 3, size, size))
                    break
                except RuntimeError as e:
                    err = e
            else:
                raise ValueError(f"the body fails on a 3x224x224 input ({err}); pass cut= to cut the model "
                                 "elsewhere")
    finally:
        body.train(was_training)
    if out.ndim != 4:
        raise ValueError(f"the body outputs shape {tuple(out.shape)}, not (N, C, H, W) feature maps: "
                         "vision_learner needs a CNN body; pass cut= or build a Learner with your own model")
    return out.shape[1]


def check_head_args(n_out: Any, lin_ftrs: Any, ps: Any, concat_pool: Any, where: str) -> None:
    """ValueError (prefixed with `where`) unless the head's arguments are plain, sane values."""
    if not (isinstance(n_out, int) and not isinstance(n_out, bool) and n_out > 0):
        raise ValueError(f"{where}n_out={n_out!r} must be a positive int (the number of classes)")
    if lin_ftrs is not None and not (isinstance(lin_ftrs, (list, tuple)) and all(
            isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in lin_ftrs)):
        raise ValueError(f"{where}lin_ftrs={lin_ftrs!r} must be a list of positive ints (hidden layer sizes)")
    drops = [ps] if isinstance(ps, (int, float)) and not isinstance(ps, bool) else ps
    if not (isinstance(drops, (list, tuple)) and all(
            isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p < 1 for p in drops)):
        raise ValueError(f"{where}ps={ps!r} must be a dropout probability in [0, 1) or a list of them")
    if not isinstance(concat_pool, bool):
        raise ValueError(f"{where}concat_pool={concat_pool!r} must be True or False")
