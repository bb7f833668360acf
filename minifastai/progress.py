"""Progress display: fastprogress bars in notebooks and terminals, one line per epoch elsewhere (CI logs)."""
from __future__ import annotations

import sys
import time
from typing import Any

from .callback import Callback


def display_mode() -> str:
    """'notebook' (HTML bars), 'terminal' (a live bar) or 'plain' (one line per epoch, no bar updates)."""
    from fastprogress.core import in_notebook

    if in_notebook():
        return "notebook"
    return "terminal" if getattr(sys.stdout, "isatty", lambda: False)() else "plain"


def format_cell(v: Any) -> str:
    """A results-table cell as fastai prints it."""
    if isinstance(v, float):
        return f"{v:.6f}"
    return "None" if v is None else str(v)


class ProgressCallback(Callback):
    """Shows the results table (epoch, train_loss, valid_loss, metrics, time) and, where it helps, bars."""

    order = 60

    def __init__(self, mode: str | None = None) -> None:
        if mode not in (None, "notebook", "terminal", "plain"):
            raise ValueError(f"mode must be 'notebook', 'terminal', 'plain' or None (auto), got {mode!r}")
        self.mode = mode
        self.mbar = self.pbar = None  # no bars until a fit opens them (get_preds/validate before any fit)

    def before_fit(self) -> None:
        """Open the epoch bar and write the table header."""
        self._mode = self.mode or display_mode()
        names = self.learn.recorder.metric_names
        if self._mode == "plain":
            self.mbar = None
            self._widths = [max(len(n), 8) for n in names]
            if self.learn.log_results:
                self._print_row(names)
            return
        from fastprogress.fastprogress import ConsoleMasterBar, NBMasterBar

        cls = NBMasterBar if self._mode == "notebook" else ConsoleMasterBar
        self.mbar = cls(range(self.learn.start_epoch, self.learn.n_epoch))
        self.mbar.update(0)  # draws the epoch bar first, so the table is written under a real bar
        if self.learn.log_results:
            self.mbar.write(names, table=True)
        self.pbar = None

    def _print_row(self, cells: list[str]) -> None:
        print("  ".join(c.ljust(w) for c, w in zip(cells, self._widths)).rstrip(), flush=True)

    def before_epoch(self) -> None:
        """Advance the epoch bar."""
        if self.mbar is not None:
            self.mbar.update(self.learn.epoch - self.learn.start_epoch)

    def before_train(self) -> None:
        """A child bar over the training batches."""
        self._child()

    def before_validate(self) -> None:
        """A child bar over the validation batches."""
        self._child()

    def _child(self) -> None:
        if self.mbar is None:
            return
        from fastprogress.fastprogress import ConsoleProgressBar, NBProgressBar

        cls = NBProgressBar if self._mode == "notebook" else ConsoleProgressBar
        self.pbar = cls(range(self.learn.n_iter or 0), parent=self.mbar, leave=False)
        self.pbar.update(0)
        self._t_comment = time.perf_counter()

    def after_batch(self) -> None:
        """Move the bar; read the loss from the device at most once a second, for the comment."""
        if self.mbar is None or self.pbar is None:
            return
        if self.learn.training and time.perf_counter() - self._t_comment > 1.0:
            self._t_comment = time.perf_counter()
            self.pbar.comment = f"{float(self.learn.loss.detach()):.4f}"
        self.pbar.update(self.learn.iter + 1)

    def after_epoch(self) -> None:
        """Write this epoch's row of the table."""
        if not self.learn.log_results:
            return
        row = [format_cell(v) for v in self.learn.recorder.log]
        if self.mbar is None:
            self._print_row(row)
        else:
            self.mbar.write(row, table=True)

    def after_fit(self) -> None:
        """Close the bars, even after an error."""
        if self.mbar is not None:
            if self.pbar is not None:
                self.pbar.on_iter_end()
            self.mbar.on_iter_end()
            self.mbar = None
