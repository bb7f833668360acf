"""fastai's image transforms on plain tensors: item transforms per image, batch augmentation on the device.

Item transforms (`Resize`, `RandomResizedCrop`) run per image on uint8 `(C, H, W)` tensors with
torchvision's kernels (`transforms.v2.functional`). Batch transforms (`Flip`, `Rotate`, `Zoom`, `Warp`,
`Brightness`, `Contrast`, `RandomResizedCropGPU`, from `aug_transforms`) run on whole float batches on the
device, with random parameters drawn per image, and consecutive affine ones share one `grid_sample` (as
fastai composes them). Numbers follow fastai 2.8: draws, probabilities, matrices, logit-space lighting.
torchvision `transforms.v2` objects may be mixed in: deterministic ones run as they are, random ones only
on training data (per image in a batch), random crops become their deterministic version for validation.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import v2

from .augment import (
    AffineTfm,
    Brightness,
    Contrast,
    Dihedral,
    Flip,
    LightingTfm,
    Rotate,
    Warp,
    Zoom,
    _grid_sample,
)
from .tfm_base import (
    _INTERP,
    IMAGENET_STATS,
    ImageTransform,
    PadMode,
    ResizeMethod,
    _check_choice,
    _resize,
    _size_hw,
    crop_pad,
    imagenet_stats,
)

__all__ = [
    "PadMode", "ResizeMethod", "ImageTransform", "Resize", "RandomResizedCrop", "CropPad", "AffineTfm", "Flip",
    "Dihedral", "Rotate", "Zoom", "Warp", "LightingTfm", "Brightness", "Contrast", "RandomResizedCropGPU",
    "Normalize", "aug_transforms", "imagenet_stats", "IMAGENET_STATS",
]


class Resize(ImageTransform):
    """Resize to `size` (int or (h, w)) with `method`: 'crop' (fill, cut the excess: at a random position in
    training, centred otherwise), 'pad' (fit inside, pad with `pad_mode`) or 'squish' (ignore the aspect).
    """

    order = 1

    def __init__(self, size: int | Sequence[int], method: str = ResizeMethod.Crop,
                 pad_mode: str = PadMode.Reflection, resamples: Sequence[str] = ("bilinear", "nearest")) -> None:
        self.size = _size_hw(size)
        self.method = _check_choice(method, ("crop", "pad", "squish"), "method")
        self.pad_mode = _check_choice(pad_mode, ("zeros", "border", "reflection"), "pad_mode")
        self.resamples = tuple(_check_choice(r, tuple(_INTERP), "resamples") for r in resamples)

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        h, w = x.shape[-2:]
        th, tw = self.size
        if self.method == ResizeMethod.Squish:
            return _resize(x, self.size, self.resamples[0])
        pw, ph = (random.random(), random.random()) if train else (0.5, 0.5)
        rw, rh = w / tw, h / th
        m = min(rw, rh) if self.method == ResizeMethod.Crop else max(rw, rh)  # crop: fill; pad: fit inside
        cw, ch = int(m * tw), int(m * th)
        left, top = int(pw * (w - cw)), int(ph * (h - ch))
        return _resize(crop_pad(x, top, left, ch, cw, self.pad_mode), self.size, self.resamples[0])

    def export_args(self) -> dict[str, Any]:
        return {"size": list(self.size), "method": self.method, "pad_mode": self.pad_mode,
                "resamples": list(self.resamples)}


class CropPad(ImageTransform):
    """Center crop or pad to `size` (fastai's `CropPad`)."""

    order = 0

    def __init__(self, size: int | Sequence[int], pad_mode: str = PadMode.Zeros) -> None:
        self.size = _size_hw(size)
        self.pad_mode = _check_choice(pad_mode, ("zeros", "border", "reflection"), "pad_mode")

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        h, w = x.shape[-2:]
        th, tw = self.size
        return crop_pad(x, (h - th) // 2, (w - tw) // 2, th, tw, self.pad_mode)

    def export_args(self) -> dict[str, Any]:
        return {"size": list(self.size), "pad_mode": self.pad_mode}


class RandomResizedCrop(ImageTransform):
    """A random crop of `min_scale`-`max_scale` of the area and aspect in `ratio`, resized to `size`
    (training); validation: resize to `size` plus `val_xtra` of a margin, then a centre crop (fastai)."""

    order = 1

    def __init__(self, size: int | Sequence[int], min_scale: float = 0.08, ratio: Sequence[float] = (3 / 4, 4 / 3),
                 resamples: Sequence[str] = ("bilinear", "nearest"), val_xtra: float = 0.14,
                 max_scale: float = 1.0) -> None:
        self.size = _size_hw(size)
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got min_scale={min_scale}, "
                             f"max_scale={max_scale}")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio={ratio!r} must be (min, max) aspect ratios with 0 < min <= max")
        if not 0 <= val_xtra < 1:
            raise ValueError(f"val_xtra={val_xtra} must be in [0, 1)")
        self.min_scale, self.max_scale, self.val_xtra = float(min_scale), float(max_scale), float(val_xtra)
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.resamples = tuple(_check_choice(r, tuple(_INTERP), "resamples") for r in resamples)

    def params(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random crop, drawn as fastai draws it (10 tries, then centred)."""
        for _ in range(10):
            area = random.uniform(self.min_scale, self.max_scale) * w * h
            ratio = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            nw, nh = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if nw <= w and nh <= h:
                left, top = random.randint(0, w - nw), random.randint(0, h - nh)
                return top, left, nh, nw
        if w / h < self.ratio[0]:
            cw, ch = w, int(w / self.ratio[0])
        elif w / h > self.ratio[1]:
            cw, ch = int(h * self.ratio[1]), h
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        h, w = x.shape[-2:]
        if train:
            top, left, ch, cw = self.params(h, w)
            return _resize(x[..., top:top + ch, left:left + cw], self.size, self.resamples[0])
        th, tw = self.size
        xtra = math.ceil(max(th, tw) * self.val_xtra / 8) * 8
        x = _resize(x, (th + xtra, tw + xtra), self.resamples[0])
        return crop_pad(x, xtra // 2, xtra // 2, th, tw)

    def export_args(self) -> dict[str, Any]:
        return {"size": list(self.size), "min_scale": self.min_scale, "ratio": list(self.ratio),
                "resamples": list(self.resamples), "val_xtra": self.val_xtra, "max_scale": self.max_scale}


class RandomResizedCropGPU(ImageTransform):
    """`RandomResizedCrop` on a whole batch (one crop per batch, fastai): training crops `min_scale`-
    `max_scale` of the area, validation the centre `valid_scale`; both resized to `size`."""

    order = 30

    def __init__(self, size: int | Sequence[int], min_scale: float = 0.08, ratio: Sequence[float] = (3 / 4, 4 / 3),
                 mode: str = "bilinear", valid_scale: float = 1.0, max_scale: float = 1.0) -> None:
        self.size = _size_hw(size)
        if not 0 < min_scale <= max_scale <= 1 or not 0 < valid_scale <= 1:
            raise ValueError(f"need 0 < min_scale <= max_scale <= 1 and 0 < valid_scale <= 1, got "
                             f"min_scale={min_scale}, max_scale={max_scale}, valid_scale={valid_scale}")
        self.min_scale, self.max_scale, self.valid_scale = float(min_scale), float(max_scale), float(valid_scale)
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.mode = _check_choice(mode, ("bilinear", "nearest", "bicubic"), "mode")

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        h, w = x.shape[-2:]
        for _ in range(10 if train else 0):
            area = random.uniform(self.min_scale, self.max_scale) * w * h
            ratio = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            nw, nh = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if nw <= w and nh <= h:
                top, left = random.randint(0, h - nh), random.randint(0, w - nw)
                return self._resize(x[..., top:top + nh, left:left + nw])
        if w / h < self.ratio[0]:
            ch, cw = int(w / self.ratio[0]), w
        elif w / h > self.ratio[1]:
            ch, cw = h, int(h * self.ratio[1])
        else:
            ch, cw = h, w
        if not train:
            ch, cw = int(ch * self.valid_scale), int(cw * self.valid_scale)
        top, left = (h - ch) // 2, (w - cw) // 2
        return self._resize(x[..., top:top + ch, left:left + cw])

    def _resize(self, x: Tensor) -> Tensor:
        n = x.size(0)
        mat = torch.eye(3, device=x.device, dtype=x.dtype).expand(n, 3, 3)[:, :2]
        grid = F.affine_grid(mat, [n, x.size(1), *self.size], align_corners=True)
        return _grid_sample(x, grid, self.mode, PadMode.Reflection, True)

    def export_args(self) -> dict[str, Any]:
        return {"size": list(self.size), "min_scale": self.min_scale, "ratio": list(self.ratio), "mode": self.mode,
                "valid_scale": self.valid_scale, "max_scale": self.max_scale}


class Normalize(ImageTransform):
    """Normalize batches with per-channel `mean` and `std` (last batch transform; `decode` undoes it)."""

    order = 99

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        mean_l, std_l = [float(m) for m in mean], [float(s) for s in std]
        if len(mean_l) != len(std_l) or not mean_l or any(s <= 0 or not math.isfinite(s) for s in std_l):
            raise ValueError(f"Normalize needs as many means as stds (one per channel) and stds > 0, got "
                             f"mean={list(mean)}, std={list(std)}")
        self.mean, self.std = mean_l, std_l
        self._cache: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    @classmethod
    def from_stats(cls, mean: Sequence[float], std: Sequence[float]) -> Normalize:
        """fastai's constructor: `Normalize.from_stats(*imagenet_stats)`."""
        return cls(mean, std)

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        key = (x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = tuple(  # type: ignore[assignment]
                torch.tensor(s, device=x.device, dtype=x.dtype)[:, None, None] for s in (self.mean, self.std))
        return self._cache[key]

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        mean, std = self._stats(x)
        return (x - mean) / std

    def decode(self, x: Tensor) -> Tensor:
        """Undo the normalization."""
        mean, std = self._stats(x)
        return x * std + mean

    def export_args(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std)}


def aug_transforms(mult: float = 1.0, do_flip: bool = True, flip_vert: bool = False, max_rotate: float = 10.0,
                   min_zoom: float = 1.0, max_zoom: float = 1.1, max_lighting: float = 0.2, max_warp: float = 0.2,
                   p_affine: float = 0.75, p_lighting: float = 0.75, xtra_tfms: Sequence[Any] | None = None,
                   size: int | Sequence[int] | None = None, mode: str = "bilinear",
                   pad_mode: str = PadMode.Reflection, align_corners: bool = True, batch: bool = False,
                   min_scale: float = 1.0) -> list[ImageTransform]:
    """fastai's default augmentation, as batch transforms (pass it as `batch_tfms`): flip, warp, rotate,
    zoom (one resampling, probability `p_affine` each), brightness and contrast (`p_lighting`); with
    `size`, the batch is resized (`min_scale < 1`: a `RandomResizedCropGPU` of that size instead)."""
    tkw: dict[str, Any] = dict(size=size if min_scale == 1.0 else None, mode=mode, pad_mode=pad_mode,
                               batch=batch, align_corners=align_corners)
    max_rotate, max_lighting, max_warp = max_rotate * mult, max_lighting * mult, max_warp * mult
    res: list[ImageTransform] = []
    if do_flip:
        res.append(Dihedral(p=0.5, **tkw) if flip_vert else Flip(p=0.5, **tkw))
    if max_warp:
        res.append(Warp(magnitude=max_warp, p=p_affine, **tkw))
    if max_rotate:
        res.append(Rotate(max_deg=max_rotate, p=p_affine, **tkw))
    if min_zoom < 1 or max_zoom > 1:
        res.append(Zoom(min_zoom=min_zoom, max_zoom=max_zoom, p=p_affine, **tkw))
    if max_lighting:
        res.append(Brightness(max_lighting=max_lighting, p=p_lighting, batch=batch))
        res.append(Contrast(max_lighting=max_lighting, p=p_lighting, batch=batch))
    xtra = list(xtra_tfms or [])
    if min_scale != 1.0:
        if size is None:
            raise ValueError("aug_transforms(min_scale=...) crops to a size: pass size= too, e.g. "
                             "aug_transforms(size=224, min_scale=0.75)")
        xtra = [RandomResizedCropGPU(size, min_scale=min_scale, ratio=(1, 1)), *xtra]
    return res + xtra


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
