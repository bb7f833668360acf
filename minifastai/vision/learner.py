"""`vision_learner`: a torchvision CNN body with fastai's head, frozen and normalized when pretrained, split
into layer groups; `VisionLearner` adds fastai's `tta` and `show_results`; `rebuild_learner` is what
`load_learner` calls to rebuild an exported vision learner from plain data."""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..data import DataLoaders
from ..learner import Learner
from ..losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat
from ..persist.registry import register_rebuilder
from .data import ImageDataLoaders, ImageDL, show_images
from .models import (
    arch_source,
    body_head_split,
    create_vision_model,
    resolve_arch,
    resolve_torchvision,
    resolve_weights,
)
from .timm_models import timm_names
from .transforms import IMAGENET_STATS

__all__ = ["VisionLearner", "vision_learner", "cnn_learner", "rebuild_learner"]


class VisionLearner(Learner):
    """A Learner for images: everything `Learner` does, plus test-time augmentation and `show_results`."""

    def _image_dl(self, ds_idx: int, dl: Any) -> ImageDL:
        dl = self.dls[ds_idx] if dl is None else dl
        if not isinstance(dl, ImageDL):
            raise TypeError(f"this needs an image loader (from ImageDataLoaders), got {type(dl).__name__}")
        return dl

    def tta(self, ds_idx: int = 1, dl: Any = None, n: int = 4, beta: float | None = 0.25,
            use_max: bool = False) -> tuple[Any, Tensor | None]:
        """Test-time augmentation (fastai): predictions averaged over `n` passes with the training
        transforms, mixed with the plain prediction: `lerp(aug, plain, beta)`. Returns (preds, targets)."""
        if n < 1:
            raise ValueError(f"n={n} must be at least 1 (augmented passes)")
        if beta is not None and not 0 <= beta <= 1:
            raise ValueError(f"beta={beta} must be in [0, 1] (the weight of the un-augmented prediction)")
        base = self._image_dl(ds_idx, dl)
        aug_dl, plain_dl = base.new(train=True), base.new(train=False)
        aug = torch.stack([self.get_preds(dl=aug_dl)[0] for _ in range(n)])
        aug = aug.max(0)[0] if use_max else aug.mean(0)
        preds, targs = self.get_preds(dl=plain_dl)
        if use_max:
            return torch.stack([preds, aug]).max(0)[0], targs
        return ((aug, preds) if beta is None else torch.lerp(aug, preds, beta)), targs

    def show_results(self, ds_idx: int = 1, dl: Any = None, max_n: int = 9, shuffle: bool = True,
                     nrows: int | None = None, ncols: int | None = None,
                     figsize: tuple[float, float] | None = None) -> Any:
        """A batch of images titled with target (first line) and prediction (second line; green when right,
        red when wrong), as fastai; returns the figure."""
        src = self._image_dl(ds_idx, dl)
        b = next(iter(src.new(shuffle=shuffle, bs=min(src.bs, max_n))))
        if len(b) < 2:
            raise ValueError("show_results needs labelled data; use predict or get_preds for unlabelled images")
        preds, _ = self.get_preds(dl=[b])
        x, y = b[0].cpu(), b[1].cpu()
        dec = preds.argmax(-1)
        n = min(max_n, len(x))
        vocab = self.dls.vocab
        name = (lambda i: str(vocab[i])) if vocab is not None else str
        titles = [f"{name(int(y[i]))}\n{name(int(dec[i]))}" for i in range(n)]
        colors = ["green" if int(y[i]) == int(dec[i]) else "red" for i in range(n)]
        imgs = src.pipeline.decode(x[:n].float())
        return show_images(imgs, titles, colors, nrows=nrows, ncols=ncols, figsize=figsize)


def _check_head_args(n_out: Any, lin_ftrs: Any, ps: Any, concat_pool: Any, where: str) -> None:
    if not (isinstance(n_out, int) and not isinstance(n_out, bool) and n_out > 0):
        raise ValueError(f"{where}n_out={n_out!r} must be a positive int (the number of classes)")
    if lin_ftrs is not None and not (isinstance(lin_ftrs, (list, tuple)) and all(
            isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in lin_ftrs)):
        raise ValueError(f"{where}lin_ftrs={lin_ftrs!r} must be a list of positive ints (hidden layer sizes)")
    drops = [ps] if isinstance(ps, (int, float)) and not isinstance(ps, bool) else ps
    if not (isinstance(drops, (list, tuple)) and all(
            isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p < 1 for p in drops)):
        raise ValueError(f"{where}ps={ps!r} must be a dropout probability in [0, 1) or a list of them")
    if not isinstance(concat_pool, bool):
        raise ValueError(f"{where}concat_pool={concat_pool!r} must be True or False")


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
    """(Learner's keywords, the rest: timm.create_model's keywords for timm archs)."""
    return ({k: v for k, v in kwargs.items() if k in _LEARNER_ARGS},
            {k: v for k, v in kwargs.items() if k not in _LEARNER_ARGS})


def vision_learner(dls: DataLoaders, arch: str | Callable[..., nn.Module] | nn.Module, pretrained: bool = True,
                   weights: Any = None, n_out: int | None = None, cut: int | Callable | None = None,
                   splitter: Callable | str | None = None, normalize: bool = True,
                   lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                   concat_pool: bool = True, loss_func: Callable | None = None,
                   **kwargs: Any) -> VisionLearner:
    """A Learner for a torchvision or timm CNN (or timm transformer) with fastai's head; pretrained models are
    frozen and normalized.

    `vision_learner(dls, resnet34, metrics=error_rate)` as in fastai: a builder function is torchvision's; a
    name is a registered one, else timm's when timm has it (fastai's rule: `"convnext_tiny"`, `"<name>.<tag>"`),
    else torchvision's (`"mobilenet_v2"`, `"torchvision/<name>"`); a timm model instance is the body.
    `weights=` takes a local file or a state dict (torchvision: also a weights enum or its name; timm: also a
    pretrained tag); with `pretrained=True` and no
    `weights`, torchvision's file is read from torch hub's cache (or downloaded once), timm's from the Hugging
    Face cache (or downloaded). Layer groups: ResNets (`body[:6]`, `body[6:]`, `head`), others (`body`, `head`);
    `splitter="stages"` gives one group per stage. The loss defaults to `dls.loss_func`, `path` to `dls.path`;
    keywords `Learner` takes go to it, others to `timm.create_model` (e.g. `img_size=` for a ViT).
    """
    from .stages import stage_groups
    from .timm_models import (
        TimmArch,
        check_model_kwargs,
        create_timm_model,
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
        if getattr(dls, "vocab", None) is None:
            raise ValueError("dls has no vocab to count classes from; pass n_out= (the number of outputs)")
        n_out = len(dls.vocab)  # type: ignore[arg-type]
    _check_head_args(n_out, None if lin_ftrs is None else list(lin_ftrs), ps, concat_pool, "")
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
            model, cfg = create_timm_model(model_in, int(n_out), None, None, lin_ftrs, ps, concat_pool, source)
            problem = _instance_problem(name, model_in) if timm_arch_known(name) else (
                f"the timm model's pretrained_cfg names {name!r}, which is not in timm's registry")
        else:
            sd, source, _ = resolve_timm_weights(cast(TimmArch, builder), pretrained, weights, model_kwargs)
            is_pretrained, problem = sd is not None, None
            model, cfg = create_timm_model(cast(TimmArch, builder), int(n_out), sd, model_kwargs, lin_ftrs, ps,
                                           concat_pool, source)
        del sd
        stats = (tuple(cfg.get("mean") or IMAGENET_STATS[0]), tuple(cfg.get("std") or IMAGENET_STATS[1]))
        default_split: Callable = body_head_split
        default_names = ["body", "head"]
    else:
        sd_tv, source = resolve_weights(cast(Callable, builder), pretrained, weights)
        model, meta = create_vision_model(cast(Callable, builder), n_out, sd_tv, cut, lin_ftrs, ps, concat_pool,
                                          source)
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
    info: dict[str, Any] = {"module": "minifastai.vision", "arch": name,
                            "source": "timm" if is_timm else arch_source(cast(Callable, builder)),
                            "n_out": n_out, "cut": cut if isinstance(cut, int) else None, "custom_cut": callable(cut),
                            "lin_ftrs": None if lin_ftrs is None else list(lin_ftrs),
                            "ps": ps if isinstance(ps, (int, float)) else list(ps), "concat_pool": concat_pool,
                            "weights": source, "splitter": "stages" if splitter is _stages_split else None}
    if is_timm:
        info["model_kwargs"] = model_kwargs
    if problem:
        info["rebuild_problem"] = problem
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


def _head_shapes(sd: dict) -> list[tuple[int, ...]]:
    """Shapes of the head's Linear weights in a (body, head) state dict, in layer order."""
    keys = [k for k, t in sd.items() if k.startswith("1.") and k.endswith(".weight")
            and isinstance(t, Tensor) and t.ndim == 2]
    keys.sort(key=lambda k: int(k.split(".")[1]) if k.split(".")[1].isdigit() else -1)
    return [tuple(sd[k].shape) for k in keys]


def rebuild_learner(state: dict, device: Any = "cpu", source: str | None = None) -> VisionLearner:
    """Rebuild an exported vision learner (architecture, head, classes, transforms) from plain data; the
    caller (`load_learner`) loads the weights.

    Nothing is built that the export does not declare consistently: the arch must be registered, in
    torchvision or (`source: "timm"`) in timm's registry, built with `pretrained=False` and plain model keywords
    (none that reads a file); the head's declared sizes must match the stored weights (checked before the head
    is allocated); transforms come from an allow-list. Errors name `source` (the file) and the entry.
    """
    from .timm_models import check_model_kwargs, create_timm_model, timm_arch

    src = str(source) if source is not None else "the export"
    info = state.get("builder")
    if not isinstance(info, dict):
        raise ValueError(f"{src}: 'builder' must describe the model (a dict), got {type(info).__name__}")
    if info.get("custom_cut"):
        raise ValueError(f"{src}: this learner was built with a custom cut function, which an export cannot "
                         "store: load it with load_learner(path, model=<the same nn.Sequential(body, head)>)")
    arch, n_out = info.get("arch"), info.get("n_out")
    cut, lin_ftrs = info.get("cut"), info.get("lin_ftrs")
    ps, concat_pool = info.get("ps", 0.5), info.get("concat_pool", True)
    if not isinstance(arch, str):
        raise ValueError(f"{src}: builder['arch'] must be an architecture name, got {arch!r}")
    _check_head_args(n_out, lin_ftrs, ps, concat_pool, f"{src}: builder ")
    if cut is not None and not (isinstance(cut, int) and not isinstance(cut, bool)):
        raise ValueError(f"{src}: builder['cut']={cut!r} must be an int or None")
    sd = state.get("model")
    if not isinstance(sd, dict) or not all(isinstance(t, Tensor) for t in sd.values()):
        raise ValueError(f"{src}: 'model' must be a state dict (parameter name -> tensor)")
    arch_src, split_name = info.get("source"), info.get("splitter")
    if arch_src not in (None, "timm", "torchvision", "registered"):
        raise ValueError(f"{src}: builder['source']={arch_src!r} must be 'timm', 'torchvision' or 'registered'")
    if split_name not in (None, "stages"):
        raise ValueError(f"{src}: builder['splitter']={split_name!r} must be 'stages' or None")
    if arch_src == "timm":
        if info.get("rebuild_problem"):
            raise ValueError(f"{src}: {info['rebuild_problem']}")
        if cut is not None:
            raise ValueError(f"{src}: builder['cut']={cut!r}: timm models take no cut")
        timm_builder = timm_arch(arch)
        if timm_builder is None:
            raise ValueError(f"{src}: builder['arch']={arch!r} is not in timm's registry (timm.list_models()"
                             f"{'' if timm_names() else '; timm is not installed: pip install minifastai[timm]'})")
        model_kwargs = check_model_kwargs(info.get("model_kwargs") or {}, f"{src}: builder ")
    else:
        try:
            _, builder = resolve_torchvision(arch)
        except ValueError as e:
            raise ValueError(f"{src}: {e}. If {arch!r} is your own builder, call register_arch({arch!r}, builder) "
                             "before load_learner, or pass load_learner(path, model=...)") from None

    def check_head(nf: int, pool: bool = True) -> None:
        ftrs = [nf * 2 if concat_pool and pool else nf, *([512] if lin_ftrs is None else lin_ftrs), n_out]
        declared = [(o, i) for i, o in zip(ftrs[:-1], ftrs[1:])]
        stored = _head_shapes(sd)
        if stored != declared:
            raise ValueError(f"{src}: the head it declares (n_out={n_out}, lin_ftrs={lin_ftrs}, concat_pool="
                             f"{concat_pool}: Linear weights {declared}) does not match its stored weights "
                             f"({stored}); the file is damaged or was altered. Nothing was built.")

    # the head's declared sizes are checked before it is allocated; the whole model's shapes are checked by
    # load_learner, which runs this first on the meta device (no memory) and compares with the stored tensors
    if arch_src == "timm":
        model, _ = create_timm_model(timm_builder, int(n_out), None, model_kwargs, lin_ftrs, ps,  # type: ignore[arg-type]
                                     concat_pool, check_head=check_head)
        split: Callable = body_head_split
    else:
        args = (builder, int(n_out), None, cut, lin_ftrs, ps, concat_pool)  # type: ignore[arg-type]
        model, meta = create_vision_model(*args, check_head=check_head)
        split = meta.split
    if split_name == "stages":
        split = _stages_split
    dls_state = state.get("dls")
    if not isinstance(dls_state, dict):
        raise ValueError(f"{src}: 'dls' must describe the data (a dict), got {type(dls_state).__name__}")
    dls = ImageDataLoaders.from_export_state(dls_state, device=device, source=src)
    act = state.get("activation")
    if act not in ("softmax", "sigmoid", None):
        raise ValueError(f"{src}: activation={act!r} must be 'softmax', 'sigmoid' or None")
    loss = {"softmax": CrossEntropyLossFlat(), "sigmoid": BCEWithLogitsLossFlat()}.get(act)  # type: ignore[arg-type]
    learn = VisionLearner(dls, model, loss_func=loss, splitter=split, activation=act)
    names = state.get("group_names")
    if isinstance(names, list) and len(names) == learn.n_groups and all(isinstance(n, str) for n in names):
        learn.group_names = list(names)
    learn.export_info = dict(info)
    return learn


register_rebuilder("minifastai.vision", rebuild_learner)
