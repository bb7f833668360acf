"""Callbacks that change `get_preds` (fastai's `callback.preds`): Monte Carlo dropout."""
from __future__ import annotations

from torch import nn

from .core import Callback


def _dropouts(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if "dropout" in type(m).__name__.lower()]


class MCDropoutCallback(Callback):
    """Keep dropout on during validation and `get_preds` (Monte Carlo dropout, Gal & Ghahramani 2016): calling
    `get_preds(cbs=MCDropoutCallback())` several times samples the model's uncertainty."""

    def before_validate(self) -> None:
        """Dropout layers to train mode (the rest of the model stays in eval mode)."""
        for m in _dropouts(self.learn.model):
            m.train()

    def after_validate(self) -> None:
        """Dropout layers back to eval mode."""
        for m in _dropouts(self.learn.model):
            m.eval()
