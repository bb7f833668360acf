"""Tabular data: procs fitted on the training rows, a tensor loader, `TabularModel` and `tabular_learner`.

`TabularDataLoaders.from_df` turns a DataFrame into tensors once (categorical codes, normalized
continuous values, targets); batches are slices of those tensors, shuffled without replacement by one
`torch.randperm` per epoch, so pandas is never touched during training.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import DataLoaders, default_device
from .learner import Learner

__all__ = [
    "NA", "TabularProc", "FillMissing", "Categorify", "Normalize", "TabularProcessor", "TabularLoader",
    "TabularDataLoaders", "TabularModel", "emb_sz_rule", "get_emb_sz", "sigmoid_range", "SigmoidRange",
    "tabular_learner", "rebuild_learner",
]

NA = "#na#"
"""The first entry of every categorical vocab: missing values and categories unseen in training map to it."""

Tensors = tuple[torch.Tensor, ...]


# ---- columns being processed ------------------------------------------------------------------
class TabularColumns:
    """Columns in the middle of preprocessing, by name: categorical ones (raw values, then int64 codes) and
    continuous ones (contiguous float64 arrays, owned, so procs change them in place)."""

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
    """A preprocessing step: `setup` fits it on the training rows, `encode` applies it to any rows.

    Procs run in increasing `order` (FillMissing, then Categorify, then Normalize), whatever the order
    they were given in; their fitted state is plain data (`state_dict`), so exports load with
    `torch.load(weights_only=True)`.
    """

    order: int = 0

    def setup(self, t: TabularColumns, train: np.ndarray) -> None:
        """Fit on rows `train` (positions) of `t`."""

    def encode(self, t: TabularColumns) -> None:
        """Apply to every row of `t`, in place."""

    def setup_encode(self, t: TabularColumns, train: np.ndarray) -> None:
        """Fit on rows `train` and encode every row (procs may do both in one pass)."""
        self.setup(t, train)
        self.encode(t)

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

    def __init__(self, fill_strategy: str = "median", fill_val: float = 0.0, add_col: bool = True) -> None:
        if fill_strategy not in FILL_STRATEGIES:
            raise ValueError(f"fill_strategy must be one of {FILL_STRATEGIES}, got {fill_strategy!r}")
        self.fill_strategy, self.fill_val, self.add_col = fill_strategy, float(fill_val), add_col
        self.fill: dict[str, float] = {}
        self.na_cols: list[str] = []

    def setup(self, t: TabularColumns, train: np.ndarray) -> None:
        """One fill value per continuous column; remember which columns had missing training values."""
        self.fill, self.na_cols = {}, []
        for c, col in t.conts.items():
            tr = col[train]
            miss = np.isnan(tr)
            if miss.any():
                self.na_cols.append(c)
                tr = tr[~miss]
            self.fill[c] = _fill_value(tr, self.fill_strategy, self.fill_val)
        if self.add_col:
            clash = [f"{c}_na" for c in self.na_cols if f"{c}_na" in t.cats or f"{c}_na" in t.cont_names]
            if clash:
                raise ValueError(f"FillMissing wants to add columns {clash}, but they are already inputs; "
                                 "rename them or pass FillMissing(add_col=False)")

    def encode(self, t: TabularColumns) -> None:
        """Fill missing values in place and add the `<col>_na` columns."""
        flagged = set(self.na_cols) if self.add_col else set()
        for c, col in t.conts.items():
            m = np.isnan(col)
            if c in flagged:
                t.cats[f"{c}_na"] = m
            if m.any():
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


def _fill_value(col: np.ndarray, strategy: str, fill_val: float) -> float:
    if strategy == "constant" or len(col) == 0:
        return fill_val
    if strategy == "median":
        return float(np.median(col))
    vals, counts = np.unique(col, return_counts=True)
    return float(vals[counts.argmax()])


class Categorify(TabularProc):
    """Map each categorical column to int codes: vocab `['#na#', *sorted(training values)]` (a pandas
    Categorical column keeps its dtype's category order); missing and unseen values map to 0 (`#na#`)."""

    order = 1

    def __init__(self) -> None:
        self.classes: dict[str, list] = {}
        self._index: dict[str, pd.Index] = {}

    def setup(self, t: TabularColumns, train: np.ndarray) -> None:
        """Fit the vocab of every categorical column on the training rows."""
        self.classes, self._index = {}, {}
        for c, col in t.cats.items():
            if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype):
                self._set_vocab(c, list(col.cat.categories))
            else:
                codes, uniq = _factorize(_take(col, train))
                self._set_vocab(c, _sorted_values(np.asarray(uniq).tolist()))

    def setup_encode(self, t: TabularColumns, train: np.ndarray) -> None:
        """Fit on the training rows and encode every row with one hashing pass per column."""
        self.classes, self._index = {}, {}
        for c, col in t.cats.items():
            if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype):
                self._set_vocab(c, list(col.cat.categories))
                t.cats[c] = col.cat.codes.to_numpy().astype(np.int64) + 1
                continue
            codes, uniq = _factorize(col)  # every row; missing values -> -1
            trc = codes[train]
            # the values that occur in the training rows
            present = np.flatnonzero(np.bincount(trc[trc >= 0], minlength=len(uniq)))
            vals = [_plain(v) for v in np.asarray(uniq)[present].tolist()]
            order = _argsort_values(vals)
            self._set_vocab(c, [vals[i] for i in order])
            lut = np.zeros(len(uniq) + 1, dtype=np.int64)  # indexed by code + 1: missing and unseen -> 0
            lut[present[order] + 1] = np.arange(1, len(order) + 1)
            t.cats[c] = lut[codes + 1]

    def _set_vocab(self, c: str, vals: list) -> None:
        vals = [_plain(v) for v in vals]
        self.classes[c] = [NA, *vals]
        self._index[c] = pd.Index(vals, dtype=object if not vals else None)

    def encode(self, t: TabularColumns) -> None:
        """Codes for every row: the vocab index, or 0 for missing and unseen values."""
        for c, col in t.cats.items():
            if c not in self._index:
                raise ValueError(f"Categorify was not fitted on column {c!r}")
            vals = col.astype(object) if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype) else col
            t.cats[c] = self._index[c].get_indexer(vals).astype(np.int64) + 1

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


class Normalize(TabularProc):
    """Standardize continuous columns with the training rows' mean and `std(ddof=0) + 1e-7`."""

    order = 2

    def __init__(self) -> None:
        self.means: dict[str, float] = {}
        self.stds: dict[str, float] = {}

    def setup(self, t: TabularColumns, train: np.ndarray) -> None:
        """Mean and standard deviation of every continuous column over the training rows."""
        self.means, self.stds = {}, {}
        for c, col in t.conts.items():
            tr = col[train]
            if np.isnan(tr).any():
                raise ValueError(f"Normalize got missing values in column {c!r}: put FillMissing in procs")
            self.means[c] = float(tr.mean()) if len(tr) else 0.0
            self.stds[c] = (float(tr.std()) if len(tr) else 1.0) + 1e-7

    def encode(self, t: TabularColumns) -> None:
        """(x - mean) / std, in place."""
        for c, col in t.conts.items():
            col -= self.means[c]
            col /= self.stds[c]

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


def _factorize(col: Any) -> tuple[np.ndarray, Any]:
    """`pd.factorize` (missing values -> -1); string columns are hashed as a numpy object array, which is
    about twice as fast as pandas' string-array path."""
    if isinstance(col, pd.Series) and (col.dtype == object or isinstance(col.dtype, pd.StringDtype)):
        col = col.to_numpy()
    return pd.factorize(col)


def _take(col: Any, idx: np.ndarray) -> Any:
    return col.iloc[idx] if isinstance(col, pd.Series) else np.asarray(col)[idx]


def _plain(v: Any) -> Any:
    """numpy scalars as Python numbers (so vocabs are plain data)."""
    return v.item() if isinstance(v, np.generic) else v


def _argsort_values(vals: list) -> list[int]:
    idx = range(len(vals))
    try:
        return sorted(idx, key=vals.__getitem__)
    except TypeError:  # mixed types: group by type, then by text
        return sorted(idx, key=lambda i: (type(vals[i]).__name__, str(vals[i])))


def _sorted_values(vals: list) -> list:
    vals = [_plain(v) for v in vals]
    return [vals[i] for i in _argsort_values(vals)]


# ---- the processor: procs + targets -------------------------------------------------------------
Y_BLOCKS = ("category", "regression")


class TabularProcessor:
    """Turns DataFrames into (x_cat, x_cont, y) tensors with procs fitted on the training rows; it is
    what inference needs (`state()` is plain data)."""

    def __init__(self, cat_names: Sequence[str], cont_names: Sequence[str], y_names: Sequence[str],
                 procs: Sequence[TabularProc], y_kind: str, vocab: list | None = None) -> None:
        self.raw_cat_names, self.cont_names, self.y_names = list(cat_names), list(cont_names), list(y_names)
        self.procs, self.y_kind, self.vocab = sorted(procs, key=lambda p: p.order), y_kind, vocab
        self.cat_names = list(self.raw_cat_names)
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
        return len(self.vocab) if self.y_kind == "category" else len(self.y_names)

    def _columns(self, df: pd.DataFrame) -> TabularColumns:
        cats = {c: df[c] for c in self.raw_cat_names}
        return TabularColumns(len(df), cats, {c: _float_column(df, c) for c in self.cont_names})

    def _tensors(self, t: TabularColumns) -> tuple[torch.Tensor, torch.Tensor]:
        for c, col in t.cats.items():
            if not (isinstance(col, np.ndarray) and col.dtype.kind in "iu"):
                raise ValueError(f"categorical column {c!r} is not integer codes after the procs: "
                                 "put Categorify in procs")
        bad = [c for c, col in t.conts.items() if np.isnan(col).any()]
        if bad:
            raise ValueError(f"continuous columns {bad} have missing values: put FillMissing in procs")
        n = len(t)
        x_cat = np.stack(list(t.cats.values()), 1, dtype=np.int64) if t.cats else np.zeros((n, 0), np.int64)
        x_cont = np.stack(list(t.conts.values()), 1, dtype=np.float32) if t.conts else np.zeros((n, 0), np.float32)
        return torch.from_numpy(x_cat), torch.from_numpy(x_cont)

    def setup(self, df: pd.DataFrame, train: np.ndarray) -> Tensors:
        """Fit the procs on rows `train` (positions) and return (x_cat, x_cont, y) for every row."""
        y = self._setup_y(df)  # first: a bad target fails before any work on the inputs
        t = self._columns(df)
        for p in self.procs:
            p.setup_encode(t, train)
        self.cat_names = t.cat_names
        return (*self._tensors(t), y)

    def process(self, df: pd.DataFrame, with_y: bool | None = None) -> Tensors:
        """(x_cat, x_cont[, y]) for new rows with the fitted procs; `y` when the target columns are there
        (`with_y=None`), or as asked."""
        check_columns(df, self.raw_cat_names + self.cont_names, "the DataFrame")
        if with_y is None:
            with_y = all(c in df.columns for c in self.y_names)
            if with_y:
                check_target(df, self.y_names, hint=" (or pass with_labels=False to leave the targets out)")
        t = self._columns(df)
        for p in self.procs:
            p.encode(t)
        xs = self._tensors(t)
        return (*xs, self.encode_y(df)) if with_y else xs

    def _setup_y(self, df: pd.DataFrame) -> torch.Tensor:
        if self.y_kind == "regression":
            return self.encode_y(df)
        col = df[self.y_names[0]]
        if isinstance(col.dtype, pd.CategoricalDtype):
            self._set_vocab([_plain(v) for v in col.cat.categories])
            return self.encode_y(df)
        codes, uniq = _factorize(col)  # one hashing pass; classes of every row (valid-only ones too)
        if (codes < 0).any():
            check_target(df, self.y_names)
        vals = [_plain(v) for v in np.asarray(uniq).tolist()]
        order = _argsort_values(vals)
        self._set_vocab([vals[i] for i in order])
        lut = np.empty(len(vals), dtype=np.int64)
        lut[order] = np.arange(len(vals))
        return torch.from_numpy(lut[codes])

    def _set_vocab(self, vals: list) -> None:
        self.vocab, self._y_index = vals, pd.Index(vals)

    def encode_y(self, df: pd.DataFrame) -> torch.Tensor:
        """Targets: class indices (int64, shape (rows,)) or float32 values of shape (rows, len(y_names))."""
        check_columns(df, self.y_names, "the DataFrame", what="target column")
        check_target(df, self.y_names)
        if self.y_kind == "regression":
            ys = [_float_column(df, c, "regression target") for c in self.y_names]
            return torch.from_numpy(np.stack(ys, 1, dtype=np.float32))
        col = df[self.y_names[0]]
        vals = col.astype(object) if isinstance(col.dtype, pd.CategoricalDtype) else col
        codes = self._y_index.get_indexer(vals)
        if (codes < 0).any():
            unknown = sorted({str(v) for v in np.asarray(col)[codes < 0]})[:5]
            raise ValueError(f"target column {self.y_names[0]!r} has labels the model does not know: "
                             f"{unknown} (known: {self.vocab})")
        return torch.from_numpy(codes.astype(np.int64))

    def decode_y(self, pred: torch.Tensor) -> tuple[Any, Any]:
        """(class name, index) for a row of probabilities, or (value, raw output) for regression."""
        if self.y_kind == "category":
            idx = int(pred.argmax())
            return self.vocab[idx], idx
        vals = [float(v) for v in pred.reshape(-1)]
        return (vals[0] if len(vals) == 1 else vals), pred

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
        """Rebuild from `state()`."""
        procs = []
        for d in state["procs"]:
            p = PROCS[d["name"]]()
            p.load_state_dict(d["state"])
            procs.append(p)
        self = cls(state["cat_names"], state["cont_names"], state["y_names"], procs, state["y_kind"],
                   state["vocab"])
        self.cat_names = self.raw_cat_names + [
            f"{c}_na" for p in procs if isinstance(p, FillMissing) and p.add_col for c in p.na_cols]
        return self

    def __repr__(self) -> str:
        return (f"TabularProcessor(cat_names={self.cat_names}, cont_names={self.cont_names}, "
                f"y_names={self.y_names}, y_kind={self.y_kind!r}, procs={self.procs})")


def _float_column(df: pd.DataFrame, name: str, what: str = "continuous column") -> np.ndarray:
    col = df[name]
    if not pd.api.types.is_numeric_dtype(col):
        try:  # e.g. an object column of numbers, as `row.to_frame().T` makes
            col = pd.to_numeric(col)
        except (ValueError, TypeError) as e:
            hint = "list it in cat_names" if what.startswith("cont") else "use y_block='category'"
            raise ValueError(f"{what} {name!r} is not numeric (dtype {df[name].dtype}): {hint}") from e
    return col.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)


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


def check_columns(df: pd.DataFrame, names: Sequence[str], where: str = "the DataFrame",
                  what: str = "column") -> None:
    """Raise a ValueError naming every column of `names` missing from `df` (with close matches)."""
    missing = [c for c in names if c not in df.columns]
    if missing:
        hints = [f"{c!r} -> did you mean {m[0]!r}?" for c in missing
                 if (m := difflib.get_close_matches(str(c), [str(x) for x in df.columns], n=1))]
        raise ValueError(f"{what}(s) {missing} not in {where}; it has columns {list(df.columns)}"
                         + (f" ({'; '.join(hints)})" if hints else ""))


def check_target(df: pd.DataFrame, y_names: Sequence[str], hint: str = "") -> None:
    """Raise a ValueError when a target column has missing values (naming the column and rows)."""
    for y in y_names:
        na = df[y].isna().to_numpy()
        if na.any():
            rows = df.index[na][:5].tolist()
            raise ValueError(f"target column {y!r} has {int(na.sum())} missing value(s) (index {rows}"
                             f"{'...' if na.sum() > 5 else ''}); drop those rows first, e.g. "
                             f"df = df.dropna(subset=[{y!r}]){hint}")


# ---- the loader ---------------------------------------------------------------------------------
class TabularLoader:
    """Batches sliced from tensors built once: `(x_cat, x_cont[, y])`.

    With `shuffle`, each epoch draws one `torch.randperm` (every row exactly once), gathers the tensors in
    that order, and yields contiguous views. In training (`shuffle=True`) a 1-row remainder joins the
    previous batch, so BatchNorm never sees a batch of one.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], bs: int = 64, shuffle: bool = False,
                 drop_last: bool = False) -> None:
        if not isinstance(bs, int) or bs < 1:
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
        return zip(*(x.split(self.sizes) for x in ts))

    @property
    def device(self) -> torch.device:
        """Where the tensors (and so the batches) live."""
        return self.tensors[0].device

    def __repr__(self) -> str:
        return f"TabularLoader({self.n} rows, bs={self.bs}, {len(self)} batches, shuffle={self.shuffle})"


# ---- DataLoaders --------------------------------------------------------------------------------
class TabularDataLoaders(DataLoaders):
    """Train and valid `TabularLoader`s over a DataFrame's rows, and the fitted `TabularProcessor`.

    Batches are `(x_cat, x_cont, y)` with `n_inp = 2`: `x_cat` int64 codes (one column per categorical,
    including `<col>_na` flags), `x_cont` float32, `y` int64 class indices or float32 targets.
    """

    def __init__(self, train: TabularLoader | None, valid: TabularLoader | None, processor: TabularProcessor,
                 device: torch.device | str | None = None, train_idx: np.ndarray | None = None,
                 valid_idx: np.ndarray | None = None) -> None:
        super().__init__(train, valid, device=device, n_inp=2,
                         vocab=processor.vocab if processor.y_kind == "category" else None)
        self.processor, self.train_idx, self.valid_idx = processor, train_idx, valid_idx

    @classmethod
    def from_df(cls, df: pd.DataFrame, cat_names: Sequence[str] | str | None = None,
                cont_names: Sequence[str] | str | None = None, y_names: Sequence[str] | str | None = None,
                procs: Sequence[TabularProc | type[TabularProc]] = (Categorify, FillMissing, Normalize),
                valid_idx: Sequence[int] | np.ndarray | None = None, valid_pct: float = 0.2,
                seed: int | None = None, bs: int = 64, val_bs: int | None = None, y_block: str | None = None,
                device: torch.device | str | None = None) -> TabularDataLoaders:
        """Preprocess `df` once and split it: `valid_idx` (row positions) or a `valid_pct` random split
        (seeded by `seed`). Procs are fitted on the training rows only. The target is a regression when
        its dtype is float, a classification otherwise; `y_block='category'|'regression'` overrides."""
        cat_names, cont_names, y_names = _names(cat_names), _names(cont_names), _names(y_names)
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_df needs a pandas DataFrame, got {type(df).__name__}")
        if len(df) == 0:
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
        y_kind = _y_kind(df, y_names, y_block)
        train_idx, valid = _split(len(df), valid_idx, valid_pct, seed)
        proc_objs = [p() if isinstance(p, type) else p for p in procs]
        if cat_names and not any(isinstance(p, Categorify) for p in proc_objs):
            raise ValueError("cat_names are given but procs has no Categorify: embeddings need integer "
                             "codes, add Categorify to procs")
        processor = TabularProcessor(cat_names, cont_names, y_names, proc_objs, y_kind)
        tensors = processor.setup(df, train_idx)
        dev = torch.device(device) if device is not None else default_device()
        return cls.from_tensors(tensors, processor, train_idx, valid, bs=bs, val_bs=val_bs, device=dev)

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

    # ---- what the processor knows -------------------------------------------------------------
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
        """'category' (classification) or 'regression'."""
        return self.processor.y_kind

    @property
    def classes(self) -> dict[str, list]:
        """Vocab of every categorical input column: `['#na#', *values]`."""
        return self.processor.classes

    @property
    def procs(self) -> list[TabularProc]:
        """The fitted procs, in the order they run."""
        return self.processor.procs

    @property
    def c(self) -> int:
        """Number of model outputs."""
        return self.processor.c

    # ---- inference ----------------------------------------------------------------------------
    def test_dl(self, df: pd.DataFrame, bs: int | None = None,
                with_labels: bool | None = None) -> TabularLoader:
        """A loader over new rows processed like the training rows; targets are included when `df` has the
        target columns (or as `with_labels` says)."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"test_dl needs a pandas DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise ValueError("the DataFrame passed to test_dl is empty (0 rows)")
        tensors = [x.to(self.device) for x in self.processor.process(df, with_labels)]
        default_bs = getattr(self.valid, "bs", None) or getattr(self.train, "bs", None) or 128
        return TabularLoader(tensors, bs=bs or default_bs)

    def item_to_batch(self, item: pd.Series | pd.DataFrame | Mapping) -> Tensors:
        """(x_cat, x_cont) of batch size 1 for one row: a Series, a one-row DataFrame or a dict."""
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
        return self.processor.process(df, with_y=False)

    def decode(self, pred: torch.Tensor) -> tuple[Any, Any]:
        """(class name, class index) for classification, (value, raw output) for regression."""
        return self.processor.decode_y(pred)

    def export_state(self) -> dict:
        """Target vocab and the processor (procs' fitted state), as plain data."""
        return {"vocab": self.vocab, "n_inp": 2, "tabular": self.processor.state()}

    def __repr__(self) -> str:
        def n(dl: Any) -> str:
            return "None" if dl is None else f"{dl.n} rows / {len(dl)} batches"

        return (f"TabularDataLoaders(train={n(self.train)}, valid={n(self.valid)}, {self.y_kind} on "
                f"{self.y_names}, {len(self.cat_names)} categorical, {len(self.cont_names)} continuous, "
                f"device={self.device})")


def _names(x: Sequence[str] | str | None) -> list[str]:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def _y_kind(df: pd.DataFrame, y_names: list[str], y_block: str | None) -> str:
    if y_block is not None and y_block not in Y_BLOCKS:
        raise ValueError(f"y_block must be one of {Y_BLOCKS} (or None: float target -> regression, "
                         f"else classification), got {y_block!r}")
    is_float = all(pd.api.types.is_float_dtype(df[y]) for y in y_names)
    kind = y_block or ("regression" if is_float else "category")
    if kind == "category" and len(y_names) > 1:
        raise ValueError(f"classification takes one target column, got {y_names}; for several float targets "
                         "use y_block='regression'")
    if kind == "regression":
        bad = [y for y in y_names if not pd.api.types.is_numeric_dtype(df[y])]
        if bad:
            raise ValueError(f"target column(s) {bad} are not numeric, so they cannot be a regression "
                             "target; use y_block='category'")
    return kind


def _split(n: int, valid_idx: Any, valid_pct: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    if valid_idx is not None:
        v = np.asarray(valid_idx)
        if v.dtype == bool:
            if len(v) != n:
                raise ValueError(f"a boolean valid_idx must have one entry per row ({n}), got {len(v)}")
            v = np.flatnonzero(v)
        v = v.astype(np.int64).reshape(-1)
        if len(v) and (v.min() < -n or v.max() >= n):
            raise ValueError(f"valid_idx holds positions outside [0, {n}): they are row positions "
                             "(as in df.iloc), not index labels")
        v = np.unique(v % n)
    else:
        if not 0 <= valid_pct < 1:
            raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct}")
        # a seed gives the same split every time; without one, torch's global RNG (torch.manual_seed) decides
        perm = np.random.default_rng(seed).permutation(n) if seed is not None else torch.randperm(n).numpy()
        v = np.sort(perm[: int(valid_pct * n)])
    mask = np.ones(n, dtype=bool)
    mask[v] = False
    train = np.flatnonzero(mask)
    if len(train) == 0:
        raise ValueError(f"every one of the {n} rows went to the validation set: nothing is left to train on")
    return train, v


# ---- model --------------------------------------------------------------------------------------
def emb_sz_rule(n_cat: int) -> int:
    """fastai's rule of thumb for an embedding's width: `min(600, round(1.6 * n_cat ** 0.56))`."""
    return min(600, round(1.6 * n_cat**0.56))


def get_emb_sz(dls: TabularDataLoaders, sz_dict: Mapping[str, int] | None = None) -> list[tuple[int, int]]:
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
        self.embeds = nn.ModuleList(nn.Embedding(n, d) for n, d in emb_szs)
        for e in self.embeds:
            nn.init.trunc_normal_(e.weight, std=0.01, a=-0.02, b=0.02)
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
        if self.n_cont:
            xs.append(self.bn_cont(x_cont) if self.bn_cont is not None else x_cont)
        return self.layers(xs[0] if len(xs) == 1 else torch.cat(xs, 1))


# ---- learner ------------------------------------------------------------------------------------
def _default_loss(y_kind: str) -> nn.Module:
    return nn.CrossEntropyLoss() if y_kind == "category" else nn.MSELoss()


def tabular_learner(dls: TabularDataLoaders, layers: Sequence[int] = (200, 100),
                    emb_szs: Mapping[str, int] | None = None, ps: float | Sequence[float] | None = None,
                    embed_p: float = 0.0, y_range: tuple[float, float] | None = None,
                    n_out: int | None = None,
                    use_bn: bool = True, bn_final: bool = False, bn_cont: bool = True,
                    **learner_kwargs: Any) -> Learner:
    """A `Learner` with a `TabularModel` for `dls`: CrossEntropyLoss for classification, MSELoss for
    regression. The model is one layer group, so give `fit_one_cycle` a float LR."""
    if not isinstance(dls, TabularDataLoaders):
        raise TypeError(f"tabular_learner needs TabularDataLoaders, got {type(dls).__name__}")
    if y_range is not None:
        if len(y_range) != 2 or not float(y_range[0]) < float(y_range[1]):
            raise ValueError(f"y_range must be (low, high) with low < high, got {y_range!r}")
        y_range = (float(y_range[0]), float(y_range[1]))
    cfg = {"emb_szs": [list(e) for e in get_emb_sz(dls, emb_szs)], "n_cont": len(dls.cont_names),
           "out_sz": int(n_out or dls.c), "layers": [int(x) for x in layers],
           "ps": ps if ps is None or isinstance(ps, (int, float)) else [float(p) for p in ps],
           "embed_p": float(embed_p), "y_range": None if y_range is None else list(y_range),
           "use_bn": use_bn, "bn_final": bn_final, "bn_cont": bn_cont}
    model = TabularModel(**cfg)
    learner_kwargs.setdefault("loss_func", _default_loss(dls.y_kind))
    learn = Learner(dls, model, **learner_kwargs)
    learn.export_info = {"module": "minifastai.tabular", "model": cfg}
    return learn


def rebuild_learner(state: dict, device: torch.device | str = "cpu") -> Learner:
    """The learner `load_learner` needs for an exported tabular learner (weights are loaded afterwards)."""
    processor = TabularProcessor.from_state(state["dls"]["tabular"])
    dls = TabularDataLoaders(None, None, processor, device=device)
    model = TabularModel(**state["builder"]["model"])
    learn = Learner(dls, model, loss_func=_default_loss(processor.y_kind), activation=state.get("activation"),
                    group_names=state.get("group_names"))
    learn.export_info = state["builder"]
    return learn

