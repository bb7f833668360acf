"""fastai's `PILImage` (`PILImage.create(fn)`, `.show()`) and `show_image`: opening and drawing one image."""
from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import torch
from PIL import Image

from .image_files import to_image_tensor

__all__ = ["PILImage", "PILImageBW", "show_image"]


class PILImage(Image.Image):
    """fastai's `PILImage`: a PIL image (every PIL method works) made by `PILImage.create` from a file path,
    bytes, a PIL image, a (H, W[, C]) uint8 array or a (C, H, W) tensor, in RGB; `.show()` draws it."""

    _mode = "RGB"

    @classmethod
    def create(cls, fn: Any) -> PILImage:
        """The image `fn` (a path, bytes, PIL image, numpy array or tensor) as this class, in its mode."""
        if isinstance(fn, torch.Tensor):
            fn = _hwc(fn).numpy()
        if isinstance(fn, np.ndarray):
            if fn.dtype != np.uint8:
                raise TypeError(f"PILImage.create takes uint8 arrays (0-255), got {fn.dtype}: convert with "
                                "(x * 255).astype('uint8') for values in [0, 1]")
            im = Image.fromarray(fn)
        elif isinstance(fn, bytes):
            im = Image.open(io.BytesIO(fn))
        elif isinstance(fn, Image.Image):
            im = fn
        elif isinstance(fn, (str, os.PathLike)):
            with Image.open(fn) as f:
                f.load()
                im = f.copy()
        else:
            raise TypeError(f"PILImage.create takes a file path, bytes, a PIL image, a uint8 array or a tensor, "
                            f"not {type(fn).__name__}")
        im = im.convert(cls._mode) if im.mode != cls._mode else im.copy()
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
