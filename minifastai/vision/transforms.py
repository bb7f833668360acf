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
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

__all__ = [
    "PadMode", "ResizeMethod", "ImageTransform", "Resize", "RandomResizedCrop", "CropPad", "AffineTfm", "Flip",
    "Dihedral", "Rotate", "Zoom", "Warp", "LightingTfm", "Brightness", "Contrast", "RandomResizedCropGPU",
    "Normalize", "aug_transforms", "imagenet_stats", "IMAGENET_STATS",
]

imagenet_stats: tuple[list[float], list[float]] = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
IMAGENET_STATS: tuple[tuple[float, ...], tuple[float, ...]] = (tuple(imagenet_stats[0]), tuple(imagenet_stats[1]))
MAX_SIZE = 16384  # pixels per side: larger sizes in a transform are refused (an export cannot ask for more)


class PadMode:
    """How pixels outside the image are filled (fastai's names)."""

    Zeros, Border, Reflection = "zeros", "border", "reflection"


class ResizeMethod:
    """How `Resize` fits an image into the target size (fastai's names)."""

    Squish, Crop, Pad = "squish", "crop", "pad"


_TV_PAD = {"zeros": "constant", "border": "edge", "reflection": "reflect"}
_INTERP = {"bilinear": v2.InterpolationMode.BILINEAR, "nearest": v2.InterpolationMode.NEAREST,
           "bicubic": v2.InterpolationMode.BICUBIC}


def _size_hw(size: int | Sequence[int], what: str = "size") -> tuple[int, int]:
    """(h, w) from an int or an (h, w) pair, as fastai reads sizes; checked to be positive and sane."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_SIZE for s in hw):
        raise ValueError(f"{what}={size!r} must be an int or an (height, width) pair of ints in [1, {MAX_SIZE}]")
    return int(hw[0]), int(hw[1])


def _check_prob(p: float, name: str = "p") -> float:
    if not (isinstance(p, (int, float)) and 0 <= p <= 1):
        raise ValueError(f"{name}={p!r} must be a probability in [0, 1]")
    return float(p)


def _check_choice(value: str, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {list(choices)}")
    return value


class ImageTransform:
    """Base of minifastai's image transforms: `__call__(x, train)`; `order` sorts a pipeline (as fastai).

    `train_only` transforms leave validation and inference data unchanged. `export_args()` returns the
    constructor's arguments as plain data, which is how an export stores the transform.
    """

    order: ClassVar[int] = 0
    train_only: ClassVar[bool] = False

    def __call__(self, x: Tensor, train: bool = True) -> Tensor:
        """Apply to `x` (training version when `train`)."""
        if self.train_only and not train:
            return x
        return self.encodes(x, train)

    def encodes(self, x: Tensor, train: bool) -> Tensor:
        """The transform itself; subclasses implement it."""
        raise NotImplementedError

    def export_args(self) -> dict[str, Any]:
        """Constructor arguments as plain data (numbers, strings, lists, None)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.export_args().items())
        return f"{type(self).__name__}({args})"


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
