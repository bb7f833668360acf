"""The fit's results in one place, as Keras hands every callback one `logs` dict: `learn.results`.

The Recorder writes them (losses, metrics, whether the epoch validated, the validation's running sums); the
progress display adds what it measured; every other callback, logger and tracker reads them from here and never
from another callback's attributes. `DistributedTrainer` sums the running validation sums over processes before
the Recorder turns them into `valid_loss`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

NAN = float("nan")
DEFAULT_NAMES = ("epoch", "train_loss", "valid_loss", "time")


@dataclass(eq=False)
class Results:
    """What a fit has produced so far, readable by every callback as `self.learn.results`.

    `metric_names` is fastai's header (`epoch, train_loss, valid_loss, *metrics, time`; with the Recorder's
    `train_metrics`, `epoch, train_loss, train_<m>..., valid_loss, valid_<m>..., time`); `values` holds one row
    per epoch of the current fit, `[train_loss, valid_loss, *metrics]` (`metric_names[1:-1]` names its columns);
    `log` is the latest display row; `valid_result` the latest validation's `[valid_loss, *metrics]` (NaN when it
    did not complete, and then `validated` is False). `valid_loss_sum` / `valid_count` are the running sums of a
    validation in progress; `epoch_stats` what the progress display measured in the latest epoch
    (`items_per_s`, `data_wait`), or None.
    """

    metric_names: list[str] = field(default_factory=lambda: list(DEFAULT_NAMES))
    values: list[list[float]] = field(default_factory=list)
    log: list[Any] = field(default_factory=list)
    valid_result: list[float] = field(default_factory=list)
    validated: bool = False
    valid_loss_sum: Any = 0.0
    valid_count: int = 0
    epoch_stats: dict[str, float] | None = None

    @property
    def final_record(self) -> list[float] | None:
        """The latest epoch's row `[train_loss, valid_loss, *metrics]`, or None before any epoch ended."""
        return self.values[-1] if self.values else None

    def columns(self) -> dict[str, float]:
        """The latest epoch's row by column name (`train_loss`, `valid_loss`, each metric); empty before one."""
        row = self.final_record
        return {} if row is None else dict(zip(self.metric_names[1:-1], row))

    def index(self, name: str) -> int:
        """The position of column `name` in a row of `values` (`valid_loss` is 1, or after the training metrics
        with `Recorder(train_metrics=True)`)."""
        return self.metric_names[1:-1].index(name)

    def value(self, name: str) -> float | None:
        """The latest epoch's value of column `name` (NaN stays NaN); None when there is no such column, or for a
        validation column when this epoch's validation did not complete (so a tracker never reads a stale result)."""
        cols = self.columns()
        if name not in cols or (not name.startswith("train_") and not self.validated):
            return None
        return float(cols[name])

    def copy(self) -> Results:
        """An independent copy (what `Snapshot` keeps)."""
        return copy.deepcopy(self)

    def restore(self, other: Results) -> None:
        """Set every field from `other` (a `copy()`)."""
        vars(self).update(copy.deepcopy(vars(other)))
