"""Metrics as fastai writes them: functions of (pred, *targets) averaged over the validation set, `Metric`
classes with `reset()`, `accumulate(learn)` and `value`, and `torchmetrics.Metric` objects.

Built-in metrics and functions returning tensors accumulate on the device; the value is read from the
device once per validation pass (`metric_value`), never per batch.
"""
from __future__ import annotations

import copy
import math
import numbers
import re
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import torch

from ..callback.core import camel2snake
from ..torch_core import flatten_check

if TYPE_CHECKING:
    from ..learner import Learner


class Metric:
    """fastai's blueprint for a metric: `reset()` before each validation pass, `accumulate(learn)` after each
    validation batch (read `learn.pred`, `learn.yb`, `learn.loss`), `value` at the end.

    `name` (the results-table column) defaults to the snake-case class name without a `Metric` suffix.
    Under `distrib_ctx`, accumulators kept in `total` and `count` are summed over processes before `value`.
    """

    def reset(self) -> None:
        """Start a new validation pass."""

    def accumulate(self, learn: Learner) -> None:
        """Add one validation batch, read from `learn`."""

    @property
    def value(self) -> Any:
        """The metric over everything accumulated since `reset` (a number or a one-element tensor)."""
        raise NotImplementedError(f"{type(self).__name__} must define a `value` property")

    @property
    def name(self) -> str:
        """The column name: set explicitly, or the snake-case class name without `Metric`."""
        explicit = self.__dict__.get("_name")
        if explicit:
            return explicit
        cls = type(self).__name__
        return camel2snake(re.sub(r"Metric$", "", cls) or cls.lower())

    @name.setter
    def name(self, v: str) -> None:
        self._name = v

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


def func_name(f: Any) -> str:
    """The name of a metric function (through `functools.partial`, as fastai)."""
    while isinstance(f, partial):
        f = f.func
    return getattr(f, "__name__", type(f).__name__)


class AvgMetric(Metric):
    """Batch-size-weighted mean of `func(pred, *targets)` over the validation set (fastai's `AvgMetric`).

    `func` may return a one-element tensor (accumulated on the device, no synchronisation) or a Python/numpy
    number; anything else is an error that names the metric.
    """

    def __init__(self, func: Callable[..., Any], name: str | None = None) -> None:
        self.func = func
        self.name = name or func_name(func)
        self.reset()

    def reset(self) -> None:
        """Zero the weighted sum and the item count."""
        self.total: Any = 0.0
        self.count = 0

    def accumulate(self, learn: Learner) -> None:
        """Add `func(learn.pred, *learn.yb) * batch size`."""
        pred, yb = learn.pred, learn.yb
        bs = batch_size(pred, yb)
        self.total = self.total + _summand(self.func(pred, *yb), self.name) * bs
        self.count += bs

    @property
    def value(self) -> float:
        """The weighted mean (NaN when nothing was accumulated)."""
        return float(self.total / self.count) if self.count else math.nan


class RMSE(Metric):
    """Root mean squared error over the whole validation set (not a mean of per-batch RMSEs)."""

    def __init__(self) -> None:
        self.name = "rmse"
        self.reset()

    def reset(self) -> None:
        """Zero the sum of squared errors and the count."""
        self.total: Any = 0.0
        self.count = 0

    def accumulate(self, learn: Learner) -> None:
        """Add the batch's sum of squared errors."""
        pred, targ = flatten_check(cast(torch.Tensor, learn.pred), learn.yb[0])
        self.total = self.total + ((pred.float() - targ.float()) ** 2).sum().detach()
        self.count += pred.numel()

    @property
    def value(self) -> float:
        """sqrt(sum of squared errors / count)."""
        return float(self.total / self.count) ** 0.5 if self.count else math.nan

    def __call__(self, pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        """RMSE of one batch."""
        pred, targ = flatten_check(pred, targ)
        return ((pred.float() - targ.float()) ** 2).mean().sqrt()


class TorchMetric(Metric):
    """A `torchmetrics.Metric` used as a minifastai metric: `update(pred, *targets)` per validation batch,
    `compute()` per validation pass, `reset()` before it. torchmetrics reduces its state across processes.

    `metrics=[torchmetrics.classification.MulticlassF1Score(3)]` wraps it for you; the learner updates that
    very object, so it can be read after the fit.
    """

    def __init__(self, metric: Any, name: str | None = None) -> None:
        self.metric = metric
        self.name = name or camel2snake(type(metric).__name__)

    def reset(self) -> None:
        """`metric.reset()`."""
        self.metric.reset()

    def accumulate(self, learn: Learner) -> None:
        """`metric.update(pred, *targets)` (the metric moves to the predictions' device first)."""
        pred = cast(torch.Tensor, learn.pred)
        if self.metric.device != pred.device:
            self.metric.to(pred.device)
        self.metric.update(pred.detach(), *(y.detach() for y in learn.yb))

    @property
    def value(self) -> Any:
        """`metric.compute()`."""
        return self.metric.compute()


def batch_size(pred: Any, yb: tuple) -> int:
    """The number of items in a batch: the first target's length (fastai's `find_bs`), else the prediction's.
    `yb` is the tuple of targets, or one target tensor (as fastai's tests set `learn.yb`)."""
    x = yb if isinstance(yb, torch.Tensor) else (yb[0] if yb else pred)
    return len(x) if isinstance(x, torch.Tensor) and x.ndim else 1


def _summand(v: Any, name: str) -> Any:
    """A metric function's result as something to add up: a 0-d tensor (kept on the device) or a float."""
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise ValueError(f"metric {name!r} returned a tensor of shape {tuple(v.shape)}; a metric function returns "
                             "one number per batch (e.g. reduce it with .mean())")
        v = v.detach().reshape(())
        return v if v.is_floating_point() else v.float()
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return float(v)
    if hasattr(v, "shape") and hasattr(v, "dtype") and getattr(v, "size", 0) == 1:  # numpy arrays of one number
        return float(v)
    raise TypeError(f"metric {name!r} returned {_describe(v)}; a metric function must return a number or a "
                    "one-element tensor")


def metric_value(m: Metric) -> float:
    """`m.value` as a float (read from the device once); a value that is not one number is an error naming `m`."""
    v = m.value
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise ValueError(f"metric {metric_name(m)!r}: value is a tensor of shape {tuple(v.shape)}; a metric's "
                             "value must be one number (e.g. average=None in torchmetrics gives one per class)")
        return float(v)
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return float(v)
    if hasattr(v, "shape") and hasattr(v, "dtype") and getattr(v, "size", 0) == 1:
        return float(v)
    raise TypeError(f"metric {metric_name(m)!r}: value is {_describe(v)}; a metric's value must be a number or a "
                    "one-element tensor")


def _describe(v: Any) -> str:
    if v is None:
        return "None (does it forget to return?)"
    shape = getattr(v, "shape", None)
    return f"a {type(v).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else f" ({str(v)[:40]!r})")


def accuracy(inp: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """Fraction of rows whose arg-max equals the target."""
    pred, targ = flatten_check(inp.argmax(dim=axis), targ)
    return (pred == targ).float().mean()


def error_rate(inp: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """1 - accuracy."""
    return 1 - accuracy(inp, targ, axis)


def top_k_accuracy(inp: torch.Tensor, targ: torch.Tensor, k: int = 5, axis: int = -1) -> torch.Tensor:
    """Fraction of rows whose target is among the `k` highest predictions."""
    top = inp.topk(k=k, dim=axis)[1]
    return (top == targ.unsqueeze(dim=axis).expand_as(top)).sum(dim=-1).float().mean()


def accuracy_multi(inp: torch.Tensor, targ: torch.Tensor, thresh: float = 0.5, sigmoid: bool = True) -> torch.Tensor:
    """Multi-label accuracy: `(sigmoid(inp) > thresh) == targ` over every label of every row."""
    inp, targ = flatten_check(inp, targ)
    if sigmoid:
        inp = inp.sigmoid()
    return ((inp > thresh) == targ.bool()).float().mean()


def mae(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    inp, targ = flatten_check(inp, targ)
    return (inp.float() - targ.float()).abs().mean()


def mse(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    inp, targ = flatten_check(inp, targ)
    return ((inp.float() - targ.float()) ** 2).mean()


rmse = RMSE()
"""Root mean squared error over the validation set (pass as `metrics=rmse`)."""


def is_torchmetric(m: Any) -> bool:
    """Is `m` a `torchmetrics.Metric`? (Checked without importing torchmetrics.)"""
    tm = sys.modules.get("torchmetrics")
    return tm is not None and isinstance(m, tm.Metric)


def to_metric(m: Any) -> Metric:
    """A `Metric` for what the user passed: a `Metric` (a fresh copy, so learners do not share state), a
    `torchmetrics.Metric` (wrapped in `TorchMetric`, not copied) or a function (wrapped in `AvgMetric`)."""
    if isinstance(m, Metric):
        m = copy.copy(m)
        m.reset()
        return m
    if is_torchmetric(m):
        return TorchMetric(m)
    if isinstance(m, type):
        raise TypeError(f"metrics got the class {m.__name__}; pass an instance, e.g. metrics={m.__name__}()")
    if callable(m):
        return AvgMetric(m)
    raise TypeError(f"a metric must be a function (pred, *targets) -> number, a Metric or a torchmetrics.Metric, "
                    f"not {type(m).__name__}")


def metric_name(m: Metric) -> str:
    """A column name for the results table."""
    return re.sub(r"\s+", "_", str(m.name))
