"""Mixed precision: `torch.amp` autocast (float16 with a GradScaler, or bfloat16) as a callback.

`learn.to_fp16()` / `learn.to_bf16()` add a `MixedPrecision` callback and `learn.to_fp32()` removes it; as in
fastai, `MixedPrecision(amp_mode=AMPMode.BF16)` (or `'bf16'`, or `torch.bfloat16`) picks the dtype.
The weights stay float32; the forward pass (and the loss) run under `torch.autocast` for the device type
of `learn.dls.device`. With float16 the loss gradient is multiplied by the GradScaler's scale; before the
optimizer steps the gradients are unscaled, and a step whose gradients overflowed (inf/NaN) is skipped with
`CancelStepException` and counted in `learn.mixed_precision.skipped_steps`. The schedule position
(`train_iter`, `pct_train`) still advances on a skipped step, as in fastai.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, cast

import torch

from .core import Callback, CancelStepException

if TYPE_CHECKING:
    from ..learner import Learner

LOW_PRECISION = (torch.float16, torch.bfloat16)


class AMPMode(Enum):
    """fastai's automatic mixed precision modes: `AMPMode.FP16` (`'fp16'`) and `AMPMode.BF16` (`'bf16'`)."""

    FP16 = "fp16"
    BF16 = "bf16"

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype of this mode (torch.float16 or torch.bfloat16)."""
        return torch.float16 if self is AMPMode.FP16 else torch.bfloat16


def amp_dtype(amp_mode: AMPMode | str | torch.dtype) -> torch.dtype:
    """The autocast dtype named by `amp_mode`: an `AMPMode`, `'fp16'` / `'bf16'`, or the torch dtype itself."""
    if isinstance(amp_mode, torch.dtype) and amp_mode in LOW_PRECISION:
        return amp_mode
    if isinstance(amp_mode, (AMPMode, str)):
        try:
            return AMPMode(amp_mode).dtype
        except ValueError:
            pass
    raise ValueError("MixedPrecision dtype must be torch.float16 or torch.bfloat16 (amp_mode AMPMode.FP16 / 'fp16' "
                     f"or AMPMode.BF16 / 'bf16'), got {amp_mode!r}")


def _check_scaler_args(init_scale: float, growth_factor: float, backoff_factor: float,
                       growth_interval: int) -> None:
    """A clear error for GradScaler arguments torch would reject (or misuse) only at the first fit."""
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if not (number(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale must be a finite number > 0, got {init_scale!r}")
    if not (number(growth_factor) and growth_factor > 1):
        raise ValueError(f"growth_factor must be a finite number > 1, got {growth_factor!r}")
    if not (number(backoff_factor) and 0 < backoff_factor < 1):
        raise ValueError(f"backoff_factor must be a number in (0, 1), got {backoff_factor!r}")
    if not (isinstance(growth_interval, int) and not isinstance(growth_interval, bool) and growth_interval >= 1):
        raise ValueError(f"growth_interval must be an int >= 1, got {growth_interval!r}")


def to_float(x: Any) -> Any:
    """Cast float16/bfloat16 tensors (also inside tuples, lists, namedtuples, dicts) to float32."""
    if isinstance(x, torch.Tensor):
        return x.float() if x.dtype in LOW_PRECISION else x
    if isinstance(x, dict):
        items = {k: to_float(v) for k, v in x.items()}
        try:
            return type(x)(items)
        except TypeError:  # a dict subclass with another constructor
            return items
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
        return type(x)(*(to_float(v) for v in x))
    if isinstance(x, (list, tuple)):
        return type(x)(to_float(v) for v in x)
    return x


class _StepProbe:
    """Stands in for the optimizer in `GradScaler.step`: it records whether the scaler would step.

    GradScaler unscales the real gradients through `param_groups` and calls `step()` only when they are
    finite; the real `opt.step()` then runs in the Learner's loop unless the step is cancelled.
    """

    def __init__(self, cb: MixedPrecision) -> None:
        self.cb, self.stepped = cb, False

    @property
    def param_groups(self) -> list[dict]:
        """The real optimizer's param groups (what GradScaler unscales)."""
        opt = self.cb.learn.opt
        return [] if opt is None else opt.param_groups

    def step(self, *args: Any, **kwargs: Any) -> None:
        """Called by GradScaler when the gradients are finite."""
        self.stepped = True


class MixedPrecision(Callback):
    """Autocast to float16 or bfloat16 (`amp_mode`: an `AMPMode`, `'fp16'` / `'bf16'`, or the torch dtype) for the
    forward pass and loss; float16 also scales the loss.

    Outputs of the model (a tensor, or tensors inside tuples, lists, namedtuples and dicts) are cast to
    float32 before the loss sees them, keeping their structure (`cast_outputs=False` keeps them as
    autocast made them). GradScaler keyword arguments (`init_scale`, `growth_factor`, `backoff_factor`,
    `growth_interval`) apply to float16. No host-device synchronisation is added per batch; the only sync
    is the one GradScaler makes per optimizer step to decide whether to skip it.
    """

    order = 10

    def __init__(self, amp_mode: AMPMode | str | torch.dtype = AMPMode.FP16, init_scale: float = 2.0**16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True, cast_outputs: bool = True) -> None:
        dtype = amp_dtype(amp_mode)
        _check_scaler_args(init_scale, growth_factor, backoff_factor, growth_interval)
        self.dtype, self.enabled, self.cast_outputs = dtype, enabled, cast_outputs
        self.init_scale, self.growth_factor = init_scale, growth_factor
        self.backoff_factor, self.growth_interval = backoff_factor, growth_interval
        self.scaler: torch.amp.GradScaler | None = None
        self._scaler_device: str | None = None
        self.skipped_steps = 0
        self.skipped_at: list[int] = []
        self._probe = _StepProbe(self)
        self._autocast: Any = None
        self._unscaled, self._pending_update = False, False
        self._warned = False

    # ---- setup --------------------------------------------------------------------------------
    @property
    def amp_mode(self) -> AMPMode:
        """fastai's name for the mode: `AMPMode.FP16` or `AMPMode.BF16` (from `dtype`)."""
        return AMPMode.FP16 if self.dtype == torch.float16 else AMPMode.BF16

    @property
    def use_scaler(self) -> bool:
        """True for float16 (a GradScaler guards against underflowing gradients)."""
        return self.enabled and self.dtype == torch.float16

    @property
    def skips_nonfinite_steps(self) -> bool:  # type: ignore[override]  # a capability flag, computed here
        """With a GradScaler, a step whose gradients are not finite is skipped here (other callbacks need not)."""
        return self.use_scaler

    def warn_if_emulated(self, device_type: str, stacklevel: int = 2) -> None:
        """Warn (once) that float16 autocast on a CPU is emulated: many times slower than float32
        (bench/fp16_cpu.py)."""
        if self.enabled and self.dtype == torch.float16 and device_type == "cpu" and not self._warned:
            self._warned = True
            warnings.warn("to_fp16() on a CPU: float16 autocast is emulated there and trains many times slower than "
                          "float32 (20x in bench/fp16_cpu.py); use learn.to_fp32(), or learn.to_bf16() on a CPU with "
                          "bfloat16 instructions (AVX512-BF16, AMX); float16 is for GPUs", RuntimeWarning,
                          stacklevel=stacklevel + 1)

    def _setup(self) -> None:
        dev = self.learn.dls.device.type
        if self.enabled and getattr(self, "device_type", None) != dev:  # checked once per device type
            check_autocast(dev, self.dtype)
            self.warn_if_emulated(dev)
        self.device_type = dev
        if self.use_scaler and (self.scaler is None or self._scaler_device != dev):
            self.scaler = torch.amp.GradScaler(dev, init_scale=self.init_scale, growth_factor=self.growth_factor,
                                               backoff_factor=self.backoff_factor,
                                               growth_interval=self.growth_interval)
            self._scaler_device = dev

    def before_fit(self) -> None:
        """Check that the device supports the dtype; create the GradScaler once (its scale carries over)."""
        self._setup()
        self.skipped_steps, self.skipped_at = 0, []
        self._unscaled, self._pending_update = False, False
        if self.scaler is not None and self.use_scaler:  # creates the scale tensor now: a step never misses it
            self.scaler.scale(torch.ones((), device=self.learn.dls.device))

    def before_validate(self) -> None:
        """`learn.validate()`/`get_preds()` run outside a fit: read the device type here too."""
        self._setup()

    # ---- forward ------------------------------------------------------------------------------
    def before_batch(self) -> None:
        """Enter autocast for the forward pass and the loss."""
        if self.enabled:
            self._autocast = torch.autocast(self.device_type, dtype=self.dtype)
            self._autocast.__enter__()

    def after_pred(self) -> None:
        """Cast low-precision outputs to float32, keeping tuples and dicts as they are."""
        if self.enabled and self.cast_outputs:
            self.learn.pred = to_float(self.learn.pred)

    def after_loss(self) -> None:
        """Leave autocast: the backward pass runs outside it, as torch recommends."""
        self._exit_autocast()

    def _exit_autocast(self) -> None:
        if self._autocast is not None:
            ctx, self._autocast = self._autocast, None
            ctx.__exit__(None, None, None)
            # torch clears its cache of low-precision weight copies only when the outermost autocast exits: inside
            # an enclosing (or leaked) autocast the next batch would reuse copies of the weights before this step
            torch.clear_autocast_cache()

    # ---- backward and step --------------------------------------------------------------------
    def before_backward(self) -> None:
        """Scale the gradient flowing out of the loss (the recorded `learn.loss` stays unscaled)."""
        if self.scaler is not None and self.use_scaler:
            self._unscaled = False  # new (scaled) gradients are about to be added
            cast(torch.Tensor, self.learn.loss).register_hook(self.scaler.scale)

    def unscale_grads(self) -> None:
        """Divide the gradients by the scale now (once per step; `before_step` does it otherwise)."""
        if self.scaler is not None and self.use_scaler and not self._unscaled:
            self.scaler.unscale_(cast(torch.optim.Optimizer, self._probe))
            self._unscaled, self._pending_update = True, True

    def before_step(self) -> None:
        """Unscale; skip the step (and count it) when the gradients overflowed; update the scale."""
        if self.scaler is None or not self.use_scaler:
            return
        probe = self._probe
        probe.stepped = False
        # unscales unless done; calls probe.step() only if all grads are finite
        self.scaler.step(cast(torch.optim.Optimizer, probe))
        self.scaler.update()
        self._unscaled, self._pending_update = True, False
        if not probe.stepped:
            self.skipped_steps += 1
            self.skipped_at.append(self.learn.train_iter)
            raise CancelStepException()

    def after_batch(self) -> None:
        """Leave autocast if a cancelled batch skipped `after_loss`."""
        self._exit_autocast()
        if self._pending_update and self.scaler is not None:  # unscaled, then the step was cancelled: close it
            self.scaler.update()
            self._pending_update = False

    def after_fit(self) -> None:
        """Leave autocast even when the fit ended with an error."""
        self._exit_autocast()

    # ---- inspection and state ---------------------------------------------------------------
    @property
    def scale(self) -> float | None:
        """The GradScaler's current scale (reads it from the device), or None without a scaler."""
        return self.scaler.get_scale() if self.scaler is not None else None

    def state_dict(self) -> dict:
        """The GradScaler's state and the skip counter (plain types and tensors), for checkpoints."""
        return {"scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned (the scaler is created for the learner's device if needed)."""
        if state.get("scaler"):
            if self.scaler is None:
                self._setup()
            if self.scaler is not None:
                self.scaler.load_state_dict(state["scaler"])
        else:  # there was no scaler yet (e.g. lr_find before the first fit): the next fit starts afresh
            self.scaler = None
        self.skipped_steps = state.get("skipped_steps", 0)

    def __repr__(self) -> str:
        return f"MixedPrecision(dtype={self.dtype}, enabled={self.enabled})"


def check_autocast(device_type: str, dtype: torch.dtype) -> None:
    """A clear error when `device_type` cannot autocast to `dtype`."""
    if not torch.amp.is_autocast_available(device_type):
        raise ValueError(f"torch cannot autocast on device type {device_type!r} (learn.dls.device); "
                         "use learn.to_fp32() or move the data to 'cuda' or 'cpu'")
    if device_type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU does not support bfloat16; use learn.to_fp16() instead")


def _remove_mixed_precision(learn: Learner) -> None:
    learn.remove_cb(MixedPrecision)


def test_overflow(x: torch.Tensor) -> bool:
    """True when tensor `x` holds an inf or NaN (fastai's check for overflowed float16 gradients)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"test_overflow takes a tensor, got {type(x).__name__}")
    return not bool(torch.isfinite(x).all())


test_overflow.__test__ = False  # type: ignore[attr-defined]  # a library function, not a pytest test


def grad_overflow(pgs: Iterable[Iterable[torch.Tensor]]) -> bool:
    """True when a gradient in the parameter groups `pgs` (lists of parameters) holds an inf or NaN."""
    groups = [list(pg) if isinstance(pg, Iterable) and not isinstance(pg, torch.Tensor) else pg for pg in pgs]
    for pg in groups:
        if not isinstance(pg, list) or not all(isinstance(p, torch.Tensor) for p in pg):
            raise TypeError("grad_overflow takes parameter groups: lists of parameters, e.g. "
                            f"[list(model.parameters())]; got {type(pg).__name__} {pg!r:.60}")
    return any(p.grad is not None and test_overflow(p.grad) for pg in groups for p in pg)


def to_fp16(learn: Learner, init_scale: float = 2.0**16, growth_factor: float = 2.0,
            backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True,
            cast_outputs: bool = True) -> Learner:
    """Train with float16 autocast and a GradScaler (replaces any mixed precision); returns `learn`. On a CPU it warns:
    float16 is emulated there, many times slower than float32."""
    mp = MixedPrecision(AMPMode.FP16, init_scale, growth_factor, backoff_factor, growth_interval, enabled,
                        cast_outputs)  # bad arguments raise here, before the learner changes
    _remove_mixed_precision(learn)
    mp.warn_if_emulated(learn.dls.device.type, stacklevel=2)  # now, at the user's line (not again at the fit)
    learn.add_cb(mp)
    return learn


def to_bf16(learn: Learner, enabled: bool = True, cast_outputs: bool = True) -> Learner:
    """Train with bfloat16 autocast (no scaler: it has float32's range; works on CPU); returns `learn`."""
    mp = MixedPrecision(AMPMode.BF16, enabled=enabled, cast_outputs=cast_outputs)
    _remove_mixed_precision(learn)
    learn.add_cb(mp)
    return learn


def to_fp32(learn: Learner) -> Learner:
    """Remove mixed precision (a no-op when there is none); returns `learn`."""
    _remove_mixed_precision(learn)
    return learn
