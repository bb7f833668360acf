"""Hyper-parameter schedules: fastai's formulas, a general `ParamScheduler`, `OneCycle`, and the fit recipes."""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .callback import Callback, listify
from .checks import check_div, check_int, check_moms, check_number, check_pct
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
    pct = check_pct(pct)

    def sched(pos: float) -> float:
        if pos < pct:
            return sched_cos(start, middle, pos / pct)
        return sched_cos(middle, end, (pos - pct) / (1 - pct)) if pct < 1 else end

    return sched


class ParamScheduler(Callback):
    """Sets hyper-parameters (`lr`, `mom`, `wd` or any param-group key) before every training batch.

    `scheds` maps a name to one schedule `f(pos) -> value` for all layer groups, or to a list of
    schedules, one per layer group. `pos` is the fraction of the fit's training batches done. `peaks` holds
    each group's highest planned value per name (what `plot_sched`'s legend shows). Every value is checked
    before it reaches the optimizer: a NaN, infinite or negative one stops the fit with a message.
    """

    order = 10
    run_dry = True
    run_valid = False
    needs_len = True  # the position needs the number of batches per epoch

    def __init__(self, scheds: dict[str, Sched | Sequence[Sched]]) -> None:
        if not isinstance(scheds, dict):
            raise TypeError("ParamScheduler takes a dict of schedules, e.g. {'lr': SchedCos(1e-3, 1e-5)}, "
                            f"got {scheds!r}")
        for name, s in scheds.items():
            if not (callable(s) or (isinstance(s, (list, tuple)) and all(callable(f) for f in s))):
                raise TypeError(f"the schedule for {name!r} must be a function of the position (0 to 1) or a list "
                                f"of them, one per layer group; got {s!r}")
        self.scheds = scheds
        self.peaks: dict[str, list[float]] = {}

    def before_fit(self) -> None:
        """Expand each schedule to one per layer group."""
        n = self.learn.n_groups
        self._scheds: list[tuple[str, list[Sched]]] = []
        for name, s in self.scheds.items():
            fs: list[Sched] = list(s) if isinstance(s, (list, tuple)) else [s] * n  # type: ignore[list-item]
            if len(fs) != n:
                raise ValueError(f"schedule for {name!r} has {len(fs)} entries for {n} layer groups")
            self._scheds.append((name, fs))
        self.peaks = {**{name: [max(f(i / 256) for i in range(257)) for f in fs] for name, fs in self._scheds},
                      **self.exact_peaks()}

    def exact_peaks(self) -> dict[str, list[float]]:
        """Peaks known exactly (rather than read off the schedule at 257 points); subclasses give theirs."""
        return {}

    def before_batch(self) -> None:
        """Set every group's value for the current position."""
        learn = self.learn
        pos = learn.pct_train
        assert learn.opt is not None
        pgs = learn.opt.param_groups
        for name, fs in self._scheds:
            vals = [f(pos) for f in fs]
            if not all(math.isfinite(v) and v >= 0 for v in vals):
                raise ValueError(f"the {name!r} schedule gives {vals} at position {pos:.4f} (epoch {learn.epoch}, "
                                 f"batch {learn.iter}); values must be finite and >= 0, so nothing was applied")
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
        self.lr_max = pick_max_lr(max_lr, lr_max)
        self.div, self.div_final = check_div(div, "div"), check_div(div_final, "div_final")
        self.pct_start = check_pct(pct_start)
        self.moms = None if moms is None else check_moms(moms)
        super().__init__({})

    def before_fit(self) -> None:
        """Build the per-group schedules from the learner's groups, `lr` and `moms` defaults."""
        learn = self.learn
        self._peaks = learn.lr_range(learn.lr if self.lr_max is None else self.lr_max)
        moms = self.moms if self.moms is not None else learn.moms
        self.scheds = {
            "lr": [combined_cos(self.pct_start, p / self.div, p, p / self.div_final) for p in self._peaks],
            "mom": combined_cos(self.pct_start, *moms),
        }
        super().before_fit()

    def exact_peaks(self) -> dict[str, list[float]]:
        """Each group's `lr_max`."""
        return {"lr": list(self._peaks)}


def pick_max_lr(max_lr: Any, lr_max: Any) -> Any:
    """`max_lr` (fastai v1's name) and `lr_max` (v2's) are the same argument; refuse both at once."""
    if max_lr is not None and lr_max is not None:
        raise TypeError("give either max_lr or lr_max (they are the same argument), not both")
    return lr_max if max_lr is None else max_lr


def _one_cycle_args(learn: Learner, n_epoch: int, max_lr: LRLike | None = None, **kwargs: Any) -> dict[str, Any]:
    """`fit`'s arguments for `fit_one_cycle(learn, n_epoch, max_lr, **kwargs)` (its defaults filled in), every one
    checked; nothing changes."""
    b = inspect.signature(fit_one_cycle).bind(learn, n_epoch, max_lr, **kwargs)
    b.apply_defaults()
    a = b.arguments
    sched = OneCycle(pick_max_lr(a["max_lr"], a["lr_max"]), a["div"], a["div_final"], a["pct_start"], a["moms"])
    f = learn.fit_args(a["n_epoch"], sched.lr_max, a["wd"], [sched, *listify(a["cbs"])], a["start_epoch"], a["resume"])
    return {k: f[k] for k in ("n_epoch", "wd", "cbs", "start_epoch", "resume")}


def fit_one_cycle(learn: Learner, n_epoch: int, max_lr: LRLike | None = None, div: float = 25.0,
                  div_final: float = 1e5, pct_start: float = 0.25, wd: float | None = None,
                  moms: tuple[float, float, float] | None = None, cbs: Any = None, lr_max: LRLike | None = None,
                  start_epoch: int = 0, resume: bool = False) -> None:
    """One-cycle policy; `max_lr` (alias `lr_max`) spreads peak LRs across groups, the cycle shapes time (see
    `OneCycle`)."""
    learn.fit(**_one_cycle_args(learn, n_epoch, max_lr, div=div, div_final=div_final, pct_start=pct_start, wd=wd,
                                moms=moms, cbs=cbs, lr_max=lr_max, start_epoch=start_epoch, resume=resume))


def fit_flat_cos(learn: Learner, n_epoch: int, lr: LRLike | None = None, div_final: float = 1e5,
                 pct_start: float = 0.75, wd: float | None = None, cbs: Any = None, start_epoch: int = 0,
                 resume: bool = False) -> None:
    """Flat at `lr` for `pct_start` of training, then cosine annealing to `lr / div_final`; momentum is not
    scheduled."""
    lrs = learn.lr_range(learn.lr if lr is None else lr)
    div_final, pct_start = check_div(div_final, "div_final"), check_pct(pct_start)
    sched = ParamScheduler({"lr": [combined_cos(pct_start, x, x, x / div_final) for x in lrs]})
    learn.fit(n_epoch, lr=lrs, wd=wd, cbs=[sched, *listify(cbs)], start_epoch=start_epoch, resume=resume)


def fine_tune(learn: Learner, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
              pct_start: float = 0.3, div: float = 5.0, **kwargs: Any) -> None:
    """fastai's transfer-learning recipe: train the head frozen for `freeze_epochs`, then all groups with
    `slice(base_lr/2/lr_mult, base_lr/2)`. Every argument of both phases is checked before anything changes;
    other keyword arguments (`wd`, `moms`, `cbs`, `div_final`) go to both `fit_one_cycle` calls."""
    if isinstance(base_lr, slice) or isinstance(base_lr, (list, tuple)):
        raise TypeError(f"fine_tune's base_lr is one float, the head's peak LR (fastai's default 2e-3), got "
                        f"{base_lr!r}: fine_tune builds the slice itself (slice(base_lr/2/lr_mult, base_lr/2) after "
                        "unfreezing). For your own per-group peaks, call learn.freeze(); learn.fit_one_cycle(1, "
                        "...); learn.unfreeze(); learn.fit_one_cycle(n, slice(a, b))")
    base = check_number(base_lr, "base_lr", 0.0, low_open=True, hint=" (the head's peak LR, e.g. 2e-3)")
    epochs = check_int(epochs, "epochs", low=1, hint=" (epochs after unfreezing)")
    freeze_epochs = check_int(freeze_epochs, "freeze_epochs", low=0, hint=" (epochs with the body frozen)")
    lr_mult = check_number(lr_mult, "lr_mult", 1.0, hint=" (the head's LR over the first group's, e.g. 100)")
    frozen = _one_cycle_args(learn, freeze_epochs, slice(base), pct_start=0.99, **kwargs) if freeze_epochs else None
    unfrozen = _one_cycle_args(learn, epochs, slice(base / 2 / lr_mult, base / 2), div=div, pct_start=pct_start,
                               **kwargs)
    if frozen is not None:
        learn.freeze()
        learn.fit(**frozen)
    learn.unfreeze()
    learn.fit(**unfrozen)
