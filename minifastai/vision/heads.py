"""fastai's head and body cutting, shared by torchvision and timm models: `AdaptiveConcatPool2d`, `create_head`
(pool, flatten, BatchNorm-Dropout-Linear blocks), `create_body` (a model without its pooling and classifier),
`num_features` (the channels a body outputs) and `check_head_args` (the head's arguments, checked where they come
from: `vision_learner`'s keywords or an export's entries).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..layers import BatchNorm, SigmoidRange

__all__ = ["AdaptiveConcatPool2d", "create_head", "create_body", "num_features", "check_head_args", "has_pool_type",
           "check_y_range"]


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
                pool: bool = True, concat_pool: bool = True, first_bn: bool = True, bn_final: bool = False,
                lin_first: bool = False, y_range: tuple[float, float] | None = None, *,
                init: Callable[[torch.Tensor], Any] | None = nn.init.kaiming_normal_) -> nn.Sequential:
    """fastai's head for a body with `nf` output channels (fastai's arguments, in fastai's order).

    Pool (`AdaptiveConcatPool2d`, or average pooling without `concat_pool`; nothing with `pool=False`, for bodies
    that output (N, nf) features) and flatten, then one block per size in `[2*nf (nf), *lin_ftrs (default [512]),
    n_out]`: BatchNorm1d (the first only with `first_bn`), Dropout, Linear without bias, ReLU but in the last;
    with `lin_first` each block is Linear-ReLU-BatchNorm-Dropout after a first Dropout, and a plain Linear ends
    it. Dropout defaults to `[ps/2, ..., ps]`. `bn_final` adds a BatchNorm1d, `y_range` a `SigmoidRange`.
    Linear weights get `init` (kaiming normal, as fastai's `vision_learner` applies to its head; None: torch's).
    """
    if pool and concat_pool:
        nf *= 2
    ftrs = [nf, *([512] if lin_ftrs is None else lin_ftrs), n_out]
    n_blocks = len(ftrs) - 1
    if isinstance(ps, (int, float)):
        drops = [ps / 2] * (n_blocks - 1) + [ps]
    else:
        drops = list(ps)
        if len(drops) != n_blocks:
            raise ValueError(f"ps has {len(drops)} dropout values for {n_blocks} head blocks ({ftrs}); "
                             "give one per block or a single float")
    bns = [first_bn] + [True] * (n_blocks - 1)
    layers: list[nn.Module] = []
    if pool:
        layers += [AdaptiveConcatPool2d() if concat_pool else nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if lin_first:
        layers.append(nn.Dropout(drops.pop(0)))
    blocks = list(zip(ftrs[:-1], ftrs[1:], bns, drops))  # with lin_first one fewer block, as fastai's
    for i, (ni, no, bn, p) in enumerate(blocks):
        lin: list[nn.Module] = [nn.Linear(ni, no, bias=not bn)]
        if i < n_blocks - 1:
            lin.append(nn.ReLU(inplace=True))
        norm: list[nn.Module] = [BatchNorm(no if lin_first else ni, ndim=1)] if bn else []
        if p:
            norm.append(nn.Dropout(p))
        layers += lin + norm if lin_first else norm + lin
    if lin_first:
        layers.append(nn.Linear(ftrs[-2], n_out))
    if bn_final:
        layers.append(nn.BatchNorm1d(ftrs[-1], momentum=0.01))
    if y_range is not None:
        layers.append(SigmoidRange(*y_range))
    if init is not None:
        for m in layers:
            if isinstance(m, nn.Linear):
                init(m.weight)
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


def has_pool_type(m: nn.Module) -> bool:
    """fastai's `has_pool_type`: `m` or a module inside it is a pooling layer (a class name ending in
    `Pool1d`/`2d`/`3d`)."""
    return any(re.search(r"Pool[123]d$", type(x).__name__) for x in m.modules())


def _update_first_layer(model: nn.Module, n_in: int, pretrained: bool) -> None:
    """fastai's: the first `Conv2d` takes `n_in` channels instead of 3. From pretrained weights, one channel gets
    their sum over the RGB channels, two channels the first two times 1.5, more the three and zeros after."""
    if n_in == 3:
        return
    found = next(((parent, name, m) for parent in model.modules() for name, m in parent.named_children()
                  if isinstance(m, nn.Conv2d)), None)
    if found is None:
        raise ValueError(f"n_in={n_in} needs a Conv2d first layer to change, and {type(model).__name__} has none")
    parent, name, conv = found
    if conv.in_channels != 3:
        raise ValueError(f"n_in={n_in}: the first Conv2d takes {conv.in_channels} channels, not 3")
    new = nn.Conv2d(n_in, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,  # type: ignore[arg-type]
                    conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)  # type: ignore[arg-type]
    if pretrained:
        with torch.no_grad():
            w = conv.weight
            if n_in == 1:
                new.weight.copy_(w.sum(dim=1, keepdim=True))
            elif n_in == 2:
                new.weight.copy_(w[:, :2] * 1.5)
            else:
                new.weight[:, :3] = w
                new.weight[:, 3:] = 0
    setattr(parent, name, new)


def create_body(model: nn.Module, n_in: int = 3, pretrained: bool = True,
                cut: int | Callable[[nn.Module], nn.Module] | None = None) -> nn.Sequential:
    """fastai's `create_body`: the model without its pooling and classifier, taking `n_in` input channels.

    `cut`: `children[:cut]`, or a function `model -> body`; by default, as fastai, the children before the last
    one that holds a pooling layer, and for a model with no pooling child, the children before the trailing
    ones that have no convolution (a classifier). With `n_in != 3` the first Conv2d is rebuilt for `n_in`
    channels, from the pretrained weights when `pretrained` (see `_update_first_layer`). Models whose forward does
    more than run their children in order (e.g. Inception's auxiliary branch) need an explicit `cut`.
    """
    if isinstance(n_in, bool) or not isinstance(n_in, int) or n_in < 1:
        raise ValueError(f"create_body: n_in={n_in!r} must be a positive int (input channels)")
    if not (cut is None or callable(cut) or (isinstance(cut, int) and not isinstance(cut, bool))):
        raise TypeError(f"create_body: cut must be an int, a function model -> body or None, got {cut!r}")
    _update_first_layer(model, n_in, pretrained)
    if callable(cut):
        body = cut(model)
        return body if isinstance(body, nn.Sequential) else nn.Sequential(body)
    children = list(model.children())
    if cut is None:
        pooled = [i for i, c in enumerate(children) if has_pool_type(c)]
        if pooled:
            cut = pooled[-1]
        else:
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


def check_y_range(y_range: Any, where: str) -> tuple[float, float] | None:
    """`y_range` as (low, high) floats with low < high, or None; anything else is a ValueError (prefixed with
    `where`)."""
    if y_range is None:
        return None
    try:
        lo, hi = (float(v) for v in y_range)
    except (TypeError, ValueError):
        raise ValueError(f"{where}y_range={y_range!r} must be (low, high), two numbers") from None
    if not (lo < hi) or lo != lo or hi != hi or abs(lo) == float("inf") or abs(hi) == float("inf"):
        raise ValueError(f"{where}y_range={y_range!r} must be (low, high) with finite low < high")
    return lo, hi
