"""Callbacks: the events of a fit, one documented hook each, and the cancellation exceptions."""
from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from fastcore.foundation import L

from ..data import n_batches

if TYPE_CHECKING:
    from ..learner import Learner


class CancelBatchException(Exception):
    """Skip the rest of this batch; `after_cancel_batch` then `after_batch` run."""


class CancelBackwardException(Exception):
    """Skip the backward pass of this batch; `after_cancel_backward` then `after_backward` run."""


class CancelStepException(Exception):
    """Skip `opt.step()` for this batch (`zero_grad` still runs)."""


class CancelTrainException(Exception):
    """Skip the rest of this epoch's training phase."""


class CancelValidException(Exception):
    """Skip the rest of this epoch's validation phase."""


class CancelEpochException(Exception):
    """Skip the rest of this epoch."""


class CancelFitException(Exception):
    """Stop the fit; `after_cancel_fit` then `after_fit` run."""


def camel2snake(name: str) -> str:
    """`MyF1Score` -> `my_f1_score`, `TrackLR` -> `track_lr` (fastai's rule for callback and metric names)."""
    s1 = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s1).lower()


def _loop_attr(name: str, doc: str) -> Any:
    """A read-only view of the learner's `name` on a callback (fastai's `self.model`, `self.loss`, ...)."""

    def get(self: Callback) -> Any:
        return getattr(self.learn, name)

    def refuse(self: Callback, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__}.{name} is the learner's {name}, read-only on a callback: "
                             f"write self.learn.{name} = ... to change it (or use another name for your own "
                             "attribute)")

    return property(get, refuse, doc=doc)


ClassClaim = type | str | tuple[type | str, ...]
"""A class, a class name, or a tuple of them: whom a callback runs after (`run_after`) or before (`run_before`)."""


NOT_FORWARDED = frozenset(("state_dict", "load_state_dict", "check_state_dict", "export_weights"))
"""What a callback may define for checkpoints and exports: looked up on the callback itself, never on its learner."""


class Callback:
    """Base class: override any hook below; it reaches the learner as `self.learn`.

    Callbacks run sorted by `order` (ascending, stable), moved only as far as their `run_after` / `run_before`
    claims need: classes (or class names) this callback must run after or before, as in fastai
    (`run_after = Recorder`). Only hooks a subclass overrides are called, so an event nobody listens to costs
    nothing. Set `run_dry = True` on callbacks that
    schedule hyper-parameters, so that `Learner.dry_run` replays them without data. `run_train = False`
    (or `run_valid = False`) skips the callback's batch events in the training (validation) phase.
    The loop's state reads as in fastai (`self.model`, `self.loss`, `self.epoch`, ...): read-only
    properties; changes go through `self.learn`. Any other public learner attribute reads through `self` too
    (`self.recorder`, `self.dls`; see `__getattr__`), as fastai forwards them.

    `restore_on_load = True` marks a callback whose state describes the weights (EMA's average): `learn.load`
    checks and applies its saved state at once, with the weights (`check_state_dict(state)` then
    `load_state_dict(state)`; `state` is None when the file has none),
    where other callbacks get theirs at the start of the next fit.

    Capability flags say what a callback is, so that no module has to look for other callbacks' classes:
    `run_in_lr_find = False` takes it out during an `lr_find` sweep (displays, logs, averages of a fit);
    `main_process_only = True` runs it on the main process only inside `distrib_ctx` (a display);
    `skips_nonfinite_steps` is True while it skips optimizer steps whose gradients are not finite (float16's
    GradScaler); `needs_len` says it needs the number of batches per epoch (a schedule); `log_args = False` keeps
    its constructor arguments out of the hyper-parameters the loggers record (the default callbacks, loggers).
    Results (losses, metrics, whether the epoch validated) are read from `self.learn.results`.
    """

    order: int = 0
    run_after: ClassClaim = ()
    run_before: ClassClaim = ()
    restore_on_load: bool = False
    run_dry: bool = False
    run_in_lr_find: bool = True
    main_process_only: bool = False
    skips_nonfinite_steps: bool = False
    needs_len: bool = False
    log_args: bool = True
    run_train: bool = True
    run_valid: bool = True
    learn: Learner

    model = _loop_attr("model", "The learner's model.")
    opt = _loop_attr("opt", "The learner's optimizer (None before the first fit).")
    dls = _loop_attr("dls", "The learner's DataLoaders.")
    loss = _loop_attr("loss", "The current batch's loss.")
    pred = _loop_attr("pred", "The model's output on the current batch.")
    xb = _loop_attr("xb", "The current batch's inputs (a tuple).")
    yb = _loop_attr("yb", "The current batch's targets (a tuple).")
    epoch = _loop_attr("epoch", "The current epoch (0-based).")
    n_epoch = _loop_attr("n_epoch", "Epochs of the current fit.")
    iter = _loop_attr("iter", "Batch index in the current phase.")
    n_iter = _loop_attr("n_iter", "Batches in the current phase.")
    pct_train = _loop_attr("pct_train", "Schedule position: fraction of the fit's training batches done.")
    training = _loop_attr("training", "Whether the loop is in the training phase.")
    train_iter = _loop_attr("train_iter", "Training batches done in this fit.")

    @property
    def name(self) -> str:
        """The class name without a `Callback` suffix in snake case, by fastai's rule (`TrackLR` -> `track_lr`);
        the learner exposes the callback under it."""
        return camel2snake(re.sub(r"Callback$", "", type(self).__name__) or "callback")

    def after_create(self) -> None:
        """The learner was just created."""

    def before_fit(self) -> None:
        """A fit starts: the optimizer exists, `n_epoch` is set."""

    def before_epoch(self) -> None:
        """An epoch starts (`epoch` is set)."""

    def before_train(self) -> None:
        """The training phase of the epoch starts (model in train mode)."""

    def before_batch(self) -> None:
        """A batch is loaded and on the device (`xb`, `yb`); schedules set hyper-parameters here."""

    def after_pred(self) -> None:
        """The model's output is in `pred`."""

    def after_loss(self) -> None:
        """The loss is in `loss`."""

    def before_backward(self) -> None:
        """Before `loss.backward()` (training only)."""

    def after_backward(self) -> None:
        """Gradients are computed, not yet applied."""

    def before_step(self) -> None:
        """Before `opt.step()`: clip or inspect gradients here."""

    def after_step(self) -> None:
        """The optimizer stepped; gradients are zeroed right after."""

    def after_batch(self) -> None:
        """The batch is done (training or validation)."""

    def after_train(self) -> None:
        """The training phase of the epoch is done."""

    def before_validate(self) -> None:
        """The validation phase starts (model in eval mode, no grad)."""

    def after_validate(self) -> None:
        """The validation phase is done."""

    def after_epoch(self) -> None:
        """The epoch is done; its results are in the recorder."""

    def after_fit(self) -> None:
        """The fit ended, normally, cancelled or by an error."""

    def after_cancel_batch(self) -> None:
        """A `CancelBatchException` was raised."""

    def after_cancel_backward(self) -> None:
        """A `CancelBackwardException` was raised."""

    def after_cancel_step(self) -> None:
        """A `CancelStepException` was raised."""

    def after_cancel_train(self) -> None:
        """A `CancelTrainException` was raised."""

    def after_cancel_validate(self) -> None:
        """A `CancelValidException` was raised."""

    def after_cancel_epoch(self) -> None:
        """A `CancelEpochException` was raised."""

    def after_cancel_fit(self) -> None:
        """A `CancelFitException` was raised."""

    def restore_after_error(self) -> None:
        """Not an event: a validation pass outside a fit (`validate`, `get_preds`, `predict`, `tta`) ended in an
        error; put back what `before_validate` changed in the learner (EMA: the trained weights). A fit's errors
        end in `after_fit` instead."""

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        """fastai's `Callback(before_fit=f)`: functions of `self` passed by event name become this callback's hooks
        (an unknown event name is a `TypeError`)."""
        unknown = [k for k in hooks if k not in EVENTS]
        if unknown:
            raise TypeError(f"Callback() got {unknown}, which are not events; the events are {', '.join(EVENTS)}")
        for k, f in hooks.items():
            if not callable(f):
                raise TypeError(f"Callback({k}=...) takes a function of the callback, got {f!r}")
            setattr(self, k, types.MethodType(f, self))

    def __call__(self, event_name: str) -> Any:
        """Run this callback's `event_name` method (fastai's `cb('before_fit')`), if it has one; batch events follow
        `run_train` / `run_valid`. An error is re-raised naming the callback and the event."""
        training = getattr(self, "training", True)
        if event_name in BATCH_EVENTS and not ((self.run_train and training) or (self.run_valid and not training)):
            return None
        if event_name not in vars(self) and not hasattr(type(self), event_name):
            return None  # not a method of this callback (never read from the learner)
        try:
            return getattr(self, event_name)()
        except CANCEL_EXCEPTIONS:
            raise
        except Exception as e:
            first = f"Exception occurred in `{type(self).__name__}` when calling event `{event_name}`:"
            e.args = (f"{first}\n\t{e.args[0]}" if e.args else first, *e.args[1:])
            raise

    def __getattr__(self, name: str) -> Any:
        """fastai's attribute forwarding, for reads: a public name the callback does not have is read from its
        learner (`self.recorder`, `self.dls.vocab`, `self.lr`). Writes stay the callback's own (the loop's names are
        read-only properties, see above); names starting with `_` and the callback protocol (`state_dict`, ...) are
        never forwarded, and an unknown name is an `AttributeError` naming the callback and the learner."""
        if name.startswith("_") or name in NOT_FORWARDED or "learn" not in vars(self):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        learn = vars(self)["learn"]
        try:
            return getattr(learn, name)
        except AttributeError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}, and neither has its learner "
                                 f"({type(learn).__name__})") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order})"


def _before_batch_cb(f: Callable[[Any, Any, Any], tuple], self: Callback) -> None:
    xb, yb = f(self, self.xb, self.yb)
    self.learn.xb, self.learn.yb = xb, yb


def before_batch_cb(f: Callable[[Any, Any, Any], tuple]) -> Callback:
    """A callback on `before_batch` from `f(self, xb, yb) -> (xb, yb)`, which replaces the batch (fastai's)."""
    return Callback(before_batch=functools.partial(_before_batch_cb, f))


def _claimed(cb: Callback, claim: ClassClaim) -> bool:
    """Whether `cb` is one of the classes (or class names) of `claim`."""
    claims = claim if isinstance(claim, (tuple, list)) else (claim,)
    names = {k.__name__ for k in type(cb).__mro__}
    return any(isinstance(cb, c) if isinstance(c, type) else c in names for c in claims)


def runs_before(a: Callback, b: Callback) -> bool:
    """Whether a claim says `a` must run before `b` (`b.run_after` names `a`, or `a.run_before` names `b`)."""
    return _claimed(a, b.run_after) or _claimed(b, a.run_before)


def sort_cbs(cbs: list[Callback]) -> list[Callback]:
    """The run order: by `order` (stable), each callback moved only as far as its `run_after` / `run_before` claims
    need; claims that contradict each other are a ValueError naming them (nothing is changed)."""
    pending, out = sorted(cbs, key=lambda c: c.order), []
    while pending:
        for i, c in enumerate(pending):
            if not any(runs_before(o, c) for o in pending if o is not c):
                out.append(pending.pop(i))
                break
        else:
            pairs = [f"{type(a).__name__} before {type(b).__name__}" for a in pending for b in pending
                     if a is not b and runs_before(a, b)]
            raise ValueError(f"these callbacks' run_after/run_before claims contradict each other: {'; '.join(pairs)}"
                             " (a cycle); change one claim (or remove one callback)")
    return out


def listify(x: Any) -> list:
    """None -> [], a list, tuple or fastcore `L` -> a list, anything else -> [x]."""
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple, L)) else [x]


EVENTS: tuple[str, ...] = tuple(
    n for n in vars(Callback) if n.startswith(("before_", "after_")) and callable(getattr(Callback, n))
)
BATCH_EVENTS = frozenset(("before_batch", "after_pred", "after_loss", "before_backward", "after_cancel_backward",
                          "after_backward", "before_step", "after_step", "after_cancel_step", "after_cancel_batch",
                          "after_batch"))  # the events `run_train` / `run_valid` filter (fastai's `_inner_loop`)


def hooks_of(cb: Callback) -> dict[str, Callable[[], None]]:
    """The bound hooks a callback overrides (in its class, or given to `Callback(event=f)`), by event name; a
    callback that overrides `__call__` (fastai's `VerboseCallback`) is called with every event's name instead."""
    if type(cb).__call__ is not Callback.__call__:
        return {e: functools.partial(cb, e) for e in EVENTS}
    return {e: getattr(cb, e) for e in EVENTS
            if e in vars(cb) or getattr(type(cb), e, None) is not getattr(Callback, e)}


event = type("event", (), {"__doc__": "Every event's name as an attribute (`event.before_fit == 'before_fit'`): "
                                      "tab completion and no typos (fastai's `event`).", **{e: e for e in EVENTS}})
CANCEL_EXCEPTIONS = (CancelBatchException, CancelBackwardException, CancelStepException, CancelTrainException,
                     CancelValidException, CancelEpochException, CancelFitException)


class TrainEvalCallback(Callback):
    """Keeps `train_iter` and `pct_train`, and switches the model between train and eval mode."""

    order = -10
    run_dry = True
    run_valid = False
    log_args = False

    def before_fit(self) -> None:
        """Start counting training batches from the start epoch (an unsized loader has no position); the loss
        starts at `tensor(0.)`, as fastai's."""
        self.learn.loop.start_counting(n_batches(self.learn.dls.train))
        self.learn.loop.loss = torch.tensor(0.0)

    def before_train(self) -> None:
        """Train mode; the schedule position starts the epoch at its exact value."""
        self.learn.model.train()
        self.learn.loop.start_epoch_count()

    def after_batch(self) -> None:
        """Advance the schedule position (training batches only)."""
        self.learn.loop.count_batch()

    def before_validate(self) -> None:
        """Eval mode."""
        self.learn.model.eval()


def check_cbs(cbs: Any) -> list[Callback]:
    """Callbacks from one callback, a class, or a list of them (classes are instantiated); anything else is a
    `TypeError` naming it."""
    out = []
    for i, cb in enumerate(listify(cbs)):
        if isinstance(cb, type) and issubclass(cb, Callback):
            cb = cb()
        if not isinstance(cb, Callback):
            raise TypeError(f"cbs[{i}] is {cb!r} ({type(cb).__name__}), not a Callback: pass callback objects, e.g. "
                            "cbs=[SaveModelCallback()], or Callback subclasses")
        if isinstance(cb.order, bool) or not isinstance(cb.order, (int, float)) or cb.order != cb.order:
            raise TypeError(f"{type(cb).__name__}.order is {cb.order!r}: it must be a number (callbacks run by "
                            "increasing order; the Recorder's is 50); to run after another callback, use run_after")
        out.append(cb)
    return out
