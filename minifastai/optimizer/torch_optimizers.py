"""fastai's optimizer names (`SGD`, `Adam`, `RMSProp`, `OptimWrapper`), built on `torch.optim`.

Each returns a real torch optimizer, so `opt_func=partial(SGD, mom=0.9)` or `opt_func=Adam` works with the
Learner (which calls `opt_func(param_groups, lr=...)`) and the result steps like fastai's optimizer of the
same name. `mom` is `betas[0]` (Adam) or `momentum` (SGD, RMSprop); `wd` is `weight_decay`, applied
decoupled (`p *= 1 - lr * wd` before the step, as fastai's default `decouple_wd=True`) or as L2
regularisation (`decouple_wd=False`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ..groups import lr_range
from ..optim_hypers import WithHypers, with_hypers

Params = Iterable[Any]
"""Parameters, lists of parameters (one per layer group, as a fastai splitter returns) or torch param-group dicts."""


class _FastaiSemantics(WithHypers):
    """Mixin over a torch optimizer: decoupled weight decay for SGD/RMSprop, and no momentum when built with `mom=0`.

    fastai's `SGD(mom=0)` and `RMSProp(mom=0)` have no momentum step, so a momentum schedule (`fit_one_cycle`) is
    recorded but not applied; the same holds here (`uses_mom=False`).
    """

    decouple_wd: bool = True
    uses_mom: bool = True

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Decoupled weight decay (`p *= 1 - lr * wd`), then the torch optimizer's step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        saved = []
        for g in self.param_groups:
            saved.append((g["weight_decay"], g.get("momentum")))
            wd = g["weight_decay"]
            if self.decouple_wd and wd != 0:
                ps = [p for p in g["params"] if p.grad is not None]
                if ps:
                    torch._foreach_mul_(ps, 1 - g["lr"] * wd)
                g["weight_decay"] = 0.0
            if not self.uses_mom and "momentum" in g:
                g["momentum"] = 0.0
        try:
            super().step()
        finally:
            for g, (wd, mom) in zip(self.param_groups, saved):
                g["weight_decay"] = wd
                if mom is not None:
                    g["momentum"] = mom
        return loss


class FastaiSGD(_FastaiSemantics, torch.optim.SGD):
    """`torch.optim.SGD` stepping as fastai's `SGD`: decoupled weight decay by default, momentum only if built so."""

    def __init__(self, params: Params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 decouple_wd: bool = True, uses_mom: bool = True) -> None:
        self.decouple_wd, self.uses_mom = decouple_wd, uses_mom
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


class _RMSpropFastaiMomentum(torch.optim.RMSprop):
    """`torch.optim.RMSprop` whose momentum is fastai's: `buf = mom * buf + grad`, then
    `p -= lr * buf / (sqrt(square_avg) + eps)` (torch averages `grad / (sqrt(square_avg) + eps)` instead). Without
    momentum it is torch's own step. The state keeps torch's keys (`square_avg`, `momentum_buffer`, `step`)."""

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step of every group: torch's without momentum, fastai's arithmetic with it."""
        if not any(g["momentum"] for g in self.param_groups):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for g in self.param_groups:
            if not g["momentum"]:
                continue
            ps = [p for p in g["params"] if p.grad is not None]
            if not ps:
                continue
            grads: list[torch.Tensor] = [p.grad for p in ps]
            if g["weight_decay"]:  # L2 (decouple_wd=False): torch's `grad + wd * p`
                grads = list(torch._foreach_add(grads, ps, alpha=g["weight_decay"]))
            states = [self.state[p] for p in ps]
            for p, st in zip(ps, states):
                if not st:
                    st["step"] = torch.tensor(0.0)
                    st["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
            sq = [st["square_avg"] for st in states]
            buf = [st["momentum_buffer"] for st in states]
            torch._foreach_mul_(sq, g["alpha"])
            torch._foreach_addcmul_(sq, grads, grads, value=1 - g["alpha"])
            torch._foreach_mul_(buf, g["momentum"])
            torch._foreach_add_(buf, grads)
            denom = torch._foreach_sqrt(sq)
            torch._foreach_add_(denom, g["eps"])
            torch._foreach_addcdiv_(ps, buf, denom, value=-g["lr"])
        groups_without = [g for g in self.param_groups if not g["momentum"]]
        if groups_without:  # groups without momentum take torch's step, on their own
            every = self.param_groups
            self.param_groups = groups_without
            try:
                super().step()
            finally:
                self.param_groups = every
        return loss


class FastaiRMSprop(_FastaiSemantics, _RMSpropFastaiMomentum):
    """`torch.optim.RMSprop` with fastai's `RMSProp` weight decay (decoupled by default), `mom=0` semantics and
    fastai's momentum arithmetic."""

    def __init__(self, params: Params, lr: float, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, decouple_wd: bool = True, uses_mom: bool = True) -> None:
        self.decouple_wd, self.uses_mom = decouple_wd, uses_mom
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)


def _param_groups(params: Params) -> list[Any]:
    """Torch param groups from parameters, lists of parameters (one per layer group) or param-group dicts."""
    if isinstance(params, torch.Tensor):
        return [params]
    items = list(params)
    if not items:
        raise ValueError("the optimizer got an empty parameter list: is every parameter frozen, or the model empty?")
    if all(isinstance(o, torch.Tensor) for o in items):
        return items
    groups = []
    for i, o in enumerate(items):
        if isinstance(o, dict):
            groups.append(o)
        elif isinstance(o, (list, tuple)) and all(isinstance(p, torch.Tensor) for p in o):
            groups.append({"params": list(o)})
        else:
            raise TypeError(f"optimizer params item {i} is a {type(o).__name__}: pass parameters, lists of parameters "
                            "(one per layer group) or torch param-group dicts")
    return groups


def _lr(lr: Any, groups: list[Any], name: str) -> float:
    """The default LR; a slice or list is spread over the layer groups (fastai's `set_hyper('lr', ...)`)."""
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"{name}: lr must be a non-negative finite number, got {lr}")
        return float(lr)
    if not all(isinstance(g, dict) for g in groups):
        plain = list(groups)
        groups[:] = [{"params": plain}]
    lrs = lr_range(lr, len(groups))
    for g, x in zip(groups, lrs):
        g.setdefault("lr", x)
    return lrs[-1]


def _check(name: str, **values: float) -> None:
    for k, v in values.items():
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name}: {k} must be a finite number, got {v!r}")
    for k in ("mom", "sqr_mom"):
        if k in values and not 0 <= values[k] < 1:
            raise ValueError(f"{name}: {k} must be in [0, 1), got {values[k]}")
    if values.get("wd", 0) < 0 or values.get("eps", 1) <= 0:
        raise ValueError(f"{name}: wd must be >= 0 and eps > 0, got wd={values.get('wd')}, eps={values.get('eps')}")


def SGD(params: Params, lr: float | slice, mom: float = 0.0, wd: float = 0.0,  # noqa: N802 (fastai's name)
        decouple_wd: bool = True) -> torch.optim.SGD:
    """fastai's `SGD`: `torch.optim.SGD(momentum=mom)`; `wd` decoupled (or L2 with `decouple_wd=False`)."""
    _check("SGD", mom=mom, wd=wd)
    groups = _param_groups(params)
    lr0 = _lr(lr, groups, "SGD")
    return FastaiSGD(groups, lr=lr0, momentum=mom, weight_decay=wd, decouple_wd=decouple_wd, uses_mom=mom != 0)


def Adam(params: Params, lr: float | slice, mom: float = 0.9, sqr_mom: float = 0.99,  # noqa: N802
         eps: float = 1e-5, wd: float = 0.01, decouple_wd: bool = True) -> torch.optim.Adam:
    """fastai's `Adam`: `torch.optim.AdamW(betas=(mom, sqr_mom), eps, weight_decay=wd)`, or `torch.optim.Adam` with
    L2 regularisation when `decouple_wd=False`."""
    _check("Adam", mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)
    groups = _param_groups(params)
    lr0 = _lr(lr, groups, "Adam")
    cls = with_hypers(torch.optim.AdamW if decouple_wd else torch.optim.Adam)
    return cls(groups, lr=lr0, betas=(mom, sqr_mom), eps=eps, weight_decay=wd)


def RMSProp(params: Params, lr: float | slice, mom: float = 0.0, sqr_mom: float = 0.99,  # noqa: N802
            eps: float = 1e-8, wd: float = 0.0, decouple_wd: bool = True) -> torch.optim.RMSprop:
    """fastai's `RMSProp`: `torch.optim.RMSprop(alpha=sqr_mom, eps, momentum=mom)`; `wd` decoupled (or L2).

    With `mom > 0` the momentum is fastai's (the averaged gradient over the current denominator), not torch's.
    """
    _check("RMSProp", mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)
    groups = _param_groups(params)
    lr0 = _lr(lr, groups, "RMSProp")
    return FastaiRMSprop(groups, lr=lr0, alpha=sqr_mom, eps=eps, weight_decay=wd, momentum=mom,
                         decouple_wd=decouple_wd, uses_mom=mom != 0)


def OptimWrapper(params: Params | None = None, opt: Any = None, hp_map: dict | None = None,  # noqa: N802
                 convert_groups: bool = True, **kwargs: Any) -> torch.optim.Optimizer:
    """fastai's `OptimWrapper`: build `opt(params, **kwargs)` (a torch optimizer class or function), or return an
    already built torch optimizer. The result is a torch optimizer (minifastai needs no wrapper); built from a class,
    it is that class with fastai's `opt.hypers` (`with_hypers`)."""
    if opt is None:
        raise ValueError("OptimWrapper needs opt=: a torch optimizer class (e.g. opt=torch.optim.AdamW) or a built "
                         "optimizer")
    if hp_map is not None:
        raise TypeError("OptimWrapper(hp_map=...) is not supported: minifastai reads torch's own param-group keys "
                        "(mom = betas[0] or momentum, wd = weight_decay, sqr_mom = betas[1] or alpha)")
    if isinstance(opt, torch.optim.Optimizer):
        if params is not None:
            raise ValueError("OptimWrapper got both params and a built optimizer: pass only opt=")
        return opt
    if not callable(opt):
        raise TypeError(f"OptimWrapper: opt must be a torch optimizer class or a built optimizer, not {opt!r}")
    if params is None:
        raise ValueError("OptimWrapper(opt=<class>) needs params (the learner passes them)")
    if isinstance(opt, type) and issubclass(opt, torch.optim.Optimizer):
        opt = with_hypers(opt)  # fastai's wrapper has `opt.hypers`
    built = opt(_param_groups(params) if convert_groups else params, **kwargs)
    if not isinstance(built, torch.optim.Optimizer):
        raise TypeError(f"OptimWrapper: opt={opt!r} returned a {type(built).__name__}, not a torch optimizer")
    return built
