"""The base of image transforms: `ImageTransform`, argument checks, padding, cropping and resizing helpers."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

imagenet_stats: tuple[list[float], list[float]] = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


IMAGENET_STATS: tuple[tuple[float, ...], tuple[float, ...]] = (tuple(imagenet_stats[0]), tuple(imagenet_stats[1]))


MAX_SIZE = 16384  # pixels per side: larger sizes in a transform are refused (an export cannot ask for more)


class PadMode:
    """How pixels outside the image are filled (fastai's names)."""

    Zeros, Border, Reflection = "zeros", "border", "reflection"


class ResizeMethod:
    """How `Resize` fits an image into the target size (fastai's names)."""

    Squish, Crop, Pad = "squish", "crop", "pad"


_TV_PAD = {"zeros": "constant", "border": "edge", "reflection": "reflect"}


_INTERP = {"bilinear": v2.InterpolationMode.BILINEAR, "nearest": v2.InterpolationMode.NEAREST,
           "bicubic": v2.InterpolationMode.BICUBIC}


def _size_hw(size: int | Sequence[int], what: str = "size") -> tuple[int, int]:
    """(h, w) from an int or an (h, w) pair, as fastai reads sizes; checked to be positive and sane."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_SIZE for s in hw):
        raise ValueError(f"{what}={size!r} must be an int or an (height, width) pair of ints in [1, {MAX_SIZE}]")
    return int(hw[0]), int(hw[1])


def _check_prob(p: float, name: str = "p") -> float:
    if not (isinstance(p, (int, float)) and 0 <= p <= 1):
        raise ValueError(f"{name}={p!r} must be a probability in [0, 1]")
    return float(p)


def _check_choice(value: str, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {list(choices)}")
    return value


class ImageTransform:
    """Base of minifastai's image transforms: `__call__(x, train)`; `order` sorts a pipeline (as fastai).

    `train_only` transforms leave validation and inference data unchanged. `export_args()` returns the
    constructor's arguments as plain data, which is how an export stores the transform.
    """

    order: ClassVar[int] = 0
    train_only: ClassVar[bool] = False

    def __call__(self, x: Tensor, train: bool = True) -> Tensor:
        """Apply to `x` (training version when `train`)."""
        if self.train_only and not train:
            return x
        return self.encodes(x, train)

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        """The transform itself; subclasses implement it."""
        raise NotImplementedError

    def export_args(self) -> dict[str, Any]:
        """Constructor arguments as plain data (numbers, strings, lists, None)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.export_args().items())
        return f"{type(self).__name__}({args})"


# ================================================================================================
# Item transforms: uint8 (C, H, W) images, one at a time (also work on (N, C, H, W): one draw per call)
# ================================================================================================
def _reflect_pad(x: Tensor, pad: list[int], mode: str) -> Tensor:
    """`TF.pad` with [left, top, right, bottom]; reflection wider than the image is done in steps."""
    if mode != "reflect":
        return TF.pad(x, pad, padding_mode=mode)
    pad = list(pad)
    while any(pad):
        h, w = x.shape[-2:]
        step = [min(pad[0], w - 1), min(pad[1], h - 1), min(pad[2], w - 1), min(pad[3], h - 1)]
        if not any(step):  # a 1-pixel image cannot be reflected: repeat its edge
            return TF.pad(x, pad, padding_mode="edge")
        x = TF.pad(x, step, padding_mode="reflect")
        pad = [a - b for a, b in zip(pad, step)]
    return x


def crop_pad(x: Tensor, top: int, left: int, height: int, width: int, pad_mode: str = PadMode.Zeros) -> Tensor:
    """The `height` x `width` window at (`top`, `left`) of `x`; parts outside the image are padded (fastai's
    `crop_pad`)."""
    h, w = x.shape[-2:]
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + height, h), min(left + width, w)
    x = x[..., t0:t1, l0:l1]
    pad = [max(-left, 0), max(-top, 0), max(left + width - w, 0), max(top + height - h, 0)]
    return _reflect_pad(x, pad, _TV_PAD[pad_mode]) if any(pad) else x


def _resize(x: Tensor, hw: tuple[int, int], mode: str) -> Tensor:
    if tuple(x.shape[-2:]) == hw:
        return x
    return TF.resize(x, list(hw), interpolation=_INTERP[mode], antialias=mode != "nearest")
