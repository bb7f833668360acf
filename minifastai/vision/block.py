"""`ImageBlock`, the DataBlock input for images (fastai's name): its items are file paths, PIL images, arrays or
tensors; `DataBlock.datasets` gives them as `cls.create(item)` (a `PILImage`, or a single-channel `PILImageBW`),
and `DataBlock.dataloaders` builds the `ImageDataLoaders` that `ImageDataLoaders.from_items` builds."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from ..data.block import BlockDatasets, InputBlock
from ..data.blocks import CategoryBlock
from .pil import PILImage, PILImageBW

__all__ = ["ImageBlock"]


class ImageBlock(InputBlock):
    """Images as a DataBlock input: `cls=PILImage` (RGB, 3 channels) or `cls=PILImageBW` (grey, 1 channel: batches
    of shape (N, 1, H, W))."""

    kind = "image"

    def __init__(self, cls: type = PILImage) -> None:
        if not (isinstance(cls, type) and issubclass(cls, PILImage)):
            raise TypeError(f"ImageBlock(cls=...) takes PILImage or PILImageBW, got {cls!r}")
        self.cls = cls

    @property
    def channels(self) -> int:
        """1 for `PILImageBW`, else 3."""
        return 1 if issubclass(self.cls, PILImageBW) else 3

    def check(self, value: Any) -> str | None:  # noqa: D102 (InputBlock's)
        if isinstance(value, (str, os.PathLike)):
            return None if os.path.isfile(value) else f"an image file that exists ({value} does not)"
        from PIL import Image

        if isinstance(value, (Image.Image, np.ndarray, Tensor)):
            return None
        return f"an image: a file path, a PIL image, an array or a tensor, not a {type(value).__name__}"

    def create(self, value: Any) -> PILImage:
        """The image as `cls` (read from the file if it is a path)."""
        return self.cls.create(value)

    def dataloaders(self, dsets: BlockDatasets, path: Path, item_tfms: Any, batch_tfms: Any,
                    **kwargs: Any) -> Any:
        """`ImageDataLoaders` over the split items: a `CategoryBlock` target through `from_items` (the same classes
        and pixels as fastai's constructors give), other targets (multi-label, regression) with their encoded
        tensors and their loss; keywords as `from_items` (`bs`, `val_bs`, `shuffle`, `device`, `num_workers`)."""
        from .data import ImageDataLoaders

        block = dsets.target_block
        if block is None:
            raise ValueError("DataBlock.dataloaders needs a target block after the ImageBlock (e.g. CategoryBlock): "
                             "for unlabelled images use dls.test_dl(items)")
        (t_x, v_x), (t_y, v_y) = dsets.values[0], dsets.values[-1]
        t_enc, v_enc = dsets.targets[-1]
        if isinstance(block, CategoryBlock):
            return ImageDataLoaders.from_items(path, t_x, t_y, v_x, v_y, block.vocab, item_tfms, batch_tfms,
                                               channels=self.channels, **kwargs)
        return ImageDataLoaders.from_targets(path, t_x, t_enc, v_x, v_enc, block.vocab, block.kind, block.c,
                                             item_tfms, batch_tfms, channels=self.channels, **kwargs)

    def __repr__(self) -> str:
        return f"ImageBlock(cls={self.cls.__name__})"
