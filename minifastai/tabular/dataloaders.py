"""`TabularPandas` (fastai's processed table, with its train and valid subsets) and `TabularDataLoaders`
(`from_df`, `from_csv`, `from_parquet`, `test_dl`, `show_batch`)."""
from __future__ import annotations

import inspect
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch

from ..data import DataLoaders, default_device
from .blocks import _as_block, _default_loss, _y_kind
from .columns import Table, Tensors, _is_arrow_array, _Source, check_columns, nested_type_error
from .loader import TabularLoader, _display, inputs_frame, targets_frame
from .processor import TabularProcessor
from .procs import DEFAULT_PROCS, Categorify, TabularProc
from .splitters import IndexSplitter, RandomSplitter, _check_splits


def _names(x: Sequence[str] | str | None, what: str = "column names") -> list[str]:
    """A column name or a list of names as a list; anything else is a TypeError saying what `what` takes."""
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    if isinstance(x, (bytes, Mapping)) or not isinstance(x, Iterable):
        raise TypeError(f"{what} takes a column name (a str) or a list of names, got {type(x).__name__} {x!r}"
                        + (f"; for a column labelled {x!r}, pass [{x!r}]" if isinstance(x, Hashable) else ""))
    out = list(x)
    bad = [v for v in out if not isinstance(v, Hashable)]
    if bad:
        raise TypeError(f"{what} takes a column name (a str) or a list of names; it lists {bad[0]!r} "
                        f"({type(bad[0]).__name__}), which is not a column name")
    return out


def _proc_objects(procs: Any) -> list[TabularProc]:
    if procs is None:
        return []
    out = []
    for p in ([procs] if isinstance(procs, (type, TabularProc)) else list(procs)):
        if callable(p) and getattr(p, "__name__", "") == "noop" and not isinstance(p, type):
            continue  # fastai's `noop` in a procs list: it changes nothing
        if isinstance(p, type) and issubclass(p, TabularProc):
            out.append(p())
        elif isinstance(p, TabularProc):
            out.append(p)
        else:
            raise TypeError(f"procs must be TabularProc classes or instances (Categorify, FillMissing, Normalize), "
                            f"got {p!r}; note fastai's argument order: from_df(df, path, procs, cat_names, "
                            "cont_names, y_names, ...)")
    return out


def _snake(name: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() and i else ch.lower() for i, ch in enumerate(name))


class ProcList(list):
    """The fitted procs, in the order they run (a list), with fastai's Pipeline reads: a proc by its snake_case
    class name (`to.procs.categorify`) and `decode(to)`, every proc undone."""

    def __init__(self, procs: Sequence[TabularProc], processor: TabularProcessor) -> None:
        super().__init__(procs)
        self._processor = processor

    def __getattr__(self, name: str) -> TabularProc:
        for p in self:
            if _snake(type(p).__name__) == name:
                return p
        raise AttributeError(f"no proc named {name!r}; the procs are {[_snake(type(p).__name__) for p in self]}")

    def decode(self, to: TabularPandas) -> pd.DataFrame:
        """`to`'s rows decoded (categories, un-normalized values, class names), in table order."""
        rows = np.concatenate([to.train_idx, to.valid_idx])
        tensors = [torch.cat([a, b]) for a, b in zip(to._train, to._valid)]
        y = tensors[2] if len(tensors) > 2 and tensors[2].shape[-1] else None
        out = self._processor.decode(tensors[0], tensors[1], y)
        out.index = rows
        return out.sort_index()


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
        return inputs_frame(self.to, self.tensors, self.rows)

    @property
    def ys(self) -> pd.DataFrame:
        """The processed targets (class indices or values) as a DataFrame."""
        return targets_frame(self.to, self.tensors, self.rows)

    @property
    def y(self) -> pd.Series:
        """The first target column, processed."""
        return self.ys.iloc[:, 0]


class ProcessorView:
    """What the fitted `TabularProcessor` knows, as fastai's `TabularPandas` and `TabularDataLoaders` expose it."""

    processor: TabularProcessor

    @property
    def procs(self) -> ProcList:
        """The fitted procs, in the order they run (`to.procs.categorify`, `to.procs.decode(to)` as fastai's)."""
        return ProcList(self.processor.procs, self.processor)

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

    `y_block`: `CategoryBlock()` / `RegressionBlock()` (or 'category' / 'regression'), or for multi-label targets
    (one 0/1 column per class) `MultiCategoryBlock(encoded=True, vocab=y_names)`; by default a float target is a
    regression and anything else (integers too) a classification."""

    def __init__(self, df: Table, procs: Any = DEFAULT_PROCS, cat_names: Sequence[str] | str | None = None,
                 cont_names: Sequence[str] | str | None = None, y_names: Sequence[str] | str | None = None,
                 y_block: Any = None, splits: Any = None, do_setup: bool = True,
                 device: torch.device | str | None = None, inplace: bool = False, reduce_memory: bool = True) -> None:
        if not do_setup:
            raise ValueError("do_setup=False is not supported: TabularPandas processes the rows when created")
        cat_names, cont_names = _names(cat_names, "cat_names"), _names(cont_names, "cont_names")
        y_names = _names(y_names, "y_names")
        if not isinstance(df, pd.DataFrame) and not _is_arrow_array(df):
            raise TypeError(f"TabularPandas needs a pandas DataFrame, got {type(df).__name__}")
        proc_objs = _proc_objects(procs)
        src = _Source(df)
        n = len(src)
        if n == 0:
            raise ValueError("the DataFrame is empty (0 rows): there is nothing to train on")
        if not y_names and y_block is not None:
            raise ValueError(f"y_block={y_block!r} but no y_names: name the target column, e.g. y_names='salary'")
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
        """The classes of a classification (or multi-label) target."""
        return self.processor.vocab if self.processor.y_kind != "regression" else None

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

    @property
    def xs(self) -> pd.DataFrame:
        """Every row's processed inputs (category codes, normalized values), in table order (fastai's `to.xs`)."""
        return pd.concat([self.train.xs, self.valid.xs]).sort_index()

    @property
    def ys(self) -> pd.DataFrame:
        """Every row's processed targets, in table order (fastai's `to.ys`)."""
        return pd.concat([self.train.ys, self.valid.ys]).sort_index()

    @property
    def y(self) -> pd.Series:
        """The first target column, processed, for every row."""
        return self.ys.iloc[:, 0]

    @property
    def items(self) -> pd.DataFrame:
        """The processed table: inputs then targets, every row in table order (fastai's `to.items`, without the
        columns that are neither inputs nor targets)."""
        return pd.concat([self.xs, self.ys], axis=1)

    def __getattr__(self, name: str) -> TabularProc:
        """A fitted proc by its snake_case name (fastai's `to.categorify`, `to.normalize`)."""
        if name.startswith("_") or "processor" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.procs, name)

    @property
    def all_cols(self) -> pd.DataFrame:
        """Every input and target column, processed (fastai's `to.all_cols`)."""
        return self.items

    def __getitem__(self, col: str | Sequence[str]) -> pd.Series | pd.DataFrame:
        """One processed column (fastai's `to['age']`), or a DataFrame of several (`to[['age', 'fnlwgt']]`)."""
        items = self.items
        cols = [col] if isinstance(col, str) else list(col)
        missing = [c for c in cols if c not in items]
        if missing:
            raise KeyError(f"{missing} not input or target columns; the columns are {list(items.columns)}")
        return items[col] if isinstance(col, str) else items[cols]

    def decode_row(self, row: pd.Series) -> pd.Series:
        """A processed row (`to.items.iloc[i]`) decoded back: categories from their codes, values un-normalized."""
        missing = [c for c in (*self.cat_names, *self.cont_names) if c not in row.index]
        if missing:
            raise KeyError(f"decode_row: the row has no {missing}; pass a row of to.items")
        x_cat = torch.tensor([[int(row[c]) for c in self.cat_names]], dtype=torch.long).reshape(1, -1)
        x_cont = torch.tensor([[float(row[c]) for c in self.cont_names]], dtype=torch.float32).reshape(1, -1)
        y = None
        if all(c in row.index for c in self.y_names):
            y = torch.tensor([[row[c] for c in self.y_names]])
        return self.processor.decode(x_cat, x_cont, y).iloc[0]

    def new(self, df: Table, inplace: bool = False) -> TabularPandas:
        """fastai's `to.new(df)`: new rows through the procs fitted here (not fitted again), all of them in the
        training subset, with their targets if the target columns are there; `.process()` (fastai's next call)
        has nothing left to do. `inplace` (fastai's: do not copy `df`) changes nothing: `df` is never modified."""
        out = object.__new__(type(self))
        tensors = self.processor.process(df)
        n = len(tensors[0])
        if len(tensors) < 3:  # rows without their targets (test rows): an empty target
            tensors = (*tensors, torch.zeros(n, 0))
        out.processor, out.device = self.processor, self.device
        out.train_idx, out.valid_idx = np.arange(n), np.arange(0)
        out._train = tuple(tensors)
        out._valid = tuple(t[:0] for t in tensors)
        return out

    def process(self) -> None:
        """fastai's `to.process()`: minifastai processes rows when they are given, so there is nothing to do."""

    def show(self, max_n: int = 10) -> None:
        """Print the first `max_n` rows decoded (categories and values as in the table), as fastai's `to.show()`."""
        items = self.items.iloc[:max_n]
        print(pd.DataFrame([self.decode_row(r) for _, r in items.iterrows()], index=items.index).to_string())

    def dataloaders(self, bs: int = 64, val_bs: int | None = None, shuffle: bool = True,
                    device: torch.device | str | None = None, path: str | os.PathLike = ".",
                    drop_last: bool = False) -> TabularDataLoaders:
        """Train and valid loaders over the processed rows, on `device` (default: the TabularPandas' device,
        else CUDA when available). Validation batches default to twice `bs`."""
        dev = torch.device(device if device is not None else self.device or default_device())
        if not isinstance(bs, int) or isinstance(bs, bool) or bs < 1:
            raise ValueError(f"bs must be a positive int, got {bs!r}")
        if not self.y_names:
            raise ValueError("this TabularPandas has no target (y_names): name the target column to train on it")
        if self._train[2].shape[1] == 0:
            raise ValueError(f"these rows have no target column {self.y_names} (to.new of test rows): predict on "
                             "them with dls.valid.new(to) or dls.test_dl(df)")
        train = TabularLoader([x.to(dev) for x in self._train], bs=bs, shuffle=shuffle, drop_last=drop_last,
                              processor=self.processor)
        valid = (TabularLoader([x.to(dev) for x in self._valid], bs=val_bs or 2 * bs, processor=self.processor)
                 if len(self.valid_idx) else None)
        return TabularDataLoaders(train, valid, self.processor, device=dev, train_idx=self.train_idx,
                                  valid_idx=self.valid_idx, path=path)

    def __repr__(self) -> str:
        return (f"TabularPandas({len(self.train_idx)} training rows, {len(self.valid_idx)} validation rows, "
                f"{self.processor.y_kind} on {self.y_names})")


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
                         vocab=processor.vocab if processor.y_kind != "regression" else None)
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
        cat_names, y_names = _names(cat_names, "cat_names"), _names(y_names, "y_names")
        if cont_names is not None:
            cont_names = _names(cont_names, "cont_names")
        if not y_names:
            raise ValueError("y_names is empty: name the target column, e.g. y_names='salary' (loaders train on it)")
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
        CSV's folder. Keywords of `pd.read_csv` (`sep`, `delimiter`, `encoding`, `na_values`, ...) go to it, the
        rest to `from_df`. When every column is named (`cont_names` given), only those columns are read."""
        csv_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in _READ_CSV_KEYS}
        unknown = sorted(set(kwargs) - _FROM_DF_KEYS)
        if unknown:
            raise TypeError(f"from_csv got unknown keyword(s) {unknown}: it takes from_df's arguments "
                            f"{sorted(_FROM_DF_KEYS)} and pd.read_csv's (sep, delimiter, encoding, na_values, ...)")
        chunked = sorted(k for k in ("iterator", "chunksize") if csv_kw.get(k))
        if chunked:
            raise ValueError(f"from_csv reads the whole CSV into one DataFrame: leave out {chunked}")
        kwargs = {k: _names(v, k) if k in ("cat_names", "cont_names", "y_names") and v is not None else v
                  for k, v in kwargs.items()}
        if kwargs.get("valid_idx") is None:
            RandomSplitter(kwargs.get("valid_pct", 0.2))  # a bad valid_pct fails before the CSV is read
        names = [*_names(kwargs.get("cat_names")), *_names(kwargs.get("cont_names")), *_names(kwargs.get("y_names"))]
        is_file = isinstance(csv, (str, os.PathLike))
        given = csv_kw.pop("usecols", None)  # the caller's usecols win
        usecols = (list(dict.fromkeys(names)) if given is None and is_file and kwargs.get("cont_names") is not None
                   and names else given)
        csv_kw.setdefault("skipinitialspace", skipinitialspace)
        if given is None and usecols:  # a missing column: our message (with close matches), not pandas'
            check_columns(pd.read_csv(csv, **{**csv_kw, "nrows": 0}), usecols, f"the CSV {csv}")
        if path is None:
            path = Path(csv).parent if is_file else Path(".")
        df = pd.read_csv(csv, usecols=usecols, **csv_kw)
        return cls.from_df(df, path=path, **kwargs)

    @classmethod
    def from_parquet(cls, file: str | os.PathLike | Any, path: str | os.PathLike | None = None,
                     procs: Any = DEFAULT_PROCS, cat_names: Sequence[str] | str | None = None,
                     cont_names: Sequence[str] | str | None = None, y_names: Sequence[str] | str | None = None,
                     y_block: Any = None, valid_idx: Sequence[int] | np.ndarray | None = None, *,
                     valid_pct: float = 0.2, seed: int | None = None, **dl_kwargs: Any) -> TabularDataLoaders:
        """Like `from_df` on a parquet file, read with pyarrow: only the named columns are read, and string
        columns come straight from the file's dictionary pages (no pandas strings, no Python objects).
        `cont_names=None` takes every other column. `path` defaults to the file's folder. A damaged or truncated
        file is a ValueError naming it."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        cat_names, y_names = _names(cat_names, "cat_names"), _names(y_names, "y_names")
        cont_given = None if cont_names is None else _names(cont_names, "cont_names")
        if valid_idx is None:
            RandomSplitter(valid_pct, seed)  # a bad valid_pct fails before the file is read
        schema = _read_parquet(file, pq.read_schema)
        cont_list = (cont_given if cont_given is not None
                     else [c for c in schema.names if c not in cat_names and c not in y_names])
        needed = cat_names + cont_list + y_names
        check_columns(pd.DataFrame(columns=schema.names), needed, f"the parquet file {file}")  # missing or twice
        nested = [(c, schema.field(c).type) for c in dict.fromkeys(needed) if pa.types.is_nested(schema.field(c).type)]
        if nested:
            raise ValueError(nested_type_error(nested[0][0], nested[0][1], f"the parquet file {file}"))
        as_dict = [c for c in dict.fromkeys(cat_names + y_names)
                   if pa.types.is_string(t := schema.field(c).type) or pa.types.is_large_string(t)]
        table = _read_parquet(file, pq.read_table, columns=list(dict.fromkeys(needed)), read_dictionary=as_dict)
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
        train = TabularLoader([x.index_select(0, tr) for x in tensors], bs=bs, shuffle=True, processor=processor)
        valid = (TabularLoader([x.index_select(0, va) for x in tensors], bs=val_bs or 2 * bs, processor=processor)
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
        return TabularLoader(tensors, bs=bs or default_bs, processor=self.processor)

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


_READ_CSV_KEYS = frozenset(inspect.signature(pd.read_csv).parameters) - {"filepath_or_buffer", "skipinitialspace"}
"""The keywords `from_csv` passes to `pd.read_csv` (the others go to `from_df`)."""


_FROM_DF_KEYS = frozenset(inspect.signature(TabularDataLoaders.from_df).parameters) - {"cls", "df", "path"}
"""The keywords `from_csv` passes to `from_df`."""


def _read_parquet(file: Any, read: Any, **kwargs: Any) -> Any:
    """`read(file, **kwargs)` (pyarrow's `read_schema` or `read_table`); a damaged, truncated or non-parquet file
    is a ValueError naming it, not pyarrow's bare error."""
    import pyarrow as pa

    try:
        return read(file, **kwargs)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"cannot read the parquet file {file}: it is damaged, truncated or not a parquet file "
                         f"({type(e).__name__}: {str(e).strip()}); write it again, e.g. df.to_parquet(path)") from e
