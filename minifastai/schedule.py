"""Hyper-parameter schedules: fastai's formulas, a general `ParamScheduler`, `OneCycle`, and the fit recipes."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .callback import Callback, listify
from .groups import LRLike, set_hyper

if TYPE_CHECKING:
    from .learner import Learner

Sched = Callable[[float], float]


def sched_lin(start: float, end: float, pos: float) -> float:
    """Linear from `start` to `end` as `pos` goes from 0 to 1."""
    return start + pos * (end - start)


def sched_cos(start: float, end: float, pos: float) -> float:
    """Cosine from `start` to `end`: `start + (1 + cos(pi * (1 - pos))) * (end - start) / 2`."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def sched_exp(start: float, end: float, pos: float) -> float:
    """Exponential from `start` to `end`: `start * (end / start) ** pos`."""
    return start * (end / start) ** pos


def combined_cos(pct: float, start: float, middle: float, end: float) -> Sched:
    """`sched_cos(start, middle)` over the first `pct` of training, then `sched_cos(middle, end)`."""
    if not 0 <= pct <= 1:
        raise ValueError(f"pct_start must be in [0, 1], got {pct}")

    def sched(pos: float) -> float:
        if pos < pct:
            return sched_cos(start, middle, pos / pct)
        return sched_cos(middle, end, (pos - pct) / (1 - pct)) if pct < 1 else end

    return sched


class ParamScheduler(Callback):
    """Sets hyper-parameters (`lr`, `mom`, `wd` or any param-group key) before every training batch.

    `scheds` maps a name to one schedule `f(pos) -> value` for all layer groups, or to a list of
    schedules, one per layer group. `pos` is the fraction of the fit's training batches done.
    """

    order = 10
    run_dry = True

    def __init__(self, scheds: dict[str, Sched | Sequence[Sched]]) -> None:
        self.scheds = scheds

    def before_fit(self) -> None:
        """Expand each schedule to one per layer group."""
        n = self.learn.n_groups
        self._scheds = []
        for name, s in self.scheds.items():
            fs = list(s) if isinstance(s, (list, tuple)) else [s] * n
            if len(fs) != n:
                raise ValueError(f"schedule for {name!r} has {len(fs)} entries for {n} layer groups")
            self._scheds.append((name, fs))

    def before_batch(self) -> None:
        """Set every group's value for the current position."""
        learn = self.learn
        if not learn.training:
            return
        pos = learn.pct_train
        pgs = learn.opt.param_groups
        for name, fs in self._scheds:
            vals = [f(pos) for f in fs]
            if name == "lr":
                for pg in pgs:
                    pg["lr"] = vals[pg["layer_group"]]
            else:
                for pg in pgs:
                    set_hyper(pg, name, vals[pg["layer_group"]])




class OneCycle(ParamScheduler):
    """fastai's one-cycle policy: per group, LR `combined_cos(pct_start, lr_max/div, lr_max, lr_max/div_final)`
    and momentum `combined_cos(pct_start, *moms)`.

    `lr_max` may be a float (same peak for every group), `slice(stop)`, `slice(start, stop)` or a list:
    that spreads the *peaks* across layer groups; the shape over time is always the same cycle.
    """

    def __init__(self, lr_max: LRLike | None = None, div: float = 25.0, div_final: float = 1e5,
                 pct_start: float = 0.25, moms: tuple[float, float, float] | None = None,
                 max_lr: LRLike | None = None) -> None:
        lr_max = pick_max_lr(max_lr, lr_max)
        if div <= 0 or div_final <= 0:
            raise ValueError(f"div and div_final must be positive, got div={div}, div_final={div_final}")
        combined_cos(pct_start, 0, 0, 0)  # validates pct_start now, not at the first batch
        self.lr_max, self.div, self.div_final, self.pct_start, self.moms = lr_max, div, div_final, pct_start, moms
        super().__init__({})

    def before_fit(self) -> None:
        """Build the per-group schedules from the learner's groups, `lr` and `moms` defaults."""
        learn = self.learn
        peaks = learn.lr_range(learn.lr if self.lr_max is None else self.lr_max)
        moms = self.moms if self.moms is not None else learn.moms
        self.peaks = peaks
        self.scheds = {
            "lr": [combined_cos(self.pct_start, p / self.div, p, p / self.div_final) for p in peaks],
            "mom": combined_cos(self.pct_start, *moms),
        }
        super().before_fit()


def pick_max_lr(max_lr: Any, lr_max: Any) -> Any:
    """`max_lr` (fastai v1's name) and `lr_max` (v2's) are the same argument; refuse both at once."""
    if max_lr is not None and lr_max is not None:
        raise TypeError("give either max_lr or lr_max (they are the same argument), not both")
    return lr_max if max_lr is None else max_lr


def fit_one_cycle(learn: Learner, n_epoch: int, max_lr: LRLike | None = None, div: float = 25.0,
                  div_final: float = 1e5, pct_start: float = 0.25, wd: float | None = None,
                  moms: tuple[float, float, float] | None = None, cbs: Any = None, lr_max: LRLike | None = None,
                  start_epoch: int = 0, resume: bool = False) -> None:
    """Fit `n_epoch` epochs with the one-cycle policy (see `OneCycle`)."""
    sched = OneCycle(pick_max_lr(max_lr, lr_max), div, div_final, pct_start, moms)
    if sched.lr_max is not None:
        learn.lr_range(sched.lr_max)  # bad input fails before anything changes
    learn.fit(n_epoch, wd=wd, cbs=[sched, *listify(cbs)], start_epoch=start_epoch, resume=resume)


def fit_flat_cos(learn: Learner, n_epoch: int, lr: LRLike | None = None, div_final: float = 1e5,
                 pct_start: float = 0.75, wd: float | None = None, cbs: Any = None, start_epoch: int = 0,
                 resume: bool = False) -> None:
    """Fit flat at `lr` for `pct_start` of training, then cosine-anneal to `lr / div_final`."""
    lrs = learn.lr_range(learn.lr if lr is None else lr)
    sched = ParamScheduler({"lr": [combined_cos(pct_start, x, x, x / div_final) for x in lrs]})
    learn.fit(n_epoch, wd=wd, cbs=[sched, *listify(cbs)], start_epoch=start_epoch, resume=resume)


def fine_tune(learn: Learner, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
              pct_start: float = 0.3, div: float = 5.0, **kwargs: Any) -> None:
    """fastai's transfer-learning recipe: train the head frozen, then everything with discriminative LRs."""
    learn.lr_range(base_lr)
    learn.freeze()
    fit_one_cycle(learn, freeze_epochs, slice(base_lr), pct_start=0.99, **kwargs)
    base_lr /= 2
    learn.unfreeze()
    fit_one_cycle(learn, epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, **kwargs)
