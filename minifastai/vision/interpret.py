"""Interpretation of image models: `ClassificationInterpretation` (from `minifastai.interpret`, fastai's names
and numbers) and the drawing it dispatches to for image loaders: `plot_top_losses` (titled prediction / actual /
loss / probability, as fastai) and `show_results` (titled target and prediction, green when right)."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from ..interpret import ClassificationInterpretation, Interpretation, plot_top_losses, show_interp_results
from .loaders import ImageDL
from .show import show_images

__all__ = ["ClassificationInterpretation", "Interpretation", "plot_image_top_losses", "show_image_results"]


def _images(dl: ImageDL, idx: list[int]) -> list[Tensor]:
    """The items `idx` of `dl`'s dataset after the validation item transforms, as (3, H, W) floats in [0, 1]."""
    ds = dl.dataset
    if not hasattr(ds, "with_train"):
        raise TypeError("drawing an interpretation needs the images' dataset: interpret a learner on "
                        "ImageDataLoaders")
    ds = ds.with_train(False)
    return [ds[i][0].float() / 255 for i in idx]


def _preds_at(interp: Interpretation, idx: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """Predictions, targets and decoded predictions of the items `idx` (kept ones when the interpretation has
    them, else recomputed)."""
    preds = getattr(interp, "preds", None)
    if isinstance(interp, ClassificationInterpretation) and preds is not None:
        return preds[idx], interp.targs[idx], interp.decoded[idx]
    _, preds, targs, decoded, _ = interp[idx]
    return preds, targs, decoded


def _namer(interp: Interpretation) -> Any:
    vocab = getattr(interp, "vocab", None) or interp.learn.dls.vocab
    if vocab is None:
        return lambda v: f"{float(v):.2f}" if v.is_floating_point() else str(int(v))
    return lambda v: str(vocab[int(v)])


@plot_top_losses.register
def plot_image_top_losses(dl: ImageDL, interp: Interpretation, losses: Tensor, idx: Tensor,
                          nrows: int | None = None, ncols: int | None = None,
                          figsize: tuple[float, float] | None = None) -> Any:
    """The images `idx`, titled prediction/actual/loss/probability (fastai's); returns the figure."""
    pos = idx.tolist()
    preds, targs, decoded = _preds_at(interp, pos)
    name = _namer(interp)
    titles = [f"{name(decoded[j])}/{name(targs[j])} / {float(loss):.2f} / {float(preds[j].max()):.2f}"
              for j, loss in enumerate(losses)]
    return show_images(_images(dl, pos), titles, nrows=nrows, ncols=ncols, figsize=figsize,
                       suptitle="Prediction/Actual/Loss/Probability")


@show_interp_results.register
def show_image_results(dl: ImageDL, interp: Interpretation, idxs: list[int], nrows: int | None = None,
                       ncols: int | None = None, figsize: tuple[float, float] | None = None) -> Any:
    """The images `idxs` titled with target (first line) and prediction (second; green when right, red when
    wrong), as `learn.show_results`; returns the figure."""
    _, targs, decoded = _preds_at(interp, idxs)
    name = _namer(interp)
    titles = [f"{name(t)}\n{name(d)}" for t, d in zip(targs, decoded)]
    colors = ["green" if bool((t == d).all()) else "red" for t, d in zip(targs, decoded)]
    return show_images(_images(dl, idxs), titles, colors, nrows=nrows, ncols=ncols, figsize=figsize)
