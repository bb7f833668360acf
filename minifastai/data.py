"""DataLoaders: a train and a valid loader, the device, and how to turn items into batches and back."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


def default_device() -> torch.device:
    """CUDA if available, else CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def to_device(batch: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Move every tensor of a (nested) batch to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, non_blocking) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    return batch


def shapes_of(batch: Any) -> str:
    """A short description of the shapes in a batch, for error messages."""
    if isinstance(batch, torch.Tensor):
        return f"{tuple(batch.shape)}"
    if isinstance(batch, (list, tuple)):
        return "(" + ", ".join(shapes_of(b) for b in batch) + ")"
    if isinstance(batch, dict):
        return "{" + ", ".join(f"{k}: {shapes_of(v)}" for k, v in batch.items()) + "}"
    return type(batch).__name__


class DataLoaders:
    """A training and a validation loader (any sized iterables of batch tuples) and their device."""

    def __init__(
        self,
        train: Iterable,
        valid: Iterable | None = None,
        device: torch.device | str | None = None,
        n_inp: int | None = None,
        vocab: Sequence | None = None,
    ) -> None:
        self.train, self.valid = train, valid
        self.device = torch.device(device) if device is not None else default_device()
        self.n_inp, self.vocab = n_inp, vocab

    @classmethod
    def from_dsets(
        cls,
        train_ds: Dataset,
        valid_ds: Dataset | None = None,
        bs: int = 64,
        shuffle: bool = True,
        num_workers: int = 0,
        device: torch.device | str | None = None,
        **kwargs: Any,
    ) -> DataLoaders:
        """Wrap two datasets in `torch.utils.data.DataLoader`s (valid: twice the batch size, unshuffled).

        `vocab` defaults to the training dataset's `classes` (torchvision datasets have one).
        """
        kwargs.setdefault("vocab", getattr(train_ds, "classes", None))
        dev = torch.device(device) if device is not None else default_device()
        pin = dev.type == "cuda"
        train = DataLoader(train_ds, bs, shuffle=shuffle, num_workers=num_workers, pin_memory=pin)
        valid = None if valid_ds is None else DataLoader(valid_ds, bs * 2, num_workers=num_workers, pin_memory=pin)
        return cls(train, valid, device=dev, **kwargs)

    def __getitem__(self, i: int) -> Iterable | None:
        return (self.train, self.valid)[i]

    def split_batch(self, batch: Sequence) -> tuple[tuple, tuple]:
        """Inputs and targets of a batch: the first `n_inp` items are inputs (default all but the last)."""
        if not isinstance(batch, (tuple, list)):
            batch = (batch,)
        n = self.n_inp if self.n_inp is not None else max(1, len(batch) - 1)
        return tuple(batch[:n]), tuple(batch[n:])

    def item_to_batch(self, item: Any) -> tuple:
        """The input batch (size 1) for one item; subclasses turn files or rows into tensors here."""
        items = item if isinstance(item, tuple) else (item,)
        return tuple(torch.as_tensor(x).unsqueeze(0) for x in items)

    def decode(self, pred: torch.Tensor) -> tuple[Any, Any]:
        """(decoded, index or raw value) for one prediction: a class name when there is a vocab."""
        if self.vocab is not None and pred.ndim == 1 and len(pred) == len(self.vocab):
            idx = int(pred.argmax())
            return self.vocab[idx], idx
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
