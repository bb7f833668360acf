"""`vision_learner`: a torchvision CNN body with fastai's head, frozen and normalized when pretrained, split
into layer groups; `VisionLearner` adds fastai's `tta` and `show_results`. The `builder` entry its exports store
is `export_format.builder_info`; `export.rebuild_learner` rebuilds a learner from it."""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..data import DataLoaders
from ..inference import loader_of, tta
from ..learner import Learner
from ..losses import CrossEntropyLossFlat
from .data import ImageDataLoaders
from .export_format import builder_info
from .heads import check_head_args, check_y_range
from .loaders import ImageDL
from .models import (
    arch_source,
    body_head_split,
    build_vision_model,
    resolve_arch,
    resolve_weights,
)
from .show import show_images
from .transforms import IMAGENET_STATS

__all__ = ["VisionLearner", "vision_learner", "cnn_learner"]


class VisionLearner(Learner):
    """A Learner for images: everything `Learner` does, plus test-time augmentation and `show_results`."""

    def _image_dl(self, ds_idx: int, dl: Any) -> ImageDL:
        dl = loader_of(self, ds_idx, dl, "pass dl=learn.dls.test_dl(files) (e.g. after load_learner, which keeps no "
                                         "data)")
        if not isinstance(dl, ImageDL):
            raise TypeError(f"this needs an image loader (from ImageDataLoaders), got {type(dl).__name__}")
        return dl

    def tta(self, ds_idx: int = 1, dl: Any = None, n: int = 4, beta: float | None = 0.25,
            use_max: bool = False) -> tuple[Any, Tensor | None]:
        """Test-time augmentation (fastai): predictions averaged over `n` passes with the training
        transforms, mixed with the plain prediction: `lerp(aug, plain, beta)`. Returns (preds, targets); after
        `load_learner` pass `dl=learn.dls.test_dl(files)` (targets are then None)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n={n!r} must be at least 1, a positive int (the number of augmented passes, e.g. n=4)")
        return tta(self, ds_idx, self._image_dl(ds_idx, dl), n, beta, use_max)

    def show_results(self, ds_idx: int = 1, dl: Any = None, max_n: int = 9, shuffle: bool = True,
                     nrows: int | None = None, ncols: int | None = None,
                     figsize: tuple[float, float] | None = None) -> Any:
        """A batch of images titled with target (first line) and prediction (second line; green when right,
        red when wrong), as fastai; unlabelled images (e.g. `dl=learn.dls.test_dl(files)` after `load_learner`)
        are titled with the prediction only. Returns the figure."""
        if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
            raise ValueError(f"max_n={max_n!r} must be a positive int (the most images to show)")
        src = self._image_dl(ds_idx, dl)
        try:
            b = next(iter(src.new(shuffle=shuffle, bs=min(src.bs, max_n))))
        except StopIteration:
            raise ValueError("the loader holds no images: nothing to show") from None
        preds, _ = self.get_preds(dl=[b])
        x = b[0].cpu()
        dec = preds.argmax(-1)
        n = min(max_n, len(x))
        vocab = self.dls.vocab
        name = (lambda i: str(vocab[i])) if vocab is not None else str
        if len(b) < 2:
            titles, colors = [name(int(dec[i])) for i in range(n)], None
        else:
            y = b[1].cpu()
            titles = [f"{name(int(y[i]))}\n{name(int(dec[i]))}" for i in range(n)]
            colors = ["green" if int(y[i]) == int(dec[i]) else "red" for i in range(n)]
        imgs = src.pipeline.decode(x[:n].float())
        return show_images(imgs, titles, colors, nrows=nrows, ncols=ncols, figsize=figsize)


_LEARNER_ARGS = frozenset(inspect.signature(Learner.__init__).parameters) - {"self", "dls", "model"}


def _instance_problem(name: str, model: nn.Module) -> str | None:
    """Why `timm.create_model(name, num_classes=0)` would not rebuild this timm model instance's body (None if it
    would): compared, name by name and shape by shape, on the meta device."""
    from .timm_models import TimmArch, probe_body, prune_unused

    try:
        with torch.device("meta"):
            ref = TimmArch(name)(pretrained=False, num_classes=0)
            prune_unused(ref, probe_body(ref)[2])
    except Exception as e:  # noqa: BLE001 (anything: then the export cannot promise a rebuild)
        return f"timm.create_model({name!r}) cannot be planned ({type(e).__name__}: {e})"
    want = {k: tuple(t.shape) for k, t in ref.state_dict().items()}
    have = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    if want == have:
        return None
    diff = sorted(set(want) ^ set(have)) or [k for k in want if want[k] != have[k]]
    return (f"the timm model passed to vision_learner is not what timm.create_model({name!r}) builds (e.g. "
            f"{diff[:3]}: it was created with other keywords). Build the learner by name with those keywords, "
            f"e.g. vision_learner(dls, {name!r}, img_size=...), or load it with load_learner(path, model=...)")


def _split_kwargs(kwargs: dict) -> tuple[dict, dict]:
    """(Learner's keywords, the rest: timm.create_model's keywords for timm archs); a keyword that looks like a
    misspelt Learner keyword (`metric=`) is a TypeError saying which one was meant."""
    import difflib

    for k in kwargs:
        close = difflib.get_close_matches(k, sorted(_LEARNER_ARGS), n=1, cutoff=0.8) if k not in _LEARNER_ARGS else []
        if close:
            raise TypeError(f"vision_learner got {k}=, which is not a Learner keyword: did you mean {close[0]}=? "
                            "(keywords Learner does not take go to timm.create_model)")
    return ({k: v for k, v in kwargs.items() if k in _LEARNER_ARGS},
            {k: v for k, v in kwargs.items() if k not in _LEARNER_ARGS})


def vision_learner(dls: DataLoaders, arch: str | Callable[..., nn.Module] | nn.Module, pretrained: bool = True,
                   weights: Any = None, n_out: int | None = None, cut: int | Callable | None = None,
                   splitter: Callable | str | None = None, normalize: bool = True,
                   lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                   concat_pool: bool = True, loss_func: Callable | None = None,
                   y_range: tuple[float, float] | None = None, **kwargs: Any) -> VisionLearner:
    """A Learner for a torchvision or timm CNN (or timm transformer) with fastai's head; pretrained models are
    frozen and normalized.

    `vision_learner(dls, resnet34, metrics=error_rate)` as in fastai: a builder function is torchvision's; a
    name is a registered one, else timm's when timm has it (fastai's rule: `"convnext_tiny"`, `"<name>.<tag>"`),
    else torchvision's (`"mobilenet_v2"`, `"torchvision/<name>"`); a timm model instance is the body.
    `weights=` takes a local file or a state dict (torchvision: also a weights enum or its name; timm: also a
    pretrained tag); with `pretrained=True` and no
    `weights`, torchvision's file is read from torch hub's cache (or downloaded once), timm's from the Hugging
    Face cache (or downloaded). Layer groups: ResNets (`body[:6]`, `body[6:]`, `head`), others (`body`, `head`);
    `splitter="stages"` gives one group per stage. `n_out` defaults to `dls.c` (classes, or a regression's outputs),
    `y_range=(lo, hi)` ends the head in a `SigmoidRange`. The loss defaults to `dls.loss_func`, `path` to `dls.path`;
    keywords `Learner` takes go to it, others to `timm.create_model` (e.g. `img_size=` for a ViT).
    """
    from .stages import stage_groups
    from .timm_models import (
        TimmArch,
        build_timm_model,
        check_model_kwargs,
        is_timm_model,
        model_cfg,
        resolve_timm_weights,
    )

    learner_kwargs, model_kwargs = _split_kwargs(kwargs)
    instance = is_timm_model(arch)
    if instance:
        model_in = cast(nn.Module, arch)
        name = str(model_cfg(model_in).get("architecture") or "")
        builder: Callable[..., nn.Module] | None = None
    else:
        name, builder = resolve_arch(cast(Any, arch))
    is_timm = instance or isinstance(builder, TimmArch)
    if model_kwargs and not is_timm:
        raise TypeError(f"vision_learner got unexpected keyword(s) {sorted(model_kwargs)}: they are not Learner's, "
                        f"and only timm architectures take model keywords (passed to timm.create_model)")
    if instance and model_kwargs:
        raise ValueError(f"model keywords {sorted(model_kwargs)} with a model instance: create the model with them")
    if n_out is None:
        vocab = getattr(dls, "vocab", None)
        n_out = int(getattr(dls, "c", 0) or 0) or (len(vocab) if vocab is not None else 0)
        if not n_out:
            raise ValueError("dls has no vocab (nor dls.c) to count the outputs from; pass n_out= (the number of "
                             "outputs)")
    y_range = check_y_range(y_range, "")
    check_head_args(n_out, None if lin_ftrs is None else list(lin_ftrs), ps, concat_pool, "")
    if cut is not None and not callable(cut) and not (isinstance(cut, int) and not isinstance(cut, bool)):
        raise ValueError(f"cut={cut!r} must be an int (index into the model's children) or a function model -> body")
    if not (splitter is None or splitter == "stages" or callable(splitter)):
        raise ValueError(f"splitter={splitter!r} must be a function model -> list of parameter lists, or 'stages' "
                         "(one layer group per stage)")
    if is_timm:
        if cut is not None:
            raise ValueError("cut= does not apply to timm models: their body is forward_features (fastai ignores cut "
                             "for them); use the default, or splitter= to choose layer groups")
        check_model_kwargs(model_kwargs)
        if instance:
            if weights is not None:
                raise ValueError("weights= with a model instance: load the weights into it first, or pass its name "
                                 f"({name!r}) with weights=")
            if splitter == "stages" and not callable(getattr(model_in, "group_matcher", None)):
                raise ValueError(f"timm's {type(model_in).__name__} has no group_matcher: splitter='stages' cannot "
                                 "find its stages")
            sd, source, is_pretrained = None, "the given timm model", pretrained
            model, cfg = build_timm_model(model_in, int(n_out), None, None, lin_ftrs, ps, concat_pool, source,
                                           y_range=y_range)
            problem = _instance_problem(name, model_in) if timm_arch_known(name) else (
                f"the timm model's pretrained_cfg names {name!r}, which is not in timm's registry")
        else:
            sd, source, _ = resolve_timm_weights(cast(TimmArch, builder), pretrained, weights, model_kwargs)
            is_pretrained, problem = sd is not None, None
            model, cfg = build_timm_model(cast(TimmArch, builder), int(n_out), sd, model_kwargs, lin_ftrs, ps,
                                           concat_pool, source, y_range=y_range)
        del sd
        stats = (tuple(cfg.get("mean") or IMAGENET_STATS[0]), tuple(cfg.get("std") or IMAGENET_STATS[1]))
        default_split: Callable = body_head_split
        default_names = ["body", "head"]
    else:
        sd_tv, source = resolve_weights(cast(Callable, builder), pretrained, weights)
        model, meta = build_vision_model(cast(Callable, builder), n_out, sd_tv, cut, lin_ftrs, ps, concat_pool,
                                          source, y_range=y_range)
        is_pretrained, problem = sd_tv is not None, None
        del sd_tv
        stats, default_split, default_names = meta.stats, meta.split, list(meta.group_names)
    if splitter == "stages":
        groups = stage_groups(model)  # raises (naming the families it knows) before the data is touched
        splitter = _stages_split
        learner_kwargs.setdefault("group_names", [n for n, _ in groups])
    elif splitter is None:
        splitter = default_split
        learner_kwargs.setdefault("group_names", default_names)
    if normalize and is_pretrained:
        if isinstance(dls, ImageDataLoaders):
            dls.normalize(*stats)
        else:
            warnings.warn("dls is not an ImageDataLoaders, so vision_learner cannot add the pretrained "
                          "model's normalization: normalize inputs yourself with "
                          f"mean={stats[0]}, std={stats[1]}", stacklevel=2)
    if loss_func is None:
        loss_func = getattr(dls, "loss_func", None) or CrossEntropyLossFlat()
    learner_kwargs.setdefault("path", getattr(dls, "path", "."))
    learn = VisionLearner(dls, model, loss_func=loss_func, splitter=cast(Callable, splitter), **learner_kwargs)
    info = builder_info(name, "timm" if is_timm else arch_source(cast(Callable, builder)), n_out, cut, lin_ftrs,
                        ps, concat_pool, source, splitter is _stages_split, model_kwargs if is_timm else None,
                        problem, y_range)
    learn.export_info = info
    if is_pretrained:
        learn.freeze()
    return learn


def _stages_split(model: nn.Module) -> list[list[nn.Parameter]]:
    """One layer group per stage, then the head (`minifastai.vision.stages`)."""
    from .stages import stage_splitter

    return stage_splitter(model)


def timm_arch_known(name: str) -> bool:
    """Whether `name` is in timm's registry."""
    from .timm_models import timm_arch

    return bool(name) and timm_arch(name) is not None


cnn_learner = vision_learner
