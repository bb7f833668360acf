"""fastai's image transforms on plain tensors: item transforms per image, batch augmentation on the device.

Item transforms (`Resize`, `RandomResizedCrop`) run per image on uint8 `(C, H, W)` tensors with
torchvision's kernels (`transforms.v2.functional`). Batch transforms (`Flip`, `Rotate`, `Zoom`, `Warp`,
`Brightness`, `Contrast`, `RandomResizedCropGPU`, from `aug_transforms`) run on whole float batches on the
device, with random parameters drawn per image, and consecutive affine ones share one `grid_sample` (as
fastai composes them). Numbers follow fastai 2.8: draws, probabilities, matrices, logit-space lighting.
torchvision `transforms.v2` objects may be mixed in: deterministic ones run as they are, random ones only
on training data (per image in a batch), random crops become their deterministic version for validation.

This module holds `aug_transforms` and gathers the transforms from where they live: `transform_base`
(`ImageTransform`, `PadMode`, `ResizeMethod`, pipeline order), `geometric` (resize, crops, affine batch
transforms), `colour` (lighting) and `normalize` (`Normalize`, `imagenet_stats`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..torch_core import IMAGE_BATCH_TFMS
from .colour import Brightness, Contrast, LightingTfm, apply_lighting
from .geometric import (
    AffineTfm,
    CropPad,
    Dihedral,
    Flip,
    RandomResizedCrop,
    RandomResizedCropGPU,
    Resize,
    Rotate,
    Warp,
    Zoom,
    apply_affine,
    crop_pad,
)
from .normalize import IMAGENET_STATS, Normalize, imagenet_stats
from .transform_base import MAX_SIZE, ImageTransform, PadMode, ResizeMethod, is_augmentation, tfm_order, valid_version

__all__ = [
    "PadMode", "ResizeMethod", "ImageTransform", "Resize", "RandomResizedCrop", "CropPad", "AffineTfm", "Flip",
    "Dihedral", "Rotate", "Zoom", "Warp", "LightingTfm", "Brightness", "Contrast", "RandomResizedCropGPU",
    "Normalize", "aug_transforms", "imagenet_stats", "IMAGENET_STATS",
    # the pieces the pipeline and benchmarks use, importable from here as before the split
    "MAX_SIZE", "apply_affine", "apply_lighting", "crop_pad", "is_augmentation", "tfm_order", "valid_version",
]


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
    if min_scale != 1.0:  # without a size, the crop is resized back to the batch's size (fastai's)
        xtra = [RandomResizedCropGPU(size, min_scale=min_scale, ratio=(1, 1)), *xtra]
    return res + xtra


# `TensorImage`'s functional forms (fastai's `x.flip_batch()`, `x.rotate(draw=...)`, ...) apply these
IMAGE_BATCH_TFMS.update({c.__name__: c for c in (Flip, Dihedral, Rotate, Zoom, Warp, Brightness, Contrast)})
