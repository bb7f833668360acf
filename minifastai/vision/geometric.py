"""Geometric transforms. Item transforms (`Resize`, `CropPad`, `RandomResizedCrop`) run per image on uint8
`(C, H, W)` tensors with torchvision's kernels (`transforms.v2.functional`). Batch transforms that move pixels
(`Flip`, `Dihedral`, `Rotate`, `Zoom`, `Warp`, all `AffineTfm`s; `RandomResizedCropGPU`) run on whole float
batches on the device, with parameters drawn per image; consecutive affine ones share one `grid_sample`
(`apply_affine`, as fastai composes them). Numbers follow fastai 2.8.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from .transform_base import (
    _INTERP,
    _TV_PAD,
    Draw,
    ImageTransform,
    PadMode,
    ResizeMethod,
    _check_choice,
    _check_prob,
    _draw_mask,
    _size_hw,
)

__all__ = ["crop_pad", "Resize", "CropPad", "RandomResizedCrop", "AffineTfm", "apply_affine", "Flip", "Dihedral",
           "Rotate", "Zoom", "Warp", "RandomResizedCropGPU"]


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


class Resize(ImageTransform):
    """Resize to `size` (int or (h, w)) with `method`: 'crop' (fill, cut the excess: at a random position in
    training, centred otherwise), 'pad' (fit inside, pad with `pad_mode`) or 'squish' (ignore the aspect).
    """

    order = 1
    pil_ok = True  # also takes (and returns) a PIL image

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
    pil_ok = True  # also takes (and returns) a PIL image

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
    pil_ok = True  # also takes (and returns) a PIL image

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


# ================================================================================================
# Batch transforms: float (N, C, H, W) batches on the device, parameters drawn per image
# ================================================================================================
def _affine_mat(*ms: Tensor) -> Tensor:
    """(N, 3, 3) matrices from 6 tensors of shape (N,): rows (m0, m1, m2), (m3, m4, m5), (0, 0, 1)."""
    z, o = torch.zeros_like(ms[0]), torch.ones_like(ms[0])
    return torch.stack([torch.stack([ms[0], ms[1], ms[2]], 1), torch.stack([ms[3], ms[4], ms[5]], 1),
                        torch.stack([z, z, o], 1)], 1)


class AffineTfm(ImageTransform):
    """Base of the batch transforms that move pixels. Consecutive ones in a pipeline are applied together:
    their matrices are multiplied and one `grid_sample` resamples the batch (fastai's `AffineCoordTfm`)."""

    order = 30

    def __init__(self, p: float = 0.5, size: int | Sequence[int] | None = None, mode: str = "bilinear",
                 pad_mode: str = PadMode.Reflection, align_corners: bool = True, batch: bool = False) -> None:
        self.p = _check_prob(p)
        self.size = None if size is None else _size_hw(size)
        self.mode = _check_choice(mode, ("bilinear", "nearest", "bicubic"), "mode")
        self.pad_mode = _check_choice(pad_mode, ("zeros", "border", "reflection"), "pad_mode")
        self.align_corners, self.batch = bool(align_corners), bool(batch)

    def matrix(self, x: Tensor) -> Tensor | None:
        """(N, 3, 3) affine matrices in [-1, 1] coordinates, or None (coordinate transforms)."""
        return None

    def coords(self, x: Tensor) -> Callable[[Tensor], Tensor] | None:
        """A function moving the sampling grid (N, H, W, 2), drawn for this batch, or None."""
        return None

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        return apply_affine([self], x, train)

    def _common_args(self) -> dict[str, Any]:
        return {"p": self.p, "size": None if self.size is None else list(self.size), "mode": self.mode,
                "pad_mode": self.pad_mode, "align_corners": self.align_corners, "batch": self.batch}

    def export_args(self) -> dict[str, Any]:
        return self._common_args()


def _grid_sample(x: Tensor, coords: Tensor, mode: str, pad_mode: str, align_corners: bool) -> Tensor:
    """`F.grid_sample`, first shrinking `x` with area interpolation when it is more than twice the output
    and the transform does not zoom as much (fastai's smoother downsampling)."""
    if mode == "bilinear":
        d = min(x.shape[-2] / coords.shape[-3], x.shape[-1] / coords.shape[-2]) / 2
        if d > 1:  # only then is the zoom needed, and reading it syncs with the device
            z = 2 / (coords.max() - coords.min()).item()
            if d > z:
                x = F.interpolate(x, scale_factor=1 / d, mode="area", recompute_scale_factor=True)
    return F.grid_sample(x, coords, mode=mode, padding_mode=pad_mode, align_corners=align_corners)


def apply_affine(tfms: Sequence[AffineTfm], x: Tensor, train: bool) -> Tensor:
    """Apply consecutive affine/coordinate transforms with one resampling; the first one's `size`, `mode`,
    `pad_mode` and `align_corners` rule (as fastai's composed transform). Validation: resize only."""
    first = tfms[0]
    size = first.size
    if not train and size is None:
        return x
    n, h, w = x.size(0), x.shape[-2], x.shape[-1]
    mat = torch.eye(3, device=x.device, dtype=x.dtype).expand(n, 3, 3).contiguous()
    coord_fns: list[Callable[[Tensor], Tensor]] = []
    if train:  # all matrices first, then the coordinate transforms: fastai's order of random draws
        for m in [t.matrix(x) for t in tfms]:
            if m is not None:
                mat = mat @ m
        coord_fns = [c for c in (t.coords(x) for t in tfms) if c is not None]
    mat[:, 0, 1] *= h / w
    mat[:, 1, 0] *= w / h
    out_hw = (h, w) if size is None else size
    grid = F.affine_grid(mat[:, :2], [n, x.size(1), *out_hw], align_corners=first.align_corners)
    for c in coord_fns:
        grid = c(grid)
    return _grid_sample(x, grid, first.mode, first.pad_mode, first.align_corners)


class Flip(AffineTfm):
    """Flip each image horizontally with probability `p`."""

    def __init__(self, p: float = 0.5, draw: Draw = None, size: int | Sequence[int] | None = None,
                 mode: str = "bilinear", pad_mode: str = PadMode.Reflection, align_corners: bool = True,
                 batch: bool = False) -> None:
        super().__init__(p, size, mode, pad_mode, align_corners, batch)
        self.draw = draw

    def matrix(self, x: Tensor) -> Tensor:
        flip = 1 - 2 * _draw_mask(x, lambda t: t.new_ones(t.size(0)), self.draw, self.p, 0.0, self.batch)
        z = torch.zeros_like(flip)
        return _affine_mat(flip, z, z, z, torch.ones_like(flip), z)


class Dihedral(AffineTfm):
    """One of the 8 flips/rotations by 90 degrees of the square, per image, with probability `p`."""

    def __init__(self, p: float = 0.5, draw: Draw = None, size: int | Sequence[int] | None = None,
                 mode: str = "bilinear", pad_mode: str = PadMode.Reflection, align_corners: bool = True,
                 batch: bool = False) -> None:
        super().__init__(p, size, mode, pad_mode, align_corners, batch)
        self.draw = draw

    def matrix(self, x: Tensor) -> Tensor:
        def default(t: Tensor) -> Tensor:
            if self.batch:
                return t.new_zeros(t.size(0)) + random.randint(0, 7)
            return torch.randint(0, 8, (t.size(0),), device=t.device).to(t.dtype)

        idx = _draw_mask(x, default, self.draw, self.p, 0.0, self.batch).long()
        table = torch.tensor([[1, -1, 1, -1, -1, 1, 1, -1], [1, 1, -1, 1, -1, -1, 1, -1],
                              [1, 1, 1, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 1, 1, 1]], device=x.device, dtype=x.dtype)
        xs, ys, m0, m1 = (row[idx] for row in table)
        z = torch.zeros_like(xs)
        return _affine_mat(xs * m0, xs * m1, z, ys * m1, ys * m0, z)


class Rotate(AffineTfm):
    """Rotate each image by a random angle in [-max_deg, max_deg] degrees, with probability `p`."""

    def __init__(self, max_deg: float = 10, p: float = 0.5, draw: Draw = None,
                 size: int | Sequence[int] | None = None, mode: str = "bilinear",
                 pad_mode: str = PadMode.Reflection, align_corners: bool = True, batch: bool = False) -> None:
        super().__init__(p, size, mode, pad_mode, align_corners, batch)
        self.max_deg, self.draw = float(max_deg), draw

    def matrix(self, x: Tensor) -> Tensor:
        def default(t: Tensor) -> Tensor:
            if self.batch:
                return t.new_zeros(t.size(0)) + random.uniform(-self.max_deg, self.max_deg)
            return t.new_empty(t.size(0)).uniform_(-self.max_deg, self.max_deg)

        theta = _draw_mask(x, default, self.draw, self.p, 0.0, self.batch) * math.pi / 180
        z = torch.zeros_like(theta)
        return _affine_mat(theta.cos(), theta.sin(), z, -theta.sin(), theta.cos(), z)

    def export_args(self) -> dict[str, Any]:
        return {"max_deg": self.max_deg, **self._common_args()}


class Zoom(AffineTfm):
    """Zoom each image in by a random factor in [min_zoom, max_zoom] around a random centre, with
    probability `p`."""

    def __init__(self, min_zoom: float = 1.0, max_zoom: float = 1.1, p: float = 0.5, draw: Draw = None,
                 draw_x: Draw = None, draw_y: Draw = None, size: int | Sequence[int] | None = None,
                 mode: str = "bilinear", pad_mode: str = PadMode.Reflection, batch: bool = False,
                 align_corners: bool = True) -> None:
        super().__init__(p, size, mode, pad_mode, align_corners, batch)
        if not 0 < min_zoom <= max_zoom:
            raise ValueError(f"need 0 < min_zoom <= max_zoom, got min_zoom={min_zoom}, max_zoom={max_zoom}")
        self.min_zoom, self.max_zoom = float(min_zoom), float(max_zoom)
        self.draw, self.draw_x, self.draw_y = draw, draw_x, draw_y

    def matrix(self, x: Tensor) -> Tensor:
        def default(t: Tensor) -> Tensor:
            if self.batch:
                return t.new_zeros(t.size(0)) + random.uniform(self.min_zoom, self.max_zoom)
            return t.new_empty(t.size(0)).uniform_(self.min_zoom, self.max_zoom)

        def centre(t: Tensor) -> Tensor:
            if self.batch:
                return t.new_zeros(t.size(0)) + random.uniform(0, 1)
            return t.new_empty(t.size(0)).uniform_(0, 1)

        s = 1 / _draw_mask(x, default, self.draw, self.p, 1.0, self.batch)
        col = _draw_mask(x, centre, self.draw_x, 1.0, 0.0, self.batch)
        row = _draw_mask(x, centre, self.draw_y, 1.0, 0.0, self.batch)
        z = torch.zeros_like(s)
        return _affine_mat(s, z, (1 - s) * (2 * col - 1), z, s, (1 - s) * (2 * row - 1))

    def export_args(self) -> dict[str, Any]:
        return {"min_zoom": self.min_zoom, "max_zoom": self.max_zoom, **self._common_args()}


def _find_coeffs(p1: Tensor, p2: Tensor) -> Tensor:
    """The 8 coefficients of the perspective transform taking points `p2` to `p1` (N, 4, 2) (fastai)."""
    rows = []
    p = p1[:, 0, 0]
    z, o = torch.zeros_like(p), torch.ones_like(p)
    for i in range(p1.shape[1]):
        rows.append(torch.stack([p2[:, i, 0], p2[:, i, 1], o, z, z, z, -p1[:, i, 0] * p2[:, i, 0],
                                 -p1[:, i, 0] * p2[:, i, 1]]))
        rows.append(torch.stack([z, z, z, p2[:, i, 0], p2[:, i, 1], o, -p1[:, i, 1] * p2[:, i, 0],
                                 -p1[:, i, 1] * p2[:, i, 1]]))
    a = torch.stack(rows).permute(2, 0, 1)
    return torch.linalg.solve(a, p1.reshape(p1.shape[0], 8, 1))


def _apply_perspective(coords: Tensor, coeffs: Tensor) -> Tensor:
    sz = coords.shape
    c = coords.reshape(sz[0], -1, 2)
    m = torch.cat([coeffs, torch.ones_like(coeffs[:, :1])], 1).view(coeffs.shape[0], 3, 3)
    c1 = c @ m[..., :2].transpose(1, 2) + m[..., 2].unsqueeze(1)
    if (c1[..., 2] == 0).any():
        return coords
    return (c1 / c1[..., 2:3])[..., :2].reshape(sz)


class Warp(AffineTfm):
    """Perspective warp of each image by up to `magnitude` in x and y, with probability `p`."""

    def __init__(self, magnitude: float = 0.2, p: float = 0.5, draw_x: Draw = None, draw_y: Draw = None,
                 size: int | Sequence[int] | None = None, mode: str = "bilinear",
                 pad_mode: str = PadMode.Reflection, batch: bool = False, align_corners: bool = True) -> None:
        super().__init__(p, size, mode, pad_mode, align_corners, batch)
        if not 0 <= magnitude < 1:
            raise ValueError(f"magnitude={magnitude} must be in [0, 1)")
        self.magnitude, self.draw_x, self.draw_y = float(magnitude), draw_x, draw_y

    def coords(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        mag = self.magnitude

        def default(t: Tensor) -> Tensor:
            if self.batch:
                return t.new_zeros(t.size(0)) + random.uniform(-mag, mag)
            return t.new_empty(t.size(0)).uniform_(-mag, mag)

        xt = _draw_mask(x, default, self.draw_x, self.p, 0.0, self.batch)
        yt = _draw_mask(x, default, self.draw_y, self.p, 0.0, self.batch)
        orig = torch.tensor([[-1, -1], [-1, 1], [1, -1], [1, 1]], dtype=x.dtype, device=x.device)
        orig = orig.unsqueeze(0).expand(x.size(0), 4, 2)
        targ = torch.stack([torch.stack([-1 - yt, -1 - xt]), torch.stack([-1 + yt, 1 + xt]),
                            torch.stack([1 + yt, -1 + xt]), torch.stack([1 - yt, 1 - xt])]).permute(2, 0, 1)
        coeffs = _find_coeffs(orig, targ)
        return lambda grid: _apply_perspective(grid, coeffs)

    def export_args(self) -> dict[str, Any]:
        return {"magnitude": self.magnitude, **self._common_args()}


class RandomResizedCropGPU(ImageTransform):
    """`RandomResizedCrop` on a whole batch (one crop per batch, fastai): training crops `min_scale`-
    `max_scale` of the area, validation the centre `valid_scale`; both resized to `size` (None: the batch's own
    size, as fastai's)."""

    order = 30

    def __init__(self, size: int | Sequence[int] | None, min_scale: float = 0.08,
                 ratio: Sequence[float] = (3 / 4, 4 / 3), mode: str = "bilinear", valid_scale: float = 1.0,
                 max_scale: float = 1.0) -> None:
        self.size = None if size is None else _size_hw(size)
        if not 0 < min_scale <= max_scale <= 1 or not 0 < valid_scale <= 1:
            raise ValueError(f"need 0 < min_scale <= max_scale <= 1 and 0 < valid_scale <= 1, got "
                             f"min_scale={min_scale}, max_scale={max_scale}, valid_scale={valid_scale}")
        self.min_scale, self.max_scale, self.valid_scale = float(min_scale), float(max_scale), float(valid_scale)
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.mode = _check_choice(mode, ("bilinear", "nearest", "bicubic"), "mode")

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        h, w = x.shape[-2:]
        self._in_size = (int(h), int(w))
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
        size = self.size if self.size is not None else self._in_size
        grid = F.affine_grid(mat, [n, x.size(1), *size], align_corners=True)
        return _grid_sample(x, grid, self.mode, PadMode.Reflection, True)

    def export_args(self) -> dict[str, Any]:
        return {"size": None if self.size is None else list(self.size), "min_scale": self.min_scale,
                "ratio": list(self.ratio), "mode": self.mode,
                "valid_scale": self.valid_scale, "max_scale": self.max_scale}
