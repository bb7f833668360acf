"""`TabularProcessor`: the procs and the target together, fitted once and applied to every split."""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..persist.fileformat import check_plain
from .blocks import Y_KINDS, CategoryBlock, MultiCategoryBlock, YBlock
from .columns import (
    BIG_TABLE,
    MAX_INT_CLASSES,
    NA,
    Factorized,
    Table,
    TabularColumns,
    Tensors,
    _argsort_values,
    _as_float,
    _check_finite,
    _code_dtype,
    _plain,
    _Source,
    check_columns,
    check_target,
    factorize,
)
from .memory import _release_free_memory
from .procs import PROCS, Categorify, FillMissing, TabularProc


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
        """Number of model outputs: classes (one per label for multi-label targets), or target columns for
        regression."""
        return len(self.vocab or []) if self.y_kind != "regression" else len(self.y_names)

    # ---- fitting ------------------------------------------------------------------------------
    def setup(self, data: Table, train: np.ndarray, valid: np.ndarray) -> tuple[Tensors, Tensors]:
        """Fit the procs on rows `train` (positions) and return (x_cat, x_cont, y) for the training rows and
        for the validation rows, built column by column. Nothing is changed if it raises: the procs given
        are copied and fitted, and replace `self.procs` only at the end. The proc objects given then hold the
        fitted state too (fastai's `norm.means['a']` after `TabularPandas(df, norm, ...)`), while `self.procs`
        stays this table's own: a later TabularPandas given the same objects does not change this one."""
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
            t = TabularColumns(n, {c: factorize(src.column(c), c)}, {})
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
        for given, fitted in zip(self.procs, procs):  # the objects passed hold the fit, as fastai's (`norm.means`)
            given.__dict__.update(fitted.__dict__)  # shared values, never changed in place: a later fit refits copies
        self.procs, self.cat_names = procs, cat_names
        return ((torch.from_numpy(cats[0]), torch.from_numpy(conts[0]), ys[0]),
                (torch.from_numpy(cats[1]), torch.from_numpy(conts[1]), ys[1]))

    def _setup_y(self, src: _Source, train: np.ndarray, valid: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit the target vocab (classification) and return the training and validation targets."""
        if self.y_kind == "regression":
            y = self._regression_y(src)
            return torch.from_numpy(y[train]), torch.from_numpy(y[valid])
        if self.y_kind == "multi_category":
            assert isinstance(self.y_block, MultiCategoryBlock)
            y = self._multi_hot_y(src)
            self._set_vocab(list(self.y_block.vocab or []))
            return torch.from_numpy(y[train]), torch.from_numpy(y[valid])
        name = self.y_names[0]
        f = factorize(src.column(name), name, "target column")
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
        if not self.y_names:  # a TabularPandas without a target (fastai's): no target columns
            return np.zeros((len(src), 0), np.float32)
        ys = []
        for c, y in self._float_targets(src, "regression target"):
            _check_finite(y, src, c, "regression target")
            ys.append(y)
        return np.stack(ys, 1)

    def _float_targets(self, src: _Source, what: str) -> Iterator[tuple[str, np.ndarray]]:
        """Each target column as float32, a missing value being an error that names it (`check_target`)."""
        for c in self.y_names:
            y = _as_float(src.column(c), c, what, np.float32)
            if np.isnan(y).any():
                check_target(src.data, [c])
            yield c, y

    def _multi_hot_y(self, src: _Source) -> np.ndarray:
        """Multi-label targets: one 0/1 (or bool) column per class, as float32 of shape (rows, classes)."""
        ys = []
        for c, y in self._float_targets(src, "multi-label target"):
            bad = np.flatnonzero((y != 0) & (y != 1))
            if len(bad):
                raise ValueError(f"multi-label target column {c!r} holds {float(y[bad[0]])!r} at row {int(bad[0])}: "
                                 "MultiCategoryBlock(encoded=True) takes 0/1 (or bool) values, one column per class")
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
            t = TabularColumns(n, {c: factorize(src.column(c), c)}, {})
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
        if self.y_kind == "multi_category":
            return torch.from_numpy(self._multi_hot_y(src))
        f = factorize(src.column(self.y_names[0]), self.y_names[0], "target column")
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
            elif self.y_kind == "multi_category":
                out.update({c: yv[:, i].numpy() > 0.5 for i, c in enumerate(self.y_names)})
            else:
                out.update({c: yv[:, i].float().numpy() for i, c in enumerate(self.y_names)})
        return pd.DataFrame(out)

    def decode_y(self, pred: torch.Tensor) -> tuple[Any, Any]:
        """(class name, index) for a row of probabilities, (the labels over 0.5, one bool per class) for multi-label
        targets, or (value, raw output) for regression."""
        if self.y_kind == "category":
            idx = int(pred.argmax())
            return (self.vocab or [])[idx], idx
        if self.y_kind == "multi_category":
            on = pred.reshape(-1) > 0.5
            return [v for v, b in zip(self.vocab or [], on.tolist()) if b], on
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
        return check_plain(state, "the tabular processor's state", tensors=False,
                           hint="convert that column to str, int or float before building the DataLoaders")

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
        if state["y_kind"] not in Y_KINDS:
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
    for c, col in list(codes.items()):
        if isinstance(col, Factorized) and list(col.values) == [False, True]:  # a `_na` flag, no Categorify ran:
            codes[c] = col = col.codes                                        # 0/1, as the values themselves
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


