"""Checkpoints and exports: atomic writes, RNG state, safe (`weights_only`) loading, version manifests."""
from __future__ import annotations

import importlib
import os
import random
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from .learner import Learner


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` to a temporary file in the same folder, flush it to disk, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def safe_load(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """`torch.load(weights_only=True)` with an error that names the file when it is missing or damaged."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for damaged files
        raise RuntimeError(f"could not read {path}: the file is damaged, truncated or not a minifastai file "
                           f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if not isinstance(obj, dict) or "model" not in obj:
        raise RuntimeError(f"{path} is not a minifastai checkpoint (no 'model' entry)")
    return obj


def get_rng_state() -> dict:
    """torch, CUDA, numpy and random states as tensors and plain types (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "random": random.getstate()}


def set_rng_state(state: dict) -> None:
    """Restore what `get_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, g = state["random"]
    random.setstate((version, tuple(internal), g))


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_checkpoint(learn: Learner, path: Path, with_opt: bool = True) -> Path:
    """Model, optimizer, training position and RNG states, written atomically."""
    state = {"model": _unwrap(learn.model).state_dict(),
             "opt": learn.opt.state_dict() if with_opt and learn.opt is not None else None,
             "position": {"epoch": getattr(learn, "epoch", 0), "train_iter": getattr(learn, "train_iter", 0)},
             "rng": get_rng_state(),
             "manifest": manifest()}
    return atomic_save(state, path)


def load_checkpoint(learn: Learner, path: Path, with_opt: bool = True, strict: bool = True) -> dict:
    """Load what `save_checkpoint` wrote into `learn`; a file that does not fit is an error naming it."""
    state = safe_load(path, map_location=learn.dls.device)
    try:
        _unwrap(learn.model).load_state_dict(state["model"], strict=strict)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not fit this model: {e}") from e
    if with_opt and state.get("opt") is not None:
        if learn.opt is None:
            learn.create_opt()
        try:
            learn.opt.load_state_dict(state["opt"])
        except ValueError as e:
            raise ValueError(f"optimizer state in {path} does not fit this learner's layer groups: {e}") from e
    if state.get("rng"):
        set_rng_state(state["rng"])
    return state


def manifest() -> dict[str, str]:
    """Versions of the libraries that wrote a file."""
    from . import __version__

    out = {"minifastai": __version__, "torch": torch.__version__.split("+")[0]}
    try:
        from importlib.metadata import version

        out["torchvision"] = version("torchvision").split("+")[0]
    except Exception:
        pass
    return out


def check_manifest(saved: dict[str, str], path: Path) -> None:
    """Warn when a file was written with other library versions than the ones installed now."""
    now = manifest()
    diff = [f"{k} {v} (now {now.get(k, 'missing')})" for k, v in saved.items() if now.get(k) != v]
    if diff:
        warnings.warn(f"{path} was written with {', '.join(diff)}; it usually loads fine, but check predictions",
                      stacklevel=3)


def export_learner(learn: Learner, path: Path) -> Path:
    """Weights plus what inference needs (classes, preprocessing, how to rebuild the model), atomically."""
    state = {"model": _unwrap(learn.model).state_dict(),
             "dls": learn.dls.export_state(),
             "builder": learn.export_info,
             "activation": learn.activation_name,
             "group_names": list(learn.group_names),
             "manifest": manifest()}
    return atomic_save(state, path)


def load_learner(path: str | os.PathLike, model: nn.Module | None = None, device: Any = "cpu") -> Learner:
    """Rebuild a learner from `Learner.export`: built-in vision/tabular learners need no code; else pass `model`."""
    from .data import DataLoaders
    from .learner import Learner

    path = Path(path)
    state = safe_load(path, map_location=device)
    check_manifest(state.get("manifest", {}), path)
    builder = state.get("builder")
    if model is None:
        if not builder:
            raise ValueError(f"{path} holds a custom model: pass it, e.g. load_learner({str(path)!r}, model=MyNet())")
        module = builder.get("module", "")
        if not module.startswith("minifastai."):
            raise ValueError(f"{path} names builder module {module!r}; only minifastai's own are loaded")
        learn = importlib.import_module(module).rebuild_learner(state, device=device)
    else:
        dls = DataLoaders(None, None, device=device, n_inp=state["dls"].get("n_inp"), vocab=state["dls"].get("vocab"))
        learn = Learner(dls, model, activation=state.get("activation"))
    try:
        learn.model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"the weights in {path} do not fit the model: {e}") from e
    learn.model.to(learn.dls.device).eval()
    return learn
