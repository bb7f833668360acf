"""Image data: reading files, listing them (`get_image_files`), and `ImageDataLoaders` with fastai's
constructors (`from_folder`, `from_name_func`, `from_name_re`, `from_path_func`, `from_path_re`,
`from_lists`, `from_df`, `from_csv`).

`ImageDataLoaders` keeps the class names, the transform pipeline, the data folder and the loss; the files are
read and labelled by `image_files`, batched by `loaders` (`ImageListDataset`, `ImageDL`), shown by `show`. Names
from those modules are importable from here as before.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..data import DataLoaders, default_device
from ..data.blocks import TARGET_KINDS, CategoryBlock
from ..losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat
from .export_format import target_from_state, vocab_from_state
from .image_files import (
    IMAGE_EXTENSIONS,
    _check_files,
    _class_folders,
    _class_samples,
    _regex_labeller,
    get_image_files,
    parent_label,
    read_image,
    to_image_tensor,
)
from .loaders import ImageDL, ImageListDataset, collate_images, grey, show_image_batch
from .pipeline import ImagePipeline
from .show import show_images
from .transforms import Normalize

__all__ = [
    "IMAGE_EXTENSIONS", "ImageDataLoaders", "ImageDL", "ImageListDataset", "get_image_files", "parent_label",
    "read_image", "to_image_tensor", "show_images", "collate_images",
]


_LOSSES: dict[str, Callable[[], Callable]] = {
    "category": CrossEntropyLossFlat, "multi_category": BCEWithLogitsLossFlat, "regression": MSELossFlat}


def _check_sizes(bs: Any, train_items: Sequence[Any]) -> None:
    if not (isinstance(bs, int) and not isinstance(bs, bool) and bs > 0):
        raise ValueError(f"bs={bs!r} must be a positive int")
    if len(train_items) == 0:
        raise ValueError("no training images")
    if len(train_items) < bs:
        raise ValueError(f"the training set has {len(train_items)} images, fewer than bs={bs}: with the last "
                         "partial batch dropped (as fastai does, so that BatchNorm never sees a batch of one) "
                         f"no batch would be left; pass bs={len(train_items)} or less")


def _random_split(n: int, valid_pct: float, seed: int | None) -> tuple[list[int], list[int]]:
    """fastai's RandomSplitter: a permutation (seeded with `seed` if given); the first `int(valid_pct * n)`
    indices are the validation set. The global RNG is not reseeded."""
    if not (isinstance(valid_pct, (int, float)) and 0 < valid_pct < 1):
        raise ValueError(f"valid_pct={valid_pct!r} must be a fraction between 0 and 1 (e.g. 0.2)")
    cut = int(valid_pct * n)
    if cut == 0:
        need = 1
        while int(valid_pct * need) < 1:
            need += 1
        raise ValueError(f"valid_pct={valid_pct} of {n} image(s) leaves no validation image (int({valid_pct} * {n}) "
                         f"= 0): use at least {need} images, or a larger valid_pct")
    if cut >= n:
        raise ValueError(f"valid_pct={valid_pct} of {n} image(s) leaves no training image")
    g = None if seed is None else torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g).tolist()
    return perm[cut:], perm[:cut]


_FLAG_STRINGS = {"true": True, "false": False, "1": True, "0": False}


def _valid_flags(values: Sequence[Any], index: Sequence[Any], valid_col: Any) -> list[bool]:
    """`from_df`'s `valid_col` as booleans: bools, 0/1 and the strings "True"/"False" (any case; a CSV read with
    dtype=str gives them); NaN, None or any other value is an error naming the rows."""
    out: list[bool] = []
    bad: list[tuple[Any, Any]] = []
    for row, v in zip(index, values):
        flag = v.item() if hasattr(v, "item") and not isinstance(v, str) else v  # numpy scalars
        if isinstance(flag, str):
            flag = _FLAG_STRINGS.get(flag.strip().lower())
        elif not isinstance(flag, bool):
            flag = bool(flag) if isinstance(flag, (int, float)) and flag in (0, 1) else None
        if flag is None:
            bad.append((row, v))
        out.append(bool(flag))
    if bad:
        ex = ", ".join(f"{r!r}: {v!r}" for r, v in bad[:5])
        raise ValueError(f"valid_col={valid_col!r} must hold True/False (or 1/0, or the strings 'True'/'False'); "
                         f"{len(bad)} row(s) hold something else (row: value, e.g. {ex}). Fill or fix them, e.g. "
                         f"df[{valid_col!r}] = df[{valid_col!r}].fillna(False)")
    return out


class ImageDataLoaders(DataLoaders):
    """Training and validation loaders of labelled images, with the class names (`vocab`), the transform
    pipeline (kept for inference and exports), the data folder (`path`) and the loss for the task."""

    def __init__(self, train: Any, valid: Any = None, device: torch.device | str | None = None,
                 vocab: Sequence[Any] | None = None, pipeline: ImagePipeline | None = None,
                 path: str | os.PathLike = ".", target: str = "category", n_out: int | None = None,
                 channels: int = 3) -> None:
        super().__init__(train, valid, device=device, n_inp=1, vocab=vocab)
        if target not in TARGET_KINDS:
            raise ValueError(f"target={target!r} must be one of {TARGET_KINDS}")
        if channels not in (1, 3):
            raise ValueError(f"channels={channels!r} must be 1 (grey) or 3 (RGB)")
        self.pipeline = pipeline or ImagePipeline()
        self.path = Path(path)
        self.target, self.n_out, self.channels = target, n_out, channels
        self.loss_func: Callable = _LOSSES[target]()

    @property
    def device(self) -> torch.device:
        """Where batches go (their transforms run there too); setting it moves the loaders' output."""
        return self._device

    @device.setter
    def device(self, device: torch.device | str) -> None:
        self._device = torch.device(device)
        for dl in (self.train, self.valid):
            if isinstance(dl, ImageDL):
                dl.device = self._device

    @property
    def c(self) -> int:
        """The model's number of outputs (fastai's `dls.c`): the number of classes, or a regression's outputs."""
        return int(self.n_out) if self.target == "regression" and self.n_out else len(self.vocab or [])

    @property
    def train_ds(self) -> Any:
        """The training dataset (items, labels, item transforms)."""
        return getattr(self.train, "dataset", None)

    @property
    def valid_ds(self) -> Any:
        """The validation dataset."""
        return getattr(self.valid, "dataset", None)

    def one_batch(self) -> tuple:
        """The first training batch (on the device, transformed)."""
        if self.train is None:
            raise ValueError("these DataLoaders have no training data (an inference learner from load_learner)")
        return next(iter(self.train))

    # ---- constructors ----------------------------------------------------------------------------
    @classmethod
    def from_items(cls, path: str | os.PathLike, train_items: Sequence[Any], train_labels: Sequence[Any],
                   valid_items: Sequence[Any], valid_labels: Sequence[Any], vocab: Sequence[Any] | None = None,
                   item_tfms: Any = None, batch_tfms: Any = None, bs: int = 64, val_bs: int | None = None,
                   shuffle: bool = True, device: torch.device | str | None = None,
                   num_workers: int | None = None, backend: str | None = None, channels: int = 3
                   ) -> ImageDataLoaders:
        """Loaders from explicit training and validation items and labels (what every constructor ends in).

        The vocab is the sorted set of labels; a label seen only in the validation set is added with a
        warning. Training batches are shuffled with the last partial batch dropped; validation batches
        (`val_bs`, default `bs`) keep every item in order. `channels=1` reads the images as grey (N, 1, H, W).
        """
        _check_sizes(bs, train_items)
        for labels, what in ((train_labels, "training"), (valid_labels, "validation")):
            bad = [(i, y) for i, y in enumerate(labels) if y is None or (isinstance(y, float) and y != y)]
            if bad:
                raise ValueError(f"{len(bad)} {what} labels are missing (None/NaN), e.g. item "
                                 f"{bad[0][0]}: {list(train_items if what == 'training' else valid_items)[bad[0][0]]}")
        block = CategoryBlock(vocab)
        block.setup(train_labels, valid_labels)
        t_enc, v_enc = block.encode(train_labels), block.encode(valid_labels)
        return cls.from_targets(path, train_items, t_enc, valid_items, v_enc, block.vocab, "category", None,
                                item_tfms, batch_tfms, bs, val_bs, shuffle, device, num_workers, backend, channels)

    @classmethod
    def from_targets(cls, path: str | os.PathLike, train_items: Sequence[Any], train_targets: Tensor,
                     valid_items: Sequence[Any], valid_targets: Tensor, vocab: Sequence[Any] | None = None,
                     target: str = "category", n_out: int | None = None, item_tfms: Any = None,
                     batch_tfms: Any = None, bs: int = 64, val_bs: int | None = None, shuffle: bool = True,
                     device: torch.device | str | None = None, num_workers: int | None = None,
                     backend: str | None = None, channels: int = 3) -> ImageDataLoaders:
        """Loaders from items and their encoded targets: class indices (`target="category"`), multi-hot float
        rows (`"multi_category"`, classes `vocab`) or floats (`"regression"`, `n_out` outputs); the loss follows
        the target (`CrossEntropyLossFlat`, `BCEWithLogitsLossFlat`, `MSELossFlat`)."""
        _check_sizes(bs, train_items)
        if target not in TARGET_KINDS:
            raise ValueError(f"target={target!r} must be one of {TARGET_KINDS}")
        for items, t, what in ((train_items, train_targets, "training"), (valid_items, valid_targets, "validation")):
            if len(t) != len(items):
                raise ValueError(f"{len(items)} {what} items but {len(t)} targets: give one target per item")
        val_bs = bs if val_bs is None else val_bs
        pipeline = ImagePipeline(item_tfms, batch_tfms)
        dev = torch.device(device) if device is not None else default_device()
        if num_workers is None:
            num_workers = min(8, os.cpu_count() or 1) if dev.type == "cuda" else 0
        kw: dict[str, Any] = {"num_workers": num_workers, "collate_fn": collate_images,
                              "pin_memory": dev.type == "cuda", "persistent_workers": num_workers > 0}
        vocab = None if vocab is None else list(vocab)
        train_ds = ImageListDataset(train_items, train_targets, pipeline, True, backend, channels)
        train_dl = DataLoader(train_ds, bs, shuffle=shuffle, drop_last=True, **kw)
        valid = None
        if len(valid_items):
            valid_ds = ImageListDataset(valid_items, valid_targets, pipeline, False, backend, channels)
            valid = ImageDL(DataLoader(valid_ds, val_bs, **kw), pipeline, False, dev, vocab)
        return cls(ImageDL(train_dl, pipeline, True, dev, vocab), valid, dev, vocab, pipeline, path, target, n_out,
                   channels)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, train: str = "train", valid: str = "valid",
                    valid_pct: float | None = None, seed: int | None = None, vocab: Sequence[Any] | None = None,
                    item_tfms: Any = None, batch_tfms: Any = None, **kwargs: Any) -> ImageDataLoaders:
        """An ImageNet-style tree: `path/train/<class>/...` and `path/valid/<class>/...`, or with `valid_pct`
        every image under `path`, labelled by its folder and split at random (`seed`), as fastai.

        `item_tfms` run per image on uint8 tensors (e.g. `Resize(224)`), `batch_tfms` per batch on the
        device (e.g. `aug_transforms()`); other keywords (`bs`, `val_bs`, `device`, `num_workers`, ...)
        as `from_items`.
        """
        root = Path(path).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        if valid_pct is not None:
            files = get_image_files(root)
            if not files:
                raise FileNotFoundError(f"no images under {root} (image files end in {', '.join(IMAGE_EXTENSIONS)})")
            labels = [parent_label(f) for f in files]
            t_idx, v_idx = _random_split(len(files), valid_pct, seed)
            return cls.from_items(root, [files[i] for i in t_idx], [labels[i] for i in t_idx],
                                  [files[i] for i in v_idx], [labels[i] for i in v_idx], vocab, item_tfms,
                                  batch_tfms, **kwargs)
        for name, what in ((train, "train"), (valid, "valid")):
            if not (root / name).is_dir():
                raise FileNotFoundError(
                    f"{what} folder {root / name} does not exist (folders in {root}: {_class_folders(root)}); "
                    f"pass {what}='<folder name>', or valid_pct=0.2 to split the images under {root} at random")
        t_items, t_labels = _class_samples(root / train, "train")
        v_items, v_labels = _class_samples(root / valid, "valid")
        return cls.from_items(root, t_items, t_labels, v_items, v_labels, vocab, item_tfms, batch_tfms, **kwargs)

    @classmethod
    def from_path_func(cls, path: str | os.PathLike, fnames: Sequence[Any], label_func: Callable[[Any], Any],
                       valid_pct: float = 0.2, seed: int | None = None, item_tfms: Any = None,
                       batch_tfms: Any = None, **kwargs: Any) -> ImageDataLoaders:
        """Image files `fnames` labelled by `label_func(Path)`, split at random (`valid_pct`, `seed`)."""
        files = _check_files(fnames, Path(path))
        labels = [label_func(Path(f)) for f in files]
        t_idx, v_idx = _random_split(len(files), valid_pct, seed)
        return cls.from_items(path, [files[i] for i in t_idx], [labels[i] for i in t_idx],
                              [files[i] for i in v_idx], [labels[i] for i in v_idx], kwargs.pop("vocab", None),
                              item_tfms, batch_tfms, **kwargs)

    @classmethod
    def from_name_func(cls, path: str | os.PathLike, fnames: Sequence[Any], label_func: Callable[[str], Any],
                       **kwargs: Any) -> ImageDataLoaders:
        """Image files labelled by `label_func(file name)` (e.g. `lambda f: f[0].isupper()` for the pets)."""
        return cls.from_path_func(path, fnames, lambda p: label_func(p.name), **kwargs)

    @classmethod
    def from_path_re(cls, path: str | os.PathLike, fnames: Sequence[Any], pat: str, **kwargs: Any
                     ) -> ImageDataLoaders:
        """Image files labelled by the first group of the regular expression `pat` searched in the full path."""
        return cls.from_path_func(path, fnames, _regex_labeller(pat, on_name=False), **kwargs)

    @classmethod
    def from_name_re(cls, path: str | os.PathLike, fnames: Sequence[Any], pat: str, **kwargs: Any
                     ) -> ImageDataLoaders:
        """Image files labelled by the first group of `pat` searched in the file name (r'^(.*)_\\d+.jpg$')."""
        return cls.from_path_func(path, fnames, _regex_labeller(pat, on_name=True), **kwargs)

    @classmethod
    def from_lists(cls, path: str | os.PathLike, fnames: Sequence[Any], labels: Sequence[Any],
                   valid_pct: float = 0.2, seed: int | None = None, item_tfms: Any = None, batch_tfms: Any = None,
                   **kwargs: Any) -> ImageDataLoaders:
        """Image files and their labels as two lists, split at random."""
        if len(fnames) != len(labels):
            raise ValueError(f"{len(fnames)} fnames but {len(labels)} labels: give one label per file")
        files = _check_files(fnames, Path(path))
        labels = list(labels)
        t_idx, v_idx = _random_split(len(files), valid_pct, seed)
        return cls.from_items(path, [files[i] for i in t_idx], [labels[i] for i in t_idx],
                              [files[i] for i in v_idx], [labels[i] for i in v_idx], kwargs.pop("vocab", None),
                              item_tfms, batch_tfms, **kwargs)

    @classmethod
    def from_df(cls, df: Any, path: str | os.PathLike = ".", valid_pct: float = 0.2, seed: int | None = None,
                fn_col: int | str = 0, folder: str | None = None, suff: str = "", label_col: int | str = 1,
                label_delim: str | None = None, y_block: Any = None, valid_col: int | str | None = None,
                item_tfms: Any = None, batch_tfms: Any = None, **kwargs: Any) -> ImageDataLoaders:
        """A DataFrame with a file column (`fn_col`, relative to `path/folder`, plus `suff`) and a label
        column; split by the boolean `valid_col` (True/False, 1/0, or the strings "True"/"False"; anything else, NaN
        included, is an error naming the rows), or at random (`valid_pct`, `seed`)."""
        if label_delim is not None or y_block is not None:
            raise NotImplementedError("multi-label and regression targets (label_delim=, y_block=) are not "
                                      "supported yet: minifastai's vision learners are single-label classifiers")

        def col(c: int | str) -> list:
            if isinstance(c, int) and not isinstance(c, bool):
                if not -df.shape[1] <= c < df.shape[1]:
                    raise ValueError(f"column {c} is out of range: the DataFrame has {df.shape[1]} columns "
                                     f"{list(df.columns)}")
                return list(df.iloc[:, c])
            if c not in df.columns:
                raise KeyError(f"column {c!r} is not in the DataFrame (columns: {list(df.columns)})")
            return list(df[c])

        pref = Path(path) if folder is None else Path(path) / folder
        files = _check_files([pref / f"{f}{suff}" for f in col(fn_col)], Path(path))
        labels = col(label_col)
        if valid_col is None:
            t_idx, v_idx = _random_split(len(files), valid_pct, seed)
        else:
            is_valid = _valid_flags(col(valid_col), list(df.index), valid_col)
            v_idx = [i for i, v in enumerate(is_valid) if v]
            t_idx = [i for i, v in enumerate(is_valid) if not v]
            if not v_idx:
                raise ValueError(f"valid_col={valid_col!r} marks no row as validation")
            if not t_idx:
                raise ValueError(f"valid_col={valid_col!r} marks every row as validation: no training images")
        return cls.from_items(path, [files[i] for i in t_idx], [labels[i] for i in t_idx],
                              [files[i] for i in v_idx], [labels[i] for i in v_idx], kwargs.pop("vocab", None),
                              item_tfms, batch_tfms, **kwargs)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, csv_fname: str = "labels.csv", header: Any = "infer",
                 delimiter: str | None = None, **kwargs: Any) -> ImageDataLoaders:
        """`from_df` on `path/csv_fname` (read with pandas)."""
        import pandas as pd

        kw = {} if delimiter is None else {"delimiter": delimiter}
        df = pd.read_csv(Path(path) / csv_fname, header=header, **kw)
        return cls.from_df(df, path=path, **kwargs)

    @classmethod
    def from_export_state(cls, state: dict, device: Any = "cpu", source: str = "the export") -> ImageDataLoaders:
        """Inference-only dls (no loaders) with the classes and transforms stored by `export_state` (read by
        `export_format`)."""
        target, n_out, channels = target_from_state(state, source)
        return cls(None, None, device=device, vocab=vocab_from_state(state, source),
                   pipeline=ImagePipeline.from_export_state(state, source), target=target, n_out=n_out,
                   channels=channels)

    # ---- inference ---------------------------------------------------------------------------------
    def normalize(self, mean: Sequence[float], std: Sequence[float]) -> ImageDataLoaders:
        """Normalize batches with these statistics (last batch transform) unless already normalized."""
        cur = self.pipeline.norm
        if cur is None:
            self.pipeline.norm = Normalize(mean, std)
        elif not (torch.allclose(torch.tensor(cur.mean), torch.tensor(mean, dtype=torch.float32)) and
                  torch.allclose(torch.tensor(cur.std), torch.tensor(std, dtype=torch.float32))):
            warnings.warn(f"dls is already normalized with mean={cur.mean}, std={cur.std}; keeping that rather "
                          f"than mean={list(mean)}, std={list(std)}", stacklevel=2)
        return self

    def item_to_batch(self, item: Any) -> tuple[Tensor]:
        """A file path, PIL image or (C, H, W) tensor as a transformed batch of one image."""
        img = to_image_tensor(item)
        img = self.pipeline.item(grey(img) if self.channels == 1 else img, train=False)
        return (self.pipeline.batch(img[None].to(self.device), train=False),)

    def test_dl(self, items: Sequence[Any], bs: int = 64, num_workers: int = 0,  # type: ignore[override]
                with_labels: bool = False, **kwargs: Any) -> ImageDL:
        """Batches of new images (file paths, PIL images or tensors) with the validation transforms: inputs only,
        or with `with_labels` also the labels, for items of these loaders (files whose label the data knows).
        fastai's other keywords (`rm_type_tfms`, `process`) are accepted and change nothing for images."""
        unknown = set(kwargs) - {"rm_type_tfms", "process"}
        if unknown:
            raise TypeError(f"test_dl got unexpected keyword arguments {sorted(unknown)}")
        items = [str(o) if isinstance(o, os.PathLike) else o for o in items]
        labels = self._labels_of(items) if with_labels else None
        ds = ImageListDataset(items, labels, self.pipeline, False, channels=self.channels)
        dl = DataLoader(ds, bs, num_workers=num_workers, collate_fn=collate_images,
                        pin_memory=self.device.type == "cuda")
        return ImageDL(dl, self.pipeline, False, self.device, self.vocab)

    def _labels_of(self, items: list[Any]) -> list[Any]:
        """The label index of each item, looked up in the training and validation sets; an item they do not hold
        is an error naming it (its label is unknown)."""
        known: dict[Any, Any] = {}
        for ds in (self.train_ds, self.valid_ds):
            if isinstance(ds, ImageListDataset) and ds.labels is not None:
                known.update((x, y) for x, y in zip(ds.items, ds.labels) if isinstance(x, str))
        missing = [x for x in items if not isinstance(x, str) or x not in known]
        if missing:
            raise ValueError(f"test_dl(with_labels=True): {len(missing)} of {len(items)} items are not files of these "
                             f"loaders, so their labels are unknown (first: {missing[0]!r:.80})")
        return [known[x] for x in items]

    def export_state(self) -> dict:
        """Classes and the whole transform pipeline, as plain data (the `dls` entry of an export; the pipeline's
        part is `export_format.pipeline_state`)."""
        return {**super().export_state(), **self.pipeline.export_state(), "target": self.target, "n_out": self.n_out,
                "channels": self.channels}

    def decode(self, pred: Tensor) -> tuple[Any, Any]:
        """(decoded, index or raw value) for one prediction: the class name and its index (a 0-d tensor); for a
        multi-label target the class names whose probability passes 0.5 and the boolean row (fastai's); for a
        regression the values."""
        if self.target == "multi_category":
            on = pred > 0.5
            return [v for v, o in zip(self.vocab or [], on.tolist()) if o], on
        if self.target == "regression":
            return pred, pred
        return super().decode(pred)

    def show_batch(self, b: tuple | None = None, max_n: int = 9, nrows: int | None = None, ncols: int | None = None,
                   figsize: tuple[float, float] | None = None, ds_idx: int = 0) -> Any:
        """Plot up to `max_n` images of a batch (default: the first training batch, augmented) with their
        labels; returns the figure."""
        if b is None:
            dl = self[ds_idx]
            if dl is None:
                raise ValueError(f"dls[{ds_idx}] is empty: nothing to show")
            b = next(iter(dl))
        return show_image_batch(b, self.pipeline, self.vocab, max_n, nrows, ncols, figsize)
