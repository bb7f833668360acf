"""Progress display: fastprogress bars in notebooks and terminals, one line per epoch elsewhere (CI logs).

Besides fastai's columns, the table shows the training throughput (items per second) and the share of the
training time spent waiting for data (`data_wait`). Both are measured with host clocks only: no
host-device synchronisation per batch. On a GPU the host runs ahead of the device, so a batch's time is
attributed where the host waited: in the data loader (data_wait), or in the training step when the GPU
is the bottleneck (the host then blocks when the launch queue is full). Over an epoch both are accurate
because the epoch ends with a synchronisation (the Recorder reads the losses).
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from .core import Callback
from .recorder import Recorder


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


def format_rate(items_per_s: float | None, unit: str = "/s") -> str:
    """Throughput as the table shows it: `25,314/s`, `812/s`, `3.41/s` (`-` when unknown)."""
    if items_per_s is None or not math.isfinite(items_per_s):
        return "-"
    return (f"{items_per_s:,.0f}" if items_per_s >= 100 else f"{items_per_s:.3g}") + unit


def format_share(share: float | None) -> str:
    """A share of time as a whole percentage: `2%` (`-` when unknown)."""
    return "-" if share is None or not math.isfinite(share) else f"{round(100 * share)}%"


def n_items(x: Any) -> int:
    """Batch size of the inputs `x`: the first dimension of their first tensor (0 when there is none)."""
    if isinstance(x, torch.Tensor):
        return int(x.shape[0]) if x.ndim else 0
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (list, tuple)):
        for v in x:
            n = n_items(v)
            if n:
                return n
    return 0


THROUGHPUT_COLUMNS = ["throughput", "data_wait"]


class ProgressCallback(Callback):
    """Shows the results table (epoch, train_loss, valid_loss, metrics, time, then the training throughput and
    the share of time spent waiting for data) and, where it helps, live bars.

    `throughput=False` leaves the last two columns out. Each epoch's figures are kept in `stats` (a list of
    dicts with `items_per_s`, `data_wait` and `seconds`, the training phase's duration); `epoch_stats` is the
    current epoch's (None until its training phase ends).
    """

    order = 60
    _old_logger: Callable[[list], Any] | None = None  # `learn.logger` before the fit
    run_after = Recorder  # shows the row the Recorder wrote at after_epoch
    run_in_lr_find = False
    main_process_only = True
    log_args = False

    def __init__(self, mode: str | None = None, throughput: bool = True) -> None:
        if mode not in (None, "notebook", "terminal", "plain"):
            raise ValueError(f"mode must be 'notebook', 'terminal', 'plain' or None (auto), got {mode!r}")
        self.mode, self.throughput = mode, throughput
        self.mbar: Any = None  # no bars until a fit opens them (get_preds/validate before any fit)
        self.pbar: Any = None
        self.stats: list[dict[str, float]] = []
        self._in_train = False
        self.epoch_stats: dict[str, float] | None = None
        self._loss_shown: float | None = None
        self._pending: tuple[torch.Tensor, Any] | None = None
        self._header: list[str] | None = None  # plain mode: the header, until the first row prints it

    @property
    def columns(self) -> list[str]:
        """The table's header: `learn.results.metric_names` (the Recorder's), then the throughput columns."""
        return list(self.learn.results.metric_names) + (THROUGHPUT_COLUMNS if self.throughput else [])

    def before_fit(self) -> None:
        """Open the epoch bar and write the table header (in plain mode, with the first row)."""
        if getattr(self.learn, "recorder", None) is None:
            raise ValueError("ProgressCallback shows the Recorder's results: create the Learner with "
                             "default_cbs=True or add a Recorder()")
        self._mode = self.mode or display_mode()
        self.stats, self._pending, self._loss_shown = [], None, None
        self._old_logger, self.learn.logger = self.learn.logger, self._write_row  # as fastai's: rows go to the table
        names = self.columns
        if self._mode == "plain":  # the header is printed with the first row, so a fit that ends before its
            self.mbar = None  # first row (an error, a cancelled fit) prints nothing
            self._widths = [max(len(n), 8) for n in names]
            self._header = names
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
        """Advance the epoch bar; start the epoch's clock."""
        self._t_epoch, self.epoch_stats = time.perf_counter(), None
        self.learn.results.epoch_stats = None
        if self.mbar is not None:
            self.mbar.update(self.learn.epoch - self.learn.start_epoch)

    def before_train(self) -> None:
        """A child bar over the training batches; start the throughput clocks."""
        self._child()
        now = time.perf_counter()
        self._in_train = True
        self._t_train = self._t_last = self._t_window = now
        self._wait = self._window_wait = 0.0
        self._items = self._window_items = 0

    def before_batch(self) -> None:
        """Count the time since the previous batch ended as waiting for data, and the batch's items."""
        if self._in_train:
            now = time.perf_counter()
            self._wait += now - self._t_last
            n = n_items(self.learn.xb)
            self._items += n

    def after_train(self) -> None:
        """This epoch's throughput and data-wait share (unknown when the phase was cancelled before this callback's
        `before_train`)."""
        if not self._in_train:
            self.epoch_stats = {"items_per_s": math.nan, "data_wait": math.nan, "seconds": math.nan}
        else:
            self._in_train = False
            secs = time.perf_counter() - self._t_train
            self.epoch_stats = {"items_per_s": self._items / secs if secs > 0 else math.nan,
                                "data_wait": self._wait / secs if secs > 0 else math.nan, "seconds": secs}
        self.stats.append(self.epoch_stats)
        self.learn.results.epoch_stats = self.epoch_stats  # published for the loggers

    def before_validate(self) -> None:
        """A child bar over the validation batches."""
        self._in_train = False
        self._child()

    def _child(self) -> None:
        if self.mbar is None:
            return
        from fastprogress.fastprogress import ConsoleProgressBar, NBProgressBar

        cls = NBProgressBar if self._mode == "notebook" else ConsoleProgressBar
        self.pbar = cls(range(self.learn.n_iter or 0), parent=self.mbar, leave=False)
        self.pbar.update(0)

    def after_batch(self) -> None:
        """Move the bar; at most once a second, update its comment (loss, items/s, data wait)."""
        now = time.perf_counter()
        if self._in_train:
            self._t_last = now
        if self.mbar is None or self.pbar is None:
            return
        if self._in_train and now - self._t_window > 1.0:
            self.pbar.comment = self._comment(now)
        self.pbar.update(self.learn.iter + 1)

    def _comment(self, now: float) -> str:
        span = now - self._t_window
        rate = (self._items - self._window_items) / span
        share = (self._wait - self._window_wait) / span
        self._t_window, self._window_items, self._window_wait = now, self._items, self._wait
        loss = self._peek_loss()
        parts = [] if loss is None else [f"{loss:.4f}"]
        if self.throughput:
            parts += [format_rate(rate, " items/s"), f"data wait {format_share(share)}"]
        return " · ".join(parts)

    def _peek_loss(self) -> float | None:
        """The latest training loss without waiting for the device: on CUDA the value is copied to pinned host
        memory asynchronously and shown once the copy is done (a second later), never by synchronising."""
        loss = self.learn.loss
        if loss is None:
            return self._loss_shown
        loss = loss.detach()
        if loss.device.type != "cuda":
            return float(loss) if loss.device.type == "cpu" else self._loss_shown
        if self._pending is not None and self._pending[1].query():
            self._loss_shown = float(self._pending[0])
            self._pending = None
        if self._pending is None:
            host = torch.empty((), dtype=loss.dtype, pin_memory=True)
            host.copy_(loss.reshape(()) if loss.numel() == 1 else loss.mean(), non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            self._pending = (host, done)
        return self._loss_shown

    def _write_row(self, log: list) -> None:
        """`learn.logger` during the fit: write the epoch's row (the Recorder's `log`) into the table."""
        if not self.learn.log_results:
            return
        row = [format_cell(v) for v in log]
        if self.throughput:
            st = self.epoch_stats or {}
            row += [format_rate(st.get("items_per_s")), format_share(st.get("data_wait"))]
        if self.mbar is None:
            if self._header is not None:
                self._print_row(self._header)
                self._header = None
            self._print_row(row)
        else:
            self.mbar.write(row, table=True)

    def after_fit(self) -> None:
        """Close the bars and give `learn.logger` back, even after an error."""
        self._in_train = False
        if self._old_logger is not None:
            self.learn.logger, self._old_logger = self._old_logger, None
        if self.mbar is not None:
            if self.pbar is not None:
                self.pbar.on_iter_end()
            self.mbar.on_iter_end()
            self.mbar = None


class ShowGraphCallback(Callback):
    """Draw the training loss (per batch, smoothed) and the validation loss (per epoch) under the progress bar as
    the fit goes (fastai's; in a notebook the graph updates after every epoch). `points` keeps what was drawn:
    `(batch index, loss)` pairs for training and `(training batches done, valid loss)` per epoch."""

    order = 65
    run_after = (Recorder, ProgressCallback)  # draws the epoch's losses under the display's bar
    run_valid = False
    run_in_lr_find = False

    def before_fit(self) -> None:
        """Start the record of this fit's epoch boundaries."""
        if getattr(self.learn, "progress", None) is None:
            raise ValueError("ShowGraphCallback draws under the progress bar: keep the ProgressCallback "
                             "(default_cbs=True, not inside learn.no_bar())")
        self.nb_batches: list[int] = []
        self.points: tuple[list, list] = ([], [])

    def after_train(self) -> None:
        """Note where this epoch's training ended."""
        self.nb_batches.append(self.learn.train_iter)

    def after_epoch(self) -> None:
        """Redraw the graph with every loss so far (one read of the recorder's losses per epoch)."""
        if not self.nb_batches:
            return
        rec = self.learn.recorder
        losses = [float(v) for v in rec.losses]
        res = self.learn.results
        valid = [row[res.index("valid_loss")] for row in res.values]
        self.points = (list(zip(range(len(losses)), losses)), list(zip(self.nb_batches, valid)))
        finite = [v for v in [*losses, *valid] if v == v]
        n_epoch, per_epoch = self.learn.n_epoch, self.nb_batches[0]
        x_bounds = (0, (n_epoch - len(self.nb_batches)) * per_epoch + len(losses))
        y_bounds = (0, max(finite) if finite else 1.0)
        mbar = getattr(self.learn.progress, "mbar", None)
        if mbar is not None:  # fastprogress draws in notebooks; a terminal or log has no graph
            mbar.update_graph([(list(range(len(losses))), losses), (self.nb_batches, valid)], x_bounds, y_bounds)
