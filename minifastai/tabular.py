"""Tabular data: procs fitted on the training rows, a tensor loader, `TabularModel` and `tabular_learner`.

The rows are preprocessed once, one column at a time, into compact tensors: categorical codes in the
smallest integer type that holds them, continuous values as float32, already split into training and
validation rows. Batches are slices of those tensors (on the training device), shuffled without replacement
by one `torch.randperm` per epoch, so pandas is never touched during training. Columns backed by pyarrow
(pandas' string dtype, `pd.ArrowDtype`, parquet files) are dictionary-encoded by pyarrow, never turned into
Python strings.

fastai's entry points work as in fastai: `TabularDataLoaders.from_df(df, path, procs, cat_names, cont_names,
y_names, y_block, valid_idx)`, `from_csv`, `TabularPandas(...).dataloaders(bs=...)`, `RandomSplitter`,
`IndexSplitter`, `CategoryBlock()` / `RegressionBlock()`, and `row, clas, probs = learn.predict(df.iloc[0])`.
"""
from __future__ import annotations

import copy
import ctypes
import difflib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import DataLoaders, default_device
from .learner import Learner
from .losses import CrossEntropyLossFlat, MSELossFlat

__all__ = [
    "NA", "TabularProc", "FillMissing", "Categorify", "Normalize", "TabularProcessor", "TabularLoader",
    "TabularPandas", "TabularDataLoaders", "CategoryBlock", "RegressionBlock", "RandomSplitter", "IndexSplitter",
    "TabularModel", "emb_sz_rule", "get_emb_sz", "sigmoid_range", "SigmoidRange", "TabularRow", "TabularLearner",
    "tabular_learner", "rebuild_learner",
]

NA = "#na#"
"""The first entry of every categorical vocab: missing values and categories unseen in training map to it."""

MAX_INT_CLASSES = 20
"""An integer target with more distinct values than this warns that each value becomes a class."""

BIG_TABLE = 1 << 20
"""From this many rows on, memory freed between columns is given back to the system (see `_release_free_memory`)."""

Tensors = tuple[torch.Tensor, ...]
Table = Any  # a pandas DataFrame, or (from_parquet) a pyarrow Table


def _code_dtype(n: int) -> np.dtype:
    """The smallest integer dtype that holds codes `0..n-1` (uint8, int16, int32 or int64)."""
    for dt in (np.uint8, np.int16, np.int32):
        if n - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _plain(v: Any) -> Any:
    """numpy scalars as Python numbers (so vocabs are plain data)."""
    return v.item() if isinstance(v, np.generic) else v


def _argsort_values(vals: Sequence) -> list[int]:
    idx = range(len(vals))
    try:
        return sorted(idx, key=vals.__getitem__)
    except TypeError:  # mixed types: group by type, then by text
        return sorted(idx, key=lambda i: (type(vals[i]).__name__, str(vals[i])))


# ---- reading columns ------------------------------------------------------------------------------
@dataclass
class Factorized:
    """A categorical column as integer `codes` (one per row, -1 for missing) into its distinct `values`.

    `ordered=True` marks a pandas Categorical: its categories are the vocab, in their order, as in fastai.
    """

    codes: np.ndarray
    values: list
    ordered: bool = False


def _arrow_backed(col: Any) -> bool:
    dt = getattr(col, "dtype", None)
    if isinstance(dt, pd.StringDtype):
        return str(dt.storage).startswith("pyarrow")
    return type(dt).__name__ == "ArrowDtype"


def _is_arrow_array(col: Any) -> bool:
    return type(col).__module__.startswith("pyarrow")


def factorize(col: Any) -> Factorized:
    """Codes and distinct values of a column: a pandas Categorical's own codes, pyarrow's dictionary encoding
    for pyarrow-backed data (no Python strings are made), `pd.factorize` for the rest."""
    if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype):
        return Factorized(col.cat.codes.to_numpy(), [_plain(v) for v in col.cat.categories.tolist()], True)
    if _is_arrow_array(col) or _arrow_backed(col):
        return _factorize_arrow(col)
    values = col.to_numpy() if isinstance(col, pd.Series) and col.dtype == object else col
    codes, uniq = pd.factorize(values)
    return Factorized(codes, [_plain(v) for v in np.asarray(uniq).tolist()])


def _factorize_arrow(col: Any) -> Factorized:
    f = _dictionary_codes(col)
    if len(f.codes) >= BIG_TABLE:
        _release_free_memory()  # the encoding's buffers are free now
    return f


def _release_free_memory() -> None:
    """Give memory that is free but still held back to the system: pyarrow's pool, and glibc's heap, which keeps
    the holes that a column's temporaries leave (tens of MB for a table of millions of rows; Dask trims its
    workers the same way). Without it they count in the peak while the next columns are processed."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (e.g. musl)
        return None


_LIBC = _load_libc()


def _dictionary_codes(col: Any) -> Factorized:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col if _is_arrow_array(col) else pa.array(col)
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    if arr.num_chunks == 0 or len(arr) == 0:
        return Factorized(np.zeros(len(arr), np.int32), [])
    if not pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_encode()
    arr = arr.unify_dictionaries()
    values = arr.chunk(0).dictionary.to_pylist()
    codes = np.concatenate([(pc.fill_null(c.indices, -1) if c.null_count else c.indices).to_numpy(zero_copy_only=False)
                            for c in arr.chunks])
    nan = [i for i, v in enumerate(values) if v != v]  # NaN is missing, as in pandas
    if nan:
        codes = np.where(np.isin(codes, nan), -1, codes)
    return Factorized(codes, values)


def _as_float(col: Any, name: str, what: str, dtype: type = np.float64) -> np.ndarray:
    """A column as a new float array (float64 for continuous inputs: procs fit and apply in float64, and the
    result is stored as float32) with NaN for missing values."""
    if _is_arrow_array(col):
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            arr = pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ValueError(f"{what} {name!r} is not numeric (type {col.type}): {_non_numeric_hint(what)}") from e
        return _owned(arr.to_numpy(zero_copy_only=False), dtype)
    if not (pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype)):
        try:  # e.g. an object column of numbers, as `row.to_frame().T` makes
            col = pd.to_numeric(col)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{what} {name!r} is not numeric (dtype {col.dtype}): {_non_numeric_hint(what)}") from e
    return _owned(col.to_numpy(dtype=dtype, na_value=np.nan), dtype)


def _owned(x: np.ndarray, dtype: type) -> np.ndarray:
    """`x` as a writable array of `dtype` that shares memory with nothing else (copied only when needed)."""
    if x.dtype == dtype and x.flags.owndata and x.flags.writeable and x.base is None:
        return x
    return np.array(x, dtype=dtype, copy=True)


def _non_numeric_hint(what: str) -> str:
    return "list it in cat_names" if what.startswith("cont") else "use y_block=CategoryBlock()"


class _Source:
    """Columns by name from a pandas DataFrame or a pyarrow Table, with pandas-like questions about them."""

    def __init__(self, data: Table) -> None:
        self.data = data
        self.is_frame = isinstance(data, pd.DataFrame)
        self.columns: list = list(data.columns) if self.is_frame else list(data.column_names)

    def __len__(self) -> int:
        return len(self.data) if self.is_frame else int(self.data.num_rows)

    def column(self, name: str) -> Any:
        return self.data[name] if self.is_frame else self.data.column(name)

    def kind(self, name: str) -> str:
        """'float', 'int', 'bool', 'category' (pandas Categorical) or 'other' (strings, objects)."""
        col = self.column(name)
        if not self.is_frame:
            import pyarrow as pa

            t = col.type
            return ("float" if pa.types.is_floating(t) else "int" if pa.types.is_integer(t)
                    else "bool" if pa.types.is_boolean(t) else "other")
        dt = col.dtype
        if isinstance(dt, pd.CategoricalDtype):
            return "category"
        if pd.api.types.is_bool_dtype(dt):
            return "bool"
        if pd.api.types.is_float_dtype(dt):
            return "float"
        if pd.api.types.is_integer_dtype(dt):
            return "int"
        return "other"

    def labels(self, rows: np.ndarray, k: int = 5) -> list:
        """Index labels (DataFrame) or positions (Table) of the first `k` of `rows`."""
        rows = rows[:k]
        return self.data.index[rows].tolist() if self.is_frame else rows.tolist()

    def missing(self, name: str) -> np.ndarray:
        """Positions of the rows where column `name` is missing."""
        col = self.column(name)
        if self.is_frame:
            return np.flatnonzero(col.isna().to_numpy())
        import pyarrow.compute as pc

        na = pc.is_null(col, nan_is_null=True)
        return np.flatnonzero(na.to_numpy(zero_copy_only=False))


def check_columns(df: Table, names: Sequence[str], where: str = "the DataFrame", what: str = "column") -> None:
    """Raise a ValueError naming every column of `names` missing from `df` (with close matches)."""
    cols = _Source(df).columns
    missing = [c for c in names if c not in cols]
    if missing:
        hints = [f"{c!r} -> did you mean {m[0]!r}?" for c in missing
                 if (m := difflib.get_close_matches(str(c), [str(x) for x in cols], n=1))]
        raise ValueError(f"{what}(s) {missing} not in {where}; it has columns {list(cols)}"
                         + (f" ({'; '.join(hints)})" if hints else ""))


def check_target(df: Table, y_names: Sequence[str], hint: str = "") -> None:
    """Raise a ValueError when a target column has missing values (naming the column and rows)."""
    src = _Source(df)
    for y in y_names:
        na = src.missing(y)
        if len(na):
            more = "..." if len(na) > 5 else ""
            raise ValueError(f"target column {y!r} has {len(na)} missing value(s) (index {src.labels(na)}{more}); "
                             f"drop those rows first, e.g. df = df.dropna(subset=[{y!r}]){hint}")


def _check_finite(x: np.ndarray, src: _Source, name: str, what: str) -> None:
    inf = np.flatnonzero(np.isinf(x))
    if len(inf):
        more = "..." if len(inf) > 5 else ""
        fix = (f"df[{name!r}] = df[{name!r}].replace([np.inf, -np.inf], np.nan)")
        if what.startswith("cont"):
            hint = (f"FillMissing fills missing values (NaN) only; to have it fill these, first write {fix}")
        else:
            hint = f"a regression cannot learn an infinite target; drop those rows or replace them ({fix})"
        raise ValueError(f"{what} {name!r} has {len(inf)} infinite value(s) (index {src.labels(inf)}{more}): {hint}")


# ---- columns being processed ------------------------------------------------------------------
class TabularColumns:
    """Columns in the middle of preprocessing, by name: categorical ones (`Factorized` raw values, then integer
    codes) and continuous ones (float64 arrays owned by the processor, so procs change them in place; the
    processor stores the result as float32).

    The processor passes the columns one at a time (with the `<col>_na` flag a continuous column may add), so
    memory holds one column's temporaries, not the table's."""

    def __init__(self, n: int, cats: dict[str, Any], conts: dict[str, np.ndarray]) -> None:
        self.n, self.cats, self.conts = n, cats, conts

    @property
    def cat_names(self) -> list[str]:
        """Names of the categorical columns, in order (procs may append some, e.g. `<col>_na`)."""
        return list(self.cats)

    @property
    def cont_names(self) -> list[str]:
        """Names of the continuous columns, in order."""
        return list(self.conts)

    def __len__(self) -> int:
        return self.n


# ---- procs ----------------------------------------------------------------------------------------
class TabularProc:
    """A preprocessing step: `setup` fits it on the training rows, `encode` applies it to any rows, `decode`
    undoes it for display.

    Procs run in increasing `order` (FillMissing, then Categorify, then Normalize), whatever the order they
    were given in. The processor calls them column by column: `setup`/`encode` get a `TabularColumns` holding
    some of the columns and add to the fitted state (`reset` clears it). The fitted state is plain data
    (`state_dict`), so exports load with `torch.load(weights_only=True)`.
    """

    order: int = 0

    def reset(self) -> None:
        """Forget the fitted state (called once before fitting on a new table)."""

    def setup(self, t: TabularColumns, train: np.ndarray) -> None:
        """Fit on rows `train` (positions) of the columns in `t`."""

    def encode(self, t: TabularColumns) -> None:
        """Apply to every row of `t`, in place."""

    def setup_encode(self, t: TabularColumns, train: np.ndarray) -> None:
        """Fit on rows `train` and encode every row (procs may do both in one pass)."""
        self.setup(t, train)
        self.encode(t)

    def decode(self, t: TabularColumns) -> None:
        """Undo `encode` where that makes sense (for showing rows), in place."""

    def state_dict(self) -> dict:
        """The fitted state as plain data."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


FILL_STRATEGIES = ("median", "mode", "constant")


class FillMissing(TabularProc):
    """Fill missing continuous values with the training rows' median (or mode, or `fill_val`), and add a
    categorical column `<col>_na` (True where the value was missing) for every column that had missing
    values in the training rows."""

    order = 0

    def __init__(self, fill_strategy: str | Callable = "median", fill_val: float = 0.0, add_col: bool = True) -> None:
        name = getattr(fill_strategy, "__name__", fill_strategy)  # fastai's FillStrategy.median etc.
        if name not in FILL_STRATEGIES:
            raise ValueError(f"fill_strategy must be one of {FILL_STRATEGIES}, got {fill_strategy!r}")
        self.fill_strategy, self.fill_val, self.add_col = str(name), float(fill_val), add_col
        self.fill: dict[str, float] = {}
        self.na_cols: list[str] = []

    def reset(self) -> None:
        """Forget fill values and flagged columns."""
        self.fill, self.na_cols = {}, []

    def setup(self, t: TabularColumns, train: np.ndarray) -> None:
        """One fill value per continuous column; remember which columns had missing training values."""
        for c, col in t.conts.items():
            tr = np.take(col, train)  # a copy: reordered below
            n_miss = int(np.count_nonzero(np.isnan(tr)))
            if n_miss:
                if c not in self.na_cols:
                    self.na_cols.append(c)
                if n_miss == len(tr):
                    warnings.warn(f"continuous column {c!r} has no values in the training rows (all {n_miss} "
                                  f"missing): FillMissing fills it with {self.fill_val} (fill_val), so it carries "
                                  "nothing but its <col>_na flag; drop it, or check the split", stacklevel=2)
            self.fill[c] = _fill_value(tr, len(tr) - n_miss, self.fill_strategy, self.fill_val)

    def encode(self, t: TabularColumns) -> None:
        """Fill missing values in place and add the `<col>_na` columns."""
        flagged = set(self.na_cols) if self.add_col else set()
        for c, col in t.conts.items():
            m = np.isnan(col)
            if c in flagged:
                t.cats[f"{c}_na"] = Factorized(m.view(np.int8), [False, True])
            if m.any():
                if c not in self.fill:
                    raise ValueError(f"FillMissing was not fitted on column {c!r}")
                col[m] = self.fill[c]

    def state_dict(self) -> dict:
        """Strategy, fill values and the columns that get a `<col>_na` flag."""
        return {"fill_strategy": self.fill_strategy, "fill_val": self.fill_val, "add_col": self.add_col,
                "fill": dict(self.fill), "na_cols": list(self.na_cols)}

    def load_state_dict(self, state: dict) -> None:
        """Restore fill values and flagged columns."""
        self.fill_strategy, self.fill_val = state["fill_strategy"], state["fill_val"]
        self.add_col = state["add_col"]
        self.fill, self.na_cols = dict(state["fill"]), list(state["na_cols"])

    def __repr__(self) -> str:
        return f"FillMissing({self.fill_strategy!r}, na_cols={self.na_cols})"


def _fill_value(col: np.ndarray, k: int, strategy: str, fill_val: float) -> float:
    """The fill value from the `k` non-missing values of `col` (a temporary copy, reordered in place)."""
    if strategy == "constant" or k == 0:
        return fill_val
    if strategy == "median":  # NaN sorts last in a partition: the median of the first k values, no copies
        lo, hi = (k - 1) // 2, k // 2
        col.partition([lo, hi] if lo != hi else lo)
        return float((col[lo] + col[hi]) / 2)
    return float(pd.Series(col).value_counts().idxmax())  # fastai's FillStrategy.mode (NaN not counted)


class Categorify(TabularProc):
    """Map each categorical column to integer codes: vocab `['#na#', *sorted(training values)]` (a pandas
    Categorical column keeps its dtype's categories and order); missing and unseen values map to 0 (`#na#`).
    Codes use the smallest integer type that holds the vocab (uint8 up to 256 entries)."""

    order = 1

    def __init__(self) -> None:
        self.classes: dict[str, list] = {}
        self._index: dict[str, pd.Index] = {}

    def reset(self) -> None:
        """Forget the vocabs."""
        self.classes, self._index = {}, {}

    def setup(self, t: TabularColumns, train: np.ndarray) -> None:
        """Fit the vocab of every categorical column on the training rows."""
        for c, raw in t.cats.items():
            self._fit(c, _factorized(raw, c), train)

    def _fit(self, c: str, f: Factorized, train: np.ndarray) -> np.ndarray:
        """Set the vocab of column `c` from rows `train`; return the positions (into `f.values`) of its entries."""
        if f.ordered:
            pos = np.arange(len(f.values))
        else:
            counts = np.bincount(np.add(f.codes[train], 1, dtype=np.intp), minlength=len(f.values) + 1)
            present = np.flatnonzero(counts[1:])  # code -1 (missing) counted at 0
            vals = [f.values[i] for i in present]
            pos = present[_argsort_values(vals)]
        self._set_vocab(c, [f.values[i] for i in pos])
        return pos

    def setup_encode(self, t: TabularColumns, train: np.ndarray) -> None:
        """Fit on the training rows and encode every row, reusing the column's factorization."""
        for c, raw in t.cats.items():
            f = _factorized(raw, c)
            pos = self._fit(c, f, train)
            lut = np.zeros(len(f.values) + 1, dtype=_code_dtype(len(pos) + 1))  # last entry: code -1 -> 0
            lut[pos] = np.arange(1, len(pos) + 1)
            t.cats[c] = lut[f.codes]

    def _set_vocab(self, c: str, vals: list) -> None:
        vals = [_plain(v) for v in vals]
        self.classes[c] = [NA, *vals]
        self._index[c] = pd.Index(vals, dtype=object if not vals else None)

    def encode(self, t: TabularColumns) -> None:
        """Codes for every row: the vocab index, or 0 for missing and unseen values."""
        for c, raw in t.cats.items():
            if c not in self._index:
                raise ValueError(f"Categorify was not fitted on column {c!r}")
            f = _factorized(raw, c)
            idx = self._index[c].get_indexer(pd.Index(f.values, dtype=object)) if f.values else np.zeros(0, int)
            lut = np.zeros(len(f.values) + 1, dtype=_code_dtype(len(self.classes[c])))
            lut[:-1] = idx + 1  # unseen (-1) -> 0
            t.cats[c] = lut[f.codes]

    def decode(self, t: TabularColumns) -> None:
        """Codes back to the vocab's values (`#na#` for code 0)."""
        for c, codes in t.cats.items():
            if c in self.classes:
                t.cats[c] = np.array(self.classes[c], dtype=object)[np.asarray(codes, dtype=np.int64)]

    def state_dict(self) -> dict:
        """The vocab of every column."""
        return {"classes": {c: list(v) for c, v in self.classes.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore the vocabs."""
        self.classes = {c: list(v) for c, v in state["classes"].items()}
        self._index = {c: pd.Index(v[1:], dtype=object if len(v) == 1 else None)
                       for c, v in self.classes.items()}

    def __repr__(self) -> str:
        return f"Categorify({ {c: len(v) for c, v in self.classes.items()} })"


def _factorized(raw: Any, c: str) -> Factorized:
    if isinstance(raw, Factorized):
        return raw
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "iu":
        raise ValueError(f"categorical column {c!r} is already integer codes: Categorify ran twice?")
    return factorize(raw if isinstance(raw, pd.Series) else pd.Series(raw))


class Normalize(TabularProc):
    """Standardize continuous columns with the training rows' mean and `std(ddof=0) + 1e-7` (fastai's).

    A column that is constant in the training rows (std 0) is only centred (divided by 1, not by 1e-7,
    which would blow up any other value to millions) and a warning names it."""

    order = 2

    def __init__(self) -> None:
        self.means: dict[str, float] = {}
        self.stds: dict[str, float] = {}

    def reset(self) -> None:
        """Forget means and standard deviations."""
        self.means, self.stds = {}, {}

    def setup(self, t: TabularColumns, train: np.ndarray) -> None:
        """Mean and standard deviation of every continuous column over the training rows."""
        for c, col in t.conts.items():
            tr = np.take(col, train)  # a copy: changed below
            if np.isnan(tr).any():
                raise ValueError(f"Normalize got missing values in column {c!r}: put FillMissing in procs")
            mean = float(tr.mean(dtype=np.float64)) if len(tr) else 0.0
            tr -= mean  # `tr` is a copy: the deviations in place, then std(ddof=0) without more temporaries
            std = float(np.sqrt(np.dot(tr, tr) / len(tr))) if len(tr) else 0.0
            if std == 0.0:
                warnings.warn(f"continuous column {c!r} is constant in the training rows (every value is {mean:g}): "
                              "it carries no information; Normalize subtracts the mean and does not divide (a "
                              "std of 1e-7 would turn other values into millions); consider dropping it",
                              stacklevel=2)
                self.means[c], self.stds[c] = mean, 1.0
            else:
                self.means[c], self.stds[c] = mean, std + 1e-7

    def encode(self, t: TabularColumns) -> None:
        """(x - mean) / std, in place."""
        for c, col in t.conts.items():
            col -= self.means[c]
            col /= self.stds[c]

    def decode(self, t: TabularColumns) -> None:
        """x * std + mean, in place."""
        for c, col in t.conts.items():
            if c in self.means:
                col *= self.stds[c]
                col += self.means[c]

    def state_dict(self) -> dict:
        """Means and standard deviations by column."""
        return {"means": dict(self.means), "stds": dict(self.stds)}

    def load_state_dict(self, state: dict) -> None:
        """Restore means and standard deviations."""
        self.means, self.stds = dict(state["means"]), dict(state["stds"])

    def __repr__(self) -> str:
        return f"Normalize({len(self.means)} columns)"


PROCS: dict[str, type[TabularProc]] = {p.__name__: p for p in (FillMissing, Categorify, Normalize)}
"""The procs an export can rebuild, by name."""
DEFAULT_PROCS: tuple[type[TabularProc], ...] = (Categorify, FillMissing, Normalize)


# ---- targets: blocks ------------------------------------------------------------------------------
class CategoryBlock:
    """`y_block` for a classification target (fastai's name): `vocab` fixes the classes and their order;
    otherwise they are the target's sorted values (a pandas Categorical keeps its order)."""

    kind = "category"

    def __init__(self, vocab: Sequence | None = None, sort: bool = True, add_na: bool = False) -> None:
        self.vocab = None if vocab is None else [_plain(v) for v in vocab]
        self.sort, self.add_na = sort, add_na
        if self.vocab is not None and len(set(self.vocab)) != len(self.vocab):
            raise ValueError(f"CategoryBlock(vocab=...) lists a class more than once: {self.vocab}")

    def __repr__(self) -> str:
        return f"CategoryBlock(vocab={self.vocab})"


class RegressionBlock:
    """`y_block` for float targets (fastai's name): one output per target column (`n_out` checks it)."""

    kind = "regression"

    def __init__(self, n_out: int | None = None) -> None:
        self.n_out = n_out

    def __repr__(self) -> str:
        return f"RegressionBlock(n_out={self.n_out})"


YBlock = CategoryBlock | RegressionBlock
Y_BLOCKS = ("category", "regression")


def _as_block(y_block: Any) -> YBlock | None:
    if y_block is None:
        return None
    if isinstance(y_block, str):
        if y_block not in Y_BLOCKS:
            raise ValueError(f"y_block must be one of {Y_BLOCKS}, CategoryBlock() or RegressionBlock() (or None: "
                             f"a float target is a regression, anything else a classification), got {y_block!r}")
        return CategoryBlock() if y_block == "category" else RegressionBlock()
    if y_block in (CategoryBlock, RegressionBlock):
        return y_block()
    if isinstance(y_block, (CategoryBlock, RegressionBlock)):
        return y_block
    raise TypeError(f"y_block must be CategoryBlock(), RegressionBlock(), 'category' or 'regression', not "
                    f"{y_block!r} (fastai's blocks from fastai itself are not understood: import them from "
                    "minifastai.tabular)")


def _y_kind(src: _Source, y_names: list[str], block: YBlock | None) -> str:
    kinds = [src.kind(y) for y in y_names]
    kind = block.kind if block is not None else ("regression" if all(k == "float" for k in kinds) else "category")
    if kind == "category" and len(y_names) > 1:
        raise ValueError(f"classification takes one target column, got {y_names}; for several float targets "
                         "use y_block=RegressionBlock()")
    if kind == "regression":
        bad = [y for y, k in zip(y_names, kinds) if k not in ("float", "int", "bool")]
        if bad:
            raise ValueError(f"target column(s) {bad} are not numeric, so they cannot be a regression "
                             "target; use y_block=CategoryBlock()")
        if isinstance(block, RegressionBlock) and block.n_out is not None and block.n_out != len(y_names):
            raise ValueError(f"RegressionBlock(n_out={block.n_out}) but there are {len(y_names)} target "
                             f"column(s) {y_names}: a regression has one output per target column")
    return kind


# ---- splitters --------------------------------------------------------------------------------------
Splitter = Callable[[Any], tuple[np.ndarray, np.ndarray]]


def RandomSplitter(valid_pct: float = 0.2, seed: int | None = None) -> Splitter:  # noqa: N802 (fastai's name)
    """fastai's splitter: `splitter(items)` gives (train, valid) row positions, a random `valid_pct` of the
    rows for validation. The same seed gives the same rows as fastai's `RandomSplitter` (a `torch.randperm`);
    without a seed, torch's global RNG decides (`torch.manual_seed`)."""
    if not 0 <= valid_pct < 1:
        raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct}")

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        n = len(o)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        perm = torch.randperm(n, generator=gen).numpy()
        cut = int(valid_pct * n)
        return perm[cut:], perm[:cut]

    return _inner


def IndexSplitter(valid_idx: Sequence[int] | np.ndarray) -> Splitter:  # noqa: N802 (fastai's name)
    """fastai's splitter: rows `valid_idx` (positions, as in `df.iloc`, or a boolean mask) are the validation
    set; the others are the training set."""

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        valid = _row_mask(valid_idx, len(o), "valid_idx")
        return np.flatnonzero(~valid), np.flatnonzero(valid)

    return _inner


def _row_mask(idx: Any, n: int, what: str) -> np.ndarray:
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


def _check_splits(splits: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows), each in the table's order (reading them is sequential, and fast)."""
    if splits is None:
        return np.arange(n), np.zeros(0, np.int64)
    if callable(splits):
        raise TypeError("splits takes the split itself, e.g. splits=RandomSplitter(0.2)(range(len(df))), "
                        "not the splitter")
    splits = list(splits)
    if len(splits) != 2:
        raise ValueError(f"splits must be (train_idx, valid_idx), got {len(splits)} parts")
    train = _row_mask(splits[0], n, "splits[0] (training rows)")
    valid = _row_mask(splits[1], n, "splits[1] (validation rows)")
    both = np.flatnonzero(train & valid)
    if len(both):
        raise ValueError(f"rows {both[:5].tolist()} are in both the training and the validation split")
    return np.flatnonzero(train), np.flatnonzero(valid)


# ---- the processor: procs + targets -------------------------------------------------------------
class TabularProcessor:
    """Turns tables into (x_cat, x_cont, y) tensors with procs fitted on the training rows; it is what
    inference needs (`state()` is plain data).

    `x_cat` holds integer codes in the smallest type that fits every vocab, `x_cont` float32, `y` class
    indices of shape (rows, 1) or float32 targets of shape (rows, targets)."""

    def __init__(self, cat_names: Sequence[str], cont_names: Sequence[str], y_names: Sequence[str],
                 procs: Sequence[TabularProc], y_kind: str, vocab: list | None = None,
                 y_block: YBlock | None = None) -> None:
        self.raw_cat_names, self.cont_names, self.y_names = list(cat_names), list(cont_names), list(y_names)
        self.procs, self.y_kind, self.vocab = sorted(procs, key=lambda p: p.order), y_kind, vocab
        self.cat_names = list(self.raw_cat_names)
        self.y_block = y_block
        self._y_index: pd.Index | None = None if vocab is None else pd.Index(vocab)

    @property
    def classes(self) -> dict[str, list]:
        """Vocab of every categorical input column (from Categorify)."""
        for p in self.procs:
            if isinstance(p, Categorify):
                return p.classes
        return {}

    @property
    def c(self) -> int:
        """Number of model outputs: classes, or target columns for regression."""
        return len(self.vocab or []) if self.y_kind == "category" else len(self.y_names)

    # ---- fitting ------------------------------------------------------------------------------
    def setup(self, data: Table, train: np.ndarray, valid: np.ndarray) -> tuple[Tensors, Tensors]:
        """Fit the procs on rows `train` (positions) and return (x_cat, x_cont, y) for the training rows and
        for the validation rows, built column by column. Nothing is changed if it raises: the procs given
        are copied and fitted, and replace `self.procs` only at the end."""
        src = _Source(data)
        n = len(src)
        ys = self._setup_y(src, train, valid)  # first: a bad target fails before any work on the inputs
        procs = [copy.deepcopy(p) for p in self.procs]
        for p in procs:
            p.reset()
        inputs = set(self.raw_cat_names) | set(self.cont_names) | set(self.y_names)
        conts = [np.empty((len(rows), len(self.cont_names)), np.float32) for rows in (train, valid)]
        flags: dict[str, Any] = {}
        for j, c in enumerate(self.cont_names):
            x = _as_float(src.column(c), c, "continuous column")
            _check_finite(x, src, c, "continuous column")
            t = TabularColumns(n, {}, {c: x})
            for p in procs:
                p.setup_encode(t, train)
            clash = [k for k in t.cats if k in inputs or k in flags]
            if clash:
                raise ValueError(f"procs add column(s) {clash}, but they are already inputs or targets; rename "
                                 "them or pass FillMissing(add_col=False)")
            flags.update(t.cats)
            x = t.conts[c].astype(np.float32)
            del t
            for out, rows in zip(conts, (train, valid)):
                out[:, j] = x[rows]
            del x
        codes: dict[str, Any] = {}
        for c in self.raw_cat_names:
            t = TabularColumns(n, {c: factorize(src.column(c))}, {})
            for p in procs:
                p.setup_encode(t, train)
            codes[c] = t.cats[c]
        codes.update(flags)
        cat_names = list(codes)
        if n >= BIG_TABLE:
            _release_free_memory()  # the columns' temporaries, before the categorical tensors are allocated
        cats = _stack_split(codes, n, (train, valid))
        for p in procs:
            if isinstance(p, Categorify):  # vocabs in x_cat's column order (flags were fitted first)
                p.classes = {c: p.classes[c] for c in cat_names if c in p.classes}
                p._index = {c: p._index[c] for c in cat_names if c in p._index}
        self.procs, self.cat_names = procs, cat_names
        return ((torch.from_numpy(cats[0]), torch.from_numpy(conts[0]), ys[0]),
                (torch.from_numpy(cats[1]), torch.from_numpy(conts[1]), ys[1]))

    def _setup_y(self, src: _Source, train: np.ndarray, valid: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit the target vocab (classification) and return the training and validation targets."""
        if self.y_kind == "regression":
            y = self._regression_y(src)
            return torch.from_numpy(y[train]), torch.from_numpy(y[valid])
        name = self.y_names[0]
        f = factorize(src.column(name))
        if (f.codes < 0).any():
            check_target(src.data, self.y_names)
        block = self.y_block if isinstance(self.y_block, CategoryBlock) else CategoryBlock()
        if block.vocab is not None:
            vocab = list(block.vocab)
            pos = pd.Index(vocab, dtype=object).get_indexer(pd.Index(f.values, dtype=object))
            present = np.bincount(f.codes, minlength=len(f.values)) > 0
            unknown = [f.values[i] for i in np.flatnonzero(present & (pos < 0))]
            if unknown:
                raise ValueError(f"target column {name!r} has labels {unknown[:5]} that are not in "
                                 f"CategoryBlock(vocab={vocab})")
            lut = pos
        else:
            present = np.bincount(f.codes, minlength=len(f.values)) > 0  # classes of every row (valid-only too)
            keep = np.flatnonzero(present)
            if not f.ordered:
                keep = keep[_argsort_values([f.values[i] for i in keep])] if block.sort else keep
            vocab = [f.values[i] for i in keep]
            lut = np.full(len(f.values), -1, np.int64)
            lut[keep] = np.arange(len(keep))
        if block.add_na and NA not in vocab:
            vocab, lut = [NA, *vocab], np.where(lut >= 0, lut + 1, -1)
        in_train = np.bincount(f.codes[train], minlength=len(f.values)) > 0
        only_valid = [f.values[i] for i in np.flatnonzero(present & ~in_train)]
        if only_valid and len(train):
            warnings.warn(f"class(es) {only_valid[:10]} of target {name!r} occur only in the validation rows: the "
                          "model gets an output for them but never sees one in training, so it will not "
                          "predict them; check the split (e.g. a stratified valid_idx)", stacklevel=3)
        if src.kind(name) == "int" and self.y_block is None and len(vocab) > MAX_INT_CLASSES:
            warnings.warn(f"target {name!r} is an integer column with {len(vocab)} distinct values: it is treated "
                          f"as a classification with {len(vocab)} classes; for a regression pass "
                          "y_block=RegressionBlock() (or convert the column to float)", stacklevel=3)
        self._set_vocab(vocab)
        codes = lut.astype(_code_dtype(len(vocab)))[f.codes].reshape(-1, 1)
        return torch.from_numpy(codes[train]), torch.from_numpy(codes[valid])

    def _regression_y(self, src: _Source) -> np.ndarray:
        ys = []
        for c in self.y_names:
            y = _as_float(src.column(c), c, "regression target", np.float32)
            if np.isnan(y).any():
                check_target(src.data, [c])
            _check_finite(y, src, c, "regression target")
            ys.append(y)
        return np.stack(ys, 1)

    def _set_vocab(self, vals: list) -> None:
        self.vocab = [_plain(v) for v in vals]
        self._y_index = pd.Index(self.vocab, dtype=object)

    # ---- new rows -----------------------------------------------------------------------------
    def process(self, data: Table, with_y: bool | None = None) -> Tensors:
        """(x_cat, x_cont[, y]) for new rows with the fitted procs; `y` when the target columns are there
        (`with_y=None`), or as asked."""
        check_columns(data, self.raw_cat_names + self.cont_names, "the DataFrame")
        src = _Source(data)
        n = len(src)
        if with_y is None:
            with_y = all(c in src.columns for c in self.y_names)
            if with_y:
                check_target(data, self.y_names, hint=" (or pass with_labels=False to leave the targets out)")
        y = self.encode_y(data) if with_y else None
        x_cont = np.empty((n, len(self.cont_names)), np.float32)
        flags: dict[str, Any] = {}
        for j, c in enumerate(self.cont_names):
            x = _as_float(src.column(c), c, "continuous column")
            _check_finite(x, src, c, "continuous column")
            t = TabularColumns(n, {}, {c: x})
            for p in self.procs:
                p.encode(t)
            x_cont[:, j] = t.conts[c]
            flags.update(t.cats)
        codes: dict[str, Any] = {}
        for c in self.raw_cat_names:
            t = TabularColumns(n, {c: factorize(src.column(c))}, {})
            for p in self.procs:
                p.encode(t)
            codes[c] = t.cats[c]
        codes.update(flags)
        x_cat = _stack_split(codes, n, (None,))[0]
        xs = (torch.from_numpy(x_cat), torch.from_numpy(x_cont))
        return xs if y is None else (*xs, y)

    def encode_y(self, data: Table) -> torch.Tensor:
        """Targets: class indices (shape (rows, 1)) or float32 values of shape (rows, len(y_names))."""
        check_columns(data, self.y_names, "the DataFrame", what="target column")
        check_target(data, self.y_names)
        src = _Source(data)
        if self.y_kind == "regression":
            return torch.from_numpy(self._regression_y(src))
        f = factorize(src.column(self.y_names[0]))
        assert self._y_index is not None
        pos = self._y_index.get_indexer(pd.Index(f.values, dtype=object)) if f.values else np.zeros(0, np.int64)
        present = np.bincount(f.codes[f.codes >= 0], minlength=len(f.values)) > 0
        unknown = [f.values[i] for i in np.flatnonzero(present & (pos < 0))]
        if unknown:
            raise ValueError(f"target column {self.y_names[0]!r} has labels the model does not know: "
                             f"{sorted(map(str, unknown))[:5]} (known: {self.vocab})")
        return torch.from_numpy(pos.astype(_code_dtype(len(self.vocab or [])))[f.codes].reshape(-1, 1))

    # ---- back to values -----------------------------------------------------------------------
    def decode(self, x_cat: torch.Tensor, x_cont: torch.Tensor, y: torch.Tensor | None = None,
               raw: Table | None = None) -> pd.DataFrame:
        """Rows as a DataFrame of values: categories from their codes, continuous values un-normalized (missing
        ones show their fill value, as in fastai), and the targets (class names or values) when given. With
        `raw` (the same rows, unprocessed), continuous values are taken from it at full precision, not from
        the float32 tensor."""
        cats = x_cat.detach().cpu().numpy()
        conts = x_cont.detach().cpu().numpy().astype(np.float64)
        if raw is not None:
            src = _Source(raw)
            for i, c in enumerate(self.cont_names):
                col = TabularColumns(len(src), {}, {c: _as_float(src.column(c), c, "continuous column")})
                for p in self.procs:
                    p.encode(col)
                conts[:, i] = col.conts[c]
        t = TabularColumns(len(cats), {c: cats[:, i] for i, c in enumerate(self.cat_names)},
                           {c: conts[:, i] for i, c in enumerate(self.cont_names)})
        for p in reversed(self.procs):
            p.decode(t)
        out: dict[str, Any] = {**t.cats, **t.conts}
        if y is not None:
            yv = y.detach().cpu().reshape(len(cats), -1)
            if self.y_kind == "category":
                out[self.y_names[0]] = np.array(self.vocab, dtype=object)[yv[:, 0].long().numpy()]
            else:
                out.update({c: yv[:, i].float().numpy() for i, c in enumerate(self.y_names)})
        return pd.DataFrame(out)

    def decode_y(self, pred: torch.Tensor) -> tuple[Any, Any]:
        """(class name, index) for a row of probabilities, or (value, raw output) for regression."""
        if self.y_kind == "category":
            idx = int(pred.argmax())
            return (self.vocab or [])[idx], idx
        vals = [float(v) for v in pred.reshape(-1)]
        return (vals[0] if len(vals) == 1 else vals), pred

    # ---- plain state --------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything needed to process new rows, as plain data."""
        procs = []
        for p in self.procs:
            if type(p).__name__ not in PROCS or PROCS[type(p).__name__] is not type(p):
                raise ValueError(f"cannot export custom proc {type(p).__name__}: only {sorted(PROCS)} are "
                                 "rebuilt by load_learner")
            procs.append({"name": type(p).__name__, "state": p.state_dict()})
        state = {"cat_names": self.raw_cat_names, "cont_names": self.cont_names, "y_names": self.y_names,
                 "y_kind": self.y_kind, "vocab": self.vocab, "procs": procs}
        _check_plain(state)
        return state

    @classmethod
    def from_state(cls, state: dict) -> TabularProcessor:
        """Rebuild from `state()`; an unknown proc or a malformed entry is a ValueError naming it."""
        procs = []
        for d in state["procs"]:
            if d.get("name") not in PROCS:
                raise ValueError(f"unknown proc {d.get('name')!r} in the export: only {sorted(PROCS)} are rebuilt")
            p = PROCS[d["name"]]()
            p.load_state_dict(d["state"])
            procs.append(p)
        if state["y_kind"] not in Y_BLOCKS:
            raise ValueError(f"unknown target kind {state['y_kind']!r} in the export")
        self = cls(state["cat_names"], state["cont_names"], state["y_names"], procs, state["y_kind"],
                   state["vocab"])
        if self.vocab is not None:
            self._set_vocab(self.vocab)
        self.cat_names = self.raw_cat_names + [
            f"{c}_na" for p in procs if isinstance(p, FillMissing) and p.add_col for c in p.na_cols]
        return self

    def __repr__(self) -> str:
        return (f"TabularProcessor(cat_names={self.cat_names}, cont_names={self.cont_names}, "
                f"y_names={self.y_names}, y_kind={self.y_kind!r}, procs={self.procs})")


def _stack_split(codes: dict[str, Any], n: int, splits: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """One (rows, columns) array per split (row positions, or None for all `n` rows) from per-column code
    arrays, in the narrowest common integer type; each column is dropped from `codes` once written."""
    for c, col in codes.items():
        if not (isinstance(col, np.ndarray) and col.dtype.kind in "iu"):
            raise ValueError(f"categorical column {c!r} is not integer codes after the procs: put Categorify "
                             "in procs")
    dtype = np.result_type(*[col.dtype for col in codes.values()]) if codes else np.dtype(np.uint8)
    outs = [np.empty((n if rows is None else len(rows), len(codes)), dtype) for rows in splits]
    for j, c in enumerate(list(codes)):
        col = codes.pop(c)
        for out, rows in zip(outs, splits):
            out[:, j] = col if rows is None else col[rows]
    return outs


def _check_plain(x: Any, path: str = "state") -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            _check_plain(v, f"{path}[{k!r}]")
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            _check_plain(v, f"{path}[{i}]")
    elif not (x is None or isinstance(x, (str, int, float, bool))):
        raise ValueError(f"{path} holds a {type(x).__name__} ({x!r}), which an export cannot store: "
                         "convert that column to str, int or float before building the DataLoaders")


# ---- the loader ---------------------------------------------------------------------------------
class TabularLoader:
    """Batches sliced from tensors built once: `(x_cat, x_cont[, y])`.

    With `shuffle`, each epoch draws one `torch.randperm` on the tensors' device (every row exactly once),
    gathers the tensors in that order, and yields contiguous slices. Integer tensors stored compactly (e.g.
    uint8 codes) are yielded as int64, the type embeddings and losses take. In training (`shuffle=True`) a
    1-row remainder joins the previous batch, so BatchNorm never sees a batch of one.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], bs: int = 64, shuffle: bool = False,
                 drop_last: bool = False) -> None:
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
            raise ValueError(f"bs must be a positive int, got {bs!r}")
        self.tensors, self.bs, self.shuffle, self.drop_last = tuple(tensors), bs, shuffle, drop_last
        self.n = len(self.tensors[0])
        if any(len(x) != self.n for x in self.tensors):
            raise ValueError(f"tensors have different lengths {[len(x) for x in self.tensors]}")
        sizes = [bs] * (self.n // bs)
        rest = self.n % bs
        if rest and not drop_last:
            if rest == 1 and shuffle and sizes:
                sizes[-1] += 1
            else:
                sizes.append(rest)
        self.sizes = sizes
        self._widen = tuple(not x.is_floating_point() and x.dtype != torch.int64 for x in self.tensors)

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self) -> Iterator[Tensors]:
        ts = self.tensors
        if self.shuffle:
            perm = torch.randperm(self.n, device=ts[0].device)
            ts = tuple(x.index_select(0, perm) for x in ts)  # several times faster than x[perm]
        n = sum(self.sizes)
        if n < self.n:
            ts = tuple(x[:n] for x in ts)
        batches = zip(*(x.split(self.sizes) for x in ts))
        if not any(self._widen):
            return batches
        widen = self._widen
        return (tuple(b.long() if w else b for b, w in zip(batch, widen)) for batch in batches)

    @property
    def device(self) -> torch.device:
        """Where the tensors (and so the batches) live."""
        return self.tensors[0].device

    @property
    def nbytes(self) -> int:
        """Memory held by the stored tensors."""
        return sum(x.element_size() * x.nelement() for x in self.tensors)

    def __repr__(self) -> str:
        return f"TabularLoader({self.n} rows, bs={self.bs}, {len(self)} batches, shuffle={self.shuffle})"


# ---- TabularPandas ------------------------------------------------------------------------------
def _names(x: Sequence[str] | str | None) -> list[str]:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def _proc_objects(procs: Any) -> list[TabularProc]:
    if procs is None:
        return []
    out = []
    for p in ([procs] if isinstance(procs, (type, TabularProc)) else list(procs)):
        if isinstance(p, type) and issubclass(p, TabularProc):
            out.append(p())
        elif isinstance(p, TabularProc):
            out.append(p)
        else:
            raise TypeError(f"procs must be TabularProc classes or instances (Categorify, FillMissing, Normalize), "
                            f"got {p!r}; note fastai's argument order: from_df(df, path, procs, cat_names, "
                            "cont_names, y_names, ...)")
    return out


class TabularSubset:
    """The training or validation rows of a `TabularPandas`, processed: `xs` (inputs), `ys`/`y` (targets),
    indexed by the rows' positions in the table."""

    def __init__(self, to: TabularPandas, tensors: Tensors, rows: np.ndarray) -> None:
        self.to, self.tensors, self.rows = to, tensors, rows

    def __len__(self) -> int:
        return len(self.tensors[0])

    @property
    def xs(self) -> pd.DataFrame:
        """The processed inputs (category codes, normalized values) as a DataFrame, e.g. for scikit-learn."""
        x_cat, x_cont = self.tensors[0].numpy(), self.tensors[1].numpy()
        return pd.DataFrame({**{c: x_cat[:, i] for i, c in enumerate(self.to.cat_names)},
                             **{c: x_cont[:, i] for i, c in enumerate(self.to.cont_names)}}, index=self.rows)

    @property
    def ys(self) -> pd.DataFrame:
        """The processed targets (class indices or values) as a DataFrame."""
        y = self.tensors[2].numpy()
        return pd.DataFrame({c: y[:, i] for i, c in enumerate(self.to.y_names)}, index=self.rows)

    @property
    def y(self) -> pd.Series:
        """The first target column, processed."""
        return self.ys.iloc[:, 0]


class ProcessorView:
    """What the fitted `TabularProcessor` knows, as fastai's `TabularPandas` and `TabularDataLoaders` expose it."""

    processor: TabularProcessor

    @property
    def procs(self) -> list[TabularProc]:
        """The fitted procs, in the order they run."""
        return self.processor.procs

    @property
    def cat_names(self) -> list[str]:
        """Categorical input columns, in x_cat's column order (including `<col>_na` flags)."""
        return self.processor.cat_names

    @property
    def cont_names(self) -> list[str]:
        """Continuous input columns, in x_cont's column order."""
        return self.processor.cont_names

    @property
    def y_names(self) -> list[str]:
        """Target columns."""
        return self.processor.y_names

    @property
    def y_kind(self) -> str:
        """'category' or 'regression'."""
        return self.processor.y_kind

    @property
    def classes(self) -> dict[str, list]:
        """Vocab of every categorical column (and of the target for classification)."""
        return self.processor.classes

    @property
    def c(self) -> int:
        """Number of model outputs: classes, or target columns for regression."""
        return self.processor.c


class TabularPandas(ProcessorView):
    """fastai's `TabularPandas`: `df` preprocessed once by `procs` fitted on the training rows of `splits`
    (`(train_idx, valid_idx)` row positions, e.g. from `RandomSplitter()(range_of(df))`; `None`: every row
    trains). `.dataloaders(bs=64)` makes the `TabularDataLoaders`; `.train.xs` / `.train.y` give the
    processed rows as DataFrames. The DataFrame is never modified and always stored compactly, so `inplace`
    and `reduce_memory` are accepted for fastai's code and change nothing.

    `y_block`: `CategoryBlock()` / `RegressionBlock()` (or 'category' / 'regression'); by default a float
    target is a regression and anything else (integers too) a classification."""

    def __init__(self, df: Table, procs: Any = DEFAULT_PROCS, cat_names: Sequence[str] | str | None = None,
                 cont_names: Sequence[str] | str | None = None, y_names: Sequence[str] | str | None = None,
                 y_block: Any = None, splits: Any = None, do_setup: bool = True,
                 device: torch.device | str | None = None, inplace: bool = False, reduce_memory: bool = True) -> None:
        if not do_setup:
            raise ValueError("do_setup=False is not supported: TabularPandas processes the rows when created")
        cat_names, cont_names, y_names = _names(cat_names), _names(cont_names), _names(y_names)
        if not isinstance(df, pd.DataFrame) and not _is_arrow_array(df):
            raise TypeError(f"TabularPandas needs a pandas DataFrame, got {type(df).__name__}")
        proc_objs = _proc_objects(procs)
        src = _Source(df)
        n = len(src)
        if n == 0:
            raise ValueError("the DataFrame is empty (0 rows): there is nothing to train on")
        if not y_names:
            raise ValueError("y_names is empty: name the target column, e.g. y_names='salary'")
        check_columns(df, cat_names + cont_names + y_names)
        both = [c for c in cat_names if c in cont_names]
        if both:
            raise ValueError(f"column(s) {both} are listed as both categorical and continuous: put each "
                             "column in cat_names or in cont_names, not both")
        for names, what in ((cat_names, "cat_names"), (cont_names, "cont_names"), (y_names, "y_names")):
            dup = sorted({c for c in names if names.count(c) > 1})
            if dup:
                raise ValueError(f"{what} lists {dup} more than once")
        y_in = [c for c in y_names if c in cat_names or c in cont_names]
        if y_in:
            raise ValueError(f"target column(s) {y_in} are also listed as inputs (cat_names/cont_names): "
                             "the model would see the answer; remove them from the inputs")
        block = _as_block(y_block)
        y_kind = _y_kind(src, y_names, block)
        train, valid = _check_splits(splits, n)
        del splits  # free the splitter's arrays (RandomSplitter: a permutation of every row) before processing
        if len(train) == 0:
            raise ValueError(f"every one of the {n} rows went to the validation set: nothing is left to train on")
        if len(train) == 1:
            raise ValueError(f"only 1 training row (of {n}): a model cannot learn from one row, and BatchNorm "
                             "cannot train on a batch of one; use more rows or a smaller validation set")
        if cat_names and not any(isinstance(p, Categorify) for p in proc_objs):
            raise ValueError("cat_names are given but procs has no Categorify: embeddings need integer "
                             "codes, add Categorify to procs")
        self.processor = TabularProcessor(cat_names, cont_names, y_names, proc_objs, y_kind, y_block=block)
        self.train_idx, self.valid_idx, self.device = train, valid, device
        self._train, self._valid = self.processor.setup(df, train, valid)

    # ---- what fastai's TabularPandas exposes ---------------------------------------------------
    @property
    def vocab(self) -> list | None:
        """The classes of a classification target."""
        return self.processor.vocab if self.processor.y_kind == "category" else None

    @property
    def train(self) -> TabularSubset:
        """The processed training rows."""
        return TabularSubset(self, self._train, self.train_idx)

    @property
    def valid(self) -> TabularSubset:
        """The processed validation rows."""
        return TabularSubset(self, self._valid, self.valid_idx)

    def __len__(self) -> int:
        return len(self.train_idx) + len(self.valid_idx)

    def dataloaders(self, bs: int = 64, val_bs: int | None = None, shuffle: bool = True,
                    device: torch.device | str | None = None, path: str | os.PathLike = ".",
                    drop_last: bool = False) -> TabularDataLoaders:
        """Train and valid loaders over the processed rows, on `device` (default: the TabularPandas' device,
        else CUDA when available). Validation batches default to twice `bs`."""
        dev = torch.device(device if device is not None else self.device or default_device())
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
            raise ValueError(f"bs must be a positive int, got {bs!r}")
        train = TabularLoader([x.to(dev) for x in self._train], bs=bs, shuffle=shuffle, drop_last=drop_last)
        valid = (TabularLoader([x.to(dev) for x in self._valid], bs=val_bs or 2 * bs)
                 if len(self.valid_idx) else None)
        return TabularDataLoaders(train, valid, self.processor, device=dev, train_idx=self.train_idx,
                                  valid_idx=self.valid_idx, path=path)

    def __repr__(self) -> str:
        return (f"TabularPandas({len(self.train_idx)} training rows, {len(self.valid_idx)} validation rows, "
                f"{self.processor.y_kind} on {self.y_names})")


# ---- DataLoaders --------------------------------------------------------------------------------
def _check_path(path: Any, who: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{who}'s second argument is `path` (a folder), got {type(path).__name__} {path!r}. "
                        "The arguments follow fastai's order: (df, path='.', procs, cat_names, cont_names, "
                        "y_names, y_block, valid_idx); pass the column lists by name, e.g. cat_names=[...]")
    return Path(path)


class TabularDataLoaders(ProcessorView, DataLoaders):
    """Train and valid `TabularLoader`s over a table's rows, and the fitted `TabularProcessor`.

    Batches are `(x_cat, x_cont, y)` with `n_inp = 2`: `x_cat` int64 codes (one column per categorical,
    including `<col>_na` flags), `x_cont` float32, `y` int64 class indices of shape (batch, 1) or float32
    targets of shape (batch, targets), as in fastai. `loss_func` is the task's loss (cross-entropy or MSE,
    both flattening as fastai's), `path` the data's folder.
    """

    def __init__(self, train: TabularLoader | None, valid: TabularLoader | None, processor: TabularProcessor,
                 device: torch.device | str | None = None, train_idx: np.ndarray | None = None,
                 valid_idx: np.ndarray | None = None, path: str | os.PathLike = ".") -> None:
        if isinstance(train, TabularLoader) and len(train.tensors) < 3:
            raise ValueError("the training loader has no targets (only inputs): training would compute no "
                             "loss and change nothing; build it from rows that include the target columns")
        super().__init__(cast(Iterable, train), valid, device=device, n_inp=2,
                         vocab=processor.vocab if processor.y_kind == "category" else None)
        self.processor, self.train_idx, self.valid_idx = processor, train_idx, valid_idx
        self.path = Path(path)
        self.loss_func = _default_loss(processor.y_kind)

    @classmethod
    def from_df(cls, df: pd.DataFrame, path: str | os.PathLike = ".", procs: Any = DEFAULT_PROCS,
                cat_names: Sequence[str] | str | None = None, cont_names: Sequence[str] | str | None = None,
                y_names: Sequence[str] | str | None = None, y_block: Any = None,
                valid_idx: Sequence[int] | np.ndarray | None = None, *, valid_pct: float = 0.2,
                seed: int | None = None, bs: int = 64, val_bs: int | None = None, shuffle: bool = True,
                drop_last: bool = False, device: torch.device | str | None = None) -> TabularDataLoaders:
        """fastai's `from_df`: preprocess `df` once and split it, `valid_idx` (row positions, as in df.iloc) or
        a random `valid_pct` of the rows (`RandomSplitter(valid_pct, seed)`, fastai's split). Procs are
        fitted on the training rows only. `cont_names=None` takes every other column, as fastai; the target is
        a regression when its dtype is float, a classification otherwise, unless `y_block` says."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_df needs a pandas DataFrame, got {type(df).__name__}")
        path = _check_path(path, "from_df")
        procs = _proc_objects(procs)
        cat_names, y_names = _names(cat_names), _names(y_names)
        if cont_names is None:
            cont_names = [c for c in df.columns if c not in cat_names and c not in y_names]
        return cls._from_table(df, path, procs, cat_names, cont_names, y_names, y_block, valid_idx, valid_pct,
                               seed, bs=bs, val_bs=val_bs, shuffle=shuffle, drop_last=drop_last, device=device)

    @classmethod
    def _from_table(cls, data: Table, path: Path, procs: Any, cat_names: Any, cont_names: Any, y_names: Any,
                    y_block: Any, valid_idx: Any, valid_pct: float, seed: int | None,
                    **dl_kwargs: Any) -> TabularDataLoaders:
        n = len(_Source(data))
        splitter = RandomSplitter(valid_pct, seed) if valid_idx is None else IndexSplitter(valid_idx)
        to = TabularPandas(data, procs, cat_names, cont_names, y_names, y_block=y_block, splits=splitter(range(n)))
        return to.dataloaders(path=path, **dl_kwargs)

    @classmethod
    def from_csv(cls, csv: str | os.PathLike | Any, skipinitialspace: bool = True,
                 path: str | os.PathLike | None = None, **kwargs: Any) -> TabularDataLoaders:
        """fastai's `from_csv`: `pd.read_csv(csv)` then `from_df(df, path, **kwargs)`; `path` defaults to the
        CSV's folder. When every column is named (`cont_names` given), only those columns are read."""
        names = [*_names(kwargs.get("cat_names")), *_names(kwargs.get("cont_names")), *_names(kwargs.get("y_names"))]
        is_file = isinstance(csv, (str, os.PathLike))
        usecols = list(dict.fromkeys(names)) if is_file and kwargs.get("cont_names") is not None and names else None
        if usecols:  # a missing column: our message (with close matches), not pandas' usecols error
            check_columns(pd.read_csv(csv, nrows=0, skipinitialspace=skipinitialspace), usecols, f"the CSV {csv}")
        if path is None:
            path = Path(csv).parent if is_file else Path(".")
        df = pd.read_csv(csv, skipinitialspace=skipinitialspace, usecols=usecols)
        return cls.from_df(df, path=path, **kwargs)

    @classmethod
    def from_parquet(cls, file: str | os.PathLike | Any, path: str | os.PathLike | None = None,
                     procs: Any = DEFAULT_PROCS, cat_names: Sequence[str] | str | None = None,
                     cont_names: Sequence[str] | str | None = None, y_names: Sequence[str] | str | None = None,
                     y_block: Any = None, valid_idx: Sequence[int] | np.ndarray | None = None, *,
                     valid_pct: float = 0.2, seed: int | None = None, **dl_kwargs: Any) -> TabularDataLoaders:
        """Like `from_df` on a parquet file, read with pyarrow: only the named columns are read, and string
        columns come straight from the file's dictionary pages (no pandas strings, no Python objects).
        `cont_names=None` takes every other column. `path` defaults to the file's folder."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(file)
        cat_names, y_names = _names(cat_names), _names(y_names)
        cont_list = (_names(cont_names) if cont_names is not None
                     else [c for c in schema.names if c not in cat_names and c not in y_names])
        needed = cat_names + cont_list + y_names
        missing = [c for c in needed if c not in schema.names]
        if missing:
            check_columns(pd.DataFrame(columns=schema.names), needed, f"the parquet file {file}")
        as_dict = [c for c in dict.fromkeys(cat_names + y_names)
                   if pa.types.is_string(t := schema.field(c).type) or pa.types.is_large_string(t)]
        table = pq.read_table(file, columns=list(dict.fromkeys(needed)), read_dictionary=as_dict)
        if path is None:
            path = Path(file).parent if isinstance(file, (str, os.PathLike)) else Path(".")
        return cls._from_table(table, _check_path(path, "from_parquet"), procs, cat_names, cont_list, y_names,
                               y_block, valid_idx, valid_pct, seed, **dl_kwargs)

    @classmethod
    def from_tensors(cls, tensors: Sequence[torch.Tensor], processor: TabularProcessor, train_idx: np.ndarray,
                     valid_idx: np.ndarray, bs: int = 64, val_bs: int | None = None,
                     device: torch.device | str | None = None) -> TabularDataLoaders:
        """DataLoaders over preprocessed (x_cat, x_cont, y) tensors of all rows, split by row positions."""
        dev = torch.device(device) if device is not None else default_device()
        tensors = [x.to(dev) for x in tensors]
        tr, va = torch.as_tensor(train_idx, device=dev), torch.as_tensor(valid_idx, device=dev)
        train = TabularLoader([x.index_select(0, tr) for x in tensors], bs=bs, shuffle=True)
        valid = (TabularLoader([x.index_select(0, va) for x in tensors], bs=val_bs or 2 * bs)
                 if len(valid_idx) else None)
        return cls(train, valid, processor, device=dev, train_idx=np.asarray(train_idx),
                   valid_idx=np.asarray(valid_idx))

    # ---- inference ----------------------------------------------------------------------------
    def test_dl(self, df: pd.DataFrame, bs: int | None = None,  # type: ignore[override]
                with_labels: bool | None = None) -> TabularLoader:
        """A loader over the rows of a new DataFrame processed like the training rows; targets are included
        when `df` has the target columns (or as `with_labels` says)."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"test_dl needs a pandas DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise ValueError("the DataFrame passed to test_dl is empty (0 rows)")
        tensors = [x.to(self.device) for x in self.processor.process(df, with_labels)]
        default_bs = getattr(self.valid, "bs", None) or getattr(self.train, "bs", None) or 128
        return TabularLoader(tensors, bs=bs or default_bs)

    def item_to_batch(self, item: pd.Series | pd.DataFrame | Mapping) -> Tensors:
        """(x_cat, x_cont) of batch size 1 for one row: a Series, a one-row DataFrame or a dict."""
        x_cat, x_cont = self.processor.process(self.item_frame(item), with_y=False)
        return x_cat.long(), x_cont

    def item_frame(self, item: pd.Series | pd.DataFrame | Mapping) -> pd.DataFrame:
        """One row (a Series, a one-row DataFrame or a dict) as a one-row DataFrame."""
        if isinstance(item, pd.Series):
            df = item.to_frame().T.infer_objects()
        elif isinstance(item, pd.DataFrame):
            if len(item) != 1:
                raise ValueError(f"predict takes one row, got a DataFrame with {len(item)} rows; "
                                 "use learn.get_preds(dl=dls.test_dl(df)) for many")
            df = item
        elif isinstance(item, Mapping):
            df = pd.DataFrame([dict(item)])
        else:
            raise TypeError(f"a tabular item is a row (pandas Series, one-row DataFrame or dict), "
                            f"not {type(item).__name__}")
        return df

    def decode(self, pred: torch.Tensor) -> tuple[Any, Any]:
        """(class name, class index) for classification, (value, raw output) for regression."""
        return self.processor.decode_y(pred)

    def decode_batch(self, batch: Sequence[torch.Tensor], max_n: int | None = None) -> pd.DataFrame:
        """A batch `(x_cat, x_cont[, y])` as a DataFrame of values (categories, un-normalized numbers)."""
        b = [x[:max_n] for x in batch]
        return self.processor.decode(b[0], b[1], b[2] if len(b) > 2 else None)

    def show_batch(self, max_n: int = 10) -> None:
        """Show the first `max_n` rows of a training batch, decoded (fastai's `show_batch`)."""
        if self.train is None:
            raise ValueError("these DataLoaders have no training data to show")
        _display(self.decode_batch(next(iter(self.train)), max_n))

    def export_state(self) -> dict:
        """Target vocab and the processor (procs' fitted state), as plain data."""
        return {"vocab": self.vocab, "n_inp": 2, "tabular": self.processor.state()}

    def __repr__(self) -> str:
        def n(dl: Any) -> str:
            return "None" if dl is None else f"{dl.n} rows / {len(dl)} batches"

        return (f"TabularDataLoaders(train={n(self.train)}, valid={n(self.valid)}, {self.y_kind} on "
                f"{self.y_names}, {len(self.cat_names)} categorical, {len(self.cont_names)} continuous, "
                f"device={self.device})")


def _display(df: pd.DataFrame) -> None:
    """`IPython.display` in a notebook, print elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(df.to_string())
        return
    if get_ipython() is not None:
        display(df)
    else:
        print(df.to_string())


# ---- model --------------------------------------------------------------------------------------
def emb_sz_rule(n_cat: int) -> int:
    """fastai's rule of thumb for an embedding's width: `min(600, round(1.6 * n_cat ** 0.56))`."""
    return min(600, round(1.6 * n_cat**0.56))


def get_emb_sz(dls: TabularDataLoaders | TabularPandas,
               sz_dict: Mapping[str, int] | None = None) -> list[tuple[int, int]]:
    """(vocab size, width) for every categorical column; `sz_dict` overrides widths by column name."""
    sz_dict = dict(sz_dict or {})
    unknown = [c for c in sz_dict if c not in dls.cat_names]
    if unknown:
        raise ValueError(f"emb_szs names {unknown}, which are not categorical inputs {dls.cat_names}")
    sizes = [len(dls.classes[c]) for c in dls.cat_names]
    return [(n, int(sz_dict.get(c, emb_sz_rule(n)))) for c, n in zip(dls.cat_names, sizes)]


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Sigmoid scaled to (low, high)."""
    return torch.sigmoid(x) * (high - low) + low


class SigmoidRange(nn.Module):
    """`sigmoid_range` as a layer."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Squash `x` into (low, high)."""
        return sigmoid_range(x, self.low, self.high)

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"


def _batchnorm(n: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(n)
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.fill_(1e-3)
    return bn


class TabularModel(nn.Module):
    """fastai's tabular model: an embedding per categorical column (dropout `embed_p`), BatchNorm on the
    continuous columns, then per hidden size `Linear -> ReLU -> BatchNorm -> Dropout(p)`, a final `Linear`,
    and `SigmoidRange(*y_range)` when `y_range` is given."""

    def __init__(self, emb_szs: Sequence[tuple[int, int]], n_cont: int, out_sz: int, layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False,
                 bn_cont: bool = True) -> None:
        super().__init__()
        layers = list(layers)
        if ps is None or isinstance(ps, (int, float)):
            ps = [float(ps or 0.0)] * len(layers)
        ps = list(ps)
        if len(ps) != len(layers):
            raise ValueError(f"ps has {len(ps)} dropout values for {len(layers)} hidden layers")
        embeds = [nn.Embedding(n, d) for n, d in emb_szs]
        for e in embeds:
            nn.init.trunc_normal_(e.weight, std=0.01, a=-0.02, b=0.02)
        self.embeds = nn.ModuleList(embeds)
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = _batchnorm(n_cont) if bn_cont and n_cont else None
        self.n_emb, self.n_cont = sum(d for _, d in emb_szs), n_cont
        sizes = [self.n_emb + n_cont, *layers, out_sz]
        mods: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            bn = use_bn and (not last or bn_final)
            mods.append(nn.Linear(n_in, n_out, bias=not bn))
            if not last:
                mods.append(nn.ReLU(inplace=True))
            if bn:
                mods.append(_batchnorm(n_out))
            p = 0.0 if last else ps[i]
            if p:
                mods.append(nn.Dropout(p))
        if y_range is not None:
            mods.append(SigmoidRange(*y_range))
        self.layers = nn.Sequential(*mods)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor | None = None) -> torch.Tensor:
        """Embed the codes, join the (normalized) continuous values, and run the layers."""
        xs = []
        if self.n_emb:
            xs.append(self.emb_drop(torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], 1)))
        if self.n_cont and x_cont is not None:
            xs.append(self.bn_cont(x_cont) if self.bn_cont is not None else x_cont)
        return self.layers(xs[0] if len(xs) == 1 else torch.cat(xs, 1))


# ---- learner ------------------------------------------------------------------------------------
def _default_loss(y_kind: str) -> CrossEntropyLossFlat | MSELossFlat:
    """The task's loss, as fastai's: `CrossEntropyLossFlat()` or `MSELossFlat()`."""
    return CrossEntropyLossFlat() if y_kind == "category" else MSELossFlat()


class TabularRow:
    """The first thing `predict` returns, as in fastai: the row as the model saw it (categories, with `#na#`
    for unseen or missing ones, and continuous values after FillMissing) and the prediction in the target
    column(s). `items` is that one-row DataFrame; `show()` displays it."""

    def __init__(self, items: pd.DataFrame) -> None:
        self.items = items

    def show(self) -> None:
        """Display the row (a table in notebooks, text elsewhere)."""
        _display(self.items)

    def __repr__(self) -> str:
        return f"TabularRow\n{self.items.to_string()}"


class TabularLearner(Learner):
    """A `Learner` whose `predict` takes a table row and answers as fastai's `TabularLearner`."""

    dls: TabularDataLoaders

    def fit(self, n_epoch: int, *args: Any, **kwargs: Any) -> None:
        """`Learner.fit`, after checking that the training batches carry targets (else nothing would train)."""
        train = self.dls.train
        if isinstance(train, TabularLoader) and len(train.tensors) < 3:
            raise ValueError("dls.train yields batches without targets (only inputs, e.g. a test_dl): training "
                             "would compute no loss and change nothing; train on rows that include the targets")
        super().fit(n_epoch, *args, **kwargs)

    def predict(self, row: pd.Series | pd.DataFrame | Mapping) -> tuple[TabularRow, torch.Tensor, torch.Tensor]:
        """`row, clas, probs = learn.predict(df.iloc[0])`: the decoded row with the prediction in the target
        column, the class index (a tensor; for a regression the predicted values) and the probabilities (for a
        regression the predicted values)."""
        df = self.dls.item_frame(row)
        x_cat, x_cont = self.dls.processor.process(df, with_y=False)
        preds, _ = self.get_preds(dl=[(x_cat.long(), x_cont)])
        probs = preds[0]
        if self.dls.y_kind == "category":
            clas = probs.argmax()
            y = clas.reshape(1, 1)
        else:
            clas, y = probs, probs.reshape(1, -1)
        return TabularRow(self.dls.processor.decode(x_cat, x_cont, y, raw=df)), clas, probs


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def tabular_learner(dls: TabularDataLoaders, layers: Sequence[int] = (200, 100),
                    emb_szs: Mapping[str, int] | None = None, ps: float | Sequence[float] | None = None,
                    embed_p: float = 0.0, y_range: tuple[float, float] | None = None,
                    n_out: int | None = None,
                    use_bn: bool = True, bn_final: bool = False, bn_cont: bool = True,
                    **learner_kwargs: Any) -> TabularLearner:
    """A `TabularLearner` with a `TabularModel` for `dls`: the data's loss (cross-entropy for classification,
    MSE for regression). The model is one layer group, so give `fit_one_cycle` a float LR."""
    if not isinstance(dls, TabularDataLoaders):
        raise TypeError(f"tabular_learner needs TabularDataLoaders, got {type(dls).__name__}")
    if y_range is not None:
        if len(y_range) != 2 or not float(y_range[0]) < float(y_range[1]):
            raise ValueError(f"y_range must be (low, high) with low < high, got {y_range!r}")
        y_range = (float(y_range[0]), float(y_range[1]))
    out_sz = int(n_out or dls.c)
    if dls.y_kind == "regression" and out_sz != len(dls.y_names):
        raise ValueError(f"n_out={out_sz} but the regression has {len(dls.y_names)} target column(s) "
                         f"{dls.y_names}: one output per target column")
    loss = learner_kwargs.get("loss_func")
    if dls.y_kind == "category" and type(loss) is nn.CrossEntropyLoss:
        raise ValueError("tabular targets have shape (batch, 1), as in fastai, and nn.CrossEntropyLoss wants "
                         "(batch,): leave loss_func out (the default flattens) or pass a flattening loss")
    cfg: dict[str, Any] = {"emb_szs": [list(e) for e in get_emb_sz(dls, emb_szs)], "n_cont": len(dls.cont_names),
           "out_sz": out_sz, "layers": [int(x) for x in layers],
           "ps": ps if ps is None or isinstance(ps, (int, float)) else [float(p) for p in ps],
           "embed_p": float(embed_p), "y_range": None if y_range is None else list(y_range),
           "use_bn": use_bn, "bn_final": bn_final, "bn_cont": bn_cont}
    model = TabularModel(**cfg)
    train = dls.train
    if isinstance(train, TabularLoader) and 1 in train.sizes and _has_batchnorm(model):
        raise ValueError(f"the training loader has a batch of one row (bs={train.bs}, {train.n} rows) and the model "
                         "has BatchNorm, which cannot train on one row: use bs >= 2 (and at least 2 training rows)")
    learner_kwargs.setdefault("loss_func", dls.loss_func)
    learner_kwargs.setdefault("path", dls.path)
    learn = TabularLearner(dls, model, **learner_kwargs)
    learn.export_info = {"module": "minifastai.tabular", "model": cfg}
    return learn


def _check_model_config(cfg: Any, where: str) -> dict:
    """The TabularModel arguments of an export, checked for types and sizes (before anything is built)."""
    if not isinstance(cfg, dict):
        raise ValueError(f"{where} is not a dict of TabularModel arguments")
    keys = {"emb_szs", "n_cont", "out_sz", "layers", "ps", "embed_p", "y_range", "use_bn", "bn_final", "bn_cont"}
    if set(cfg) - keys or {"emb_szs", "n_cont", "out_sz", "layers"} - set(cfg):
        raise ValueError(f"{where} has entries {sorted(cfg)}; expected {sorted(keys)}")

    def count(v: Any, what: str) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{where}[{what}] must be a non-negative int, got {v!r}")
        return v

    for i, e in enumerate(cfg["emb_szs"]):
        if not isinstance(e, (list, tuple)) or len(e) != 2:
            raise ValueError(f"{where}['emb_szs'][{i}] must be (vocab size, width), got {e!r}")
        for k in (0, 1):
            count(e[k], f"'emb_szs'][{i}][{k}")
    for key in ("n_cont", "out_sz"):
        count(cfg[key], repr(key))
    for i, n in enumerate(cfg["layers"]):
        count(n, f"'layers'][{i}")
    return cfg


def rebuild_learner(state: dict, device: torch.device | str = "cpu", source: str | None = None) -> TabularLearner:
    """The learner `load_learner` needs for an exported tabular learner (weights are loaded afterwards). The model
    configuration's fields are checked here (errors name `source`, the file); `load_learner` runs this first on
    the meta device and compares the model's shapes with the stored weights before building it for real."""
    cfg = _check_model_config(state["builder"].get("model"), f"{source or 'the export'}: builder['model']")
    processor = TabularProcessor.from_state(state["dls"]["tabular"])
    dls = TabularDataLoaders(None, None, processor, device=device)
    model = TabularModel(**cfg)
    learn = TabularLearner(dls, model, loss_func=_default_loss(processor.y_kind), activation=state.get("activation"),
                           group_names=state.get("group_names"))
    learn.export_info = state["builder"]
    return learn
