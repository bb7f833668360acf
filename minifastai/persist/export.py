"""`learn.export` and `load_learner`: weights plus what inference needs, rebuilt by the rebuilder an application
registered (`registry.py`), after the file's shapes are checked on the meta device."""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..data import DataLoaders
from ..losses import ACTIVATIONS
from ..ranks import is_main_process
from ..torch_core import unwrap_model
from .atomic import atomic_save, clean_stale_temporaries
from .fileformat import (
    DamagedFileError,
    _check_types,
    _malformed,
    check_manifest,
    check_plain,
    check_state_dict,
    manifest,
    safe_load,
    with_checksum,
)
from .registry import Rebuilder, find_rebuilder, learner_factory

if TYPE_CHECKING:
    from ..learner import Learner

def export_weights(learn: Learner) -> dict[str, Any]:
    """The weights `export` writes: the model's, unless a callback's `export_weights(weights)` replaces them
    (`EMA` gives its averaged weights)."""
    weights = unwrap_model(learn.model).state_dict()
    for cb in learn.cbs:
        f = getattr(cb, "export_weights", None)
        if callable(f):
            weights = f(weights)
    return weights


def export_learner(learn: Learner, path: Path) -> Path:
    """Weights plus what inference needs (classes, preprocessing, how to rebuild the model), with a checksum,
    atomically.

    Everything is checked to load with `torch.load(weights_only=True)`; under DDP only the main process
    writes.
    """
    path = Path(path)
    state = {"model": export_weights(learn),
             "dls": check_plain(learn.dls.export_state(), "dls.export_state()"),
             "builder": check_plain(learn.export_info, "learn.export_info"),
             "activation": learn.activation_name,
             "group_names": list(learn.group_names),
             "manifest": manifest()}
    if not is_main_process():
        return path
    clean_stale_temporaries(path.parent)
    return atomic_save(with_checksum(state), path)


ALLOCATION_SLACK = 256 * 2**20
"""Bytes a model build may allocate beyond twice the stored weights when it cannot be checked on the meta
device first."""

_FACTORIES = {f for f in (torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full, torch.rand,
                          torch.randn, torch.randint, torch.randperm, torch.arange, torch.linspace, torch.logspace,
                          torch.eye, torch.tensor, torch.normal, torch.Tensor.new_empty, torch.Tensor.new_zeros,
                          torch.Tensor.new_ones, torch.Tensor.new_full, torch.Tensor.new_tensor)}


class AllocationCap(TorchFunctionMode):
    """Inside the block, tensor factory calls (`torch.empty`, `zeros`, ... as modules' constructors use them)
    that would bring the total allocated beyond `limit` bytes raise `ValueError(f"{what} ...")` before
    allocating: each call's size is found on the meta device first."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__()
        self.limit, self.what, self.used = limit, what, 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _FACTORIES and "out" not in kwargs:
            try:
                probe = func(*args, **{**kwargs, "device": "meta"})
            except Exception:
                probe = None
            if isinstance(probe, torch.Tensor):
                self.used += probe.numel() * probe.element_size()
                if self.used > self.limit:
                    raise ValueError(f"{self.what} would allocate more than {self.limit / 2**20:.0f} MiB while "
                                     f"building the model (a {tuple(probe.shape)} tensor), far more than the "
                                     "weights stored in the file: its entries are damaged or crafted")
        return func(*args, **kwargs)


def _check_export(state: dict, path: Path) -> None:
    _check_types(state, path, {"dls": (dict,), "builder": (dict, type(None)), "activation": (str, type(None)),
                               "group_names": (list, tuple, type(None)), "manifest": (dict, type(None))})
    if "dls" not in state:
        raise _malformed(path, "'dls'", "is missing (was this file written by learn.save? use learn.load)")
    if state.get("activation") not in ACTIVATIONS:
        raise _malformed(path, "'activation'", f"is {state['activation']!r}, not one of {list(ACTIVATIONS)}")
    names = state.get("group_names")
    if names is not None and not all(isinstance(n, str) for n in names):
        raise _malformed(path, "'group_names'", "is not a list of strings")
    dls = state["dls"]
    if dls.get("vocab") is not None and not isinstance(dls["vocab"], (list, tuple)):
        raise _malformed(path, "'dls'['vocab']", f"is a {type(dls['vocab']).__name__}, not a list of classes")
    if dls.get("n_inp") is not None and not (isinstance(dls["n_inp"], int) and dls["n_inp"] >= 1):
        raise _malformed(path, "'dls'['n_inp']", f"is {dls['n_inp']!r}, not a positive number of inputs")


def _builder(state: dict, path: Path) -> tuple[str, Rebuilder]:
    builder = state.get("builder")
    module = builder.get("module") if isinstance(builder, dict) else None
    return str(module), find_rebuilder(module, path)


def _build(rebuild: Callable[..., Learner], module: str, state: dict, path: Path, device: Any) -> Learner:
    try:
        return rebuild(state, device=device, source=str(path))
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise DamagedFileError(f"{path} is malformed: the entries for {module} cannot be read "
                               f"({type(e).__name__}: {e})") from e


def _stored_bytes(sd: dict) -> int:
    seen: dict[int, int] = {}
    for v in sd.values():
        if isinstance(v, torch.Tensor):
            s = v.untyped_storage()
            seen[s.data_ptr()] = max(seen.get(s.data_ptr(), 0), s.nbytes())
    return sum(seen.values())


def rebuild_checked(state: dict, path: Path, device: Any = "cpu") -> Learner:
    """The learner an export describes, built only after its shapes are checked against the stored weights.

    The allow-listed builder runs first on the meta device (no memory): a model whose parameter or buffer
    names or shapes differ from the stored tensors is an error naming the file, raised before anything real
    is built. A builder that cannot run on the meta device is built for real under `AllocationCap` (twice
    the stored bytes plus `ALLOCATION_SLACK`).
    """
    module, rebuilder = _builder(state, path)
    if rebuilder.check is not None:
        rebuilder.check(state, path)
    rebuild = rebuilder.rebuild
    probe = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                probe = rebuild(state, device=device, source=str(path))
        except ValueError:
            raise  # the builder refused the file's entries (it names the file): nothing was built
        except Exception:
            probe = None  # not buildable on meta (or malformed: the real build below raises that)
    if probe is not None:
        check_state_dict(probe.model, state["model"], f"{path} describes a model ({module}) that does not fit the "
                         "weights stored in it (the file is damaged or crafted)")
        return _build(rebuild, module, state, path, device)
    with AllocationCap(2 * _stored_bytes(state["model"]) + ALLOCATION_SLACK, str(path)):
        return _build(rebuild, module, state, path, device)


def load_learner(path: str | os.PathLike, model: nn.Module | None = None, device: Any = "cpu") -> Learner:
    """Rebuild a learner from `Learner.export`: built-in vision/tabular learners need no code, else pass
    `model`. The file is checked (checksum, entries, shapes) before a model is built or loaded."""
    path = Path(path)
    state = safe_load(path)
    _check_export(state, path)
    check_manifest(state.get("manifest") or {}, path)
    if model is None:
        if not state.get("builder"):
            raise ValueError(f"{path} holds a custom model: pass it, e.g. "
                             f"load_learner({str(path)!r}, model=MyNet())")
        learn = rebuild_checked(state, path, device)
    else:
        check_state_dict(model, state["model"], f"the weights in {path} do not fit the model")
        no_loader: Any = None  # an inference-only DataLoaders
        dls = DataLoaders(no_loader, no_loader, device=device, n_inp=state["dls"].get("n_inp"),
                          vocab=state["dls"].get("vocab"))
        learn = learner_factory()(dls, model, activation=state.get("activation"))
    try:
        learn.model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"the weights in {path} do not fit the model: {e}") from e
    learn.model.to(learn.dls.device).eval()
    return learn


def export(learn: Learner, fname: str | Path = "export.pkl") -> Path:
    """`learn.export()`: weights and what inference needs, to `learn.path / fname` (fastai's name; a
    `torch.load(weights_only=True)` file, never a code pickle); see `load_learner`."""
    return export_learner(learn, learn.path / fname)
