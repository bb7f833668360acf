"""Atomic files: a temporary created exclusively next to the target, flushed, renamed over it; stale temporaries of
killed writes are found and removed. A crash leaves the old file or the new one, never a mix."""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

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
