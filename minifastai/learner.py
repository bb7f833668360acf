"""The Learner: one short training loop that dispatches events to callbacks."""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from fastcore.foundation import L
from torch import nn

from . import groups as G
from . import inference, loop_view, summary
from .callback import acceleration, distributed, lr_find, mixed_precision, plan, schedule
from .callback.core import (
    BATCH_EVENTS,
    EVENTS,
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    TrainEvalCallback,
    check_cbs,
    hooks_of,
    listify,
    sort_cbs,
)
from .callback.progress import ProgressCallback
from .callback.recorder import Recorder
from .checks import check_int, check_moms, check_wd, is_peer_failure, no_grad_loss_message
from .data import DataLoaders, n_batches, shapes_of, to_device
from .metrics import to_metric
from .persist import checkpoint as persist_checkpoint
from .persist import export as persist_export
from .persist.registry import register_learner_factory
from .persist.snapshot import Snapshot
from .results import Results
from .state import LoopFields, LoopState, exposes_loop_state
from .torch_core import to_detach, unwrap_model

_EVENT_NAMES = {n: (f"before_{n}", f"after_cancel_{n}", f"after_{n}")
                for n in ("fit", "epoch", "train", "validate", "batch", "backward", "step")}
# torch losses that broadcast mismatched shapes silently (a (N,) target against (N, 1) predictions)
_ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


@exposes_loop_state
class Learner(LoopFields):
    """Trains `model` on `dls` with `loss_func`; the splitter cuts the model into layer groups.

    The loop state (`epoch`, `iter`, `loss`, ...) is owned by `learn.loop` (a `LoopState`) and readable by
    fastai's names (`learn.epoch`); `snapshot()` saves and restores it together with everything else a fit
    changes. Callbacks are reachable by name (`learn.recorder`, `learn.progress`, ...).
    """

    recorder: Recorder  # the default callbacks, by name (absent with default_cbs=False)
    progress: ProgressCallback

    def __init__(self, dls: DataLoaders, model: nn.Module, loss_func: Callable | None = None,
                 opt_func: Callable[..., torch.optim.Optimizer] = G.default_opt, lr: G.LRLike = 1e-3,
                 splitter: G.Splitter = G.default_splitter, cbs: Iterable[Callback] | Callback | None = None,
                 metrics: Any = None, path: str | Path | None = None, model_dir: str | Path = "models",
                 wd: float | None = None, wd_bn_bias: bool = False, train_bn: bool = True,
                 moms: tuple[float, float, float] = (0.95, 0.85, 0.95), group_names: Sequence[str] | None = None,
                 activation: str | None = "auto", default_cbs: bool = True) -> None:
        self.loop = LoopState()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
        if not callable(opt_func):
            raise TypeError(f"opt_func must build an optimizer from param groups (e.g. Adam), got {opt_func!r}")
        layer_groups, split_of = G.first_split(model, splitter)
        n = len(layer_groups)
        G.lr_range(lr, n)
        moms, wd = check_moms(moms), check_wd(wd)
        extra = check_cbs(cbs)
        loss_func = loss_func if loss_func is not None else getattr(dls, "loss_func", None)
        names = list(group_names) if group_names else G.default_group_names(n)
        if len(names) != n:
            raise ValueError(f"{len(names)} group_names for {n} layer groups")
        self.dls, self.model, self.loss_func, self.opt_func, self.splitter = dls, model, loss_func, opt_func, splitter
        self.lr, self.wd, self.wd_bn_bias, self.train_bn, self.moms = lr, wd, wd_bn_bias, train_bn, moms
        self.path = Path(path if path is not None else getattr(dls, "path", None) or ".")
        self.model_dir, self.layer_groups, self.group_names = Path(model_dir), layer_groups, names
        self._split_of, self._named_groups = split_of, bool(group_names)  # the model the layer groups were cut from
        self.activation = activation  # "auto": from the current loss function (see `activation_name`)
        self.metrics = [to_metric(m) for m in listify(metrics)]
        self.opt: torch.optim.Optimizer | None = None
        self.export_info: dict | None = None
        self.group_plan = G.GroupPlan(list(names))
        self.results = Results()  # what the Recorder publishes and every callback reads
        self.log_results = True  # the progress table; `no_logging()` turns it off
        self.logger: Callable[[list], Any] = print  # fastai's: the Recorder hands it each epoch's row
        self.cbs: L = L()  # fastcore's L, as fastai's (`learn.cbs.filter(...)`)
        defaults: list[Callback] = [TrainEvalCallback(), Recorder(), ProgressCallback()] if default_cbs \
            else [TrainEvalCallback()]
        self.add_cbs(defaults + extra)
        self._cb("after_create")

    # ---- callbacks ----------------------------------------------------------------------------
    def add_cb(self, cb: Callback | type[Callback]) -> Learner:
        """Add a callback (it reaches this learner as `cb.learn`, and the learner exposes it as `cb.name`)."""
        return self.add_cbs([cb])

    def add_cbs(self, cbs: Iterable[Callback | type[Callback]]) -> Learner:
        """Add several callbacks (their `run_after` / `run_before` claims are checked first: a contradiction is a
        ValueError and nothing is added)."""
        new = check_cbs(cbs)
        ordered = sort_cbs([*self.cbs, *new])
        for cb in new:
            cb.learn = self
        self.cbs[:] = ordered
        for cb in new:
            if not hasattr(self, cb.name) or isinstance(getattr(self, cb.name), Callback):
                setattr(self, cb.name, cb)
        self._rebuild_handlers()
        return self

    def remove_cb(self, cb: Callback | type[Callback]) -> Learner:
        """Remove a callback, or every callback of a class (`learn.remove_cb(ProgressCallback)`)."""
        found: list[Callback] = [c for c in self.cbs if (isinstance(c, cb) if isinstance(cb, type) else c is cb)]
        for c in found:
            self.cbs.remove(c)
            if getattr(self, c.name, None) is c:
                delattr(self, c.name)
        self._rebuild_handlers()
        return self

    def remove_cbs(self, cbs: Iterable[Callback | type[Callback]]) -> Learner:
        """Remove several callbacks (instances or classes)."""
        for cb in list(cbs):
            self.remove_cb(cb)
        return self

    @contextlib.contextmanager
    def added_cbs(self, cbs: Iterable[Callback] | Callback | None) -> Iterator[None]:
        """Callbacks that are only there inside the block."""
        added = check_cbs(cbs)
        self.add_cbs(added)
        try:
            yield
        finally:
            self.remove_cbs(added)

    @contextlib.contextmanager
    def removed_cbs(self, cbs: Iterable[Callback | type[Callback]]) -> Iterator[None]:
        """Callbacks (instances or classes) that are away inside the block and come back after it."""
        gone = [c for c in self.cbs if any(isinstance(c, x) if isinstance(x, type) else c is x for x in cbs)]
        self.remove_cbs(gone)
        try:
            yield
        finally:
            self.add_cbs(gone)

    def no_bar(self) -> contextlib.AbstractContextManager:
        """Context manager: no progress display inside the block (fastai's `learn.no_bar()`)."""
        return self.removed_cbs([ProgressCallback])

    @contextlib.contextmanager
    def no_logging(self) -> Iterator[None]:
        """Context manager: no results table printed inside the block (fastai's `learn.no_logging()`: the table's
        header is not written and `learn.logger` is a no-op)."""
        old, self.log_results = (self.log_results, self.logger), False
        self.logger = _ignore_row
        try:
            yield
        finally:
            self.log_results, self.logger = old

    def _rebuild_handlers(self) -> None:
        """Per (dry, training) mode, the bound hooks of each event: `run_dry`, `run_train` and `run_valid` decide."""
        self._handlers: dict[tuple[bool, bool], dict[str, list[Callable[[], None]]]] = {}
        for dry in (False, True):
            for training in (False, True):
                table: dict[str, list[Callable[[], None]]] = {e: [] for e in EVENTS}
                for cb in self.cbs:
                    if dry and not cb.run_dry:
                        continue
                    in_phase = cb.run_train if training else cb.run_valid
                    for e, h in hooks_of(cb).items():
                        if in_phase or e not in BATCH_EVENTS:
                            table[e].append(h)
                self._handlers[dry, training] = table

    def __call__(self, event_name: str | Iterable[str]) -> None:
        """Run every callback's hook for `event_name` (or for each of several names): fastai's `learn('after_fit')`."""
        for e in [event_name] if isinstance(event_name, str) else list(event_name):
            if e not in EVENTS:
                raise ValueError(f"{e!r} is not an event; the events are {', '.join(EVENTS)}")
            self._cb(e)

    def _cb(self, event: str) -> None:
        loop = self.loop  # the owner itself: no property per event (this runs ~8 times a batch)
        for h in self._handlers[loop.dry, loop.training][event]:
            h()

    def _cb_all(self, event: str) -> list[Exception]:
        """Run every handler even when some raise; return what they raised."""
        errors: list[Exception] = []
        for h in self._handlers[self.dry, self.training][event]:
            try:
                h()
            except Exception as e:
                errors.append(e)
        return errors

    def _with_events(self, f: Callable[[], None], name: str, exc: type[Exception]) -> None:
        before, cancel, after = _EVENT_NAMES[name]
        try:
            self._cb(before)
            f()
        except exc:
            self._cb(cancel)
        self._cb(after)

    # ---- layer groups and optimizer -----------------------------------------------------------
    @property
    def n_groups(self) -> int:
        """Number of layer groups."""
        return len(self.layer_groups)

    def lr_range(self, lr: G.LRLike) -> list[float]:
        """One learning rate per layer group from a float, slice or list (see `minifastai.lr_range`)."""
        return G.lr_range(lr, self.n_groups)

    def split_model(self) -> None:
        """Cut the model into layer groups again if `learn.model` was replaced since (fastai splits when it creates
        the optimizer); the old optimizer is dropped then. `create_opt`, `freeze_to` and `fit` call it."""
        m = unwrap_model(self.model)
        if self.model is self._split_of:
            return
        groups = G.resplit(m, self.splitter, self.layer_groups, self._split_of)
        if groups is None:
            self._split_of = m
            return
        n = len(groups)
        if self._named_groups and n != len(self.group_names):
            raise ValueError(f"the new learn.model splits into {n} layer groups, but group_names has "
                             f"{len(self.group_names)}: set learn.group_names to {n} names first")
        G.lr_range(self.lr, n)
        self.layer_groups, self._split_of, self.opt = groups, m, None
        if not self._named_groups:
            self.group_names = G.default_group_names(n)
        self.group_plan = G.GroupPlan(list(self.group_names))

    def create_opt(self, lrs: Sequence[float] | None = None) -> torch.optim.Optimizer:
        """A torch optimizer whose param groups are tagged with their layer group (at `lrs`, one per group, by
        default `learn.lr` spread over the groups)."""
        self.split_model()
        wrapped_lr = getattr(self.opt_func, "keywords", {}).get("lr")  # partial(OptimWrapper, ..., lr=1): fastai's lr
        if lrs is None and wrapped_lr is not None:
            G.lr_range(wrapped_lr, self.n_groups)
            self.lr = wrapped_lr
        lrs = self.lr_range(self.lr) if lrs is None else list(lrs)
        pgs = G.make_param_groups(self.layer_groups, G.no_wd_params(self.model), lrs,
                                  self.wd, self.wd_bn_bias)  # wd=None: the optimizer's default
        self.opt = self.opt_func(pgs, lr=lrs[-1])
        return self.opt

    def freeze_to(self, n: int) -> None:
        """Freeze layer groups `[:n]` (norm layers keep training when `train_bn`); groups `[n:]` train."""
        self.split_model()
        n = check_int(n, "freeze_to's n", low=-self.n_groups,
                      hint=f" (groups [:n] freeze; this learner has {self.n_groups} layer group(s))")
        if n >= self.n_groups and self.n_groups > 1:
            raise ValueError(f"freeze_to({n}) would freeze all {self.n_groups} layer groups, so nothing would train; "
                             f"use n <= {self.n_groups - 1} (freeze() trains only the head)")
        G.freeze_to(self.layer_groups, n, self.opt, G.norm_params(self.model), self.train_bn)

    def freeze(self) -> None:
        """Train only the last layer group (the head)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every layer group."""
        self.freeze_to(0)

    # ---- fitting ------------------------------------------------------------------------------
    def fit_args(self, n_epoch: int, lr: G.LRLike | None = None, wd: float | None = None, cbs: Any = None,
                 start_epoch: int = 0, resume: bool = False) -> dict[str, Any]:
        """Check `fit`'s arguments without changing anything (but splitting a replaced `learn.model`, see
        `split_model`); returns them normalised."""
        self.split_model()
        n_epoch = check_int(n_epoch, "n_epoch", low=1)
        lrs = self.lr_range(self.lr if lr is None else lr)
        check_moms(self.moms, "learn.moms")  # attributes a user may have set since creation
        check_wd(self.wd, "learn.wd")
        cbs = check_cbs(cbs)
        start_epoch = check_int(start_epoch, "start_epoch", hint=" (the first epoch to run when continuing a fit)")
        self._check_len(cbs)
        sort_cbs([*self.cbs, *cbs])  # contradicting run_after/run_before claims: an error before anything changes
        return {"n_epoch": n_epoch, "lrs": lrs, "wd": check_wd(wd), "cbs": cbs, "start_epoch": start_epoch,
                "resume": bool(resume)}

    def fit(self, n_epoch: int, lr: G.LRLike | None = None, wd: float | None = None,
            cbs: Iterable[Callback] | Callback | None = None, reset_opt: bool = False, start_epoch: int = 0,
            resume: bool = False) -> None:
        """Train `n_epoch` epochs at a constant `lr` per layer group (schedules come from callbacks).

        `start_epoch=k` continues a fit whose first k epochs are done (after `learn.load`); `resume=True`
        loads the latest checkpoint under `path / model_dir` and continues from it.
        """
        self.fit_checked(self.fit_args(n_epoch, lr, wd, cbs, start_epoch, resume), reset_opt)

    def fit_checked(self, args: dict[str, Any], reset_opt: bool = False) -> None:
        """Run a fit from `fit_args(...)`'s checked arguments: the recipes (`fit_one_cycle`, `fine_tune`, ...) plan
        and check once, then call this; nothing is computed twice."""
        a = args
        if not a["resume"] and a["start_epoch"] >= a["n_epoch"]:  # fastai: every epoch is done, nothing to run
            warnings.warn(f"fit: start_epoch={a['start_epoch']} >= n_epoch={a['n_epoch']}, so every epoch is already "
                          "done and nothing was trained", stacklevel=3)
            return
        self._check_len(a["cbs"])
        if not self.dry:
            self._check_data()
        n_epoch, start_epoch = a["n_epoch"], a["start_epoch"]
        with self.added_cbs(a["cbs"]):  # resume sees the fit's callbacks: their saved states are checked first
            if a["resume"]:
                start_epoch = persist_checkpoint.resume_latest(self)
                if self.loop.n_epoch != n_epoch:
                    warnings.warn(f"resuming a fit of {self.loop.n_epoch} epochs as one of n_epoch={n_epoch}: the "
                                  "schedule is stretched to the new length, so it no longer continues the "
                                  "checkpointed run's; pass the same n_epoch to continue it exactly", stacklevel=3)
                if start_epoch >= n_epoch:
                    raise ValueError(f"the latest checkpoint is at the end of epoch {start_epoch - 1}: a fit of "
                                     f"n_epoch={n_epoch} is already complete, so there is nothing to resume. To "
                                     "train more, call fit again without resume=True (a new schedule).")
            if reset_opt or self.opt is None:
                self.create_opt(a["lrs"])
            assert self.opt is not None
            G.set_group_hypers(self.opt, "lr", a["lrs"])
            if a["wd"] is not None:
                G.set_group_hypers(self.opt, "wd", [a["wd"]] * self.n_groups)
            self.loop.start_fit(n_epoch, start_epoch)
            self.group_plan = G.GroupPlan(list(self.group_names))  # the schedules publish their peaks into it
            if not self.dry:
                self.to_data_device()
                self.opt.zero_grad(set_to_none=True)
            self._run_fit()

    def _check_len(self, cbs: list[Callback]) -> None:
        if n_batches(self.dls.train) is None and any(c.needs_len for c in [*self.cbs, *cbs]):
            raise ValueError("dls.train has no len(), but a schedule needs the number of batches per epoch to know "
                             "where it is; give the loader a __len__, or train with fit() at a constant LR")

    def to_data_device(self) -> None:
        """Put the model, and a loss with weights or buffers (e.g. a class-weighted CrossEntropyLossFlat), on
        `dls.device`."""
        self.model.to(self.dls.device)
        if isinstance(self.loss_func, nn.Module) or callable(getattr(self.loss_func, "to", None)):
            self.loss_func.to(self.dls.device)  # type: ignore[union-attr]

    def _run_fit(self) -> None:
        """`before_fit`, the epochs, then `after_fit` for every callback even when some raise: the first error
        (from the fit, else from `after_fit`) reaches the caller, the others are attached to it as notes."""
        try:
            try:
                self._cb("before_fit")
                self._do_fit()
            except CancelFitException:
                self._cb("after_cancel_fit")
        except BaseException as e:
            self._clear_batch()
            for err in self._cb_all("after_fit"):
                e.add_note(f"after_fit then also raised {type(err).__name__}: {err}")
            raise
        errors = self._cb_all("after_fit")
        if errors:
            for err in errors[1:]:
                errors[0].add_note(f"after_fit also raised {type(err).__name__}: {err}")
            raise errors[0]

    def _clear_batch(self) -> None:
        """After an error: drop the failed batch's autograd graph and gradients, so nothing leaks into the
        next fit (its activations can be large on a GPU)."""
        self.loss = self.loss.detach() if isinstance(self.loss, torch.Tensor) else self.loss
        self.pred = _detach(self.pred)
        if self.opt is not None:
            self.opt.zero_grad(set_to_none=True)

    def _check_data(self) -> None:
        if self.loss_func is None:
            raise ValueError("this Learner has no loss_func and its data sets none; pass one, e.g. Learner(dls, "
                             "model, loss_func=CrossEntropyLossFlat())")
        if self.dls.train is None:
            raise ValueError("dls.train is None (inference-only data, e.g. from load_learner): a fit needs a training "
                             "loader")
        for name in ("train", "valid"):
            dl = getattr(self.dls, name)
            if n_batches(dl) == 0:
                raise ValueError(f"dls.{name} is empty (0 batches): check the dataset and the batch size "
                                 "(a DataLoader with drop_last=True and fewer rows than bs yields nothing)")

    def _do_fit(self) -> None:
        for self.epoch in range(self.start_epoch, self.n_epoch):
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def _do_epoch(self) -> None:
        self.training, self.dl, self.n_iter = True, self.dls.train, n_batches(self.dls.train) or 0
        self._with_events(self._all_batches, "train", CancelTrainException)
        if self.dls.valid is not None and not self.dry:
            self.run_validation(self.dls.valid)

    def run_validation(self, dl: Iterable) -> None:
        """One validation phase over `dl`: eval mode, no gradients, the validation events."""
        self.training, self.dl, self.n_iter = False, dl, n_batches(dl) or 0
        with torch.no_grad():
            self._with_events(self._all_batches, "validate", CancelValidException)

    def _all_batches(self) -> None:
        loop = self.loop  # the hot loop writes its owner directly (no property per access)
        if loop.dry:
            for loop.iter in range(loop.n_iter):
                self._with_events(_noop, "batch", CancelBatchException)
            return
        on_cpu = self.dls.device.type == "cpu"
        for loop.iter, b in enumerate(loop.dl):  # type: ignore[arg-type]
            loop.batch = b if on_cpu else to_device(b, self.dls.device)
            loop.xb, loop.yb = self.dls.split_batch(loop.batch)
            loop.pred = loop.loss = None
            self._with_events(self._one_batch, "batch", CancelBatchException)

    def one_batch(self, i: int, b: Any) -> None:
        """fastai's `one_batch`: run batch `b` as the `i`-th of the epoch through the batch events: a training step
        when `learn.training`, else predictions and loss only. Sets `learn.x`, `y`, `pred`, `loss`."""
        if self.training and self.opt is None:
            raise ValueError("one_batch in training mode needs an optimizer: call learn.create_opt() first")
        loop = self.loop
        loop.iter, loop.batch = i, to_device(b, self.dls.device)
        loop.xb, loop.yb = self.dls.split_batch(loop.batch)
        self._with_events(self._one_batch, "batch", CancelBatchException)

    def _one_batch(self) -> None:
        loop = self.loop
        try:
            loop.pred = self.model(*loop.xb)
        except (RuntimeError, ValueError, TypeError) as e:
            if is_peer_failure(e):  # DDP's forward talks to the other processes: the model did not fail
                e.add_note("another process of the distributed run failed or stopped answering during this forward "
                           "pass; its own output says why (this process's model and batch are not the cause)")
                raise
            raise type(e)(f"the model failed on a batch from dls.{'train' if loop.training else 'valid'} with "
                          f"input shapes {shapes_of(loop.xb)}: {e}") from e
        self._cb("after_pred")
        if loop.yb:
            loop.loss = self._compute_loss()
        elif loop.training:
            raise ValueError(f"a training batch from dls.train has no targets (it holds {len(loop.xb)} input(s) "
                             f"of shapes {shapes_of(loop.xb)}): nothing to learn from. Give batches (x, y), or set "
                             "dls.n_inp to the number of inputs")
        self._cb("after_loss")
        if not loop.training or loop.loss is None:
            return
        self._with_events(self._backward, "backward", CancelBackwardException)
        self._with_events(self._step, "step", CancelStepException)
        assert self.opt is not None
        self.opt.zero_grad()

    def _compute_loss(self) -> torch.Tensor:
        lf = self.loss_func
        assert lf is not None
        pred, yb = self.loop.pred, self.loop.yb
        if isinstance(lf, _ELEMENTWISE_LOSSES) and isinstance(pred, torch.Tensor) and \
                isinstance(yb[0], torch.Tensor) and pred.shape != yb[0].shape:
            raise ValueError(f"loss_func {type(lf).__name__} got predictions of shape {tuple(pred.shape)} and "
                             f"targets of shape {tuple(yb[0].shape)}: torch would broadcast them to a wrong "
                             "loss. Make the shapes equal (e.g. targets of shape (N, 1)), or use MSELossFlat()")
        try:
            loss = lf(pred, *yb)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            raise type(e)(f"loss_func failed on predictions {shapes_of(pred)} and targets "
                          f"{shapes_of(yb)}: {e}") from e
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"loss_func {lf!r} returned a {type(loss).__name__} ({loss!r}), not a tensor: gradients "
                            "need a torch tensor; compute the loss with torch operations on the predictions")
        if loss.ndim != 0 or not loss.is_floating_point():
            raise ValueError(f"loss_func {lf!r} returned a {loss.dtype} tensor of shape {tuple(loss.shape)}; it must "
                             "be a float scalar (0-dim): reduce it, e.g. with reduction='mean' or .mean()")
        return loss

    def _backward(self) -> None:
        loss = self.loop.loss
        if not loss.requires_grad:  # an attribute: no sync
            raise ValueError(no_grad_loss_message(self))
        loss.backward()

    def _step(self) -> None:
        assert self.opt is not None
        self.opt.step()

    # ---- schedules (schedule.py), the plan (plan.py) and the LR finder (lr_find.py) -----------
    fit_one_cycle = schedule.fit_one_cycle
    fit_flat_cos = schedule.fit_flat_cos
    fit_sgdr = schedule.fit_sgdr
    ordered_cbs = loop_view.ordered_cbs
    show_training_loop = loop_view.show_training_loop
    fine_tune = schedule.fine_tune
    dry_run = plan.dry_run
    lr_find = lr_find.lr_find

    def snapshot(self, tensors: bool = True) -> Snapshot:
        """Everything a fit changes (loop state, optimizer, flags, modes, RNG, callbacks and, with `tensors`,
        weights and gradients), so that `.restore()` puts it back exactly."""
        return Snapshot(self, tensors)

    # ---- scale (mixed_precision.py, acceleration.py, distributed.py) -------------------------
    to_fp16 = mixed_precision.to_fp16
    to_bf16 = mixed_precision.to_bf16
    to_fp32 = mixed_precision.to_fp32
    to_channels_last = acceleration.to_channels_last
    compile = acceleration.compile_learner
    distrib_ctx = distributed.distrib_ctx

    # ---- evaluation and inference (inference.py) ----------------------------------------------
    validate = inference.validate
    get_preds = inference.get_preds
    loss_not_reduced = inference.loss_not_reduced
    predict = inference.predict
    tta = inference.tta

    @property
    def activation_name(self) -> str | None:
        """The activation `get_preds` applies: `activation`, or with "auto" the current loss function's (fastai
        picks it from `loss_func` at each call, so `learn.loss_func = BCEWithLogitsLossFlat()` gives sigmoid)."""
        return inference.activation_for(self.loss_func) if self.activation == "auto" else self.activation

    def to_detach(self, b: Any, cpu: bool = True, gather: bool = True) -> Any:
        """`b` detached (and on the CPU unless `cpu=False`), through the current loader's `to_detach` if it has
        one (fastai's `Learner.to_detach`)."""
        f = getattr(self.loop.dl, "to_detach", None)
        return f(b, cpu, gather) if callable(f) else to_detach(b, cpu, gather)

    def __getattr__(self, name: str) -> Any:
        """What the learner does not have is read from the model, as fastai's (`learn.parameters()`, `learn.a`):
        reads only; writes stay on the learner. Private names are not forwarded."""
        model = self.__dict__.get("model")
        if name.startswith("_") or model is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        try:
            return getattr(model, name)
        except AttributeError:
            raise AttributeError(f"neither the Learner nor its model ({type(model).__name__}) has an attribute "
                                 f"{name!r}") from None

    @property
    def x(self) -> Any:
        """The current batch's input, detuplified (fastai's `learn.x`: `xb[0]` when there is one input)."""
        xb = self.xb
        return xb[0] if xb is not None and len(xb) == 1 else xb

    @property
    def y(self) -> Any:
        """The current batch's target, detuplified (fastai's `learn.y`: `yb[0]` when there is one target)."""
        yb = self.yb
        return yb[0] if yb is not None and len(yb) == 1 else yb

    @property
    def final_record(self) -> list[float] | None:
        """The last epoch's `[train_loss, valid_loss, *metrics]` (fastai's `learn.final_record`)."""
        return self.results.final_record

    # ---- persistence (checkpoint.py) -----------------------------------------------------------
    def checkpoint_path(self, name: str | Path) -> Path:
        """Where checkpoint `name` lives: `path / model_dir / f"{name}.pth"`."""
        p = Path(name)
        return p if p.suffix == ".pth" or p.is_absolute() else self.path / self.model_dir / f"{name}.pth"

    save = persist_checkpoint.save
    load = persist_checkpoint.load
    export = persist_export.export
    summary = summary.summary


def _detach(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (list, tuple)):
        return type(x)(_detach(v) for v in x)
    if isinstance(x, dict):
        return {k: _detach(v) for k, v in x.items()}
    return x


def _ignore_row(row: list) -> None:
    """`learn.logger` inside `no_logging()`."""


def _noop() -> None:
    pass


register_learner_factory(Learner)
