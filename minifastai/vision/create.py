"""fastai's model constructors, with fastai's signatures: `create_vision_model` (a torchvision CNN, or a registered
builder, as `nn.Sequential(body, head)`) and `create_timm_model` (a timm model, with its `pretrained_cfg`).

`vision_learner` and `load_learner` build their models through `models.build_vision_model` and
`timm_models.build_timm_model`, which take state dicts already read; these wrappers resolve `pretrained=` /
`weights=` as `vision_learner` does (offline: torch hub's and the Hugging Face caches) and take every head argument
fastai's take.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn

from .heads import _update_first_layer, check_head_args, check_y_range, create_head
from .models import resolve_torchvision, resolve_weights, vision_body

__all__ = ["create_vision_model", "create_timm_model"]

Init = Callable[[torch.Tensor], Any] | None

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)


def _check(n_out: Any, n_in: Any, lin_ftrs: Any, ps: Any, concat_pool: Any, y_range: Any, where: str
           ) -> tuple[float, float] | None:
    check_head_args(n_out, None if lin_ftrs is None else list(lin_ftrs), ps, concat_pool, where)
    if isinstance(n_in, bool) or not isinstance(n_in, int) or n_in < 1:
        raise ValueError(f"{where}n_in={n_in!r} must be a positive int (input channels)")
    return check_y_range(y_range, where)


def _head(nf: int, n_out: int, init: Init, custom_head: nn.Module | None, **head_kwargs: Any) -> nn.Module:
    """fastai's `add_head`: `custom_head`, or `create_head(nf, n_out, ...)`; `init` goes to the weights of its layers
    that are not norms (biases zeroed), as fastai's `apply_init`."""
    if custom_head is None:
        return create_head(nf, n_out, init=init, **head_kwargs)
    if init is not None:
        with torch.no_grad():
            for m in custom_head.modules():
                w = getattr(m, "weight", None)
                if isinstance(m, _NORMS) or not isinstance(w, nn.Parameter) or not w.requires_grad:
                    continue
                init(w)
                b = getattr(m, "bias", None)
                if isinstance(b, nn.Parameter):
                    b.zero_()
    return custom_head


def create_vision_model(arch: str | Callable[..., nn.Module], n_out: int, pretrained: bool = True,
                        weights: Any = None, cut: int | Callable | None = None, n_in: int = 3,
                        init: Init = nn.init.kaiming_normal_, custom_head: nn.Module | None = None,
                        concat_pool: bool = True, pool: bool = True, lin_ftrs: Sequence[int] | None = None,
                        ps: float | Sequence[float] = 0.5, first_bn: bool = True, bn_final: bool = False,
                        lin_first: bool = False, y_range: tuple[float, float] | None = None) -> nn.Sequential:
    """fastai's `create_vision_model`: `nn.Sequential(body, head)` for a torchvision CNN, taking `n_in` channels.

    `pretrained`/`weights` as `vision_learner`'s (torchvision's default weights, a weights enum or its name, a file,
    a state dict); with `n_in != 3` the first convolution is rebuilt from the pretrained RGB filters as fastai's.
    """
    y_range = _check(n_out, n_in, lin_ftrs, ps, concat_pool, y_range, "create_vision_model: ")
    _, builder = resolve_torchvision(arch)
    sd, source = resolve_weights(builder, pretrained, weights)
    body, _, nf = vision_body(builder, sd, cut, source)
    _update_first_layer(body, n_in, sd is not None)
    head = _head(nf, n_out, init, custom_head, lin_ftrs=lin_ftrs, ps=ps, pool=pool, concat_pool=concat_pool,
                 first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)
    return nn.Sequential(body, head)


def create_timm_model(arch: str, n_out: int, cut: None = None, pretrained: bool = True, n_in: int = 3,
                      init: Init = nn.init.kaiming_normal_, custom_head: nn.Module | None = None,
                      concat_pool: bool = True, pool: bool = True, lin_ftrs: Sequence[int] | None = None,
                      ps: float | Sequence[float] = 0.5, first_bn: bool = True, bn_final: bool = False,
                      lin_first: bool = False, y_range: tuple[float, float] | None = None,
                      **kwargs: Any) -> tuple[nn.Sequential, dict]:
    """fastai's `create_timm_model`: (`nn.Sequential(TimmBody, head)`, the model's `pretrained_cfg`) for a timm name.

    Keywords go to `timm.create_model` (`in_chans=n_in`); `pretrained=True` reads timm's default weights (the
    Hugging Face cache offline). As in fastai, the head pools only when the body's features are spatial maps
    (`pool` is then ignored), and `cut` is not supported.
    """
    from .timm_models import check_model_kwargs, resolve_timm_weights, timm_arch, timm_body

    y_range = _check(n_out, n_in, lin_ftrs, ps, concat_pool, y_range, "create_timm_model: ")
    if cut is not None:
        raise ValueError("create_timm_model: cut= is not supported for timm models (their body is forward_features, "
                         "as in fastai); leave it None")
    if "in_chans" in kwargs:
        raise ValueError("create_timm_model: pass the input channels as n_in=, not in_chans=")
    kw = check_model_kwargs(dict(kwargs), "create_timm_model: ")
    kw["in_chans"] = n_in
    found = timm_arch(arch) if isinstance(arch, str) else None
    if found is None:
        raise ValueError(f"create_timm_model: {arch!r} is not an architecture in timm's registry "
                         "(timm.list_models() lists them)")
    sd, source, _ = resolve_timm_weights(found, pretrained, None, kw)
    body, nf, cfg = timm_body(found, sd, kw, source)
    head = _head(nf, n_out, init, custom_head, lin_ftrs=lin_ftrs, ps=ps, pool=body.needs_pool,
                 concat_pool=concat_pool, first_bn=first_bn, bn_final=bn_final, lin_first=lin_first, y_range=y_range)
    return nn.Sequential(cast(nn.Module, body), head), cfg
