"""For quick tests of the training loop and of callbacks, as fastai's `fastai.test_utils`: synthetic regression
data (`y = a*x + b` plus noise), a two-parameter model, a learner on them, a callback that prints each event, and
fastcore's `test_eq` / `test_ne` / `equals` comparing tensors as fastai's do (without patching `torch.Tensor`)."""
from __future__ import annotations

import itertools
from functools import partial
from typing import Any

import fastcore.test as fc_test
import torch
from fastcore.foundation import L
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .callback.core import Callback
from .data import DataLoaders, default_device
from .learner import Learner
from .losses import MSELossFlat
from .optimizer import SGD
from .torch_core import Module

__all__ = ["synth_dbunch", "RegModel", "synth_learner", "VerboseCallback", "equals", "test_eq", "test_ne"]


def _tensor_equals(t: torch.Tensor, other: Any) -> bool:
    o = other if isinstance(other, torch.Tensor) else torch.as_tensor(other)
    if t.dim():
        return torch.equal(t.detach(), o.detach().to(t.device))
    return bool((t.detach() == o.detach().to(t.device)).all())


def equals(a: Any, b: Any) -> bool:
    """fastcore's `equals`, with tensors compared as fastai compares them (`torch.equal`; a 0-d tensor by value),
    tensors that require grad included: fastai gets this by patching `Tensor.__array_eq__`, minifastai patches no
    class. Lists and tuples are compared item by item; anything else is fastcore's `equals`."""
    if isinstance(a, torch.Tensor) and not isinstance(b, type):
        return _tensor_equals(a, b)
    if isinstance(b, torch.Tensor) and not isinstance(a, type):
        return _tensor_equals(b, a)
    if isinstance(a, (list, tuple, L)) and isinstance(b, (list, tuple, L)):
        return len(a) == len(b) and all(equals(x, y) for x, y in itertools.zip_longest(a, b))
    return bool(fc_test.equals(a, b))


def test_eq(a: Any, b: Any) -> None:
    """`assert` that `a == b` as `equals` decides (fastcore's `test_eq`, tensors compared by `torch.equal`)."""
    fc_test.test(a, b, equals, "==")


def test_ne(a: Any, b: Any) -> None:
    """`assert` that `a != b` as `equals` decides (fastcore's `test_ne`)."""
    fc_test.test(a, b, lambda x, y: not equals(x, y), "!=")


test_eq.__test__ = test_ne.__test__ = False  # type: ignore[attr-defined]  # library helpers, not pytest tests


def synth_dbunch(a: float = 2, b: float = 3, bs: int = 16, n_train: int = 10, n_valid: int = 2,
                 cuda: bool = False) -> DataLoaders:
    """`n_train` (`n_valid`) batches of `bs` points of `y = a*x + b + 0.1*noise`, x standard normal, shape (n, 1)."""

    def get_data(n: int) -> TensorDataset:
        x = torch.randn(bs * n, 1)
        return TensorDataset(x, a * x + b + 0.1 * torch.randn(bs * n, 1))

    train = DataLoader(get_data(n_train), batch_size=bs, shuffle=True)
    valid = DataLoader(get_data(n_valid), batch_size=bs)
    return DataLoaders(train, valid, device=default_device() if cuda else "cpu")


class RegModel(Module):
    """`x * a + b` with two scalar parameters drawn at random."""

    def __init__(self) -> None:
        self.a, self.b = nn.Parameter(torch.randn(1)), nn.Parameter(torch.randn(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's prediction."""
        return x * self.a + self.b


def synth_learner(n_trn: int = 10, n_val: int = 2, cuda: bool = False, lr: float = 1e-3,
                  data: DataLoaders | None = None, model: nn.Module | None = None, **kwargs: Any) -> Learner:
    """A `Learner` on `synth_dbunch` with `RegModel`, `MSELossFlat` and SGD with momentum 0.9 (fastai's)."""
    data = synth_dbunch(n_train=n_trn, n_valid=n_val, cuda=cuda) if data is None else data
    return Learner(data, RegModel() if model is None else model, lr=lr, loss_func=MSELossFlat(),
                   opt_func=partial(SGD, mom=0.9), **kwargs)


class VerboseCallback(Callback):
    """Prints the name of each event as it runs."""

    def __call__(self, event_name: str) -> Any:
        """Print `event_name`, then run this callback's hook for it (none)."""
        print(event_name)
        return super().__call__(event_name)
