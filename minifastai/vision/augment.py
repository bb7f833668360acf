"""Batch augmentations on the device, as fastai's: affine (`Flip`, `Dihedral`, `Rotate`, `Zoom`, `Warp`) and
lighting (`Brightness`, `Contrast`) transforms, composed into one resampling."""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .tfm_base import ImageTransform, PadMode, _check_choice, _check_prob, _size_hw

# ================================================================================================
# Batch transforms: float (N, C, H, W) batches on the device, parameters drawn per image
# ================================================================================================
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


def _logit(x: Tensor) -> Tensor:
    x = x.clamp(1e-7, 1 - 1e-7)
    return -(1 / x - 1).log()


class LightingTfm(ImageTransform):
    """Base of the lighting transforms: applied in logit space; consecutive ones share one logit/sigmoid.
    Training only."""

    order = 40
    train_only = True

    def __init__(self, max_lighting: float = 0.2, p: float = 0.75, draw: Draw = None, batch: bool = False) -> None:
        if not 0 <= max_lighting < 1:
            raise ValueError(f"max_lighting={max_lighting} must be in [0, 1)")
        self.max_lighting, self.p, self.draw, self.batch = float(max_lighting), _check_prob(p), draw, bool(batch)

    def logit_fn(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        """A function applied to the batch in logit space, drawn for this batch."""
        raise NotImplementedError

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        return apply_lighting([self], x)

    def export_args(self) -> dict[str, Any]:
        return {"max_lighting": self.max_lighting, "p": self.p, "batch": self.batch}


def apply_lighting(tfms: Sequence[LightingTfm], x: Tensor) -> Tensor:
    """sigmoid(f_n(...f_1(logit(x)))) for consecutive lighting transforms (training batches)."""
    fns = [t.logit_fn(x) for t in tfms]
    y = _logit(x)
    for f in fns:
        y = f(y)
    return torch.sigmoid(y)


class Brightness(LightingTfm):
    """Change the brightness of each image by up to `max_lighting`, with probability `p`."""

    def logit_fn(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        lo, hi = 0.5 * (1 - self.max_lighting), 0.5 * (1 + self.max_lighting)

        def default(t: Tensor) -> Tensor:
            if self.batch:
                return t.new_zeros(t.size(0)) + random.uniform(lo, hi)
            return t.new_empty(t.size(0)).uniform_(lo, hi)

        change = _logit(_draw_mask(x, default, self.draw, self.p, 0.5, self.batch))[:, None, None, None]
        return lambda y: y + change


class Contrast(LightingTfm):
    """Change the contrast of each image by a factor in [1 - max_lighting, 1 / (1 - max_lighting)], with
    probability `p`."""

    def logit_fn(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        lo, hi = math.log(1 - self.max_lighting), -math.log(1 - self.max_lighting)

        def default(t: Tensor) -> Tensor:
            if self.batch:
                return torch.exp(t.new_zeros(t.size(0)) + random.uniform(lo, hi))
            return torch.exp(t.new_empty(t.size(0)).uniform_(lo, hi))

        change = _draw_mask(x, default, self.draw, self.p, 1.0, self.batch)[:, None, None, None]
        return lambda y: y * change
