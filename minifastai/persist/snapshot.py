"""`Snapshot`: everything a fit can change on a learner, saved so that `restore()` puts it back exactly (the one
snapshot/restore that `lr_find` and `dry_run` use)."""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .rng import get_rng_state, loader_generators, set_rng_state

if TYPE_CHECKING:
    from ..callback.core import Callback
    from ..learner import Learner


class _Host:
    """A tensor copied to the host, and the device it goes back to."""

    def __init__(self, t: torch.Tensor) -> None:
        self.t, self.device = t.detach().to("cpu", copy=True), t.device

    def back(self) -> torch.Tensor:
        return self.t.to(self.device, copy=True)


class _Same:
    """A tensor kept by reference (for snapshots of things that do not change tensors)."""

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t

    def back(self) -> torch.Tensor:
        return self.t


def _shallow(v: Any) -> Any:
    return copy.copy(v) if isinstance(v, (list, dict, set, np.ndarray)) else v


class Snapshot:
    """Everything a fit can change on a learner, saved so that `restore()` puts it back exactly: the loop state,
    the optimizer (object, hyper-parameters and, with `tensors`, its state), `requires_grad` flags, train/eval
    modes, RNG states (global and the training loader's generators), the callback list, `learn.results`, the recorder's
    contents
    and other callbacks' `state_dict`s, and, with `tensors`, the weights and gradients (copied to the host).

    `lr_find` takes a full snapshot (its sweep trains); `dry_run` passes `tensors=False` (a planned fit touches
    no tensor), so nothing large is copied.
    """

    def __init__(self, learn: Learner, tensors: bool = True) -> None:
        self.learn, self.tensors = learn, tensors
        self.loop = learn.loop.copy()
        self.group_plan = learn.group_plan
        self.results = learn.results.copy()
        self.cbs: list[Callback] = list(learn.cbs)
        self.model = model = learn.model
        self.params = list(model.parameters())
        self.requires_grad = [p.requires_grad for p in self.params]
        self.modes = [(m, m.training) for m in model.modules()]
        # without `tensors`, references suffice: nothing changes the tensors, but freezing drops grads and state
        keep = _Host if tensors else _Same
        if tensors:
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.grads = [None if p.grad is None else keep(p.grad) for p in self.params]
        self.opt = opt = learn.opt
        if opt is not None:
            self.opt_hypers = [{k: copy.deepcopy(v) for k, v in pg.items() if k != "params"} for pg in opt.param_groups]
            self.opt_state = {p: {k: keep(v) if isinstance(v, torch.Tensor) else copy.deepcopy(v)
                                  for k, v in s.items()} for p, s in opt.state.items()}
        self.rng = get_rng_state()
        self.generators = [(g, g.get_state()) for g in loader_generators(getattr(learn.dls, "train", None))]
        rec = getattr(learn, "recorder", None)
        self.recorder = rec
        self.recorder_state = None if rec is None else {k: _shallow(v) for k, v in vars(rec).items()}
        # other callbacks with checkpointable state (e.g. a GradScaler's scale, which a diverging sweep lowers)
        self.cb_states = [(cb, copy.deepcopy(cb.state_dict())) for cb in learn.cbs
                          if cb is not rec and callable(getattr(cb, "state_dict", None))
                          and callable(getattr(cb, "load_state_dict", None))]

    def restore(self) -> None:
        """Put everything back as it was when the snapshot was taken."""
        learn, model = self.learn, self.model
        learn.model = model  # a fit may have wrapped it (DistributedDataParallel)
        if self.tensors:
            model.load_state_dict(self.weights)
        for param, rg, grad in zip(self.params, self.requires_grad, self.grads):
            param.requires_grad_(rg)
            param.grad = None if grad is None else grad.back()
        for m, mode in self.modes:
            m.training = mode
        learn.opt = opt = self.opt
        if opt is not None:
            opt.state.clear()
            for p, s in self.opt_state.items():
                opt.state[p] = {k: v.back() if isinstance(v, (_Host, _Same)) else v for k, v in s.items()}
            for pg, hypers in zip(opt.param_groups, self.opt_hypers):
                for k in [k for k in pg if k != "params" and k not in hypers]:
                    del pg[k]
                pg.update(hypers)
        set_rng_state(self.rng)
        for gen, gen_state in self.generators:
            gen.set_state(gen_state)
        learn.loop.restore(self.loop)
        learn.group_plan = self.group_plan
        learn.results.restore(self.results)
        if self.recorder is not None and self.recorder_state is not None:
            vars(self.recorder).clear()
            vars(self.recorder).update(self.recorder_state)
        for cb in [c for c in learn.cbs if c not in self.cbs]:
            learn.remove_cb(cb)
        for cb in [c for c in self.cbs if c not in learn.cbs]:
            learn.add_cb(cb)
        for cb, state in self.cb_states:
            cb.load_state_dict(state)
        learn._rebuild_handlers()
