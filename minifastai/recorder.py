"""Recorder: losses, every layer group's hyper-parameters, per-epoch results, and their plots."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .callback import Callback
from .groups import get_hyper, groups_training
from .metrics import metric_name, metric_value

HP_LABELS = {"lr": "learning rate", "mom": "momentum", "wd": "weight decay"}


class ScheduleView:
    """`lrs`, `moms` and `plot_sched` over `hps`, `group_names`, `epoch_ends` and `trainable` (recorded or planned)."""

    hps: dict[str, np.ndarray]
    group_names: list[str]
    epoch_ends: list[int]
    trainable: list[bool]
    sched_title = ""

    @property
    def lrs(self) -> np.ndarray:
        """Learning rate per iteration and layer group, shape (iterations, layer groups)."""
        return self.hps["lr"]

    @property
    def moms(self) -> np.ndarray:
        """Momentum per iteration and layer group, shape (iterations, layer groups)."""
        return self.hps["mom"]

    def plot_sched(self, keys: Sequence[str] = ("lr", "mom"), log: bool = False, figsize: tuple | None = None) -> Any:
        """One subplot per hyper-parameter, one labelled line per layer group; returns the figure."""
        return plot_hps(self.hps, self.group_names, keys, log=log, epoch_ends=self.epoch_ends, figsize=figsize,
                        title=self.sched_title, trainable=self.trainable)


class Recorder(ScheduleView, Callback):
    """Records per training batch the loss, a smoothed loss and each layer group's `lr`, `mom` and `wd`;
    per epoch the train loss, valid loss and metrics (`values`, named by `metric_names`).

    Nothing here synchronises with the device per batch: losses stay tensors until the epoch ends.
    """

    order = 50
    sched_title = "recorded"

    def __init__(self, beta: float = 0.98, hp_names: Sequence[str] = ("lr", "mom", "wd")) -> None:
        self.beta, self.hp_names = beta, tuple(hp_names)
        self.values: list[list] = []
        self.valid_values: list[float] = []
        self._reset_fit()

    def _reset_fit(self) -> None:
        self._loss_chunks: list[np.ndarray] = []
        self._batch_losses: list[torch.Tensor] = []
        self._hp_rows: list[tuple] = []
        self._smooth_chunks: list[np.ndarray] = []
        self._smooth, self._count = 0.0, 0
        self.epoch_ends: list[int] = []
        self.values, self.group_names, self.trainable = [], [], []

    # ---- events -------------------------------------------------------------------------------
    def before_fit(self) -> None:
        """Start a fresh record for this fit."""
        learn = self.learn
        self._reset_fit()
        self.group_names = list(learn.group_names)
        self.trainable = groups_training(learn.model, learn.layer_groups)
        self.metric_names = ["epoch", "train_loss", "valid_loss", *(metric_name(m) for m in learn.metrics), "time"]
        firsts: dict[int, dict] = {}
        for pg in learn.opt.param_groups:
            firsts.setdefault(pg["layer_group"], pg)
        self._pgs = [firsts[i] for i in range(learn.n_groups)]

    def before_epoch(self) -> None:
        """Start the epoch's clock."""
        self._t0 = time.perf_counter()

    def before_validate(self) -> None:
        """Reset the validation loss and metrics."""
        self._vloss, self._vcount = 0.0, 0
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
        else:
            bs = len(learn.yb[0]) if learn.yb else len(learn.pred)
            self._vloss = self._vloss + learn.loss.detach() * bs
            self._vcount += bs
            for m in learn.metrics:
                m.accumulate(learn)

    def record_hps(self) -> None:
        """Append the hyper-parameters each layer group uses now."""
        self._hp_rows.append(tuple(get_hyper(pg, h) for h in self.hp_names for pg in self._pgs))

    def after_train(self) -> None:
        """Bring this epoch's losses to the host once, and smooth them."""
        self._flush()
        self.epoch_ends.append(len(self._hp_rows))

    def after_validate(self) -> None:
        """Valid loss and metric values, read from the device once."""
        if self._vcount:
            self.valid_values = [float(self._vloss / self._vcount), *(metric_value(m) for m in self.learn.metrics)]
        else:
            self.valid_values = []

    def after_epoch(self) -> None:
        """Append this epoch's row to `values`."""
        learn = self.learn
        valid = self.valid_values if learn.dls.valid is not None else []
        valid = valid or [None] * (1 + len(learn.metrics))
        row = [learn.epoch, self.train_loss, *valid, format_time(time.perf_counter() - self._t0)]
        self.values.append(row)
        self.valid_values = []

    def after_fit(self) -> None:
        """Keep what a cancelled epoch recorded."""
        self._flush()

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
        self._loss_chunks.append(losses)
        self._smooth_chunks.append(smooth)

    @property
    def losses(self) -> np.ndarray:
        """Raw training loss per batch."""
        self._flush()
        return np.concatenate(self._loss_chunks) if self._loss_chunks else np.zeros(0, np.float32)

    @property
    def smooth_losses(self) -> np.ndarray:
        """Exponentially smoothed (beta=0.98), debiased training loss per batch."""
        self._flush()
        return np.concatenate(self._smooth_chunks) if self._smooth_chunks else np.zeros(0, np.float32)

    @property
    def train_loss(self) -> float | None:
        """The smoothed training loss at the latest batch (fastai's `train_loss` column)."""
        self._flush()
        return float(self._smooth_chunks[-1][-1]) if self._smooth_chunks else None

    @property
    def hps(self) -> dict[str, np.ndarray]:
        """Each hyper-parameter as an array of shape (iterations, layer groups)."""
        n = len(self._pgs) if hasattr(self, "_pgs") else 0
        arr = np.array(self._hp_rows, dtype=np.float64).reshape(len(self._hp_rows), len(self.hp_names), n)
        return {h: arr[:, i, :] for i, h in enumerate(self.hp_names)}

    # ---- plots --------------------------------------------------------------------------------
    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, log: bool = False) -> Any:
        """Training loss (raw and smoothed) per batch and validation loss per epoch; returns the figure."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        losses, smooth = self.losses, self.smooth_losses
        x = np.arange(len(losses))
        ax.plot(x[skip_start:], losses[skip_start:], color="C0", alpha=0.3, lw=0.8, label="train (per batch)")
        ax.plot(x[skip_start:], smooth[skip_start:], color="C0", label="train (smoothed)")
        vi = self.metric_names.index("valid_loss") if hasattr(self, "metric_names") else None
        if with_valid and vi is not None:
            pts = [(e - 1, r[vi]) for e, r in zip(self.epoch_ends, self.values) if r[vi] is not None]
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
        sweep = getattr(self, "lr_sweep", None)
        if sweep is None:
            raise ValueError("no LR sweep recorded yet: run learn.lr_find() first")
        from .lr_find import plot_lr_sweep

        return plot_lr_sweep(sweep, skip_end)


LINE_STYLES = ("-", "--", "-.", ":")


def plot_hps(hps: dict[str, np.ndarray], group_names: Sequence[str], keys: Sequence[str] = ("lr", "mom"),
             log: bool = False, epoch_ends: Sequence[int] = (), figsize: tuple | None = None, title: str = "",
             trainable: Sequence[bool] = ()) -> Any:
    """Plot hyper-parameter arrays of shape (iterations, groups): one subplot per key, one line per group.

    Lines differ in style and width, so groups with equal values stay visible; frozen groups are labelled.
    """
    import matplotlib.pyplot as plt

    keys = [k for k in keys if k in hps and hps[k].size and not np.isnan(hps[k]).all()]
    if not keys:
        raise ValueError("nothing to plot: no hyper-parameters were recorded (has a fit run?)")
    fig, axs = plt.subplots(1, len(keys), figsize=figsize or (5.5 * len(keys), 3.8), squeeze=False)
    for ax, k in zip(axs[0], keys):
        arr = hps[k]
        n = arr.shape[1]
        for g in range(n):
            name = group_names[g] if g < len(group_names) else f"group {g}"
            if g < len(trainable) and not trainable[g]:
                name += " (frozen)"
            label = f"{name}: peak {arr[:, g].max():.3g}" if k == "lr" else name
            ax.plot(arr[:, g], label=label, ls=LINE_STYLES[g % 4], lw=1.2 + 1.6 * (n - 1 - g) / max(n - 1, 1))
        for e in epoch_ends[:-1]:
            ax.axvline(e, color="0.85", lw=0.8, zorder=0)
        if log and k == "lr":
            ax.set_yscale("log")
        ax.set(xlabel="training batch", ylabel=k, title=f"{title} {HP_LABELS.get(k, k)} per layer group".strip())
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def format_time(t: float) -> str:
    """Seconds as mm:ss or h:mm:ss, like fastai."""
    t = int(t)
    h, m, s = t // 3600, (t // 60) % 60, t % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
