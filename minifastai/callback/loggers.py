"""Experiment loggers: TensorBoard and MLflow, with every layer group's hyper-parameters under its name.

Both log, per training batch, each layer group's `lr`, `mom` and `wd` (`lr/<group name>`, e.g. `lr/body`,
`lr/head`) and the batch's training loss (`batch/train_loss`); per epoch every column of
`learn.results.metric_names` (`epoch/train_loss`, `epoch/valid_loss`, `epoch/<metric>`, `epoch/epoch`,
`epoch/time` in seconds) and, when the progress display measured them, `epoch/throughput` (items/s) and
`epoch/data_wait` (share of the training time); per fit its hyper-parameters and the `plot_sched` figure.

The step of every value is the number of training batches done, counted across the fits this callback
saw (so `fine_tune`'s two fits follow each other on one axis). Batch values are kept as tensors on the
device and written at most every `flush_secs` seconds and at the end of each training phase: no
host-device synchronisation per batch. Only the main process of a distributed run writes. `lr_find`
sweeps are not logged, and the loggers are never part of an export; a checkpoint keeps only what a
resumed fit needs to continue the same run (the log folder or MLflow run id and the step count).
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..groups import group_hypers, groups_training
from ..metrics import metric_name
from .core import Callback
from .distributed import is_main_process
from .progress import ProgressCallback
from .recorder import Recorder

if TYPE_CHECKING:
    from ..learner import Learner

HPS = ("lr", "mom", "wd")


def _plain(v: Any) -> Any:
    """`v` as a loggable value (number or short string), or None when it is not a simple setting."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (int, float, str)):
        return v
    if isinstance(v, (torch.dtype, slice, Path)):
        return str(v)
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float, str, bool)) or x is None for x in v):
        return str(list(v))
    return None


def _name_of(f: Any) -> str:
    f = getattr(f, "func", f)  # functools.partial
    return getattr(f, "__name__", None) or type(f).__name__


def fit_hyperparameters(learn: Learner) -> dict[str, Any]:
    """The settings of the fit that is starting: data, model, optimizer, layer groups and every added
    callback's constructor arguments (e.g. `one_cycle.lr_max`, `one_cycle.pct_start`, `ema.decay`)."""
    dl: Any = learn.dls.train
    params = list(learn.model.parameters())
    plan = learn.group_plan  # the fit's plan: group names, and each group's peak from the schedules
    trainable = [name for name, t in zip(plan.group_names, groups_training(learn.model, learn.layer_groups)) if t]
    hp: dict[str, Any] = {
        "n_epoch": learn.n_epoch, "start_epoch": learn.start_epoch,
        "batches_per_epoch": len(dl) if hasattr(dl, "__len__") else "unknown",
        "batch_size": getattr(dl, "batch_size", None) or "unknown",
        "model": type(learn.model).__name__, "n_params": sum(p.numel() for p in params),
        "n_trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "loss_func": _name_of(learn.loss_func), "opt_func": _name_of(learn.opt_func),
        "optimizer": type(learn.opt).__name__, "wd": learn.wd if learn.wd is not None else 0.01,
        "wd_bn_bias": str(learn.wd_bn_bias), "train_bn": str(learn.train_bn), "moms": str(list(learn.moms)),
        "n_groups": learn.n_groups, "group_names": str(list(plan.group_names)),
        "trainable_groups": str(trainable),
        "metrics": str([metric_name(m) for m in learn.metrics]),
        "callbacks": str([type(cb).__name__ for cb in learn.cbs if cb.log_args or isinstance(cb, _FitLogger)]),
    }
    if "lr" in plan.peaks:
        hp["peak_lrs"] = str([float(f"{p:.6g}") for p in plan.peaks["lr"]])  # what slice(...) gave each group
    for cb in learn.cbs:
        if not cb.log_args:  # the default callbacks and the loggers themselves
            continue
        try:
            args = inspect.signature(type(cb).__init__).parameters
        except (TypeError, ValueError):
            continue
        for a in args:
            own = a in vars(cb) or hasattr(type(cb), a)  # its own setting, not a name read from the learner
            v = _plain(getattr(cb, a)) if a != "self" and own else None
            if v is not None:
                hp[f"{cb.name}.{a}"] = v
    return hp


class _FitLogger(Callback):
    """What TensorBoard and MLflow share: buffering per-batch values, epoch rows, steps, run state."""

    order = 65
    run_after = (Recorder, ProgressCallback)  # logs the epoch's row and the display's throughput
    run_in_lr_find = False  # a sweep is not a fit to log
    log_args = False

    def __init__(self, flush_secs: float = 10.0, log_figure: bool = True) -> None:
        if not flush_secs >= 0:
            raise ValueError(f"flush_secs must be >= 0 (seconds between writes), got {flush_secs}")
        self.flush_secs, self.log_figure = float(flush_secs), log_figure
        self.step_offset = 0  # training batches of the fits this logger finished earlier
        self.n_fits = 0
        self._active = self._broken = False  # _broken: a write failed during this fit; logging stopped
        self._losses: list[torch.Tensor] = []
        self._rows: list[tuple[int, float, list[float]]] = []

    # ---- what a backend implements ------------------------------------------------------------
    def _prepare(self) -> None:
        """At the start of a fit: what may be slow or fail (imports, connecting to a store), before training."""

    def _check(self) -> None:
        """At the start of a fit, after `_prepare`: a ValueError for what would fail later (where the logs go,
        the names of the values)."""

    def _open(self) -> None:
        raise NotImplementedError

    def _write_scalars(self, rows: list[tuple[str, float, int, float]]) -> None:
        """rows of (key, value, step, unix time)."""
        raise NotImplementedError

    def _write_params(self, params: dict[str, Any], fit_index: int) -> None:
        raise NotImplementedError

    def _write_figure(self, fig: Any, name: str, step: int) -> None:
        raise NotImplementedError

    def _write_final(self, params: dict[str, Any], metrics: dict[str, float]) -> None:
        """At the end of a fit: its hyper-parameters with the final value of every epoch series (by key)."""

    def _close(self, failed: bool) -> None:
        raise NotImplementedError

    def key(self, kind: str, name: str) -> str:
        """The name a value is logged under, the same in every tool: `kind/<series_name(name)>`, e.g. `lr/head`,
        `lr/group 0` (SPEC §12), `lr/group 2 head`."""
        return f"{kind}/{series_name(name)}"

    # ---- events -------------------------------------------------------------------------------
    def before_fit(self) -> None:
        """Start logging this fit (main process only; `lr_find` takes the loggers out for its sweep)."""
        learn = self.learn
        self._active = is_main_process()
        if not self._active:
            return
        self.fit_index, self.n_fits = self.n_fits, self.n_fits + 1
        self._opened = False
        self._losses, self._rows = [], []
        self._hparams = fit_hyperparameters(learn)
        self._fit_start_iter = int(learn.train_iter)  # start_epoch * batches per epoch when resuming
        self._broken = False
        try:
            self._prepare()
            self._check()
        except BaseException:
            self._active = False  # nothing was logged: after_fit has nothing to close
            raise
        self._t_flush = time.perf_counter()

    def _safely(self, what: str, f: Callable[[], None]) -> None:
        """Run a write; if it fails, warn once and stop logging for this fit (training and the Recorder go on)."""
        try:
            f()
        except Exception as e:
            self._active, self._broken = False, True
            warnings.warn(f"{type(self).__name__}: {what} failed at epoch {self.learn.epoch} ({type(e).__name__}: "
                          f"{str(e)[:300]}); this logger stops logging for the rest of this fit, training and the "
                          "Recorder go on", stacklevel=2)

    def _ensure_open(self) -> None:
        if not self._opened:
            self._open()  # lazily: a resumed fit's saved run (restored after before_fit) is known by now
            self._opened = True
            self._write_params(self._hparams, self.fit_index)

    def before_epoch(self) -> None:
        """Start the epoch's clock."""
        self._t_epoch = time.perf_counter()

    def after_batch(self) -> None:
        """Keep the batch's loss (a tensor) and every group's hyper-parameters; write them now and then."""
        learn = self.learn
        if not self._active or not learn.training or learn.loss is None:
            return
        self._losses.append(learn.loss.detach())
        assert learn.opt is not None
        hps = [v for h in HPS for v in group_hypers(learn.opt, h, learn.n_groups)]
        self._rows.append((self.step_offset + learn.train_iter, time.time(), hps))
        if time.perf_counter() - self._t_flush > self.flush_secs:
            self._safely("writing the batch values", self._flush)

    def _flush(self) -> None:
        self._t_flush = time.perf_counter()
        if not self._rows:
            return
        self._ensure_open()
        losses = torch.stack([t.float().mean() for t in self._losses]).cpu().tolist()  # one read per flush
        names = list(self.learn.group_plan.group_names)
        out = []
        for loss, (step, t, hps) in zip(losses, self._rows):
            out.append((self.key("batch", "train_loss"), loss, step, t))
            for i, h in enumerate(HPS):
                for g, name in enumerate(names):
                    out.append((self.key(h, name), hps[i * len(names) + g], step, t))
        self._losses, self._rows = [], []
        self._write_scalars(out)

    def after_train(self) -> None:
        """Write the training phase's batches."""
        if self._active:
            self._safely("writing the batch values", self._flush)

    def after_epoch(self) -> None:
        """Write every column of the epoch's row, and the measured throughput."""
        if self._active:
            self._safely("writing the epoch's row", self._write_epoch)

    def _write_epoch(self) -> None:
        learn = self.learn
        self._flush()
        self._ensure_open()
        res = learn.results
        step, now = self.step_offset + learn.train_iter, time.time()
        cols: dict[str, Any] = res.columns()  # train_loss, valid_loss, every metric
        cols["epoch"] = learn.epoch
        cols["time"] = time.perf_counter() - self._t_epoch  # seconds (the table's mm:ss is too coarse)
        stats = res.epoch_stats  # the progress display's measurements, when it runs
        if stats:
            cols["throughput"], cols["data_wait"] = stats["items_per_s"], stats["data_wait"]
        self._write_scalars([(k, v, step, now) for k, v in self._epoch_values(cols).items()])

    def _epoch_values(self, cols: dict[str, Any]) -> dict[str, float]:
        """The finite numbers of an epoch's columns, by the key they are logged under (`epoch/<name>`)."""
        out = {}
        for name, v in cols.items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                out[self.key("epoch", name)] = v
        return out

    def after_fit(self) -> None:
        """Write what is left and the schedule figure; close (a run that ended in an error, or whose logging
        failed, is marked so)."""
        if not (self._active or self._broken):
            return
        learn, failed = self.learn, sys.exc_info()[0] is not None
        try:
            if self._active:
                self._safely("writing the fit's last values", self._finish)
        finally:
            failed = failed or self._broken  # a write that failed, during the fit or just now
            self._active = self._broken = False
            self.step_offset += int(learn.train_iter)
            if self._opened:
                self._safely("closing the run", lambda: self._close(failed=failed))

    def _finish(self) -> None:
        learn = self.learn
        self._flush()
        if self._opened and learn.results.values:
            self._write_final(self._hparams, self._epoch_values(learn.results.columns()))
        rec = getattr(learn, "recorder", None)
        if self.log_figure and self._opened and rec is not None and len(rec.lrs):
            import matplotlib.pyplot as plt

            fig = rec.plot_sched()
            try:
                self._write_figure(fig, "plot_sched" if self.fit_index == 0 else f"plot_sched_fit{self.fit_index}",
                                   self.step_offset + learn.train_iter)
            finally:
                plt.close(fig)

    # ---- checkpoint state ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Only what a resumed fit needs to continue the same run: where it logs and the step count."""
        return {"step_offset": int(self.step_offset), "n_fits": int(self.n_fits), **self._run_state()}

    def check_state_dict(self, state: dict | None) -> None:
        """ValueError unless `state` is this logger's: counts that are ints >= 0, and a run that names no place
        to write (nothing read from a file chooses where a logger writes)."""
        if state is None:
            return
        for key in ("step_offset", "n_fits"):
            v = state.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{key} must be an int >= 0, got {v!r}")
        self._check_run_state(state)

    def load_state_dict(self, state: dict) -> None:
        """Continue the saved run (a fit resumed from a checkpoint logs into the same place, same steps)."""
        self.check_state_dict(state)
        self.step_offset, self.n_fits = int(state["step_offset"]), int(state["n_fits"])
        if self._active:
            self.fit_index = max(self.n_fits - 1, 0)
        self._load_run_state(state)

    def _run_state(self) -> dict:
        raise NotImplementedError

    def _check_run_state(self, state: dict) -> None:
        """ValueError unless the run's part of `state` can be used as it is."""

    def _load_run_state(self, state: dict) -> None:
        raise NotImplementedError


def _markdown_table(params: dict[str, Any]) -> str:
    cells = ((k, str(v).replace("|", "\\|")) for k, v in params.items())
    return "| hyper-parameter | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in cells)


class TensorBoardCallback(_FitLogger):
    """Log to TensorBoard event files in `log_dir` (default `learn.path / "runs" / <date-time>`).

    Needs the `tensorboard` package (`pip install 'minifastai[tensorboard]'`). Values are named after the
    layer groups by `series_name` (`lr/group 0`, `mom/head`, ...: the names MLflow gets too). Hyper-parameters
    go to the text tab (`hyperparameters`, one step per fit) and, with the fit's final `epoch/...` metrics, to the
    HParams tab at the end of each fit; the schedule goes to the images tab (`plot_sched`).
    Every fit of this callback writes one event file, flushed at the end of each fit (`close()` closes it).
    """

    def __init__(self, log_dir: str | Path | None = None, flush_secs: float = 10.0, log_figure: bool = True) -> None:
        super().__init__(flush_secs, log_figure)
        try:
            import tensorboard  # noqa: F401
        except ImportError as e:
            raise ImportError("TensorBoardCallback needs tensorboard: pip install 'minifastai[tensorboard]'") from e
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.run_dir: Path | None = None  # the folder written (log_dir, or the default chosen at the first fit)
        self.writer: Any = None
        self._writer_dir: Path | None = None

    def _prepare(self) -> None:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (importing it takes seconds)

    def _check(self) -> None:
        target = self.log_dir or Path(self.learn.path) / "runs"
        for p in [target, *target.parents]:
            if p.exists() or p.is_symlink():
                if not p.is_dir():
                    raise ValueError(f"TensorBoardCallback cannot write to {target}: {p} is a file, not a folder; "
                                     "pass log_dir= a folder (it is created if missing)")
                if not os.access(p, os.W_OK | os.X_OK):
                    raise ValueError(f"TensorBoardCallback cannot write to {target}: {p} is not writable")
                return

    def _open(self) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from torch.utils.tensorboard import SummaryWriter

        if self.run_dir is None:
            self.run_dir = self.log_dir or self.learn.path / "runs" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        if self.writer is not None and self._writer_dir == self.run_dir:  # a later fit of this run (fine_tune's
            return  # second) writes the same file: TensorBoard reads files in name order, dropping older steps after
        self.close()
        self.writer, self._writer_dir = SummaryWriter(str(self.run_dir)), self.run_dir
        # a (re)start marker: TensorBoard drops what a crashed run wrote from this step on (a resumed fit
        # writes those steps again)
        start = Event(step=self.step_offset + self._fit_start_iter + 1, wall_time=time.time(),
                      session_log=SessionLog(status=SessionLog.START))
        self.writer.file_writer.add_event(start)

    def _write_scalars(self, rows: list[tuple[str, float, int, float]]) -> None:
        for key, v, step, t in rows:
            self.writer.add_scalar(key, v, step, walltime=t)

    def _write_params(self, params: dict[str, Any], fit_index: int) -> None:
        self.writer.add_text("hyperparameters", _markdown_table(params), fit_index)

    def _write_figure(self, fig: Any, name: str, step: int) -> None:
        self.writer.add_figure("plot_sched", fig, step, close=False)

    def _write_final(self, params: dict[str, Any], metrics: dict[str, float]) -> None:
        """TensorBoard's HParams tab: the fit's hyper-parameters, and its metrics read from the `epoch/...` series
        this run already holds (so runs can be compared there)."""
        from torch.utils.tensorboard.summary import hparams

        plain = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()}
        for summary in hparams(plain, metrics):
            self.writer.file_writer.add_summary(summary)

    def _close(self, failed: bool) -> None:
        if self.writer is None:
            return
        self.writer.flush()  # everything is on disk after each fit; the file stays open for this run's next fit
        if failed:  # a fit that failed (or is resumed in another process later) starts a new file, with a marker
            self.writer.close()
            self.writer = None

    def close(self) -> None:
        """Close the event file (it stays open between fits so that all of this callback's fits write one file)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _run_state(self) -> dict:
        # only the default run folder's name: a resumed fit logs into learn.path/runs/<name>, never a path read
        # from the file (with log_dir=..., the script names the folder again)
        default = self.run_dir is not None and self.log_dir is None
        return {"run_name": self.run_dir.name if default else None}  # type: ignore[union-attr]

    def _saved_run_name(self, state: dict) -> str | None:
        """The run folder's name in `state` (`run_name`; an older file's `run_dir` only as `<learn.path>/runs/<name>`),
        else a ValueError: a checkpoint cannot choose where TensorBoard writes."""
        name, old = state.get("run_name"), state.get("run_dir")
        if name is None and old is not None:
            runs = (Path(self.learn.path) / "runs").resolve()
            if not isinstance(old, str) or Path(old).resolve().parent != runs:
                raise ValueError(f"run_dir {old!r} is not a folder of {runs}: a checkpoint cannot choose where "
                                 "TensorBoard writes; pass log_dir= to choose it")
            name = Path(old).name
        if name is not None and not (isinstance(name, str) and _RUN_NAME.fullmatch(name) and name not in (".", "..")):
            raise ValueError(f"run_name {name!r} is not a folder name (letters, digits, '_', '-', '.', ':'): a "
                             "checkpoint cannot choose where TensorBoard writes")
        return name

    def _check_run_state(self, state: dict) -> None:
        self._saved_run_name(state)

    def _load_run_state(self, state: dict) -> None:
        name = self._saved_run_name(state)
        if name and self.log_dir is None:
            self.run_dir = self.learn.path / "runs" / name


_RUN_NAME = re.compile(r"[\w.\-:]+")

def series_name(name: str) -> str:
    """A layer group's or metric's name as every logger writes it: the group's name (SPEC §12: `lr/group 0`) in
    the characters MLflow accepts (`mlflow_key`), with `/` made `_` so that it stays one level (`group 2 (head)`
    -> `group 2 head`, `body` stays). The same name in TensorBoard and MLflow."""
    return mlflow_key(str(name).replace("/", "_")) or "_"


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Python loggers `names` at WARNING and above inside the block (their levels are put back after)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def run_tags() -> dict[str, str]:
    """The tags of the MLflow runs (and experiments) minifastai creates: a training run, and who wrote it."""
    from ..version import __version__

    return {"minifastai.run_type": "training", "minifastai.version": __version__}


MLFLOW_KEY_MAX = 250
"""MLflow's limit on the length of metric and parameter names."""

_MLFLOW_NAME = re.compile(r"[^/\w.\- :]")


def mlflow_key(name: str) -> str:
    """`name` with the characters MLflow refuses in metric and parameter names dropped (brackets) or made
    `_` (others): `lr/group 2 (head)` -> `lr/group 2 head`."""
    name = re.sub(r"[()\[\]{}<>]", "", name)
    return re.sub(r"\s+", " ", _MLFLOW_NAME.sub("_", name)).strip()


class MLflowCallback(_FitLogger):
    """Log to an MLflow run: per-batch and per-epoch metrics, the fit's parameters, the schedule figure.

    Needs the full `mlflow` package (`pip install 'minifastai[mlflow]'`; `mlflow-skinny` has no SQLite store).
    `tracking_uri` defaults to MLflow's own default (`MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db` in the
    working folder): a local store, no server. The run is created in `experiment_name` (created if missing;
    default: MLflow's default experiment) when the first values are written, unless a run is already active
    (`mlflow.start_run()`), which is then used and left open. Every fit of this callback logs into the same
    run; the parameters of the first fit have plain names, those of later fits a `fit<k>/` prefix. Names
    are `series_name`'s, as TensorBoard's (`lr/group 2 head`); parameter names follow MLflow's rules (`mlflow_key`).
    """

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None,
                 run_name: str | None = None, flush_secs: float = 10.0, log_figure: bool = True) -> None:
        super().__init__(flush_secs, log_figure)
        try:
            import mlflow  # noqa: F401
        except ImportError as e:
            raise ImportError("MLflowCallback needs mlflow: pip install 'minifastai[mlflow]'") from e
        self.tracking_uri, self.experiment_name, self.run_name = tracking_uri, experiment_name, run_name
        self.run_id: str | None = None
        self._owns_run = True
        self.client: Any = None

    def _prepare(self) -> None:
        from mlflow.tracking import MlflowClient

        if self.client is None:  # connect now: a new SQLite store takes seconds to set up, a bad URI fails here
            with _quiet_loggers("mlflow", "alembic"):  # its INFO lines ("Updating database tables") stay out of
                self.client = MlflowClient(tracking_uri=self.tracking_uri)  # the results table
                self.client.search_experiments(max_results=1)

    def _check(self) -> None:
        if self.experiment_name is not None:
            exp = self.client.get_experiment_by_name(self.experiment_name)
            if exp is not None and exp.lifecycle_stage == "deleted":
                raise ValueError(f"MLflow experiment {self.experiment_name!r} is deleted (in MLflow's trash): restore "
                                 "it (`mlflow experiments restore`), delete it for good, or pass another "
                                 "experiment_name")
        learn = self.learn
        names = [*learn.group_plan.group_names, *learn.results.metric_names, "train_loss", "throughput", "data_wait"]
        keys = [self.key(h, n) for h in (*HPS, "epoch", "batch") for n in names]
        keys += [mlflow_key(f"fit{self.fit_index}/{k}") for k in self._hparams]
        too_long = [k for k in keys if len(k) > MLFLOW_KEY_MAX]
        if too_long:
            raise ValueError(f"MLflow refuses names longer than {MLFLOW_KEY_MAX} characters, and "
                             f"{len(too_long)} of this fit's would be, e.g. {too_long[0][:80]!r}... "
                             f"({len(too_long[0])} characters); give the Learner shorter group_names (or metrics, "
                             "callbacks with shorter names)")

    def _open(self) -> None:
        import mlflow

        active = mlflow.active_run()
        if active is not None and self.run_id in (None, active.info.run_id):  # the user's run: use it, keep it open
            self.run_id, self._owns_run = active.info.run_id, False
            return
        self._owns_run = True
        if self.run_id is not None:  # a later fit, or a fit resumed from a checkpoint: the same run again
            self.client.update_run(self.run_id, status="RUNNING")
            return
        if self.experiment_name is None:
            exp_id = "0"  # MLflow's default experiment
        else:
            exp = self.client.get_experiment_by_name(self.experiment_name)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(
                self.experiment_name, tags=run_tags())
        self.run_id = self.client.create_run(exp_id, run_name=self.run_name, tags=run_tags()).info.run_id

    def _write_scalars(self, rows: list[tuple[str, float, int, float]]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(k, v, int(t * 1000), step) for k, v, step, t in rows]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per request
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def _write_params(self, params: dict[str, Any], fit_index: int) -> None:
        from mlflow.entities import Param

        prefix = "" if fit_index == 0 else f"fit{fit_index}/"
        logged = self.client.get_run(self.run_id).data.params  # a resumed fit's run has them already
        new = [Param(mlflow_key(prefix + k), str(v)[:6000]) for k, v in params.items()]
        new = [p for p in new if p.key not in logged]
        for i in range(0, len(new), 100):  # MLflow takes at most 100 params per request
            self.client.log_batch(self.run_id, params=new[i:i + 100])

    def _write_figure(self, fig: Any, name: str, step: int) -> None:
        self.client.log_figure(self.run_id, fig, f"{name}.png")

    def _close(self, failed: bool) -> None:
        if self._owns_run and self.client is not None:
            self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")

    def _run_state(self) -> dict:
        return {"run_id": self.run_id if self._owns_run else None}

    def _load_run_state(self, state: dict) -> None:
        if state.get("run_id"):
            self.run_id = state["run_id"]
