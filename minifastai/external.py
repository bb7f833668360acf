"""fastai's datasets from the web (`fastai.data.external`): `URLs`, `download_url` and `untar_data`.

`untar_data(URLs.PETS)` downloads the archive once into `<home>/archive`, checks its size and MD5 against what
fastai records (`external_checks.py`), extracts it into `<home>/data/<name>` and returns that folder; later calls
return the folder at once. `<home>` is `$FASTAI_HOME` or `~/.fastai`, fastai's own layout, so data fastai already
fetched is found. Nothing is left half-done: the download goes to a temporary file renamed when complete, the
archive is extracted into a temporary folder renamed when complete, and archive members that would land outside
it (absolute paths, `..`, links) are refused. Offline, it fails at once, saying where to put the archive by hand.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from .external_checks import ARCHIVES

__all__ = ["URLs", "download_url", "untar_data", "fastai_path", "check_archive"]

_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class _URLsMeta(type):
    def __getattr__(cls, name: str) -> str:
        if name in ARCHIVES:
            return ARCHIVES[name][0]
        raise AttributeError(f"URLs has no dataset {name!r}; the datasets are {', '.join(sorted(ARCHIVES))}")

    def __dir__(cls) -> list[str]:
        return sorted({*type.__dir__(cls), *ARCHIVES})


class URLs(metaclass=_URLsMeta):
    """fastai's dataset URLs: `URLs.PETS`, `URLs.MNIST_SAMPLE`, `URLs.ADULT_SAMPLE`, ... (every archive fastai
    2.8.12 records a checksum for)."""

    LOCAL_PATH = Path.cwd()
    S3 = "https://s3.amazonaws.com/fast-ai-"
    URL = f"{S3}sample/"

    @staticmethod
    def path(url: str, c_key: str = "archive") -> Path:
        """Where `url`'s file goes locally (fastai's): `fastai_path(c_key) / <its file name>`, or under `./data` (or
        `./models` for `c_key="model"`) when it is already there."""
        name = str(url).rstrip("/").rsplit("/", 1)[-1]
        if not name or name in (".", ".."):
            raise ValueError(f"URLs.path: {url!r} names no file")
        local = Path.cwd() / ("models" if c_key == "model" else "data") / name
        return local if local.exists() else fastai_path(c_key) / name


_FOLDERS = {"archive": "archive", "data": "data", "model": "models", "models": "models", "storage": "tmp"}


def fastai_path(folder: str) -> Path:
    """`$FASTAI_HOME` (default `~/.fastai`) / the folder of fastai's config key: `archive`, `data`, `model`
    (`models/`) or `storage` (`tmp/`)."""
    if folder not in _FOLDERS:
        raise ValueError(f"fastai_path: the key is one of {sorted(_FOLDERS)}, got {folder!r}")
    return Path(os.environ.get("FASTAI_HOME", "~/.fastai")).expanduser() / _FOLDERS[folder]


def archive_name(url: str) -> str:
    """The archive's file name: the last part of the URL's path (`oxford-iiit-pet.tgz`)."""
    name = urllib.parse.urlparse(url).path.rsplit("/", 1)[-1]
    if not name or name in (".", "..") or not name.endswith(_SUFFIXES):
        raise ValueError(f"{url!r} does not name an archive (.tgz, .tar.gz, .tar or .zip)")
    return name


def _stem(name: str) -> str:
    for s in _SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def _known(url: str) -> tuple[int, str] | None:
    for u, size, md5 in ARCHIVES.values():
        if u == url:
            return size, md5
    return None


def check_archive(path: Path, url: str) -> None:
    """Raise `ValueError` naming `path` unless its size and MD5 are the ones fastai records for `url` (an
    archive fastai records nothing for is not checked)."""
    known = _known(url)
    if known is None:
        return
    size, md5 = known
    got = path.stat().st_size
    if got != size:
        raise ValueError(f"{path} has {got:,} bytes, but {url} has {size:,}: the download was cut or is another "
                         "file; delete it, or pass force_download=True")
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != md5:
        raise ValueError(f"{path} does not have the MD5 fastai records for {url} ({h.hexdigest()} != {md5}); "
                         "delete it, or pass force_download=True")


def download_url(url: str, dest: str | os.PathLike, timeout: float = 30.0) -> Path:
    """Download `url` to `dest`, atomically: into a temporary file next to it, renamed when the whole file has
    arrived (a cut connection or a kill leaves no `dest`). Returns `dest`."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:  # noqa: S310 (the user's URL)
            expected = r.headers.get("Content-Length")
            shutil.copyfileobj(r, f, 1 << 20)
            f.flush()
            os.fsync(f.fileno())
        if expected is not None and tmp.stat().st_size != int(expected):
            raise OSError(f"got {tmp.stat().st_size} of {expected} bytes")
        os.replace(tmp, dest)
    except (OSError, urllib.error.URLError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise ConnectionError(f"could not download {url} ({e}). Offline, put the archive at {dest} and call "
                              "again: it is used as it is") from e
    return dest


def _safe_extract(archive: Path, into: Path) -> None:
    """Extract `archive` into the folder `into`, refusing members that would land outside it."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            root = into.resolve()
            for m in z.namelist():
                target = (into / m).resolve()
                if not target.is_relative_to(root):
                    raise ValueError(f"{archive}: member {m!r} would be written outside {into}; refused")
            z.extractall(into)
        return
    with tarfile.open(archive) as t:
        try:
            t.extractall(into, filter="data")  # refuses absolute paths, '..', links out of `into`, devices
        except tarfile.FilterError as e:
            raise ValueError(f"{archive}: {e}; refused") from e


def untar_data(url: str, archive: str | os.PathLike | None = None, data: str | os.PathLike | None = None,
               c_key: str = "data", force_download: bool = False, base: str | os.PathLike | None = None) -> Path:
    """fastai's `untar_data`: the folder of `url`'s archive, downloaded (once, checked) and extracted (once).

    `archive` / `data` are the folders for the archive and the extracted data (default `<base>/archive` and
    `<base>/data`, with `base` `$FASTAI_HOME` or `~/.fastai`); `force_download=True` fetches and extracts again.
    """
    name = archive_name(url)
    if c_key not in ("data", "model", "models"):
        raise ValueError(f"untar_data: c_key is 'data' or 'model' (the folder it extracts into), got {c_key!r}")
    root = Path(base).expanduser() if base is not None else None
    arch_dir = Path(archive) if archive is not None else (root / "archive" if root else fastai_path("archive"))
    data_dir = Path(data) if data is not None else (root / _FOLDERS[c_key] if root else fastai_path(c_key))
    dest, arch = data_dir / _stem(name), arch_dir / name
    if dest.exists() and not force_download:
        return dest
    if force_download or not arch.exists():
        download_url(url, arch)
    check_archive(arch, url)
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(f".{_stem(name)}.extracting-*"):  # a killed extraction's leftovers
        shutil.rmtree(stale, ignore_errors=True)
    tmp = data_dir / f".{_stem(name)}.extracting-{os.getpid()}"
    try:
        _safe_extract(arch, tmp)
        entries = list(tmp.iterdir())
        src = entries[0] if len(entries) == 1 and entries[0].is_dir() and entries[0].name == dest.name else tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(src, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
