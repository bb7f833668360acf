"""Callbacks that watch one column of the results table: early stopping, saving the best model, lowering the
LR on a plateau. One base (`TrackerCallback`, like Keras's `MonitorCallback` and fastai's `tracker.py`) holds
the one rule for `monitor`, `comp`, `min_delta` and NaN.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from ..persist.checkpoint import load_checkpoint, save_checkpoint
from .core import Callback, CancelFitException, ClassClaim
from .distributed import is_main_process
from .progress import ProgressCallback
from .recorder import Recorder
from .training import CSVLogger

_LOWER = (np.less, np.less_equal, operator.lt, operator.le)


class TrackerCallback(Callback):
    """Tracks the best value of `monitor` (a column of `learn.results.metric_names`: `valid_loss`, `train_loss` or a
    metric) at the end of every epoch; subclasses act on `new_best`.

    The rule, shared by every tracker: `comp` defaults to `np.less` when the name contains 'loss' or 'error',
    else `np.greater`; a value improves when `comp(value -/+ min_delta, best)` holds (the delta always counts
    against the new value). NaN never improves. An epoch whose monitored validation did not run (no
    validation set, or it was cancelled) is skipped: it neither improves nor counts as a worse epoch.
    """

    order = 60
    run_after: ClassClaim = Recorder  # reads this epoch's row from `learn.results`

    def __init__(self, monitor: str = "valid_loss", comp: Callable[[Any, Any], Any] | None = None,
                 min_delta: float = 0.0, reset_on_fit: bool = True) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor is the name of a results column, e.g. 'valid_loss', got {monitor!r}")
        if not math.isfinite(float(min_delta)):
            raise ValueError(f"min_delta must be a finite number, got {min_delta!r}")
        self.monitor, self.min_delta, self.reset_on_fit = monitor, abs(float(min_delta)), reset_on_fit
        m = monitor.lower()
        self.comp = comp or (np.less if "loss" in m or "error" in m else np.greater)
        self.lower_is_better = self.comp in _LOWER
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.new_best = False

    def before_fit(self) -> None:
        """Find the monitored column; forget the best value unless `reset_on_fit=False`."""
        if getattr(self.learn, "recorder", None) is None:
            raise ValueError(f"{type(self).__name__} reads the Recorder: create the Learner with default_cbs=True")
        cols = self.learn.results.metric_names[1:-1]
        if self.monitor not in cols:
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which this fit does not record; "
                             f"choose one of {cols}")
        if self.reset_on_fit or self.best is None:
            self.best, self.best_epoch = None, None

    def improved(self, val: float) -> bool:
        """Whether `val` beats the best value by more than `min_delta` (NaN never does)."""
        if math.isnan(val):
            return False
        if self.best is None:
            return True
        shifted = val + self.min_delta if self.lower_is_better else val - self.min_delta
        return bool(self.comp(shifted, self.best))

    def monitored(self) -> float | None:
        """This epoch's value of `monitor`, or None when the validation it comes from did not run."""
        return self.learn.results.value(self.monitor)

    def after_epoch(self) -> None:
        """Compare this epoch's value with the best; `new_best` says whether it improved."""
        val = self.monitored()
        self.new_best = val is not None and self.improved(val)
        if self.new_best:
            self.best, self.best_epoch = val, self.learn.epoch

    def state_dict(self) -> dict:
        """Best value and its epoch (checkpoints restore them when a fit resumes)."""
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        """Continue tracking from a checkpoint."""
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")


class EarlyStoppingCallback(TrackerCallback):
    """Stop the fit (`CancelFitException`) when `monitor` did not improve by `min_delta` in `patience` epochs.

    It stops at the end of an epoch, after the recorder, progress table and CSV log have that epoch's row. With
    `fit_one_cycle` the schedule is cut short: the LR never anneals to its final value.
    """

    order = 90
    run_after = (Recorder, ProgressCallback, CSVLogger, "SaveModelCallback")  # stops once the epoch is shown,
    # logged and saved

    def __init__(self, monitor: str = "valid_loss", comp: Callable[[Any, Any], Any] | None = None,
                 min_delta: float = 0.0, patience: int = 1, reset_on_fit: bool = True) -> None:
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience is a number of epochs without improvement (an int >= 1), got {patience!r}")
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.patience, self.wait = patience, 0
        self.stopped_epoch: int | None = None

    def before_fit(self) -> None:
        """Start counting epochs without improvement."""
        super().before_fit()
        if self.reset_on_fit:
            self.wait = 0
        self.stopped_epoch = None

    def after_epoch(self) -> None:
        """Stop after `patience` epochs without improvement (epochs with no value do not count)."""
        super().after_epoch()
        learn = self.learn
        if self.new_best or self.monitored() is None:
            self.wait = 0 if self.new_best else self.wait
            return
        self.wait += 1
        if self.wait >= self.patience and learn.epoch < learn.n_epoch - 1:
            self.stopped_epoch = learn.epoch
            if is_main_process():
                since = "the start" if self.best_epoch is None else f"epoch {self.best_epoch}"
                print(f"No improvement in {self.monitor} since {since}: early stopping after epoch {learn.epoch}")
            raise CancelFitException()

    def state_dict(self) -> dict:
        """Best value, its epoch and the epochs waited."""
        return {**super().state_dict(), "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        """Continue counting from a checkpoint."""
        super().load_state_dict(state)
        self.wait = int(state.get("wait", 0))


class SaveModelCallback(TrackerCallback):
    """Saves the model when `monitor` improves (to `fname`), or every epoch (`every_epoch`: `fname_{epoch}`).

    With `every_epoch` (True, or an int n: every n-th epoch) each file holds all that `fit(..., resume=True)`
    needs; `keep=k` deletes all but the newest k of them (after the new one is safely written). In best-model
    mode the best weights are loaded back at the end of the fit, unless `at_end=True`, which saves the final
    model instead. `with_opt=True` (fastai: False) so that a saved file can resume training.
    """

    order = 70
    run_after = (Recorder, ProgressCallback)  # saves after the epoch's row is shown

    def __init__(self, monitor: str = "valid_loss", comp: Callable[[Any, Any], Any] | None = None,
                 min_delta: float = 0.0, fname: str = "model", every_epoch: bool | int = False,
                 at_end: bool = False, with_opt: bool = True, keep: int | None = None,
                 reset_on_fit: bool = True) -> None:
        if keep is not None and (not isinstance(keep, int) or keep < 1):
            raise ValueError(f"keep must be None (keep every file) or an int >= 1, got {keep!r}")
        if not isinstance(every_epoch, (bool, int)) or every_epoch < 0:
            raise ValueError(f"every_epoch is True/False or a number of epochs >= 1, got {every_epoch!r}")
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.fname, self.every_epoch, self.at_end, self.with_opt, self.keep = fname, every_epoch, at_end, with_opt, keep
        self.saved_epochs: list[int] = []
        self._started = self._saved = False

    def before_fit(self) -> None:
        """Start tracking afresh (a resumed fit gets its saved state back right after this)."""
        super().before_fit()
        if not self.every_epoch and self.monitor.startswith("valid") and self.learn.dls.valid is None:
            raise ValueError(f"SaveModelCallback monitors {self.monitor!r} but there is no validation set; "
                             "monitor='train_loss', or use every_epoch=True")
        self._started, self._saved = True, False
        if self.reset_on_fit:
            self.saved_epochs = []

    def after_epoch(self) -> None:
        """Track the monitored value; write this epoch's checkpoint or the new best."""
        super().after_epoch()
        learn = self.learn
        if self.every_epoch:
            every = 1 if self.every_epoch is True else int(self.every_epoch)
            if learn.epoch % every == 0:
                self.saved_epochs.append(learn.epoch)
                save_checkpoint(learn, learn.checkpoint_path(f"{self.fname}_{learn.epoch}"), self.with_opt,
                                next_epoch=learn.epoch + 1)
                self._prune()
        elif self.new_best:
            if is_main_process():
                print(f"Better model found at epoch {learn.epoch} with {self.monitor} value: {self.best:.6g}.")
            save_checkpoint(learn, learn.checkpoint_path(self.fname), self.with_opt, next_epoch=learn.epoch + 1)
            self._saved = True

    def _prune(self) -> None:
        if self.keep is None or len(self.saved_epochs) <= self.keep:
            return
        old, self.saved_epochs = self.saved_epochs[: -self.keep], self.saved_epochs[-self.keep :]
        if is_main_process():
            for e in old:
                self.learn.checkpoint_path(f"{self.fname}_{int(e)}").unlink(missing_ok=True)

    def after_fit(self) -> None:
        """Save the final model (`at_end`), or load the best one back (best-model mode)."""
        learn = self.learn
        started, self._started = self._started, False
        if self.at_end and started:
            save_checkpoint(learn, learn.checkpoint_path(self.fname), self.with_opt)
        elif not self.every_epoch and self._saved:
            load_checkpoint(learn, learn.checkpoint_path(self.fname), self.with_opt, with_rng=False, with_cbs=False,
                            with_weight_states=True)  # the best epoch's EMA average comes back with its weights

    def state_dict(self) -> dict:
        """Best value so far, its epoch, and the epochs saved (for `keep`)."""
        return {**super().state_dict(), "saved_epochs": list(self.saved_epochs)}

    def check_state_dict(self, state: dict | None) -> None:
        """ValueError unless the saved epochs are ints >= 0 (they name the files `keep=` deletes: nothing read from
        a file may choose what is deleted)."""
        epochs = (state or {}).get("saved_epochs", [])
        if not isinstance(epochs, list) or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0
                                                   for e in epochs):
            raise ValueError(f"saved_epochs must be a list of epoch numbers (ints >= 0), got {epochs!r}")

    def load_state_dict(self, state: dict) -> None:
        """Continue tracking from a checkpoint."""
        self.check_state_dict(state)
        super().load_state_dict(state)
        self.saved_epochs = list(state.get("saved_epochs", []))


class ReduceLROnPlateau(TrackerCallback):
    """Divide every layer group's LR by `factor` (not below `min_lr`) when `monitor` did not improve in
    `patience` epochs (fastai's callback). Meant for `fit` at a constant LR: a schedule such as
    `fit_one_cycle` sets the LR before every batch and would undo it.
    """

    order = 80

    def __init__(self, monitor: str = "valid_loss", comp: Callable[[Any, Any], Any] | None = None,
                 min_delta: float = 0.0, patience: int = 1, factor: float = 10.0, min_lr: float = 0.0,
                 reset_on_fit: bool = True) -> None:
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience is a number of epochs without improvement (an int >= 1), got {patience!r}")
        if not (math.isfinite(factor) and factor > 1):
            raise ValueError(f"factor divides the LR and must be > 1 (fastai's default 10.), got {factor!r}")
        if not (math.isfinite(min_lr) and min_lr >= 0):
            raise ValueError(f"min_lr must be a finite number >= 0, got {min_lr!r}")
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.patience, self.factor, self.min_lr, self.wait = patience, float(factor), float(min_lr), 0

    def before_fit(self) -> None:
        """Start counting epochs without improvement."""
        super().before_fit()
        if self.reset_on_fit:
            self.wait = 0

    def after_epoch(self) -> None:
        """Lower every group's LR after `patience` epochs without improvement."""
        super().after_epoch()
        if self.new_best or self.monitored() is None:
            self.wait = 0 if self.new_best else self.wait
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.wait = 0
        assert self.learn.opt is not None
        pgs = self.learn.opt.param_groups
        old = pgs[-1]["lr"]
        for pg in pgs:
            pg["lr"] = max(pg["lr"] / self.factor, self.min_lr)
        if pgs[-1]["lr"] < old and is_main_process():
            print(f"Epoch {self.learn.epoch}: reducing lr to {pgs[-1]['lr']}")

    def state_dict(self) -> dict:
        """Best value, its epoch and the epochs waited."""
        return {**super().state_dict(), "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        """Continue counting from a checkpoint."""
        super().load_state_dict(state)
        self.wait = int(state.get("wait", 0))
