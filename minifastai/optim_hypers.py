"""fastai's `opt.hypers` on torch optimizers: `HyperView` (one param group's hyper-parameters, read and written in
place) and `with_hypers(cls)`, a torch optimizer class with the `hypers` property. Imports only torch, so the layer
groups' default optimizer and the optimizer package can both use it."""
from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, TypeVar

import torch


class HyperView(MutableMapping):
    """One parameter group's hyper-parameters (the group without `params`), read and written in place."""

    def __init__(self, pg: dict) -> None:
        self.pg = pg

    def __getitem__(self, k: str) -> Any:
        if k == "params":
            raise KeyError(k)
        return self.pg[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self.pg[k] = v

    def __delitem__(self, k: str) -> None:
        del self.pg[k]

    def __iter__(self) -> Iterator[str]:
        return (k for k in self.pg if k != "params")

    def __len__(self) -> int:
        return sum(1 for k in self.pg if k != "params")

    def __eq__(self, other: object) -> bool:
        return dict(self) == (dict(other) if isinstance(other, MutableMapping) else other)

    def __repr__(self) -> str:
        return repr(dict(self))


class WithHypers(torch.optim.Optimizer):
    """Mixin over a torch optimizer class: fastai's `opt.hypers` (the class, `step` and `state_dict` stay torch's)."""

    @property
    def hypers(self) -> list[Any]:
        """fastai's `opt.hypers`: each param group's hyper-parameters (torch's keys), writing through to the group."""
        return [HyperView(pg) for pg in self.param_groups]


_WITH_HYPERS: dict[type, type] = {}
OptT = TypeVar("OptT", bound=torch.optim.Optimizer)


def with_hypers(cls: type[OptT]) -> type[OptT]:
    """`cls` with fastai's `opt.hypers` (a subclass of the same name; `isinstance(opt, cls)` still holds)."""
    if issubclass(cls, WithHypers):
        return cls
    if cls not in _WITH_HYPERS:
        _WITH_HYPERS[cls] = type(cls.__name__, (WithHypers, cls), {"__module__": cls.__module__,
                                                                  "__doc__": cls.__doc__})
    return _WITH_HYPERS[cls]
