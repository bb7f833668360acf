"""Target blocks (fastai's names): `CategoryBlock` (one class per item), `MultiCategoryBlock` (any number of
classes per item) and `RegressionBlock` (floats). `DataBlock` and the tabular `y_block=` take them.

A block checks one target value (`check`, naming what it needs), learns its classes from the training values
(`setup`), encodes values as the tensors a loss takes (`encode`), decodes them back (`decode`) and names its loss
(`loss_func`), as fastai's `Categorize`, `MultiCategorize` + `OneHotEncode` and `RegressionSetup` do.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat

__all__ = ["CategoryBlock", "MultiCategoryBlock", "RegressionBlock", "TargetBlock", "TARGET_KINDS"]

TARGET_KINDS = ("category", "multi_category", "regression")
"""The kinds of target a block encodes (what an export stores as the `dls` entry's `target`)."""

_LABEL_TYPES = (str, int, bool, np.integer, np.bool_, np.str_)


def _plain(v: Any) -> Any:
    """numpy scalars as Python values (so vocabs are plain data)."""
    return v.item() if isinstance(v, np.generic) else v


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _sorted_vocab(values: Any, what: str) -> list:
    try:
        return sorted(values)
    except TypeError:
        raise TypeError(f"{what} must be of one sortable type (e.g. all str), got "
                        f"{sorted({type(v).__name__ for v in values})}") from None


class TargetBlock:
    """What every target block has: its `kind`, its classes (`vocab`, None for regression) and `c`, the model's
    number of outputs."""

    kind = ""
    vocab: list | None = None

    @property
    def c(self) -> int:
        """The number of model outputs this target needs."""
        return len(self.vocab or [])

    def check(self, value: Any) -> str | None:
        """Why `value` cannot be a target of this block (None: it can)."""
        return None

    def setup(self, train: Sequence[Any], valid: Sequence[Any]) -> None:
        """Learn what `encode` needs (the classes) from the training values (and the validation ones)."""

    def encode(self, values: Sequence[Any]) -> Tensor:
        """The targets as one tensor, as the loss takes them."""
        raise NotImplementedError

    def decode(self, t: Tensor) -> Any:
        """One encoded target back as the user wrote it."""
        return t

    def loss_func(self) -> Any:
        """The task's loss, as fastai's."""
        raise NotImplementedError


class CategoryBlock(TargetBlock):
    """One class per item (fastai's name): `vocab` fixes the classes and their order; otherwise they are the
    sorted labels (a pandas Categorical keeps its order). Encoded as class indices; the loss is
    `CrossEntropyLossFlat()`."""

    kind = "category"

    def __init__(self, vocab: Sequence | None = None, sort: bool = True, add_na: bool = False) -> None:
        self.vocab = None if vocab is None else [_plain(v) for v in vocab]
        self.fixed = self.vocab is not None
        self.sort, self.add_na = sort, add_na
        if self.vocab is not None and len(set(self.vocab)) != len(self.vocab):
            raise ValueError(f"CategoryBlock(vocab=...) lists a class more than once: {self.vocab}")

    def check(self, value: Any) -> str | None:  # noqa: D102 (TargetBlock's)
        if _is_missing(value):
            return "a missing label (None/NaN)"
        if isinstance(value, (list, tuple, set, np.ndarray, Tensor)) or not isinstance(value, _LABEL_TYPES):
            extra = " (several labels: use MultiCategoryBlock)" if isinstance(value, (list, tuple, set)) else ""
            return f"one label (a str, int or bool), not a {type(value).__name__}{extra}"
        return None

    def setup(self, train: Sequence[Any], valid: Sequence[Any]) -> None:
        """The classes: `vocab` if given, else the sorted set of training and validation labels (a class seen only
        in validation is added, with a warning: the model cannot learn it)."""
        if self.fixed:
            return
        tr = {_plain(v) for v in train}
        only_valid = _sorted_vocab({_plain(v) for v in valid} - tr, "labels")
        vocab = _sorted_vocab(tr | set(only_valid), "labels") if self.sort else list(dict.fromkeys(
            [_plain(v) for v in [*train, *valid]]))
        if only_valid:
            warnings.warn(f"classes {only_valid} occur only in the validation set: the model cannot learn them "
                          "(they are in the vocab, so the outputs still line up)", stacklevel=4)
        self.vocab = ["#na#", *vocab] if self.add_na else vocab

    def encode(self, values: Sequence[Any]) -> Tensor:  # noqa: D102 (TargetBlock's)
        index = {v: i for i, v in enumerate(self.vocab or [])}
        unknown = sorted({str(v) for v in values if _plain(v) not in index})
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not in vocab={self.vocab}")
        return torch.tensor([index[_plain(v)] for v in values], dtype=torch.long)

    def decode(self, t: Tensor) -> Any:  # noqa: D102 (TargetBlock's)
        return (self.vocab or [])[int(t)]

    def loss_func(self) -> CrossEntropyLossFlat:  # noqa: D102 (TargetBlock's)
        return CrossEntropyLossFlat()

    def __repr__(self) -> str:
        return f"CategoryBlock(vocab={self.vocab})"


class MultiCategoryBlock(TargetBlock):
    """Any number of classes per item (fastai's name): a list of labels each (a str is one label), or with
    `encoded=True` a 0/1 vector per item over `vocab`. The classes are `vocab`, else the sorted labels of the
    training set; targets are multi-hot float vectors and the loss is `BCEWithLogitsLossFlat()` (use
    `accuracy_multi` as the metric)."""

    kind = "multi_category"

    def __init__(self, encoded: bool = False, vocab: Sequence | None = None, add_na: bool = False) -> None:
        if encoded and vocab is None:
            raise ValueError("MultiCategoryBlock(encoded=True) needs vocab=[the class of each column]")
        self.encoded, self.add_na = encoded, add_na
        self.vocab = None if vocab is None else [_plain(v) for v in vocab]
        self.fixed = self.vocab is not None

    def check(self, value: Any) -> str | None:  # noqa: D102 (TargetBlock's)
        if self.encoded:
            try:
                v = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                return f"a 0/1 vector over the {len(self.vocab or [])} classes, not a {type(value).__name__}"
            return None if v.shape == (len(self.vocab or []),) else (
                f"a 0/1 vector of {len(self.vocab or [])} values (one per class of vocab), got shape {v.shape}")
        if isinstance(value, str) or _is_missing(value):
            return None
        if not isinstance(value, (list, tuple, set, np.ndarray)):
            return f"a list of labels, not a {type(value).__name__}"
        bad = [v for v in value if not isinstance(v, _LABEL_TYPES)]
        return None if not bad else f"a list of labels (str, int or bool), holding a {type(bad[0]).__name__}"

    @staticmethod
    def _labels(value: Any) -> list:
        if _is_missing(value):
            return []
        return [value] if isinstance(value, str) else [_plain(v) for v in value]

    def setup(self, train: Sequence[Any], valid: Sequence[Any]) -> None:
        """The classes: `vocab` if given, else the sorted labels of the training items (fastai's)."""
        if self.fixed:
            return
        vocab = _sorted_vocab({v for t in train for v in self._labels(t)}, "labels")
        self.vocab = ["#na#", *vocab] if self.add_na else vocab

    def encode(self, values: Sequence[Any]) -> Tensor:  # noqa: D102 (TargetBlock's)
        if self.encoded:
            return torch.tensor(np.asarray([np.asarray(v, dtype=float) for v in values]), dtype=torch.float32)
        index = {v: i for i, v in enumerate(self.vocab or [])}
        out = torch.zeros(len(values), len(index))
        for row, value in enumerate(values):
            labels = self._labels(value)
            unknown = [v for v in labels if v not in index]
            if unknown:
                raise ValueError(f"labels {unknown[:5]} of item {row} are not among the training set's classes "
                                 f"{(self.vocab or [])[:10]}: pass MultiCategoryBlock(vocab=[...]) listing every class")
            out[row, [index[v] for v in labels]] = 1.0
        return out

    def decode(self, t: Tensor) -> list:  # noqa: D102 (TargetBlock's)
        return [v for v, on in zip(self.vocab or [], t.tolist()) if on > 0.5]

    def loss_func(self) -> BCEWithLogitsLossFlat:  # noqa: D102 (TargetBlock's)
        return BCEWithLogitsLossFlat()

    def __repr__(self) -> str:
        return f"MultiCategoryBlock(vocab={self.vocab})"


class RegressionBlock(TargetBlock):
    """Float targets (fastai's name): one number, or a fixed-length list of numbers, per item (`n_out`, if given,
    checks the length). The loss is `MSELossFlat()`."""

    kind = "regression"

    def __init__(self, n_out: int | None = None) -> None:
        if n_out is not None and (isinstance(n_out, bool) or not isinstance(n_out, int) or n_out < 1):
            raise ValueError(f"RegressionBlock(n_out={n_out!r}) must be a positive int (the number of outputs)")
        self.n_out = n_out
        self._shape: tuple[int, ...] | None = None

    @property
    def c(self) -> int:
        """The number of outputs: `n_out`, else the length of a target."""
        if self.n_out is not None:
            return self.n_out
        return int(np.prod(self._shape)) if self._shape else 1

    def check(self, value: Any) -> str | None:  # noqa: D102 (TargetBlock's)
        if isinstance(value, (str, bytes)) or _is_missing(value):
            return f"a number (or a list of numbers), not {value!r}"
        try:
            v = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return f"a number (or a list of numbers), not a {type(value).__name__}"
        if self.n_out is not None and v.size != self.n_out:
            return f"{self.n_out} number(s) (n_out={self.n_out}), got {v.size}"
        return None

    def setup(self, train: Sequence[Any], valid: Sequence[Any]) -> None:  # noqa: D102 (TargetBlock's)
        shapes = {np.shape(np.asarray(v, dtype=float)) for v in [*train, *valid]}
        if len(shapes) > 1:
            raise ValueError(f"RegressionBlock: the targets have different shapes {sorted(shapes)[:3]}: every item "
                             "needs the same number of values")
        self._shape = next(iter(shapes), ())

    def encode(self, values: Sequence[Any]) -> Tensor:  # noqa: D102 (TargetBlock's)
        return torch.tensor(np.asarray([np.asarray(v, dtype=float) for v in values]), dtype=torch.float32)

    def decode(self, t: Tensor) -> Any:  # noqa: D102 (TargetBlock's)
        return float(t) if t.ndim == 0 else t.tolist()

    def loss_func(self) -> MSELossFlat:  # noqa: D102 (TargetBlock's)
        return MSELossFlat()

    def __repr__(self) -> str:
        return f"RegressionBlock(n_out={self.n_out})"
