"""The image pipeline: item transforms (per image, uint8) and batch transforms (per batch, float, on the
device), normalization last; and how an export stores it: an explicit allow-list of transforms, rebuilt from
plain data (never from a name looked up in a module)."""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchvision.transforms import v2

from .augment import apply_affine, apply_lighting
from .tfm_base import MAX_SIZE
from .transforms import (
    AffineTfm,
    Brightness,
    Contrast,
    CropPad,
    Dihedral,
    Flip,
    ImageTransform,
    LightingTfm,
    Normalize,
    RandomResizedCrop,
    RandomResizedCropGPU,
    Resize,
    Rotate,
    Warp,
    Zoom,
    is_augmentation,
    tfm_order,
    valid_version,
)

__all__ = ["ImagePipeline", "EXPORTABLE_TRANSFORMS", "tfm_to_state", "tfm_from_state"]


def _listify(t: Any) -> list:
    if t is None:
        return []
    if isinstance(t, v2.Compose):
        return list(t.transforms)
    return list(t) if isinstance(t, (list, tuple)) else [t]


# ---- export allow-list -------------------------------------------------------------------------------
def _v2_size(size: Any) -> list[int]:
    s = [size] if isinstance(size, int) else list(size)
    if not (1 <= len(s) <= 2 and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIZE
                                     for v in s)):
        raise ValueError(f"size={size!r} must be one or two ints in [1, {MAX_SIZE}]")
    return s


def _v2_resize(size: Any, interpolation: str = "bilinear", max_size: int | None = None,
               antialias: bool = True) -> v2.Resize:
    return v2.Resize(_v2_size(size), interpolation=v2.InterpolationMode(interpolation), max_size=max_size,
                     antialias=bool(antialias))


def _v2_rrc(size: Any, scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3),
            interpolation: str = "bilinear", antialias: bool = True) -> v2.RandomResizedCrop:
    return v2.RandomResizedCrop(_v2_size(size), scale=tuple(scale), ratio=tuple(ratio),
                                interpolation=v2.InterpolationMode(interpolation), antialias=bool(antialias))


def _v2_grayscale(num_output_channels: int = 1) -> v2.Grayscale:
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels={num_output_channels!r} must be 1 or 3")
    return v2.Grayscale(num_output_channels)


# name in the file -> (builder, the class it makes). Only these are ever built from an export.
EXPORTABLE_TRANSFORMS: dict[str, tuple[Callable[..., Any], type]] = {
    **{f"minifastai.{c.__name__}": (c, c) for c in (
        Resize, CropPad, RandomResizedCrop, Flip, Dihedral, Rotate, Zoom, Warp, Brightness, Contrast,
        RandomResizedCropGPU, Normalize)},
    "v2.Resize": (_v2_resize, v2.Resize),
    "v2.CenterCrop": (lambda size: v2.CenterCrop(_v2_size(size)), v2.CenterCrop),
    "v2.Grayscale": (_v2_grayscale, v2.Grayscale),
    "v2.Normalize": (lambda mean, std: v2.Normalize(list(mean), list(std)), v2.Normalize),
    "v2.RandomResizedCrop": (_v2_rrc, v2.RandomResizedCrop),
    "v2.RandomHorizontalFlip": (lambda p=0.5: v2.RandomHorizontalFlip(float(p)), v2.RandomHorizontalFlip),
    "v2.RandomVerticalFlip": (lambda p=0.5: v2.RandomVerticalFlip(float(p)), v2.RandomVerticalFlip),
}
# exports written before the allow-list stored torchvision transforms under their bare class names
_LEGACY_NAMES = {"Resize": "v2.Resize", "CenterCrop": "v2.CenterCrop", "Grayscale": "v2.Grayscale",
                 "Normalize": "v2.Normalize"}


def tfm_to_state(t: Any) -> dict | None:
    """A transform as `{"name", "args"}` plain data, or None when it is not one an export can store."""
    for name, (_, cls) in EXPORTABLE_TRANSFORMS.items():
        if type(t) is not cls:
            continue
        if isinstance(t, ImageTransform):
            return {"name": name, "args": t.export_args()}
        if isinstance(t, v2.Resize):
            args: dict[str, Any] = {"size": t.size, "interpolation": t.interpolation.value,
                                    "max_size": t.max_size, "antialias": bool(t.antialias)}
        elif isinstance(t, v2.RandomResizedCrop):
            args = {"size": list(t.size), "scale": list(t.scale), "ratio": list(t.ratio),
                    "interpolation": t.interpolation.value, "antialias": bool(t.antialias)}
        elif isinstance(t, v2.CenterCrop):
            args = {"size": list(t.size)}
        elif isinstance(t, v2.Grayscale):
            args = {"num_output_channels": t.num_output_channels}
        elif isinstance(t, v2.Normalize):
            args = {"mean": list(t.mean), "std": list(t.std)}
        else:  # the two random flips
            args = {"p": float(getattr(t, "p", 0.5))}
        return {"name": name, "args": args}
    return None


def tfm_from_state(entry: Any, where: str) -> Any:
    """Build one transform from an export's entry, if (and only if) it is on the allow-list.

    `where` names the entry for errors, e.g. "export.pkl: item_tfms[0]". Anything else (an unknown name,
    unknown arguments, values out of range) is a ValueError naming it; nothing is imported or called.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError(f"{where} is not a transform entry ({{'name': ..., 'args': {{...}}}}), got "
                         f"{type(entry).__name__}: the file is damaged or was not written by minifastai's export")
    name = entry["name"]
    if "args" in entry:
        args = entry["args"]
        extra = set(entry) - {"name", "args"}
    else:  # legacy flat entry {"name": "Resize", "size": ...}
        if name == "Identity":
            return None
        name = _LEGACY_NAMES.get(name, name)
        args, extra = {k: v for k, v in entry.items() if k != "name"}, set()
    if name not in EXPORTABLE_TRANSFORMS:
        raise ValueError(f"{where} names the transform {entry['name']!r}, which is not one that minifastai "
                         f"exports (allowed: {', '.join(sorted(EXPORTABLE_TRANSFORMS))}); refusing to build it. "
                         "The file was changed or not written by minifastai's export")
    if extra or not isinstance(args, dict):
        raise ValueError(f"{where} ({name}) has a malformed entry (keys {sorted(entry)}); expected "
                         "{'name': ..., 'args': {...}}")
    builder = EXPORTABLE_TRANSFORMS[name][0]
    params = inspect.signature(builder).parameters
    unknown = [k for k in args if k not in params]
    if unknown:
        raise ValueError(f"{where} ({name}) has arguments {unknown} that {name} does not take "
                         f"(it takes {list(params)})")
    try:
        return builder(**args)
    except Exception as e:
        raise ValueError(f"{where} ({name}) has invalid arguments {args}: {type(e).__name__}: {e}") from None


# ---- the pipeline ------------------------------------------------------------------------------------
class ImagePipeline:
    """Item transforms (uint8 images, in the dataset) and batch transforms (float batches in [0, 1], on the
    device), sorted by `order` as fastai sorts them; normalization comes last.

    Augmentation applies to training data only; validation and inference get the deterministic version
    (random crops become centre crops). A `Normalize` among the batch transforms is the normalization.
    """

    def __init__(self, item_tfms: Any = None, batch_tfms: Any = None, norm: Normalize | None = None) -> None:
        self.item_tfms = sorted(_listify(item_tfms), key=tfm_order)
        batch = sorted(_listify(batch_tfms), key=tfm_order)
        norms = [t for t in batch if isinstance(t, (Normalize, v2.Normalize))]
        if len(norms) > 1:
            raise ValueError(f"batch_tfms has {len(norms)} normalizations ({norms}); keep one")
        self.batch_tfms = [t for t in batch if t not in norms]
        if norms:
            norm = norms[0] if isinstance(norms[0], Normalize) else Normalize(norms[0].mean, norms[0].std)
        self.norm = norm
        self.valid_item = [x for t in self.item_tfms
                           for x in ([t] if isinstance(t, ImageTransform) else valid_version(t))]

    def item(self, img: Tensor, train: bool) -> Tensor:
        """Apply the item transforms to one (C, H, W) uint8 image."""
        if train:
            for t in self.item_tfms:
                img = t(img, True) if isinstance(t, ImageTransform) else t(img)
        else:
            for t in self.valid_item:
                img = t(img, False) if isinstance(t, ImageTransform) else t(img)
        return img

    def batch(self, x: Tensor, train: bool) -> Tensor:
        """uint8 -> float in [0, 1], the batch transforms (training: random per image), normalization."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        tfms, i = self.batch_tfms, 0
        while i < len(tfms):
            t = tfms[i]
            if isinstance(t, (AffineTfm, LightingTfm)):
                kind = AffineTfm if isinstance(t, AffineTfm) else LightingTfm
                j = i
                while j < len(tfms) and isinstance(tfms[j], kind):
                    j += 1
                if kind is AffineTfm:
                    x = apply_affine(tfms[i:j], x, train)
                elif train:
                    x = apply_lighting(tfms[i:j], x)
                i = j
                continue
            if isinstance(t, ImageTransform):
                x = t(x, train)
            elif is_augmentation(t):
                if train:  # torchvision draws one set of parameters per call: call it per image
                    x = torch.stack([t(xi) for xi in x])
                else:
                    for s in valid_version(t):
                        x = s(x)
            else:
                x = t(x)
            i += 1
        return x if self.norm is None else self.norm(x, train)

    def decode(self, x: Tensor) -> Tensor:
        """A batch as images in [0, 1] again (normalization undone), for showing."""
        if x.dtype == torch.uint8:
            return x.float() / 255
        return (x if self.norm is None else self.norm.decode(x)).clamp(0, 1)

    def export_state(self) -> dict:
        """Item and batch transforms (allow-listed ones) and the normalization, as plain data."""
        out: dict[str, Any] = {"item_tfms": [], "batch_tfms": []}
        skipped: list[tuple[str, bool]] = []
        for key, tfms in (("item_tfms", self.item_tfms), ("batch_tfms", self.batch_tfms)):
            for t in tfms:
                d = tfm_to_state(t)
                if d is None:
                    skipped.append((type(t).__name__, not is_augmentation(t)))
                else:
                    out[key].append(d)
        if skipped:
            matters = [n for n, m in skipped if m]
            warnings.warn(f"the export cannot store the transforms {[n for n, _ in skipped]} (it stores only "
                          f"{', '.join(sorted(EXPORTABLE_TRANSFORMS))}). " + (
                              f"{matters} change inputs at inference, so apply them yourself before predict"
                              if matters else "They only augment training data, so predictions are unaffected"),
                          stacklevel=4)
        out["normalize"] = None if self.norm is None else [list(self.norm.mean), list(self.norm.std)]
        return out

    @classmethod
    def from_export_state(cls, state: dict, source: str = "the export") -> ImagePipeline:
        """Rebuild from `export_state()`, building only allow-listed transforms (errors name the entry)."""
        lists = {}
        for key in ("item_tfms", "batch_tfms"):
            entries = state.get(key) or []
            if not isinstance(entries, list):
                raise ValueError(f"{source}: dls.{key} must be a list of transform entries, got "
                                 f"{type(entries).__name__}")
            built = [tfm_from_state(e, f"{source}: dls.{key}[{i}]") for i, e in enumerate(entries)]
            lists[key] = [t for t in built if t is not None]
        norm = state.get("normalize")
        normalize = None
        if norm is not None:
            if not (isinstance(norm, (list, tuple)) and len(norm) == 2):
                raise ValueError(f"{source}: dls.normalize must be [mean, std], got {norm!r}")
            try:
                normalize = Normalize(norm[0], norm[1])
            except (TypeError, ValueError) as e:
                raise ValueError(f"{source}: dls.normalize is invalid: {e}") from None
        return cls(lists["item_tfms"], lists["batch_tfms"], normalize)
