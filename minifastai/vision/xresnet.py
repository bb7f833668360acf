"""fastai's XResNet (`xresnet18` ... `xresnet152`): the ResNet of "Bag of Tricks" (a three-convolution stem,
average pooling in the shortcut, each block's last BatchNorm starting at 0), randomly initialised as fastai's
`init_cnn` does, with fastai's layer groups in `vision_learner` (stem, the rest of the body, head)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..layers import ConvLayer, ResBlock, SEBlock, SEResNeXtBlock
from .models import ArchMeta, register_arch

__all__ = ["XResNet", "xresnet18", "xresnet34", "xresnet50", "xresnet101", "xresnet152", "xse_resnet18",
           "xse_resnext18", "xresnext18", "xse_resnet34", "xse_resnext34", "xresnext34", "xse_resnet50",
           "xse_resnext50", "xresnext50", "init_cnn", "xresnet_split"]


def init_cnn(m: nn.Module) -> None:
    """fastai's `init_cnn`: every bias 0 (BatchNorm's too), kaiming normal weights for convolutions and linears."""
    if getattr(m, "bias", None) is not None:
        nn.init.constant_(m.bias, 0)  # type: ignore[arg-type]
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight)
    for child in m.children():
        init_cnn(child)


class XResNet(nn.Sequential):
    """fastai's `XResNet(block, expansion, layers)` with its defaults: stem `c_in -> 32 -> 32 -> 64` (stride 2 first),
    3x3 max pooling, one stage of `block`s (`ResBlock`, `SEBlock`, `SEResNeXtBlock`; keywords such as `groups`,
    `reduction` go to them) per entry of `layers` (64, 128, 256, 512 channels, times `expansion`), average pooling,
    flatten, dropout `p` and a linear layer to `n_out`. `XResNet(expansion, layers)` means `block=ResBlock`;
    `ndim=1` or `3` builds fastai's 1d (signals) or 3d (volumes) xresnet."""

    def __init__(self, block: Any, expansion: Any, layers: Sequence[int] | None = None, p: float = 0.0,
                 c_in: int = 3, n_out: int = 1000, stem_szs: Sequence[int] = (32, 32, 64), widen: float = 1.0,
                 ks: int = 3, stride: int = 2, ndim: int = 2, **block_kwargs: Any) -> None:
        if layers is None:  # XResNet(expansion, layers)
            block, expansion, layers = ResBlock, block, expansion
        if not callable(block):
            raise TypeError(f"XResNet: block must be a block builder such as ResBlock or SEBlock, got {block!r}")
        if ks % 2 == 0:
            raise ValueError(f"XResNet: the kernel size must be odd, got ks={ks}")
        if expansion not in (1, 4):
            raise ValueError(f"XResNet: expansion is 1 (basic blocks) or 4 (bottlenecks), got {expansion!r}")
        szs = [c_in, *stem_szs]
        if ndim not in (1, 2, 3):
            raise ValueError(f"XResNet: ndim is 1, 2 or 3 (1d, 2d or 3d convolutions), got {ndim!r}")
        stem = [ConvLayer(szs[i], szs[i + 1], ks, stride=stride if i == 0 else 1, ndim=ndim) for i in range(3)]
        layers = list(layers)
        block_szs = [64 // expansion] + [int(o * widen) for o in [64, 128, 256, 512] + [256] * (len(layers) - 4)]
        stages = [nn.Sequential(*[block(expansion, block_szs[i] if j == 0 else block_szs[i + 1], block_szs[i + 1],
                                        stride=(1 if i == 0 else stride) if j == 0 else 1, ks=ks, ndim=ndim,
                                        **block_kwargs)
                                  for j in range(n)])
                  for i, n in enumerate(layers)]
        pool, avg = getattr(nn, f"MaxPool{ndim}d"), getattr(nn, f"AdaptiveAvgPool{ndim}d")
        super().__init__(*stem, pool(ks, stride=stride, padding=ks // 2), *stages, avg(1), nn.Flatten(),
                         nn.Dropout(p), nn.Linear(block_szs[-1] * expansion, n_out))
        init_cnn(self)


def _xresnet(expansion: int, layers: list[int], weights: Any, kwargs: dict, block: Any = ResBlock,
             **block_kwargs: Any) -> XResNet:
    if weights is not None or kwargs.pop("pretrained", False):
        raise ValueError("the xresnets have no published weights here (fastai's pretrained xresnet50 downloads "
                         "them): pass pretrained=False, or your own weights file")
    kwargs.pop("progress", None)
    return XResNet(block, expansion, layers, **{**block_kwargs, **kwargs})


def xresnet18(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xresnet18: basic blocks, [2, 2, 2, 2]."""
    return _xresnet(1, [2, 2, 2, 2], weights, kwargs)


def xresnet34(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xresnet34: basic blocks, [3, 4, 6, 3]."""
    return _xresnet(1, [3, 4, 6, 3], weights, kwargs)


def xresnet50(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xresnet50: bottlenecks, [3, 4, 6, 3]."""
    return _xresnet(4, [3, 4, 6, 3], weights, kwargs)


def xresnet101(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xresnet101: bottlenecks, [3, 4, 23, 3]."""
    return _xresnet(4, [3, 4, 23, 3], weights, kwargs)


def xresnet152(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xresnet152: bottlenecks, [3, 8, 36, 3]."""
    return _xresnet(4, [3, 8, 36, 3], weights, kwargs)


_SE = {"block": SEBlock, "groups": 1, "reduction": 16}
_SE_NEXT = {"block": SEResNeXtBlock, "groups": 32, "reduction": 16}
_NEXT = {"block": SEResNeXtBlock, "groups": 32, "reduction": 0}


def xse_resnet18(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xse_resnet18: squeeze-and-excitation basic blocks, [2, 2, 2, 2]."""
    return _xresnet(1, [2, 2, 2, 2], weights, kwargs, **_SE)


def xse_resnext18(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xse_resnext18: grouped (32) squeeze-and-excitation basic blocks, [2, 2, 2, 2]."""
    return _xresnet(1, [2, 2, 2, 2], weights, kwargs, **_SE_NEXT)


def xresnext18(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xresnext18: grouped (32) basic blocks, [2, 2, 2, 2]."""
    return _xresnet(1, [2, 2, 2, 2], weights, kwargs, **_NEXT)


def xse_resnet34(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xse_resnet34: squeeze-and-excitation basic blocks, [3, 4, 6, 3]."""
    return _xresnet(1, [3, 4, 6, 3], weights, kwargs, **_SE)


def xse_resnext34(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xse_resnext34: grouped squeeze-and-excitation basic blocks, [3, 4, 6, 3]."""
    return _xresnet(1, [3, 4, 6, 3], weights, kwargs, **_SE_NEXT)


def xresnext34(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xresnext34: grouped basic blocks, [3, 4, 6, 3]."""
    return _xresnet(1, [3, 4, 6, 3], weights, kwargs, **_NEXT)


def xse_resnet50(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xse_resnet50: squeeze-and-excitation bottlenecks, [3, 4, 6, 3]."""
    return _xresnet(4, [3, 4, 6, 3], weights, kwargs, **_SE)


def xse_resnext50(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xse_resnext50: grouped squeeze-and-excitation bottlenecks, [3, 4, 6, 3]."""
    return _xresnet(4, [3, 4, 6, 3], weights, kwargs, **_SE_NEXT)


def xresnext50(*, weights: Any = None, **kwargs: Any) -> XResNet:
    """fastai's xresnext50: grouped bottlenecks, [3, 4, 6, 3]."""
    return _xresnet(4, [3, 4, 6, 3], weights, kwargs, **_NEXT)


def xresnet_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """fastai's xresnet layer groups in `vision_learner`: the stem (`body[:3]`), the rest of the body, the head."""
    body, head = model[0], model[1]  # type: ignore[index]
    return [list(body[:3].parameters()), list(body[3:].parameters()), list(head.parameters())]


XRESNET_META = ArchMeta(cut=-4, split=xresnet_split, group_names=("body[:3]", "body[3:]", "head"))
for _builder in (xresnet18, xresnet34, xresnet50, xresnet101, xresnet152, xse_resnet18, xse_resnext18, xresnext18,
                 xse_resnet34, xse_resnext34, xresnext34, xse_resnet50, xse_resnext50, xresnext50):
    register_arch(_builder.__name__, _builder, XRESNET_META)
