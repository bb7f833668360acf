"""The image-size limit (decompression bombs): a file's declared width and height are checked against one limit,
`max_image_pixels()` (PIL's `Image.MAX_IMAGE_PIXELS`, 89,478,485 by default; `set_max_image_pixels(n)` changes it,
`None` turns the check off) BEFORE it is decoded, on every decoder minifastai uses: torchvision's `decode_image`
(the PNG, JPEG and WebP headers are read from the bytes already in memory, at no extra I/O) and PIL's (its lazy
`Image.open` reads the header only).

A ~400 KB PNG can declare 20000x20000 pixels and decode to 1.2 GB; torchvision's decoder ignores PIL's limit, so
minifastai checks it itself and raises `ImageTooLargeError`, naming the file, its declared size and the limit.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from typing import Any

__all__ = ["ImageTooLargeError", "max_image_pixels", "set_max_image_pixels", "declared_size", "check_pixels",
           "open_pil_checked"]


class ImageTooLargeError(ValueError):
    """An image file declares more pixels than `max_image_pixels()` (it could be a decompression bomb)."""


def max_image_pixels() -> int | None:
    """The most pixels (width x height) an image file may declare before minifastai decodes it (None: no limit).

    It is PIL's `Image.MAX_IMAGE_PIXELS` (89,478,485 by default), so one setting governs PIL's decoder and
    torchvision's alike."""
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS


def set_max_image_pixels(n: int | None) -> None:
    """Set the image-size limit: the most pixels a file may declare (a positive int), or None for no limit.

    It sets PIL's `Image.MAX_IMAGE_PIXELS` too (the same limit). Set it before building loaders whose workers
    are started with "spawn" (they import PIL afresh)."""
    from PIL import Image

    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"set_max_image_pixels({n!r}): the limit must be a positive int (pixels) or None (no limit)")
    Image.MAX_IMAGE_PIXELS = n


# ---- reading the declared size -----------------------------------------------------------------------------
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers (not DHT, JPG, DAC)


def _jpeg_size(b: Any) -> tuple[int, int] | None:
    i, n = 2, len(b)
    while i + 9 <= n:
        if b[i] != 0xFF:
            return None
        m = b[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
        elif m == 0x01 or 0xD0 <= m <= 0xD8:  # markers without a length
            i += 2
        elif m in _SOF:
            h, w = struct.unpack_from(">HH", b, i + 5)
            return w, h
        elif m in (0xDA, 0xD9):  # start of scan / end of image before any frame header
            return None
        else:
            i += 2 + ((b[i + 2] << 8) | b[i + 3])
    return None


def _webp_size(h: bytes) -> tuple[int, int] | None:
    kind = h[12:16]
    if kind == b"VP8 " and h[23:26] == b"\x9d\x01\x2a":
        w, hh = struct.unpack_from("<HH", h, 26)
        return w & 0x3FFF, hh & 0x3FFF
    if kind == b"VP8L" and h[20] == 0x2F:
        bits = struct.unpack_from("<I", h, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return 1 + int.from_bytes(h[24:27], "little"), 1 + int.from_bytes(h[27:30], "little")
    return None


def declared_size(data: Any) -> tuple[int, int] | None:
    """(width, height) that the header of a PNG, JPEG or WebP file declares, read from its bytes (`bytes`, a
    memoryview or a uint8 array) without decoding; None for another format or a header it cannot read."""
    try:
        head = bytes(data[:32])
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            w, h = struct.unpack_from(">II", head, 16)
            return w, h
        if head[:3] == b"\xff\xd8\xff":
            return _jpeg_size(data)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
            return _webp_size(head)
    except (struct.error, IndexError):
        return None
    return None


def _size_ignoring_limit(src: Any) -> tuple[int, int] | None:
    """The size PIL reads from the header of `src` (a path or bytes), without PIL's own limit (for the error)."""
    from PIL import Image

    Image.init()
    try:
        with (io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")) as fp:
            prefix = fp.read(16)
            for fmt in Image.ID:
                factory, accept = Image.OPEN[fmt]
                ok = not accept or accept(prefix)
                if ok and not isinstance(ok, str):
                    try:
                        fp.seek(0)
                        return tuple(factory(fp, "").size)  # type: ignore[return-value]
                    except Exception:  # noqa: BLE001 (not this format: try the next, as Image.open does)
                        continue
    except OSError:
        return None
    return None


def check_pixels(name: Any, size: tuple[int, int] | None) -> None:
    """Raise `ImageTooLargeError` (naming the file `name`, its size and the limit) when `size` (width, height)
    has more pixels than `max_image_pixels()`; nothing when it does not, or when the size is unknown."""
    limit = max_image_pixels()
    if limit is None or size is None:
        return
    w, h = size
    if w * h > limit:
        raise ImageTooLargeError(
            f"image {name} declares {w}x{h} pixels ({w * h:,}), more than the limit of {limit:,}: it could be a "
            f"decompression bomb (decoded, it would take {w * h * 3 / 2 ** 30:.1f} GiB). Nothing was decoded. If you "
            f"trust the file, raise the limit: minifastai.vision.set_max_image_pixels({w * h}) (None: no limit; it "
            "is PIL's Image.MAX_IMAGE_PIXELS)")


def open_pil_checked(src: str | os.PathLike | bytes, name: Any = None) -> Any:
    """PIL's lazy `Image.open(src)` (a path or bytes) after the size check: its header only is read; a file
    over the limit is `ImageTooLargeError` (PIL's own warning and error replaced by it)."""
    from PIL import Image

    name = src if name is None else name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
        except Image.DecompressionBombError:
            size = _size_ignoring_limit(src)
            check_pixels(name, size)
            raise ImageTooLargeError(f"image {name} declares more pixels than twice the limit of "
                                     f"{max_image_pixels():,}; raise it with minifastai.vision."
                                     "set_max_image_pixels(n) if you trust the file") from None
    try:
        check_pixels(name, im.size)
    except ImageTooLargeError:
        im.close()
        raise
    return im
