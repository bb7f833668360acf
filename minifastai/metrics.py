"""Metrics: functions of (pred, target) averaged over the validation set, and accumulating metrics."""
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import torch


class Metric:
    """A metric accumulated over the validation batches as tensors and read once at the end."""

    name: str = "metric"

    def reset(self) -> None:
        """Start a new validation pass."""
        self.total, self.count = 0.0, 0

    def accumulate(self, pred: torch.Tensor, *yb: torch.Tensor) -> None:
        """Add one batch (no host-device synchronisation)."""
        raise NotImplementedError

    @property
    def value(self) -> float:
        """The metric over everything accumulated since `reset`."""
        return float(self.total / max(self.count, 1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class AvgMetric(Metric):
    """Batch-size-weighted mean of `func(pred, *targets)` over the validation set."""

    def __init__(self, func: Callable[..., torch.Tensor], name: str | None = None) -> None:
        self.func, self.name = func, name or getattr(func, "__name__", type(func).__name__)
        self.reset()

    def accumulate(self, pred: torch.Tensor, *yb: torch.Tensor) -> None:
        """Add `func(pred, *yb) * batch size`."""
        bs = len(yb[0]) if yb else len(pred)
        self.total = self.total + self.func(pred, *yb).detach() * bs
        self.count += bs


class RMSE(Metric):
    """Root mean squared error over the whole validation set (not a mean of per-batch RMSEs)."""

    name = "rmse"

    def __init__(self) -> None:
        self.reset()

    def accumulate(self, pred: torch.Tensor, targ: torch.Tensor) -> None:
        """Add the batch's sum of squared errors."""
        pred, targ = _flat(pred, targ)
        self.total = self.total + ((pred - targ) ** 2).sum().detach()
        self.count += pred.numel()

    @property
    def value(self) -> float:
        """sqrt(sum of squared errors / count)."""
        return float(self.total / max(self.count, 1)) ** 0.5

    def __call__(self, pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        """RMSE of one batch."""
        pred, targ = _flat(pred, targ)
        return ((pred - targ) ** 2).mean().sqrt()


def _flat(pred: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.numel() != targ.numel():
        raise ValueError(f"metric got predictions of shape {tuple(pred.shape)} and targets of shape "
                         f"{tuple(targ.shape)}: they must have the same number of elements")
    return pred.reshape(-1).float(), targ.reshape(-1).float()


def accuracy(pred: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """Fraction of rows whose arg-max equals the target (targets of shape (N,) or (N, 1), flattened as fastai's)."""
    p, t = pred.argmax(dim=axis).reshape(-1), targ.reshape(-1)
    if p.numel() != t.numel():
        raise ValueError(f"accuracy got predictions of shape {tuple(pred.shape)} and targets of shape "
                         f"{tuple(targ.shape)}: one target per row is needed")
    return (p == t).float().mean()


def error_rate(pred: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """1 - accuracy."""
    return 1 - accuracy(pred, targ, axis)


def mae(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    pred, targ = _flat(pred, targ)
    return (pred - targ).abs().mean()


rmse = RMSE()
"""Root mean squared error over the validation set (pass as `metrics=rmse`)."""


def to_metric(m: Any) -> Metric:
    """A fresh `Metric` for a function or a `Metric` (copied, so learners do not share state)."""
    if isinstance(m, Metric):
        m = copy.copy(m)
        m.reset()
        return m
    if callable(m):
        return AvgMetric(m)
    raise TypeError(f"a metric must be a function (pred, target) -> tensor or a Metric, not {type(m).__name__}")


def metric_name(m: Metric) -> str:
    """A column name for the results table."""
    return re.sub(r"\s+", "_", m.name)
