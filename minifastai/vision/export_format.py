"""The export format of vision's entries, as `Learner.export` writes them and `load_learner` reads them back: the
transforms an export may store and build (the allow-list `EXPORTABLE_TRANSFORMS`, `tfm_to_state`,
`tfm_from_state`), the transform pipeline in the `dls` entry (`pipeline_state`, `pipeline_from_state`), its
classes (`vocab_from_state`), and the `builder` entry `vision_learner` writes (`builder_info`).

Everything here is plain data in, plain data out (transforms are rebuilt from the allow-list, never from a name
looked up in a module). It sits below the pipeline, the loaders and the learner, whose export methods delegate
here; `minifastai.vision.export` (the learner's rebuild and the file's checks) re-exports it.
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from torchvision.transforms import v2

from .colour import Brightness, Contrast
from .geometric import CropPad, Dihedral, Flip, RandomResizedCrop, RandomResizedCropGPU, Resize, Rotate, Warp, Zoom
from .normalize import Normalize
from .transform_base import MAX_SIZE, ImageTransform, is_augmentation

__all__ = ["EXPORTABLE_TRANSFORMS", "tfm_to_state", "tfm_from_state", "pipeline_state", "pipeline_from_state",
           "vocab_from_state", "target_from_state", "builder_info", "EXPORT_MODULE"]

EXPORT_MODULE = "minifastai.vision"
"""What vision's exports store in `builder["module"]`: the name their rebuilder is registered under."""


# ---- transforms: the allow-list ------------------------------------------------------------------------
def _v2_size(size: Any) -> list[int]:
    s = [size] if isinstance(size, int) else list(size)
    if not (1 <= len(s) <= 2 and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIZE
                                     for v in s)):
        raise ValueError(f"size={size!r} must be one or two ints in [1, {MAX_SIZE}]")
    return s


def _v2_resize(size: Any, interpolation: str = "bilinear", max_size: int | None = None,
               antialias: bool = True) -> v2.Resize:
    return v2.Resize(_v2_size(size), interpolation=v2.InterpolationMode(interpolation), max_size=max_size,
                     antialias=bool(antialias))


def _v2_rrc(size: Any, scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3),
            interpolation: str = "bilinear", antialias: bool = True) -> v2.RandomResizedCrop:
    return v2.RandomResizedCrop(_v2_size(size), scale=tuple(scale), ratio=tuple(ratio),
                                interpolation=v2.InterpolationMode(interpolation), antialias=bool(antialias))


def _v2_grayscale(num_output_channels: int = 1) -> v2.Grayscale:
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels={num_output_channels!r} must be 1 or 3")
    return v2.Grayscale(num_output_channels)


# name in the file -> (builder, the class it makes). Only these are ever built from an export.
EXPORTABLE_TRANSFORMS: dict[str, tuple[Callable[..., Any], type]] = {
    **{f"minifastai.{c.__name__}": (c, c) for c in (
        Resize, CropPad, RandomResizedCrop, Flip, Dihedral, Rotate, Zoom, Warp, Brightness, Contrast,
        RandomResizedCropGPU, Normalize)},
    "v2.Resize": (_v2_resize, v2.Resize),
    "v2.CenterCrop": (lambda size: v2.CenterCrop(_v2_size(size)), v2.CenterCrop),
    "v2.Grayscale": (_v2_grayscale, v2.Grayscale),
    "v2.Normalize": (lambda mean, std: v2.Normalize(list(mean), list(std)), v2.Normalize),
    "v2.RandomResizedCrop": (_v2_rrc, v2.RandomResizedCrop),
    "v2.RandomHorizontalFlip": (lambda p=0.5: v2.RandomHorizontalFlip(float(p)), v2.RandomHorizontalFlip),
    "v2.RandomVerticalFlip": (lambda p=0.5: v2.RandomVerticalFlip(float(p)), v2.RandomVerticalFlip),
}
# exports written before the allow-list stored torchvision transforms under their bare class names
_LEGACY_NAMES = {"Resize": "v2.Resize", "CenterCrop": "v2.CenterCrop", "Grayscale": "v2.Grayscale",
                 "Normalize": "v2.Normalize"}


def _interpolation(mode: Any) -> str:
    """A torchvision interpolation as its name: torchvision stores an `InterpolationMode`, or (its defaults, in
    0.29) the mode's name as a string."""
    return v2.InterpolationMode(mode.value if isinstance(mode, v2.InterpolationMode) else mode).value


def tfm_to_state(t: Any) -> dict | None:
    """A transform as `{"name", "args"}` plain data, or None when it is not one an export can store."""
    for name, (_, cls) in EXPORTABLE_TRANSFORMS.items():
        if type(t) is not cls:
            continue
        if isinstance(t, ImageTransform):
            return {"name": name, "args": t.export_args()}
        if isinstance(t, v2.Resize):
            args: dict[str, Any] = {"size": t.size, "interpolation": _interpolation(t.interpolation),
                                    "max_size": t.max_size, "antialias": bool(t.antialias)}
        elif isinstance(t, v2.RandomResizedCrop):
            args = {"size": list(t.size), "scale": list(t.scale), "ratio": list(t.ratio),
                    "interpolation": _interpolation(t.interpolation), "antialias": bool(t.antialias)}
        elif isinstance(t, v2.CenterCrop):
            args = {"size": list(t.size)}
        elif isinstance(t, v2.Grayscale):
            args = {"num_output_channels": t.num_output_channels}
        elif isinstance(t, v2.Normalize):
            args = {"mean": list(t.mean), "std": list(t.std)}
        else:  # the two random flips
            args = {"p": float(getattr(t, "p", 0.5))}
        return {"name": name, "args": args}
    return None


def tfm_from_state(entry: Any, where: str) -> Any:
    """Build one transform from an export's entry, if (and only if) it is on the allow-list.

    `where` names the entry for errors, e.g. "export.pkl: item_tfms[0]". Anything else (an unknown name,
    unknown arguments, values out of range) is a ValueError naming it; nothing is imported or called.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError(f"{where} is not a transform entry ({{'name': ..., 'args': {{...}}}}), got "
                         f"{type(entry).__name__}: the file is damaged or was not written by minifastai's export")
    name = entry["name"]
    if "args" in entry:
        args = entry["args"]
        extra = set(entry) - {"name", "args"}
    else:  # legacy flat entry {"name": "Resize", "size": ...}
        if name == "Identity":
            return None
        name = _LEGACY_NAMES.get(name, name)
        args, extra = {k: v for k, v in entry.items() if k != "name"}, set()
    if name not in EXPORTABLE_TRANSFORMS:
        raise ValueError(f"{where} names the transform {entry['name']!r}, which is not one that minifastai "
                         f"exports (allowed: {', '.join(sorted(EXPORTABLE_TRANSFORMS))}); refusing to build it. "
                         "The file was changed or not written by minifastai's export")
    if extra or not isinstance(args, dict):
        raise ValueError(f"{where} ({name}) has a malformed entry (keys {sorted(entry)}); expected "
                         "{'name': ..., 'args': {...}}")
    builder = EXPORTABLE_TRANSFORMS[name][0]
    params = inspect.signature(builder).parameters
    unknown = [k for k in args if k not in params]
    if unknown:
        raise ValueError(f"{where} ({name}) has arguments {unknown} that {name} does not take "
                         f"(it takes {list(params)})")
    try:
        return builder(**args)
    except Exception as e:
        raise ValueError(f"{where} ({name}) has invalid arguments {args}: {type(e).__name__}: {e}") from None


# ---- the pipeline (the `dls` entry) ----------------------------------------------------------------------
def pipeline_state(pipeline: Any) -> dict:
    """An `ImagePipeline`'s item and batch transforms (allow-listed ones) and normalization, as plain data."""
    out: dict[str, Any] = {"item_tfms": [], "batch_tfms": []}
    skipped: list[tuple[str, bool]] = []
    for key, tfms in (("item_tfms", pipeline.item_tfms), ("batch_tfms", pipeline.batch_tfms)):
        for t in tfms:
            d = tfm_to_state(t)
            if d is None:
                skipped.append((type(t).__name__, not is_augmentation(t)))
            else:
                out[key].append(d)
    if skipped:
        matters = [n for n, m in skipped if m]
        warnings.warn(f"the export cannot store the transforms {[n for n, _ in skipped]} (it stores only "
                      f"{', '.join(sorted(EXPORTABLE_TRANSFORMS))}). " + (
                          f"{matters} change inputs at inference, so apply them yourself before predict"
                          if matters else "They only augment training data, so predictions are unaffected"),
                      stacklevel=5)
    norm = pipeline.norm
    out["normalize"] = None if norm is None else [list(norm.mean), list(norm.std)]
    return out


def pipeline_from_state(state: dict, source: str = "the export") -> tuple[list, list, Normalize | None]:
    """(item transforms, batch transforms, normalization) from `pipeline_state`'s entries, building only
    allow-listed transforms (errors name the entry): what `ImagePipeline.from_export_state` is built from."""
    lists = {}
    for key in ("item_tfms", "batch_tfms"):
        entries = state.get(key) or []
        if not isinstance(entries, list):
            raise ValueError(f"{source}: dls.{key} must be a list of transform entries, got "
                             f"{type(entries).__name__}")
        built = [tfm_from_state(e, f"{source}: dls.{key}[{i}]") for i, e in enumerate(entries)]
        lists[key] = [t for t in built if t is not None]
    norm = state.get("normalize")
    normalize = None
    if norm is not None:
        if not (isinstance(norm, (list, tuple)) and len(norm) == 2):
            raise ValueError(f"{source}: dls.normalize must be [mean, std], got {norm!r}")
        try:
            normalize = Normalize(norm[0], norm[1])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: dls.normalize is invalid: {e}") from None
    return lists["item_tfms"], lists["batch_tfms"], normalize


def vocab_from_state(state: dict, source: str = "the export") -> list | None:
    """The classes stored in the `dls` entry (None, or a list of class names; anything else is an error)."""
    vocab = state.get("vocab")
    if vocab is not None and not (isinstance(vocab, list) and all(
            isinstance(v, (str, int, float, bool)) for v in vocab)):
        raise ValueError(f"{source}: dls.vocab must be a list of class names, got {type(vocab).__name__}")
    return vocab


def target_from_state(state: dict, source: str = "the export") -> tuple[str, int | None, int]:
    """(target kind, regression outputs, image channels) stored in the `dls` entry; an export written before they
    were stored holds a single-label RGB classifier."""
    from ..data.blocks import TARGET_KINDS

    target, n_out, channels = state.get("target", "category"), state.get("n_out"), state.get("channels", 3)
    if target not in TARGET_KINDS:
        raise ValueError(f"{source}: dls.target={target!r} must be one of {TARGET_KINDS}")
    if n_out is not None and (isinstance(n_out, bool) or not isinstance(n_out, int) or n_out < 1):
        raise ValueError(f"{source}: dls.n_out={n_out!r} must be a positive int or None")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"{source}: dls.channels={channels!r} must be 1 or 3")
    return target, n_out, channels


# ---- the `builder` entry ---------------------------------------------------------------------------------
def builder_info(arch: str, source: str, n_out: int, cut: int | Callable | None, lin_ftrs: Sequence[int] | None,
                 ps: float | Sequence[float], concat_pool: bool, weights: str, stages: bool,
                 model_kwargs: dict | None = None, rebuild_problem: str | None = None,
                 y_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """How `rebuild_learner` rebuilds a `vision_learner` model: its arch and where it came from (`source`), the
    head's arguments, the weights' description, the splitter, and timm's model keywords (`model_kwargs`, timm
    archs only); `rebuild_problem`: why it cannot be rebuilt, when it cannot."""
    info: dict[str, Any] = {"module": EXPORT_MODULE, "arch": arch, "source": source,
                            "n_out": n_out, "cut": cut if isinstance(cut, int) else None, "custom_cut": callable(cut),
                            "lin_ftrs": None if lin_ftrs is None else list(lin_ftrs),
                            "ps": ps if isinstance(ps, (int, float)) else list(ps), "concat_pool": concat_pool,
                            "weights": weights, "splitter": "stages" if stages else None,
                            "y_range": None if y_range is None else [float(v) for v in y_range]}
    if model_kwargs is not None:
        info["model_kwargs"] = model_kwargs
    if rebuild_problem:
        info["rebuild_problem"] = rebuild_problem
    return info
