"""fastai's `DataBlock`: what the items are (`get_items`), how each becomes an input and a target (`blocks`,
`get_x`, `get_y`, `getters`), which validate (`splitter`) and the transforms (`item_tfms`, `batch_tfms`); then
`.datasets(source)`, `.dataloaders(source, bs=...)` and `.summary(source)`.

Everything that can be checked without reading an image is checked first, on the first item, naming the piece
and what it returned: the getters' values against their blocks, the split (both sets non-empty). The loaders
are the input block's own (an `ImageBlock` builds what `ImageDataLoaders` builds, pixel for pixel). fastai's
mid-level machinery (type-dispatched transforms, `TfmdLists`) is not used: a block is an object with a `check`,
a `setup`, an `encode` and, for inputs, a `dataloaders` builder.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .blocks import TargetBlock
from .transforms import RandomSplitter

__all__ = ["DataBlock", "BlockDatasets", "BlockSubset", "InputBlock", "show_at", "noop"]

_MSG = "If you wanted to compose several transforms in your getter, wrap them in a `Pipeline`."


def noop(x: Any = None, *args: Any, **kwargs: Any) -> Any:
    """The identity (fastai's `noop`): a getter or proc that changes nothing."""
    return x


class InputBlock:
    """What an input block has (`ImageBlock` is one): `check(value)` (why a value cannot be an input, or None),
    `create(value)` (the item as the datasets give it) and `dataloaders(...)`, which builds the loaders."""

    kind = "input"

    def check(self, value: Any) -> str | None:
        """Why `value` cannot be an input of this block (None: it can)."""
        return None

    def create(self, value: Any) -> Any:
        """The input as `DataBlock.datasets` gives it."""
        return value

    def dataloaders(self, dsets: BlockDatasets, path: Path, item_tfms: Any, batch_tfms: Any, **kwargs: Any) -> Any:
        """The training and validation loaders of `dsets` (one input of this block, one target)."""
        raise NotImplementedError(f"{type(self).__name__} builds no DataLoaders")


def _instance(b: Any, i: int) -> Any:
    if isinstance(b, type):
        b = b()
    elif callable(b) and not isinstance(b, (TargetBlock, InputBlock)):
        b = b()
    if not isinstance(b, (TargetBlock, InputBlock)):
        raise TypeError(f"DataBlock: blocks[{i}] is a {type(b).__name__}, not a block: use ImageBlock, CategoryBlock, "
                        "MultiCategoryBlock or RegressionBlock (fastai's TransformBlocks from fastai itself are not "
                        "understood)")
    return b


def _name(f: Any) -> str:
    """A function's name as a user wrote it (a splitter's inner function is named after its maker)."""
    name = getattr(f, "__qualname__", None)
    if not isinstance(name, str):
        return repr(f)
    return name.split(".<locals>.")[0] if name.endswith((".<locals>._inner", ".<locals>.<lambda>")) and not \
        name.startswith("test_") else name


def _short(v: Any) -> str:
    r = str(v) if isinstance(v, os.PathLike) else repr(v)
    return r if len(r) <= 200 else r[:197] + "..."


class DataBlock:
    """fastai's `DataBlock`: `blocks` (inputs first, `n_inp` of them; default all but the last), getters
    (`get_x`/`get_y`, or one per block in `getters`; default: the item itself), `get_items` (source -> items),
    `splitter` (items -> train/valid positions; default `RandomSplitter()`), `item_tfms`, `batch_tfms`."""

    def __init__(self, blocks: Sequence[Any] | None = None, dl_type: Any = None, getters: Sequence[Any] | None = None,
                 n_inp: int | None = None, item_tfms: Any = None, batch_tfms: Any = None, *,
                 get_items: Callable[[Any], Any] | None = None, splitter: Callable[[Any], Any] | None = None,
                 get_y: Any = None, get_x: Any = None) -> None:
        if dl_type is not None:
            raise TypeError("DataBlock(dl_type=...) is fastai's mid-level API, not supported: the input block "
                            "chooses the loaders")
        blocks = list(blocks) if blocks is not None else []
        if not blocks:
            raise ValueError("DataBlock needs blocks, e.g. blocks=(ImageBlock, CategoryBlock)")
        self.blocks = [_instance(b, i) for i, b in enumerate(blocks)]
        n = max(1, len(self.blocks) - 1) if n_inp is None else n_inp
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(self.blocks):
            raise ValueError(f"DataBlock: n_inp={n_inp!r} must be an int from 1 to {len(self.blocks)} (the number "
                             "of blocks)")
        self.n_inp = n
        for name, f in (("get_items", get_items), ("splitter", splitter)):
            if f is not None and not callable(f):
                raise TypeError(f"DataBlock: {name} must be a function, got {type(f).__name__}")
        self.get_items, self.splitter = get_items, splitter
        self.getters: list[Any] = list(getters) if getters is not None else [noop] * len(self.blocks)
        if len(self.getters) != len(self.blocks):
            raise ValueError(f"DataBlock: getters has {len(self.getters)} functions for {len(self.blocks)} blocks")
        if get_x is not None:
            gx = list(get_x) if isinstance(get_x, (list, tuple)) else [get_x]
            if len(gx) != self.n_inp:
                raise ValueError(f"get_x contains {len(gx)} functions, but must contain {self.n_inp} (one for each "
                                 f"input)\n{_MSG}")
            self.getters[:self.n_inp] = gx
        if get_y is not None:
            gy = list(get_y) if isinstance(get_y, (list, tuple)) else [get_y]
            n_targ = len(self.blocks) - self.n_inp
            if len(gy) != n_targ:
                raise ValueError(f"get_y contains {len(gy)} functions, but must contain {n_targ} (one for each "
                                 f"target)\n{_MSG}")
            self.getters[self.n_inp:] = gy
        bad = [i for i, g in enumerate(self.getters) if not callable(g)]
        if bad:
            raise TypeError(f"DataBlock: the getter of blocks[{bad[0]}] is a {type(self.getters[bad[0]]).__name__}, "
                            "not a function")
        self.get_x, self.get_y = get_x, get_y
        self.item_tfms, self.batch_tfms = item_tfms, batch_tfms

    @property
    def inputs(self) -> list:
        """The input blocks."""
        return self.blocks[:self.n_inp]

    @property
    def targets(self) -> list:
        """The target blocks."""
        return self.blocks[self.n_inp:]

    def new(self, item_tfms: Any = None, batch_tfms: Any = None) -> DataBlock:
        """This DataBlock with other `item_tfms` and `batch_tfms` (fastai's)."""
        self.item_tfms, self.batch_tfms = item_tfms, batch_tfms
        return self

    @classmethod
    def from_columns(cls, blocks: Sequence[Any] | None = None, getters: Sequence[Any] | None = None,
                     get_items: Callable[[Any], Any] | None = None, **kwargs: Any) -> DataBlock:
        """Items given as columns (one sequence per block, zipped into tuples); block `i` reads element `i`."""
        from .transforms import ItemGetter

        n = 2 if blocks is None else len(list(blocks))
        getters = list(getters) if getters is not None else [ItemGetter(i) for i in range(n)]

        def _zip(src: Any) -> list:
            cols = get_items(src) if get_items is not None else src
            return list(zip(*cols))

        return cls(blocks=blocks, getters=getters, get_items=_zip, **kwargs)

    # ---- items, splits, checks ---------------------------------------------------------------------------
    def _items(self, source: Any) -> Any:
        items = self.get_items(source) if self.get_items is not None else source
        if items is None or not hasattr(items, "__len__"):
            what = f"get_items ({_name(self.get_items)})" if self.get_items is not None else "the source"
            raise TypeError(f"DataBlock: {what} gave {_short(items)}, not a list of items")
        if not hasattr(items, "iloc") and not hasattr(items, "__getitem__"):
            items = list(items)
        if len(items) == 0:
            what = f"get_items ({_name(self.get_items)})" if self.get_items is not None else "the source"
            raise ValueError(f"DataBlock: {what} found no items in {_short(source)}")
        return items

    def _split(self, items: Any) -> tuple[np.ndarray, np.ndarray]:
        splitter = self.splitter or RandomSplitter()
        name = f"splitter ({_name(splitter)})" if self.splitter is not None else "the default RandomSplitter()"
        out = splitter(items)
        try:
            train, valid = (np.asarray(s, dtype=np.int64).reshape(-1) for s in out)
        except (TypeError, ValueError):
            raise TypeError(f"DataBlock: {name} must return (train positions, valid positions), got "
                            f"{_short(out)}") from None
        n = len(items)
        for s, what in ((train, "training"), (valid, "validation")):
            if len(s) == 0:
                raise ValueError(f"DataBlock: {name} left the {what} set empty ({len(train)} training, {len(valid)} "
                                 f"validation of {n} items): check what it splits on (e.g. the folder names for "
                                 "GrandparentSplitter, train_name='train', valid_name='valid')")
            if s.min() < 0 or s.max() >= n:
                raise ValueError(f"DataBlock: {name} returned {what} positions outside [0, {n})")
        return train, valid

    def _values(self, items: Any, idx: np.ndarray, k: int) -> list:
        g = self.getters[k]
        return [g(_item(items, int(i))) for i in idx]

    def _check_first(self, items: Any) -> None:
        first = _item(items, 0)
        for k, (block, g) in enumerate(zip(self.blocks, self.getters)):
            role = "get_x" if k < self.n_inp and self.get_x is not None else (
                "get_y" if k >= self.n_inp and self.get_y is not None else f"getters[{k}]")
            try:
                value = g(first)
            except Exception as e:
                raise ValueError(f"DataBlock: {role} ({_name(g)}) failed on the first item {_short(first)}: "
                                 f"{type(e).__name__}: {e}") from e
            why = block.check(value)
            if why is not None:
                raise TypeError(f"DataBlock: {role} ({_name(g)}) returned {_short(value)} for the first item "
                                f"{_short(first)}, but {type(block).__name__} needs {why}")

    # ---- the API -----------------------------------------------------------------------------------------
    def datasets(self, source: Any, verbose: bool = False) -> BlockDatasets:
        """The items of `source`, checked, split and with their targets encoded (`.train`, `.valid`, `.vocab`)."""
        if verbose:
            print(f"Collecting items from {source}")
        items = self._items(source)
        if verbose:
            print(f"Found {len(items)} items")
        splits = self._split(items)
        if verbose:
            print(f"2 datasets of sizes {len(splits[0])},{len(splits[1])}")
        self._check_first(items)
        return BlockDatasets(self, items, splits)

    def dataloaders(self, source: Any, path: str | Path = ".", verbose: bool = False, **kwargs: Any) -> Any:
        """The loaders for `source` (`bs`, `val_bs`, `shuffle`, `device`, `num_workers`, ... as the input block's
        loaders take them), with `item_tfms` and `batch_tfms`."""
        if not isinstance(self.inputs[0], InputBlock) or self.n_inp != 1 or len(self.targets) > 1:
            raise NotImplementedError(
                f"DataBlock.dataloaders builds loaders for one input block and at most one target; these blocks are "
                f"{[type(b).__name__ for b in self.blocks]} with n_inp={self.n_inp}. Use .datasets(source) and "
                "DataLoaders.from_dsets for other layouts")
        dsets = self.datasets(source, verbose=verbose)
        return self.inputs[0].dataloaders(dsets, Path(path), self.item_tfms, self.batch_tfms, **kwargs)

    def summary(self, source: Any, bs: int = 4, show_batch: bool = False, **kwargs: Any) -> str:
        """Print (and return) how the first item becomes a sample and a batch: each getter's value, each block's
        output, the split, the batch's shapes and the loss (fastai's `summary`); `show_batch` then plots it."""
        lines: list[str] = []
        say = lines.append
        say("Setting-up type transforms pipelines")
        items = self._items(source)
        say(f"Collecting items from {_short(source)}\nFound {len(items)} items")
        splits = self._split(items)
        say(f"2 datasets of sizes {len(splits[0])},{len(splits[1])}")
        self._check_first(items)
        dsets = BlockDatasets(self, items, splits)
        first = _item(items, int(splits[0][0]))
        say("\nBuilding one sample")
        for k, (block, g) in enumerate(zip(self.blocks, self.getters)):
            v = g(first)
            say(f"  Pipeline: {_name(g)} -> {type(block).__name__}\n    starting from\n      {_short(first)}")
            if g is not noop:
                say(f"    applying {_name(g)} gives\n      {_short(v)}")
            say(f"    applying {type(block).__name__} gives\n      {_short(dsets.train[0][k])}")
        say(f"\nFinal sample: {_short(dsets.train[0])}")
        dls = self.inputs[0].dataloaders(dsets, Path("."), self.item_tfms, self.batch_tfms, bs=bs) if (
            isinstance(self.inputs[0], InputBlock) and self.n_inp == 1 and len(self.targets) <= 1) else None
        if dls is not None:
            b = dls.one_batch()
            say("\nBuilding one batch")
            say(f"  item_tfms: {self.item_tfms!r}\n  batch_tfms: {self.batch_tfms!r}")
            say("  batch: " + ", ".join(f"{type(t).__name__} of shape {tuple(t.shape)} ({t.dtype})" for t in b))
            say(f"  loss_func: {getattr(dls, 'loss_func', None)!r}, c={getattr(dls, 'c', None)}")
        text = "\n".join(lines)
        print(text)
        if show_batch and dls is not None:
            dls.show_batch(**kwargs)
        return text

    def __repr__(self) -> str:
        return (f"DataBlock(blocks={[type(b).__name__ for b in self.blocks]}, n_inp={self.n_inp}, "
                f"getters={[_name(g) for g in self.getters]}, splitter={_name(self.splitter)})")


def _item(items: Any, i: int) -> Any:
    return items.iloc[i] if hasattr(items, "iloc") else items[i]


class BlockDatasets:
    """`DataBlock.datasets`: the items, the split, each block's values and the encoded targets; `.train` and
    `.valid` are datasets of `(input, ..., target, ...)` tuples (inputs as their block creates them, e.g. a
    `PILImage`; targets as tensors); `.vocab` is the last target's classes."""

    def __init__(self, dblock: DataBlock, items: Any, splits: tuple[np.ndarray, np.ndarray]) -> None:
        self.dblock, self.items, self.splits = dblock, items, splits
        self.n_inp = dblock.n_inp
        tr, va = splits
        self.values = [(dblock._values(items, tr, k), dblock._values(items, va, k)) for k in range(len(dblock.blocks))]
        # each TargetBlock's encoded (train, valid) tensors; other blocks (an ImageBlock in a target's place) are
        # created per item, as inputs are
        self.encoded: dict[int, tuple[Any, Any]] = {}
        for k, block in enumerate(dblock.blocks):
            if isinstance(block, TargetBlock):
                t_vals, v_vals = self.values[k]
                block.setup(t_vals, v_vals)
                self.encoded[k] = (block.encode(t_vals), block.encode(v_vals))
        self.targets = [self.encoded[k] for k in range(dblock.n_inp, len(dblock.blocks)) if k in self.encoded]
        self.train, self.valid = BlockSubset(self, 0), BlockSubset(self, 1)

    @property
    def vocab(self) -> list | None:
        """The classes of the last target (None for a regression)."""
        t = [b for b in self.dblock.targets if isinstance(b, TargetBlock)]
        return t[-1].vocab if t else None

    @property
    def target_block(self) -> TargetBlock | None:
        """The (last) target block that encodes targets."""
        t = [b for b in self.dblock.targets if isinstance(b, TargetBlock)]
        return t[-1] if t else None

    @property
    def subsets(self) -> tuple[BlockSubset, BlockSubset]:
        """(train, valid)."""
        return self.train, self.valid

    def __getitem__(self, i: int) -> BlockSubset:
        return self.subsets[i]

    def __len__(self) -> int:
        return len(self.splits[0]) + len(self.splits[1])

    def __repr__(self) -> str:
        return f"BlockDatasets(train={len(self.train)}, valid={len(self.valid)}, vocab={self.vocab})"


class BlockSubset(Dataset):
    """The training (0) or validation (1) items of a `BlockDatasets`: item `i` is the tuple of each block's
    output (inputs created by their block, targets encoded)."""

    def __init__(self, dsets: BlockDatasets, split: int) -> None:
        self.dsets, self.split = dsets, split

    def __len__(self) -> int:
        return len(self.dsets.splits[self.split])

    def __getitem__(self, i: int) -> tuple:
        d = self.dsets
        return tuple(d.encoded[k][self.split][i] if k in d.encoded else b.create(d.values[k][self.split][i])
                     for k, b in enumerate(d.dblock.blocks))

    @property
    def items(self) -> list:
        """This subset's items, in order."""
        return [_item(self.dsets.items, int(j)) for j in self.dsets.splits[self.split]]

    def decode(self, sample: tuple) -> tuple:
        """A sample with its targets decoded (class names, lists of class names, floats)."""
        return tuple(b.decode(v) if isinstance(b, TargetBlock) else v for b, v in zip(self.dsets.dblock.blocks, sample))

    def show(self, sample: tuple, ctx: Any = None, **kwargs: Any) -> Any:
        """Draw a sample's input titled with its decoded targets; returns the axes."""
        dec = self.decode(sample)
        x, ys = dec[0], dec[self.dsets.n_inp:]
        title = "; ".join(";".join(map(str, y)) if isinstance(y, list) else str(y) for y in ys)
        show = getattr(x, "show", None)
        if not callable(show) or "ctx" not in inspect.signature(show).parameters:
            raise TypeError(f"cannot draw a {type(x).__name__}")
        ax = show(ctx=ctx, **kwargs)
        ax.set_title(title)
        return ax


def show_at(ds: Any, idx: int, **kwargs: Any) -> Any:
    """Draw item `idx` of a dataset (fastai's `show_at`): `ds.show(ds[idx])`."""
    return ds.show(ds[idx], **kwargs)
