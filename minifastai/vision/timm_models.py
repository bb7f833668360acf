"""timm backbones for `vision_learner`: a timm model as the body (`TimmBody`), fastai's head sized from the
features it outputs, normalization from its `pretrained_cfg`, and weights loaded offline through timm.

- Names come from timm's own registry (`timm.is_model`, `timm.list_models`): an export names a timm
  architecture and `load_learner` rebuilds it with `timm.create_model(name, pretrained=False, ...)`; nothing
  is imported by name.
- The body is `forward_features`. Models whose features are spatial maps (N, C, H, W) get fastai's pooling
  head, as in fastai; models whose features are tokens (ViT: (N, L, C)) or channels-last maps (Swin) are
  pooled by the model itself (`forward_head(pre_logits=True)`, i.e. its class token or average, and its final
  norm) and get fastai's head without the pooling layer (fastai's `create_timm_model` does the same through
  `model(x)` with `num_classes=0`).
- Modules the body's forward never uses (e.g. ConvNeXt's `head.norm`, MobileNetV3's `conv_head`, which
  belong to timm's classifier) are replaced by `nn.Identity`, so that every parameter of the model trains
  (fastai keeps them as dead weights).
- Weights: `weights=<file>` (.pth/.bin/.safetensors, read by timm's `load_state_dict`), a state dict, or
  `pretrained=True` (the file timm would download, found in the Hugging Face cache offline). They are loaded by
  timm (`pretrained_cfg_overlay`, which applies the model's own checkpoint filter), strictly: a missing or
  unexpected key is an error naming the file (timm alone loads non-strictly whenever the class count differs).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .heads import create_head
from .weights import WeightsUnavailableError, _offline_hint

__all__ = ["TimmBody", "TimmArch", "timm_arch", "timm_names", "build_timm_model", "TIMM_FORBIDDEN_KWARGS"]

TIMM_FORBIDDEN_KWARGS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir",
                         "num_classes", "features_only", "scriptable", "exportable", "no_jit", "weights")
"""`timm.create_model` keywords that `vision_learner` sets itself or that read files / change the model's kind;
they are refused as model keywords, and an export that names one is refused by `load_learner`."""

_PLAIN = (str, int, float, bool, type(None))


def _timm() -> Any:
    import timm

    return timm


def timm_available() -> bool:
    """Whether timm can be imported (the `minifastai[timm]` extra)."""
    try:
        _timm()
    except ImportError:
        return False
    return True


def timm_names() -> list[str]:
    """Every architecture name in timm's registry (empty without timm)."""
    try:
        return list(_timm().list_models())
    except ImportError:
        return []


class TimmArch:
    """A timm architecture by its registry name (and a pretrained tag, the weights `pretrained=True` means):
    `TimmArch("convnext_tiny")(**kwargs)` is `timm.create_model("convnext_tiny", **kwargs)`."""

    def __init__(self, name: str, tag: str | None = None) -> None:
        self.name = self.__name__ = name
        self.tag = tag

    def __call__(self, **kwargs: Any) -> nn.Module:
        """`timm.create_model(name, **kwargs)`."""
        return _timm().create_model(self.name, **kwargs)

    def __repr__(self) -> str:
        return f"TimmArch({self.name!r}{'' if self.tag is None else f', {self.tag!r}'})"


def timm_arch(name: str) -> TimmArch | None:
    """The timm architecture `name`, `"timm/<name>"` or `"<name>.<pretrained tag>"` from timm's registry (no
    `hf-hub:` or `local-dir:` sources), or None when timm does not know it or is not installed."""
    if not isinstance(name, str):
        return None
    name = name.removeprefix("timm/")
    base, _, tag = name.partition(".")
    if not base or not all(c.isalnum() or c == "_" for c in base + tag.replace("_", "")):
        return None
    try:
        timm = _timm()
    except ImportError:
        return None
    if base not in timm.list_models():
        return None
    if tag and f"{base}.{tag}" not in timm.list_pretrained(f"{base}.{tag}"):
        return None
    return TimmArch(base, tag or None)


def is_timm_model(model: Any) -> bool:
    """A timm model instance: an nn.Module with timm's `forward_features`, `forward_head` and `pretrained_cfg`."""
    return (isinstance(model, nn.Module) and callable(getattr(model, "forward_features", None))
            and callable(getattr(model, "forward_head", None))
            and isinstance(getattr(model, "pretrained_cfg", None), dict))


class TimmBody(nn.Module):
    """A timm model as a vision body: `forward_features(x)` (spatial maps for fastai's pooling head) when
    `needs_pool`, else the model's own pooled features `forward_head(forward_features(x), pre_logits=True)`."""

    def __init__(self, model: nn.Module, needs_pool: bool) -> None:
        super().__init__()
        self.model, self.needs_pool = model, needs_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps (N, C, H, W) or pooled features (N, C)."""
        f = self.model.forward_features(x)  # type: ignore[operator]
        return f if self.needs_pool else self.model.forward_head(f, pre_logits=True)  # type: ignore[operator]


# ---- checks ---------------------------------------------------------------------------------------
def check_model_kwargs(kwargs: dict, where: str = "") -> dict:
    """Keywords for `timm.create_model`: plain values (numbers, strings, booleans, None, lists of them) and none
    of `TIMM_FORBIDDEN_KWARGS`, so that an export can store them and `load_learner` can pass them back."""
    if not isinstance(kwargs, dict):
        raise ValueError(f"{where}model keywords must be a dict, got {type(kwargs).__name__}")
    for k, v in kwargs.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise ValueError(f"{where}model keyword {k!r} is not a name")
        if k in TIMM_FORBIDDEN_KWARGS:
            raise ValueError(f"{where}{k}= is not a keyword vision_learner passes on to timm.create_model: weights "
                             "come from vision_learner's pretrained=/weights=, the class count from n_out=")
        if not _is_plain(v):
            raise ValueError(f"{where}model keyword {k}={v!r} must be a plain value (number, string, bool, None or "
                             "a list of them), so that an export can rebuild the model")
    return dict(kwargs)


def _is_plain(v: Any) -> bool:
    if isinstance(v, (list, tuple)):
        return all(_is_plain(x) for x in v)
    return isinstance(v, _PLAIN)


# ---- weights --------------------------------------------------------------------------------------
def _classifier_keys(cfg: dict) -> set[str]:
    cls = cfg.get("classifier") or ()
    names = (cls,) if isinstance(cls, str) else tuple(cls)
    return {f"{c}.{p}" for c in names for p in ("weight", "bias")}


def _read_file(path: Path) -> dict:
    """A state dict from a file, read by timm's `load_state_dict` (safetensors or `torch.load(weights_only=True)`,
    EMA / `state_dict` / `model` entries, `module.` prefixes removed); errors name the file."""
    from timm.models import load_state_dict

    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist; pass the path of a timm state dict "
                                "(.pth, .bin or .safetensors, e.g. torch.save(model.state_dict(), path))")
    try:
        sd = load_state_dict(str(path))
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(f"could not read weights file {path}: it is damaged or not a state dict "
                         f"({type(e).__name__}: {first})") from e
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"weights file {path} does not hold a state dict (parameter name -> tensor)")
    return sd


def _hf_cached_file(cfg: dict) -> Path | None:
    """The weights file timm would download for `cfg`, if the Hugging Face cache already has it."""
    repo = cfg.get("hf_hub_id")
    if not repo:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    names = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else ["model.safetensors", "pytorch_model.bin"]
    repo_id, _, rev = str(repo).partition("@")
    for fname in names:
        found = try_to_load_from_cache(repo_id, fname, revision=rev or None)
        if isinstance(found, str) and os.path.isfile(found):
            return Path(found)
    return None


def _hf_offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    return bool(constants.HF_HUB_OFFLINE)


def resolve_timm_weights(arch: TimmArch, pretrained: bool, weights: Any, model_kwargs: dict
                         ) -> tuple[dict | None, str, str]:
    """(state dict or None, where it came from, the registry name to build) for `vision_learner`'s arguments:
    a file, a state dict, a pretrained tag (`weights="fb_in1k"`), or `pretrained=True` (timm's default tag)."""
    timm = _timm()
    name = arch.name
    if weights is None and not pretrained:
        return None, "random", name
    if weights is not None and not pretrained:
        raise ValueError("pretrained=False but weights= given: drop weights= for random weights, or drop "
                         "pretrained=False to load them")
    if isinstance(weights, dict):
        if not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
            raise ValueError("weights= as a dict must be a state dict (parameter name -> tensor)")
        return dict(weights), "the given state dict", name
    if isinstance(weights, os.PathLike) or (isinstance(weights, str) and (
            os.sep in weights or Path(weights).suffix in (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
            or Path(weights).expanduser().exists())):
        path = Path(weights).expanduser()
        return _read_file(path), f"weights file {path}", name
    if weights is not None and not isinstance(weights, str):
        raise TypeError(f"weights= takes a file path, a state dict or a pretrained tag of {name} (e.g. "
                        f"{_tags(name)[:1] or ['a tag']}), not {type(weights).__name__}")
    tag = weights if isinstance(weights, str) else arch.tag
    full = f"{name}.{tag}" if tag else name
    if tag and tag not in _tags(name):
        raise ValueError(f"{name} has no pretrained weights tagged {tag!r}; its tags: {_tags(name)}. weights= also "
                         "takes a local file or a state dict")
    if not timm.list_pretrained(full if tag else f"{name}*") and not tag:
        raise ValueError(f"{name} has no timm pretrained weights: pass weights='/path/to/file' (a state dict) or "
                         "pretrained=False")
    cfg = _pretrained_cfg(full)
    cached = _hf_cached_file(cfg)
    if cached is not None:
        return _read_file(cached), f"timm {full} weights (Hugging Face cache: {cached})", name
    if _hf_offline():
        raise WeightsUnavailableError(f"timm's {full} weights are not in the Hugging Face cache and the hub is "
                                      "offline (HF_HUB_OFFLINE). " + _offline_hint(name, cfg))
    try:  # timm's own download (the Hugging Face hub, or its URL)
        model = timm.create_model(full, pretrained=True, **model_kwargs)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise WeightsUnavailableError(f"could not get timm's {full} weights ({type(e).__name__}: {first}). "
                                      + _offline_hint(name, cfg)) from e
    return model.state_dict(), f"timm {full} weights", name


def _tags(name: str) -> list[str]:
    return [n.partition(".")[2] for n in _timm().list_pretrained(f"{name}.*") if n.partition(".")[0] == name]


def _pretrained_cfg(full: str) -> dict:
    from timm.models import get_pretrained_cfg

    cfg: Any = get_pretrained_cfg(full)
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg or {})


def model_cfg(model: nn.Module) -> dict:
    """A timm model's `pretrained_cfg` (the very dict, so that entries can be removed), or {}."""
    cfg = getattr(model, "pretrained_cfg", None)
    return cfg if isinstance(cfg, dict) else {}


# ---- building -------------------------------------------------------------------------------------
def _first_conv_in_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def _probe_sizes(model: nn.Module) -> list[tuple[int, int]]:
    """Input sizes to probe the body with: a fixed-size model's own size, else 64 px (then its default)."""
    pe = getattr(model, "patch_embed", None)
    size = getattr(pe, "img_size", None)
    if size is not None and getattr(pe, "strict_img_size", True) and not getattr(model, "dynamic_img_size", False):
        return [tuple(size)]
    h, w = tuple(model_cfg(model).get("input_size", (3, 224, 224)))[1:]
    return [(64, 64), (int(h), int(w))]


def _graph_params(out: torch.Tensor) -> set[int]:
    """Ids of the parameters that `out` was computed from (the autograd graph's leaves)."""
    used, seen, stack = set(), set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        var = getattr(node, "variable", None)
        if var is not None:
            used.add(id(var))
        stack.extend(f for f, _ in node.next_functions)
    return used


def probe_body(model: nn.Module) -> tuple[bool, int, set[int]]:
    """Run the model's features once (eval mode, every parameter tracked, all restored): (needs_pool, number of
    features the head gets, ids of the parameters the body uses). Works on the meta device."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    n_in = _first_conv_in_channels(model)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    err: Exception | None = None
    try:
        for p, _ in flags:
            p.requires_grad_(True)
        with torch.enable_grad():
            for size in _probe_sizes(model):
                try:
                    x = torch.zeros(1, n_in, *size, device=device)
                    f = model.forward_features(x)  # type: ignore[operator]
                    break
                except (RuntimeError, AssertionError, ValueError) as e:
                    err = e
            else:
                raise ValueError(f"timm's {type(model).__name__} fails on a probe input ({err}); vision_learner "
                                 "cannot find its features") from err
            nf = int(getattr(model, "num_features", -1))
            spatial = (isinstance(f, torch.Tensor) and f.ndim == 4 and f.shape[1] == nf
                       and getattr(model, "output_fmt", "NCHW") in ("NCHW", None) and not _is_nhwc(model))
            out = f if spatial else model.forward_head(f, pre_logits=True)  # type: ignore[operator]
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != (4 if spatial else 2):
        raise ValueError(f"timm's {type(model).__name__} gives features of shape "
                         f"{tuple(getattr(out, 'shape', ()))}, neither (N, C, H, W) maps nor (N, C) pooled features")
    return spatial, int(out.shape[1]), _graph_params(out)


def _is_nhwc(model: nn.Module) -> bool:
    fmt = getattr(model, "output_fmt", None)
    return str(getattr(fmt, "value", fmt)).upper() == "NHWC"


def unused_modules(model: nn.Module, used: set[int]) -> list[str]:
    """Names of the largest submodules that hold parameters, none of which is in `used`."""
    out: list[str] = []

    def visit(mod: nn.Module, prefix: str) -> None:
        for name, child in mod.named_children():
            params = list(child.parameters())
            if params and not any(id(p) in used for p in params):
                out.append(prefix + name)
            else:
                visit(child, f"{prefix}{name}.")

    visit(model, "")
    return out


def prune_unused(model: nn.Module, used: set[int]) -> list[str]:
    """Replace the largest submodules whose parameters the body never uses by `nn.Identity`; their names."""
    names = unused_modules(model, used)
    for name in names:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, nn.Identity())
    return names


def timm_body(arch: TimmArch | nn.Module, weights: dict | None = None, model_kwargs: dict | None = None,
              weights_source: str | None = None) -> tuple[TimmBody, int, dict]:
    """(`TimmBody`, its output features, the model's `pretrained_cfg`) for a timm name (built with
    `num_classes=0`, `weights` loaded by timm, strictly) or a timm model instance (used as is)."""
    if isinstance(arch, TimmArch):
        kw = dict(model_kwargs or {})
        try:
            if weights is None:
                model = arch(pretrained=False, num_classes=0, **kw)
            else:
                model = _load_strict(arch, weights, kw, weights_source or "the given state dict")
        except TypeError as e:
            if not kw:
                raise
            raise TypeError(f"timm.create_model({arch.name!r}, ...) refused the model keywords {sorted(kw)} ({e}); "
                            "vision_learner passes on to timm.create_model the keywords that Learner does not "
                            "take: check their spelling") from e
    else:
        model = arch
    cfg = dict(model_cfg(model))
    needs_pool, nf, used = probe_body(model)
    prune_unused(model, used)
    return TimmBody(model, needs_pool), nf, cfg


def build_timm_model(arch: TimmArch | nn.Module, n_out: int, weights: dict | None = None,
                     model_kwargs: dict | None = None, lin_ftrs: Sequence[int] | None = None,
                     ps: float | Sequence[float] = 0.5, concat_pool: bool = True,
                     weights_source: str | None = None,
                     check_head: Callable[[int, bool], None] | None = None,
                     y_range: tuple[float, float] | None = None) -> tuple[nn.Sequential, dict]:
    """`nn.Sequential(TimmBody, head)` and the model's `pretrained_cfg`, as `vision_learner` and `load_learner`
    build them (see `timm_body`).

    `check_head(nf, pool)` runs before the head is built (an export checks its declared sizes there).
    """
    body, nf, cfg = timm_body(arch, weights, model_kwargs, weights_source)
    if check_head is not None:
        check_head(nf, body.needs_pool)
    head = create_head(nf, n_out, lin_ftrs, ps, pool=body.needs_pool, concat_pool=concat_pool, y_range=y_range)
    return nn.Sequential(body, head), cfg


def _pruned_keys(arch: TimmArch, kw: dict) -> dict[str, torch.Tensor]:
    """State-dict entries (meta tensors) of the modules `timm_body` will drop for this architecture,
    from a build on the meta device (empty if the model cannot be built there)."""
    try:
        with torch.device("meta"):
            model = arch(pretrained=False, num_classes=0, **kw)
            _, _, used = probe_body(model)
    except Exception:
        return {}
    return {f"{name}.{k}": t for name in unused_modules(model, used)
            for k, t in model.get_submodule(name).state_dict().items()}


def _load_strict(arch: TimmArch, sd: dict, kw: dict, source: str) -> nn.Module:
    """timm builds the model and loads `sd` through its own loader (`pretrained_cfg_overlay=dict(state_dict=...)`:
    its checkpoint filter applies), strictly: the classifier's keys are dropped first and the overlay's class
    count matches the model's, so that timm keeps its strict load. A minifastai checkpoint or export of the same
    learner (keys `0.model.*`) works too; modules the body drops need not be in the file."""
    if sd and all(k.startswith(("0.model.", "1.")) for k in sd):
        sd = {k[len("0.model."):]: v for k, v in sd.items() if k.startswith("0.model.")}
    drop = _classifier_keys(_pretrained_cfg(arch.name))
    sd = {k: v for k, v in sd.items() if k not in drop}
    for k, t in _pruned_keys(arch, kw).items():  # placeholders: these modules are replaced by nn.Identity
        sd.setdefault(k, torch.zeros(t.shape, dtype=t.dtype))
    try:
        model = arch(pretrained=True, num_classes=0, pretrained_cfg_overlay=dict(state_dict=sd, num_classes=0), **kw)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise ValueError(f"{source} does not fit timm's {arch.name} ({' '.join(lines[1:3])[:400]}). Check that the "
                         "weights were saved from the same architecture (and the same model keywords, e.g. "
                         "img_size)") from e
    for key in ("state_dict", "file"):  # the overlay stays in the model's cfg: do not keep a second copy
        model_cfg(model).pop(key, None)
    return model
