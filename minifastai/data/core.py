"""DataLoaders: a train and a valid loader, the device, and how to turn items into batches and back."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..torch_core import to_device
from ..transform import Datasets


def default_device() -> torch.device:
    """CUDA if available, else CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def n_batches(dl: Any) -> int | None:
    """`len(dl)`, or None for a loader without a length."""
    return len(dl) if dl is not None and hasattr(dl, "__len__") else None


def shapes_of(batch: Any) -> str:
    """A short description of the shapes in a batch, for error messages."""
    if isinstance(batch, torch.Tensor):
        return f"{tuple(batch.shape)}"
    if isinstance(batch, (list, tuple)):
        return "(" + ", ".join(shapes_of(b) for b in batch) + ")"
    if isinstance(batch, dict):
        return "{" + ", ".join(f"{k}: {shapes_of(v)}" for k, v in batch.items()) + "}"
    return type(batch).__name__


def check_loader(dl: Any, name: str) -> None:
    """A loader must be None or a re-iterable collection of batches (a DataLoader, a list of tuples, a stream
    object whose `__iter__` starts over). One without `len()` trains with `fit` at a constant LR; schedules,
    which need the number of batches per epoch, say so when the fit starts."""
    if dl is None:
        return
    if isinstance(dl, Iterator):
        raise TypeError(f"dls.{name} is a {type(dl).__name__}, which can be iterated only once, so every epoch after "
                        "the first would be empty: pass a DataLoader or a list of batches")
    if not isinstance(dl, Iterable):
        raise TypeError(f"dls.{name} must be an iterable of batches (e.g. a torch DataLoader), not "
                        f"{type(dl).__name__}")


def _dataset(dl: Any, name: str) -> Any:
    if dl is None:
        raise AttributeError(f"dls.{name} is None, so there is no dls.{name}_ds")
    if not hasattr(dl, "dataset"):
        raise AttributeError(f"dls.{name} is a {type(dl).__name__} without a .dataset (only torch DataLoaders and "
                             f"loaders that keep their dataset have dls.{name}_ds)")
    return dl.dataset


class TfmdDL(DataLoader):
    """fastai's `TfmdDL` as a `torch.utils.data.DataLoader` taking fastai's keywords (`bs`, `shuffle`,
    `drop_last`, `num_workers`), with `one_batch()`, `new(**changes)` and `bs`. It applies no transforms: a
    minifastai pipeline transforms in the dataset or in `dls`."""

    def __init__(self, dataset: Dataset, bs: int = 64, shuffle: bool = False, num_workers: int | None = 0,
                 drop_last: bool = False, **kwargs: Any) -> None:
        if isinstance(bs, bool) or not isinstance(bs, int) or bs < 1:
            raise ValueError(f"TfmdDL: bs must be a positive integer (items per batch), got {bs!r}")
        super().__init__(dataset, batch_size=bs, shuffle=shuffle, num_workers=num_workers or 0,
                         drop_last=drop_last, **kwargs)
        self._fastai_args = dict(bs=bs, shuffle=shuffle, num_workers=num_workers, drop_last=drop_last, **kwargs)

    @property
    def bs(self) -> int:
        """Items per batch."""
        return int(self.batch_size or 0)

    def one_batch(self) -> Any:
        """The first batch."""
        try:
            return next(iter(self))
        except StopIteration:
            raise ValueError(f"TfmdDL yielded no batch ({len(self.dataset)} items, bs={self.bs}, "  # type: ignore[arg-type]
                             f"drop_last={self.drop_last})") from None

    def new(self, **changes: Any) -> TfmdDL:
        """The same loader over the same dataset with some keywords changed (`dl.new(shuffle=False)`)."""
        return type(self)(self.dataset, **{**self._fastai_args, **changes})

    def decode_batch(self, b: Sequence, max_n: int = 9) -> list[tuple]:
        """The first `max_n` items of batch `b` (a tuple of batched tensors), each decoded through the dataset's
        pipelines when it is a `Datasets` (fastai's `decode_batch`)."""
        dec = self.dataset.decode if isinstance(self.dataset, Datasets) else None
        samples = list(zip(*b))[:max_n]
        return [dec(s) if dec is not None else tuple(s) for s in samples]

    def test_dl(self, items: Iterable, **kwargs: Any) -> TfmdDL:
        """A loader over new `items` through the input pipelines of this loader's `Datasets`, in order."""
        if not isinstance(self.dataset, Datasets):
            raise TypeError(f"test_dl needs a TfmdDL over a Datasets (its input pipelines); this one loads a "
                            f"{type(self.dataset).__name__}")
        return TfmdDL(self.dataset.test_set(items), **{"bs": self.bs, "num_workers": 0, **kwargs})


class DataLoaders:
    """A training and a validation loader (sized, re-iterable collections of batch tuples) and their device.

    `train=None` makes an inference-only `DataLoaders` (what `load_learner` builds). `path` is where the data
    lives (the learner's default `path`); `loss_func` is the loss the data's task calls for (None when unknown).
    """

    loss_func: Callable | None = None
    """The loss for this data's task (classification, regression), used by `Learner(dls, model)`; None here."""

    def __init__(
        self,
        train: Iterable | None,
        valid: Iterable | None = None,
        device: torch.device | str | None = None,
        n_inp: int | None = None,
        vocab: Sequence | None = None,
        path: str | Path = ".",
    ) -> None:
        for name, dl in (("train", train), ("valid", valid)):
            check_loader(dl, name)
        self.train, self.valid = train, valid
        self.device = torch.device(device) if device is not None else default_device()
        self.n_inp, self.vocab, self.path = n_inp, vocab, Path(path)

    @classmethod
    def from_dsets(
        cls,
        train_ds: Dataset,
        valid_ds: Dataset | None = None,
        bs: int = 64,
        shuffle: bool = True,
        drop_last: bool = True,
        num_workers: int = 0,
        device: torch.device | str | None = None,
        **kwargs: Any,
    ) -> DataLoaders:
        """Wrap two datasets in `torch.utils.data.DataLoader`s of `bs` items, as fastai's `from_dsets`: the
        training loader shuffled with its last partial batch dropped, the validation loader in order, complete.
        (A training set smaller than `bs` then gives no batch: `fit` and `one_batch` say so.)

        `vocab` defaults to the training dataset's `classes` (torchvision datasets have one).
        """
        if isinstance(bs, bool) or not isinstance(bs, int) or bs < 1:
            raise ValueError(f"bs must be a positive integer (items per batch), got {bs!r}")
        kwargs.setdefault("vocab", getattr(train_ds, "classes", None))
        dev = torch.device(device) if device is not None else default_device()
        pin = dev.type == "cuda"
        train = DataLoader(train_ds, bs, shuffle=shuffle, drop_last=drop_last, num_workers=num_workers,
                           pin_memory=pin)
        valid = None if valid_ds is None else DataLoader(valid_ds, bs, num_workers=num_workers, pin_memory=pin)
        return cls(train, valid, device=dev, **kwargs)

    @property
    def train_ds(self) -> Any:
        """The training loader's dataset (`dls.train.dataset`)."""
        return _dataset(self.train, "train")

    @property
    def valid_ds(self) -> Any:
        """The validation loader's dataset (`dls.valid.dataset`)."""
        return _dataset(self.valid, "valid")

    def one_batch(self) -> Any:
        """The first batch of the training loader, on `dls.device` (to look at shapes and values)."""
        if self.train is None:
            raise ValueError("dls.train is None (an inference-only DataLoaders, e.g. from load_learner): there is no "
                             "training batch")
        try:
            b = next(iter(self.train))
        except StopIteration:
            raise ValueError("dls.train yielded no batch: check the dataset and the batch size (drop_last=True with "
                             "fewer items than bs yields nothing)") from None
        return to_device(b, self.device)

    def __getitem__(self, i: int) -> Iterable | None:
        return (self.train, self.valid)[i]

    def split_batch(self, batch: Sequence) -> tuple[tuple, tuple]:
        """Inputs and targets of a batch: the first `n_inp` items are inputs (default all but the last)."""
        if not isinstance(batch, (tuple, list)):
            batch = (batch,)
        n = self.n_inp if self.n_inp is not None else max(1, len(batch) - 1)
        return tuple(batch[:n]), tuple(batch[n:])

    @property
    def tfmd_dataset(self) -> Datasets | None:
        """The fastai `Datasets` behind the loaders (the training one first), or None: `predict` decodes with it."""
        for dl in (self.train, self.valid):
            if isinstance(getattr(dl, "dataset", None), Datasets):
                return dl.dataset  # type: ignore[union-attr]
        return None

    def item_to_batch(self, item: Any) -> tuple:
        """The input batch (size 1) for one item (through the input pipelines of a `Datasets`); subclasses turn
        files or rows into tensors here."""
        ds = self.tfmd_dataset
        if ds is not None:
            return tuple(torch.utils.data.default_collate([ds.test_set([item])[0]]))
        items = item if isinstance(item, tuple) else (item,)
        return tuple(torch.as_tensor(x).unsqueeze(0) for x in items)

    def decode(self, pred: torch.Tensor) -> tuple[Any, Any]:
        """(decoded, index or raw value) for one prediction: with a vocab, the class name and its index as a
        0-d tensor (fastai's `pred_idx`, so `pred_idx.item()` works)."""
        if self.vocab is not None and pred.ndim == 1 and len(pred) == len(self.vocab):
            idx = pred.argmax()
            return self.vocab[int(idx)], idx
        return pred, pred

    def test_dl(self, items: Iterable, bs: int = 64) -> list[tuple]:
        """Batches of inputs (no targets) for a list of items."""
        items = list(items)
        return [
            tuple(torch.cat(t) for t in zip(*(self.item_to_batch(x) for x in items[i : i + bs])))
            for i in range(0, len(items), bs)
        ]

    def export_state(self) -> dict:
        """What inference needs from the data (plain types only), saved by `Learner.export`."""
        return {"vocab": list(self.vocab) if self.vocab is not None else None, "n_inp": self.n_inp}

    def __repr__(self) -> str:
        def n(dl: Any) -> str:
            return "None" if dl is None else f"{len(dl)} batches" if hasattr(dl, "__len__") else "unsized"

        return f"DataLoaders(train={n(self.train)}, valid={n(self.valid)}, device={self.device})"
