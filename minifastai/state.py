"""The loop state, with one owner: a `LoopState` object held by the Learner (`learn.loop`), with `state_dict()` /
`load_state_dict()` as Lightning's `loops/progress.py`. Checkpoints, resume, `Snapshot` (`lr_find`, `dry_run`) and
`DistributedTrainer` all go through it; adding a field is one line here (`saved(...)` for one a checkpoint carries).
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, cast


def saved(default: Any) -> Any:
    """A field that checkpoints carry (the training position); resume loads it back."""
    return field(default=default, metadata={"saved": True})


@dataclass(eq=False, repr=False)
class LoopFields:
    """What the training loop reads and writes while it runs (fastai's names, readable as `learn.epoch`,
    `self.epoch` in a callback, ...), declared once. `LoopState` adds its methods; the `Learner` inherits these
    declarations for type checkers, and `exposes_loop_state` turns each into a property over `learn.loop`."""

    dry: bool = False  # inside `dry_run`: fits replay their schedules without data
    training: bool = False  # in the training phase of an epoch
    epoch: int = saved(0)  # current epoch (0-based)
    n_epoch: int = saved(1)  # epochs of the current fit
    start_epoch: int = 0  # first epoch of the current fit (> 0 when resuming)
    iter: int = saved(0)  # batch index in the current phase
    n_iter: int = 0  # batches in the current phase
    train_iter: int = saved(0)  # training batches done in this fit, counted from epoch 0 (the schedule position)
    n_iter_total: int = 0  # training batches of the whole fit
    pct_train: float = saved(0.0)  # train_iter / n_iter_total: the schedule position in [0, 1)
    dl: Iterable | None = None  # the loader of the current phase
    batch: Any = None  # the current batch, on the device
    xb: tuple = ()  # its inputs
    yb: tuple = ()  # its targets
    pred: Any = None  # the model's output on xb
    loss: Any = None  # the loss of pred against yb (a 0-dim tensor)


@dataclass(eq=False)
class LoopState(LoopFields):
    """The loop state, owned by the learner as `learn.loop`: the fields of `LoopFields`, and how checkpoints,
    resume and snapshots read and write them."""

    def state_dict(self) -> dict[str, Any]:
        """The fields a checkpoint carries (`saved(...)`), as plain numbers."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("saved")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Set the saved fields found in `state` (a checkpoint's position); each must have its field's type."""
        updates = {}
        for f in fields(self):
            if f.metadata.get("saved") and f.name in state:
                v, kind = state[f.name], cast(type, type(f.default))
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) if kind is float else \
                    isinstance(v, kind) and (kind is bool or not isinstance(v, bool))
                if not ok:
                    raise ValueError(f"loop state {f.name!r} is {v!r}, not a {kind.__name__}")
                updates[f.name] = kind(v)
        for k, v in updates.items():
            setattr(self, k, v)

    def copy(self) -> LoopState:
        """A shallow copy of every field (what `Snapshot` keeps)."""
        return copy.copy(self)

    def restore(self, other: LoopState) -> None:
        """Set every field from `other` (a `copy()`)."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))

    def start_fit(self, n_epoch: int, start_epoch: int) -> None:
        """A fit of `n_epoch` epochs starts at `start_epoch`."""
        self.n_epoch, self.start_epoch, self.epoch, self.training = n_epoch, start_epoch, start_epoch, False

    def start_counting(self, epoch_len: int | None) -> None:
        """Count training batches from the start epoch (`epoch_len`: batches per epoch; None: no position)."""
        self.n_iter_total = self.n_epoch * (epoch_len or 0)
        self.train_iter = self.start_epoch * (epoch_len or 0)
        self.pct_train = self.train_iter / self.n_iter_total if self.n_iter_total else 0.0

    def set_schedule_length(self, n_iter_total: int) -> None:
        """The whole fit now lasts `n_iter_total` training batches (the LR finder's sweep)."""
        self.n_iter_total = n_iter_total
        self.pct_train = self.train_iter / n_iter_total if n_iter_total else 0.0

    def start_epoch_count(self) -> None:
        """A training phase starts: the position is exact here (`train_iter / n_iter_total`, = epoch / n_epoch)."""
        self.pct_train = self.train_iter / self.n_iter_total if self.n_iter_total else 0.0

    def count_batch(self) -> None:
        """One more training batch done: advance the schedule position by 1 / n_iter_total, as fastai adds it
        (so fastai's schedules get the same floats); each epoch starts from the exact value again."""
        self.train_iter += 1
        if self.n_iter_total:
            self.pct_train += 1.0 / self.n_iter_total


LOOP_STATE: tuple[str, ...] = tuple(f.name for f in fields(LoopState))


def _loop_property(name: str) -> property:
    def get(self: Any) -> Any:
        return getattr(self.loop, name)

    def put(self: Any, value: Any) -> None:
        setattr(self.loop, name, value)

    return property(get, put, doc=f"`learn.loop.{name}` (fastai's loop name).")


class _OwnLoop:
    """`learn.loop` for an object whose `__init__` did not create one (a fastai-style test subclass of `Learner`
    that sets `self.pred, self.yb = ...` without calling `Learner.__init__`): a fresh `LoopState`, kept."""

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        loop = obj.__dict__["loop"] = LoopState()
        return loop


def exposes_loop_state(cls: type) -> type:
    """Class decorator: `learn.epoch`, `learn.pred`, ... read and write the learner's `loop` (fastai's names; a
    callback may set `self.learn.pred` or `self.learn.yb` as fastai's do)."""
    for name in LOOP_STATE:
        setattr(cls, name, _loop_property(name))
    cls.loop = _OwnLoop()  # type: ignore[attr-defined]  # non-data: the instance's own `loop` wins, at no cost
    return cls
