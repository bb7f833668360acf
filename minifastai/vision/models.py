"""Models for `vision_learner`: the architecture registry, torchvision models as (body, fastai's head) with
per-architecture metadata (cut, layer groups, normalization, default weights), and which torchvision weights
`vision_learner`'s arguments mean. The head and body cutting are `heads`', reading weights is `weights`'.

Architectures are found through a small registry (`ARCH_RESOLVERS`): names registered with `register_arch`
first, then timm's registry (as in fastai, a string is a timm name when timm has it), then torchvision's
builders. `"timm/<name>"` and `"<name>.<pretrained tag>"` are always timm's, `"torchvision/<name>"` always
torchvision's; a builder function (`resnet34`) is torchvision's.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torchvision
from torch import nn
from torchvision.models import ResNet
from torchvision.models.resnet import BasicBlock

from .heads import AdaptiveConcatPool2d, create_body, create_head, num_features
from .timm_models import TimmArch, timm_arch, timm_names
from .transforms import IMAGENET_STATS
from .weights import WeightsUnavailableError, load_weights, torchvision_state_dict

__all__ = [
    "AdaptiveConcatPool2d", "ArchMeta", "WeightsUnavailableError", "build_vision_model", "vision_body",
    "create_body", "create_head", "load_weights", "model_meta", "num_features", "register_arch", "resnet10",
    "resolve_arch", "default_weights",
]

# ================================================================================================
# Per-architecture metadata: cut, layer groups, normalization, default weights
# ================================================================================================
def _params(*mods: nn.Module) -> list[nn.Parameter]:
    return [p for m in mods for p in m.parameters()]


def _body_head(model: nn.Module) -> tuple[nn.Sequential, nn.Module]:
    seq = cast(nn.Sequential, model)
    return cast(nn.Sequential, seq[0]), seq[1]


def resnet_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """ResNet layer groups: `body[:6]` (stem, layer1, layer2), `body[6:]` (layer3, layer4), `head`."""
    body, head = _body_head(model)
    return [_params(body[:6]), _params(body[6:]), _params(head)]


def body_head_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Two layer groups: the body and the head."""
    return [_params(m) for m in _body_head(model)]


def _features_split(k: int) -> Callable[[nn.Module], list[list[nn.Parameter]]]:
    """fastai's split of a `features` body (squeezenet, densenet, vgg, alexnet): `body[0][:k]`,
    `body[0][k:]`, head."""
    def split(model: nn.Module) -> list[list[nn.Parameter]]:
        body, head = _body_head(model)
        feats = cast(nn.Sequential, body[0])
        return [_params(feats[:k]), _params(feats[k:]), _params(head)]

    split.__name__ = f"features_split_{k}"
    return split


@dataclass(frozen=True)
class ArchMeta:
    """How to cut, split and normalize one architecture (`cut=None`: found automatically), and which
    torchvision weights `pretrained=True` means ("DEFAULT", or "IMAGENET1K_V1": what the builder's legacy
    `pretrained=True` gives, fastai's choice for archs outside its `model_meta`)."""

    cut: int | Callable[[nn.Module], nn.Module] | None
    split: Callable[[nn.Module], list[list[nn.Parameter]]]
    group_names: tuple[str, ...]
    stats: tuple[tuple[float, ...], tuple[float, ...]] = IMAGENET_STATS
    weights: str = "IMAGENET1K_V1"


RESNET_META = ArchMeta(cut=-2, split=resnet_split, group_names=("body[:6]", "body[6:]", "head"), weights="DEFAULT")
DEFAULT_META = ArchMeta(cut=None, split=body_head_split, group_names=("body", "head"))
_RESNETS = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
            "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2")


def _features_meta(cut: int, k: int) -> ArchMeta:
    return ArchMeta(cut=cut, split=_features_split(k), group_names=(f"body[0][:{k}]", f"body[0][{k}:]", "head"),
                    weights="DEFAULT")


# fastai's model_meta: ResNets (and, here, every torchvision ResNet), squeezenet, densenet, vgg_bn, alexnet
model_meta: dict[str, ArchMeta] = {
    **{name: RESNET_META for name in _RESNETS},
    **{name: _features_meta(-1, 5) for name in ("squeezenet1_0", "squeezenet1_1")},
    **{name: _features_meta(-1, 7) for name in ("densenet121", "densenet161", "densenet169", "densenet201")},
    **{name: _features_meta(-2, 22) for name in ("vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")},
    "alexnet": _features_meta(-2, 6),
}
_ARCHS: dict[str, Callable[..., nn.Module]] = {}


def register_arch(name: str, builder: Callable[..., nn.Module], meta: ArchMeta | None = None) -> None:
    """Make `builder` known by `name` (for `vision_learner(dls, name)` and `load_learner`), with metadata."""
    _ARCHS[name] = builder
    if meta is not None:
        model_meta[name] = meta


def resnet10(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> ResNet:
    """A small torchvision ResNet (BasicBlock, one block per stage, 4.9M parameters); no published weights."""
    if weights is not None:
        raise ValueError("resnet10 has no torchvision weights; pass your own file: "
                         "vision_learner(dls, 'resnet10', weights='resnet10_weights.pth')")
    return ResNet(BasicBlock, [1, 1, 1, 1], **kwargs)


register_arch("resnet10", resnet10, RESNET_META)


def _registered(name: str) -> Callable[..., nn.Module] | None:
    return _ARCHS.get(name)


def _torchvision(name: str) -> Callable[..., nn.Module] | None:
    try:
        return torchvision.models.get_model_builder(name.removeprefix(TORCHVISION_PREFIX))
    except ValueError:
        return None


def _timm(name: str) -> Callable[..., nn.Module] | None:
    return timm_arch(name)


TORCHVISION_PREFIX = "torchvision/"
# name -> builder or None, tried in order: registered names, timm's registry (fastai's rule), torchvision's.
ARCH_RESOLVERS: list[Callable[[str], Callable[..., nn.Module] | None]] = [_registered, _timm, _torchvision]
ARCH_SOURCES: dict[str, Callable[[str], Callable[..., nn.Module] | None]] = {
    "registered": _registered, "timm": _timm, "torchvision": _torchvision}
"""Each source of `ARCH_RESOLVERS` by name: an export records where its arch came from and is rebuilt from there."""


def known_archs() -> list[str]:
    """Every architecture name `vision_learner` accepts (timm's too when it is installed)."""
    return sorted(set(_ARCHS) | set(torchvision.models.list_models(torchvision.models)) | set(timm_names()))


def arch_source(builder: Callable[..., nn.Module]) -> str:
    """Where a builder comes from: "timm", "registered" (`register_arch`) or "torchvision" (any other function)."""
    if isinstance(builder, TimmArch):
        return "timm"
    return "registered" if any(b is builder for b in _ARCHS.values()) else "torchvision"


def resolve_arch(arch: str | Callable[..., nn.Module], source: str | None = None
                 ) -> tuple[str, Callable[..., nn.Module]]:
    """(name, builder) for a builder function or a name: registered here, in timm's registry, or in
    torchvision.models (in that order, fastai's rule; `source` picks one of `ARCH_SOURCES`)."""
    if isinstance(arch, nn.Module):
        raise TypeError(f"arch is a model instance ({type(arch).__name__}); vision_learner takes timm model "
                        "instances, otherwise pass a builder (e.g. resnet34) or a name")
    if callable(arch):
        return getattr(arch, "__name__", type(arch).__name__), arch
    if not isinstance(arch, str):
        raise TypeError(f"arch must be a builder (e.g. torchvision.models.resnet34) or its name, not "
                        f"{type(arch).__name__}")
    resolvers = ARCH_RESOLVERS if source is None else [ARCH_SOURCES[source]]
    for resolve in resolvers:
        builder = resolve(arch)
        if builder is not None:
            if isinstance(builder, TimmArch):
                return builder.name, builder
            return arch.removeprefix(TORCHVISION_PREFIX), builder
    raise ValueError(unknown_arch_message(arch, source))


def resolve_torchvision(arch: str | Callable[..., nn.Module]) -> tuple[str, Callable[..., nn.Module]]:
    """`resolve_arch` among registered names and torchvision's only (what exports without a `source` meant)."""
    if not isinstance(arch, str):
        return resolve_arch(arch)
    for src in ("registered", "torchvision"):
        builder = ARCH_SOURCES[src](arch)
        if builder is not None:
            return arch, builder
    raise ValueError(unknown_arch_message(arch, "torchvision"))


def unknown_arch_message(arch: str, source: str | None = None) -> str:
    """`unknown architecture 'x'; did you mean ...` with close names from torchvision and timm, each labelled."""
    import difflib

    pools = {"registered": sorted(_ARCHS), "torchvision": torchvision.models.list_models(torchvision.models),
             "timm": timm_names()}
    if source is not None:  # registered names go with torchvision's (both are builder functions)
        pools = {k: v for k, v in pools.items() if k == source or (source == "torchvision" and k == "registered")}
    close = []
    for src, names in pools.items():
        close += [(difflib.SequenceMatcher(None, arch, n).ratio(), n, src)
                  for n in difflib.get_close_matches(arch, names, n=5, cutoff=0.6)]
    in_pool = {src: set(names) for src, names in pools.items()}
    by_name: dict[str, list[str]] = {}
    for _, n, _src in sorted(close, key=lambda t: -t[0]):  # each name labelled with every library that has it
        by_name.setdefault(n, [src for src in pools if n in in_pool[src]])
    shown = [f"{n} ({', '.join(srcs)})" for n, srcs in list(by_name.items())[:8]]
    hint = f"did you mean {', '.join(shown)}? " if shown else ""
    where = {"timm": "timm's registry", "torchvision": "torchvision.models or the registered names",
             "registered": "the registered names"}.get(source or "") or (
        "the registered names, timm's registry or torchvision.models" if pools["timm"] else
        "the registered names or torchvision.models (timm is not installed: pip install 'minifastai[timm]')")
    return (f"unknown architecture {arch!r}: not a name in {where}; {hint}Pass a builder such as resnet34, a "
            "name from torchvision.models.list_models() or timm.list_models(), or register your own with "
            "register_arch(name, builder)")


def arch_meta(name: str, model: nn.Module) -> ArchMeta:
    """Metadata for an architecture: by name, then ResNet by class, else (body, head) with automatic cut."""
    if name in model_meta:
        return model_meta[name]
    return RESNET_META if isinstance(model, ResNet) else DEFAULT_META


def _body_state(full: nn.Module, body: nn.Module, sd: dict, source: str, arch: str) -> dict:
    """Map a state dict onto the body's keys: torchvision keys (`layer1.0.conv1.weight`), minifastai model
    keys (`0.4.0.conv1.weight`) or body keys (`4.0.conv1.weight`). Classifier/head keys are ignored."""
    body_sd = body.state_dict(keep_vars=True)
    full_sd = full.state_dict(keep_vars=True)
    by_id = {id(t): k for k, t in full_sd.items()}
    to_full = {k: by_id.get(id(t)) for k, t in body_sd.items()}
    candidates = {
        "torchvision (full model)": {k: fk for k, fk in to_full.items() if fk is not None},
        "minifastai (body, head)": {k: f"0.{k}" for k in body_sd},
        "body": {k: k for k in body_sd},
    }
    fmt, mapping = max(candidates.items(), key=lambda kv: sum(v in sd for v in kv[1].values()))
    missing = [src for src in mapping.values() if src not in sd]
    if len(mapping) < len(body_sd):
        missing += [k for k in body_sd if k not in mapping]
    bad = [f"{src}: file {tuple(sd[src].shape)} vs model {tuple(body_sd[k].shape)}"
           for k, src in mapping.items() if src in sd and sd[src].shape != body_sd[k].shape]
    used = set(mapping.values())
    known_extra = set(full_sd) if fmt.startswith("torchvision") else {k for k in sd if k.startswith("1.")}
    unexpected = [k for k in sd if k not in used and k not in known_extra]
    if missing or bad or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if bad:
            parts.append(f"{len(bad)} shape mismatches (e.g. {bad[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        raise ValueError(f"{source} does not fit the body of {arch} ({'; '.join(parts)}; read as {fmt} "
                         "keys). Check that the weights were saved from the same architecture.")
    return {k: sd[src] for k, src in mapping.items()}



def vision_body(arch: str | Callable[..., nn.Module], weights: dict | None = None,
                cut: int | Callable | None = None, weights_source: str | None = None
                ) -> tuple[nn.Sequential, ArchMeta, int]:
    """(body, the architecture's metadata, the body's output channels) for a torchvision CNN (or a registered
    builder); `weights` (a state dict; None: random) go into the body."""
    name, builder = resolve_arch(arch) if not isinstance(arch, str) else resolve_torchvision(arch)
    full = builder(weights=None)
    if isinstance(full, (torchvision.models.VisionTransformer, torchvision.models.SwinTransformer)):
        raise ValueError(f"{name} is a transformer, not a CNN: vision_learner builds torchvision CNN bodies; "
                         "for transformers use a timm transformer (e.g. vision_learner(dls, 'vit_tiny_patch16_224', "
                         "img_size=224)) or Learner(dls, model, splitter=...) with your own head")
    meta = arch_meta(name, full)
    body = create_body(full, cut=meta.cut if cut is None else cut)
    if weights is not None:
        body.load_state_dict(_body_state(full, body, weights, weights_source or "the given state dict", name))
    return body, meta, num_features(body)


def build_vision_model(arch: str | Callable[..., nn.Module], n_out: int, weights: dict | None = None,
                       cut: int | Callable | None = None, lin_ftrs: Sequence[int] | None = None,
                       ps: float | Sequence[float] = 0.5, concat_pool: bool = True,
                       weights_source: str | None = None,
                       check_head: Callable[[int], None] | None = None,
                       y_range: tuple[float, float] | None = None) -> tuple[nn.Sequential, ArchMeta]:
    """`nn.Sequential(body, head)` for `arch` and its metadata, as `vision_learner` and `load_learner` build it;
    `weights` (a state dict; None: random) go into the body.

    `check_head(nf)` runs once the body's number of features is known and before the head is built (an
    export checks its declared head sizes against its stored tensors there).
    """
    body, meta, nf = vision_body(arch, weights, cut, weights_source)
    if check_head is not None:
        check_head(nf)
    head = create_head(nf, n_out, lin_ftrs, ps, concat_pool=concat_pool, y_range=y_range)
    return nn.Sequential(body, head), meta


def _weights_enum_by_name(builder: Callable, name: str) -> Any:
    """torchvision's weights enum member called `name` (as torchvision builders accept), else `name` unchanged."""
    prefix, _, member = name.rpartition(".")
    try:
        enum = torchvision.models.get_model_weights(builder)
        return enum[member] if prefix in ("", enum.__name__) else name
    except (ValueError, KeyError, AttributeError):
        return name


def default_weights(arch: str | Callable[..., nn.Module]) -> torchvision.models.WeightsEnum | None:
    """The torchvision weights `pretrained=True` loads, as fastai: `DEFAULT` for the archs in fastai's
    `model_meta` (ResNets, squeezenet, densenet, vgg_bn, alexnet), else `IMAGENET1K_V1` (what the builder's
    `pretrained=True` gives; e.g. mobilenet_v2-b0353104.pth). None when the arch has no weights. A name means
    torchvision's (or a registered) builder here."""
    name, builder = resolve_torchvision(arch)
    try:
        enum = torchvision.models.get_model_weights(builder)
    except (ValueError, KeyError, AttributeError):
        return None
    if not len(enum):
        return None
    choice = model_meta[name].weights if name in model_meta else DEFAULT_META.weights
    return enum[choice] if choice in enum.__members__ else enum.DEFAULT


def resolve_weights(arch: str | Callable[..., nn.Module], pretrained: bool, weights: Any
                    ) -> tuple[dict | None, str]:
    """(state dict or None, description of where it came from) for `vision_learner`'s arguments (torchvision
    builders and registered names)."""
    name, builder = resolve_torchvision(arch)
    if weights is None:
        if not pretrained:
            return None, "random"
        weights = default_weights(builder)
        if weights is None:
            raise ValueError(f"{name} has no torchvision pretrained weights: pass "
                             "weights='/path/to/file.pth' (a state dict) or pretrained=False")
    if not pretrained:
        raise ValueError("pretrained=False but weights= given: drop weights= for random weights, or drop "
                         "pretrained=False to load them")
    if isinstance(weights, str) and not Path(weights).expanduser().exists():
        weights = _weights_enum_by_name(builder, weights)  # "IMAGENET1K_V1", "DEFAULT", "ResNet18_Weights.X"
    if isinstance(weights, torchvision.models.WeightsEnum):
        return torchvision_state_dict(weights), repr(weights)
    if isinstance(weights, (str, os.PathLike)):
        return load_weights(weights), f"weights file {Path(weights).expanduser()}"
    if isinstance(weights, dict):
        return weights, "the given state dict"
    raise TypeError("weights= takes a torchvision weights enum (e.g. ResNet34_Weights.IMAGENET1K_V1), a file "
                    f"path or a state dict, not {type(weights).__name__}")


def __getattr__(name: str) -> Any:
    """fastai's `models.resnet18`: this module also gives torchvision's builders (and weights enums), as
    `fastai.vision.models` does (the xresnets are in `minifastai.vision.xresnet`)."""
    from . import tvm

    if name in tvm.__all__:
        return getattr(tvm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
