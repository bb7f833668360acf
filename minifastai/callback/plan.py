"""`Learner.dry_run`: replay every schedule of a fit call without data, and inspect the plan."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .recorder import Recorder, ScheduleRecord, plot_schedules

if TYPE_CHECKING:
    from ..learner import Learner


class PlanRecord(ScheduleRecord):
    """The planned schedule of one fit: `hps[name]` (and `lrs`, `moms`) has shape (iterations, layer groups)."""

    sched_title: ClassVar[str] = "planned"


class Plan(list):
    """The plans of the fits inside a `dry_run` block, one `PlanRecord` per fit (a list)."""

    def plot_sched(self, keys: Sequence[str] = ("lr", "mom"), log: bool = True, figsize: tuple | None = None) -> Any:
        """Every planned fit one after the other (e.g. both phases of `fine_tune`); returns the figure."""
        return plot_schedules(self, keys, log=log, figsize=figsize, title="planned")


class PlanRecorder(Recorder):
    """Records the hyper-parameters each planned training batch would use, one `PlanRecord` per fit."""

    run_dry = True
    publishes_results: ClassVar[bool] = False  # a plan has no results: `learn.results` stays the real fit's

    def __init__(self, runs: Plan) -> None:
        super().__init__()
        self.runs = runs

    def after_epoch(self) -> None:
        """A plan has no results table."""

    def after_batch(self) -> None:
        """Record the hyper-parameters set for this (imaginary) batch."""
        if self.learn.training:
            self.record_hps()

    def after_fit(self) -> None:
        """Store the fit's plan."""
        self.runs.append(PlanRecord(self.hps, list(self.group_names), self.learn.n_epoch, list(self.epoch_ends),
                                    list(self.trainable), dict(self.peaks)))


class DryRun:
    """Context manager: fits inside run their schedules only; the learner is restored from a snapshot after."""

    def __init__(self, learn: Learner) -> None:
        self.learn, self.runs = learn, Plan()

    def __enter__(self) -> Plan:
        learn = self.learn
        if learn.dry:
            raise RuntimeError("dry_run() is already active on this learner")
        self.saved = learn.snapshot(tensors=False)  # a planned fit changes no tensor
        learn.dry = True
        learn.add_cb(PlanRecorder(self.runs))
        return self.runs

    def __exit__(self, *exc: Any) -> None:
        self.saved.restore()


def dry_run(learn: Learner) -> DryRun:
    """Context manager: fits inside only play their schedules (no data, nothing changes); yields the plans."""
    return DryRun(learn)

