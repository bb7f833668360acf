"""Small helpers on torch objects that several layers need, under fastai's module name (`fastai.torch_core`):
`Module`, `flatten_check`, `to_detach`, `unwrap_model`, `no_random`, `find_bs`, `find_device`, `replacing_yield`,
`defaults` (fastai's default values), and fastai's typed tensors (`TensorBase`, `TensorImage`, `TensorMask`, ...)
with `cast`."""
from __future__ import annotations

import numbers
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from .seed import no_random

__all__ = ["Module", "flatten_check", "to_detach", "unwrap_model", "no_random", "find_bs", "find_device",
           "replacing_yield", "defaults", "TensorBase", "TensorImage", "TensorImageBW", "TensorMask", "TensorCategory",
           "TensorMultiCategory", "cast", "to_device", "to_cpu", "to_np", "trainable_params", "params", "tensor"]

defaults = SimpleNamespace(lr=1e-3, moms=(0.95, 0.85, 0.95))
"""fastai's `defaults`: the default learning rate (`defaults.lr`, `Learner`'s `lr=1e-3`) and momentums. minifastai's
own namespace (fastcore's `defaults` is left as it is); reading it changes nothing in minifastai."""


def first_tensor(b: Any, batched: bool = False) -> torch.Tensor | None:
    """The first tensor in `b` (a tensor, or tensors in lists, tuples and dicts), or None; with `batched`, the first
    one that has a batch dimension (0-d tensors are skipped)."""
    if isinstance(b, torch.Tensor):
        return b if b.ndim > 0 or not batched else None
    if isinstance(b, dict):
        b = list(b.values())
    if isinstance(b, (list, tuple)):
        for o in b:
            t = first_tensor(o, batched)
            if t is not None:
                return t
    return None


def find_bs(b: Any) -> int:
    """The batch size of `b`: the first dimension of its first tensor (fastai's `find_bs`)."""
    t = first_tensor(b)
    if t is None or t.ndim == 0:
        raise ValueError(f"find_bs: no tensor with a batch dimension in {type(b).__name__} {b!r:.80}")
    return int(t.shape[0])


def find_device(b: Any) -> torch.device | None:
    """The device of the first tensor in `b` (fastai's `find_device`; None if `b` holds no tensor)."""
    t = first_tensor(b)
    return None if t is None else t.device


def replacing_yield(o: Any, attr: str, val: Any) -> Iterator[None]:
    """Generator for a context manager that sets `o.attr = val` and puts the old value back (fastai's)."""
    old = getattr(o, attr)
    setattr(o, attr, val)
    try:
        yield
    finally:
        setattr(o, attr, old)


class TensorBase(torch.Tensor):
    """fastai's typed-tensor base: a `torch.Tensor` subclass whose type operations keep (torch's default for
    subclasses). `TensorBase(x)` makes one from a tensor, array or list. minifastai's own loaders yield plain
    tensors; these types are there for fastai code that tags tensors (`cast(x, TensorImage)`)."""

    def __new__(cls, x: Any, **kwargs: Any) -> TensorBase:
        return torch.as_tensor(x, **kwargs).as_subclass(cls)

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        """Operations mixing two typed tensors (an image indexed by a mask) give the type torch dispatches to, as
        fastai's do, where torch's default refuses types that are not subclasses of each other."""
        types = tuple(torch.Tensor if issubclass(t, TensorBase) else t for t in types)
        return super().__torch_function__(func, types, args, kwargs or {})


IMAGE_BATCH_TFMS: dict[str, Any] = {}
"""The batch transforms behind `TensorImage`'s methods, by class name; `minifastai.vision.transforms` registers its
own when imported (this module sits below vision)."""


class TensorImage(TensorBase):
    """fastai's tag for a batch or an item of images (channels first). fastai's functional forms of the batch
    transforms are its methods (`flip_batch`, `dihedral_batch`, `rotate`, `zoom`, `warp`, `brightness`,
    `contrast`): each applies that transform's training version once, with the transform's keywords."""

    def _batch_tfm(self, name: str, kwargs: dict) -> TensorImage:
        tfm = IMAGE_BATCH_TFMS.get(name)
        if tfm is None:
            raise RuntimeError(f"TensorImage.{name.lower()}: the vision transforms are not loaded; import "
                               "minifastai.vision (it registers them in torch_core.IMAGE_BATCH_TFMS)")
        return tfm(**kwargs)(self, train=True)

    def flip_batch(self, **kwargs: Any) -> TensorImage:
        """`Flip(**kwargs)` applied to this batch."""
        return self._batch_tfm("Flip", kwargs)

    def dihedral_batch(self, **kwargs: Any) -> TensorImage:
        """`Dihedral(**kwargs)` applied to this batch."""
        return self._batch_tfm("Dihedral", kwargs)

    def rotate(self, **kwargs: Any) -> TensorImage:
        """`Rotate(**kwargs)` applied to this batch."""
        return self._batch_tfm("Rotate", kwargs)

    def zoom(self, **kwargs: Any) -> TensorImage:
        """`Zoom(**kwargs)` applied to this batch."""
        return self._batch_tfm("Zoom", kwargs)

    def warp(self, **kwargs: Any) -> TensorImage:
        """`Warp(**kwargs)` applied to this batch."""
        return self._batch_tfm("Warp", kwargs)

    def brightness(self, **kwargs: Any) -> TensorImage:
        """`Brightness(**kwargs)` applied to this batch."""
        return self._batch_tfm("Brightness", kwargs)

    def contrast(self, **kwargs: Any) -> TensorImage:
        """`Contrast(**kwargs)` applied to this batch."""
        return self._batch_tfm("Contrast", kwargs)


class TensorImageBW(TensorImage):
    """fastai's tag for single-channel images."""


class TensorMask(TensorBase):
    """fastai's tag for segmentation masks."""


class TensorPoint(TensorBase):
    """fastai's tag for points (minifastai's transforms do not move points: a lighting transform leaves them)."""


class TensorBBox(TensorPoint):
    """fastai's tag for bounding boxes (as `TensorPoint`)."""


class TensorCategory(TensorBase):
    """fastai's tag for class indices."""


class TensorMultiCategory(TensorCategory):
    """fastai's tag for multi-label targets."""


def logit(x: torch.Tensor) -> torch.Tensor:
    """The logit of `x`, clamped to [1e-7, 1 - 1e-7] first so that it stays finite (fastai's)."""
    x = x.clamp(1e-7, 1 - 1e-7)
    return -(1 / x - 1).log()


def subplots(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None, imsize: float = 3,
             suptitle: str | None = None, **kwargs: Any) -> tuple[Any, Any]:
    """A figure and a grid of axes sized for images of `imsize` inches (fastai's `subplots`); the axes are always
    an array, one axes included."""
    import matplotlib.pyplot as plt

    if figsize is None:
        h = nrows * imsize if suptitle is None or imsize > 2 else nrows * imsize + 0.6
        figsize = (ncols * imsize, h)
    fig, ax = plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig, (np.array([ax]) if nrows * ncols == 1 else ax)


def cast(x: Any, typ: type) -> Any:
    """`x` as type `typ` (fastai's `cast`): a tensor through `as_subclass` (the same storage, no copy), a numpy
    array through `view`, anything else `typ(x)`."""
    if isinstance(x, torch.Tensor):
        return x.as_subclass(typ)
    if hasattr(x, "view") and type(x).__module__ == "numpy":
        return x.view(typ)
    return typ(x)


def to_device(batch: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Move every tensor of a (nested) batch to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, non_blocking) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    return batch


def to_cpu(b: Any) -> Any:
    """Every tensor of a (nested) batch on the CPU (fastai's `to_cpu`; not detached)."""
    return to_device(b, torch.device("cpu"), non_blocking=False)


def trainable_params(model: nn.Module) -> list[nn.Parameter]:
    """All parameters of `model` that require grad."""
    return [p for p in model.parameters() if p.requires_grad]


def params(m: nn.Module) -> list[nn.Parameter]:
    """Every parameter of `m` (fastai's `params`, for splitters: `L(m.body, m.head).map(params)`)."""
    return list(m.parameters())


def tensor(x: Any, *rest: Any, **kwargs: Any) -> torch.Tensor:
    """fastai's `tensor`: `torch.tensor` that also takes several values (`tensor(1, 2, 3)`), returns a tensor as
    it is, shares a numpy array's or pandas object's memory where torch can (uint16 becomes float32), and makes
    float64 float32. `kwargs`: torch's `dtype`, `device`, `requires_grad`, `pin_memory`."""
    if rest:
        x = (x, *rest)
    if isinstance(x, torch.Tensor):
        res = x
    elif isinstance(x, (tuple, list, numbers.Number)):
        res = torch.tensor(x, **kwargs)
    elif isinstance(x, np.ndarray):
        res = _array_to_tensor(x, **kwargs)
    elif type(x).__module__.split(".")[0] == "pandas" and hasattr(x, "values"):
        res = torch.as_tensor(x.values, **kwargs)
    else:
        res = _array_to_tensor(np.array(x), **kwargs)
    return res.float() if res.dtype is torch.float64 else res


def _array_to_tensor(x: np.ndarray, requires_grad: bool = False, pin_memory: bool = False,
                     **kwargs: Any) -> torch.Tensor:
    if x.dtype == np.uint16:
        x = x.astype(np.float32)
    t = torch.as_tensor(x, **kwargs)
    t.requires_grad_(requires_grad)
    return t.pin_memory() if pin_memory else t


def to_np(x: Any) -> Any:
    """Every tensor of `x` (also inside lists, tuples and dicts) as a numpy array, detached and on the CPU
    (fastai's `to_np`)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, dict):
        return {k: to_np(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_np(v) for v in x)
    return x


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a `DistributedDataParallel` wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class Module(nn.Module):
    """`nn.Module` whose subclasses need not call `super().__init__()` (fastai's `Module`): it has run by the time
    the subclass's `__init__` starts."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Module:
        obj = super().__new__(cls)
        nn.Module.__init__(obj)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing more to set up (`nn.Module.__init__` already ran)."""


def flatten_check(inp: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both flattened; they must hold the same number of elements (fastai's `flatten_check`)."""
    if inp.numel() != targ.numel():
        raise ValueError(f"metric got predictions of shape {tuple(inp.shape)} and targets of shape "
                         f"{tuple(targ.shape)}: they must have the same number of elements")
    return inp.reshape(-1), targ.reshape(-1)


def to_detach(b: Any, cpu: bool = True, gather: bool = True) -> Any:
    """`b` (a tensor, or tensors in lists, tuples and dicts) detached, and moved to the CPU unless `cpu=False`
    (fastai's `to_detach`; `gather` is accepted for its signature)."""
    if isinstance(b, torch.Tensor):
        b = b.detach()
        return b.cpu() if cpu else b
    if isinstance(b, dict):
        return {k: to_detach(v, cpu, gather) for k, v in b.items()}
    if isinstance(b, (list, tuple)):
        return type(b)(to_detach(v, cpu, gather) for v in b)
    return b
