"""Recorder: losses, every layer group's hyper-parameters, per-epoch results, and their plots."""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..groups import get_hyper, groups_training
from ..metrics import metric_name, metric_value
from ..results import Results
from .core import Callback
from .schedule import ParamScheduler

HP_LABELS = {"lr": "learning rate", "mom": "momentum", "wd": "weight decay"}
NAN = float("nan")


class ScheduleView:
    """`lrs`, `moms` and `plot_sched` over `hps`, `group_names`, `epoch_ends`, `trainable` and `peaks`."""

    hps: dict[str, np.ndarray]
    group_names: list[str]
    epoch_ends: list[int]
    trainable: list[bool]
    peaks: dict[str, list[float]]
    sched_title: ClassVar[str] = ""

    @property
    def lrs(self) -> np.ndarray:
        """Learning rate per iteration and layer group, shape (iterations, layer groups)."""
        return self.hps["lr"]

    @property
    def moms(self) -> np.ndarray:
        """Momentum per iteration and layer group, shape (iterations, layer groups)."""
        return self.hps["mom"]

    def peak_lrs(self) -> list[float]:
        """Each group's requested peak LR (from the schedule), else the highest LR recorded."""
        req = self.peaks.get("lr")
        return list(req) if req else [float(x) for x in np.nanmax(self.lrs, 0)] if len(self.lrs) else []

    def plot_sched(self, keys: Sequence[str] = ("lr", "mom"), log: bool = True, figsize: tuple | None = None) -> Any:
        """One subplot per hyper-parameter, one labelled line per layer group (LR on a log axis); returns the
        figure."""
        return plot_schedules([self], keys, log=log, figsize=figsize, title=self.sched_title)


@dataclass(repr=False)
class ScheduleRecord(ScheduleView):
    """The schedule of one fit: `hps[name]` (and `lrs`, `moms`) has shape (iterations, layer groups)."""

    hps: dict[str, np.ndarray]
    group_names: list[str]
    n_epoch: int
    epoch_ends: list[int] = field(default_factory=list)
    trainable: list[bool] = field(default_factory=list)  # per group: do its (non-norm) weights train?
    peaks: dict[str, list[float]] = field(default_factory=dict)  # per hyper-parameter: each group's requested peak
    sched_title: ClassVar[str] = "recorded"

    def __repr__(self) -> str:
        peaks = ", ".join(f"{n}: {p:.3g}" for n, p in zip(self.group_names, self.peak_lrs()))
        return f"{type(self).__name__}({self.n_epoch} epochs, {len(self.lrs)} iterations, peak lr {peaks})"


def _cat(chunks: list[np.ndarray]) -> torch.Tensor:
    """The per-batch chunks as one float32 CPU tensor."""
    return torch.from_numpy(np.concatenate(chunks)) if chunks else torch.zeros(0)


class Recorder(ScheduleView, Callback):
    """Records per training batch the loss, a smoothed loss and each layer group's `lr`, `mom` and `wd`;
    per epoch the row `[train_loss, valid_loss, *metrics]` (fastai's `values`, named by `metric_names[1:-1]`).

    Nothing here synchronises with the device per batch: losses stay tensors until the epoch ends. A validation
    that did not run (no validation set, or cancelled) gives NaN in its columns, never an earlier epoch's value.
    Every fit's schedule is kept in `fits`, so `plot_sched(fits=2)` shows both phases of `fine_tune`.
    """

    order = 50
    run_after = ParamScheduler  # reads the peaks the schedules publish into `learn.group_plan` at before_fit
    log_args = False
    publishes_results: ClassVar[bool] = True  # False: keeps its results to itself (the dry-run plan's recorder)
    sched_title = "recorded"

    def __init__(self, beta: float = 0.98, hp_names: Sequence[str] = ("lr", "mom", "wd"),
                 add_time: bool = True, train_metrics: bool = False) -> None:
        if not isinstance(train_metrics, bool):
            raise TypeError(f"Recorder: train_metrics must be True or False, got {train_metrics!r}")
        self.beta, self.hp_names, self.add_time = beta, tuple(hp_names), add_time
        self.train_metrics = train_metrics  # fastai's: the metrics on the training set too (`train_<name>` columns)
        self._train_mets: list = []
        self._train_vals: list[float] = []
        self._train_seen = 0
        self._own = Results()  # what it shows before it is added to a learner (then `learn.results`)
        self.fits: list[ScheduleRecord] = []
        self.lr_sweep: Any = None  # the latest lr_find sweep (an LRSweep)
        self._pgs: list[dict] = []
        self._hp_keys: list[tuple[dict, str]] = []
        self._vcancelled = False
        self._in_fit = False
        self._epoch_started: int | None = None
        self._reset_fit()

    @property
    def results(self) -> Results:
        """The results this recorder writes: the learner's `learn.results`, which every callback reads."""
        learn = getattr(self, "learn", None)
        return learn.results if learn is not None and self.publishes_results else self._own

    @property
    def metric_names(self) -> list[str]:
        """fastai's header: `epoch, train_loss, valid_loss, *metrics, time` (`learn.results.metric_names`)."""
        return self.results.metric_names

    @property
    def values(self) -> list[list[float]]:
        """One row `[train_loss, valid_loss, *metrics]` per epoch of the latest fit (fastai's `values`)."""
        return self.results.values

    @property
    def log(self) -> list:
        """The latest epoch's display row `[epoch, train_loss, valid_loss, *metrics, time]` (fastai's `log`)."""
        return self.results.log

    @property
    def valid_result(self) -> list[float]:
        """The latest validation's `[valid_loss, *metrics]` (NaN when it did not complete)."""
        return self.results.valid_result

    @property
    def validated(self) -> bool:
        """Whether this epoch's validation ran to the end."""
        return self.results.validated

    def _reset_fit(self) -> None:
        self._raw_chunks: list[np.ndarray] = []
        self._batch_losses: list[torch.Tensor] = []
        self._hp_rows: list[tuple] = []
        self._smooth_chunks: list[np.ndarray] = []
        self._smooth, self._count = 0.0, 0
        self.results.values = []
        self.epoch_ends: list[int] = []
        self.group_names: list[str] = []
        self.trainable: list[bool] = []
        self.peaks: dict[str, list[float]] = {}

    # ---- events -------------------------------------------------------------------------------
    def before_fit(self) -> None:
        """Start a fresh record for this fit."""
        learn = self.learn
        self._reset_fit()
        self._in_fit = True
        plan = learn.group_plan  # the fit's plan: group names, and the peaks the schedules published
        self.group_names = list(plan.group_names)
        self.trainable = groups_training(learn.model, learn.layer_groups)
        names = [metric_name(m) for m in learn.metrics]
        # fastai's layout: with train_metrics, each metric on its own copy for the training set
        self._train_mets = [copy.deepcopy(m) for m in learn.metrics] if self.train_metrics else []
        cols = ["train_loss", *(f"train_{n}" for n in names), "valid_loss", *(f"valid_{n}" for n in names)] \
            if self._train_mets else ["train_loss", "valid_loss", *names]
        self.results.metric_names = ["epoch", *cols, "time"]
        firsts: dict[int, dict] = {}
        for pg in learn.opt.param_groups if learn.opt is not None else ():  # no optimizer: `learn('before_fit')`
            firsts.setdefault(pg["layer_group"], pg)
        self._pgs = [firsts[i] for i in range(learn.n_groups) if i in firsts]
        self._hp_keys = [(pg, h) for h in self.hp_names for pg in self._pgs]  # read per batch, in this order
        self.peaks.update(plan.peaks)
        self._epoch_started = None  # no epoch seen yet: one cancelled before this callback's before_epoch is reset

    def before_epoch(self) -> None:
        """Start the epoch's clock; this epoch has no validation result yet."""
        self._epoch_started = self.learn.epoch
        self._t0 = time.perf_counter()
        self._train_vals, self._train_seen = [NAN] * len(self._train_mets), 0  # NaN unless this epoch trains
        res = self.results
        res.validated, res.valid_result = False, [NAN] * (1 + len(self.learn.metrics))

    def before_train(self) -> None:
        """Reset the training-set metrics (`train_metrics`)."""
        for m in self._train_mets:
            m.reset()

    def before_validate(self) -> None:
        """Reset the validation loss and metrics."""
        res = self.results
        res.valid_loss_sum, res.valid_count, self._vcancelled = 0.0, 0, False
        for m in self.learn.metrics:
            m.reset()

    def after_batch(self) -> None:
        """Keep the batch loss (a tensor) and the hyper-parameters the step used (batches with a loss only)."""
        learn = self.learn
        if learn.loss is None:  # cancelled before the loss existed: nothing was learnt from this batch
            return
        if learn.training:
            self._batch_losses.append(learn.loss.detach())
            self.record_hps()
            if self._train_mets:  # train_metrics only: nothing more per batch otherwise
                for m in self._train_mets:
                    m.accumulate(learn)
                self._train_seen += 1
        else:
            bs = len(learn.yb[0]) if learn.yb else len(learn.pred)
            res = self.results
            res.valid_loss_sum = res.valid_loss_sum + learn.loss.detach() * bs
            res.valid_count += bs
            for m in learn.metrics:
                m.accumulate(learn)

    def record_hps(self) -> None:
        """Append the hyper-parameters each layer group uses now."""
        self._hp_rows.append(tuple([get_hyper(pg, h) for pg, h in self._hp_keys]))

    def after_train(self) -> None:
        """Bring this epoch's losses (and the training-set metrics) to the host once, and smooth the losses."""
        self._flush()
        if self._train_mets and self._train_seen:
            self._train_vals = [metric_value(m) for m in self._train_mets]
        self.epoch_ends.append(len(self._hp_rows))

    def after_cancel_epoch(self) -> None:
        """An epoch cancelled in `before_epoch` before this callback's: its row is NaN, not the last epoch's."""
        if self._epoch_started != self.learn.epoch:
            self.before_epoch()

    def after_cancel_validate(self) -> None:
        """A cancelled validation saw only part of the set: it gives no result."""
        self._vcancelled = True

    def after_validate(self) -> None:
        """Valid loss and metric values, read from the device once (NaN when the validation did not complete)."""
        res = self.results
        done = res.valid_count > 0 and not self._vcancelled
        metrics = self.learn.metrics
        res.valid_result = [float(res.valid_loss_sum / res.valid_count), *(metric_value(m) for m in metrics)] \
            if done else [NAN] * (1 + len(metrics))
        res.validated = done
        res.valid_loss_sum, res.valid_count, self._vcancelled = 0.0, 0, False

    def after_epoch(self) -> None:
        """Append this epoch's row to `values` (and the display row, with epoch and time, to `log`)."""
        learn = self.learn
        train = self.train_loss
        res = self.results
        row = [NAN if train is None else train, *self._train_vals, *res.valid_result]
        res.values.append(row)
        res.log = [learn.epoch, *row] + ([format_time(time.perf_counter() - self._t0)] if self.add_time else [])
        if learn.log_results and not learn.dry:
            learn.logger(list(res.log))  # fastai's logger: `print` unless the progress display writes the table

    def after_fit(self) -> None:
        """Keep what a cancelled epoch recorded, and this fit's schedule in `fits`."""
        self._flush()
        self._in_fit = False
        if self._hp_rows:
            self.fits.append(ScheduleRecord(self.hps, list(self.group_names), self.learn.n_epoch,
                                            list(self.epoch_ends), list(self.trainable), dict(self.peaks)))

    def state_dict(self) -> dict:
        """The training-loss smoothing state; checkpoints keep it so a resumed fit shows the same `train_loss`."""
        self._flush()
        return {"smooth": float(self._smooth), "count": int(self._count)}

    def load_state_dict(self, state: dict) -> None:
        """Continue the smoothed training loss from a checkpoint (applied at the start of the next fit)."""
        self._smooth, self._count = float(state["smooth"]), int(state["count"])

    # ---- data ---------------------------------------------------------------------------------
    def _flush(self) -> None:
        if not self._batch_losses:
            return
        losses = torch.stack(self._batch_losses).float().cpu().numpy()
        self._batch_losses = []
        smooth = np.empty_like(losses)
        b, s, n = self.beta, self._smooth, self._count
        for i, v in enumerate(losses):
            s = b * s + (1 - b) * float(v)
            n += 1
            smooth[i] = s / (1 - b**n)
        self._smooth, self._count = s, n
        self._raw_chunks.append(losses)
        self._smooth_chunks.append(smooth)

    @property
    def losses(self) -> torch.Tensor:
        """Smoothed (beta=0.98, debiased) training loss per batch, as fastai's `recorder.losses`: a float32 CPU
        tensor of shape (batches,), whose items are fastai's 0-d tensors."""
        self._flush()
        return _cat(self._smooth_chunks)

    @property
    def raw_losses(self) -> torch.Tensor:
        """Training loss per batch as computed, before smoothing (a float32 CPU tensor of shape (batches,))."""
        self._flush()
        return _cat(self._raw_chunks)

    @property
    def iters(self) -> list[int]:
        """Number of training batches recorded at the end of each epoch (fastai's `recorder.iters`)."""
        return list(self.epoch_ends)

    @property
    def train_loss(self) -> float | None:
        """The smoothed training loss at the latest batch (fastai's `train_loss` column)."""
        self._flush()
        return float(self._smooth_chunks[-1][-1]) if self._smooth_chunks else None

    @property
    def final_record(self) -> list[float] | None:
        """The last epoch's row `[train_loss, valid_loss, *metrics]`, or None before any epoch ended."""
        return self.results.final_record

    @property
    def hps(self) -> dict[str, np.ndarray]:  # type: ignore[override]  # a record's field, computed here
        """Each hyper-parameter as an array of shape (iterations, layer groups)."""
        n = len(self._pgs)
        arr = np.array(self._hp_rows, dtype=np.float64).reshape(len(self._hp_rows), len(self.hp_names), n)
        return {h: arr[:, i, :] for i, h in enumerate(self.hp_names)}

    # ---- plots --------------------------------------------------------------------------------
    def plot_sched(self, keys: Sequence[str] = ("lr", "mom"), log: bool = True, figsize: tuple | None = None,
                   fits: int | str = 1) -> Any:
        """Every layer group's schedule (one labelled line each, LR on a log axis) of the last `fits` fits
        (`"all"`: every fit this recorder saw), e.g. `fits=2` after `fine_tune` shows both phases."""
        if fits == "all":
            n = len(self.fits) + 1
        elif isinstance(fits, int) and not isinstance(fits, bool) and fits >= 1:
            n = fits
        else:
            raise ValueError(f"fits is how many of the latest fits to draw (an int >= 1) or 'all', got {fits!r}")
        done: list[ScheduleView] = list(self.fits)
        records = [*done, self][-n:] if self._in_fit else done[-n:]  # a fit in progress draws what it has so far
        return plot_schedules(records, keys, log=log, figsize=figsize, title=self.sched_title)

    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, log: bool = False) -> Any:
        """Training loss (raw and smoothed) per batch and validation loss per epoch; returns the figure."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        raw, smooth = self.raw_losses, self.losses
        x = np.arange(len(raw))
        ax.plot(x[skip_start:], raw[skip_start:], color="C0", alpha=0.3, lw=0.8, label="train (per batch)")
        ax.plot(x[skip_start:], smooth[skip_start:], color="C0", label="train (smoothed)")
        if with_valid:
            i = self.results.index("valid_loss")
            pts = [(e - 1, r[i]) for e, r in zip(self.epoch_ends, self.values) if not math.isnan(r[i])]
            if pts:
                ax.plot(*zip(*pts), "o-", color="C1", label="valid (per epoch)")
        if log:
            ax.set_yscale("log")
        ax.set(xlabel="training batch", ylabel="loss", title="loss")
        ax.legend()
        fig.tight_layout()
        return fig

    def plot_lr_find(self, skip_end: int = 5) -> Any:
        """The latest `lr_find` sweep: loss against LR (log axis), every suggestion marked; returns the figure."""
        sweep = self.lr_sweep
        if sweep is None:
            raise ValueError("no LR sweep recorded yet: run learn.lr_find() first")
        return sweep.plot(skip_end)


LINE_STYLES = ("-", "--", "-.", ":")


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def plot_schedules(records: Sequence[ScheduleView], keys: Sequence[str] = ("lr", "mom"), log: bool = True,
                   figsize: tuple | None = None, title: str = "") -> Any:
    """Plot one or more fits' schedules one after the other: one subplot per hyper-parameter, one line per
    layer group; frozen groups are drawn faded and labelled, the legend gives each group's requested peak LR
    (per fit), and thin lines mark epochs, thick ones fits."""
    import matplotlib.pyplot as plt

    records = [r for r in records if len(r.hps.get("lr", ())) or any(len(v) for v in r.hps.values())]
    keys = [k for k in keys if any(k in r.hps and r.hps[k].size and not np.isnan(r.hps[k]).all() for r in records)]
    if not records or not keys:
        raise ValueError("nothing to plot: no hyper-parameters were recorded (has a fit run?)")
    names = records[-1].group_names
    n = len(names)
    fig, axs = plt.subplots(1, len(keys), figsize=figsize or (5.8 * len(keys), 4.0), squeeze=False)
    for ax, k in zip(axs[0], keys):
        offset = 0
        for ri, rec in enumerate(records):
            arr = rec.hps[k]
            x = np.arange(offset, offset + len(arr))
            for g in range(arr.shape[1]):
                frozen = g < len(rec.trainable) and not rec.trainable[g]
                ax.plot(x, arr[:, g], color=f"C{g}", ls=LINE_STYLES[g % 4], alpha=0.35 if frozen else 1.0,
                        lw=1.2 + 1.6 * (n - 1 - g) / max(n - 1, 1), label=_label(records, g, k) if ri == 0 else None)
                if frozen and k == "lr" and len(arr):
                    ax.annotate("frozen", (x[len(x) // 2], arr[len(arr) // 2, g]), color=f"C{g}", alpha=0.7,
                                fontsize=7, ha="center", va="bottom")
            for e in rec.epoch_ends[:-1]:
                ax.axvline(offset + e, color="0.88", lw=0.8, zorder=0)
            offset += len(arr)
            if ri < len(records) - 1:
                ax.axvline(offset, color="0.45", lw=1.4, ls="--", zorder=0)
        if log and k == "lr":
            ax.set_yscale("log")
        fits = f" ({len(records)} fits)" if len(records) > 1 else ""
        ax.set(xlabel="training batch", ylabel=k + (" (log)" if log and k == "lr" else ""),
               title=f"{title} {HP_LABELS.get(k, k)} per layer group{fits}".strip())
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _label(records: Sequence[ScheduleView], g: int, k: str) -> str:
    last = records[-1]
    name = last.group_names[g] if g < len(last.group_names) else f"group {g}"
    if any(g < len(r.trainable) and not r.trainable[g] for r in records):
        frozen = [i + 1 for i, r in enumerate(records) if g < len(r.trainable) and not r.trainable[g]]
        name += " (frozen)" if len(records) == 1 else f" (frozen in fit {', '.join(map(str, frozen))})"
    if k != "lr":
        return name
    peaks = [r.peak_lrs()[g] for r in records if g < len(r.peak_lrs())]
    return f"{name}: peak {' | '.join(_fmt(p) for p in peaks)}"


def format_time(t: float) -> str:
    """Seconds as mm:ss or h:mm:ss, like fastai."""
    t = int(t)
    h, m, s = t // 3600, (t // 60) % 60, t % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
