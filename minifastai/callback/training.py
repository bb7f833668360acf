"""Training callbacks: gradient accumulation and clipping, stopping on NaN, a CSV log.

How each one meets the one-cycle schedule, freezing and layer groups is in docs/guides/training-callbacks.md.
In short: the schedule position (`learn.train_iter`, `learn.pct_train`) advances once per training batch,
whether or not the optimizer steps on it.
"""
from __future__ import annotations

import csv
import math
import warnings
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..torch_core import first_tensor
from .core import (
    Callback,
    CancelBatchException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    TrainEvalCallback,
)
from .distributed import is_main_process
from .mixed_precision import MixedPrecision
from .recorder import Recorder

if TYPE_CHECKING:
    import pandas as pd


def batch_size(learn: Any) -> int:
    """Number of samples in the current batch: the first dimension of the first target (or input) tensor."""
    t = first_tensor(learn.yb, batched=True) if learn.yb else None
    t = first_tensor(learn.xb, batched=True) if t is None else t
    if t is None:
        raise ValueError("cannot tell the batch size: the batch has no tensor with a batch dimension")
    return int(t.shape[0])


def _grads(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p.grad for pg in opt.param_groups for p in pg["params"] if p.grad is not None]


class GradientAccumulation(Callback):
    """Step the optimizer once every `n_acc` *samples* (fastai's counting) with the gradient of one big batch.

    Each batch's loss gradient is weighted by `batch_size / n_acc`, so accumulating 4 batches of 8 with
    `n_acc=32` gives the gradient of one batch of 32 (for a loss that is a mean over the batch). A window
    that ends with a count other than `n_acc` (it overshot, or the epoch ended first: the last batch of an
    epoch always steps, so no window spans two epochs) is rescaled to the mean over the samples it saw,
    like a smaller last batch. Between steps the rest of the batch is skipped with `CancelBatchException`
    (so `zero_grad` does not run); the schedule still advances per batch. Under DistributedDataParallel the
    batches that do not step skip the gradient all-reduce (`no_sync`).
    """

    order = 6
    run_before = MixedPrecision  # it (and GradientClip, after it) only acts on batches that step

    def __init__(self, n_acc: int = 32) -> None:
        if not isinstance(n_acc, Integral) or n_acc < 1:
            raise ValueError(f"n_acc is the number of samples per optimizer step (int >= 1), got {n_acc!r}")
        self.n_acc: int = int(n_acc)
        self.count: int = 0
        self.n_steps: int = 0
        self._bs: int = 0
        self._no_sync: Any = None

    def before_fit(self) -> None:
        """Start a fresh window with no gradients."""
        self.count, self.n_steps = 0, 0
        assert self.learn.opt is not None
        self.learn.opt.zero_grad()

    def before_batch(self) -> None:
        """Note the batch size; under DDP, skip the all-reduce of a batch that will not step."""
        learn = self.learn
        if not learn.training:
            return
        self._bs = batch_size(learn)
        model = learn.model
        if isinstance(model, torch.nn.parallel.DistributedDataParallel) and not self._steps_now(self.count + self._bs):
            self._no_sync = model.no_sync()
            self._no_sync.__enter__()

    def before_backward(self) -> None:
        """Count the batch and weight its loss gradient by `batch_size / n_acc`."""
        self.count += self._bs
        w = self._bs / self.n_acc
        if w != 1:
            self.learn.loss.register_hook(lambda g: g * w)

    def _steps_now(self, count: int) -> bool:
        learn = self.learn
        return count >= self.n_acc or learn.iter == learn.n_iter - 1

    def before_step(self) -> None:
        """Skip the step (and `zero_grad`) until `n_acc` samples are in, then step on their mean gradient."""
        if not self._steps_now(self.count):
            raise CancelBatchException()
        if self.count != self.n_acc:
            assert self.learn.opt is not None
            for g in _grads(self.learn.opt):
                g.mul_(self.n_acc / self.count)
        self.count = 0
        self.n_steps += 1

    def _leave_no_sync(self) -> None:
        if self._no_sync is not None:
            ctx, self._no_sync = self._no_sync, None
            ctx.__exit__(None, None, None)

    def after_batch(self) -> None:
        """Leave `no_sync` after the backward pass."""
        self._leave_no_sync()

    def after_fit(self) -> None:
        """Discard what a cancelled fit left, so the next fit starts with no gradients."""
        self._leave_no_sync()
        if self.learn.opt is not None:
            self.learn.opt.zero_grad()
        self.count = 0


def _steps_guarded(learn: Any) -> bool:
    """Whether a callback already skips steps with non-finite gradients (float16's GradScaler)."""
    return any(cb.skips_nonfinite_steps for cb in learn.cbs)


class GradientClip(Callback):
    """Clip the total gradient norm (over every parameter that has a gradient) to `max_norm` before each step.

    With float16 mixed precision the gradients are clipped after `MixedPrecision` has unscaled them. Frozen
    parameters have no gradient and do not count; the norm is one norm over all layer groups. The norm before
    clipping is kept, as a tensor, in `learn.gradient_clip.last_norm`. A step whose gradients are not finite (an
    infinite or NaN norm) is skipped and counted in `n_skipped`, instead of clipping them to NaN weights: checking
    that reads the norm once per step (a host-device sync; under float16 the GradScaler does it instead).
    """

    order = 12
    run_after = (GradientAccumulation, MixedPrecision)  # clips steps that happen, gradients that are unscaled

    def __init__(self, max_norm: float = 1.0, norm_type: float = 2.0) -> None:
        if not (isinstance(max_norm, (int, float)) and math.isfinite(max_norm) and max_norm > 0):
            raise ValueError(f"max_norm must be a positive finite number, got {max_norm!r}")
        self.max_norm, self.norm_type = float(max_norm), float(norm_type)
        self.last_norm: torch.Tensor | None = None
        self.n_skipped = 0

    def before_fit(self) -> None:
        """Count skipped steps afresh."""
        self.n_skipped = 0

    def before_step(self) -> None:
        """Clip in place; skip the step when the gradients are not finite."""
        learn = self.learn
        assert learn.opt is not None
        params = [p for pg in learn.opt.param_groups for p in pg["params"] if p.grad is not None]
        if not params:
            return
        self.last_norm = torch.nn.utils.clip_grad_norm_(params, self.max_norm, self.norm_type)
        if not _steps_guarded(learn) and not bool(torch.isfinite(self.last_norm)):
            self.n_skipped += 1
            raise CancelStepException()


class TerminateOnNaNCallback(Callback):
    """Stop the fit (`CancelFitException`) at the first training batch whose loss or gradients are NaN or
    infinite.

    It checks the loss before the backward pass and the gradients before the step, so the weights are those of
    the last finite step. Reading them is a host-device sync per training batch: the price of stopping at once
    (only this opt-in callback pays it). Under float16 mixed precision, infinite gradients are the GradScaler's
    to skip, so only the loss is checked. In a distributed run the check is shared by all processes, so they
    stop together.
    """

    order = -9

    @property
    def name(self) -> str:
        """Exposed as `learn.terminate_on_nan`."""
        return "terminate_on_nan"

    def __init__(self) -> None:
        self.stopped_at: tuple[int, int] | None = None

    def before_fit(self) -> None:
        """Forget an earlier stop."""
        self.stopped_at = None

    def before_backward(self) -> None:
        """Stop if the loss is not finite."""
        loss = self.learn.loss.detach()
        self._stop_if((~torch.isfinite(loss)).any(), f"the training loss is {float(loss)}")

    def before_step(self) -> None:
        """Stop if a gradient is not finite (the loss was)."""
        learn = self.learn
        if _steps_guarded(learn):
            return
        assert learn.opt is not None
        grads = _grads(learn.opt)
        if grads:
            worst = torch.nn.utils.get_total_norm(grads, norm_type=math.inf)  # inf or NaN iff one entry is
            self._stop_if(~torch.isfinite(worst), "a gradient is not finite (the loss is)")

    def _stop_if(self, bad: torch.Tensor, what: str) -> None:
        learn = self.learn
        flag = bad.float()
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(flag)  # all ranks stop together (one stopping alone would hang the others)
        if bool(flag):
            self.stopped_at = (learn.epoch, learn.iter)
            warnings.warn(f"TerminateOnNaNCallback: {what} at epoch {learn.epoch}, batch {learn.iter}; the fit stops "
                          "(the weights are from before this batch)", RuntimeWarning, stacklevel=3)
            raise CancelFitException()


class ShortEpochCallback(Callback):
    """Train (and, with `short_valid`, validate) only the first `pct` of each epoch's batches, then cut the phase
    short (fastai's, for a quick check that a pipeline runs end to end)."""

    def __init__(self, pct: float = 0.01, short_valid: bool = True) -> None:
        if not 0 <= pct <= 1:
            raise ValueError(f"pct is the fraction of an epoch to run, in [0, 1], got {pct!r}")
        self.pct, self.short_valid = pct, short_valid

    def after_batch(self) -> None:
        """Stop the phase once `pct` of its batches ran."""
        learn = self.learn
        if learn.n_iter and learn.iter / learn.n_iter < self.pct:
            return
        if learn.training:
            raise CancelTrainException()
        if self.short_valid:
            raise CancelValidException()


BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def set_bn_eval(m: nn.Module, use_eval: bool = True) -> None:
    """Put every BatchNorm layer of `m` whose parameters are frozen in eval mode (`use_eval=False`: train mode)."""
    for layer in m.modules():
        params = list(layer.parameters(recurse=False))
        if isinstance(layer, BN_TYPES) and params and not params[0].requires_grad:
            layer.train(not use_eval)


class BnFreeze(Callback):
    """Keep the running statistics of frozen BatchNorm layers as they are while training (fastai's `BnFreeze`):
    with `train_bn=False`, a frozen body then matches the pretrained one exactly."""

    run_after = TrainEvalCallback  # which puts the whole model in train mode first

    def before_train(self) -> None:
        """Frozen BatchNorm layers back to eval mode."""
        set_bn_eval(self.learn.model)


class CSVLogger(Callback):
    """Write the results table (`epoch, train_loss, valid_loss, *metrics, time`) to `learn.path / fname`.

    One line per epoch, flushed as it is written, so a crashed run keeps every finished epoch. The file is
    opened (and, unless `append=True`, emptied) when the first epoch ends, so `lr_find` and fits cancelled
    before an epoch ends leave it alone. `append=True` adds to an existing file (its header must match).
    Only the main process writes in a distributed run.
    """

    order = 55
    run_after = Recorder  # writes the row the Recorder published
    run_in_lr_find = False

    @property
    def name(self) -> str:
        """Exposed as `learn.csv_logger`."""
        return "csv_logger"

    def __init__(self, fname: str | Path = "history.csv", append: bool = False) -> None:
        self.fname, self.append = Path(fname), append
        self._file: Any = None

    @property
    def path(self) -> Path:
        """The file written: `learn.path / fname`."""
        return self.learn.path / self.fname

    def before_fit(self) -> None:
        """Check an existing file's header when appending; the file is opened at the first epoch's end."""
        self._file = None
        self._header = list(self.learn.results.metric_names)
        self._has_header = False
        path = self.path
        if self.append and is_main_process() and path.exists() and path.stat().st_size > 0:
            with open(path, newline="") as f:
                old = next(csv.reader(f), [])
            if old != self._header:
                raise ValueError(f"{path} has columns {old} but this fit records {self._header}; "
                                 "use another fname or append=False")
            self._has_header = True

    def _write(self, row: list) -> None:
        self._writer.writerow(row)
        self._file.flush()

    def after_epoch(self) -> None:
        """Write this epoch's row (opening the file first: a fit that ends no epoch, e.g. `lr_find`, leaves
        it alone)."""
        if not is_main_process():
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a" if self.append else "w", newline="")
            self._writer = csv.writer(self._file)
            if not self._has_header:
                self._write(self._header)
        self._write([_cell(v) for v in self.learn.results.log])

    def after_fit(self) -> None:
        """Close the file (also after an error)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def read_log(self) -> pd.DataFrame:
        """The file as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(self.path)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, Real) and not isinstance(v, Integral):
        return "" if math.isnan(v) else repr(float(v))  # repr round-trips exactly; no value: an empty cell
    return v
