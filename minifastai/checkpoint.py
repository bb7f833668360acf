"""Checkpoints and exports: atomic writes, checksums, RNG state, safe (`weights_only`) and all-or-nothing
loading, allow-listed export builders, version manifests, training position and callback state for resuming
(`SaveModelCallback` lives in tracker.py).

What is guaranteed here (docs/guarantees.md says how each is tested):

- Writes are atomic: a temporary file created exclusively (never through a planted symlink) in the target
  folder, flushed to disk, then renamed over the target. A crash leaves the old file or the new one; a failed
  write (disk full, file-size limit) is an `OSError` naming the file, and the old file stays.
- Files carry a checksum (CRC-32) of everything in them (tensors and plain parts), checked on load.
- Loads are all-or-nothing: everything in the file is checked against the learner first, then applied.
- `load_learner` calls only the builders of `BUILDERS`, and builds the model on the meta device first to
  compare its shapes with the stored tensors, so a small crafted file cannot make it allocate gigabytes.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import secrets
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .callback.core import Callback

if TYPE_CHECKING:
    from .learner import Learner

PLAIN_TYPES = (type(None), bool, int, float, str, torch.Tensor)


class DamagedFileError(RuntimeError):
    """A checkpoint or export that is damaged, truncated, malformed, or whose checksum does not match."""


# ---- atomic writes -----------------------------------------------------------------------------
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
_TMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
# minifastai 0.1 named them .model.pth.tmp<pid> (checkpoints, exports, the pointer)
_LEGACY_TMP = re.compile(r"^\.(.+\.(pth|pkl|pt)|latest_checkpoint\.txt)\.tmp(?P<pid>\d+)$")
STALE_AFTER = 24 * 3600.0
"""Seconds after which a temporary file of another machine (or of a legacy name) counts as abandoned."""


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file next to `path`, created exclusively (`O_EXCL`: never an existing file or symlink) under a
    name unique to this machine, process and call; returns its descriptor and path."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name[:120]}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path}")


def _os_error(e: BaseException) -> OSError | None:
    """The OSError behind `e` (torch.save reports a failed write as a RuntimeError whose context is the
    OSError), if any."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, OSError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call `write(f)` on a temporary file created exclusively in `path`'s folder, flush it to disk, then
    rename it over `path`.

    A crash (even SIGKILL) at any point leaves either the old file or the new one, never half of one; a failed
    write removes the temporary file and is an `OSError` that names `path` (disk full, file-size limit).
    A symlink at `path` is replaced, never followed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        err = _os_error(e) if isinstance(e, Exception) else None
        if err is not None:
            raise OSError(err.errno, f"could not write {path}: {err.strerror or err} (disk full or file-size "
                                     "limit?); the previous file, if any, is unchanged") from e
        raise
    _fsync_dir(path.parent)
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save(obj)` to `path` through `atomic_write`."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell safely: only the age rule applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def stale_temporaries(folder: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Temporary files of `atomic_write` in `folder` that no running writer owns: written on this machine by a
    process that is gone (and not this one), or older than `STALE_AFTER` (another machine's, or of an older
    minifastai whose names carry no machine). Only names of minifastai's own pattern are considered."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    out = []
    for p in folder.iterdir():
        m, legacy = _TMP.match(p.name), _LEGACY_TMP.match(p.name)
        if not (m or legacy):
            continue
        try:
            st = p.lstat()
        except OSError:
            continue
        old = now - st.st_mtime > STALE_AFTER
        pid = int((m or legacy).group("pid"))  # type: ignore[union-attr]
        ours_and_dead = m is not None and m.group("host") == _HOST and pid != os.getpid() and not _pid_alive(pid)
        if old or ours_and_dead:
            out.append(p)
    return out


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete `stale_temporaries(folder)` (left by killed saves); returns what was deleted."""
    gone = []
    for p in stale_temporaries(folder):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            gone.append(p)
    return gone


# ---- checksums ---------------------------------------------------------------------------------
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
        need, have = t.numel() * t.element_size(), t.untyped_storage().nbytes()
        if t.layout == torch.strided and need > have:
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


def check_plain(obj: Any, where: str) -> Any:
    """`obj` with numpy scalars made Python numbers; a `TypeError` naming `where` if
    `torch.load(weights_only=True)` could not read it back (allowed: tensors, numbers, strings, None, lists,
    tuples and dicts)."""
    if isinstance(obj, PLAIN_TYPES):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return type(obj)(check_plain(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, dict):
        return {check_plain(k, f"{where} key"): check_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    raise TypeError(f"{where} is a {type(obj).__name__}, which torch.load(weights_only=True) cannot read "
                    "back; use tensors, numbers, strings, None, lists, tuples and dicts "
                    "(e.g. torch.as_tensor(array))")


# ---- RNG ---------------------------------------------------------------------------------------
def get_rng_state() -> dict:
    """torch, CUDA, numpy and random states as tensors and plain types (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = cast(tuple, np.random.get_state())
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "random": random.getstate()}


def check_rng_state(state: Any, generators: list[torch.Generator] | None = None,
                    loader_states: Any = None) -> None:
    """Raise `ValueError` if `set_rng_state(state)` (or restoring `generators` from `loader_states`) would fail;
    changes nothing (every part is tried on a scratch generator)."""
    try:
        if not isinstance(state, dict):
            raise TypeError(f"it is a {type(state).__name__}, not a dict")
        torch.Generator().set_state(state["torch"])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.RandomState().set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, internal, g = state["random"]
        random.Random().setstate((version, tuple(internal), g))
        cuda = state.get("cuda") or []
        n = torch.cuda.get_rng_state(0).numel() if torch.cuda.is_available() and cuda else None
        for i, s in enumerate(cuda):
            if not (isinstance(s, torch.Tensor) and s.dtype == torch.uint8 and (n is None or s.numel() == n)):
                raise ValueError(f"CUDA state {i} is not a generator state")
        for gen, s in zip(generators or [], loader_states or []):
            torch.Generator(device=gen.device).set_state(s)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        raise ValueError(f"invalid RNG state ({type(e).__name__}: {e})") from e


def set_rng_state(state: dict) -> None:
    """Restore what `get_rng_state` returned (CUDA states only for the devices this machine has); a state that
    does not fit is a `ValueError` raised before anything changes."""
    check_rng_state(state)
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, g = state["random"]
    random.setstate((version, tuple(internal), g))


# ---- checkpoints -------------------------------------------------------------------------------
def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _epoch_len(learn: Learner) -> int | None:
    dl = getattr(learn.dls, "train", None)
    return len(dl) if dl is not None and hasattr(dl, "__len__") else None


def training_position(learn: Learner, next_epoch: int | None = None) -> dict:
    """Where the learner is in its fit: epoch, iteration, schedule position, and where a resumed fit starts.

    `next_epoch` (the first unfinished epoch) is derived from the count of training batches done unless given.
    """
    n_iter = _epoch_len(learn)
    train_iter = int(getattr(learn, "train_iter", 0))
    boundary = next_epoch is not None or (bool(n_iter) and train_iter % n_iter == 0)  # type: ignore[operator]
    if next_epoch is None:
        next_epoch = train_iter // n_iter if n_iter else int(getattr(learn, "epoch", 0))
    return {"epoch": int(getattr(learn, "epoch", 0)), "iter": int(getattr(learn, "iter", 0)),
            "train_iter": train_iter, "n_iter": n_iter, "n_epoch": int(getattr(learn, "n_epoch", 1)),
            "pct_train": float(getattr(learn, "pct_train", 0.0)), "next_epoch": int(next_epoch),
            "epoch_boundary": bool(boundary)}


def callback_states(learn: Learner) -> dict[str, Any]:
    """`state_dict()` of every callback that defines one, by callback name."""
    out = {}
    for cb in learn.cbs:
        f = getattr(cb, "state_dict", None)
        if callable(f) and callable(getattr(cb, "load_state_dict", None)):
            out[cb.name] = check_plain(f(), f"{type(cb).__name__}.state_dict()")
    return out


def _barrier() -> None:
    from .callback.distributed import barrier

    barrier()


def loader_generators(dl: Any) -> list[torch.Generator]:
    """The `torch.Generator`s a training loader shuffles with, when it was given its own (else it uses the
    global torch RNG, which `get_rng_state` covers)."""
    out: list[torch.Generator] = []
    for g in (getattr(dl, "generator", None), getattr(getattr(dl, "sampler", None), "generator", None)):
        if isinstance(g, torch.Generator) and all(g is not o for o in out):
            out.append(g)
    return out


def save(learn: Learner, name: str | Path, with_opt: bool = True) -> Path:
    """`learn.save(name)`: model, optimizer, training position and RNG states, written atomically to
    `learn.checkpoint_path(name)`; returns the path."""
    return save_checkpoint(learn, learn.checkpoint_path(name), with_opt)


def load(learn: Learner, name: str | Path, with_opt: bool = True, strict: bool = True, with_rng: bool = True,
         with_cbs: bool = True) -> Learner:
    """`learn.load(name)`: all or nothing (a damaged or mismatched file is an error naming it, and the learner is
    unchanged); `with_rng=False` / `with_cbs=False` leave the RNG and callback states alone. Returns `learn`."""
    load_checkpoint(learn, learn.checkpoint_path(name), with_opt, strict, with_rng, with_cbs)
    return learn


def export(learn: Learner, fname: str | Path = "export.pkl") -> Path:
    """`learn.export()`: weights and what inference needs, to `learn.path / fname` (fastai's name; a
    `torch.load(weights_only=True)` file, never a code pickle); see `load_learner`."""
    return export_learner(learn, learn.path / fname)


def save_checkpoint(learn: Learner, path: Path, with_opt: bool = True, next_epoch: int | None = None) -> Path:
    """Model, optimizer, training position, RNG states and callback states, with a checksum, written atomically
    (stale temporary files of killed saves in the folder are removed first).

    Under distributed training only the main process writes (the others return the same path).
    """
    from .callback.distributed import is_main_process

    path = Path(path)
    if not is_main_process():
        return path
    state = {"model": _unwrap(learn.model).state_dict(),
             "opt": learn.opt.state_dict() if with_opt and learn.opt is not None else None,
             "position": training_position(learn, next_epoch),
             "rng": {**get_rng_state(), "loaders": [g.get_state() for g in loader_generators(learn.dls.train)]},
             "callbacks": callback_states(learn),
             "manifest": manifest()}
    clean_stale_temporaries(path.parent)
    atomic_save(with_checksum(state), path)
    _write_pointer(path)
    return path


LATEST = "latest_checkpoint.txt"


def _write_pointer(path: Path) -> None:
    """Record `path` as the latest checkpoint of its folder (a one-line text file, replaced atomically)."""
    atomic_write(path.parent / LATEST, lambda f: f.write((path.name + "\n").encode()))


def _read_pointer(pointer: Path) -> str | None:
    """The name in a pointer file (its first line, at most 4 KB, never through a symlink)."""
    try:
        fd = os.open(pointer, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        first = f.read(4096).decode("utf-8", "replace").splitlines()
    return first[0].strip() if first else None


# all-or-nothing loading: everything is checked first, then applied
_ELEMENTWISE_OPTS = tuple(getattr(torch.optim, n) for n in (
    "SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "ASGD", "Rprop")
    if hasattr(torch.optim, n))


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


def check_opt_state(opt: torch.optim.Optimizer, saved: Any, path: Path) -> None:
    """Raise `ValueError` naming `path` unless `opt.load_state_dict(saved)` fits: the same number of param
    groups and of parameters in each, the same kind of optimizer, per-parameter state for parameters that
    exist, shaped like them (for torch's element-wise optimizers). Changes nothing."""
    head = f"optimizer state in {path} does not fit this learner's layer groups"
    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict)
            and isinstance(saved.get("param_groups"), list)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in saved["param_groups"])):
        raise _malformed(path, "'opt'", "is not an optimizer state_dict (state, param_groups with params)")
    groups, saved_groups = opt.param_groups, saved["param_groups"]
    if len(groups) != len(saved_groups):
        raise ValueError(f"{head}: the file has {len(saved_groups)} param groups, this optimizer "
                         f"{len(groups)} (another splitter, or another wd_bn_bias?)")
    for i, (g, sg) in enumerate(zip(groups, saved_groups)):
        if len(g["params"]) != len(sg["params"]):
            raise ValueError(f"{head}: param group {i} has {len(sg['params'])} parameters in the file, "
                             f"{len(g['params'])} here (another splitter or model?)")
        extra, missing = set(sg) - set(g), set(g) - set(sg)
        if extra and missing:
            raise ValueError(f"{head}: it was written by another kind of optimizer (hyper-parameters "
                             f"{sorted(k for k in sg if k != 'params')} vs {sorted(k for k in g if k != 'params')})")
    params = dict(zip(chain.from_iterable(sg["params"] for sg in saved_groups),
                      chain.from_iterable(g["params"] for g in groups)))
    for pid, st in saved["state"].items():
        p = params.get(pid)
        if p is None or not isinstance(st, dict):
            raise _malformed(path, "'opt'", f"holds state for parameter {pid!r}, which no param group lists")
        if isinstance(opt, _ELEMENTWISE_OPTS):
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape != p.shape:
                    raise ValueError(f"{head}: its {k!r} for parameter {pid} has shape {tuple(v.shape)}, the "
                                     f"parameter {tuple(p.shape)} (another splitter or parameter order?)")


def load_checkpoint(learn: Learner, path: Path, with_opt: bool = True, strict: bool = True,
                    with_rng: bool = True, with_cbs: bool = True, with_weight_states: bool | None = None) -> dict:
    """Load what `save_checkpoint` wrote into `learn`, all or nothing: weights, optimizer state (`with_opt`),
    RNG states (`with_rng`) and callback states (`with_cbs`) are all checked against the learner before any is
    applied, so a file that does not fit (an error naming it) leaves the learner as it was.

    The states of callbacks that describe the weights (`restore_on_load`, e.g. EMA's average) are applied with
    the weights (`with_weight_states`, default `with_cbs`); the others are handed to the callbacks of the same
    names at the start of the next fit (after their own `before_fit`).
    """
    path = Path(path)
    _barrier()  # under DDP: wait until the main process has finished writing
    state = safe_load(path, map_location="cpu")
    _apply_checkpoint(learn, state, path, with_opt, strict, with_rng, with_cbs,
                      with_cbs if with_weight_states is None else with_weight_states)
    return state


def _apply_checkpoint(learn: Learner, state: dict, path: Path, with_opt: bool, strict: bool, with_rng: bool,
                      with_cbs: bool, with_weight_states: bool) -> None:
    _check_types(state, path, {"opt": (dict, type(None)), "rng": (dict, type(None)),
                               "callbacks": (dict, type(None)), "position": (dict, type(None)),
                               "manifest": (dict, type(None))})
    model = _unwrap(learn.model)
    # 1. check everything
    check_state_dict(model, state["model"], f"checkpoint {path} does not fit this model", strict)
    opt_state = state.get("opt") if with_opt else None
    old_opt = learn.opt
    opt = None
    if opt_state is not None:
        try:
            opt = learn.opt if learn.opt is not None else learn.create_opt()
            check_opt_state(opt, opt_state, path)
        except BaseException:
            learn.opt = old_opt
            raise
    rng = state.get("rng") if with_rng else None
    gens = loader_generators(learn.dls.train) if rng else []
    if rng:
        try:
            check_rng_state(rng, gens, rng.get("loaders"))
        except ValueError as e:
            raise DamagedFileError(f"{path}: entry 'rng' is damaged ({e}); minifastai.checkpoint.load_checkpoint("
                                   "learn, path, with_rng=False) loads the rest") from e
    saved_cbs = state.get("callbacks") if with_cbs or with_weight_states else None
    if saved_cbs and not all(isinstance(k, str) for k in saved_cbs):
        raise _malformed(path, "'callbacks'", "is not a dict of callback name -> state")
    cb_states = saved_cbs if with_cbs else None
    now = [(cb, (saved_cbs or {}).get(cb.name)) for cb in learn.cbs if cb.restore_on_load] if with_weight_states \
        else []
    for cb, cb_state in now:
        _cb_state_fits(cb, cb_state, path, cb.check_state_dict)  # type: ignore[attr-defined]
    # 2. apply (each step was checked above; the optimizer goes back if the model still refuses)
    undo = opt.state_dict() if opt is not None and old_opt is not None else None
    try:
        if opt is not None:
            opt.load_state_dict(opt_state)  # type: ignore[arg-type]
        model.load_state_dict(state["model"], strict=strict)
    except Exception as e:
        if opt is not None and undo is not None:
            opt.load_state_dict(undo)
        learn.opt = old_opt
        raise ValueError(f"checkpoint {path} does not fit this model: {e}") from e
    if rng:
        set_rng_state(rng)
        for g, s in zip(gens, rng.get("loaders", [])):
            g.set_state(s)
    for cb, cb_state in now:
        cb.load_state_dict(cb_state)  # type: ignore[attr-defined]
    if with_cbs:
        for cb in [c for c in learn.cbs if isinstance(c, RestoreCallbackStates)]:
            learn.remove_cb(cb)
        if cb_states:
            learn.add_cb(RestoreCallbackStates(cb_states, path))


def _cb_state_fits(cb: Callback, state: Any, path: Path, load: Callable[[Any], Any]) -> None:
    """Run `load(state)` (a check or the load itself); an error says which callback's state in which file."""
    try:
        load(state)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise ValueError(f"the state of callback {cb.name!r} in {path} does not fit it ({type(e).__name__}: {e}); "
                         "minifastai.checkpoint.load_checkpoint(learn, path, with_cbs=False) loads the rest") from e


class RestoreCallbackStates(Callback):
    """Gives saved callback states to the next fit's callbacks (after their own `before_fit`), then leaves."""

    order = 10_000

    def __init__(self, states: dict[str, Any], path: Path) -> None:
        self.states, self.path = states, path

    def before_fit(self) -> None:
        """Load each saved state into the callback of the same name, then remove this callback (an
        `lr_find` sweep puts both the states and this callback back afterwards)."""
        for cb in self.learn.cbs:
            load = getattr(cb, "load_state_dict", None)
            if cb.name in self.states and callable(load):
                _cb_state_fits(cb, self.states[cb.name], self.path, load)
        self.learn.remove_cb(self)


def checkpoint_files(learn: Learner) -> list[Path]:
    """The checkpoints under `learn.path / learn.model_dir`, oldest first: by modification time, except that
    the one named in `latest_checkpoint.txt` (written by every save, survives copying) comes last."""
    folder = learn.path / learn.model_dir
    if not folder.is_dir():
        return []
    files = sorted((p for p in folder.glob("*.pth") if not p.name.startswith(".") and p.is_file()),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    name = _read_pointer(folder / LATEST)
    if name:
        named = folder / name
        if named in files:
            files = [p for p in files if p != named] + [named]
    return files


def _check_position(pos: Any, path: Path) -> dict:
    if not isinstance(pos, dict):
        raise DamagedFileError(f"{path} holds no training position (was it written by Learner.export?); "
                               "move it out of the checkpoint folder, or learn.load(name) and pass start_epoch=k")
    nxt = pos.get("next_epoch")
    if not (isinstance(nxt, int) and not isinstance(nxt, bool) and nxt >= 0):
        raise _malformed(path, "'position'", f"has next_epoch={nxt!r}, not an epoch number")
    n_iter = pos.get("n_iter")
    if n_iter is not None and not (isinstance(n_iter, int) and n_iter >= 0):
        raise _malformed(path, "'position'", f"has n_iter={n_iter!r}, not a batch count")
    return pos


def resume_latest(learn: Learner) -> int:
    """Load the most recently written checkpoint under `path / model_dir`; returns the epoch to start from.

    Stale temporary files of killed saves in that folder are removed first."""
    from .callback.distributed import is_main_process

    folder = learn.path / learn.model_dir
    if is_main_process() and not learn.dry:
        clean_stale_temporaries(folder)
    files = checkpoint_files(learn)
    if not files:
        raise FileNotFoundError(
            f"resume=True, but there is no checkpoint (*.pth) in {folder}. Train with "
            "cbs=SaveModelCallback(every_epoch=True) to write one per epoch, or drop resume=True to start "
            "afresh.")
    latest = files[-1]
    prev = f" to resume from {files[-2].name}" if len(files) > 1 else ""
    try:
        # inside dry_run only the position is read: the plan starts there, nothing is loaded
        _barrier()  # under DDP: the main process may have just written it
        state = safe_load(latest)
        pos = _check_position(state.get("position"), latest)
        if not learn.dry:
            _apply_checkpoint(learn, state, latest, with_opt=True, strict=True, with_rng=True, with_cbs=True,
                              with_weight_states=True)
    except (RuntimeError, ValueError) as e:
        raise RuntimeError(f"cannot resume from the latest checkpoint {latest}: {e}. "
                           f"Delete or move it{prev}, or load another with learn.load(name) and pass "
                           "start_epoch=k.") from e
    n_iter = _epoch_len(learn)
    if pos.get("n_iter") and n_iter and pos["n_iter"] != n_iter:
        warnings.warn(f"{latest} was written with {pos['n_iter']} training batches per epoch, but dls.train "
                      f"has {n_iter}: the schedule will not continue where it stopped", stacklevel=2)
    if not pos.get("epoch_boundary", True):
        warnings.warn(f"{latest} was written in the middle of epoch {pos['next_epoch']}: that epoch restarts "
                      "from its beginning, so the result will differ slightly from an uninterrupted run "
                      "(SaveModelCallback writes at epoch ends)", stacklevel=2)
    if is_main_process() and not learn.dry:
        print(f"resuming from {latest}: {pos['next_epoch']} epoch(s) done")
    return int(pos["next_epoch"])


# ---- export ------------------------------------------------------------------------------------
def manifest() -> dict[str, str]:
    """Versions of the libraries that wrote a file."""
    from . import __version__

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


def export_weights(learn: Learner) -> dict[str, Any]:
    """The weights `export` writes: the model's, unless a callback's `export_weights(weights)` replaces them
    (`EMA` gives its averaged weights)."""
    weights = _unwrap(learn.model).state_dict()
    for cb in learn.cbs:
        f = getattr(cb, "export_weights", None)
        if callable(f):
            weights = f(weights)
    return weights


def export_learner(learn: Learner, path: Path) -> Path:
    """Weights plus what inference needs (classes, preprocessing, how to rebuild the model), with a checksum,
    atomically.

    Everything is checked to load with `torch.load(weights_only=True)`; under DDP only the main process
    writes.
    """
    from .callback.distributed import is_main_process

    path = Path(path)
    state = {"model": export_weights(learn),
             "dls": check_plain(learn.dls.export_state(), "dls.export_state()"),
             "builder": check_plain(learn.export_info, "learn.export_info"),
             "activation": learn.activation_name,
             "group_names": list(learn.group_names),
             "manifest": manifest()}
    if not is_main_process():
        return path
    clean_stale_temporaries(path.parent)
    return atomic_save(with_checksum(state), path)


def _vision_builder() -> Callable[..., Learner]:
    from . import vision

    return vision.rebuild_learner


def _tabular_builder() -> Callable[..., Learner]:
    from . import tabular

    return tabular.rebuild_learner


BUILDERS: dict[str, Callable[[], Callable[..., Learner]]] = {
    "minifastai.vision": _vision_builder, "minifastai.tabular": _tabular_builder}
"""The only code an export may ask `load_learner` to run: `builder["module"]` -> a function returning that
module's `rebuild_learner(state, device, source)` (`source`: the file, for its error messages). Anything else
is an error naming the file and the entry."""

ALLOCATION_SLACK = 256 * 2**20
"""Bytes a model build may allocate beyond twice the stored weights when it cannot be checked on the meta
device first."""

_FACTORIES = {f for f in (torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full, torch.rand,
                          torch.randn, torch.randint, torch.randperm, torch.arange, torch.linspace, torch.logspace,
                          torch.eye, torch.tensor, torch.normal, torch.Tensor.new_empty, torch.Tensor.new_zeros,
                          torch.Tensor.new_ones, torch.Tensor.new_full, torch.Tensor.new_tensor)}


class AllocationCap(TorchFunctionMode):
    """Inside the block, tensor factory calls (`torch.empty`, `zeros`, ... as modules' constructors use them)
    that would bring the total allocated beyond `limit` bytes raise `ValueError(f"{what} ...")` before
    allocating: each call's size is found on the meta device first."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__()
        self.limit, self.what, self.used = limit, what, 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _FACTORIES and "out" not in kwargs:
            try:
                probe = func(*args, **{**kwargs, "device": "meta"})
            except Exception:
                probe = None
            if isinstance(probe, torch.Tensor):
                self.used += probe.numel() * probe.element_size()
                if self.used > self.limit:
                    raise ValueError(f"{self.what} would allocate more than {self.limit / 2**20:.0f} MiB while "
                                     f"building the model (a {tuple(probe.shape)} tensor), far more than the "
                                     "weights stored in the file: its entries are damaged or crafted")
        return func(*args, **kwargs)


def _check_export(state: dict, path: Path) -> None:
    from .inference import ACTIVATIONS

    _check_types(state, path, {"dls": (dict,), "builder": (dict, type(None)), "activation": (str, type(None)),
                               "group_names": (list, tuple, type(None)), "manifest": (dict, type(None))})
    if "dls" not in state:
        raise _malformed(path, "'dls'", "is missing (was this file written by learn.save? use learn.load)")
    if state.get("activation") not in ACTIVATIONS:
        raise _malformed(path, "'activation'", f"is {state['activation']!r}, not one of {list(ACTIVATIONS)}")
    names = state.get("group_names")
    if names is not None and not all(isinstance(n, str) for n in names):
        raise _malformed(path, "'group_names'", "is not a list of strings")
    dls = state["dls"]
    if dls.get("vocab") is not None and not isinstance(dls["vocab"], (list, tuple)):
        raise _malformed(path, "'dls'['vocab']", f"is a {type(dls['vocab']).__name__}, not a list of classes")
    if dls.get("n_inp") is not None and not (isinstance(dls["n_inp"], int) and dls["n_inp"] >= 1):
        raise _malformed(path, "'dls'['n_inp']", f"is {dls['n_inp']!r}, not a positive number of inputs")


def _builder(state: dict, path: Path) -> tuple[str, Callable[..., Learner]]:
    builder = state.get("builder")
    module = builder.get("module") if isinstance(builder, dict) else None
    if not (isinstance(module, str) and module in BUILDERS):
        raise ValueError(f"{path}: entry builder['module'] = {module!r} is not one of minifastai's exporters "
                         f"({', '.join(BUILDERS)}); load_learner runs no other code. For another model, pass it: "
                         f"load_learner({str(path)!r}, model=MyNet())")
    return module, BUILDERS[module]()


def _build(rebuild: Callable[..., Learner], module: str, state: dict, path: Path, device: Any) -> Learner:
    try:
        return rebuild(state, device=device, source=str(path))
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise DamagedFileError(f"{path} is malformed: the entries for {module} cannot be read "
                               f"({type(e).__name__}: {e})") from e


def _stored_bytes(sd: dict) -> int:
    seen: dict[int, int] = {}
    for v in sd.values():
        if isinstance(v, torch.Tensor):
            s = v.untyped_storage()
            seen[s.data_ptr()] = max(seen.get(s.data_ptr(), 0), s.nbytes())
    return sum(seen.values())


def rebuild_checked(state: dict, path: Path, device: Any = "cpu") -> Learner:
    """The learner an export describes, built only after its shapes are checked against the stored weights.

    The allow-listed builder runs first on the meta device (no memory): a model whose parameter or buffer
    names or shapes differ from the stored tensors is an error naming the file, raised before anything real
    is built. A builder that cannot run on the meta device is built for real under `AllocationCap` (twice
    the stored bytes plus `ALLOCATION_SLACK`).
    """
    module, rebuild = _builder(state, path)
    probe = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                probe = rebuild(state, device=device, source=str(path))
        except ValueError:
            raise  # the builder refused the file's entries (it names the file): nothing was built
        except Exception:
            probe = None  # not buildable on meta (or malformed: the real build below raises that)
    if probe is not None:
        check_state_dict(probe.model, state["model"], f"{path} describes a model ({module}) that does not fit the "
                         "weights stored in it (the file is damaged or crafted)")
        return _build(rebuild, module, state, path, device)
    with AllocationCap(2 * _stored_bytes(state["model"]) + ALLOCATION_SLACK, str(path)):
        return _build(rebuild, module, state, path, device)


def load_learner(path: str | os.PathLike, model: nn.Module | None = None, device: Any = "cpu") -> Learner:
    """Rebuild a learner from `Learner.export`: built-in vision/tabular learners need no code, else pass
    `model`. The file is checked (checksum, entries, shapes) before a model is built or loaded."""
    from .data import DataLoaders
    from .learner import Learner

    path = Path(path)
    state = safe_load(path)
    _check_export(state, path)
    check_manifest(state.get("manifest") or {}, path)
    if model is None:
        if not state.get("builder"):
            raise ValueError(f"{path} holds a custom model: pass it, e.g. "
                             f"load_learner({str(path)!r}, model=MyNet())")
        learn = rebuild_checked(state, path, device)
    else:
        check_state_dict(model, state["model"], f"the weights in {path} do not fit the model")
        no_loader: Any = None  # an inference-only DataLoaders
        dls = DataLoaders(no_loader, no_loader, device=device, n_inp=state["dls"].get("n_inp"),
                          vocab=state["dls"].get("vocab"))
        learn = Learner(dls, model, activation=state.get("activation"))
    try:
        learn.model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"the weights in {path} do not fit the model: {e}") from e
    learn.model.to(learn.dls.device).eval()
    return learn
