"""The base of minifastai's image transforms: `ImageTransform` (`__call__(x, train)`, `order`, `train_only`,
`export_args`), fastai's `PadMode` and `ResizeMethod`, the argument checks and per-image draws the transforms share,
and how any transform (torchvision `transforms.v2` ones too) sits in a pipeline: `tfm_order`, `is_augmentation`,
`valid_version`.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor
from torchvision.transforms import v2

from ..torch_core import TensorBase, TensorImage

__all__ = ["MAX_SIZE", "PadMode", "ResizeMethod", "ImageTransform", "tfm_order", "is_augmentation", "valid_version"]

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
    images_only: ClassVar[bool] = False  # True: other typed tensors (`TensorMask`, `TensorPoint`) pass unchanged
    pil_ok: ClassVar[bool] = False  # True: an item transform that also takes a PIL image (and returns one)

    def __call__(self, x: Any, train: bool = True, split_idx: int | None = None) -> Any:
        """Apply to `x` (training version when `train`; fastai's `split_idx=0` is training, 1 validation). A tuple
        is transformed element by element; an item transform takes a PIL image too and returns the same type."""
        if split_idx is not None:
            if split_idx not in (0, 1):
                raise ValueError(f"split_idx={split_idx!r} must be 0 (training) or 1 (validation)")
            train = split_idx == 0
        if type(x) is tuple:
            return tuple(self(v, train) for v in x)
        if self.train_only and not train:
            return x
        if isinstance(x, TensorBase) and not isinstance(x, TensorImage) and self.images_only:
            return x
        from PIL import Image

        if isinstance(x, Image.Image):
            if not self.pil_ok:
                raise TypeError(f"{type(self).__name__} transforms batches of (N, C, H, W) tensors, not a PIL image")
            return _on_pil(self, x, train)
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


def _on_pil(tfm: ImageTransform, im: Any, train: bool) -> Any:
    """An item transform applied to a PIL image: as a uint8 (C, H, W) tensor, then back to the image's type."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(im)
    t = torch.from_numpy(arr.copy())
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    out = tfm.encodes(t, train)
    hwc = out[0] if out.shape[0] == 1 else out.permute(1, 2, 0)
    res = Image.fromarray(hwc.contiguous().numpy(), mode=im.mode)
    create = getattr(type(im), "create", None)
    return create(res) if callable(create) else res


Draw = float | Sequence[float] | Callable[[Tensor], Tensor] | None


def _draw_mask(x: Tensor, default: Callable[[Tensor], Tensor], draw: Draw = None, p: float = 0.5,
               neutral: float = 0.0, batch: bool = False) -> Tensor:
    """One value per image: drawn (or `draw`), replaced by `neutral` with probability `1 - p` (fastai)."""
    n = x.size(0)
    if draw is None:
        res = default(x)
    elif callable(draw):
        res = draw(x)
    elif isinstance(draw, (list, tuple)):
        if len(draw) < n:
            raise ValueError(f"draw has {len(draw)} values for a batch of {n}")
        res = torch.tensor(list(draw[:n]), dtype=x.dtype, device=x.device)
    else:
        res = x.new_zeros(n) + float(draw)  # type: ignore[arg-type]
    res = res.to(x.dtype)
    if p == 1.0:
        return res
    if batch:
        return res if random.random() < p else x.new_zeros(n) + neutral
    keep = torch.empty(n, device=x.device).bernoulli_(p).to(x.dtype)
    return (res - neutral) * keep + neutral


# ================================================================================================
# torchvision v2 transforms in a pipeline
# ================================================================================================
_V2_AUG_NAMES = {"ColorJitter", "AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix", "ElasticTransform",
                 "GaussianBlur", "GaussianNoise", "JPEG"}


def is_augmentation(t: Any) -> bool:
    """Random transforms augment training data only: minifastai's `train_only` ones and torchvision's
    `Random*`, ColorJitter, AutoAugment, ..."""
    if isinstance(t, ImageTransform):
        return t.train_only
    name = type(t).__name__
    return name.startswith("Random") or name in _V2_AUG_NAMES


def valid_version(t: Any) -> list:
    """What a torchvision transform becomes for validation and inference: random crops become centre
    crops, other augmentation is dropped, deterministic transforms stay."""
    if isinstance(t, v2.Compose):
        return [x for s in t.transforms for x in valid_version(s)]
    if isinstance(t, v2.RandomResizedCrop):
        return [v2.Resize(min(t.size), antialias=True), v2.CenterCrop(list(t.size))]
    if isinstance(t, v2.RandomCrop):
        return [v2.CenterCrop(list(t.size))]
    return [] if is_augmentation(t) else [t]


def tfm_order(t: Any) -> int:
    """Where a transform goes in a pipeline (fastai's `order`; torchvision's Normalize last, others 0)."""
    if isinstance(t, ImageTransform):
        return t.order
    return 99 if isinstance(t, v2.Normalize) else 0
