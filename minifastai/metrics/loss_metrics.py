"""Metrics made from the loss (fastai's names): its average, its smoothed value, attributes a loss function sets
(`LossMetrics('l1,l2')`), perplexity, and a metric whose value is any function's."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from .core import AvgMetric, Metric, batch_size, func_name

if TYPE_CHECKING:
    from ..learner import Learner


class AvgLoss(Metric):
    """The loss averaged over the validation set, weighted by batch size (fastai's `AvgLoss`)."""

    def __init__(self) -> None:
        self.name = "loss"
        self.reset()

    def reset(self) -> None:
        """Zero the sum and the count."""
        self.total: Any = 0.0
        self.count = 0

    def accumulate(self, learn: Learner) -> None:
        """Add `loss * batch size` (kept on the device)."""
        bs = batch_size(learn.pred, learn.yb)
        self.total = self.total + learn.loss.detach().mean() * bs
        self.count += bs

    @property
    def value(self) -> Any:
        """total / count (None before any batch)."""
        return self.total / self.count if self.count != 0 else None


class AvgSmoothLoss(Metric):
    """The exponentially smoothed loss (beta 0.98, debiased), as the recorder's `smooth_loss` (fastai's)."""

    def __init__(self, beta: float = 0.98) -> None:
        self.beta = beta
        self.reset()

    def reset(self) -> None:
        """Start the average again."""
        self.count, self.val = 0, torch.tensor(0.0)

    def accumulate(self, learn: Learner) -> None:
        """Blend in this batch's loss."""
        self.count += 1
        loss = learn.loss.detach().mean()
        self.val = torch.lerp(loss, self.val.to(loss.device), self.beta)

    @property
    def value(self) -> torch.Tensor:
        """The debiased smoothed loss."""
        return self.val / (1 - self.beta**self.count)


class ValueMetric(Metric):
    """A metric whose value is `func()` (fastai's `ValueMetric`), named `metric_name` or after `func`."""

    def __init__(self, func: Callable[[], Any], metric_name: str | None = None) -> None:
        self.func = func
        self.name = metric_name or func_name(func)

    @property
    def value(self) -> Any:
        """`func()`."""
        return self.func()


class LossMetric(AvgMetric):
    """The batch-size-weighted mean of the attribute `attr` that the loss function sets when called (a part of a
    combined loss), named `nm` or `attr` (fastai's `LossMetric`)."""

    def __init__(self, attr: str, nm: str | None = None) -> None:
        self.attr, self.nm = attr, nm
        self.name = attr if nm is None else nm
        self.reset()

    def accumulate(self, learn: Learner) -> None:
        """Add `loss_func.<attr> * batch size`."""
        bs = batch_size(learn.pred, learn.yb)
        v = getattr(learn.loss_func, self.attr, 0)
        self.total = self.total + (v.detach() if isinstance(v, torch.Tensor) else v) * bs
        self.count += bs


def LossMetrics(attrs: str | list[str], nms: str | list[str] | None = None) -> list[LossMetric]:  # noqa: N802
    """One `LossMetric` per attribute (`'l1,l2'` or a list), named by `nms` (same forms) or the attributes."""
    attrs = attrs.split(",") if isinstance(attrs, str) else list(attrs)
    names = attrs if nms is None else nms.split(",") if isinstance(nms, str) else list(nms)
    return [LossMetric(a, n) for a, n in zip(attrs, names)]


class Perplexity(AvgLoss):
    """exp(mean cross-entropy loss), for language models (fastai's `Perplexity`)."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "perplexity"

    @property
    def value(self) -> Any:
        """exp(total / count) (None before any batch)."""
        return torch.exp(self.total / self.count) if self.count != 0 else None


perplexity = Perplexity()
"""Perplexity over the validation set (pass as `metrics=perplexity`)."""
