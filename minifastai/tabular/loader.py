"""`TabularLoader`: batches of tensors sliced from memory."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import torch
from torch.utils.data import TensorDataset

from .columns import Tensors


class TabularLoader:
    """Batches sliced from tensors built once: `(x_cat, x_cont[, y])`.

    With `shuffle`, each epoch draws one `torch.randperm` on the tensors' device (every row exactly once),
    gathers the tensors in that order, and yields contiguous slices. Integer tensors stored compactly (e.g.
    uint8 codes) are yielded as int64, the type embeddings and losses take. In training (`shuffle=True`) a
    1-row remainder joins the previous batch, so BatchNorm never sees a batch of one.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], bs: int = 64, shuffle: bool = False,
                 drop_last: bool = False, processor: Any = None) -> None:
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
            raise ValueError(f"bs must be a positive int, got {bs!r}")
        self.tensors, self.bs, self.shuffle, self.drop_last = tuple(tensors), bs, shuffle, drop_last
        self.processor = processor  # the fitted TabularProcessor, which decodes rows for show_batch
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

    def new(self, to: Any = None, bs: int | None = None, shuffle: bool = False) -> TabularLoader:
        """A loader like this one over the rows of `to` (a `TabularPandas`, e.g. `to.new(test_df)`; default: this
        loader's rows), unshuffled unless `shuffle` (fastai's `dls.valid.new(to)`)."""
        if to is None:
            tensors, processor = self.tensors, self.processor
        else:
            tensors = tuple(torch.cat([a, b]).to(self.device) for a, b in zip(to._train, to._valid))
            processor = to.processor
        return TabularLoader(tensors, bs=bs or self.bs, shuffle=shuffle, processor=processor)

    def show_batch(self, max_n: int = 10) -> pd.DataFrame:
        """This loader's first `max_n` rows (of its first batch), decoded, shown and returned (fastai's
        `dls.valid.show_batch()`)."""
        if self.processor is None:
            raise ValueError("this TabularLoader was built from bare tensors: it has no procs to decode rows with "
                             "(use the TabularDataLoaders' loaders)")
        b = [x[:max_n] for x in next(iter(self))]
        df = self.processor.decode(b[0], b[1], b[2] if len(b) > 2 and b[2].shape[-1] else None)
        _display(df)
        return df

    @property
    def dataset(self) -> TabularRows:
        """The rows this loader batches (no copy): fastai's `len(dls.train.dataset)`, `dls.train.dataset[i]` (a row's
        `(x_cat, x_cont[, y])`, compact dtypes) and, with procs, the processed table (`tdl.dataset.iloc[0]`)."""
        return TabularRows(self.tensors, self.processor)

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


class TabularRows(TensorDataset):
    """A loader's rows: a `TensorDataset` over its tensors, and, given the procs' column names (`processor`), the
    processed table as fastai's loaders' `dataset` (a `TabularPandas`) shows it: `xs`, `ys`, `items`, `iloc`."""

    def __init__(self, tensors: Sequence[torch.Tensor], processor: Any = None) -> None:
        super().__init__(*tensors)
        self.processor = processor

    def _names(self) -> Any:
        if self.processor is None:
            raise ValueError("these rows were built from bare tensors: they have no column names (use the "
                             "TabularDataLoaders' loaders)")
        return self.processor

    @property
    def xs(self) -> pd.DataFrame:
        """The processed inputs (category codes, normalized values), one column each."""
        return inputs_frame(self._names(), self.tensors)

    @property
    def ys(self) -> pd.DataFrame:
        """The processed targets (class indices or values); no columns for rows without targets."""
        return targets_frame(self._names(), self.tensors)

    @property
    def items(self) -> pd.DataFrame:
        """The processed rows: inputs, then targets."""
        return pd.concat([self.xs, self.ys], axis=1)

    @property
    def iloc(self) -> Any:
        """`items.iloc` (fastai's `dl.dataset.iloc[0]['col']`)."""
        return self.items.iloc


def inputs_frame(names: Any, tensors: Sequence[torch.Tensor], index: Any = None) -> pd.DataFrame:
    """`(x_cat, x_cont, ...)` as a DataFrame with `names.cat_names` then `names.cont_names` as its columns."""
    x_cat, x_cont = tensors[0].cpu().numpy(), tensors[1].cpu().numpy()
    return pd.DataFrame({**{c: x_cat[:, i] for i, c in enumerate(names.cat_names)},
                         **{c: x_cont[:, i] for i, c in enumerate(names.cont_names)}}, index=index)


def targets_frame(names: Any, tensors: Sequence[torch.Tensor], index: Any = None) -> pd.DataFrame:
    """The targets `tensors[2]` as a DataFrame with `names.y_names` as its columns (none when there are none)."""
    y = tensors[2].cpu().numpy() if len(tensors) > 2 else None
    if y is None or y.shape[1] == 0:  # rows without their targets (`to.new(test_df)`, `dls.test_dl(df)`)
        return pd.DataFrame(index=index if index is not None else pd.RangeIndex(len(tensors[0])))
    return pd.DataFrame({c: y[:, i] for i, c in enumerate(names.y_names)}, index=index)


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
