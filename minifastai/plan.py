"""`Learner.dry_run`: replay every schedule of a fit call without data, and inspect the plan."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .checkpoint import get_rng_state, set_rng_state
from .recorder import Recorder, ScheduleView

if TYPE_CHECKING:
    from .learner import Learner


@dataclass
class PlanRecord(ScheduleView):
    """The planned schedule of one fit: `hps[name]` (and `lrs`, `moms`) has shape (iterations, layer groups)."""

    hps: dict[str, np.ndarray]
    group_names: list[str]
    n_epoch: int
    epoch_ends: list[int] = field(default_factory=list)
    trainable: list[bool] = field(default_factory=list)  # per group: do its (non-norm) weights train?
    sched_title: ClassVar[str] = "planned"

    def __repr__(self) -> str:
        peaks = ", ".join(f"{n}: {p:.3g}" for n, p in zip(self.group_names, self.lrs.max(0)))
        return f"PlanRecord({self.n_epoch} epochs, {len(self.lrs)} iterations, peak lr {peaks})"


class PlanRecorder(Recorder):
    """Records the hyper-parameters each planned training batch would use, one `PlanRecord` per fit."""

    run_dry = True

    def __init__(self, runs: list[PlanRecord]) -> None:
        super().__init__()
        self.runs = runs

    def after_batch(self) -> None:
        """Record the hyper-parameters set for this (imaginary) batch."""
        if self.learn.training:
            self.record_hps()

    def after_fit(self) -> None:
        """Store the fit's plan."""
        learn = self.learn
        self.runs.append(PlanRecord(self.hps, self.group_names, learn.n_epoch, list(self.epoch_ends),
                                    list(self.trainable)))


class DryRun:
    """Context manager: fits inside run their schedules only; weights, optimizer, RNG and modes are restored."""

    def __init__(self, learn: Learner) -> None:
        self.learn, self.runs = learn, []

    def __enter__(self) -> list[PlanRecord]:
        learn = self.learn
        if learn.dry:
            raise RuntimeError("dry_run() is already active on this learner")
        self.opt = learn.opt
        self.opt_state = copy.deepcopy(learn.opt.state_dict()) if learn.opt is not None else None
        self.requires_grad = [(p, p.requires_grad) for p in learn.model.parameters()]
        self.modes = [(m, m.training) for m in learn.model.modules()]
        self.rng = get_rng_state()
        self.cb = PlanRecorder(self.runs)
        learn.dry = True
        learn.add_cb(self.cb)
        return self.runs

    def __exit__(self, *exc: Any) -> None:
        learn = self.learn
        learn.remove_cb(self.cb)
        learn.dry = False
        learn._rebuild_handlers()
        for p, rg in self.requires_grad:
            p.requires_grad_(rg)
        for m, t in self.modes:
            m.training = t
        learn.opt = self.opt
        if self.opt is not None:
            self.opt.load_state_dict(self.opt_state)
        set_rng_state(self.rng)
