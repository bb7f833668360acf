"""The dataset and the loader: `ImageListDataset` (items read and passed through the item transforms),
`collate_images` and `ImageDL` (a torch `DataLoader` whose batches go to the device and through the batch
transforms there). Training batches are shuffled and the last partial one is dropped (fastai), so BatchNorm
never sees a batch of one; validation uses every image, in order.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .image_files import to_image_tensor
from .pipeline import ImagePipeline

__all__ = ["ImageListDataset", "ImageDL", "collate_images", "grey", "target_title"]


class ImageListDataset(Dataset):
    """Images (file paths, or PIL images / tensors) and their targets (None for unlabelled items): label indices,
    or a tensor with one row per item (multi-hot rows, regression values), read (grey with `channels=1`) and
    passed through the pipeline's item transforms (training or validation version)."""

    def __init__(self, items: Sequence[Any], labels: Sequence[Any] | Tensor | None, pipeline: ImagePipeline,
                 train: bool, backend: str | None = None, channels: int = 3) -> None:
        self.items = [str(o) if isinstance(o, os.PathLike) else o for o in items]
        self.labels: Any = None if labels is None else _targets(labels)
        self.pipeline, self.train, self.backend, self.channels = pipeline, train, backend, channels

    @property
    def samples(self) -> list[tuple[Any, Any]]:
        """(item, label index) pairs, as torchvision's ImageFolder has them."""
        return list(zip(self.items, self.labels if self.labels is not None else []))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple:
        img = to_image_tensor(self.items[i], self.backend)
        img = self.pipeline.item(grey(img) if self.channels == 1 else img, self.train)
        return (img,) if self.labels is None else (img, self.labels[i])

    def with_train(self, train: bool) -> ImageListDataset:
        """The same items with the training (True) or validation (False) item transforms."""
        return ImageListDataset(self.items, self.labels, self.pipeline, train, self.backend, self.channels)


def _targets(labels: Sequence[Any] | Tensor) -> list[int] | Tensor:
    """Label indices as ints; tensors (a tensor, or a list of tensor rows) as one tensor."""
    if isinstance(labels, Tensor):
        return labels.long().tolist() if labels.ndim == 1 and not labels.is_floating_point() else labels
    labels = list(labels)
    if labels and isinstance(labels[0], Tensor) and (labels[0].ndim or labels[0].is_floating_point()):
        return torch.stack(labels)
    return [int(y) for y in labels]


def grey(img: Tensor) -> Tensor:
    """A uint8 RGB image (3, H, W) as grey (1, H, W), with PIL's "L" weights and rounding (ITU-R 601-2)."""
    r, g, b = img.to(torch.int32)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[None]


def collate_images(batch: list[tuple]) -> tuple[Tensor, ...]:
    """Stack images (and labels); images of different sizes are an error that says how to resize them."""
    imgs = [b[0] for b in batch]
    shapes = {tuple(x.shape) for x in imgs}
    if len(shapes) > 1:
        ex = ", ".join("x".join(map(str, s)) for s in sorted(shapes)[:3])
        raise RuntimeError(f"images in a batch have different sizes ({ex}): pass item_tfms that make them "
                           "equal, e.g. item_tfms=Resize(224) or RandomResizedCrop(224, min_scale=0.35)")
    x = torch.stack(imgs)
    if len(batch[0]) == 1:
        return (x,)
    ys = [b[1] for b in batch]
    return x, (torch.stack(ys) if isinstance(ys[0], Tensor) else torch.tensor(ys))


class ImageDL:
    """A torch DataLoader whose batches go to the device and through the batch transforms (training or
    validation version)."""

    def __init__(self, dl: DataLoader, pipeline: ImagePipeline, train: bool, device: torch.device,
                 vocab: Sequence[Any] | None = None) -> None:
        self.dl, self.pipeline, self.train, self.device = dl, pipeline, train, device
        self.vocab = None if vocab is None else list(vocab)  # the class names, for show_batch's titles

    @property
    def dataset(self) -> Any:
        """The underlying dataset."""
        return self.dl.dataset

    @property
    def sampler(self) -> Any:
        """The underlying DataLoader's sampler (distributed training sets its epoch)."""
        return self.dl.sampler

    @property
    def bs(self) -> int:
        """Batch size."""
        return int(self.dl.batch_size or 1)

    @property
    def items(self) -> list:
        """The files (or other items) this loader reads, in dataset order."""
        return list(getattr(self.dl.dataset, "items", []))

    def show_batch(self, b: tuple | None = None, max_n: int = 9, nrows: int | None = None, ncols: int | None = None,
                   figsize: tuple[float, float] | None = None) -> Any:
        """fastai's `dls.train.show_batch()`: up to `max_n` images of batch `b` (default: this loader's first,
        with its transforms) titled with their labels when the batch has them; returns the figure."""
        if b is None:
            try:
                b = next(iter(self))
            except StopIteration:
                raise ValueError("this loader yields no batch: nothing to show") from None
        return show_image_batch(b, self.pipeline, self.vocab, max_n, nrows, ncols, figsize)

    def map_loader(self, f: Callable[[DataLoader], DataLoader]) -> ImageDL:
        """The same pipeline around `f(inner DataLoader)`; distributed training shards the inner loader so."""
        return ImageDL(f(self.dl), self.pipeline, self.train, self.device, self.vocab)

    def new(self, shuffle: bool = False, drop_last: bool = False, train: bool | None = None,
            bs: int | None = None) -> ImageDL:
        """A loader over the same items: unshuffled, every batch, training (`train=True`: augmented) or
        validation transforms (default: this loader's own)."""
        train = self.train if train is None else train
        ds = self.dl.dataset
        if isinstance(ds, ImageListDataset):
            ds = ds.with_train(train)
        dl = DataLoader(ds, bs or self.bs, shuffle=shuffle, drop_last=drop_last, num_workers=self.dl.num_workers,
                        collate_fn=self.dl.collate_fn, pin_memory=self.dl.pin_memory)
        return ImageDL(dl, self.pipeline, train, self.device, self.vocab)

    def __len__(self) -> int:
        return len(self.dl)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        nb = self.device.type == "cuda"
        for b in self.dl:
            x = self.pipeline.batch(b[0].to(self.device, non_blocking=nb), self.train)
            yield (x,) if len(b) == 1 else (x, b[1].to(self.device, non_blocking=nb))


def show_image_batch(b: tuple, pipeline: ImagePipeline, vocab: Sequence[Any] | None, max_n: int = 9,
                     nrows: int | None = None, ncols: int | None = None,
                     figsize: tuple[float, float] | None = None) -> Any:
    """Up to `max_n` images of batch `b`, un-normalized by `pipeline`, titled with their labels (class names from
    `vocab`, else the indices) when the batch has them; returns the figure."""
    from .show import show_images

    x, y = b[0], (b[1] if len(b) > 1 else None)
    n = min(max_n, len(x))
    imgs = pipeline.decode(x[:n].float()).cpu()
    titles = ["" if y is None else target_title(y[i], vocab) for i in range(n)]
    return show_images(imgs, titles, nrows=nrows, ncols=ncols, figsize=figsize)


def target_title(y: Tensor, vocab: Sequence[Any] | None) -> str:
    """A target as a title: a class name (or index), the classes of a multi-hot row joined by ';', or numbers."""
    if not y.is_floating_point() and y.ndim == 0:
        return str(vocab[int(y)]) if vocab is not None else str(int(y))
    if y.ndim == 1 and vocab is not None and len(y) == len(vocab):
        return ";".join(str(v) for v, on in zip(vocab, y.tolist()) if on > 0.5)
    return ", ".join(f"{float(v):.3g}" for v in y.reshape(-1))
