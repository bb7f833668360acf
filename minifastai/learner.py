"""The Learner: one short training loop that dispatches events to callbacks."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import groups as G
from .callback import (
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
    hooks_of,
    listify,
)
from .data import DataLoaders, shapes_of, to_device
from .metrics import to_metric
from .progress import ProgressCallback
from .recorder import Recorder

_EVENT_NAMES = {n: (f"before_{n}", f"after_cancel_{n}", f"after_{n}")
                for n in ("fit", "epoch", "train", "validate", "batch", "backward", "step")}
ACTIVATIONS: dict[str | None, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": lambda x: torch.softmax(x, dim=-1), "sigmoid": torch.sigmoid, None: lambda x: x}


def activation_for(loss_func: Any) -> str | None:
    """The activation that turns the model's output into predictions for this loss (as fastai's)."""
    if isinstance(loss_func, nn.CrossEntropyLoss):
        return "softmax"
    if isinstance(loss_func, (nn.BCEWithLogitsLoss,)):
        return "sigmoid"
    return None


class Learner:
    """Trains `model` on `dls` with `loss_func`; the splitter cuts the model into layer groups."""

    def __init__(self, dls: DataLoaders, model: nn.Module, loss_func: Callable | None = None,
                 opt_func: Callable[..., torch.optim.Optimizer] = G.default_opt, lr: float | slice = 1e-3,
                 splitter: G.Splitter = G.default_splitter, cbs: Iterable[Callback] | Callback | None = None,
                 metrics: Any = None, path: str | Path = ".", model_dir: str | Path = "models",
                 wd: float | None = None, wd_bn_bias: bool = False, train_bn: bool = True,
                 moms: tuple[float, float, float] = (0.95, 0.85, 0.95), group_names: Sequence[str] | None = None,
                 activation: str | None = "auto", default_cbs: bool = True) -> None:
        self.dls, self.model, self.loss_func, self.opt_func = dls, model, loss_func, opt_func
        self.lr, self.wd, self.wd_bn_bias, self.train_bn, self.moms = lr, wd, wd_bn_bias, train_bn, moms
        self.path, self.model_dir, self.splitter = Path(path), Path(model_dir), splitter
        self.layer_groups = G.check_groups(model, splitter(model))
        n = len(self.layer_groups)
        self.group_names = list(group_names) if group_names else (
            ["all"] if n == 1 else [f"group {i}" + (" (head)" if i == n - 1 else "") for i in range(n)])
        if len(self.group_names) != n:
            raise ValueError(f"{len(self.group_names)} group_names for {n} layer groups")
        self.activation_name = activation_for(loss_func) if activation == "auto" else activation
        self.metrics = [to_metric(m) for m in listify(metrics)]
        self.opt: torch.optim.Optimizer | None = None
        self.export_info: dict | None = None
        self.dry, self.training, self.loss, self.pred, self.epoch, self.train_iter = False, False, None, None, 0, 0
        self.n_epoch, self.start_epoch = 1, 0
        self.cbs: list[Callback] = []
        defaults = [TrainEvalCallback(), Recorder(), ProgressCallback()] if default_cbs else [TrainEvalCallback()]
        for cb in defaults + listify(cbs):
            self.add_cb(cb)
        self._cb("after_create")

    # ---- callbacks ----------------------------------------------------------------------------
    def add_cb(self, cb: Callback) -> Learner:
        """Add a callback (it reaches this learner as `cb.learn`, and the learner exposes it as `cb.name`)."""
        if isinstance(cb, type):
            cb = cb()
        cb.learn = self
        self.cbs.append(cb)
        self.cbs.sort(key=lambda c: c.order)
        if not hasattr(self, cb.name) or isinstance(getattr(self, cb.name), Callback):
            setattr(self, cb.name, cb)
        self._rebuild_handlers()
        return self

    def remove_cb(self, cb: Callback) -> Learner:
        """Remove a callback."""
        self.cbs.remove(cb)
        if getattr(self, cb.name, None) is cb:
            delattr(self, cb.name)
        self._rebuild_handlers()
        return self

    @contextlib.contextmanager
    def added_cbs(self, cbs: Iterable[Callback] | Callback | None) -> Iterator[None]:
        """Callbacks that are only there inside the block."""
        cbs = [c() if isinstance(c, type) else c for c in listify(cbs)]
        for cb in cbs:
            self.add_cb(cb)
        try:
            yield
        finally:
            for cb in cbs:
                self.remove_cb(cb)

    def _rebuild_handlers(self) -> None:
        self._handlers: dict[str, list] = {e: [] for e in EVENTS}
        for cb in self.cbs:
            if cb.run_dry or not self.dry:
                for e, h in hooks_of(cb).items():
                    self._handlers[e].append(h)

    def _cb(self, event: str) -> None:
        for h in self._handlers[event]:
            h()

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

    def create_opt(self) -> torch.optim.Optimizer:
        """A torch optimizer whose param groups are tagged with their layer group."""
        lrs = self.lr_range(self.lr)
        pgs = G.make_param_groups(self.layer_groups, G.no_wd_params(self.model), lrs,
                                  0.01 if self.wd is None else self.wd, self.wd_bn_bias)
        self.opt = self.opt_func(pgs, lr=lrs[-1])
        return self.opt

    def freeze_to(self, n: int) -> None:
        """Freeze layer groups `[:n]` (norm layers keep training when `train_bn`); groups `[n:]` train."""
        G.freeze_to(self.layer_groups, n, self.opt, G.norm_params(self.model), self.train_bn)

    def freeze(self) -> None:
        """Train only the last layer group (the head)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every layer group."""
        self.freeze_to(0)

    # ---- fitting ------------------------------------------------------------------------------
    def fit(self, n_epoch: int, lr: G.LRLike | None = None, wd: float | None = None,
            cbs: Iterable[Callback] | Callback | None = None, reset_opt: bool = False, start_epoch: int = 0,
            resume: bool = False) -> None:
        """Train `n_epoch` epochs at a constant `lr` per layer group (schedules come from callbacks).

        `start_epoch=k` continues a fit whose first k epochs are done (after `learn.load`); `resume=True`
        loads the latest checkpoint under `path / model_dir` and continues from it.
        """
        lrs = self.lr_range(self.lr if lr is None else lr)
        if resume:
            from .checkpoint import resume_latest

            start_epoch = resume_latest(self)
            if start_epoch >= n_epoch:
                raise ValueError(f"the latest checkpoint is at the end of epoch {start_epoch - 1}: a fit of "
                                 f"n_epoch={n_epoch} is already complete, so there is nothing to resume. To train "
                                 "more, call fit again without resume=True (a new schedule).")
        if not 0 <= start_epoch < n_epoch:
            raise ValueError(f"start_epoch={start_epoch} must be in [0, n_epoch={n_epoch})")
        if not self.dry:
            self._check_data()
        with self.added_cbs(cbs):
            if reset_opt or self.opt is None:
                self.create_opt()
            G.set_group_hypers(self.opt, "lr", lrs)
            if wd is not None:
                G.set_group_hypers(self.opt, "wd", [wd] * self.n_groups)
            self.n_epoch, self.start_epoch = n_epoch, start_epoch
            if not self.dry:
                self.model.to(self.dls.device)
            try:
                self._cb("before_fit")
                self._do_fit()
            except CancelFitException:
                self._cb("after_cancel_fit")
            finally:
                self._cb("after_fit")

    def _check_data(self) -> None:
        if self.loss_func is None:
            raise ValueError("this Learner has no loss_func; pass one, e.g. Learner(dls, model, "
                             "loss_func=nn.CrossEntropyLoss())")
        for name in ("train", "valid"):
            dl = getattr(self.dls, name)
            if dl is not None and hasattr(dl, "__len__") and len(dl) == 0:
                raise ValueError(f"dls.{name} is empty (0 batches): check the dataset and the batch size "
                                 "(a DataLoader with drop_last=True and fewer rows than bs yields nothing)")

    def _do_fit(self) -> None:
        for self.epoch in range(self.start_epoch, self.n_epoch):
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def _do_epoch(self) -> None:
        self.dl, self.n_iter = self.dls.train, len(self.dls.train)
        self._with_events(self._all_batches, "train", CancelTrainException)
        if self.dls.valid is not None and not self.dry:
            self._validate(self.dls.valid)

    def _validate(self, dl: Iterable) -> None:
        self.dl, self.n_iter = dl, len(dl)
        with torch.no_grad():
            self._with_events(self._all_batches, "validate", CancelValidException)

    def _all_batches(self) -> None:
        if self.dry:
            for self.iter in range(self.n_iter):
                self._with_events(_noop, "batch", CancelBatchException)
            return
        on_cpu = self.dls.device.type == "cpu"
        for self.iter, b in enumerate(self.dl):
            self.batch = b if on_cpu else to_device(b, self.dls.device)
            self.xb, self.yb = self.dls.split_batch(self.batch)
            self.pred = self.loss = None
            self._with_events(self._one_batch, "batch", CancelBatchException)

    def _one_batch(self) -> None:
        try:
            self.pred = self.model(*self.xb)
        except (RuntimeError, ValueError, TypeError) as e:
            raise type(e)(f"the model failed on a batch from dls.{'train' if self.training else 'valid'} with "
                          f"input shapes {shapes_of(self.xb)}: {e}") from e
        self._cb("after_pred")
        if self.yb:
            try:
                self.loss = self.loss_func(self.pred, *self.yb)
            except (RuntimeError, ValueError, TypeError, IndexError) as e:
                raise type(e)(f"loss_func failed on predictions {shapes_of(self.pred)} and targets "
                              f"{shapes_of(self.yb)}: {e}") from e
        self._cb("after_loss")
        if not self.training or self.loss is None:
            return
        self._with_events(self._backward, "backward", CancelBackwardException)
        self._with_events(self._step, "step", CancelStepException)
        self.opt.zero_grad()

    def _backward(self) -> None:
        self.loss.backward()

    def _step(self) -> None:
        self.opt.step()

    # ---- schedules (implemented in schedule.py) -----------------------------------------------
    def fit_one_cycle(self, n_epoch: int, max_lr: G.LRLike | None = None, div: float = 25.0,
                      div_final: float = 1e5, pct_start: float = 0.25, wd: float | None = None,
                      moms: tuple[float, float, float] | None = None, cbs: Any = None,
                      lr_max: G.LRLike | None = None, start_epoch: int = 0, resume: bool = False) -> None:
        """One-cycle policy; `max_lr` (alias `lr_max`) spreads peak LRs across groups, the cycle shapes time."""
        from .schedule import fit_one_cycle

        fit_one_cycle(self, n_epoch, max_lr, div, div_final, pct_start, wd, moms, cbs, lr_max, start_epoch, resume)

    def fit_flat_cos(self, n_epoch: int, lr: G.LRLike | None = None, div_final: float = 1e5,
                     pct_start: float = 0.75, wd: float | None = None, cbs: Any = None, start_epoch: int = 0,
                     resume: bool = False) -> None:
        """Flat at `lr`, then cosine annealing to `lr / div_final`; momentum is not scheduled."""
        from .schedule import fit_flat_cos

        fit_flat_cos(self, n_epoch, lr, div_final, pct_start, wd, cbs, start_epoch, resume)

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
                  pct_start: float = 0.3, div: float = 5.0, **kwargs: Any) -> None:
        """Train the head frozen for `freeze_epochs`, then all groups with `slice(base_lr/2/lr_mult, base_lr/2)`."""
        from .schedule import fine_tune

        fine_tune(self, epochs, base_lr, freeze_epochs, lr_mult, pct_start, div, **kwargs)

    def dry_run(self) -> Any:
        """Context manager: fits inside only play their schedules (no data, nothing changes); yields the plans."""
        from .plan import DryRun

        return DryRun(self)

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True,
                suggest_funcs: Sequence[Callable] | None = None, show_plot: bool = True) -> Any:
        """Sweep the LR exponentially over training batches; everything is restored afterwards."""
        from .lr_find import lr_find

        return lr_find(self, start_lr, end_lr, num_it, stop_div, suggest_funcs, show_plot)

    # ---- scale (implemented in mixed_precision.py and distributed.py) ------------------------
    def to_fp16(self, **kwargs: Any) -> Learner:
        """Mixed precision with float16 autocast and a GradScaler (overflowing steps are skipped)."""
        from .mixed_precision import to_fp16

        return to_fp16(self, **kwargs)

    def to_bf16(self, **kwargs: Any) -> Learner:
        """Mixed precision with bfloat16 autocast (no scaler needed; works on CPU too)."""
        from .mixed_precision import to_bf16

        return to_bf16(self, **kwargs)

    def to_fp32(self) -> Learner:
        """Remove mixed precision."""
        from .mixed_precision import to_fp32

        return to_fp32(self)

    def to_channels_last(self) -> Learner:
        """Channels-last memory format for the model's 4-D weights and the inputs (faster convolutions on GPU)."""
        from .acceleration import to_channels_last

        return to_channels_last(self)

    def compile(self, **kwargs: Any) -> Learner:
        """Compile the model in place with `torch.compile(**kwargs)`; names, freezing and checkpoints keep working."""
        from .acceleration import compile_learner

        return compile_learner(self, **kwargs)

    def distrib_ctx(self, **kwargs: Any) -> Any:
        """Context manager: under torchrun, train with DistributedDataParallel; elsewhere it does nothing."""
        from .distributed import distrib_ctx

        return distrib_ctx(self, **kwargs)

    # ---- evaluation and inference -------------------------------------------------------------
    def _run_valid(self, dl: Iterable, cbs: Any = None) -> None:
        self.model.to(self.dls.device)
        with self.added_cbs(cbs):
            self._validate(dl)

    def validate(self, ds_idx: int = 1, dl: Iterable | None = None, cbs: Any = None) -> list[float]:
        """[valid_loss, *metrics] on `dl` (default: the validation set)."""
        self._run_valid(self.dls[ds_idx] if dl is None else dl, cbs)
        return self.recorder.valid_values

    def get_preds(self, ds_idx: int = 1, dl: Iterable | None = None, with_input: bool = False,
                  act: Callable | None = None) -> tuple:
        """(predictions, targets) over `dl` (default: validation set), with the loss's activation applied."""
        gather = GatherPreds(with_input)
        self._run_valid(self.dls[ds_idx] if dl is None else dl, gather)
        preds = (act or ACTIVATIONS[self.activation_name])(_cat(gather.preds))
        targs = _cat(gather.targs)
        return (_cat(gather.inputs), preds, targs) if with_input else (preds, targs)

    def predict(self, item: Any) -> tuple[Any, Any, torch.Tensor]:
        """(decoded, class index or raw output, probabilities or output) for one item."""
        preds, _ = self.get_preds(dl=[self.dls.item_to_batch(item)])
        decoded, raw = self.dls.decode(preds[0])
        return decoded, raw, preds[0]

    # ---- persistence (implemented in checkpoint.py) -------------------------------------------
    def checkpoint_path(self, name: str | Path) -> Path:
        """Where checkpoint `name` lives: `path / model_dir / f"{name}.pth"`."""
        p = Path(name)
        return p if p.suffix == ".pth" or p.is_absolute() else self.path / self.model_dir / f"{name}.pth"

    def save(self, name: str | Path, with_opt: bool = True) -> Path:
        """Write model, optimizer, training position and RNG states atomically; returns the path."""
        from .checkpoint import save_checkpoint

        return save_checkpoint(self, self.checkpoint_path(name), with_opt)

    def load(self, name: str | Path, with_opt: bool = True, strict: bool = True) -> Learner:
        """Load a checkpoint written by `save`; a damaged or mismatched file is an error naming it."""
        from .checkpoint import load_checkpoint

        load_checkpoint(self, self.checkpoint_path(name), with_opt, strict)
        return self

    def export(self, fname: str | Path = "export.pth") -> Path:
        """Weights and what inference needs, loadable with `torch.load(weights_only=True)`; see `load_learner`."""
        from .checkpoint import export_learner

        return export_learner(self, self.path / fname)

    def summary(self) -> str:
        """Layer groups: parameter counts, frozen or not, and their current lr / mom / wd."""
        from .summary import summary

        return summary(self)


class GatherPreds(Callback):
    """Collects predictions (and targets, inputs) of a validation pass."""

    order = 100

    def __init__(self, with_input: bool = False) -> None:
        self.with_input, self.preds, self.targs, self.inputs = with_input, [], [], []

    def after_batch(self) -> None:
        """Keep this batch's outputs on the host side of the loop (no sync until concatenated)."""
        learn = self.learn
        self.preds.append(learn.pred.detach())
        self.targs.append(learn.yb[0].detach() if learn.yb else None)
        if self.with_input:
            self.inputs.append(learn.xb[0].detach())


def _cat(ts: list) -> torch.Tensor | None:
    ts = [t for t in ts if t is not None]
    return torch.cat(ts).cpu() if ts else None


def _noop() -> None:
    pass
