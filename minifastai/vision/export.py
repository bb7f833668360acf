"""Vision's exports, read back: `rebuild_learner` (what `load_learner` calls to rebuild an exported vision learner
from plain data) and `check_export` (vision's checks of the file's `dls` entries, run before anything is built),
registered with `minifastai.persist.registry` under `"minifastai.vision"` (what the files store in
`builder["module"]`) when this module is imported.

What the entries hold, as written and read (the transform allow-list, the pipeline, the classes, the `builder`
entry), is `export_format`'s, re-exported here: the whole export format of vision is importable from this module.
This module is the top of `minifastai.vision` (it builds learners); the export methods of the pipeline, the
loaders and the learner delegate to `export_format`, below them.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from ..losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat
from ..persist.fileformat import DamagedFileError
from ..persist.registry import register_rebuilder
from .data import ImageDataLoaders
from .export_format import (
    EXPORT_MODULE,
    EXPORTABLE_TRANSFORMS,
    builder_info,
    pipeline_from_state,
    pipeline_state,
    tfm_from_state,
    tfm_to_state,
    vocab_from_state,
)
from .heads import check_head_args, check_y_range
from .learner import VisionLearner, _stages_split
from .models import body_head_split, build_vision_model, resolve_torchvision
from .timm_models import build_timm_model, check_model_kwargs, timm_arch, timm_names

TIMM_HINT = "; timm is not installed: pip install 'minifastai[timm]'"

__all__ = ["rebuild_learner", "check_export", "dls_problem", "EXPORT_MODULE", "EXPORTABLE_TRANSFORMS", "builder_info",
           "pipeline_state", "pipeline_from_state", "tfm_to_state", "tfm_from_state", "vocab_from_state"]


def _malformed(path: Path, entry: str, what: str) -> DamagedFileError:
    return DamagedFileError(f"{path} is malformed: entry {entry} {what}")


def check_export(state: dict, path: Path) -> None:
    """Vision's checks of an export's `dls` entries, before anything is built: a `DamagedFileError` naming the
    file and the entry when they are malformed (the classes, `dls['vocab']`, must be a list) or do not fit the
    model (`dls_problem`)."""
    dls = state.get("dls")
    if not isinstance(dls, dict):
        return  # a missing or non-dict 'dls' is load_learner's own error
    if dls.get("vocab") is not None and not isinstance(dls["vocab"], (list, tuple)):
        raise _malformed(path, "'dls'['vocab']", f"is a {type(dls['vocab']).__name__}, not a list of classes")
    problem = dls_problem(state)
    if problem:
        raise _malformed(path, *problem)


def dls_problem(state: dict) -> tuple[str, str] | None:
    """(entry, what is wrong) when an export's `dls` entry does not fit its model: a classifier that names no
    classes (no `vocab` entry), fewer classes than the model's outputs, a normalization among the item transforms
    (it runs on float batches, never on the uint8 items); None when it fits."""
    dls, info = state.get("dls"), state.get("builder")
    if not isinstance(dls, dict):
        return None
    if dls.get("target", "category") in ("category", "multi_category"):
        sd = state.get("model")
        shapes = _head_shapes(sd) if isinstance(sd, dict) else []
        n_out = shapes[-1][0] if shapes else info.get("n_out") if isinstance(info, dict) else None  # stored weights'
        vocab = dls.get("vocab")
        if "vocab" not in dls:
            return ("'dls'['vocab']", "is missing: a classifier's export stores its class names (export it again "
                    "with learn.export())")
        if isinstance(vocab, (list, tuple)) and isinstance(n_out, int) and len(vocab) < n_out:
            return ("'dls'['vocab']", f"holds {len(vocab)} class names but the model has {n_out} outputs: "
                    "predictions could not be named (the file was altered or is inconsistent)")
    for i, e in enumerate(dls.get("item_tfms") or []):
        if isinstance(e, dict) and e.get("name") in ("v2.Normalize", "Normalize", "minifastai.Normalize"):
            return (f"'dls'['item_tfms'][{i}]", f"is a normalization ({e['name']}): it is a batch transform (on float "
                    "batches, last), never an item transform; it belongs in batch_tfms")
    return None


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
    src = str(source) if source is not None else "the export"
    info = state.get("builder")
    if not isinstance(info, dict):
        raise ValueError(f"{src}: 'builder' must describe the model (a dict), got {type(info).__name__}")
    problem = dls_problem(state)
    if problem:
        raise ValueError(f"{src}: entry {problem[0]} {problem[1]}")
    if info.get("custom_cut"):
        raise ValueError(f"{src}: this learner was built with a custom cut function, which an export cannot "
                         "store: load it with load_learner(path, model=<the same nn.Sequential(body, head)>)")
    arch, n_out = info.get("arch"), info.get("n_out")
    cut, lin_ftrs = info.get("cut"), info.get("lin_ftrs")
    ps, concat_pool = info.get("ps", 0.5), info.get("concat_pool", True)
    if not isinstance(arch, str):
        raise ValueError(f"{src}: builder['arch'] must be an architecture name, got {arch!r}")
    check_head_args(n_out, lin_ftrs, ps, concat_pool, f"{src}: builder ")
    y_range = check_y_range(info.get("y_range"), f"{src}: builder ")
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
                             f"{'' if timm_names() else TIMM_HINT})")
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
        model, _ = build_timm_model(timm_builder, int(n_out), None, model_kwargs, lin_ftrs, ps,  # type: ignore[arg-type]
                                     concat_pool, check_head=check_head, y_range=y_range)
        split: Callable = body_head_split
    else:
        args = (builder, int(n_out), None, cut, lin_ftrs, ps, concat_pool)  # type: ignore[arg-type]
        model, meta = build_vision_model(*args, check_head=check_head, y_range=y_range)
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


register_rebuilder(EXPORT_MODULE, rebuild_learner, check=check_export)
