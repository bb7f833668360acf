"""Argument checks shared by the fit methods: each names the argument, says what to pass, and runs before
anything changes."""
from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any


def check_int(x: Any, name: str, low: int = 0, hint: str = "") -> int:
    """`x` as an int >= `low` (bools and floats such as 1.5 are refused)."""
    if isinstance(x, bool) or not isinstance(x, Integral):
        raise TypeError(f"{name} must be a whole number (an int >= {low}), got {x!r}{hint}")
    if x < low:
        raise ValueError(f"{name} must be >= {low}, got {x}{hint}")
    return int(x)


def check_number(x: Any, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, hint: str = "") -> float:
    """`x` as a finite float in [low, high] (an end is excluded when `*_open`)."""
    if isinstance(x, bool) or not isinstance(x, Real):
        raise TypeError(f"{name} must be a number, got {x!r}{hint}")
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"{name} is {v}; it must be a finite number{hint}")
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        rng = f"in {lo}, {hi}" if low is not None and high is not None else \
            (f"{'>' if low_open else '>='} {low:g}" if low is not None else f"{'<' if high_open else '<='} {high:g}")
        raise ValueError(f"{name} must be {rng}, got {v:g}{hint}")
    return v


def check_pct(x: Any, name: str = "pct_start") -> float:
    """A fraction of training in [0, 1]."""
    return check_number(x, name, 0.0, 1.0, hint=" (a fraction of the fit's training batches, e.g. 0.25)")


def check_div(x: Any, name: str) -> float:
    """A divisor of the peak LR: finite and > 0."""
    return check_number(x, name, 0.0, low_open=True, hint=f" ({name} divides the peak LR, e.g. 25.)")


def check_mom(x: Any, name: str = "mom") -> float:
    """A momentum in [0, 1)."""
    return check_number(x, name, 0.0, 1.0, high_open=True,
                        hint=" (momentum is Adam's beta1 or SGD's momentum, e.g. 0.9)")


def check_moms(moms: Any, name: str = "moms") -> tuple[float, float, float]:
    """One-cycle momentums `(start, middle, end)`, each in [0, 1)."""
    if isinstance(moms, (str, bytes)) or not isinstance(moms, Sequence):
        raise TypeError(f"{name} must be a tuple of 3 momentums (start, middle, end), e.g. (0.95, 0.85, 0.95); "
                        f"got {moms!r}")
    if len(moms) != 3:
        raise ValueError(f"{name}={tuple(moms)!r} has {len(moms)} values; give 3: the momentum at the start, the "
                         "middle (at the LR peak) and the end of the cycle, e.g. (0.95, 0.85, 0.95)")
    a, b, c = (check_mom(m, f"{name}[{i}]") for i, m in enumerate(moms))
    return a, b, c


def check_wd(wd: Any, name: str = "wd") -> float | None:
    """A weight decay: None (the learner's) or a finite float >= 0."""
    if wd is None:
        return None
    return check_number(wd, name, 0.0, hint=" (weight decay, e.g. 0.01; None keeps the learner's)")


PEER_FAILURE_HINTS = ("connection closed by peer", "connection reset by peer", "broken pipe", "gloo", "nccl",
                      "socket timeout", "timed out", "processgroup")


def is_peer_failure(e: BaseException) -> bool:
    """Whether `e` comes from talking to other processes (torch.distributed's errors, or gloo/NCCL messages)."""
    import torch.distributed as dist

    if isinstance(e, getattr(dist, "DistError", ())):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and any(h in msg for h in PEER_FAILURE_HINTS)


def no_grad_loss_message(learn: Any) -> str:
    """Why a loss has no gradient to follow: nothing trainable (every group frozen), or a loss cut off from the
    model's output (detached, `.item()`, computed under `torch.no_grad`)."""
    opt = learn.opt
    params = [p for pg in opt.param_groups for p in pg["params"]] if opt is not None else []
    if not any(p.requires_grad for p in params):
        return ("nothing to train: every parameter of the model is frozen (requires_grad=False), so no layer group "
                "can learn; call learn.unfreeze() or learn.freeze_to(n) with n below the number of groups")
    return (f"the loss does not depend on the model's trainable parameters (it does not require grad): loss_func "
            f"{learn.loss_func!r} returned a value cut off from the predictions (.detach(), .item(), numpy, or "
            "torch.no_grad); compute it with torch operations on the predictions")
