"""Reading columns of a DataFrame or pyarrow Table: category codes, floats, and the checks of names, targets and
values."""
from __future__ import annotations

import collections
import difflib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .memory import _release_free_memory

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


def factorize(col: Any, name: Any = None, what: str = "categorical column") -> Factorized:
    """Codes and distinct values of a column: a pandas Categorical's own codes, pyarrow's dictionary encoding
    for pyarrow-backed data (no Python strings are made), `pd.factorize` for the rest. A value that cannot be a
    category (a list, a dict) is a ValueError naming the column (`name`, `what`)."""
    if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype):
        return Factorized(col.cat.codes.to_numpy(), [_plain(v) for v in col.cat.categories.tolist()], True)
    if _is_arrow_array(col) or _arrow_backed(col):
        return _factorize_arrow(col, name, what)
    values = col.to_numpy() if isinstance(col, pd.Series) and col.dtype == object else col
    try:
        codes, uniq = pd.factorize(values)
    except TypeError as e:  # unhashable values (lists, dicts, sets) in an object column
        raise ValueError(_not_a_category(col, name, what)) from e
    return Factorized(codes, [_plain(v) for v in np.asarray(uniq).tolist()])


def _not_a_category(col: Any, name: Any, what: str) -> str:
    """The message for a column holding values that cannot be categories (found only when factorizing fails)."""
    name = getattr(col, "name", None) if name is None else name
    values = col.tolist() if hasattr(col, "tolist") else list(col)
    i = next((i for i, v in enumerate(values) if not isinstance(v, Hashable)), 0)
    v = values[i] if values else None
    row = col.index[i] if isinstance(col, pd.Series) else i
    return (f"{what} {name!r} holds a {type(v).__name__} ({str(v)[:40]}) at index {row!r}: a category is one value "
            "per row (a str, int, float or bool), not a list or a dict; make it one value, e.g. "
            f"df[{name!r}] = df[{name!r}].astype(str), or leave the column out")


def nested_type_error(name: Any, t: Any, where: str) -> str:
    """The message for a pyarrow column of nested type (list, struct, map), which no tabular column can hold."""
    return (f"column {name!r} of {where} has type {t}: a tabular column holds one value per row (a number or a "
            "category), not a list or a struct; flatten it into columns of their own, or leave it out")


def _factorize_arrow(col: Any, name: Any = None, what: str = "categorical column") -> Factorized:
    f = _dictionary_codes(col, name, what)
    if len(f.codes) >= BIG_TABLE:
        _release_free_memory()  # the encoding's buffers are free now
    return f


def _dictionary_codes(col: Any, name: Any = None, what: str = "categorical column") -> Factorized:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col if _is_arrow_array(col) else pa.array(col)
    if pa.types.is_nested(arr.type):
        raise ValueError(nested_type_error(getattr(col, "name", None) if name is None else name, arr.type,
                                           f"the {what}s"))
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
    result is stored as float32) with NaN for missing values. Dates and durations are seconds (since 1970, in UTC,
    as `add_datepart`'s `Elapsed`), whatever their unit, from a DataFrame or a parquet file alike."""
    if not _is_arrow_array(col) and _arrow_backed(col) and _is_time(col.dtype):
        import pyarrow as pa

        col = pa.chunked_array([pa.array(col)])
    if _is_arrow_array(col):
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_timestamp(col.type) or pa.types.is_duration(col.type):  # int64 counts of its unit
            per_s = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[col.type.unit]
            x = pc.cast(pc.cast(col, pa.int64()), pa.float64()).to_numpy(zero_copy_only=False)
            return _owned(x / per_s, dtype)
        try:
            arr = pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ValueError(f"{what} {name!r} is not numeric (type {col.type}): {_non_numeric_hint(what)}") from e
        return _owned(arr.to_numpy(zero_copy_only=False), dtype)
    if _is_time(col.dtype):
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_convert(None)
        span = col - pd.Timestamp(0) if pd.api.types.is_datetime64_dtype(col.dtype) else col
        return _owned((span / pd.Timedelta(1, "s")).to_numpy(dtype=dtype, na_value=np.nan), dtype)
    if not (pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype)):
        try:  # e.g. an object column of numbers, as `row.to_frame().T` makes
            col = pd.to_numeric(col)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{what} {name!r} is not numeric (dtype {col.dtype}): {_non_numeric_hint(what)}") from e
    return _owned(col.to_numpy(dtype=dtype, na_value=np.nan), dtype)


def _is_time(dt: Any) -> bool:
    """A pandas datetime (with or without a timezone) or timedelta dtype, numpy's or pyarrow's."""
    if type(dt).__name__ == "ArrowDtype":
        import pyarrow as pa

        return bool(pa.types.is_timestamp(dt.pyarrow_dtype) or pa.types.is_duration(dt.pyarrow_dtype))
    return bool(pd.api.types.is_datetime64_any_dtype(dt) or pd.api.types.is_timedelta64_dtype(dt))


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
    """Raise a ValueError naming every column of `names` missing from `df` (with close matches), or held by
    more than one of its columns."""
    cols = _Source(df).columns
    counts = collections.Counter(cols)
    dup = list(dict.fromkeys(c for c in names if counts[c] > 1))
    if dup:
        fix = "df = df.loc[:, ~df.columns.duplicated()]" if where == "the DataFrame" else "write it with unique names"
        raise ValueError(f"{where} has more than one {what} named {dup}: rename or drop the duplicates "
                         f"(e.g. {fix}) so that each name is one column")
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
