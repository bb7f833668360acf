"""Image files: reading them (`read_image`, `to_image_tensor`: uint8 `(3, H, W)` tensors, torchvision's
`decode_image` or PIL; `DEFAULT_BACKEND`; every file's declared size checked against `image_limits`' limit before it
is decoded), listing them (`get_image_files`, `IMAGE_EXTENSIONS`) and labelling them
(`parent_label`, regular expressions, class folders), with the checks `ImageDataLoaders`' constructors make on
the files they are given.
"""
from __future__ import annotations

import mimetypes
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from fastcore.foundation import L
from torch import Tensor

from ..data.transforms import parent_label
from .image_limits import ImageTooLargeError, check_pixels, declared_size, open_pil_checked

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_BACKEND", "get_image_files", "ImageGetter", "parent_label", "read_image",
           "to_image_tensor"]

# what minifastai reads (torchvision's ImageFolder list); other image types are reported as skipped
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")  # GIF: 1st frame
_IMAGE_LIKE = {k for k, v in mimetypes.types_map.items() if v.startswith("image/")} | {".avif", ".heic", ".heif"}
_TV_DECODE = (".jpg", ".jpeg", ".png", ".webp")  # decoded by torchvision.io.decode_image (faster, bench/vision.py)
DEFAULT_BACKEND = "torchvision"


# ================================================================================================
# Reading images
# ================================================================================================
def _to_uint8(x: Tensor) -> Tensor:
    """16-bit images (0-65535) scaled to 8 bits with rounding; uint8 unchanged."""
    if x.dtype == torch.uint8:
        return x
    if x.dtype == torch.uint16:
        x = x.to(torch.int32)
    return torch.div(x.to(torch.int64) + 128, 257, rounding_mode="floor").clamp(0, 255).to(torch.uint8)


class _FloatRangeError(ValueError):
    """A float image whose values are not in [0, 1]."""


def _check_declared(path: Path, data: Tensor) -> None:
    """The size limit (`image_limits`) on a file's bytes, before torchvision decodes them: the PNG/JPEG/WebP header
    is read from the bytes in memory; another header is read by PIL's lazy open of the same bytes."""
    size = declared_size(data.numpy().data)  # a memoryview: no copy
    if size is None:
        try:
            with open_pil_checked(data.numpy().tobytes(), path) as im:
                size = im.size
        except ImageTooLargeError:
            raise
        except Exception:  # noqa: BLE001 (PIL cannot identify it: the decoder reports the file)
            return
    check_pixels(path, size)


def _float_to_uint8(arr: Any, name: Any) -> Tensor:
    """A float (mode "F") image's values, which must be in [0, 1], as uint8 0-255 (PIL's "RGB" would clip them
    to 0 and 1); other values are an error that says what to do."""
    import numpy as np

    lo, hi = (float(np.min(arr)), float(np.max(arr))) if arr.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo >= -1e-3 and hi <= 1 + 1e-3):
        raise _FloatRangeError(f"{name} is a 32-bit float image with values in [{lo:g}, {hi:g}]: minifastai reads "
                               "float images as intensities in [0, 1]. Rescale it to [0, 1], or save it as an 8- or "
                               "16-bit image")
    return torch.from_numpy(np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8))


def _pil_to_tensor(im: Any, name: Any) -> Tensor:
    """A PIL image (any mode; a GIF's first frame) as uint8 (3, H, W)."""
    import numpy as np

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):  # 16-bit grayscale: scale, do not clip
        arr = np.asarray(im).astype(np.int64)
        if im.mode == "I" and arr.max(initial=0) <= 255:
            t = torch.from_numpy(arr).clamp(0, 255).to(torch.uint8)
        else:
            t = _to_uint8(torch.from_numpy(arr))
        return t[None].expand(3, -1, -1).contiguous()
    if im.mode == "F":
        return _float_to_uint8(np.asarray(im), name)[None].expand(3, -1, -1).contiguous()
    return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1).contiguous()


def _read_pil(path: Path) -> Tensor:
    with open_pil_checked(path) as im:
        return _pil_to_tensor(im, f"image {path}")


def read_image(path: str | os.PathLike, backend: str | None = None) -> Tensor:
    """An image file as a uint8 RGB tensor (3, H, W). 16-bit PNGs are scaled to 8 bits (not clipped), 32-bit float
    images (TIFF mode "F") must hold values in [0, 1] and are scaled to 0-255, a GIF gives its first frame. A file
    declaring more pixels than `image_limits.max_image_pixels()` is an `ImageTooLargeError`, before it is decoded.

    `backend`: "torchvision" (`torchvision.io.decode_image` for JPEG, PNG and WebP, PIL for the rest; the
    default, faster on small images), or "pil" (PIL for everything).
    """
    path = Path(path)
    backend = backend or DEFAULT_BACKEND
    if backend not in ("torchvision", "pil"):
        raise ValueError(f"backend={backend!r} must be 'torchvision' or 'pil'")
    if not path.is_file():
        if path.is_symlink():
            raise FileNotFoundError(f"image {path} is a broken symbolic link (to {os.readlink(path)}): fix or "
                                    "delete it")
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        if backend == "torchvision" and path.suffix.lower() in _TV_DECODE:
            try:
                from torchvision.io import ImageReadMode, decode_image, read_file

                data = read_file(str(path))
                _check_declared(path, data)
                return _to_uint8(decode_image(data, mode=ImageReadMode.RGB))
            except (ImportError, RuntimeError):  # no image ops in this torchvision, or a variant libpng/libjpeg
                pass                             # refuse (e.g. CMYK JPEG): PIL reads more
        return _read_pil(path)
    except (ImageTooLargeError, _FloatRangeError):
        raise  # the size limit, a float image out of range: their own messages say what to do
    except Exception as e:
        raise RuntimeError(f"could not read image {path}: {type(e).__name__}: {e}. Delete or replace the "
                           "file.") from e


def to_image_tensor(item: Any, backend: str | None = None) -> Tensor:
    """A path, PIL image, (H, W[, C]) numpy array or (C, H, W) tensor as a 3-channel (3, H, W) image.

    uint8 values are 0-255, float values must be in [0, 1] (a float tensor with values up to 255 is an
    error that says how to pass it), 16-bit values are scaled to 8 bits.
    """
    if isinstance(item, (str, os.PathLike)):
        return read_image(item, backend)
    from PIL import Image

    if isinstance(item, Image.Image):
        import numpy as np

        if item.mode.startswith("I"):
            t = _to_uint8(torch.from_numpy(np.asarray(item).astype(np.int64)))
            return t[None].expand(3, -1, -1).contiguous()
        if item.mode == "F":
            return _float_to_uint8(np.asarray(item), "this PIL image")[None].expand(3, -1, -1).contiguous()
        return torch.from_numpy(np.asarray(item.convert("RGB")).copy()).permute(2, 0, 1).contiguous()
    if not isinstance(item, Tensor):
        import numpy as np

        try:
            arr = np.asarray(item)
        except Exception:
            arr = None
        if arr is None or arr.ndim not in (2, 3) or arr.dtype == object:
            raise TypeError(f"cannot read an image from a {type(item).__name__}: pass a file path, a PIL "
                            "image or a (C, H, W) tensor")
        t = torch.from_numpy(arr.copy())
        item = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    if item.ndim == 2:
        item = item[None]
    if item.ndim != 3 or item.shape[0] not in (1, 3, 4):
        raise ValueError("an image tensor must have shape (C, H, W) with 1, 3 or 4 channels, got "
                         f"{tuple(item.shape)}")
    if item.is_floating_point():
        lo, hi = float(item.min()), float(item.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"a float image tensor must hold values in [0, 1]; this one spans [{lo:g}, {hi:g}]. "
                             "For 0-255 values pass img.to(torch.uint8) (or img / 255)")
    elif item.dtype != torch.uint8:
        if item.dtype == torch.bool:
            raise ValueError("a boolean tensor is not an image: pass uint8 (0-255) or float (0-1) values")
        hi = int(item.max())
        if hi > 255 and item.dtype not in (torch.int32, torch.int64, torch.uint16):
            raise ValueError(f"an integer image tensor of {item.dtype} must hold 0-255 values, max is {hi}")
        item = _to_uint8(item) if hi > 255 else item.clamp(0, 255).to(torch.uint8)
    return item.expand(3, -1, -1) if item.shape[0] == 1 else item[:3]


# ================================================================================================
# Listing images
# ================================================================================================
def get_image_files(path: str | os.PathLike, recurse: bool = True, folders: Sequence[str] | None = None
                    ) -> L:
    """Image files under `path` (only in the top-level `folders` if given), sorted, as fastai lists them: a
    fastcore `L` of paths, as fastai's.

    Skipped: hidden files and folders (names starting with '.', e.g. macOS `._*` files), files that are
    not images, and folders already listed or linking back to an ancestor (symlink loops are not followed).
    Image files minifastai cannot read (e.g. `.svg`, `.heic`) and broken symbolic links are skipped with a
    warning that counts and names them.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if isinstance(folders, str):  # one folder's name (fastai's `L(folders)`), not its letters
        folders = [folders]
    found: list[Path] = []
    skipped: dict[str, list[str]] = {}
    repeated: list[tuple[str, str]] = []
    broken: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[Path, bool]] = [(root, True)]
    while stack:
        folder, top = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            repeated.append((str(folder), real))
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise OSError(f"cannot list {folder}: {e}") from e
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if recurse and (folders is None or not top or entry.name in folders):
                    child = os.path.realpath(entry.path)
                    if child == real or real.startswith(child.rstrip(os.sep) + os.sep):  # a link to an ancestor
                        repeated.append((entry.path, child))
                    else:
                        subdirs.append((Path(entry.path), False))
            elif entry.is_symlink() and not os.path.exists(entry.path):  # a link to nothing: reported
                if not (top and folders is not None and "." not in folders and entry.name not in folders):
                    broken.append(f"{entry.path} -> {os.readlink(entry.path)}")
            elif entry.is_file() and not (top and folders is not None and "." not in folders):
                ext = os.path.splitext(entry.name)[1].lower()
                if ext in IMAGE_EXTENSIONS:
                    found.append(Path(entry.path))
                elif ext in _IMAGE_LIKE:
                    skipped.setdefault(ext, []).append(entry.path)
        stack.extend(reversed(subdirs))
    if skipped:
        kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(skipped.items()))
        example = next(iter(skipped.values()))[0]
        warnings.warn(f"get_image_files({str(root)!r}) skipped {sum(map(len, skipped.values()))} image files that "
                      f"minifastai does not read ({kinds}; e.g. {example}); it reads "
                      f"{', '.join(IMAGE_EXTENSIONS)}. Convert them (e.g. to PNG) to use them.", stacklevel=2)
    if repeated:
        warnings.warn(f"get_image_files({str(root)!r}) did not enter {len(repeated)} folder(s) already listed "
                      f"or linking back to an ancestor (a symlink loop or a second link), e.g. {repeated[0][0]} -> "
                      f"{repeated[0][1]}", stacklevel=2)
    if broken:
        warnings.warn(f"get_image_files({str(root)!r}) skipped {len(broken)} broken symbolic link(s), which point to "
                      f"nothing (e.g. {broken[0]}): fix or delete them to use those images", stacklevel=2)
    return L(sorted(found))


def ImageGetter(suf: str = "", recurse: bool = True,  # noqa: N802 (fastai's name)
                folders: str | Sequence[str] | None = None) -> Callable[[Any], L]:
    """A function `path -> get_image_files(path / suf, recurse, folders)` (fastai's `ImageGetter`)."""

    def _inner(o: Any, recurse: bool = recurse, folders: Any = folders) -> L:
        return get_image_files(Path(o) / suf, recurse, folders)

    return _inner


def _regex_labeller(pat: str, on_name: bool) -> Callable[[Any], str]:
    rx = re.compile(pat)
    if rx.groups < 1:
        raise ValueError(f"pat={pat!r} has no group: put the label in parentheses, e.g. r'^(.*)_\\d+.jpg$'")

    def label(o: Any) -> str:
        s = Path(o).name if on_name else str(o)
        m = rx.search(s)
        if m is None:
            raise ValueError(f"pattern {pat!r} does not match {s!r} (file {o}): no label for it; fix the "
                             "pattern or remove the file from fnames")
        return m.group(1)

    return label


def _class_folders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _class_samples(folder: Path, what: str) -> tuple[list[Path], list[str]]:
    """Images under `folder/<class>/` (any depth), labelled by class; empty class folders are errors."""
    classes = _class_folders(folder)
    if not classes:
        loose = [f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)]
        raise FileNotFoundError(f"{what} folder {folder} has no class folders" + (
            f" (it holds {len(loose)} images directly)" if loose else "") +
            f": expected {folder}/<class name>/<image files>")
    files = get_image_files(folder, folders=classes)
    labels = [f.relative_to(folder).parts[0] for f in files]
    empty = [str(folder / c) for c in classes if c not in set(labels)]
    if empty:
        raise FileNotFoundError(f"no images in {', '.join(empty)} (image files end in "
                                f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder")
    return files, labels


def _check_files(items: Sequence[Any], path: Path) -> list[str]:
    out = [str(o) for o in items]
    missing = [f for f in out if not os.path.isfile(f)]
    if missing:
        hint = ""
        links = [f for f in missing if os.path.islink(f)]
        if links:
            hint = (f" {len(links)} of them are broken symbolic links (e.g. {links[0]} -> {os.readlink(links[0])}): "
                    "fix or delete them, and leave them out of fnames.")
        elif not os.path.isabs(missing[0]) and (path / missing[0]).is_file():
            hint = f" They exist under path={str(path)!r}: pass [path/f for f in fnames]."
        raise FileNotFoundError(f"{len(missing)} of {len(out)} image files do not exist (e.g. {missing[:3]}).{hint}")
    return out
