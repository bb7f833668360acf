"""The file format of checkpoints and exports: checksums of everything in a file, safe (`weights_only`) loading,
the checks of each entry's type, plain values, version manifests, and whether stored weights fit a model."""
from __future__ import annotations

import hashlib
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..version import __version__

PLAIN_TYPES = (type(None), bool, int, float, str, torch.Tensor)


class DamagedFileError(RuntimeError):
    """A checkpoint or export that is damaged, truncated, malformed, or whose checksum does not match."""


CHECKSUM_KEY = "checksum"


def _hash_into(h: Any, obj: Any) -> None:
    """Feed `obj` to hash `h` in a canonical form: tensors as dtype, shape and bytes; plain values by type
    and value; containers with their length, in order."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        t = t.resolve_conj().resolve_neg().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            try:
                h.update(t.reshape(-1).view(torch.uint8).numpy().data)
            except (RuntimeError, TypeError):  # e.g. quantized tensors
                h.update(repr(t.tolist()).encode())
    elif obj is None:
        h.update(b"N;")
    elif isinstance(obj, bool):
        h.update(b"B1;" if obj else b"B0;")
    elif isinstance(obj, int):
        h.update(f"I{obj};".encode())
    elif isinstance(obj, float):
        h.update(f"F{obj.hex()};".encode())
    elif isinstance(obj, str):
        b = obj.encode("utf-8", "surrogatepass")
        h.update(f"S{len(b)}:".encode() + b)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for v in obj:
            _hash_into(h, v)
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for k, v in obj.items():
            _hash_into(h, k)
            _hash_into(h, v)
    else:  # torch.dtype, torch.device, torch.Size elements... whatever weights_only loading allows
        h.update(f"O{type(obj).__name__}:{obj!r};".encode())


class _CRC32:
    """zlib's CRC-32 behind hashlib's `update`/`hexdigest`."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: Any) -> None:
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


CHECKSUMS: dict[str, Callable[[], Any]] = {"crc32": _CRC32, "sha256": hashlib.sha256}
"""Checksum algorithms a file may name. Files are written with CRC-32: it finds every burst of damage up to 32
bits for certain and other damage but for a 2**-32 chance, at several GB/s (SHA-256 runs at 0.2 GB/s on CPUs
without SHA instructions); a checksum is no protection against someone who edits the file on purpose."""


def checksum(obj: Any, algorithm: str = "crc32") -> str:
    """Checksum (hex) of `obj`'s canonical form: every tensor's dtype, shape and bytes, every plain value, every
    key, in order."""
    h = CHECKSUMS[algorithm]()
    _hash_into(h, obj)
    return str(h.hexdigest())


def with_checksum(state: dict, algorithm: str = "crc32") -> dict:
    """`state` plus its checksum (under `"checksum"`), as `save_checkpoint` and `export_learner` write it."""
    body = {k: v for k, v in state.items() if k != CHECKSUM_KEY}
    return {**body, CHECKSUM_KEY: {algorithm: checksum(body, algorithm)}}


# ---- reading files -----------------------------------------------------------------------------
CHECKPOINT_KEYS = ("model", "opt", "position", "rng", "callbacks", "manifest")
EXPORT_KEYS = ("model", "dls", "builder", "activation", "group_names", "manifest")


def _tensors(obj: Any, where: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield where, obj
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{where}[{k!r}]")


def _check_storage(state: dict, path: Path) -> None:
    """Every tensor is backed by its own bytes: a tensor declaring more elements than its storage holds (a
    stride-0 view: 4 stored bytes claiming a 1 GB shape) would allocate that much when copied or hashed."""
    for where, t in _tensors(state, "file"):
        if t.layout != torch.strided or t.device.type == "meta":
            kind = "a meta tensor (no data)" if t.device.type == "meta" else f"a {t.layout} tensor"
            raise DamagedFileError(f"{path} is malformed: tensor {where} is {kind} of shape {tuple(t.shape)}; "
                                   "minifastai writes dense tensors with their data only")
        need, have = t.numel() * t.element_size(), t.untyped_storage().nbytes()
        if need > have:
            raise DamagedFileError(f"{path} is malformed: tensor {where} declares shape {tuple(t.shape)} "
                                   f"({need} bytes) but stores only {have} bytes")


def _verify_checksum(state: dict, path: Path) -> None:
    entry = state.get(CHECKSUM_KEY)
    if entry is None:
        unknown = [k for k in state if k not in CHECKPOINT_KEYS + EXPORT_KEYS]
        if unknown:
            raise DamagedFileError(f"{path} is damaged: it has no checksum and unknown entries {unknown}")
        warnings.warn(f"{path} has no checksum (written by minifastai 0.1 or by hand), so damage to it cannot be "
                      "detected; it is loaded as it is. Save it again to add one.", stacklevel=4)
        return
    known = [(a, v) for a, v in entry.items() if a in CHECKSUMS] if isinstance(entry, dict) else []
    if len(known) != 1 or not isinstance(known[0][1], str):
        raise DamagedFileError(f"{path} is damaged: its checksum entry is unreadable ({entry!r:.80})")
    algorithm, expected = known[0]
    actual = checksum({k: v for k, v in state.items() if k != CHECKSUM_KEY}, algorithm)
    if actual != expected:
        raise DamagedFileError(f"{path} is damaged: its contents do not match the checksum stored in it "
                               f"({algorithm} {actual[:16]} vs {expected[:16]}); use an earlier copy or checkpoint")


def safe_load(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a checkpoint or export with `torch.load(weights_only=True)` (no code from the file runs), then
    check it: a dict with a `model` dict, tensors backed by their bytes, and its checksum. Any problem is a
    `FileNotFoundError` or `DamagedFileError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for damaged files
        raise DamagedFileError(f"could not read {path}: the file is damaged, truncated or not a minifastai file "
                               f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if not isinstance(obj, dict):
        raise DamagedFileError(f"{path} is not a minifastai checkpoint or export: it holds a {type(obj).__name__}, "
                               "not a dict")
    if not isinstance(obj.get("model"), dict):
        what = "no 'model' entry" if "model" not in obj else f"its 'model' entry is a {type(obj['model']).__name__}"
        raise DamagedFileError(f"{path} is not a minifastai checkpoint or export: {what} (entries: {list(obj)[:8]})")
    _check_storage(obj, path)
    _verify_checksum(obj, path)
    obj.pop(CHECKSUM_KEY, None)
    if torch.device(map_location) != torch.device("cpu"):
        obj = _to_device(obj, map_location)
    return obj


def _to_device(obj: Any, device: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _malformed(path: Path, entry: str, what: str) -> DamagedFileError:
    return DamagedFileError(f"{path} is malformed: entry {entry} {what}")


def _check_types(state: dict, path: Path, spec: dict[str, tuple[type, ...]]) -> None:
    """Each entry present in `state` has one of the types of `spec`; the model is a dict of name -> value."""
    for key, types in spec.items():
        if key in state and not isinstance(state[key], types):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise _malformed(path, repr(key), f"is a {type(state[key]).__name__}, expected {names}")
    bad = [k for k in state["model"] if not isinstance(k, str)]
    if bad:
        raise _malformed(path, "'model'", f"has keys that are not parameter names: {bad[:3]}")
    man = state.get("manifest")
    if isinstance(man, dict) and not all(isinstance(k, str) and isinstance(v, str) for k, v in man.items()):
        raise _malformed(path, "'manifest'", "is not a dict of library name -> version")


def check_plain(obj: Any, where: str, tensors: bool = True, hint: str = "") -> Any:
    """`obj` with numpy scalars made Python numbers; a `TypeError` naming `where` (and the entry inside it) if
    `torch.load(weights_only=True)` could not read it back. Allowed: numbers, strings, None, lists, tuples, dicts
    and, unless `tensors=False`, tensors; `hint` says what to do instead."""
    allowed = PLAIN_TYPES if tensors else tuple(t for t in PLAIN_TYPES if t is not torch.Tensor)
    if isinstance(obj, allowed):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return type(obj)(check_plain(v, f"{where}[{i}]", tensors, hint) for i, v in enumerate(obj))
    if isinstance(obj, dict):
        return {check_plain(k, f"{where} key", tensors, hint): check_plain(v, f"{where}[{k!r}]", tensors, hint)
                for k, v in obj.items()}
    kinds = "numbers, strings, None, lists, tuples and dicts" + (" or tensors" if tensors else "")
    raise TypeError(f"{where} is a {type(obj).__name__} ({_short(obj)}), which an export or checkpoint cannot store "
                    f"(torch.load(weights_only=True) reads back only {kinds}); "
                    + (hint or "convert it, e.g. torch.as_tensor(array)"))


def _short(obj: Any) -> str:
    r = repr(obj)
    return r if len(r) <= 60 else r[:57] + "..."


def manifest() -> dict[str, str]:
    """Versions of the libraries that wrote a file."""
    out = {"minifastai": __version__, "torch": torch.__version__.split("+")[0]}
    try:
        from importlib.metadata import version

        out["torchvision"] = version("torchvision").split("+")[0]
    except Exception:
        pass
    return out


def check_manifest(saved: dict[str, str], path: Path) -> None:
    """Warn when a file was written with other library versions than the ones installed now."""
    now = manifest()
    diff = [f"{k} {v} (now {now.get(k, 'missing')})" for k, v in saved.items() if now.get(k) != v]
    if diff:
        warnings.warn(f"{path} was written with {', '.join(diff)}; it usually loads fine, but check "
                      "predictions", stacklevel=3)


def check_state_dict(model: nn.Module, sd: dict, what: str, strict: bool = True) -> None:
    """Raise `ValueError(f"{what}: ...")` unless `model.load_state_dict(sd, strict)` would fit: the same names
    (with `strict`) and the same shapes. Changes nothing."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    bad = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
           if k in sd and isinstance(v, torch.Tensor) and (not isinstance(sd[k], torch.Tensor)
                                                         or sd[k].shape != v.shape)]
    parts = []
    if bad:
        parts.append(f"{len(bad)} size mismatch(es), e.g. {'; '.join(bad[:3])}")
    if strict and missing:
        parts.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
    if strict and unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
    if parts:
        raise ValueError(f"{what}: {', '.join(parts)}")
