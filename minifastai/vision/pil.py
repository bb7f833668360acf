"""fastai's `PILImage` (`PILImage.create(fn)`, `.show()`) and `show_image`: opening and drawing one image."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from PIL import Image

from .image_files import _float_to_uint8, to_image_tensor
from .image_limits import open_pil_checked

__all__ = ["PILImage", "PILImageBW", "show_image"]


class PILImage(Image.Image):
    """fastai's `PILImage`: a PIL image (every PIL method works) made by `PILImage.create` from a file path,
    bytes, a PIL image, a (H, W[, C]) uint8 array or a (C, H, W) tensor, in RGB; `.show()` draws it."""

    _mode = "RGB"

    def __new__(cls, im: Any = None) -> PILImage:
        """`PILImage(image)` is `PILImage.create(image)` (fastai's cast of a PIL image); `PILImage()` an empty one."""
        return super().__new__(cls) if im is None else cls.create(im)

    def __init__(self, im: Any = None) -> None:
        if im is None:  # PILImage(im) was built by create
            super().__init__()

    @classmethod
    def create(cls, fn: Any) -> PILImage:
        """The image `fn` as this class, as fastai's: a file (path or bytes) opened in this class's mode (RGB, or
        "L" for `PILImageBW`; one declaring more pixels than `max_image_pixels()` is refused before it is decoded);
        a PIL image, a numpy array (uint8, or a 2-D float array: mode "F") or a tensor
        ((C, H, W) or (H, W)) kept in its own mode."""
        if isinstance(fn, torch.Tensor):
            fn = _hwc(fn).numpy()
        if isinstance(fn, np.ndarray):
            if fn.dtype.kind == "f" and fn.ndim == 3:  # float RGB has no PIL mode: values in [0, 1] as 0-255
                if fn.size and not (np.nanmin(fn) >= 0 and np.nanmax(fn) <= 1):
                    raise ValueError(f"PILImage.create takes float (H, W, C) arrays with values in [0, 1]; this one "
                                     f"spans [{np.nanmin(fn):g}, {np.nanmax(fn):g}]: pass uint8 values (0-255)")
                fn = np.round(np.nan_to_num(fn) * 255).astype(np.uint8)
            if fn.dtype != np.uint8 and not (fn.dtype.kind == "f" and fn.ndim == 2):
                raise TypeError(f"PILImage.create takes uint8 arrays (0-255) or 2-D float arrays, got {fn.dtype} "
                                f"of shape {fn.shape}")
            im = Image.fromarray(fn.astype(np.float32) if fn.dtype.kind == "f" else np.squeeze(fn, -1)
                                 if fn.ndim == 3 and fn.shape[-1] == 1 else fn)
        elif isinstance(fn, Image.Image):
            im = fn.copy()
        elif isinstance(fn, (bytes, str, os.PathLike)):
            with open_pil_checked(fn, "(the bytes given)" if isinstance(fn, bytes) else fn) as f:  # size limit
                f.load()
                if f.mode == "F":  # 32-bit floats in [0, 1] (PIL's own conversion would clip them to 0 and 1)
                    f = Image.fromarray(_float_to_uint8(np.asarray(f), f"image {fn!s:.80}").numpy())
                im = f.convert(cls._mode) if f.mode != cls._mode else f.copy()
        else:
            raise TypeError(f"PILImage.create takes a file path, bytes, a PIL image, a uint8 array or a tensor, "
                            f"not {type(fn).__name__}")
        im.__class__ = cls  # the same PIL image, known as fastai's type
        return im  # type: ignore[return-value]

    def show(self, ctx: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """Draw the image on `ctx` (a matplotlib axes, new if None) as `show_image`; returns the axes."""
        return show_image(self, ctx=ctx, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__} mode={self.mode} size={self.size[0]}x{self.size[1]}"

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), as fastai's `PILImage.shape`."""
        return self.size[1], self.size[0]


class PILImageBW(PILImage):
    """fastai's single-channel `PILImage` (mode "L")."""

    _mode = "L"


def _hwc(t: torch.Tensor) -> torch.Tensor:
    """A (C, H, W) image tensor (C 1 or 3) as (H, W, C) on the CPU, a single channel as (H, W)."""
    t = t.detach().cpu()
    if t.ndim == 3 and t.shape[0] in (1, 3):
        t = t.permute(1, 2, 0)
    return t.squeeze(-1) if t.ndim == 3 and t.shape[-1] == 1 else t


def show_image(im: Any, ax: Any = None, figsize: tuple[float, float] | None = None, title: str | None = None,
               ctx: Any = None, cmap: str | None = None, **kwargs: Any) -> Any:
    """fastai's `show_image`: draw a PIL image, a (H, W[, C]) array or a (C, H, W) tensor (uint8, or floats in
    [0, 1]) on `ax` / `ctx` (a new figure when None), without axes, with `title`; returns the axes."""
    import matplotlib.pyplot as plt

    if isinstance(im, Image.Image):
        arr = np.asarray(im)
    elif isinstance(im, torch.Tensor):
        t = _hwc(im)
        arr = t.float().clamp(0, 1).numpy() if t.is_floating_point() else t.numpy()
    else:
        arr = np.asarray(_hwc(to_image_tensor(im)))
    ax = ax if ax is not None else ctx
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.imshow(arr, cmap=cmap if cmap is not None else ("gray" if arr.ndim == 2 else None), **kwargs)
    if title is not None:
        ax.set_title(title)
    ax.axis("off")
    return ax
