"""Hyper-parameter schedules: fastai's formulas, a general `ParamScheduler`, `OneCycle`, and the fit recipes."""
from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from ..checks import check_div, check_int, check_moms, check_number, check_pct
from ..groups import LayerDecay, LRLike, layer_decay, set_hyper
from .core import Callback, listify

if TYPE_CHECKING:
    from ..learner import Learner

Sched = Callable[[float], float]
SchedLike = Callable[[float], Any]
"""A schedule: position in [0, 1] -> a value, or one value per layer group."""


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
    """fastai's `ParamScheduler`: sets hyper-parameters (`lr`, `mom`, `wd`, `sqr_mom` or any param-group key)
    before every training batch.

    `scheds` maps a name to a schedule `f(pos)`, `pos` being the fraction of the fit's training batches done.
    A schedule returns one value for every layer group, or one value per layer group (an array or list, e.g.
    `SchedCos(np.array([1e-4, 1e-3]), 0)`); a name may also map to a list of schedules, one per layer group.
    `peaks` holds each group's highest planned value per name (what `plot_sched`'s legend shows). Every value is
    checked before it reaches the optimizer: a NaN, infinite or negative one stops the fit with a message.
    """

    order = 10
    run_dry = True
    run_valid = False
    needs_len = True  # the position needs the number of batches per epoch

    def __init__(self, scheds: dict[str, SchedLike | Sequence[SchedLike]]) -> None:
        if not isinstance(scheds, dict):
            raise TypeError("ParamScheduler takes a dict of schedules, e.g. "
                            f"ParamScheduler({{'lr': SchedCos(1e-3, 1e-5)}}), not {type(scheds).__name__}")
        for name, s in scheds.items():
            fs = s if isinstance(s, (list, tuple)) else [s]
            if not fs or not all(callable(f) for f in fs):
                raise TypeError(f"the schedule for {name!r} must be a function of the position in [0, 1] (e.g. "
                                f"SchedLin(0.1, 0.01)) or a list of them, one per layer group; got {s!r}")
        self.scheds = scheds
        self.peaks: dict[str, list[float]] = {}

    def before_fit(self) -> None:
        """Check every schedule against the optimizer and the number of layer groups."""
        opt, n = self.learn.opt, self.learn.n_groups
        if opt is None:
            raise RuntimeError("ParamScheduler runs inside a fit, after the learner created its optimizer")
        self._scheds: list[tuple[str, list[SchedLike], bool]] = []
        for name, s in self.scheds.items():
            _check_hyper_name(name, opt.param_groups, type(opt).__name__)
            per_group = isinstance(s, (list, tuple))
            fs: list[SchedLike] = list(s) if isinstance(s, (list, tuple)) else [cast(SchedLike, s)]
            if per_group and len(fs) != n:
                raise ValueError(f"schedule for {name!r} has {len(fs)} entries for {n} layer groups")
            self._scheds.append((name, fs, per_group))
            self._group_values(name, fs, per_group, 0.0, n)  # a wrong number of values fails before any batch
        grid = [self._group_values(name, fs, pg, i / 256, n) for name, fs, pg in self._scheds for i in range(257)]
        self.peaks = {name: [max(v[g] for v in grid[k * 257:(k + 1) * 257]) for g in range(n)]
                      for k, (name, _, _) in enumerate(self._scheds)}
        self.peaks.update(self.exact_peaks())
        self.learn.group_plan.peaks.update(self.peaks)  # the plan, for the recorder, loggers and plots

    def exact_peaks(self) -> dict[str, list[float]]:
        """Peaks known exactly (rather than read off the schedule at 257 points); subclasses give theirs."""
        return {}

    def _group_values(self, name: str, fs: list[SchedLike], per_group: bool, pos: float, n: int) -> list[float]:
        if per_group:
            vals = [f(pos) for f in fs]
            return vals if all(type(v) is float for v in vals) else [_scalar(name, v) for v in vals]
        v = fs[0](pos)
        return [v] * n if type(v) is float else group_values(name, v, n)

    def before_batch(self) -> None:
        """Set every group's value for the current position."""
        learn = self.learn
        pos, n = learn.pct_train, learn.n_groups
        assert learn.opt is not None
        pgs = learn.opt.param_groups
        for name, fs, per_group in self._scheds:
            vals = self._group_values(name, fs, per_group, pos, n)
            total = sum(vals)  # NaN or inf in any value makes the sum NaN or inf: one check per schedule
            if not (math.isfinite(total) and min(vals) >= 0):
                raise ValueError(f"the {name!r} schedule gives {vals} at position {pos:.4f} (epoch {learn.epoch}, "
                                 f"batch {learn.iter}); values must be finite and >= 0, so nothing was applied")
            if name == "lr":
                for pg in pgs:
                    pg["lr"] = vals[pg["layer_group"]]
            elif name == "sqr_mom":
                for pg in pgs:
                    _set_sqr_mom(pg, vals[pg["layer_group"]])
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
        self._planned: list[float] | None = None
        super().__init__({})

    def plan(self, peaks: Sequence[float]) -> None:
        """Use these per-group peaks at the next fit (what `fit_args` made of `lr_max`: `fit_one_cycle` computes
        them once and hands them over)."""
        self._planned = [float(p) for p in peaks]

    def before_fit(self) -> None:
        """Build the per-group schedules from the planned peaks (else the learner's groups and `lr`) and `moms`."""
        learn = self.learn
        planned, self._planned = self._planned, None
        self._peaks = planned if planned is not None and len(planned) == learn.n_groups else \
            learn.lr_range(learn.lr if self.lr_max is None else self.lr_max)
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


def _one_cycle_args(learn: Learner, n_epoch: int, max_lr: LRLike | None = None, div: float = 25.0,
                    div_final: float = 1e5, pct_start: float = 0.25, wd: float | None = None,
                    moms: tuple[float, float, float] | None = None, cbs: Any = None, lr_max: LRLike | None = None,
                    start_epoch: int = 0, resume: bool = False) -> dict[str, Any]:
    """`fit_one_cycle`'s arguments (same defaults), every one checked, as `fit_checked` takes them; the per-group
    peaks are computed once, here, and handed to the `OneCycle` it adds. Nothing changes."""
    sched = OneCycle(pick_max_lr(max_lr, lr_max), div, div_final, pct_start, moms)
    a = learn.fit_args(n_epoch, sched.lr_max, wd, [sched, *listify(cbs)], start_epoch, resume)
    sched.plan(a["lrs"])
    return a


def fit_one_cycle(learn: Learner, n_epoch: int, max_lr: LRLike | None = None, div: float = 25.0,
                  div_final: float = 1e5, pct_start: float = 0.25, wd: float | None = None,
                  moms: tuple[float, float, float] | None = None, cbs: Any = None, lr_max: LRLike | None = None,
                  start_epoch: int = 0, resume: bool = False) -> None:
    """One-cycle policy; `max_lr` (alias `lr_max`) spreads peak LRs across groups, the cycle shapes time (see
    `OneCycle`)."""
    learn.fit_checked(_one_cycle_args(learn, n_epoch, max_lr, div, div_final, pct_start, wd, moms, cbs, lr_max,
                                      start_epoch, resume))


def fit_flat_cos(learn: Learner, n_epoch: int, lr: LRLike | None = None, div_final: float = 1e5,
                 pct_start: float = 0.75, wd: float | None = None, cbs: Any = None, start_epoch: int = 0,
                 resume: bool = False) -> None:
    """Flat at `lr` for `pct_start` of training, then cosine annealing to `lr / div_final`; momentum is not
    scheduled."""
    div_final, pct_start = check_div(div_final, "div_final"), check_pct(pct_start)
    a = learn.fit_args(n_epoch, lr, wd, cbs, start_epoch, resume)
    sched = ParamScheduler({"lr": [combined_cos(pct_start, x, x, x / div_final) for x in a["lrs"]]})
    learn.fit_checked({**a, "cbs": [sched, *a["cbs"]]})


def fit_sgdr(learn: Learner, n_cycles: int, cycle_len: int, lr_max: LRLike | None = None, cycle_mult: int = 2,
             cbs: Any = None, reset_opt: bool = False, wd: float | None = None, start_epoch: int = 0) -> None:
    """SGDR (Loshchilov & Hutter, fastai's `fit_sgdr`): `n_cycles` cosine annealings of every group's LR from its
    `lr_max` (a float, slice or list, as elsewhere) to 0, cycle i lasting `cycle_len * cycle_mult**i` epochs."""
    n_cycles = check_int(n_cycles, "n_cycles", low=1)
    cycle_len = check_int(cycle_len, "cycle_len", low=1)
    cycle_mult = check_int(cycle_mult, "cycle_mult", low=1)
    lens = [cycle_len * cycle_mult**i for i in range(n_cycles)]
    n_epoch = sum(lens)
    a = learn.fit_args(n_epoch, lr_max, wd, cbs, start_epoch)
    peaks = np.array(a["lrs"])
    sched = ParamScheduler({"lr": combine_scheds([n / n_epoch for n in lens], [SchedCos(peaks, 0) for _ in lens])})
    learn.fit_checked({**a, "cbs": [sched, *a["cbs"]]}, reset_opt)


def fine_tune(learn: Learner, epochs: int, base_lr: float | LayerDecay = 2e-3, freeze_epochs: int = 1,
              lr_mult: float = 100, pct_start: float = 0.3, div: float = 5.0, **kwargs: Any) -> None:
    """fastai's transfer-learning recipe: train the head frozen for `freeze_epochs`, then all groups with
    `slice(base_lr/2/lr_mult, base_lr/2)`; with `base_lr=layer_decay(lr, decay)` the second phase uses
    `layer_decay(lr/2, decay)` instead (`lr_mult` is then unused). Every argument of both phases is checked before
    anything changes; other keyword arguments (`wd`, `moms`, `cbs`, `div_final`) go to both `fit_one_cycle` calls."""
    decay = base_lr.decay if isinstance(base_lr, LayerDecay) else None
    if isinstance(base_lr, LayerDecay):
        base_lr = base_lr.lr
    if isinstance(base_lr, slice) or isinstance(base_lr, (list, tuple)):
        raise TypeError(f"fine_tune's base_lr is one float, the head's peak LR (fastai's default 2e-3), got "
                        f"{base_lr!r}: fine_tune builds the slice itself (slice(base_lr/2/lr_mult, base_lr/2) after "
                        "unfreezing). For your own per-group peaks, call learn.freeze(); learn.fit_one_cycle(1, "
                        "...); learn.unfreeze(); learn.fit_one_cycle(n, slice(a, b))")
    base = check_number(base_lr, "base_lr", 0.0, low_open=True, hint=" (the head's peak LR, e.g. 2e-3)")
    epochs = check_int(epochs, "epochs", low=1, hint=" (epochs after unfreezing)")
    freeze_epochs = check_int(freeze_epochs, "freeze_epochs", low=0, hint=" (epochs with the body frozen)")
    lr_mult = check_number(lr_mult, "lr_mult", 1.0, hint=" (the head's LR over the first group's, e.g. 100)")
    first: LRLike = slice(base) if decay is None else layer_decay(base, decay)
    second: LRLike = slice(base / 2 / lr_mult, base / 2) if decay is None else layer_decay(base / 2, decay)
    frozen = _one_cycle_args(learn, freeze_epochs, first, pct_start=0.99, **kwargs) if freeze_epochs else None
    unfrozen = _one_cycle_args(learn, epochs, second, div=div, pct_start=pct_start, **kwargs)
    if frozen is not None:
        learn.freeze()
        learn.fit_checked(frozen)
    learn.unfreeze()
    learn.fit_checked(unfrozen)


# ---- fastai's schedule names: SchedLin, SchedCos, SchedNo, SchedExp, SchedPoly, combine_scheds ----------------
# (fastai.callback.schedule's formulas; `start`/`end` may be one value per layer group)

Value = float | np.ndarray


def sched_no(start: Value, end: Value, pos: float) -> Value:
    """Constant at `start`."""
    return start


def sched_poly(start: Value, end: Value, pos: float, power: float) -> Value:
    """Polynomial from `start` to `end`: `start + (end - start) * pos ** power`."""
    return start + (end - start) * pos**power


class Annealer:
    """A schedule `pos -> func(start, end, pos)`; what `SchedLin`, `SchedCos`, ... return (fastai's `_Annealer`)."""

    def __init__(self, func: Callable[[Any, Any, float], Any], start: Any, end: Any, name: str = "") -> None:
        self.func, self.name = func, name or getattr(func, "__name__", "Annealer")
        self.start, self.end = _as_value(start, f"{self.name} start"), _as_value(end, f"{self.name} end")

    def __call__(self, pos: float) -> Value:
        """The value at `pos` in [0, 1]: a float, or an array with one value per layer group."""
        return self.func(self.start, self.end, pos)

    def __repr__(self) -> str:
        return f"{self.name}({_fmt(self.start)}, {_fmt(self.end)})"


def annealer(f: Callable[[Any, Any, float], Any]) -> Callable[[Any, Any], Annealer]:
    """Decorator: `f(start, end, pos)` becomes `f(start, end)`, returning the schedule `pos -> f(start, end, pos)`."""

    @functools.wraps(f)
    def make(start: Any, end: Any) -> Annealer:
        return Annealer(f, start, end)

    return make


def SchedLin(start: Any, end: Any) -> Annealer:  # noqa: N802 (fastai's name)
    """Linear schedule from `start` to `end` (floats, or one value per layer group)."""
    return Annealer(sched_lin, start, end, "SchedLin")


def SchedCos(start: Any, end: Any) -> Annealer:  # noqa: N802
    """Cosine schedule from `start` to `end`: `start + (1 + cos(pi * (1 - pos))) * (end - start) / 2`."""
    return Annealer(sched_cos, start, end, "SchedCos")


def SchedNo(start: Any, end: Any) -> Annealer:  # noqa: N802
    """Constant schedule at `start` (`end` is ignored, as in fastai)."""
    return Annealer(sched_no, start, end, "SchedNo")


def SchedExp(start: Any, end: Any) -> Annealer:  # noqa: N802
    """Exponential schedule from `start` to `end`: `start * (end / start) ** pos` (both non-zero, same sign)."""
    sched = Annealer(sched_exp, start, end, "SchedExp")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(sched.end, dtype=np.float64) / np.asarray(sched.start, dtype=np.float64)
    if not np.all(np.isfinite(ratio) & (ratio > 0)):
        raise ValueError(f"SchedExp({_fmt(sched.start)}, {_fmt(sched.end)}): start and end must be non-zero and of the "
                         "same sign, since the value is start * (end / start) ** pos; use SchedLin or SchedCos to "
                         "reach zero")
    return sched


def SchedPoly(start: Any, end: Any, power: float) -> Annealer:  # noqa: N802
    """Polynomial schedule (of `power`) from `start` to `end`: `start + (end - start) * pos ** power`."""
    if not isinstance(power, (int, float)) or not math.isfinite(power) or power <= 0:
        raise ValueError(f"SchedPoly power must be a positive number, got {power!r}")
    return Annealer(partial(sched_poly, power=float(power)), start, end, f"SchedPoly[power={power:g}]")


class CombinedSched:
    """`scheds[i]` over the fraction `pcts[i]` of training, each run over its own [0, 1] (see `combine_scheds`)."""

    def __init__(self, pcts: Sequence[float], scheds: Sequence[SchedLike]) -> None:
        self.pcts, self.scheds = list(pcts), list(scheds)
        self.bounds = [0.0]
        for p in self.pcts:
            self.bounds.append(self.bounds[-1] + p)

    def __call__(self, pos: float) -> Any:
        """The value of the phase `pos` falls in, at the position within that phase."""
        n = len(self.scheds)
        i = min(max(bisect.bisect_right(self.bounds, pos) - 1, 0), n - 1)
        while i > 0 and self.pcts[i] == 0:  # past the end of training with empty last phases: stay at the last one
            i -= 1
        width = self.pcts[i]
        return self.scheds[i]((pos - self.bounds[i]) / width if width else 1.0)

    def __repr__(self) -> str:
        return f"combine_scheds({self.pcts}, {self.scheds})"


def combine_scheds(pcts: Sequence[float], scheds: Sequence[SchedLike]) -> CombinedSched:
    """Combine `scheds` in one schedule: `scheds[i]` runs over the fraction `pcts[i]` of training (fastai's)."""
    try:
        pcts = [float(p) for p in pcts]
    except (TypeError, ValueError):
        raise TypeError(f"combine_scheds: pcts must be a list of fractions, e.g. [0.3, 0.7]; got {pcts!r}") from None
    scheds = list(scheds)
    if len(pcts) != len(scheds) or not scheds:
        raise ValueError(f"combine_scheds got {len(pcts)} pcts for {len(scheds)} schedules: give one fraction of "
                         "training per schedule, e.g. combine_scheds([0.25, 0.75], [SchedLin(a, b), SchedCos(b, c)])")
    if not all(math.isfinite(p) and p >= 0 for p in pcts) or not math.isclose(sum(pcts), 1.0, abs_tol=1e-6):
        raise ValueError(f"combine_scheds: pcts must be non-negative fractions of training summing to 1, got {pcts} "
                         f"(sum {sum(pcts):g})")
    bad = [s for s in scheds if not callable(s)]
    if bad:
        raise TypeError(f"combine_scheds: every schedule must be a function of the position, got {bad[0]!r}")
    return CombinedSched(pcts, scheds)


def group_values(name: str, v: Any, n_groups: int) -> list[float]:
    """A schedule's value as one float per layer group: a float for every group, or one value per group."""
    if isinstance(v, (int, float)):
        return [float(v)] * n_groups
    try:
        vals = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"the schedule for {name!r} returned {v!r}; a schedule returns a number or one number per "
                        "layer group") from None
    if vals.size == 1:
        return [float(vals[0])] * n_groups
    if vals.size != n_groups:
        raise ValueError(f"the schedule for {name!r} returned {vals.size} values for {n_groups} layer groups; give "
                         f"start/end as a float or as {n_groups} values (one per layer group)")
    return [float(x) for x in vals]


def _scalar(name: str, v: Any) -> float:
    vals = group_values(name, v, 1)
    return vals[0]


def _as_value(x: Any, what: str) -> Value:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        v: Value = float(x)
    elif isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{what} must be a number or one number per layer group, got {x!r}")
    elif isinstance(x, slice):
        raise TypeError(f"{what} is a slice; a schedule takes a float or one value per layer group: use "
                        "learn.lr_range(slice(...)) to spread a slice over the groups")
    else:
        try:
            v = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be a number or one number per layer group, got {x!r}") from None
        if v.ndim > 1:
            raise ValueError(f"{what} must be a number or a 1-d list of numbers (one per layer group), got shape "
                             f"{v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{what} is {x!r}; schedule values must be finite")
    return v


def _fmt(v: Value) -> str:
    return f"{v:g}" if isinstance(v, float) else "[" + ", ".join(f"{x:g}" for x in np.atleast_1d(v)) + "]"


def _check_hyper_name(name: str, pgs: list[dict], opt_name: str) -> None:
    pg = pgs[0]
    if name == "mom" and "betas" not in pg and "momentum" not in pg and "mom" not in pg:
        raise ValueError(f"{opt_name} has no momentum (no 'betas' or 'momentum' in its param groups): remove 'mom' "
                         "from the schedules")
    if name == "sqr_mom" and "betas" not in pg and "alpha" not in pg and "sqr_mom" not in pg:
        raise ValueError(f"{opt_name} has no squared-gradient momentum (no 'betas' or 'alpha'): remove 'sqr_mom'")
    if name not in ("lr", "mom", "wd", "sqr_mom") and name not in pg:
        keys = sorted(k for k in pg if k not in ("params", "layer_group", "apply_wd"))
        raise ValueError(f"cannot schedule {name!r}: {opt_name}'s param groups have no such key. Schedule 'lr', "
                         f"'mom', 'wd', 'sqr_mom' or one of {keys}")


def _set_sqr_mom(pg: dict, v: float) -> None:
    if "sqr_mom" in pg:  # fastai's stepper Optimizer names it so
        pg["sqr_mom"] = v
    elif "betas" in pg:
        pg["betas"] = (pg["betas"][0], v)
    else:
        pg["alpha"] = v
