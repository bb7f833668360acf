"""Interpretation of predictions, under fastai's module name (`fastai.interpret`): `Interpretation` (per-item losses
of a data set, `top_losses`, inputs/predictions/targets of any items by index, `plot_top_losses`, `show_results`)
and `ClassificationInterpretation` (`confusion_matrix`, `most_confused`, `plot_confusion_matrix`,
`print_classification_report`), built on the learner's `get_preds`.

One pass over the data (in order, every item) gives the loss of every item; the inputs, predictions and targets
of the items asked for are recomputed on demand from a loader over just those items, as fastai does. Drawing
depends on the data: `plot_top_losses` and `show_results` dispatch on the loader's type (`minifastai.vision`
registers image loaders).
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, Subset

from .inference import activation_fn, decode_preds, in_order, is_shuffled, loader_of, per_item_loss

if TYPE_CHECKING:
    from .learner import Learner

__all__ = ["plot_top_losses", "Interpretation", "ClassificationInterpretation", "SegmentationInterpretation"]

_I = TypeVar("_I", bound="Interpretation")
_C = TypeVar("_C", bound="ClassificationInterpretation")


# ---- drawing, by the type of the loader ----------------------------------------------------------------------
@functools.singledispatch
def plot_top_losses(dl: Any, interp: Interpretation, losses: Tensor, idx: Tensor, **kwargs: Any) -> Any:
    """Draw the items `idx` of `interp` with their `losses` (one implementation per loader type, as fastai's
    type-dispatched `plot_top_losses`); returns the figure."""
    raise TypeError(f"plot_top_losses is not implemented for {type(dl).__name__} loaders: minifastai draws "
                    "image data (minifastai.vision); use interp.top_losses(k) and interp[idx] for the numbers")


@functools.singledispatch
def show_interp_results(dl: Any, interp: Interpretation, idxs: list[int], **kwargs: Any) -> Any:
    """Draw the items `idxs` of `interp` with their targets and predictions (one implementation per loader type);
    returns the figure."""
    raise TypeError(f"show_results is not implemented for {type(dl).__name__} loaders: minifastai draws image "
                    "data (minifastai.vision); use interp[idxs] for the inputs, predictions and targets")


# ---- loaders -----------------------------------------------------------------------------------------------------
def _identity(x: Tensor) -> Tensor:
    return x


def subset_loader(dl: Any, idxs: list[int]) -> Any:
    """A loader over the items `idxs` of `dl`'s dataset, batched and transformed as `dl`; None when `dl` cannot be
    cut (no map-style dataset)."""

    def cut(inner: DataLoader) -> DataLoader | None:
        if inner.batch_size is None or isinstance(inner.dataset, IterableDataset):
            return None
        return DataLoader(Subset(inner.dataset, idxs), inner.batch_size, shuffle=False, collate_fn=inner.collate_fn)

    inner = getattr(dl, "dl", None)
    if hasattr(dl, "map_loader") and isinstance(inner, DataLoader):  # a wrapper with batch transforms (ImageDL)
        sub = cut(inner)
        return None if sub is None else dl.map_loader(lambda _: sub)
    return cut(dl) if isinstance(dl, DataLoader) else None


def _per_item(losses: Tensor, n: int) -> Tensor:
    """One loss per item: a loss per element (pixels, positions) is averaged over each item's elements."""
    losses = losses.detach().float()
    if losses.shape == (n,):
        return losses
    if losses.numel() and losses.numel() % n == 0:
        return losses.reshape(n, -1).mean(1)
    raise ValueError(f"the loss function gave {losses.numel()} losses for {n} items: interpretation needs one loss "
                     "per item (or the same number of losses for every item)")


def preds_targs_losses(learn: Learner, dl: Any, act: Any = None) -> tuple[Tensor, Tensor, Tensor]:
    """One pass of `learn` over `dl`: predictions (after `act`, default the loss's activation), targets and the
    loss of every item."""
    if learn.loss_func is None:
        raise ValueError("the learner has no loss_func: interpretation ranks items by their loss")
    try:
        per_item_loss(learn.loss_func)
        reducible = True
    except TypeError:  # a loss without reduction='none': one call per item below
        reducible = False
    if reducible:
        raw, targs, losses = learn.get_preds(dl=dl, with_loss=True, act=_identity)
    else:
        raw, targs = learn.get_preds(dl=dl, act=_identity)
        losses = None
    if raw is None:
        raise ValueError("the loader gave no batches: there is nothing to interpret")
    if targs is None:
        raise ValueError("the data has no targets: interpretation compares predictions with targets (pass a "
                         "labelled loader, e.g. learn.dls.valid)")
    if losses is None:
        losses = torch.stack([learn.loss_func(raw[i:i + 1], targs[i:i + 1]).detach().float()
                              for i in range(len(raw))])
    return (act or activation_fn(learn))(raw), targs, _per_item(losses, len(raw))


def _interp_loader(learn: Learner, ds_idx: int, dl: Any) -> Any:
    if dl is not None:
        if is_shuffled(dl):
            raise ValueError("dl= draws its items in a random order, so the losses could not be matched to items: "
                             "pass an unshuffled loader (e.g. dl.new(shuffle=False))")
        return dl
    found = loader_of(learn, ds_idx, None, hint="there is nothing to interpret; pass dl= a labelled loader, or "
                                                "another ds_idx")
    return in_order(found, strict=True)


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


# ---- Interpretation ----------------------------------------------------------------------------------------------
class Interpretation:
    """The loss of every item of a data set, and the inputs, predictions, targets and decoded predictions of any
    of them (fastai's `Interpretation`, the base of the task-specific interpretations)."""

    def __init__(self, learn: Learner, dl: Any, losses: Tensor, act: Any = None) -> None:
        self.learn, self.dl, self.losses, self.act = learn, dl, losses, act

    @classmethod
    def from_learner(cls: type[_I], learn: Learner, ds_idx: int = 1, dl: Any = None, act: Any = None) -> _I:
        """Run `learn` once over `dl` (default: `learn.dls[ds_idx]`, in order, every item) and keep each item's
        loss; `act` replaces the loss's activation for the predictions."""
        dl = _interp_loader(learn, ds_idx, dl)
        preds, targs, losses = preds_targs_losses(learn, dl, act)
        return cls._from_pass(learn, dl, act, preds, targs, losses)

    @classmethod
    def _from_pass(cls: type[_I], learn: Learner, dl: Any, act: Any, preds: Tensor, targs: Tensor,
                   losses: Tensor) -> _I:
        return cls(learn, dl, losses, act)

    def __len__(self) -> int:
        return len(self.losses)

    def indices(self, idxs: Any) -> list[int]:
        """`idxs` (an index, a slice, a list/range/tensor of indices; negative ones count from the end) as a list
        of item positions; an index out of range is an IndexError."""
        n = len(self.losses)
        if isinstance(idxs, Tensor):
            idxs = idxs.tolist()
        if isinstance(idxs, slice):
            return list(range(n))[idxs]
        if _is_int(idxs):
            idxs = [idxs]
        if not isinstance(idxs, (Sequence, range, np.ndarray)) or isinstance(idxs, str):
            raise TypeError(f"index items with an int, a slice or a list of ints, got {type(idxs).__name__}")
        out = []
        for i in idxs:
            if not _is_int(i):
                raise TypeError(f"item indices are ints, got {i!r}")
            if not -n <= i < n:
                raise IndexError(f"index {int(i)} is out of range: the interpretation holds {n} items")
            out.append(int(i) % n)
        return out

    def __getitem__(self, idxs: Any) -> tuple:
        """(inputs, predictions, targets, decoded predictions, losses) of the items `idxs` (fastai's order)."""
        idx = self.indices(idxs)
        if not idx:
            raise ValueError("no items selected: give at least one index")
        dl = subset_loader(self.dl, idx)
        if dl is not None:
            inps, preds, targs, decoded = self.learn.get_preds(dl=dl, with_input=True, with_decoded=True,
                                                               act=self.act)
        else:  # a loader that cannot be cut: one pass over all of it
            out = self.learn.get_preds(dl=self.dl, with_input=True, with_decoded=True, act=self.act)
            inps, preds, targs, decoded = (None if t is None else t[idx] for t in out)
        return inps, preds, targs, decoded, self.losses[idx]

    def top_losses(self, k: int | None = None, largest: bool = True, items: bool = False) -> tuple:
        """The `k` largest (`largest=False`: smallest) losses, sorted, and their item indices (all items by
        default); `items=True` adds the items (files, rows) they come from."""
        n = len(self.losses)
        if k is None:
            k = n
        if not _is_int(k) or k < 0:
            raise ValueError(f"k must be a non-negative int (the number of losses), got {k!r}")
        if k > n:
            raise ValueError(f"k={k} is larger than the number of items interpreted ({n})")
        losses, idx = self.losses.topk(int(k), largest=largest)
        if items:
            return losses, idx, self.items_at(idx)
        return losses, idx

    def items_at(self, idx: Tensor | Sequence[int]) -> Any:
        """The items (file names, DataFrame rows, ...) at positions `idx` of the interpreted loader."""
        all_items = getattr(self.dl, "items", None)
        if all_items is None:
            raise ValueError(f"the interpreted {type(self.dl).__name__} has no .items (files or rows) to return")
        pos = idx.tolist() if isinstance(idx, Tensor) else list(idx)
        if hasattr(all_items, "iloc"):
            return all_items.iloc[pos]
        return [all_items[i] for i in pos]

    def plot_top_losses(self, k: int | Sequence[int], largest: bool = True, **kwargs: Any) -> Any:
        """Draw the `k` largest (`largest=False`: smallest) losses, or those at ranks `k` (a list or range,
        `range(7, 16)`: the 8th to 16th); returns the figure."""
        if isinstance(k, Sequence):  # ranks (a list, a range)
            all_losses, all_idx = self.top_losses(None, largest)
            ranks = self.indices(list(k))
            losses, idx = all_losses[ranks], all_idx[ranks]
        else:
            losses, idx = self.top_losses(k, largest)
        if len(idx) == 0:
            raise ValueError("no losses to plot: ask for at least one (k >= 1)")
        return plot_top_losses(self.dl, self, losses, idx, **kwargs)

    def show_results(self, idxs: int | Sequence[int] | Tensor, **kwargs: Any) -> Any:
        """Draw the items `idxs` with their targets and predictions; returns the figure."""
        idx = self.indices(idxs)
        if not idx:
            raise ValueError("no items selected: give at least one index")
        return show_interp_results(self.dl, self, idx, **kwargs)


class ClassificationInterpretation(Interpretation):
    """`Interpretation` of a single-label classifier: predictions, targets and decoded classes of every item are
    kept (`preds`, `targs`, `decoded`), with `confusion_matrix`, `most_confused` and their reports."""

    def __init__(self, learn: Learner, dl: Any, losses: Tensor, act: Any = None, preds: Tensor | None = None,
                 targs: Tensor | None = None) -> None:
        super().__init__(learn, dl, losses, act)
        if preds is None or targs is None:
            preds, targs = learn.get_preds(dl=dl, act=act)
        self.preds, self.targs = preds, targs
        self.decoded = decode_preds(learn.loss_func, learn.activation_name, preds)
        vocab = learn.dls.vocab
        self.vocab = list(vocab) if vocab is not None else list(range(preds.shape[-1]))

    @classmethod
    def _from_pass(cls: type[_C], learn: Learner, dl: Any, act: Any, preds: Tensor, targs: Tensor,
                   losses: Tensor) -> _C:
        return cls(learn, dl, losses, act, preds, targs)

    def _classes(self) -> tuple[Tensor, Tensor]:
        """(decoded, targets) as flat class indices, checked against the vocab."""
        d, t = self.decoded, self.targs
        if d.shape != t.shape or d.is_floating_point() or t.is_floating_point() or d.dtype == torch.bool:
            raise ValueError(f"a confusion matrix needs one class index per item: decoded predictions of shape "
                             f"{tuple(d.shape)} ({d.dtype}) and targets of shape {tuple(t.shape)} ({t.dtype})")
        d, t = d.reshape(-1).long(), t.reshape(-1).long()
        n = len(self.vocab)
        bad = t[(t < 0) | (t >= n)]
        if len(bad):
            raise ValueError(f"target class {int(bad[0])} is outside the vocab of {n} classes")
        return d, t

    def confusion_matrix(self) -> np.ndarray:
        """Counts of (actual class = row, predicted class = column), as an `np.ndarray`."""
        d, t = self._classes()
        n = len(self.vocab)
        return torch.bincount(t * n + d, minlength=n * n).reshape(n, n).numpy()

    def most_confused(self, min_val: int = 1) -> list[tuple[Any, Any, int]]:
        """(actual, predicted, count) of the off-diagonal cells with at least `min_val` items, most frequent
        first (ties in row-major order, as fastai)."""
        cm = self.confusion_matrix()
        np.fill_diagonal(cm, 0)
        res = [(self.vocab[i], self.vocab[j], int(cm[i, j])) for i, j in zip(*np.where(cm >= min_val))]
        return sorted(res, key=lambda r: r[2], reverse=True)

    def print_classification_report(self) -> None:
        """Print scikit-learn's classification report (precision, recall, f1 per class)."""
        try:
            import sklearn.metrics as skm
        except ImportError:
            raise ImportError("print_classification_report needs scikit-learn: pip install "
                              "'minifastai[metrics]'") from None
        d, t = self._classes()
        print(skm.classification_report(t.numpy(), d.numpy(), labels=list(range(len(self.vocab))),
                                        target_names=[str(v) for v in self.vocab], zero_division=0))

    def plot_confusion_matrix(self, normalize: bool = False, title: str = "Confusion matrix", cmap: str = "Blues",
                              norm_dec: int = 2, plot_txt: bool = True, **kwargs: Any) -> Any:
        """The confusion matrix as an image with counts (or row fractions, `normalize=True`); `kwargs` go to
        `plt.figure` (e.g. `figsize`); returns the figure."""
        import matplotlib.pyplot as plt

        cm = self.confusion_matrix()
        if normalize:
            cm = cm.astype("float") / np.maximum(cm.sum(axis=1)[:, None], 1)
        fig = plt.figure(**kwargs)
        ax = fig.gca()
        ax.imshow(cm, interpolation="nearest", cmap=cmap)
        ax.set_title(title)
        ticks = np.arange(len(self.vocab))
        ax.set_xticks(ticks, [str(v) for v in self.vocab], rotation=90)
        ax.set_yticks(ticks, [str(v) for v in self.vocab], rotation=0)
        if plot_txt:
            thresh = cm.max() / 2.0
            for i, j in itertools.product(range(cm.shape[0]), range(cm.shape[1])):
                txt = f"{cm[i, j]:.{norm_dec}f}" if normalize else f"{cm[i, j]}"
                ax.text(j, i, txt, horizontalalignment="center", verticalalignment="center",
                        color="white" if cm[i, j] > thresh else "black")
        ax.set_ylim(len(self.vocab) - 0.5, -0.5)
        ax.set_ylabel("Actual")
        ax.set_xlabel("Predicted")
        ax.grid(False)
        fig.tight_layout()
        return fig


class SegmentationInterpretation(Interpretation):
    """`Interpretation` of a segmentation model (fastai's; each item's loss is the mean over its pixels)."""
