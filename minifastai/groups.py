"""Layer groups: splitters, `lr_range`, the optimizer's param groups, per-group hyper-parameters, freezing."""
from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from .optim_hypers import with_hypers
from .torch_core import trainable_params

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
              nn.InstanceNorm3d, nn.LayerNorm, nn.SyncBatchNorm)
"""fastai's `norm_types` (and `SyncBatchNorm`, a BatchNorm under DDP): they keep training in frozen groups when
`train_bn`, and get no weight decay when `wd_bn_bias=False`. GroupNorm is not one of them (SPEC §10, as fastai):
it freezes, and decays, like any other layer."""

Splitter = Callable[[nn.Module], Sequence[Sequence[nn.Parameter]]]


@dataclass(frozen=True)
class LayerDecay:
    """Layer-wise LR decay (BEiT/ConvNeXt's LLRD, ULMFiT's per-group factor): group i of n gets
    `lr * decay ** (n - 1 - i)`, so the head gets `lr`. Build it with `layer_decay(lr, decay)`."""

    lr: float
    decay: float

    def __post_init__(self) -> None:
        """The same checks as `layer_decay`'s, for a `LayerDecay` built directly."""
        object.__setattr__(self, "lr", _check_lr(self.lr, "layer_decay's lr"))
        object.__setattr__(self, "decay", _check_decay(self.decay))

    def values(self, n_groups: int) -> list[float]:
        """One LR per layer group, the head's last; a ValueError when the first group's underflows."""
        vals = [self.lr * self.decay ** (n_groups - 1 - i) for i in range(n_groups)]
        if vals and not vals[0] >= sys.float_info.min:
            raise ValueError(f"{self!r} gives layer group 0 of {n_groups} an LR of {vals[0]:g} ({self.lr:g} * "
                             f"{self.decay:g}**{n_groups - 1}): it underflows, so that group would not train; "
                             "use a decay nearer 1 (typical 0.65 to 0.8)")
        return vals

    def __repr__(self) -> str:
        return f"layer_decay({self.lr:g}, {self.decay:g})"


def layer_decay(lr: float, decay: float) -> LayerDecay:
    """An LR spec for every layer group: the head gets `lr`, each group before it `decay` times the next one's
    (`lr_range(layer_decay(1e-3, 0.5), 4)` -> `[1.25e-4, 2.5e-4, 5e-4, 1e-3]`); accepted wherever an LR is."""
    return LayerDecay(_check_lr(lr, "layer_decay's lr"), _check_decay(decay))


def _check_decay(decay: Any) -> float:
    """`decay` as a float in (0, 1]: a number, a numpy scalar or a 0-d tensor."""
    v = _real(decay)
    if v is None or not (0 < v <= 1):
        raise ValueError(f"layer_decay's decay must be in (0, 1] (a number; each group's LR is decay times the next "
                         f"group's; typical 0.65 to 0.8), got {decay!r}; to raise LRs towards the input, use a list")
    return v


def _real(x: Any) -> float | None:
    """A plain number, numpy scalar or one-element 0-d tensor as a float; None for anything else (bools too)."""
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, torch.Tensor):
        return float(x) if x.ndim == 0 and not x.is_complex() and x.dtype != torch.bool else None
    if isinstance(x, numbers.Real):
        return float(x)
    return None


LRLike = float | slice | Sequence[float] | LayerDecay

SLICE_HINT = ("a slice spreads peak learning rates across layer groups (first group = start, last = stop); "
              "it does not shape the schedule over time, which fit_one_cycle does")


def default_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """One layer group holding every trainable parameter."""
    return [trainable_params(model)]


def default_group_names(n: int) -> list[str]:
    """The names of `n` layer groups when none are given: "all" for one, else "group i" (the last "(head)")."""
    return ["all"] if n == 1 else [f"group {i}" + (" (head)" if i == n - 1 else "") for i in range(n)]


def first_split(model: nn.Module, splitter: Callable[[nn.Module], Any]
                ) -> tuple[list[list[nn.Parameter]], nn.Module | None]:
    """The layer groups of a new Learner's model and the model they were cut from (None: provisional).

    fastai splits when it creates the optimizer, so a splitter written for a model set later (`learn.model = ...`)
    runs then: until then one provisional group, and the same error then if it still fails."""
    try:
        split = splitter(model)
    except (AttributeError, IndexError, KeyError, TypeError):
        return check_groups(model, [trainable_params(model)]), None
    return check_groups(model, split), model


def resplit(model: nn.Module, splitter: Callable[[nn.Module], Any], groups: list[list[nn.Parameter]],
            split_of: nn.Module | None) -> list[list[nn.Parameter]] | None:
    """New layer groups for `model` when it is not the model `groups` were cut from (`split_of`); None when the
    groups still hold (the same model, or groups a user set by hand for this model). Raises before changing anything."""
    if model is split_of:
        return None
    params = {id(p) for p in model.parameters()}
    if split_of is not None and groups and all(id(p) in params for g in groups for p in g):
        return None
    try:
        split = splitter(model)
    except Exception as e:  # the user's splitter on a model it was not written for
        raise type(e)(f"the splitter fails on learn.model, a {type(model).__name__} ({e}); set learn.splitter to one "
                      "for this model, or learn.layer_groups by hand") from e
    return check_groups(model, split)


def check_groups(model: nn.Module, groups: Sequence[Sequence[nn.Parameter]]) -> list[list[nn.Parameter]]:
    """Validate a splitter's output: every trainable parameter exactly once, no empty group."""
    if isinstance(groups, nn.Module):
        raise ValueError("the splitter returned a module; return a list of parameter lists, e.g. "
                         "[list(m.body.parameters()), list(m.head.parameters())]")
    if isinstance(groups, (str, bytes, dict)) or not isinstance(groups, Iterable):
        raise ValueError(f"the splitter returned {type(groups).__name__} ({groups!r:.60}); return a list of parameter "
                         "lists, e.g. [list(m.body.parameters()), list(m.head.parameters())]")
    out: list[list[nn.Parameter]] = []
    for gi, g in enumerate(groups):
        if isinstance(g, nn.Module):
            raise ValueError(f"layer group {gi} returned by the splitter is a module, not parameters; a splitter "
                             "returns lists of parameters, e.g. [list(m.body.parameters()), list(m.head.parameters())]")
        if isinstance(g, (str, bytes, torch.Tensor)) or not isinstance(g, Iterable):
            raise ValueError(f"layer group {gi} returned by the splitter is {type(g).__name__} ({g!r:.60}), not a "
                             "list of parameters")
        g = list(g)  # once: a generator is read here, not consumed by the checks below
        if any(isinstance(p, nn.Module) for p in g):
            raise ValueError(f"layer group {gi} returned by the splitter holds modules, not parameters; a splitter "
                             "returns lists of parameters, e.g. [list(m.body.parameters()), list(m.head.parameters())]")
        out.append(g)
    groups = out
    if not groups:
        raise ValueError("the splitter returned no layer groups; return a list of parameter lists")
    names = {id(p): n for n, p in model.named_parameters()}
    seen: dict[int, int] = {}
    repeated, foreign = [], []
    for gi, g in enumerate(groups):
        if not g:
            raise ValueError(f"layer group {gi} returned by the splitter is empty; every group needs parameters")
        for p in g:
            if not isinstance(p, torch.Tensor):
                raise ValueError(f"layer group {gi} holds a {type(p).__name__}, not a parameter; "
                                 "a splitter returns lists of parameters, e.g. [list(m.body.parameters()), ...]")
            if id(p) not in names:
                foreign.append(f"group {gi}")
            elif id(p) in seen:
                repeated.append(f"{names[id(p)]} (groups {seen[id(p)]} and {gi})")
            seen.setdefault(id(p), gi)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    problems = []
    if missing:
        problems.append(f"leaves out trainable parameters {missing}")
    if repeated:
        problems.append(f"repeats parameters {repeated}")
    if foreign:
        problems.append(f"returns parameters that are not in the model (in {sorted(set(foreign))})")
    if problems:
        raise ValueError("the splitter " + "; ".join(problems) + ". Every trainable parameter must be in "
                         "exactly one layer group (fastai would silently skip them; they would never train).")
    return groups


def lr_range(lr: LRLike, n_groups: int) -> list[float]:
    """One learning rate per layer group from a float, `slice(stop)`, `slice(start, stop)`, a list, or
    `layer_decay(lr, decay)`."""
    if isinstance(lr, LayerDecay):
        return lr.values(n_groups)
    if isinstance(lr, slice):
        if lr.step is not None:
            raise ValueError(f"slice({lr.start}, {lr.stop}, {lr.step}) has a step; {SLICE_HINT}. "
                             "Use slice(start, stop) for per-group peaks, and fit_one_cycle's div, div_final "
                             "and pct_start to shape the schedule over time.")
        if lr.stop is None:
            raise ValueError(f"slice({lr.start}, None) has no stop: the stop is the last (head) group's LR")
        stop = _check_lr(lr.stop, "slice stop")
        if lr.start is None:
            res = [stop / 10] * (n_groups - 1) + [stop]
        else:
            start = _check_lr(lr.start, "slice start")
            if start > stop:
                raise ValueError(f"slice({start:g}, {stop:g}) has start > stop; the first group is nearest the "
                                 f"input and usually gets the smallest LR: did you mean slice({stop:g}, {start:g})? "
                                 f"({SLICE_HINT})")
            res = [stop] if n_groups == 1 else [start * (stop / start) ** (i / (n_groups - 1))
                                                for i in range(n_groups)]
        return res
    if isinstance(lr, (int, float, np.number)) or (isinstance(lr, torch.Tensor) and lr.ndim == 0):
        return [_check_lr(lr, "learning rate")] * n_groups
    if isinstance(lr, (torch.Tensor, np.ndarray)) and lr.ndim > 1:
        raise TypeError(f"the learning rate is a {lr.ndim}-d {type(lr).__name__} of shape {tuple(lr.shape)}; pass a "
                        "float, a slice, or a 1-d list with one LR per layer group")
    if isinstance(lr, (str, bytes)):
        raise TypeError(f"the learning rate is the string {lr!r}; pass a number, e.g. {_as_number_hint(lr)}")
    if isinstance(lr, (set, frozenset, dict)):
        raise TypeError(f"a {type(lr).__name__} of learning rates has no order; pass a list with one LR per layer "
                        "group, first group (nearest the input) first, or slice(start, stop)")
    try:
        lrs = list(lr)
    except TypeError:
        raise TypeError("a learning rate must be a float, a slice or a list of floats, "
                        f"not {type(lr).__name__}") from None
    lrs = [_check_lr(x, f"learning rate {i}") for i, x in enumerate(lrs)]
    if len(lrs) != n_groups:
        raise ValueError(f"got {len(lrs)} learning rates for {n_groups} layer group(s); give one per group, "
                         f"a single float, or slice(start, stop) to spread them geometrically")
    return lrs


def _as_number_hint(s: Any) -> str:
    try:
        return repr(float(s))
    except (TypeError, ValueError):
        return "1e-3"


def _check_lr(x: Any, what: str) -> float:
    if isinstance(x, (str, bytes, bool, np.bool_)) or (isinstance(x, torch.Tensor) and x.numel() != 1):
        raise TypeError(f"{what} must be a number, got {x!r}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {x!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{what} is {v}; learning rates must be positive and finite (typical values 1e-5 to 1e-1)")
    if v > _F32_MAX:
        raise ValueError(f"{what} is {v:g}, more than float32 holds ({_F32_MAX:.3g}): the optimizer step would "
                         "overflow; learning rates are typically 1e-5 to 1e-1")
    return v


_F32_MAX = float(torch.finfo(torch.float32).max)


def no_wd_params(model: nn.Module) -> set[int]:
    """Ids of norm-layer parameters and biases (no weight decay when `wd_bn_bias=False`)."""
    ids = set()
    for m in model.modules():
        for n, p in m.named_parameters(recurse=False):
            if isinstance(m, NORM_TYPES) or n.endswith("bias"):
                ids.add(id(p))
    return ids


def norm_params(model: nn.Module) -> set[int]:
    """Ids of the parameters of norm layers (they keep training in frozen groups when `train_bn`)."""
    return {id(p) for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters(recurse=False)}


default_opt = partial(with_hypers(torch.optim.AdamW), betas=(0.9, 0.99), eps=1e-5)
default_opt.__doc__ = "AdamW(betas=(0.9, 0.99), eps=1e-5): fastai's default Adam with decoupled weight decay."


def make_param_groups(groups: list[list[nn.Parameter]], no_wd: set[int], lrs: list[float], wd: float | None,
                      wd_bn_bias: bool) -> list[dict]:
    """torch param groups, each tagged with its `layer_group` and whether weight decay applies.

    `wd=None` leaves the weight decay of the decayed groups to the optimizer's default (fastai's `Learner(wd=None)`).
    """
    pgs = []
    for gi, (g, lr) in enumerate(zip(groups, lrs)):
        split = [(True, g)] if wd_bn_bias else [(True, [p for p in g if id(p) not in no_wd]),
                                                (False, [p for p in g if id(p) in no_wd])]
        for apply_wd, ps in split:
            if ps:
                pg = {"params": ps, "lr": lr, "layer_group": gi, "apply_wd": apply_wd}
                if wd is not None or not apply_wd:
                    pg["weight_decay"] = wd if apply_wd else 0.0
                pgs.append(pg)
    return pgs


def get_hyper(pg: dict, name: str) -> float:
    """Read `lr`, `mom` or `wd` from a torch param group (mom: betas[0] or momentum; fastai's stepper optimizer's
    own `mom` and `wd`)."""
    if name == "lr":
        return pg["lr"]
    if name == "mom":
        if "mom" in pg:  # fastai's stepper Optimizer
            return pg["mom"]
        return pg["betas"][0] if "betas" in pg else pg.get("momentum", float("nan"))
    if name == "wd":
        return pg.get("wd", pg.get("weight_decay", 0.0)) if pg.get("apply_wd", True) else 0.0
    return pg[name]


def set_hyper(pg: dict, name: str, v: float) -> None:
    """Write `lr`, `mom` or `wd` into a torch param group (mom: betas[0] or momentum; fastai's stepper optimizer's
    own `mom` and `wd`)."""
    if name == "lr":
        pg["lr"] = v
    elif name == "mom":
        if "mom" in pg:  # fastai's stepper Optimizer
            pg["mom"] = v
        elif "betas" in pg:
            pg["betas"] = (v, pg["betas"][1])
        elif "momentum" in pg:
            pg["momentum"] = v
    elif name == "wd":
        if pg.get("apply_wd", True):
            pg["wd" if "wd" in pg else "weight_decay"] = v
    else:
        pg[name] = v


def set_group_hypers(opt: torch.optim.Optimizer, name: str, values: Sequence[float]) -> None:
    """Set hyper-parameter `name` of every torch param group from one value per layer group."""
    for pg in opt.param_groups:
        set_hyper(pg, name, values[pg["layer_group"]])


def group_hypers(opt: torch.optim.Optimizer, name: str, n_groups: int) -> list[float]:
    """One value of hyper-parameter `name` per layer group (from its first torch param group)."""
    out = [float("nan")] * n_groups
    for pg in reversed(opt.param_groups):
        out[pg["layer_group"]] = get_hyper(pg, name)
    return out


def groups_training(model: nn.Module, groups: list[list[nn.Parameter]]) -> list[bool]:
    """Per layer group: do its weights train? (Norm layers that keep training in a frozen group don't count.)"""
    bn = norm_params(model)
    return [any(p.requires_grad for p in g if id(p) not in bn or all(id(q) in bn for q in g)) for g in groups]


def freeze_to(groups: list[list[nn.Parameter]], n: int, opt: torch.optim.Optimizer | None,
              bn_ids: set[int], train_bn: bool) -> None:
    """Groups `[:n]` stop training (norm layers excepted when `train_bn`), groups `[n:]` train."""
    n_groups = len(groups)
    if n_groups == 1 and n != 0:
        warnings.warn("this learner has a single layer group: freeze() leaves it training, since there is "
                      "nothing before the head to freeze. Give the Learner a splitter to get several groups.",
                      stacklevel=3)
    frozen = set(range(n_groups)[:n]) if n_groups > 1 else set()
    for gi, g in enumerate(groups):
        for p in g:
            train = gi not in frozen or (train_bn and id(p) in bn_ids)
            if p.requires_grad != train:
                p.requires_grad_(train)
                p.grad = None
                if opt is not None:
                    opt.state.pop(p, None)


@dataclass
class GroupPlan:
    """What a fit plans for each layer group: the group names, and each scheduled hyper-parameter's peak per
    group (`peaks["lr"]`). The learner starts a fresh one for every fit (`learn.group_plan`); the schedules
    publish their peaks into it at `before_fit`, and the recorder, loggers and plots read it from there."""

    group_names: list[str]
    peaks: dict[str, list[float]] = field(default_factory=dict)
