"""`from minifastai.vision.all import *`, as fastai's `from fastai.vision.all import *`: everything of
`minifastai.basics` and of `minifastai.vision`, fastai's typed tensors (`TensorImage`, `TensorMask`, `cast`) and
PIL's `Image`, as fastai's gives it."""
from __future__ import annotations

from PIL import Image

from .. import vision as _vision
from ..basics import *  # noqa: F403
from ..basics import __all__ as _basics_all
from ..torch_core import (
    TensorBase,
    TensorBBox,
    TensorCategory,
    TensorImage,
    TensorImageBW,
    TensorMask,
    TensorMultiCategory,
    TensorPoint,
    cast,
)
from . import *  # noqa: F403
from . import models

__all__ = [*_basics_all, *(n for n in _vision.__all__ if n not in _basics_all),
           "TensorBase", "TensorImage", "TensorImageBW", "TensorMask", "TensorCategory", "TensorMultiCategory", "cast",
           "TensorPoint", "TensorBBox",
           "Image", "models"]
