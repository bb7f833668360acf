"""Layer groups by stage: `vision_learner(..., splitter="stages")` gives one layer group per stage of the body,
then the head, each named by its modules (`layer3`, `stages.2`, `features[2:4]`, `head`).

- timm models: timm's own `group_matcher(coarse=True)` through `timm.models.group_parameters` (the stem, each
  stage or block, with the final norm or conv joined to the last one, as timm's layer decay does it).
- torchvision: ResNets (conv1+bn1, layer1..layer4), RegNets (stem, trunk_output.block1..), MobileNetV2/V3
  (stem, one group per run of blocks with the same output channels, the final conv with the last),
  EfficientNets (stem, each stage, the final conv with the last), ConvNeXt (stem, each stage with the
  downsampling before it). These match the grouping timm gives the same families.
"""
from __future__ import annotations

from collections import defaultdict
from typing import cast

from torch import nn

from .timm_models import TimmBody

__all__ = ["stage_groups", "stage_splitter", "stage_names", "STAGE_FAMILIES"]

STAGE_FAMILIES = ("timm models (through their group_matcher)", "ResNet", "RegNet", "MobileNetV2", "MobileNetV3",
                  "EfficientNet", "EfficientNetV2", "ConvNeXt")
"""The architectures `splitter="stages"` knows."""

Group = tuple[str, list[nn.Parameter]]


def _params(mods: list[nn.Module]) -> list[nn.Parameter]:
    return [p for m in mods for p in m.parameters()]


def _body_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    if not (isinstance(model, nn.Sequential) and len(model) == 2):
        raise ValueError("splitter='stages' needs vision_learner's model, nn.Sequential(body, head); got "
                         f"{type(model).__name__}")
    return model[0], model[1]


def stage_groups(model: nn.Module) -> list[Group]:
    """(name, parameters) of each stage of the body, then ("head", ...)."""
    body, head = _body_head(model)
    stages = timm_stages(body.model) if isinstance(body, TimmBody) else torchvision_stages(cast(nn.Sequential, body))
    return [*stages, ("head", list(head.parameters()))]


def stage_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """One layer group per stage of the body, then the head (see `stage_groups`)."""
    return [ps for _, ps in stage_groups(model)]


def stage_names(model: nn.Module) -> list[str]:
    """The name of each group `stage_splitter` makes, by its modules."""
    return [name for name, _ in stage_groups(model)]


# ---- timm -----------------------------------------------------------------------------------------------
def timm_stages(model: nn.Module) -> list[Group]:
    """timm's coarse grouping (`group_matcher(coarse=True)`): the stem, each stage (or block), in order."""
    from timm.models import group_parameters

    matcher = getattr(model, "group_matcher", None)
    try:
        spec = matcher(coarse=True) if callable(matcher) else None
    except NotImplementedError:
        spec = None
    if spec is None:
        raise ValueError(f"timm's {type(model).__name__} has no group_matcher, so splitter='stages' cannot find its "
                         "stages; pass splitter=<a function model -> list of parameter lists>")
    groups = group_parameters(model, spec)
    params = dict(model.named_parameters())
    owner = {n: lid for lid, names in groups.items() for n in names}
    lids_under: dict[str, set[int]] = defaultdict(set)
    for n, lid in owner.items():
        parts = n.split(".")
        for i in range(1, len(parts) + 1):
            lids_under[".".join(parts[:i])].add(lid)
    out = []
    for lid in sorted(groups):
        names = groups[lid]
        cover: list[str] = []
        for n in names:
            parts = n.split(".")
            prefix = next(p for p in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                          if lids_under[p] == {lid})
            if prefix not in cover:
                cover.append(prefix)
        out.append(("+".join(cover), [params[n] for n in names]))
    return out


# ---- torchvision --------------------------------------------------------------------------------------------
def _span(prefix: str, idx: list[int]) -> str:
    return f"{prefix}.{idx[0]}" if len(idx) == 1 else f"{prefix}[{idx[0]}:{idx[-1] + 1}]"


def torchvision_stages(body: nn.Sequential) -> list[Group]:
    """Stages of a torchvision body as `create_body` cuts it (ResNet, RegNet, MobileNet, EfficientNet, ConvNeXt)."""
    from torchvision.models import convnext, efficientnet, mobilenetv2, mobilenetv3, regnet

    kids = list(body)
    if (len(kids) == 8 and isinstance(kids[0], nn.Conv2d)
            and all(isinstance(k, nn.Sequential) for k in kids[4:])):  # conv1, bn1, relu, maxpool, layer1..4
        return [("conv1+bn1", _params(kids[:4]))] + [(f"layer{i}", _params([k])) for i, k in enumerate(kids[4:], 1)]
    if len(kids) == 2 and isinstance(kids[0], regnet.SimpleStemIN):
        return [("stem", _params(kids[:1]))] + [(f"trunk_output.{n}", _params([m]))
                                                for n, m in kids[1].named_children()]
    if len(kids) == 1 and isinstance(kids[0], nn.Sequential) and len(kids[0]) >= 3:
        feats = list(kids[0])
        mods = set(map(type, kids[0].modules()))
        if mods & {mobilenetv2.InvertedResidual, mobilenetv3.InvertedResidual}:
            spans: list[list[int]] = [[0]]
            prev = None
            for i, block in enumerate(feats[1:-1], 1):
                c = getattr(block, "out_channels", None)
                if c != prev or len(spans) == 1:
                    spans.append([])
                spans[-1].append(i)
                prev = c
            spans[-1].append(len(feats) - 1)  # the final 1x1 conv goes with the last stage (as timm groups it)
        elif mods & {efficientnet.MBConv, efficientnet.FusedMBConv}:
            spans = [[0]] + [[i] for i in range(1, len(feats) - 1)]
            spans[-1].append(len(feats) - 1)
        elif convnext.CNBlock in mods:  # stem, stage, (downsample, stage) x 3
            spans = [[0], [1]] + [[i, i + 1] for i in range(2, len(feats) - 1, 2)]
        else:
            spans = []
        if spans and sorted(i for s in spans for i in s) == list(range(len(feats))):
            return [(_span("features", s), _params([feats[i] for i in s])) for s in spans]
    raise ValueError("splitter='stages' knows the stages of " + ", ".join(STAGE_FAMILIES) + " (as vision_learner "
                     "cuts them, without cut=); for this body pass splitter=<a function model -> list of parameter "
                     "lists>, or use the default splitter")
