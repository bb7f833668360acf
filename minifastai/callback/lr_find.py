"""The learning-rate finder: an exponential LR sweep over training batches, suggestions, and its plot.

`lr_find` trains for up to `num_it` batches while the learning rate grows from `start_lr` to `end_lr`,
records the loss, and then puts everything back: weights, optimizer state, RNG states, `requires_grad`
flags, train/eval modes and the recorder's previous contents. Suggestion functions (`valley`, `minimum`,
`steep`, `slide`) follow fastai's algorithms and read the trimmed, smoothed sweep; they take fastai's
`(lrs, losses, num_it)` arguments (`num_it` is not needed) and return the suggested LR as a float.
"""
from __future__ import annotations

import collections
import copy
import functools
import inspect
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import groups as G
from ..data import n_batches
from .core import Callback, CancelFitException, CancelValidException
from .recorder import Recorder

if TYPE_CHECKING:
    from ..learner import Learner

SuggestFunc = Callable[..., Any]


# ---- suggestion functions ------------------------------------------------------------------------
def _as_arrays(lrs: Any, losses: Any) -> tuple[np.ndarray, np.ndarray]:
    lrs = np.asarray(lrs, dtype=np.float64).reshape(-1)
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    if len(lrs) != len(losses):
        raise ValueError(f"lrs and losses must have the same length, got {len(lrs)} and {len(losses)}")
    if len(lrs) < 2:
        raise ValueError(f"a suggestion needs at least 2 points of the sweep, got {len(lrs)}")
    return lrs, losses


def valley(lrs: Sequence[float], losses: Sequence[float], num_it: int | None = None) -> float:
    """fastai's default: the LR about halfway into the longest valley (longest decreasing run of losses)."""
    x, y = _as_arrays(lrs, losses)
    n = len(y)
    # length of the longest strictly decreasing subsequence ending at each point
    run = np.ones(n, dtype=np.int64)
    for i in range(1, n):
        longer = run[:i][y[:i] > y[i]]
        if len(longer):
            run[i] = longer.max() + 1
    end = int(np.argmax(run))  # first point where the longest valley ends
    length = int(run[end])
    third = length / 3
    # fastai places the valley's start `length` points before its end and steps in 1/3 + 1/6 of it
    idx = max(0, end - length + int(third) + int(third / 2))
    return float(x[idx])


def minimum(lrs: Sequence[float], losses: Sequence[float], num_it: int | None = None) -> float:
    """One tenth of the LR where the (smoothed) loss is lowest."""
    x, y = _as_arrays(lrs, losses)
    return float(x[int(np.argmin(y))]) / 10


def steep(lrs: Sequence[float], losses: Sequence[float], num_it: int | None = None) -> float:
    """The LR where the loss falls fastest per unit of log(LR) (the left end of the steepest segment)."""
    x, y = _as_arrays(lrs, losses)
    slopes = np.diff(y) / np.diff(np.log(x))
    return float(x[int(np.argmin(slopes))])


def slide(lrs: Sequence[float], losses: Sequence[float], num_it: int | None = None, lr_diff: int = 15,
          thresh: float = 0.005, adjust_value: float = 1.0) -> float:
    """fastai's interval slide rule: walk left from the end until the loss gradient `lr_diff` points apart
    agrees within `thresh`; the LR where it last disagreed (times `adjust_value`)."""
    x, y = _as_arrays(lrs, losses)
    n = len(y)
    grad = np.gradient(y)
    lr_diff = max(1, min(lr_diff, n - 1))
    right, left = n - 1, n - 1 - lr_diff
    found = x[left]
    while left >= 0 and abs(grad[right] - grad[left]) > thresh:
        found = x[left]
        right, left = right - 1, left - 1
    return float(found) * adjust_value


class SuggestionMethod:
    """fastai's names for the suggestion functions: `lr_find(suggest_funcs=(SuggestionMethod.Valley,))`."""

    Valley = staticmethod(valley)
    Slide = staticmethod(slide)
    Minimum = staticmethod(minimum)
    Steep = staticmethod(steep)


def suggestion_name(func: SuggestFunc) -> str:
    """The field name of a suggestion function in the result (a `functools.partial` uses its function's)."""
    f = func.func if isinstance(func, functools.partial) else func
    return getattr(f, "__name__", type(f).__name__)


# ---- result --------------------------------------------------------------------------------------
class SuggestedLRs(tuple):
    """Base class of `lr_find`'s result: a named tuple with one field per suggestion function.

    `res = learn.lr_find(suggest_funcs=(minimum, steep))` gives `res.minimum`, `res.steep`, and
    unpacks like fastai's: `lr_min, lr_steep = res`. `isinstance(res, SuggestedLRs)` holds for every result.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, float]:
        """The suggestions by name."""
        return dict(zip(self._fields, self))


@functools.lru_cache(maxsize=64)
def _result_class(names: tuple[str, ...]) -> type:
    base = collections.namedtuple("SuggestedLRs", names)  # type: ignore[misc]
    return type("SuggestedLRs", (base, SuggestedLRs), {"__slots__": (), "__doc__": SuggestedLRs.__doc__})


def make_suggested_lrs(values: dict[str, float]) -> SuggestedLRs:
    """A `SuggestedLRs` named tuple with the given fields and values."""
    return _result_class(tuple(values))(*values.values())


@dataclass
class LRSweep:
    """What `lr_find` measured: per-batch LRs (iterations, groups), raw and smoothed losses, suggestions.

    `learn.recorder.lr_sweep` holds the latest one; `learn.recorder.plot_lr_find()` draws it.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smooth_losses: np.ndarray
    num_it: int
    stop_reason: str
    trim: tuple[int, int]
    group_names: list[str]
    suggestions: dict[str, float] = field(default_factory=dict)
    note: str | None = None

    @property
    def head_lrs(self) -> np.ndarray:
        """The LR of the last layer group per batch (all groups share it with a float `start_lr`/`end_lr`)."""
        return self.lrs[:, -1]

    def trimmed(self) -> tuple[np.ndarray, np.ndarray]:
        """(LRs, smoothed losses) of the points the suggestion functions read."""
        a, b = self.trim
        return self.head_lrs[a:b], self.smooth_losses[a:b]

    def plot(self, skip_end: int = 5) -> Any:
        """Smoothed and raw loss against the LR (log axis), every suggestion marked; returns the figure."""
        return plot_lr_sweep(self, skip_end)


# ---- the callback --------------------------------------------------------------------------------
class _Cycle:
    """Exactly `n` batches from `dl`, starting it over as often as needed."""

    def __init__(self, dl: Iterable, n: int) -> None:
        self.dl, self.n = dl, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator:
        done = 0
        while done < self.n:
            got = 0
            for b in self.dl:
                yield b
                got += 1
                done += 1
                if done >= self.n:
                    return
            if got == 0:
                raise ValueError("the training loader yielded no batches; lr_find needs training data")


class LRFinder(Callback):
    """Sweeps every layer group's LR from `start_lr` to `end_lr` exponentially over `num_it` training batches
    (`lr = start * (end/start) ** (i/num_it)` at batch i), records the loss and stops on divergence.

    Used by `Learner.lr_find`, which also restores the learner afterwards. It runs in `dry_run`, so
    `with learn.dry_run() as runs: learn.lr_find()` shows the planned sweep. `start_lr` and `end_lr` are one
    value per layer group.
    """

    order = 55
    run_after = Recorder  # the Recorder keeps each batch before a stop here cancels the rest of it
    run_dry = True

    def __init__(self, start_lr: G.LRLike = 1e-7, end_lr: G.LRLike = 10, num_it: int = 100,
                 stop_div: bool = True, beta: float = 0.98, restore: bool = True) -> None:
        n_any: Any = num_it  # any object may arrive here, whatever the annotation says
        if isinstance(n_any, (bool, np.bool_)) or not isinstance(n_any, Integral) or n_any < 1:
            raise ValueError(f"num_it={num_it!r}: the sweep needs a positive whole number of batches, e.g. 100")
        num_it = int(num_it)
        self._start, self._end = start_lr, end_lr
        self.num_it, self.stop_div, self.beta, self.restore = num_it, stop_div, beta, restore

    def before_fit(self) -> None:
        """Check the LRs (fastai's defaults: 1e-7 to 10 in every group), keep the weights and optimizer state
        to put back after the sweep (`restore`), and start empty records; the fit's schedule position now counts
        towards `num_it`."""
        learn = self.learn
        self.start_lr, self.end_lr = learn.lr_range(self._start), learn.lr_range(self._end)
        if len(self.start_lr) != learn.n_groups or len(self.end_lr) != learn.n_groups:
            raise ValueError(f"LRFinder needs one start and end LR per layer group ({learn.n_groups})")
        self._saved = None
        if self.restore and not learn.dry:  # fastai's LRFinder saves the model and loads it back after the fit
            assert learn.opt is not None
            self._saved = ({k: v.detach().clone() for k, v in learn.model.state_dict().items()},
                           copy.deepcopy(learn.opt.state_dict()))
        learn.loop.set_schedule_length(self.num_it)
        self.lrs: list[list[float]] = []
        self.losses: list[float] = []
        self.smooth: list[float] = []
        self._avg, self.best = 0.0, math.inf
        self.stop_reason = f"ran all {self.num_it} batches"

    def before_train(self) -> None:
        """Cycle the training loader so that one epoch has exactly `num_it` batches."""
        learn = self.learn
        assert learn.dl is not None
        learn.dl, learn.n_iter = _Cycle(learn.dl, self.num_it), self.num_it

    def before_batch(self) -> None:
        """Set this batch's LR in every layer group."""
        learn = self.learn
        if not learn.training:
            return
        pos = learn.train_iter / self.num_it
        lrs = [s * (e / s) ** pos for s, e in zip(self.start_lr, self.end_lr)]
        assert learn.opt is not None
        G.set_group_hypers(learn.opt, "lr", lrs)

    def after_batch(self) -> None:
        """Record LR and loss; stop at `num_it`, or when the smoothed loss is NaN or over 4x its best."""
        learn = self.learn
        if not learn.training:
            return
        if not learn.dry:
            assert learn.opt is not None
            self.lrs.append(G.group_hypers(learn.opt, "lr", learn.n_groups))
            loss = float(learn.loss.detach())  # one sync per batch is fine for a short sweep
            self.losses.append(loss)
            self._avg = self.beta * self._avg + (1 - self.beta) * loss
            smooth = self._avg / (1 - self.beta ** len(self.losses))
            self.smooth.append(smooth)
            if smooth < self.best:
                self.best = smooth
            if self.stop_div and (math.isnan(smooth) or smooth > 4 * self.best):
                what = "was NaN" if math.isnan(smooth) else f"exceeded 4x its best ({self.best:.4g})"
                self.stop_reason = (f"stopped at batch {len(self.losses)} of {self.num_it} "
                                    f"(lr {self.lrs[-1][-1]:.3g}): the smoothed loss {what}")
                raise CancelFitException()
        if learn.train_iter >= self.num_it:
            raise CancelFitException()

    def before_validate(self) -> None:
        """The sweep has no validation phase."""
        raise CancelValidException()

    def after_fit(self) -> None:
        """Put back the weights and optimizer state kept in `before_fit` (when used on its own in `fit`)."""
        if self._saved is None:
            return
        weights, opt_state = self._saved
        self._saved = None
        learn = self.learn
        assert learn.opt is not None
        learn.opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            learn.model.load_state_dict(weights)
        learn.opt.load_state_dict(opt_state)


# ---- lr_find -------------------------------------------------------------------------------------
def lr_find(learn: Learner, start_lr: G.LRLike = 1e-7, end_lr: G.LRLike = 10, num_it: int = 100,
            stop_div: bool = True, suggest_funcs: Sequence[SuggestFunc] | SuggestFunc | None = None,
            show_plot: bool = True) -> SuggestedLRs | None:
    """Sweep the LR exponentially over `num_it` training batches, restore the learner, return suggestions.

    Every layer group gets the swept LR (as in fastai); `start_lr`/`end_lr` also take a slice or a list for
    one value per group. `suggest_funcs` defaults to `(valley,)`; each function reads the smoothed losses
    from point `num_it // 10` to 5 before the end. Inside `learn.dry_run()` only the planned sweep is
    recorded, and this returns None.
    """
    n_any: Any = num_it  # any object may arrive here, whatever the annotation says
    if isinstance(n_any, (bool, np.bool_)) or not isinstance(n_any, Integral):
        raise TypeError(f"num_it={num_it!r}: lr_find's number of batches must be a whole number (typical: 100)")
    num_it = int(num_it)
    if num_it < 6:
        raise ValueError(f"num_it={num_it!r}: lr_find needs at least 6 batches (typical: 100) to suggest")
    starts, ends = learn.lr_range(start_lr), learn.lr_range(end_lr)
    for i, (s, e) in enumerate(zip(starts, ends)):
        if s >= e:
            raise ValueError(f"start_lr must be below end_lr (group {i}: {s:g} >= {e:g}); the sweep goes up, "
                             "e.g. lr_find(start_lr=1e-7, end_lr=10)")
    funcs = _suggest_funcs(suggest_funcs)
    if not learn.dry:
        train = learn.dls.train
        if train is None or n_batches(train) == 0:
            raise ValueError("lr_find needs training batches, but dls.train is empty or missing")
    finder = _run_sweep(learn, starts, ends, num_it, stop_div)
    if learn.dry:
        return None
    sweep = _make_sweep(learn, finder, funcs)
    if getattr(learn, "recorder", None) is not None:
        learn.recorder.lr_sweep = sweep
    if sweep.note:
        warnings.warn(sweep.note, stacklevel=3)
    if show_plot:
        sweep.plot()
    return make_suggested_lrs(sweep.suggestions)


def _run_sweep(learn: Learner, starts: Sequence[float], ends: Sequence[float], num_it: int, stop_div: bool
               ) -> LRFinder:
    """One sweep (every group from its start to its end LR), with the learner restored afterwards."""
    finder = LRFinder(starts, ends, num_it, stop_div, restore=False)  # the snapshot below restores more
    saved = learn.snapshot()  # the sweep trains: weights, optimizer, RNG, loop state and callbacks come back
    hidden = [cb for cb in learn.cbs if not cb.run_in_lr_find]  # a sweep is not a fit to display or log
    try:
        for cb in hidden:
            learn.remove_cb(cb)
        learn.fit(1, lr=list(starts), cbs=finder)
    finally:
        saved.restore()
    return finder


def _suggest_funcs(suggest_funcs: Any) -> list[tuple[str, SuggestFunc]]:
    if suggest_funcs is None:
        suggest_funcs = (valley,)
    elif callable(suggest_funcs):
        suggest_funcs = (suggest_funcs,)
    out: list[tuple[str, SuggestFunc]] = []
    seen: collections.Counter[str] = collections.Counter()
    for i, f in enumerate(suggest_funcs):
        if not callable(f):
            raise TypeError(f"suggest_funcs must hold functions like valley or steep, got {f!r}")
        name = suggestion_name(f)
        if not name.isidentifier() or name.startswith("_"):
            name = f"suggestion_{i}"
        seen[name] += 1
        out.append((name if seen[name] == 1 else f"{name}_{seen[name]}", f))
    return out


def _call_suggestion(f: SuggestFunc, lrs: np.ndarray, losses: np.ndarray, num_it: int) -> float:
    """Call a suggestion function; fastai-style ones taking `(lrs, losses, num_it)` and returning
    `(lr, point)` work too."""
    if _n_required(f) >= 3:
        res = f(torch.tensor(lrs), torch.tensor(losses), num_it)
    else:
        res = f(lrs, losses)
    if isinstance(res, tuple):
        res = res[0]
    return float(res)


def _n_required(f: SuggestFunc) -> int:
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return 2
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.default is p.empty and p.kind in positional for p in params)


def _make_sweep(learn: Learner, finder: LRFinder, funcs: list[tuple[str, SuggestFunc]]) -> LRSweep:
    lrs = np.array(finder.lrs, dtype=np.float64).reshape(len(finder.lrs), learn.n_groups)
    losses, smooth = np.array(finder.losses), np.array(finder.smooth)
    n = len(losses)
    a, b = finder.num_it // 10, n - 5
    finite = np.flatnonzero(~np.isfinite(smooth))
    if len(finite):
        b = min(b, int(finite[0]))
    notes = []
    if b - a < 5:
        notes.append(f"the sweep has only {n} points ({finder.stop_reason}), too few to trim; the "
                     "suggestions use every finite point. Lower start_lr, or check the data and the loss")
        a, b = 0, int(finite[0]) if len(finite) else n
    sweep = LRSweep(lrs, losses, smooth, finder.num_it, finder.stop_reason, (a, b), list(learn.group_names))
    t_lrs, t_losses = sweep.trimmed()
    if len(t_lrs) >= 2:
        for name, f in funcs:
            sweep.suggestions[name] = _call_suggestion(f, t_lrs, t_losses, finder.num_it)
        drop = (t_losses[0] - t_losses.min()) / max(abs(t_losses[0]), 1e-12)
        if drop < 0.05:
            notes.append(f"no clear valley: the smoothed loss never fell more than 5% below where the sweep "
                         f"starts ({t_losses[0]:.4g} at lr {t_lrs[0]:.2g}, lowest {t_losses.min():.4g}), so "
                         "the suggestions are unreliable. The model may already be trained, there may be "
                         "nothing to learn (check the labels), or start_lr may be too high; read the plot")
        elif int(np.argmin(t_losses)) == len(t_losses) - 1:
            notes.append(f"the loss was still falling at the end of the sweep (lr {t_lrs[-1]:.2g}); raise "
                         "end_lr or num_it to see where it turns")
    else:
        sweep.suggestions = {name: float("nan") for name, _ in funcs}
        notes.append("no finite losses to suggest from: check the data and the loss function")
    sweep.note = "lr_find: " + "; ".join(notes) + "." if notes else None
    return sweep


# ---- plot ----------------------------------------------------------------------------------------
_MARKERS = ("o", "s", "^", "D", "v", "P")


def plot_lr_sweep(sweep: LRSweep, skip_end: int = 5) -> Any:
    """Plot an `LRSweep`: loss against LR (log axis), the points the suggestions read, each suggestion."""
    import matplotlib.pyplot as plt

    n = len(sweep.losses)
    end = n - skip_end if 0 < skip_end < n else n
    x, raw, smooth = sweep.head_lrs[:end], sweep.losses[:end], sweep.smooth_losses[:end]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(x, raw, color="C0", alpha=0.25, lw=0.8, label="loss per batch")
    ax.plot(x, smooth, color="C0", lw=1.8, label="smoothed loss")
    a, b = sweep.trim
    if b > a:
        ax.axvspan(sweep.head_lrs[a], sweep.head_lrs[b - 1], color="0.5", alpha=0.08,
                   label="points the suggestions read")
    t_lrs, t_losses = sweep.trimmed()
    ok = np.isfinite(t_losses)
    for i, (name, lr) in enumerate(sweep.suggestions.items()):
        if not np.isfinite(lr) or not ok.any():
            continue
        y = np.interp(np.log(lr), np.log(t_lrs[ok]), t_losses[ok])
        ax.plot([lr], [y], _MARKERS[i % len(_MARKERS)], color=f"C{i + 1}", ms=9, mec="k", zorder=5,
                label=f"{name}: {lr:.2e}")
        ax.axvline(lr, color=f"C{i + 1}", lw=0.8, ls=":", zorder=1)
    finite, raw_ok = smooth[np.isfinite(smooth)], raw[np.isfinite(raw)]
    if len(finite):  # the smoothed curve sets the top (raw spikes are cut), either curve the bottom
        lo, hi = min(finite.min(), raw_ok.min() if len(raw_ok) else np.inf), finite.max()
        pad = 0.08 * (hi - lo) if hi > lo else 0.1 * abs(hi) + 1e-3
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xscale("log")
    n_groups = sweep.lrs.shape[1]
    same = bool(np.all(sweep.lrs == sweep.lrs[:, -1:]))
    groups = "" if n_groups == 1 else f" (all {n_groups} layer groups)" if same else " (last layer group)"
    title = f"LR finder: {sweep.stop_reason}"
    if sweep.note and "no clear valley" in sweep.note:
        title += "\nno clear valley: the suggestions are unreliable"
    ax.set(xlabel=f"learning rate{groups}", ylabel="loss", title=title)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig

