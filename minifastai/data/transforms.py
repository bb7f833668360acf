"""fastai's splitters (which items validate) and labellers (what an item's label is), as `DataBlock` and the
tabular `TabularPandas` take them.

A splitter is a function `items -> (train positions, valid positions)`, two int arrays; the positions are as in
`df.iloc` for a DataFrame. They give fastai's rows for the same arguments (`RandomSplitter(seed=s)` the same
permutation: fastai's `torch.manual_seed(s); torch.randperm(n)`, drawn here from a private generator so the
global RNG is left alone). A labeller is a function `item -> label`.
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastcore.basics import using_attr
from fastcore.foundation import L

__all__ = [
    "Splitter", "RandomSplitter", "TrainTestSplitter", "IndexSplitter", "EndSplitter", "GrandparentSplitter",
    "FuncSplitter", "MaskSplitter", "FileSplitter", "ColSplitter", "RandomSubsetSplitter", "parent_label",
    "RegexLabeller", "ColReader", "ItemGetter", "AttrGetter", "using_attr", "get_files", "FileGetter",
]

Splitter = Callable[[Any], tuple[np.ndarray, np.ndarray]]


def _fraction(v: Any, name: str, where: str, lo_open: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or v != v:
        raise TypeError(f"{where}: {name} must be a fraction (a float), got {v!r}")
    if not (0 < v < 1 if lo_open else 0 <= v < 1):
        raise ValueError(f"{where}: {name} must be in {'(0, 1)' if lo_open else '[0, 1)'}, got {v}")
    return float(v)


def _perm(n: int, seed: int | None) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randperm(n, generator=gen).numpy()


def RandomSplitter(valid_pct: float = 0.2, seed: int | None = None) -> Splitter:  # noqa: N802 (fastai's name)
    """A random `valid_pct` of the items validate (fastai's rows for the same `seed`; without one, torch's global
    RNG decides, as `torch.manual_seed` sets it)."""
    valid_pct = _fraction(valid_pct, "valid_pct", "RandomSplitter")

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        perm, cut = _perm(len(o), seed), int(valid_pct * len(o))
        return perm[cut:], perm[:cut]

    return _inner


def RandomSubsetSplitter(train_sz: float, valid_sz: float, seed: int | None = None) -> Splitter:  # noqa: N802
    """Random subsets: `train_sz` of the items train, the next `valid_sz` validate, the rest are left out."""
    train_sz = _fraction(train_sz, "train_sz", "RandomSubsetSplitter", lo_open=True)
    valid_sz = _fraction(valid_sz, "valid_sz", "RandomSubsetSplitter", lo_open=True)
    if train_sz + valid_sz > 1:
        raise ValueError(f"RandomSubsetSplitter: train_sz + valid_sz = {train_sz + valid_sz:g} is more than 1")

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        n_t, n_v = int(len(o) * train_sz), int(len(o) * valid_sz)
        perm = _perm(len(o), seed)
        return perm[:n_t], perm[n_t:n_t + n_v]

    return _inner


def TrainTestSplitter(test_size: float = 0.2, random_state: int | None = None, stratify: Any = None,  # noqa: N802
                      train_size: float | None = None, shuffle: bool = True) -> Splitter:
    """scikit-learn's `train_test_split` of the positions (stratified by `stratify`, e.g. the labels)."""
    try:
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ImportError("TrainTestSplitter uses scikit-learn: pip install 'minifastai[metrics]' (or "
                          "scikit-learn)") from None

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        train, valid = train_test_split(np.arange(len(o)), test_size=test_size, random_state=random_state,
                                        stratify=stratify, train_size=train_size, shuffle=shuffle)
        return np.asarray(train), np.asarray(valid)

    return _inner


def IndexSplitter(valid_idx: Sequence[int] | np.ndarray) -> Splitter:  # noqa: N802 (fastai's name)
    """Items `valid_idx` (positions, as in `df.iloc`, or a boolean mask) validate; the others train."""

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        valid = row_mask(valid_idx, len(o), "valid_idx")
        return np.flatnonzero(~valid), np.flatnonzero(valid)

    return _inner


def EndSplitter(valid_pct: float = 0.2, valid_last: bool = True) -> Splitter:  # noqa: N802 (fastai's name)
    """The last (`valid_last`, else the first) `valid_pct` of the items validate: for ordered data."""
    valid_pct = _fraction(valid_pct, "valid_pct", "EndSplitter", lo_open=True)

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        idx, cut = np.arange(len(o)), int(valid_pct * len(o))
        return (idx[:len(o) - cut], idx[len(o) - cut:]) if valid_last else (idx[cut:], idx[:cut])

    return _inner


def GrandparentSplitter(train_name: str | Sequence[str] = "train",  # noqa: N802 (fastai's name)
                        valid_name: str | Sequence[str] = "valid") -> Splitter:
    """Files under `.../train_name/<label>/` train, those under `.../valid_name/<label>/` validate (a name or
    a list of names); others are left out."""

    def _idx(o: Any, names: str | Sequence[str]) -> np.ndarray:
        grand = [Path(x).parent.parent.name for x in o]
        return np.asarray([i for n in ([names] if isinstance(names, str) else names)
                           for i, g in enumerate(grand) if g == n], dtype=np.int64)

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        return _idx(o, train_name), _idx(o, valid_name)

    return _inner


def FuncSplitter(func: Callable[[Any], bool]) -> Splitter:  # noqa: N802 (fastai's name)
    """Items for which `func(item)` is true validate."""
    if not callable(func):
        raise TypeError(f"FuncSplitter takes a function item -> bool, got {type(func).__name__}")

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        return IndexSplitter(np.asarray([bool(func(x)) for x in _rows(o)], dtype=bool))(o)

    return _inner


def MaskSplitter(mask: Sequence[bool] | np.ndarray) -> Splitter:  # noqa: N802 (fastai's name)
    """Items where `mask` is true validate (one entry per item)."""

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        return IndexSplitter(np.asarray(mask, dtype=bool))(o)

    return _inner


def FileSplitter(fname: str | os.PathLike) -> Splitter:  # noqa: N802 (fastai's name)
    """Files whose name is a line of the text file `fname` validate."""
    valid = set(Path(fname).read_text().split("\n"))
    return FuncSplitter(lambda x: Path(x).name in valid)


def ColSplitter(col: int | str = "is_valid", on: Any = None) -> Splitter:  # noqa: N802 (fastai's name)
    """Rows of a DataFrame whose column `col` is true (or equals `on`, or is in the list `on`) validate."""

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        import pandas as pd

        if not isinstance(o, pd.DataFrame):
            raise TypeError(f"ColSplitter splits a pandas DataFrame's rows; the items are a {type(o).__name__}")
        if isinstance(col, int) and not isinstance(col, bool):
            c = o.iloc[:, col]
        elif col in o.columns:
            c = o[col]
        else:
            raise KeyError(f"ColSplitter: column {col!r} is not in the DataFrame (columns: {list(o.columns)})")
        if on is None:
            mask = c.to_numpy().astype(bool)
        elif isinstance(on, (list, tuple, set)):
            mask = c.isin(list(on)).to_numpy()
        else:
            mask = (c == on).to_numpy()
        return IndexSplitter(mask)(o)

    return _inner


def _rows(o: Any) -> Any:
    """What a splitter's function sees: a DataFrame's rows, else the items."""
    if hasattr(o, "iloc") and hasattr(o, "columns"):
        return (o.iloc[i] for i in range(len(o)))
    return o


def row_mask(idx: Any, n: int, what: str) -> np.ndarray:
    """A boolean mask of the rows in `idx`: positions (negative ones count from the end, each row once) or
    a boolean mask."""
    v = np.asarray(idx)
    if v.dtype == bool:
        if v.shape != (n,):
            raise ValueError(f"a boolean {what} must have one entry per row ({n}), got shape {v.shape}")
        return v
    mask = np.zeros(n, dtype=bool)
    if v.size == 0:
        return mask
    if v.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer row positions (as in df.iloc) or be a boolean mask, "
                        f"got dtype {v.dtype}")
    v = v.reshape(-1)
    lo, hi = int(v.min()), int(v.max())
    if lo < -n or hi >= n:
        raise ValueError(f"{what} holds positions outside [0, {n}): they are row positions (as in df.iloc), "
                         "not index labels")
    mask[v] = True
    if int(mask.sum()) != len(v):
        counts = np.bincount(v % n, minlength=n)
        raise ValueError(f"{what} lists rows {np.flatnonzero(counts > 1)[:5].tolist()} more than once")
    return mask


# ================================================================================================
# Files
# ================================================================================================
def get_files(path: str | os.PathLike, extensions: Any = None, recurse: bool = True,
              folders: str | Sequence[str] | None = None, followlinks: bool = True) -> L:
    """The files under `path` (fastai's `get_files`): with one of `extensions` (any case; None: all), in every
    subfolder (`recurse`) or only in the top-level `folders`; names starting with '.' are skipped. Sorted by folder,
    then name (fastai's order is the file system's). A fastcore `L` of paths, as fastai's."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"get_files: folder {root} does not exist")
    exts = None if extensions is None else {e.lower() for e in ([extensions] if isinstance(extensions, str)
                                                                 else extensions)}
    tops = None if folders is None else ([folders] if isinstance(folders, str) else list(folders))

    def keep(names: list[str], folder: str) -> list[Path]:
        return [Path(folder) / f for f in sorted(names) if not f.startswith(".") and (
            exts is None or os.path.splitext(f)[1].lower() in exts)]

    if not recurse:
        return L(keep([e.name for e in os.scandir(root) if e.is_file()], str(root)))
    out: list[Path] = []
    for i, (folder, dirs, files) in enumerate(os.walk(root, followlinks=followlinks)):
        if i == 0 and tops:
            dirs[:] = sorted(d for d in dirs if d in tops)
            if "." not in tops:
                continue
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += keep(files, folder)
    return L(out)


def FileGetter(suf: str = "", extensions: Any = None, recurse: bool = True,  # noqa: N802 (fastai's name)
               folders: str | Sequence[str] | None = None) -> Callable[[Any], L]:
    """A function `path -> get_files(path / suf, extensions, recurse, folders)` (fastai's `FileGetter`)."""

    def _inner(o: Any, extensions: Any = extensions, recurse: bool = recurse, folders: Any = folders) -> L:
        return get_files(Path(o) / suf, extensions, recurse, folders)

    return _inner


# ================================================================================================
# Labellers and getters
# ================================================================================================
def parent_label(o: str | os.PathLike) -> str:
    """The name of the folder holding `o` (fastai's `parent_label`)."""
    return Path(o).parent.name


class RegexLabeller:
    """The first group of `pat` searched in (`match`: matched at the start of) the item's path, with '/'
    separators; an item it does not match is an error naming both."""

    def __init__(self, pat: str, match: bool = False) -> None:
        self.pat = re.compile(pat)
        if self.pat.groups < 1:
            raise ValueError(f"RegexLabeller({pat!r}) has no group: put the label in parentheses, e.g. "
                             r"r'^(.*)_\d+.jpg$'")
        self.matcher = self.pat.match if match else self.pat.search

    def __call__(self, o: Any) -> str:
        s = str(o).replace(os.sep, posixpath.sep)
        m = self.matcher(s)
        if m is None:
            raise ValueError(f"RegexLabeller: {self.pat.pattern!r} does not match {s!r}: no label for it")
        return m.group(1)

    def __repr__(self) -> str:
        return f"RegexLabeller({self.pat.pattern!r})"


class ColReader:
    """Column(s) `cols` of a row (a name or a position), with `pref` and `suff` added (a `Path` prefix gets a
    separator), or split on `label_delim` into a list of labels; several columns give a list."""

    def __init__(self, cols: int | str | Sequence[int | str], pref: str | os.PathLike = "", suff: str = "",
                 label_delim: str | None = None) -> None:
        self.cols: list[int | str] = list(cols) if isinstance(cols, (list, tuple)) else [cols]  # type: ignore[list-item]
        self.pref = str(pref) + os.path.sep if isinstance(pref, Path) else str(pref)
        self.suff, self.label_delim = suff, label_delim

    def _one(self, r: Any, c: int | str) -> Any:
        if isinstance(c, int) and not isinstance(c, bool):
            o = r.iloc[c] if hasattr(r, "iloc") else r[c]
        else:
            o = getattr(r, str(c)) if c in getattr(r, "_fields", ()) else r[c]
        if self.label_delim is not None:
            return str(o).split(self.label_delim) if len(str(o)) else []
        return f"{self.pref}{o}{self.suff}" if self.pref or self.suff else o

    def __call__(self, o: Any) -> Any:
        return self._one(o, self.cols[0]) if len(self.cols) == 1 else [self._one(o, c) for c in self.cols]

    def __repr__(self) -> str:
        return f"ColReader({self.cols if len(self.cols) > 1 else self.cols[0]!r})"


class ItemGetter:
    """`item[i]` (fastai's `ItemGetter`)."""

    def __init__(self, i: Any) -> None:
        self.i = i

    def __call__(self, x: Any) -> Any:
        return x[self.i]

    def __repr__(self) -> str:
        return f"ItemGetter({self.i!r})"


class AttrGetter:
    """`getattr(item, nm, default)` (fastai's `AttrGetter`)."""

    def __init__(self, nm: str, default: Any = None) -> None:
        self.nm, self.default = nm, default

    def __call__(self, x: Any) -> Any:
        return getattr(x, self.nm, self.default)

    def __repr__(self) -> str:
        return f"AttrGetter({self.nm!r})"
