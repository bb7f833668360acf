"""Checkpoints and resuming: `save` / `load` all or nothing (everything is checked against the learner, then
applied), the training position, callback states, the latest-checkpoint pointer, `resume=True`.
(`SaveModelCallback` lives in callback/tracker.py.)"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..callback.core import Callback
from ..data import n_batches
from ..ranks import barrier, is_main_process
from ..torch_core import unwrap_model
from .atomic import atomic_save, atomic_write, clean_stale_temporaries
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
from .rng import check_rng_state, get_rng_state, loader_generators, set_rng_state

if TYPE_CHECKING:
    from ..learner import Learner

def training_position(learn: Learner, next_epoch: int | None = None) -> dict:
    """Where the learner is in its fit: the loop state's saved fields (`learn.loop.state_dict()`: epoch,
    iteration, schedule position, ...), the epoch length `n_iter`, and where a resumed fit starts.

    `next_epoch` (the first unfinished epoch) is derived from the count of training batches done unless given.
    """
    loop = learn.loop.state_dict()
    n_iter = n_batches(getattr(learn.dls, "train", None))
    train_iter = int(loop["train_iter"])
    boundary = next_epoch is not None or (bool(n_iter) and train_iter % n_iter == 0)  # type: ignore[operator]
    if next_epoch is None:
        next_epoch = train_iter // n_iter if n_iter else int(loop["epoch"])
    return {**loop, "n_iter": n_iter, "next_epoch": int(next_epoch), "epoch_boundary": bool(boundary)}


def callback_states(learn: Learner) -> dict[str, Any]:
    """`state_dict()` of every callback that defines one, by callback name."""
    out = {}
    for cb in learn.cbs:
        f = getattr(cb, "state_dict", None)
        if callable(f) and callable(getattr(cb, "load_state_dict", None)):
            out[cb.name] = check_plain(f(), f"{type(cb).__name__}.state_dict()")
    return out


def save(learn: Learner, name: str | Path, with_opt: bool = True) -> Path:
    """`learn.save(name)`: model, optimizer, training position and RNG states, written atomically to
    `learn.checkpoint_path(name)`; returns the path."""
    return save_checkpoint(learn, learn.checkpoint_path(name), with_opt)


def load(learn: Learner, name: str | Path, with_opt: bool = True, strict: bool = True, with_rng: bool = True,
         with_cbs: bool = True) -> Learner:
    """`learn.load(name)`: all or nothing (a damaged or mismatched file is an error naming it, and the learner is
    unchanged); `with_rng=False` / `with_cbs=False` leave the RNG and callback states alone. Afterwards the learner
    has an optimizer, as fastai's (a new one when the file's state was not loaded). Returns `learn`."""
    load_checkpoint(learn, learn.checkpoint_path(name), with_opt, strict, with_rng, with_cbs)
    if learn.opt is None:
        learn.create_opt()
    return learn


def save_checkpoint(learn: Learner, path: Path, with_opt: bool = True, next_epoch: int | None = None) -> Path:
    """Model, optimizer, training position, RNG states and callback states, with a checksum, written atomically
    (stale temporary files of killed saves in the folder are removed first).

    Under distributed training only the main process writes (the others return the same path).
    """
    path = Path(path)
    if not is_main_process():
        return path
    state = {"model": unwrap_model(learn.model).state_dict(),
             "opt": learn.opt.state_dict() if with_opt and learn.opt is not None else None,
             "position": training_position(learn, next_epoch),
             "rng": {**get_rng_state(), "loaders": [g.get_state() for g in loader_generators(learn.dls.train)]},
             "callbacks": callback_states(learn),
             "manifest": manifest()}
    clean_stale_temporaries(path.parent)
    atomic_save(with_checksum(state), path)
    _write_pointer(path)
    return path


LATEST = "latest_checkpoint.txt"


def _write_pointer(path: Path) -> None:
    """Record `path` as the latest checkpoint of its folder (a one-line text file, replaced atomically)."""
    atomic_write(path.parent / LATEST, lambda f: f.write((path.name + "\n").encode()))


def _read_pointer(pointer: Path) -> str | None:
    """The name in a pointer file (its first line, at most 4 KB, never through a symlink)."""
    try:
        fd = os.open(pointer, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        first = f.read(4096).decode("utf-8", "replace").splitlines()
    return first[0].strip() if first else None


# all-or-nothing loading: everything is checked first, then applied
_ELEMENTWISE_OPTS = tuple(getattr(torch.optim, n) for n in (
    "SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "ASGD", "Rprop")
    if hasattr(torch.optim, n))


def check_opt_state(opt: torch.optim.Optimizer, saved: Any, path: Path) -> None:
    """Raise `ValueError` naming `path` unless `opt.load_state_dict(saved)` fits: the same number of param
    groups and of parameters in each, the same kind of optimizer, per-parameter state for parameters that
    exist, shaped like them (for torch's element-wise optimizers). Changes nothing."""
    head = f"optimizer state in {path} does not fit this learner's layer groups"
    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict)
            and isinstance(saved.get("param_groups"), list)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in saved["param_groups"])):
        raise _malformed(path, "'opt'", "is not an optimizer state_dict (state, param_groups with params)")
    groups, saved_groups = opt.param_groups, saved["param_groups"]
    if len(groups) != len(saved_groups):
        raise ValueError(f"{head}: the file has {len(saved_groups)} param groups, this optimizer "
                         f"{len(groups)} (another splitter, or another wd_bn_bias?)")
    for i, (g, sg) in enumerate(zip(groups, saved_groups)):
        if len(g["params"]) != len(sg["params"]):
            raise ValueError(f"{head}: param group {i} has {len(sg['params'])} parameters in the file, "
                             f"{len(g['params'])} here (another splitter or model?)")
        extra, missing = set(sg) - set(g), set(g) - set(sg)
        if extra and missing:
            raise ValueError(f"{head}: it was written by another kind of optimizer (hyper-parameters "
                             f"{sorted(k for k in sg if k != 'params')} vs {sorted(k for k in g if k != 'params')})")
    params = dict(zip(chain.from_iterable(sg["params"] for sg in saved_groups),
                      chain.from_iterable(g["params"] for g in groups)))
    for pid, st in saved["state"].items():
        p = params.get(pid)
        if p is None or not isinstance(st, dict):
            raise _malformed(path, "'opt'", f"holds state for parameter {pid!r}, which no param group lists")
        if isinstance(opt, _ELEMENTWISE_OPTS):
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape != p.shape:
                    raise ValueError(f"{head}: its {k!r} for parameter {pid} has shape {tuple(v.shape)}, the "
                                     f"parameter {tuple(p.shape)} (another splitter or parameter order?)")


def load_checkpoint(learn: Learner, path: Path, with_opt: bool = True, strict: bool = True,
                    with_rng: bool = True, with_cbs: bool = True, with_weight_states: bool | None = None) -> dict:
    """Load what `save_checkpoint` wrote into `learn`, all or nothing: weights, optimizer state (`with_opt`),
    RNG states (`with_rng`) and callback states (`with_cbs`) are all checked against the learner before any is
    applied, so a file that does not fit (an error naming it) leaves the learner as it was.

    The states of callbacks that describe the weights (`restore_on_load`, e.g. EMA's average) are applied with
    the weights (`with_weight_states`, default `with_cbs`); the others are handed to the callbacks of the same
    names at the start of the next fit (after their own `before_fit`).
    """
    path = Path(path)
    barrier()  # under DDP: wait until the main process has finished writing
    state = safe_load(path, map_location="cpu")
    _apply_checkpoint(learn, state, path, with_opt, strict, with_rng, with_cbs,
                      with_cbs if with_weight_states is None else with_weight_states)
    return state


def _apply_checkpoint(learn: Learner, state: dict, path: Path, with_opt: bool, strict: bool, with_rng: bool,
                      with_cbs: bool, with_weight_states: bool) -> None:
    _check_types(state, path, {"opt": (dict, type(None)), "rng": (dict, type(None)),
                               "callbacks": (dict, type(None)), "position": (dict, type(None)),
                               "manifest": (dict, type(None))})
    check_manifest(state.get("manifest") or {}, path)  # other library versions: a warning, as load_learner's
    model = unwrap_model(learn.model)
    # 1. check everything
    check_state_dict(model, state["model"], f"checkpoint {path} does not fit this model", strict)
    opt_state = state.get("opt") if with_opt else None
    old_opt = learn.opt
    opt = None
    if opt_state is not None:
        try:
            opt = learn.opt if learn.opt is not None else learn.create_opt()
            check_opt_state(opt, opt_state, path)
        except BaseException:
            learn.opt = old_opt
            raise
    rng = state.get("rng") if with_rng else None
    gens = loader_generators(learn.dls.train) if rng else []
    if rng:
        try:
            check_rng_state(rng, gens, rng.get("loaders"))
        except ValueError as e:
            raise DamagedFileError(f"{path}: entry 'rng' is damaged ({e}); minifastai.persist.load_checkpoint("
                                   "learn, path, with_rng=False) loads the rest") from e
    saved_cbs = state.get("callbacks") if with_cbs or with_weight_states else None
    if saved_cbs and not all(isinstance(k, str) for k in saved_cbs):
        raise _malformed(path, "'callbacks'", "is not a dict of callback name -> state")
    cb_states = saved_cbs if with_cbs else None
    for cb in learn.cbs if cb_states else ():  # states applied at the next fit are checked now, before any change
        check = getattr(cb, "check_state_dict", None)
        if cb.name in cb_states and callable(check) and not cb.restore_on_load:  # type: ignore[operator]
            _cb_state_fits(cb, cb_states[cb.name], path, check)  # type: ignore[index]
    now = [(cb, (saved_cbs or {}).get(cb.name)) for cb in learn.cbs if cb.restore_on_load] if with_weight_states \
        else []
    for cb, cb_state in now:
        _cb_state_fits(cb, cb_state, path, cb.check_state_dict)
    # 2. apply (each step was checked above; the optimizer goes back if the model still refuses)
    undo = opt.state_dict() if opt is not None and old_opt is not None else None
    try:
        if opt is not None:
            opt.load_state_dict(opt_state)  # type: ignore[arg-type]
        model.load_state_dict(state["model"], strict=strict)
    except Exception as e:
        if opt is not None and undo is not None:
            opt.load_state_dict(undo)
        learn.opt = old_opt
        raise ValueError(f"checkpoint {path} does not fit this model: {e}") from e
    if rng:
        set_rng_state(rng)
        for g, s in zip(gens, rng.get("loaders", [])):
            g.set_state(s)
    for cb, cb_state in now:
        cb.load_state_dict(cb_state)
    if with_cbs:
        for cb in [c for c in learn.cbs if isinstance(c, RestoreCallbackStates)]:
            learn.remove_cb(cb)
        if cb_states:
            learn.add_cb(RestoreCallbackStates(cb_states, path))


def _cb_state_fits(cb: Callback, state: Any, path: Path, load: Callable[[Any], Any]) -> None:
    """Run `load(state)` (a check or the load itself); an error says which callback's state in which file."""
    try:
        load(state)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise ValueError(f"the state of callback {cb.name!r} in {path} does not fit it ({type(e).__name__}: {e}); "
                         "minifastai.persist.load_checkpoint(learn, path, with_cbs=False) loads the rest") from e


class RestoreCallbackStates(Callback):
    """Gives saved callback states to the next fit's callbacks (after their own `before_fit`), then leaves."""

    order = 10_000  # last: every other callback's own before_fit has run
    log_args = False

    def __init__(self, states: dict[str, Any], path: Path) -> None:
        self.states, self.path = states, path

    def before_fit(self) -> None:
        """Load each saved state into the callback of the same name, then remove this callback (an
        `lr_find` sweep puts both the states and this callback back afterwards)."""
        for cb in self.learn.cbs:
            load = getattr(cb, "load_state_dict", None)
            if cb.name in self.states and callable(load):
                _cb_state_fits(cb, self.states[cb.name], self.path, load)
        self.learn.remove_cb(self)


def checkpoint_files(learn: Learner) -> list[Path]:
    """The checkpoints under `learn.path / learn.model_dir`, oldest first: by modification time, except that
    the one named in `latest_checkpoint.txt` (written by every save, survives copying) comes last."""
    folder = learn.path / learn.model_dir
    if not folder.is_dir():
        return []
    files = sorted((p for p in folder.glob("*.pth") if not p.name.startswith(".") and p.is_file()),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    name = _read_pointer(folder / LATEST)
    if name:
        named = folder / name
        if named in files:
            files = [p for p in files if p != named] + [named]
    return files


def _check_position(pos: Any, path: Path) -> dict:
    if not isinstance(pos, dict):
        raise DamagedFileError(f"{path} holds no training position (was it written by Learner.export?); "
                               "move it out of the checkpoint folder, or learn.load(name) and pass start_epoch=k")
    nxt = pos.get("next_epoch")
    if not (isinstance(nxt, int) and not isinstance(nxt, bool) and nxt >= 0):
        raise _malformed(path, "'position'", f"has next_epoch={nxt!r}, not an epoch number")
    n_iter = pos.get("n_iter")
    if n_iter is not None and not (isinstance(n_iter, int) and n_iter >= 0):
        raise _malformed(path, "'position'", f"has n_iter={n_iter!r}, not a batch count")
    return pos


def resume_latest(learn: Learner) -> int:
    """Load the most recently written checkpoint under `path / model_dir`; returns the epoch to start from.

    Stale temporary files of killed saves in that folder are removed first."""
    folder = learn.path / learn.model_dir
    if is_main_process() and not learn.dry:
        clean_stale_temporaries(folder)
    files = checkpoint_files(learn)
    if not files:
        raise FileNotFoundError(
            f"resume=True, but there is no checkpoint (*.pth) in {folder}. Train with "
            "cbs=SaveModelCallback(every_epoch=True) to write one per epoch, or drop resume=True to start "
            "afresh.")
    latest = files[-1]
    prev = f" to resume from {files[-2].name}" if len(files) > 1 else ""
    try:
        # inside dry_run only the position is read: the plan starts there, nothing is loaded
        barrier()  # under DDP: the main process may have just written it
        state = safe_load(latest)
        pos = _check_position(state.get("position"), latest)
        if not learn.dry:
            _apply_checkpoint(learn, state, latest, with_opt=True, strict=True, with_rng=True, with_cbs=True,
                              with_weight_states=True)
            learn.loop.load_state_dict(pos)
    except (RuntimeError, ValueError) as e:
        raise RuntimeError(f"cannot resume from the latest checkpoint {latest}: {e}. "
                           f"Delete or move it{prev}, or load another with learn.load(name) and pass "
                           "start_epoch=k.") from e
    n_iter = n_batches(getattr(learn.dls, "train", None))
    if pos.get("n_iter") and n_iter and pos["n_iter"] != n_iter:
        warnings.warn(f"{latest} was written with {pos['n_iter']} training batches per epoch, but dls.train "
                      f"has {n_iter}: the schedule will not continue where it stopped", stacklevel=2)
    if not pos.get("epoch_boundary", True):
        warnings.warn(f"{latest} was written in the middle of epoch {pos['next_epoch']}: that epoch restarts "
                      "from its beginning, so the result will differ slightly from an uninterrupted run "
                      "(SaveModelCallback writes at epoch ends)", stacklevel=2)
    if is_main_process() and not learn.dry:
        print(f"resuming from {latest}: {pos['next_epoch']} epoch(s) done")
    return int(pos["next_epoch"])
