"""fastai's procs, fitted on the training rows: `FillMissing`, `Categorify`, `Normalize`."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from .columns import NA, Factorized, TabularColumns, _argsort_values, _code_dtype, _plain, factorize


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

    def decode(self, t: Any) -> Any:
        """Undo `encode` where that makes sense (for showing rows): in place on `TabularColumns`; on a whole
        `TabularPandas` (fastai's `proc.decode(to)`), a DataFrame of its rows with this proc undone."""
        if isinstance(t, TabularColumns):
            self.decode_columns(t)
            return None
        items = t.items
        cols = TabularColumns(len(items), {c: items[c].to_numpy() for c in t.cat_names},
                              {c: items[c].to_numpy().astype(np.float64) for c in t.cont_names})
        self.decode_columns(cols)
        out = pd.DataFrame({**cols.cats, **cols.conts}, index=items.index)
        for c in t.y_names:
            out[c] = items[c]
        return out

    def decode_columns(self, t: TabularColumns) -> None:
        """Undo `encode` on columns, in place (nothing, unless a proc says otherwise)."""

    def state_dict(self) -> dict:
        """The fitted state as plain data."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


FILL_STRATEGIES = ("median", "mode", "constant")


class FillStrategy:
    """fastai's fill strategies for `FillMissing(fill_strategy=...)`: `median`, `constant` (`fill_val`), `mode`;
    each also computes its value from a pandas Series (`FillStrategy.median(df["age"], 0)`)."""

    @staticmethod
    def median(c: Any, fill: float) -> Any:
        """The median of the column's values."""
        return c.median()

    @staticmethod
    def constant(c: Any, fill: float) -> Any:
        """`fill` itself."""
        return fill

    @staticmethod
    def mode(c: Any, fill: float) -> Any:
        """The most frequent value."""
        return c.dropna().value_counts().idxmax()


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

    @property
    def na_dict(self) -> dict[str, float]:
        """fastai's `na_dict`: the fill value of each column that had missing values in the training rows."""
        return {c: self.fill[c] for c in self.na_cols}

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

    def __getitem__(self, col: str) -> list:
        """The vocab of column `col` (fastai's `cat['a']`)."""
        if col not in self.classes:
            raise KeyError(f"Categorify has no column {col!r}; it encodes {list(self.classes)}")
        return self.classes[col]

    def decode_columns(self, t: TabularColumns) -> None:
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
    return factorize(raw if isinstance(raw, pd.Series) else pd.Series(raw), c)


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

    def decode_columns(self, t: TabularColumns) -> None:
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
