"""`ClassificationInterpretation`: where a classifier goes wrong (fastai's names and numbers)."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..inference import ACTIVATIONS
from ..learner import Learner

__all__ = ["ClassificationInterpretation"]


def item_losses(loss_func: Any, raw: Tensor, targs: Tensor) -> Tensor:
    """The loss of every item (the loss function with `reduction='none'`, else one call per item)."""
    if isinstance(getattr(loss_func, "reduction", None), str):
        old = loss_func.reduction
        loss_func.reduction = "none"
        try:
            out = loss_func(raw, targs)
        finally:
            loss_func.reduction = old
        if isinstance(out, Tensor) and out.shape == (len(raw),):
            return out.detach().float()
    return torch.stack([loss_func(raw[i:i + 1], targs[i:i + 1]).detach().float() for i in range(len(raw))])


class ClassificationInterpretation:
    """Predictions, targets and per-item losses of a classifier on a data set (default: validation), and
    fastai's views of them: `confusion_matrix`, `most_confused`, `top_losses`, and their plots."""

    def __init__(self, learn: Learner, dl: Any, preds: Tensor, targs: Tensor, losses: Tensor) -> None:
        self.learn, self.dl, self.preds, self.targs, self.losses = learn, dl, preds, targs, losses
        self.vocab = list(learn.dls.vocab) if learn.dls.vocab is not None else list(range(preds.shape[-1]))
        self.decoded = preds.argmax(-1)

    @classmethod
    def from_learner(cls, learn: Learner, ds_idx: int = 1, dl: Any = None, act: Any = None
                     ) -> ClassificationInterpretation:
        """Run `learn` over `dl` (default: `dls[ds_idx]`, in order, every item) once and keep the results."""
        if dl is None:
            dl = learn.dls[ds_idx]
            if dl is None:
                raise ValueError(f"learn.dls[{ds_idx}] is empty: there is nothing to interpret (pass dl=)")
            if hasattr(dl, "new"):
                dl = dl.new(shuffle=False, drop_last=False)
        raw, targs = learn.get_preds(dl=dl, act=lambda x: x)
        if targs is None:
            raise ValueError("the data has no targets: interpretation compares predictions with labels")
        preds = (act or ACTIVATIONS[learn.activation_name])(raw)
        return cls(learn, dl, preds, targs, item_losses(learn.loss_func, raw, targs))

    def top_losses(self, k: int | None = None, largest: bool = True, items: bool = False) -> tuple:
        """The `k` largest (or smallest) losses and their indices (all by default); `items=True` adds the
        files."""
        losses, idx = self.losses.topk(len(self.losses) if k is None else min(k, len(self.losses)),
                                       largest=largest)
        if items:
            all_items = getattr(self.dl, "items", None)
            return losses, idx, [all_items[i] for i in idx.tolist()] if all_items is not None else None
        return losses, idx

    def confusion_matrix(self) -> np.ndarray:
        """Counts of (actual class = row, predicted class = column)."""
        n = len(self.vocab)
        cm = torch.zeros(n, n, dtype=torch.long)
        cm.index_put_((self.targs.long(), self.decoded.long()), torch.ones_like(self.targs, dtype=torch.long),
                      accumulate=True)
        return cm.numpy()

    def most_confused(self, min_val: int = 1) -> list[tuple[Any, Any, int]]:
        """(actual, predicted, count) of the off-diagonal cells with at least `min_val` items, most frequent
        first (ties in row-major order, as fastai)."""
        cm = self.confusion_matrix()
        np.fill_diagonal(cm, 0)
        res = [(self.vocab[i], self.vocab[j], int(cm[i, j])) for i, j in zip(*np.where(cm >= min_val))]
        return sorted(res, key=lambda r: r[2], reverse=True)

    def plot_confusion_matrix(self, normalize: bool = False, title: str = "Confusion matrix", cmap: str = "Blues",
                              norm_dec: int = 2, plot_txt: bool = True, **kwargs: Any) -> Any:
        """The confusion matrix as an image with counts (or row fractions); returns the figure."""
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

    def plot_top_losses(self, k: int, largest: bool = True, nrows: int | None = None, ncols: int | None = None,
                        figsize: tuple[float, float] | None = None) -> Any:
        """The `k` images with the largest losses, titled prediction/actual/loss/probability (fastai);
        returns the figure."""
        from .show import show_images

        ds = getattr(self.dl, "dataset", None)
        if ds is None or not hasattr(ds, "with_train"):
            raise TypeError("plot_top_losses shows images: interpret a learner on ImageDataLoaders")
        losses, idx = self.top_losses(k, largest)
        ds = ds.with_train(False)
        imgs = [ds[i][0].float() / 255 for i in idx.tolist()]
        titles = [f"{self.vocab[int(self.decoded[i])]}/{self.vocab[int(self.targs[i])]} / {float(loss):.2f} / "
                  f"{float(self.preds[i].max()):.2f}" for loss, i in zip(losses, idx.tolist())]
        return show_images(imgs, titles, nrows=nrows, ncols=ncols, figsize=figsize,
                           suptitle="Prediction/Actual/Loss/Probability")
