"""Vision: fine-tune torchvision CNNs (`vision_learner`) on image folders (`ImageDataLoaders`), offline.

The model is `nn.Sequential(body, head)`: the body is a torchvision model cut before its pooling and
classifier, the head is fastai's (concat pooling, then BatchNorm-Dropout-Linear blocks). ResNets split into
three layer groups (`body[:6]`, `body[6:]`, `head`), other architectures into (`body`, `head`).
"""
from __future__ import annotations

import os
import random
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset
from torchvision.models import ResNet
from torchvision.models.resnet import BasicBlock
from torchvision.transforms import v2

from .data import DataLoaders, default_device
from .learner import Learner

__all__ = [
    "IMAGENET_STATS", "AdaptiveConcatPool2d", "ArchMeta", "ImageDataLoaders", "WeightsUnavailableError",
    "aug_transforms", "cnn_learner", "create_body", "create_head", "create_vision_model", "load_weights",
    "model_meta", "read_image", "rebuild_learner", "register_arch", "resnet10", "vision_learner",
]

IMAGENET_STATS: tuple[tuple[float, ...], tuple[float, ...]] = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
DOWNLOAD_TIMEOUT = 15.0  # seconds without an answer before a weights download gives up (torch's has none)


# ================================================================================================
# Model: body, head, per-architecture metadata
# ================================================================================================
class AdaptiveConcatPool2d(nn.Module):
    """Adaptive max pooling and adaptive average pooling, concatenated on the channel axis (max first)."""

    def __init__(self, size: int | tuple[int, int] = 1) -> None:
        super().__init__()
        self.size = size
        self.mp, self.ap = nn.AdaptiveMaxPool2d(size), nn.AdaptiveAvgPool2d(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 2C, size, size)."""
        return torch.cat([self.mp(x), self.ap(x)], 1)


def create_head(nf: int, n_out: int, lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                concat_pool: bool = True, init: Callable[[torch.Tensor], Any] = nn.init.kaiming_normal_
                ) -> nn.Sequential:
    """fastai's head for a body with `nf` output channels: pool, flatten, BN1d-Dropout-Linear(no bias)-ReLU.

    Sizes are `[2*nf (nf without concat_pool), *lin_ftrs (default [512]), n_out]`; dropout defaults to
    `[ps/2, ..., ps]`; the last block has no ReLU. Linear weights get `init` (kaiming normal).
    """
    ftrs = [nf * 2 if concat_pool else nf, *([512] if lin_ftrs is None else lin_ftrs), n_out]
    n_blocks = len(ftrs) - 1
    if isinstance(ps, (int, float)):
        drops = [ps / 2] * (n_blocks - 1) + [ps]
    else:
        drops = list(ps)
        if len(drops) != n_blocks:
            raise ValueError(f"ps has {len(drops)} dropout values for {n_blocks} head blocks ({ftrs}); "
                             "give one per block or a single float")
    pool = AdaptiveConcatPool2d() if concat_pool else nn.AdaptiveAvgPool2d(1)
    layers: list[nn.Module] = [pool, nn.Flatten()]
    for i, (ni, no, p) in enumerate(zip(ftrs[:-1], ftrs[1:], drops)):
        layers += [nn.BatchNorm1d(ni)]
        if p:
            layers += [nn.Dropout(p)]
        lin = nn.Linear(ni, no, bias=False)
        init(lin.weight)
        layers += [lin]
        if i < n_blocks - 1:
            layers += [nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AvgPool2d, nn.MaxPool2d, AdaptiveConcatPool2d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _is_head_like(m: nn.Module) -> bool:
    """A trailing child that belongs to the classifier: a pooling layer, a block that ends with adaptive
    pooling (squeezenet's classifier), or a block without convolutions (avgpool, fc, classifier)."""
    mods = list(m.modules())
    leaves = [x for x in mods if not list(x.children())]
    adaptive = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, AdaptiveConcatPool2d)
    return (isinstance(m, _POOLS) or (bool(leaves) and isinstance(leaves[-1], adaptive))
            or not any(isinstance(x, _CONVS) for x in mods))


def create_body(model: nn.Module, cut: int | Callable[[nn.Module], nn.Module] | None = None) -> nn.Sequential:
    """The model without its pooling and classifier: `children[:cut]`, `cut(model)`, or (None) automatic.

    Automatic: drop the trailing children that pool or have no convolution (torchvision's avgpool/fc,
    classifier blocks). Models whose forward does more than run their children in order (e.g. Inception's
    auxiliary branch) need an explicit `cut`.
    """
    if callable(cut):
        body = cut(model)
        return body if isinstance(body, nn.Sequential) else nn.Sequential(body)
    children = list(model.children())
    if cut is None:
        cut = len(children)
        while cut > 0 and _is_head_like(children[cut - 1]):
            cut -= 1
    body = nn.Sequential(*children[:cut])
    if len(body) == 0:
        names = [n for n, _ in model.named_children()]
        raise ValueError(f"cutting {type(model).__name__} at {cut} leaves an empty body; pass cut= (an index "
                         f"into its children {names} or a function model -> body)")
    return body


def num_features(body: nn.Module) -> int:
    """Channels of the body's output, from one dummy forward pass (eval mode, no grad, mode restored)."""
    was_training = body.training
    body.eval()
    try:
        with torch.no_grad():
            for size in (64, 224):
                try:
                    out = body(torch.zeros(1, 3, size, size))
                    break
                except RuntimeError as e:
                    err = e
            else:
                raise ValueError(f"the body fails on a 3x224x224 input ({err}); pass cut= to cut the model "
                                 "elsewhere")
    finally:
        body.train(was_training)
    if out.ndim != 4:
        raise ValueError(f"the body outputs shape {tuple(out.shape)}, not (N, C, H, W) feature maps: "
                         "vision_learner needs a CNN body; pass cut= or build a Learner with your own model")
    return out.shape[1]


def _params(*mods: nn.Module) -> list[nn.Parameter]:
    return [p for m in mods for p in m.parameters()]


def resnet_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """ResNet layer groups: `body[:6]` (stem, layer1, layer2), `body[6:]` (layer3, layer4), `head`."""
    body, head = model[0], model[1]
    return [_params(body[:6]), _params(body[6:]), _params(head)]


def body_head_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """Two layer groups: the body and the head."""
    return [_params(model[0]), _params(model[1])]


@dataclass(frozen=True)
class ArchMeta:
    """How to cut, split and normalize for one architecture (`cut=None`: find the cut automatically)."""

    cut: int | Callable[[nn.Module], nn.Module] | None
    split: Callable[[nn.Module], list[list[nn.Parameter]]]
    group_names: tuple[str, ...]
    stats: tuple[tuple[float, ...], tuple[float, ...]] = IMAGENET_STATS


RESNET_META = ArchMeta(cut=-2, split=resnet_split, group_names=("body[:6]", "body[6:]", "head"))
DEFAULT_META = ArchMeta(cut=None, split=body_head_split, group_names=("body", "head"))
_RESNETS = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
            "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2")
model_meta: dict[str, ArchMeta] = {name: RESNET_META for name in _RESNETS}
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


def resolve_arch(arch: str | Callable[..., nn.Module]) -> tuple[str, Callable[..., nn.Module]]:
    """(name, builder) for a builder function or a name (registered here or in torchvision.models)."""
    if callable(arch):
        return getattr(arch, "__name__", type(arch).__name__), arch
    if arch in _ARCHS:
        return arch, _ARCHS[arch]
    try:
        return arch, torchvision.models.get_model_builder(arch)
    except ValueError:
        known = sorted(set(_ARCHS) | set(torchvision.models.list_models(torchvision.models)))
        raise ValueError(f"unknown architecture {arch!r}; use a torchvision builder such as "
                         f"torchvision.models.resnet34 or one of these names: {', '.join(known)}") from None


def arch_meta(name: str, model: nn.Module) -> ArchMeta:
    """Metadata for an architecture: by name, then ResNet by class, else (body, head) with automatic cut."""
    if name in model_meta:
        return model_meta[name]
    return RESNET_META if isinstance(model, ResNet) else DEFAULT_META


# ================================================================================================
# Weights: torchvision enums (download once, with a timeout), local files, state dicts
# ================================================================================================
class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be downloaded (no network) or read from the torch hub cache."""


def _offline_hint(fname: str, cache: Path) -> str:
    return (f"Offline? Download {fname} on a machine with network, then either copy it to {cache} "
            "(torch hub's cache, used automatically) or pass the file: "
            f"vision_learner(dls, arch, weights='/path/to/{fname}'). "
            "weights= also takes a state dict; pretrained=False starts from random weights instead.")


def torchvision_state_dict(weights: torchvision.models.WeightsEnum, timeout: float | None = None) -> dict:
    """A torchvision weights enum's state dict: from torch hub's cache, else downloaded (with a timeout)."""
    url = weights.url
    fname = os.path.basename(urlparse(url).path)
    cache = Path(torch.hub.get_dir()) / "checkpoints" / fname
    if cache.exists():
        return load_weights(cache)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT if timeout is None else timeout)
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, check_hash=True,
                                                  weights_only=True)
    except Exception as e:  # URLError, timeouts, HTTP errors, hash mismatch: all mean "could not get them"
        raise WeightsUnavailableError(f"could not download {weights!r} from {url} ({type(e).__name__}: {e}). "
                                      + _offline_hint(fname, cache)) from e
    finally:
        socket.setdefaulttimeout(old)


def load_weights(path: str | os.PathLike) -> dict:
    """A state dict from a file (`torch.load(weights_only=True)`), with errors that name the file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} does not exist; pass the path of a state dict saved "
                                "with torch.save(model.state_dict(), path) (as torchvision's .pth files are)")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"could not read weights file {path}: it is damaged or not a PyTorch state dict "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if isinstance(sd, dict) and isinstance(sd.get("model"), dict):  # minifastai checkpoint or export
        sd = sd["model"]
    elif isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"weights file {path} does not hold a state dict (a dict of parameter name -> "
                         "tensor)")
    return sd


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


def create_vision_model(arch: str | Callable[..., nn.Module], n_out: int, weights: Any = None,
                        cut: int | Callable | None = None, lin_ftrs: Sequence[int] | None = None,
                        ps: float | Sequence[float] = 0.5, concat_pool: bool = True,
                        weights_source: str | None = None) -> tuple[nn.Sequential, ArchMeta]:
    """`nn.Sequential(body, head)` for `arch`; `weights` (a state dict; None: random) go into the body."""
    name, builder = resolve_arch(arch)
    full = builder(weights=None)
    if isinstance(full, (torchvision.models.VisionTransformer, torchvision.models.SwinTransformer)):
        raise ValueError(f"{name} is a transformer, not a CNN: vision_learner builds CNN bodies; use "
                         "Learner(dls, model, splitter=...) with your own head")
    meta = arch_meta(name, full)
    body = create_body(full, meta.cut if cut is None else cut)
    if weights is not None:
        body.load_state_dict(_body_state(full, body, weights, weights_source or "the given state dict", name))
    head = create_head(num_features(body), n_out, lin_ftrs, ps, concat_pool)
    return nn.Sequential(body, head), meta


def _weights_enum_by_name(builder: Callable, name: str) -> Any:
    """torchvision's weights enum member called `name` (as torchvision builders accept), else `name` unchanged."""
    prefix, _, member = name.rpartition(".")
    try:
        enum = torchvision.models.get_model_weights(builder)
        return enum[member] if prefix in ("", enum.__name__) else name
    except (ValueError, KeyError, AttributeError):
        return name


def _resolve_weights(name: str, builder: Callable, pretrained: bool, weights: Any) -> tuple[dict | None, str]:
    """(state dict or None, description of where it came from)."""
    if weights is None:
        if not pretrained:
            return None, "random"
        try:
            enum = torchvision.models.get_model_weights(builder)
        except (ValueError, KeyError, AttributeError):
            enum = None
        if enum is None or not len(enum):
            raise ValueError(f"{name} has no torchvision pretrained weights: pass "
                             "weights='/path/to/file.pth' (a state dict) or pretrained=False")
        weights = enum.DEFAULT
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


def vision_learner(dls: DataLoaders, arch: str | Callable[..., nn.Module], pretrained: bool = True,
                   weights: Any = None, n_out: int | None = None, cut: int | Callable | None = None,
                   splitter: Callable | None = None, normalize: bool = True,
                   lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                   concat_pool: bool = True, loss_func: Callable | None = None,
                   **learner_kwargs: Any) -> Learner:
    """A Learner for a torchvision CNN with fastai's head; pretrained models are frozen and normalized.

    `weights=` takes a torchvision weights enum, a local file or a state dict (default with pretrained=True:
    torchvision's DEFAULT weights, from the torch hub cache or downloaded once). ResNets get three layer
    groups (`body[:6]`, `body[6:]`, `head`), other archs (`body`, `head`).
    """
    name, builder = resolve_arch(arch)
    if n_out is None:
        if getattr(dls, "vocab", None) is None:
            raise ValueError("dls has no vocab to count classes from; pass n_out= (the number of outputs)")
        n_out = len(dls.vocab)
    sd, source = _resolve_weights(name, builder, pretrained, weights)
    model, meta = create_vision_model(builder, n_out, sd, cut, lin_ftrs, ps, concat_pool, source)
    is_pretrained = sd is not None
    if normalize and is_pretrained:
        if isinstance(dls, ImageDataLoaders):
            dls.normalize(*meta.stats)
        else:
            warnings.warn("dls is not an ImageDataLoaders, so vision_learner cannot add the pretrained "
                          "model's normalization: normalize inputs yourself with "
                          f"mean={meta.stats[0]}, std={meta.stats[1]}", stacklevel=2)
    if splitter is None:
        splitter = meta.split
        learner_kwargs.setdefault("group_names", list(meta.group_names))
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss() if loss_func is None else loss_func,
                    splitter=splitter, **learner_kwargs)
    learn.export_info = {"module": "minifastai.vision", "arch": name, "n_out": n_out,
                         "cut": cut if isinstance(cut, int) else None, "custom_cut": callable(cut),
                         "lin_ftrs": None if lin_ftrs is None else list(lin_ftrs),
                         "ps": ps if isinstance(ps, (int, float)) else list(ps), "concat_pool": concat_pool,
                         "weights": source}
    if is_pretrained:
        learn.freeze()
    return learn


cnn_learner = vision_learner


def rebuild_learner(state: dict, device: Any = "cpu") -> Learner:
    """Rebuild an exported vision learner (architecture, classes, transforms); load_learner loads weights."""
    info = state["builder"]
    if info.get("custom_cut"):
        raise ValueError("this learner was built with a custom cut function, which an export cannot store: "
                         "load it with load_learner(path, model=<the same nn.Sequential(body, head)>)")
    try:
        name, builder = resolve_arch(info["arch"])
    except ValueError as e:
        arch = info["arch"]
        raise ValueError(f"{e}. If {arch!r} is your own builder, call register_arch({arch!r}, builder) "
                         "before load_learner, or pass load_learner(path, model=...)") from None
    model, meta = create_vision_model(builder, info["n_out"], None, info.get("cut"), info.get("lin_ftrs"),
                                      info.get("ps", 0.5), info.get("concat_pool", True))
    dls = ImageDataLoaders.from_export_state(state["dls"], device=device)
    act = state.get("activation")
    loss = {"softmax": nn.CrossEntropyLoss(), "sigmoid": nn.BCEWithLogitsLoss()}.get(act)
    learn = Learner(dls, model, loss_func=loss, splitter=meta.split, activation=act)
    names = state.get("group_names")
    if names and len(names) == learn.n_groups:
        learn.group_names = list(names)
    learn.export_info = dict(info)
    return learn


# ================================================================================================
# Data: image folders, transforms (torchvision.transforms.v2), augmentation
# ================================================================================================
def read_image(path: str | os.PathLike) -> torch.Tensor:
    """An image file as a uint8 RGB tensor (3, H, W), decoded with PIL (as torchvision's datasets do)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        with Image.open(path) as im:
            return v2.functional.pil_to_tensor(im.convert("RGB"))
    except Exception as e:
        raise RuntimeError(f"could not read image {path}: {type(e).__name__}: {e}. Delete or replace the "
                           "file.") from e


def to_image_tensor(item: Any) -> torch.Tensor:
    """A path, PIL image, (H, W[, C]) numpy array or (C, H, W) tensor as a 3-channel (3, H, W) tensor."""
    if isinstance(item, (str, os.PathLike)):
        return read_image(item)
    if isinstance(item, Image.Image):
        return v2.functional.pil_to_tensor(item.convert("RGB"))
    if not isinstance(item, torch.Tensor):
        try:
            import numpy as np

            arr = np.asarray(item)
        except Exception:
            arr = None
        if arr is None or arr.ndim not in (2, 3):
            raise TypeError(f"cannot read an image from a {type(item).__name__}: pass a file path, a PIL "
                            "image or a (C, H, W) tensor")
        t = torch.from_numpy(arr.copy())
        item = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    if item.ndim == 2:
        item = item[None]
    if item.ndim != 3 or item.shape[0] not in (1, 3, 4):
        raise ValueError("an image tensor must have shape (C, H, W) with 1, 3 or 4 channels, got "
                         f"{tuple(item.shape)}")
    return item.expand(3, -1, -1) if item.shape[0] == 1 else item[:3]


_AUG_NAMES = {"ColorJitter", "AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix", "ElasticTransform",
              "GaussianBlur", "GaussianNoise", "JPEG"}


def is_augmentation(t: Any) -> bool:
    """Random transforms (torchvision's `Random*`, ColorJitter, AutoAugment, ...) augment training data."""
    name = type(t).__name__
    return name.startswith("Random") or name in _AUG_NAMES


def _valid_version(t: Any) -> list:
    """What a transform becomes for validation/inference: random crops become center crops, other augmentation
    is dropped, deterministic transforms stay."""
    if isinstance(t, v2.Compose):
        return [x for s in t.transforms for x in _valid_version(s)]
    if isinstance(t, v2.RandomResizedCrop):
        return [v2.Resize(min(t.size), antialias=True), v2.CenterCrop(list(t.size))]
    if isinstance(t, v2.RandomCrop):
        return [v2.CenterCrop(list(t.size))]
    return [] if is_augmentation(t) else [t]


def _listify(t: Any) -> list:
    if t is None:
        return []
    if isinstance(t, v2.Compose):
        return list(t.transforms)
    return list(t) if isinstance(t, (list, tuple)) else [t]


def aug_transforms(mult: float = 1.0, do_flip: bool = True, flip_vert: bool = False,
                   max_rotate: float = 10.0, min_zoom: float = 1.0, max_zoom: float = 1.1,
                   max_lighting: float = 0.2, max_warp: float = 0.2, p_affine: float = 0.75,
                   p_lighting: float = 0.75) -> list:
    """fastai-style default augmentation as torchvision v2 transforms (for `batch_tfms`; training set only).

    Flip, rotation up to `max_rotate` degrees and zoom up to `max_zoom` (with probability `p_affine`),
    perspective warp `max_warp`, brightness/contrast `max_lighting` (with probability `p_lighting`).
    Each image of a batch gets its own random parameters.
    """
    tfms: list = []
    if do_flip:
        tfms.append(v2.RandomHorizontalFlip(0.5))
    if flip_vert:
        tfms.append(v2.RandomVerticalFlip(0.5))
    if max_rotate or max_zoom > 1 or min_zoom < 1:
        tfms.append(v2.RandomApply([v2.RandomAffine(degrees=max_rotate * mult, scale=(min_zoom, max_zoom))],
                                   p=p_affine))
    if max_warp:
        warp = v2.RandomPerspective(distortion_scale=max_warp * mult, p=1.0)
        tfms.append(v2.RandomApply([warp], p=p_affine))
    if max_lighting:
        m = max_lighting * mult
        tfms.append(v2.RandomApply([v2.ColorJitter(brightness=m, contrast=m)], p=p_lighting))
    return tfms


# ---- transforms as plain data (for export files loaded with weights_only=True) ---------------------------
def _tfm_to_dict(t: Any) -> dict | None:
    if isinstance(t, v2.Resize):
        return {"name": "Resize", "size": t.size, "interpolation": getattr(t.interpolation, "value", t.interpolation),
                "max_size": t.max_size, "antialias": t.antialias}
    if isinstance(t, v2.CenterCrop):
        return {"name": "CenterCrop", "size": list(t.size)}
    if isinstance(t, v2.Normalize):
        return {"name": "Normalize", "mean": list(t.mean), "std": list(t.std)}
    if isinstance(t, v2.Grayscale):
        return {"name": "Grayscale", "num_output_channels": t.num_output_channels}
    if isinstance(t, v2.Identity) or (isinstance(t, v2.ToDtype) and t.scale):
        return {"name": "Identity"}  # batches become float in [0, 1] anyway
    return None


def _tfm_from_dict(d: dict) -> Any:
    kw = {k: v for k, v in d.items() if k != "name"}
    if d["name"] == "Resize":
        kw["interpolation"] = v2.InterpolationMode(kw["interpolation"])
    return getattr(v2, d["name"])(**kw)


class ImagePipeline:
    """Item transforms (uint8 images, in the dataset) and batch transforms (float batches, on the device).

    Augmentation applies to the training set only, per image; the valid set gets the deterministic version;
    normalization (added by `vision_learner` for pretrained models) comes last.
    """

    def __init__(self, item_tfms: Any = None, batch_tfms: Any = None, norm: tuple | None = None) -> None:
        self.train_item = _listify(item_tfms)
        self.valid_item = [x for t in self.train_item for x in _valid_version(t)]
        self.train_batch = _listify(batch_tfms)
        self.valid_batch = [x for t in self.train_batch for x in _valid_version(t)]
        self.norm, self.norm_in_tfms = norm, False
        self._norm_cache: dict = {}
        if norm is None:  # a Normalize among the batch transforms counts as the normalization
            for t in self.valid_batch:
                if isinstance(t, v2.Normalize):
                    self.norm = (tuple(t.mean), tuple(t.std))
                    self.norm_in_tfms = True

    def item(self, img: torch.Tensor, train: bool) -> torch.Tensor:
        """Apply the item transforms to one (3, H, W) image."""
        for t in self.train_item if train else self.valid_item:
            img = t(img)
        return img

    def batch(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """uint8 -> float in [0, 1], batch transforms (augmentation per image in training), normalization."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        for t in self.train_batch if train else self.valid_batch:
            if train and is_augmentation(t):
                x = torch.stack([t(xi) for xi in x])
            elif not (self.norm_in_tfms and isinstance(t, v2.Normalize)):
                x = t(x)
        if self.norm is not None:
            key = (x.device, x.dtype)
            if key not in self._norm_cache:
                self._norm_cache[key] = tuple(torch.tensor(s, device=x.device, dtype=x.dtype)[:, None, None]
                                              for s in self.norm)
            mean, std = self._norm_cache[key]
            x = (x - mean) / std
        return x

    def export_state(self) -> dict:
        """The inference (valid) transforms and normalization as plain data; unstorable transforms warn."""
        items, batch, skipped = [], [], []
        for src, dst in ((self.valid_item, items), (self.valid_batch, batch)):
            for t in src:
                if self.norm_in_tfms and isinstance(t, v2.Normalize):
                    continue
                d = _tfm_to_dict(t)
                (dst.append(d) if d is not None else skipped.append(type(t).__name__))
        if skipped:
            warnings.warn(f"the export cannot store the transforms {skipped} (only Resize, CenterCrop, "
                          "Normalize and Grayscale are stored): load_learner's predict will not apply them, "
                          "so apply them to inputs yourself", stacklevel=4)
        norm = None if self.norm is None else [list(self.norm[0]), list(self.norm[1])]
        return {"item_tfms": items, "batch_tfms": batch, "normalize": norm}

    @classmethod
    def from_export_state(cls, state: dict) -> ImagePipeline:
        """The inverse of `export_state`."""
        norm = state.get("normalize")
        return cls([_tfm_from_dict(d) for d in state.get("item_tfms", [])],
                   [_tfm_from_dict(d) for d in state.get("batch_tfms", [])],
                   None if norm is None else (tuple(norm[0]), tuple(norm[1])))


class ImageListDataset(Dataset):
    """(image file, label index) pairs read with torchvision and the pipeline's item transforms."""

    def __init__(self, samples: Sequence[tuple[str, int]], pipeline: ImagePipeline, train: bool) -> None:
        self.samples, self.pipeline, self.train = list(samples), pipeline, train

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        img = self.pipeline.item(read_image(path), self.train)
        return img, label


def collate_images(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images and labels; images of different sizes are an error that says how to resize them."""
    imgs, labels = zip(*batch)
    shapes = {tuple(x.shape) for x in imgs}
    if len(shapes) > 1:
        ex = ", ".join("x".join(map(str, s)) for s in sorted(shapes)[:3])
        raise RuntimeError(f"images in a batch have different sizes ({ex}): pass item_tfms that make them "
                           "equal, e.g. item_tfms=[v2.Resize(224), v2.CenterCrop(224)] or "
                           "v2.RandomResizedCrop(224)")
    return torch.stack(imgs), torch.tensor(labels)


class ImageDL:
    """A torch DataLoader whose batches are moved to the device and passed through the batch transforms."""

    def __init__(self, dl: DataLoader, pipeline: ImagePipeline, train: bool, device: torch.device) -> None:
        self.dl, self.pipeline, self.train, self.device = dl, pipeline, train, device

    @property
    def dataset(self) -> Dataset:
        """The underlying dataset."""
        return self.dl.dataset

    @property
    def sampler(self) -> Any:
        """The underlying DataLoader's sampler (distributed training sets its epoch)."""
        return self.dl.sampler

    def map_loader(self, f: Callable[[DataLoader], DataLoader]) -> ImageDL:
        """The same pipeline around `f(inner DataLoader)`; distributed training shards the inner loader so."""
        return ImageDL(f(self.dl), self.pipeline, self.train, self.device)

    def __len__(self) -> int:
        return len(self.dl)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        nb = self.device.type == "cuda"
        for x, y in self.dl:
            x = x.to(self.device, non_blocking=nb)
            yield self.pipeline.batch(x, self.train), y.to(self.device, non_blocking=nb)


def _class_folders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _samples(folder: Path, classes: list[str], what: str) -> list[tuple[str, int]]:
    """Images under `folder/<class>/` for each class present; empty class folders are errors naming them."""
    present = _class_folders(folder)
    if not present:
        loose = [f for f in os.listdir(folder) if f.lower().endswith(IMG_EXTENSIONS)]
        raise FileNotFoundError(f"{what} folder {folder} has no class folders" + (
            f" (it holds {len(loose)} images directly)" if loose else "") +
            f": expected {folder}/<class name>/<image files>")
    unknown = [c for c in present if c not in classes]
    if unknown:
        raise ValueError(f"{what} folder {folder} has classes that the training folder lacks: "
                         f"{[str(folder / c) for c in unknown]}")
    idx = {c: classes.index(c) for c in present}
    samples = make_dataset(str(folder), idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    found = {classes[i] for _, i in samples}
    empty = [str(folder / c) for c in present if c not in found]
    if empty:
        raise FileNotFoundError(f"no images in {', '.join(empty)} (image files end in "
                                f"{', '.join(IMG_EXTENSIONS)}); add images or remove the folder")
    return samples


class ImageDataLoaders(DataLoaders):
    """DataLoaders of images with a vocab of class names and a transform pipeline kept for inference."""

    def __init__(self, train: Any, valid: Any = None, device: torch.device | str | None = None,
                 vocab: Sequence[str] | None = None, pipeline: ImagePipeline | None = None) -> None:
        super().__init__(train, valid, device=device, n_inp=1, vocab=vocab)
        self.pipeline = pipeline or ImagePipeline()

    @property
    def device(self) -> torch.device:
        """Where batches go (their transforms run there too); setting it moves the loaders' output."""
        return self._device

    @device.setter
    def device(self, device: torch.device | str) -> None:
        self._device = torch.device(device)
        for dl in (self.train, self.valid):
            if isinstance(dl, ImageDL):
                dl.device = self._device

    @classmethod
    def from_folder(cls, path: str | os.PathLike, train: str = "train", valid: str = "valid",
                    valid_pct: float | None = None, seed: int | None = None, item_tfms: Any = None,
                    batch_tfms: Any = None, bs: int = 64, num_workers: int | None = None,
                    device: torch.device | str | None = None, shuffle: bool = True) -> ImageDataLoaders:
        """An ImageNet-style tree: `path/train/<class>/*.png` and `path/valid/<class>/*.png` (or `valid_pct`).

        With `valid_pct`, images of `path/train` (or of `path` when there is no train folder) are split at
        random (`seed`). `item_tfms` run per image on uint8 tensors (e.g. `v2.Resize((224, 224))`),
        `batch_tfms` per batch on float tensors in [0, 1] on the device (e.g. `aug_transforms()`); random
        transforms only touch the training set. `num_workers=None`: 0 on CPU, up to 8 with CUDA.
        """
        path = Path(path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"image folder {path} does not exist")
        train_dir = path / train
        if valid_pct is None:
            for d, what in ((train_dir, "train"), (path / valid, "valid")):
                if not d.is_dir():
                    raise FileNotFoundError(
                        f"{what} folder {d} does not exist (folders in {path}: {_class_folders(path)}); pass "
                        f"{what}='<folder name>', or valid_pct=0.2 to split {path / train} at random")
            vocab = _class_folders(train_dir)
            train_s = _samples(train_dir, vocab, "train")
            valid_s = _samples(path / valid, vocab, "valid")
        else:
            if not 0 < valid_pct < 1:
                raise ValueError(f"valid_pct={valid_pct} must be between 0 and 1 (e.g. 0.2)")
            src = train_dir if train_dir.is_dir() else path
            vocab = _class_folders(src)
            samples = _samples(src, vocab, "image")
            order = list(range(len(samples)))
            random.Random(seed).shuffle(order)
            n_valid = max(1, round(len(samples) * valid_pct))
            valid_s = [samples[i] for i in sorted(order[:n_valid])]
            train_s = [samples[i] for i in sorted(order[n_valid:])]
        pipeline = ImagePipeline(item_tfms, batch_tfms)
        dev = torch.device(device) if device is not None else default_device()
        if num_workers is None:
            num_workers = min(8, os.cpu_count() or 1) if dev.type == "cuda" else 0
        kw = {"num_workers": num_workers, "collate_fn": collate_images, "pin_memory": dev.type == "cuda",
              "persistent_workers": num_workers > 0}
        train_dl = DataLoader(ImageListDataset(train_s, pipeline, True), bs, shuffle=shuffle, **kw)
        valid_dl = DataLoader(ImageListDataset(valid_s, pipeline, False), bs * 2, **kw)
        return cls(ImageDL(train_dl, pipeline, True, dev), ImageDL(valid_dl, pipeline, False, dev), dev,
                   vocab, pipeline)

    @classmethod
    def from_export_state(cls, state: dict, device: Any = "cpu") -> ImageDataLoaders:
        """Inference-only dls (no loaders) with the classes and transforms stored by `export_state`."""
        return cls(None, None, device=device, vocab=state.get("vocab"),
                   pipeline=ImagePipeline.from_export_state(state))

    def normalize(self, mean: Sequence[float], std: Sequence[float]) -> ImageDataLoaders:
        """Normalize batches with these statistics (last batch transform) unless already normalized."""
        cur = self.pipeline.norm
        if cur is None:
            self.pipeline.norm, self.pipeline._norm_cache = (tuple(mean), tuple(std)), {}
        elif not (torch.allclose(torch.tensor(cur[0]), torch.tensor(mean, dtype=torch.float32)) and
                  torch.allclose(torch.tensor(cur[1]), torch.tensor(std, dtype=torch.float32))):
            warnings.warn(f"dls is already normalized with mean={cur[0]}, std={cur[1]}; keeping that rather "
                          f"than mean={tuple(mean)}, std={tuple(std)}", stacklevel=2)
        return self

    def item_to_batch(self, item: Any) -> tuple[torch.Tensor]:
        """A file path, PIL image or (C, H, W) tensor as a normalized batch of one image."""
        img = self.pipeline.item(to_image_tensor(item), train=False)
        return (self.pipeline.batch(img[None], train=False),)

    def export_state(self) -> dict:
        """Classes and the inference transforms, as plain data."""
        return {**super().export_state(), **self.pipeline.export_state()}

    def show_batch(self, n: int = 9, ds_idx: int = 0, ncols: int = 3, figsize: tuple | None = None) -> Any:
        """Plot `n` images of the first batch of the train (0) or valid (1) loader with their class names."""
        import matplotlib.pyplot as plt

        x, y = next(iter(self[ds_idx]))
        n = min(n, len(x))
        x = x[:n].float().cpu()
        if self.pipeline.norm is not None:
            mean, std = (torch.tensor(s)[:, None, None] for s in self.pipeline.norm)
            x = x * std + mean
        nrows = (n + ncols - 1) // ncols
        fig, axs = plt.subplots(nrows, ncols, figsize=figsize or (2 * ncols, 2 * nrows), squeeze=False)
        for i, ax in enumerate(axs.flat):
            ax.axis("off")
            if i < n:
                ax.imshow(x[i].permute(1, 2, 0).clamp(0, 1).numpy())
                ax.set_title(str(self.vocab[int(y[i])]) if self.vocab is not None else str(int(y[i])))
        fig.tight_layout()
        return fig
