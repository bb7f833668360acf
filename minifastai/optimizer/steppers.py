"""fastai's stepper optimizer: `Optimizer(params, cbs, **defaults)` runs, for every parameter with a gradient,
each function of `cbs` (a "stepper" or a statistic) with the parameter, its state and its group's
hyper-parameters; a statistic returns the state it updates. It is a `torch.optim.Optimizer` subclass, so the
Learner, torch's schedulers, `GradScaler` and checkpoints take it like any torch optimizer.

The steppers and the optimizers built from them (`RAdam`, `QHAdam`, `Larc`, `Lamb`, `Lookahead`, `ranger`) give
fastai's numbers (tests/fastai_nbs/test_12_optimizer.py runs fastai's own tests). They loop over parameters in
Python, as fastai's do: for speed, the default optimizer stays torch's `AdamW`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from fastcore.foundation import L

from ..optim_hypers import HyperView

Stepper = Callable[..., Any]
_KEEP_ON_CLEAR = ("force_train", "do_wd")


def _listy(x: Any) -> bool:
    return isinstance(x, (list, tuple, L))


def _several(v: Any) -> bool:
    """Whether a hyper-parameter value holds one value per group (a list, an array, a 1-D tensor)."""
    return _listy(v) or isinstance(v, np.ndarray) or (isinstance(v, torch.Tensor) and v.ndim > 0)


def _update(state: dict, new: Any = None) -> dict:
    if isinstance(new, dict):
        state.update(new)
    return state


class Optimizer(torch.optim.Optimizer):
    """fastai's `Optimizer(params, cbs, train_bn=True, **defaults)`, as a `torch.optim.Optimizer`.

    `params` is parameters (one group) or lists of them (one group each); `cbs` the steppers, whose `defaults`
    attributes give the hyper-parameters' defaults (`defaults` overrides them). `hypers` is one dict per group,
    `set_hyper('lr', slice(1e-4, 1e-2))` spreads a value over the groups as fastai does. `state_dict()` is torch's
    format, so checkpoints and `load_state_dict` treat it as any torch optimizer's.
    """

    def __init__(self, params: Any, cbs: Any, train_bn: bool = True, **defaults: Any) -> None:
        self.cbs: list[Stepper] = list(cbs) if _listy(cbs) else [cbs]
        self.train_bn = train_bn
        merged: dict[str, Any] = {}
        for cb in self.cbs:
            merged.update(getattr(cb, "defaults", {}))
        merged.update(defaults)
        items: list[Any] = list(params) if not isinstance(params, torch.Tensor) else [params]
        if not items:
            raise ValueError("Optimizer got no parameters (is every parameter frozen?)")
        if isinstance(items[0], dict):  # torch param-group dicts (the Learner's): their own values win
            groups = [{("wd" if k == "weight_decay" else k): v for k, v in g.items()} for g in items]
        else:
            groups = [{"params": list(g)} for g in items] if _listy(items[0]) else [{"params": items}]
        self.frozen_idx = 0
        super().__init__(groups, {})
        for k, v in merged.items():
            if not _several(v) and not isinstance(v, slice):
                for pg in self.param_groups:
                    pg.setdefault(k, v)
            else:
                self.set_hyper(k, v)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (its `params` may be anything fastai's tests give, tensors in real use)."""
        params = param_group["params"]
        param_group["params"] = [params] if isinstance(params, torch.Tensor) else list(params)
        self.param_groups.append(param_group)

    # ---- fastai's hyper-parameter API ---------------------------------------------------------
    @property
    def param_lists(self) -> list[list[Any]]:
        """Each group's parameters."""
        return [pg["params"] for pg in self.param_groups]

    @property
    def hypers(self) -> list[HyperView]:
        """Each group's hyper-parameters, as dicts that write through to the group."""
        return [HyperView(pg) for pg in self.param_groups]

    def set_hypers(self, **kwargs: Any) -> None:
        """`set_hyper` for each keyword."""
        for k, v in kwargs.items():
            self.set_hyper(k, v)

    def set_hyper(self, k: str, v: Any) -> None:
        """Set hyper-parameter `k` of every group: one value, one per group, or a slice (fastai's spreading)."""
        n = len(self.param_groups)
        if isinstance(v, slice):
            v = list(_even_mults(v.start, v.stop, n)) if v.start else [v.stop / 10] * (n - 1) + [v.stop]
        vals = list(v) if _several(v) else [v]
        if len(vals) == 1:
            vals = vals * n
        if len(vals) != n:
            raise ValueError(f"Trying to set {len(vals)} values for {k} but there are {n} parameter groups.")
        for pg, x in zip(self.param_groups, vals):
            pg[k] = x

    # ---- stepping -----------------------------------------------------------------------------
    def all_params(self, n: slice | int = slice(None), with_grad: bool = False) -> list[tuple]:
        """`(param, group's params, state, hypers)` for the groups `n`; `with_grad`: only parameters with a grad."""
        groups = self.param_groups[n] if isinstance(n, slice) else [self.param_groups[n]]
        out = [(p, pg["params"], self.state[p], HyperView(pg)) for pg in groups for p in pg["params"]]
        return [o for o in out if getattr(o[0], "grad", None) is not None] if with_grad else out

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Run every stepper on every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for p, _, state, hyper in self.all_params(with_grad=True):
            for cb in self.cbs:
                state = _update(state, cb(p, **{**state, **hyper}))
            self.state[p] = state
        return loss

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zero every gradient (fastai's behaviour: kept as zeros; `set_to_none=True` drops them)."""
        for p, *_ in self.all_params(with_grad=True):
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_()
                p.grad.zero_()

    def clear_state(self) -> None:
        """Forget each parameter's statistics (keeping `force_train` and `do_wd`)."""
        for p, _, state, _ in self.all_params():
            self.state[p] = {k: state[k] for k in _KEEP_ON_CLEAR if k in state}

    # ---- freezing -----------------------------------------------------------------------------
    def freeze_to(self, n: int) -> None:
        """Freeze the groups before `n`; parameters whose state says `force_train` keep training."""
        self.frozen_idx = n if n >= 0 else len(self.param_groups) + n
        for p, *_ in self.all_params(slice(n, None)):
            p.requires_grad_(True)
        for p, _, state, _ in self.all_params(slice(None, n)):
            p.requires_grad_(state.get("force_train", False))

    def freeze(self) -> None:
        """Train only the last group."""
        if len(self.param_groups) < 2:
            raise ValueError("freeze needs at least two parameter groups (it trains only the last one)")
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every group."""
        self.freeze_to(0)


def _even_mults(start: float, stop: float, n: int) -> list[float]:
    if n == 1:
        return [stop]
    mult = stop / start
    step = mult ** (1 / (n - 1))
    return [start * step**i for i in range(n)]


# ---- steppers and statistics (fastai's formulas) ------------------------------------------------
def sgd_step(p: Any, lr: float, **kwargs: Any) -> None:
    """`p -= lr * grad`."""
    p.data.add_(p.grad.data, alpha=-lr)


def weight_decay(p: Any, lr: float, wd: float, do_wd: bool = True, **kwargs: Any) -> None:
    """Decoupled weight decay: `p *= 1 - lr * wd`."""
    if do_wd and wd != 0:
        p.data.mul_(1 - lr * wd)


weight_decay.defaults = dict(wd=0.0)  # type: ignore[attr-defined]


def l2_reg(p: Any, lr: float, wd: float, do_wd: bool = True, **kwargs: Any) -> None:
    """L2 regularisation: `grad += wd * p`."""
    if do_wd and wd != 0:
        p.grad.data.add_(p.data, alpha=wd)


l2_reg.defaults = dict(wd=0.0)  # type: ignore[attr-defined]


def average_grad(p: Any, mom: float, dampening: bool = False, grad_avg: torch.Tensor | None = None,
                 **kwargs: Any) -> dict:
    """Moving average of the gradients: `avg = mom * avg + (1 - mom if dampening else 1) * grad`."""
    if grad_avg is None:
        grad_avg = torch.zeros_like(p.grad.data)
    grad_avg.mul_(mom).add_(p.grad.data, alpha=1 - mom if dampening else 1.0)
    return {"grad_avg": grad_avg}


average_grad.defaults = dict(mom=0.9)  # type: ignore[attr-defined]


def average_sqr_grad(p: Any, sqr_mom: float, dampening: bool = True, sqr_avg: torch.Tensor | None = None,
                     **kwargs: Any) -> dict:
    """Moving average of the squared gradients (dampened by default)."""
    if sqr_avg is None:
        sqr_avg = torch.zeros_like(p.grad.data)
    sqr_avg.mul_(sqr_mom).addcmul_(p.grad.data, p.grad.data, value=1 - sqr_mom if dampening else 1.0)
    return {"sqr_avg": sqr_avg}


average_sqr_grad.defaults = dict(sqr_mom=0.99)  # type: ignore[attr-defined]


def momentum_step(p: Any, lr: float, grad_avg: torch.Tensor, **kwargs: Any) -> None:
    """`p -= lr * grad_avg`."""
    p.data.add_(grad_avg, alpha=-lr)


def rms_prop_step(p: Any, lr: float, sqr_avg: torch.Tensor, eps: float,
                  grad_avg: torch.Tensor | None = None, **kwargs: Any) -> None:
    """`p -= lr * (grad_avg or grad) / (sqrt(sqr_avg) + eps)`."""
    denom = sqr_avg.sqrt().add_(eps)
    p.data.addcdiv_(grad_avg if grad_avg is not None else p.grad, denom, value=-lr)


rms_prop_step.defaults = dict(eps=1e-8)  # type: ignore[attr-defined]


def step_stat(p: Any, step: int = 0, **kwargs: Any) -> dict:
    """Count the steps taken by `p`."""
    return {"step": step + 1}


def debias(mom: float, damp: float, step: int) -> float:
    """The bias of a moving average with `mom` and `damp` after `step` steps."""
    return damp * (1 - mom**step) / (1 - mom)


def adam_step(p: Any, lr: float, mom: float, step: int, sqr_mom: float, grad_avg: torch.Tensor,
              sqr_avg: torch.Tensor, eps: float, **kwargs: Any) -> torch.Tensor:
    """Adam's step with debiased averages."""
    debias1, debias2 = debias(mom, 1 - mom, step), debias(sqr_mom, 1 - sqr_mom, step)
    p.data.addcdiv_(grad_avg, (sqr_avg / debias2).sqrt() + eps, value=-lr / debias1)
    return p


def radam_step(p: Any, lr: float, mom: float, step: int, sqr_mom: float, grad_avg: torch.Tensor,
               sqr_avg: torch.Tensor, eps: float, beta: float, **kwargs: Any) -> torch.Tensor:
    """Rectified Adam's step: plain momentum while the variance estimate is unreliable (r <= 5)."""
    debias1, debias2 = debias(mom, 1 - mom, step), debias(sqr_mom, 1 - sqr_mom, step)
    r_inf = 2 / (1 - sqr_mom) - 1
    r = r_inf - 2 * step * sqr_mom**step / (1 - sqr_mom**step)
    if r > 5:
        v = math.sqrt(((r - 4) * (r - 2) * r_inf) / ((r_inf - 4) * (r_inf - 2) * r))
        denom = (sqr_avg / debias2).sqrt()
        if eps:
            denom += eps
        if beta:
            denom = F.softplus(denom, beta)
        p.data.addcdiv_(grad_avg, denom, value=-lr * v / debias1)
    else:
        p.data.add_(grad_avg, alpha=-lr / debias1)
    return p


def qhadam_step(p: Any, lr: float, mom: float, sqr_mom: float, sqr_avg: torch.Tensor, nu_1: float,
                nu_2: float, step: int, grad_avg: torch.Tensor, eps: float, **kwargs: Any) -> torch.Tensor:
    """Quasi-hyperbolic Adam's step."""
    debias1, debias2 = debias(mom, 1 - mom, step), debias(sqr_mom, 1 - sqr_mom, step)
    num = (1 - nu_1) * p.grad.data + nu_1 * (grad_avg / debias1)
    den = ((1 - nu_2) * p.grad.data**2 + nu_2 * (sqr_avg / debias2)).sqrt() + eps
    p.data.addcdiv_(num, den, value=-lr)
    return p


def larc_layer_lr(p: Any, lr: float, trust_coeff: float, wd: float, eps: float, clip: bool = True,
                  **kwargs: Any) -> dict:
    """LARC's per-layer LR, `lr * trust_coeff * |p| / (|grad| + wd * |p| + eps)`, clipped to `lr` if `clip`."""
    p_norm, g_norm = torch.norm(p.data), torch.norm(p.grad.data)
    local_lr = lr * trust_coeff * p_norm / (g_norm + p_norm * wd + eps)
    return {"local_lr": min(lr, local_lr) if clip else local_lr}


larc_layer_lr.defaults = dict(trust_coeff=0.02, wd=0.0, eps=1e-8)  # type: ignore[attr-defined]


def larc_step(p: Any, local_lr: Any, grad_avg: torch.Tensor | None = None, **kwargs: Any) -> None:
    """`p -= local_lr * (grad_avg or grad)`."""
    p.data.add_(p.grad.data if grad_avg is None else grad_avg, alpha=-local_lr)


def lamb_step(p: Any, lr: float, mom: float, step: int, sqr_mom: float, grad_avg: torch.Tensor,
              sqr_avg: torch.Tensor, eps: float, **kwargs: Any) -> None:
    """LAMB's step: Adam's, scaled by the ratio of the weights' and the step's norms (at most 10)."""
    debias1, debias2 = debias(mom, 1 - mom, step), debias(sqr_mom, 1 - sqr_mom, step)
    r1 = p.data.pow(2).mean().sqrt()
    upd = (grad_avg / debias1) / ((sqr_avg / debias2).sqrt() + eps)
    r2 = upd.pow(2).mean().sqrt()
    q: Any = 1 if r1 == 0 or r2 == 0 else min(float(r1 / r2), 10.0)
    p.data.add_(upd, alpha=-lr * q)


# ---- optimizers built from them ------------------------------------------------------------------
def _wd(decouple_wd: bool) -> list[Any]:
    return [weight_decay] if decouple_wd else [l2_reg]


def RAdam(params: Any, lr: float, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,  # noqa: N802
          wd: float = 0.0, beta: float = 0.0, decouple_wd: bool = True) -> Optimizer:
    """Rectified Adam (Liu et al. 2019), with SAdam's softplus when `beta` > 0."""
    cbs: list[Any] = [*_wd(decouple_wd), partial(average_grad, dampening=True), average_sqr_grad, step_stat, radam_step]
    return Optimizer(params, cbs, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd, beta=beta)


def QHAdam(params: Any, lr: float, mom: float = 0.999, sqr_mom: float = 0.999, nu_1: float = 0.7,  # noqa: N802
           nu_2: float = 1.0, eps: float = 1e-8, wd: float = 0.0, decouple_wd: bool = True) -> Optimizer:
    """Quasi-hyperbolic Adam (Ma & Yarats 2019)."""
    cbs: list[Any] = [*_wd(decouple_wd), partial(average_grad, dampening=True),
                      partial(average_sqr_grad, dampening=True), step_stat, qhadam_step]
    return Optimizer(params, cbs, lr=lr, nu_1=nu_1, nu_2=nu_2, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


def Larc(params: Any, lr: float, mom: float = 0.9, clip: bool = True, trust_coeff: float = 0.02,  # noqa: N802
         eps: float = 1e-8, wd: float = 0.0, decouple_wd: bool = True) -> Optimizer:
    """LARS / LARC (You et al. 2017): a per-layer LR from the weights' and gradients' norms."""
    cbs: list[Any] = _wd(decouple_wd) + ([average_grad] if mom != 0 else [])
    cbs += [partial(larc_layer_lr, clip=clip), larc_step]
    return Optimizer(params, cbs, lr=lr, mom=mom, trust_coeff=trust_coeff, eps=eps, wd=wd)


def Lamb(params: Any, lr: float, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,  # noqa: N802
         wd: float = 0.0, decouple_wd: bool = True) -> Optimizer:
    """LAMB (You et al. 2019): LARC's trust ratio applied to Adam."""
    cbs: list[Any] = [*_wd(decouple_wd), partial(average_grad, dampening=True), average_sqr_grad, step_stat, lamb_step]
    return Optimizer(params, cbs, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


class Lookahead:
    """Lookahead (Zhang et al. 2019) around any optimizer: every `k` steps the weights move `alpha` of the way from
    a slow copy to the fast weights, and the fast weights restart there. Other attributes are `opt`'s."""

    def __init__(self, opt: Any, k: int = 6, alpha: float = 0.5) -> None:
        if not (isinstance(k, int) and k >= 1) or not 0 < alpha <= 1:
            raise ValueError(f"Lookahead needs k >= 1 steps and alpha in (0, 1], got k={k!r}, alpha={alpha!r}")
        self.opt, self.k, self.alpha = opt, k, alpha
        self.count = 0
        self.slow_weights: list[list[Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        if name in ("opt", "k", "alpha", "count", "slow_weights"):
            raise AttributeError(name)
        return getattr(self.opt, name)

    @property
    def param_lists(self) -> list[list[Any]]:
        """The wrapped optimizer's groups' parameters."""
        return [pg["params"] for pg in self.opt.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """The wrapped optimizer's step; every `k`-th, the slow/fast blend."""
        if self.slow_weights is None:
            self.slow_weights = [[p.clone().detach() for p in pg] for pg in self.param_lists]
        loss = self.opt.step(closure) if closure is not None else self.opt.step()
        self.count += 1
        if self.count % self.k == 0:
            for slow_pg, fast_pg in zip(self.slow_weights, self.param_lists):
                for slow, fast in zip(slow_pg, fast_pg):
                    slow.add_(fast.data - slow, alpha=self.alpha)
                    fast.data.copy_(slow)
        return loss

    def clear_state(self) -> None:
        """Forget the wrapped optimizer's state and the slow weights."""
        self.opt.clear_state()
        self.count, self.slow_weights = 0, None

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state, the step count and the slow weights."""
        return {**self.opt.state_dict(), "count": self.count, "slow_weights": self.slow_weights}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Load what `state_dict` returned."""
        sd = dict(sd)
        self.count, self.slow_weights = sd.pop("count"), sd.pop("slow_weights")
        self.opt.load_state_dict(sd)


def ranger(p: Any, lr: float, mom: float = 0.95, wd: float = 0.01, eps: float = 1e-6, **kwargs: Any) -> Lookahead:
    """`Lookahead(RAdam(...))`, fastai's `ranger`."""
    return Lookahead(RAdam(p, lr=lr, mom=mom, wd=wd, eps=eps, **kwargs))


# ---- fastai's helpers for torch param groups ------------------------------------------------------
pytorch_hp_map = {"momentum": "mom", "weight_decay": "wd", "alpha": "sqr_mom", "betas__0": "mom", "betas__1": "sqr_mom"}


def detuplify_pg(d: dict) -> dict:
    """A param group's hyper-parameters with tuples split (`betas` -> `betas__0`, `betas__1`), `params` left out."""
    res: dict[str, Any] = {}
    for k, v in d.items():
        if k == "params":
            continue
        if _listy(v):
            res.update({f"{k}__{i}": x for i, x in enumerate(v)})
        else:
            res[k] = v
    return res


def set_item_pg(pg: dict, k: str, v: Any) -> dict:
    """Set `k` in a param group, `name__i` setting item i of the tuple `name`."""
    if "__" not in k:
        pg[k] = v
    else:
        name, idx = k.split("__")
        pg[name] = tuple(v if i == int(idx) else x for i, x in enumerate(pg[name]))
    return pg
