"""Checkpoints and exports: atomic writes, RNG state, safe (`weights_only`) loading, version manifests,
training position and callback state for resuming, and `SaveModelCallback`."""
from __future__ import annotations

import importlib
import math
import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .callback import Callback

if TYPE_CHECKING:
    from .learner import Learner

PLAIN_TYPES = (type(None), bool, int, float, str, torch.Tensor)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` to a temporary file in the same folder, flush it to disk, then rename over `path`.

    A crash (even SIGKILL) at any point leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def check_plain(obj: Any, where: str) -> Any:
    """`obj` with numpy scalars made Python numbers; a `TypeError` naming `where` if
    `torch.load(weights_only=True)` could not read it back (allowed: tensors, numbers, strings, None, lists,
    tuples and dicts)."""
    if isinstance(obj, PLAIN_TYPES):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return type(obj)(check_plain(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, dict):
        return {check_plain(k, f"{where} key"): check_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    raise TypeError(f"{where} is a {type(obj).__name__}, which torch.load(weights_only=True) cannot read "
                    "back; use tensors, numbers, strings, None, lists, tuples and dicts "
                    "(e.g. torch.as_tensor(array))")


# ---- RNG ---------------------------------------------------------------------------------------
def get_rng_state() -> dict:
    """torch, CUDA, numpy and random states as tensors and plain types (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "random": random.getstate()}


def set_rng_state(state: dict) -> None:
    """Restore what `get_rng_state` returned (CUDA states only for the devices this machine has)."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, g = state["random"]
    random.setstate((version, tuple(internal), g))


# ---- checkpoints -------------------------------------------------------------------------------
def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _epoch_len(learn: Learner) -> int | None:
    dl = getattr(learn.dls, "train", None)
    return len(dl) if dl is not None and hasattr(dl, "__len__") else None


def training_position(learn: Learner, next_epoch: int | None = None) -> dict:
    """Where the learner is in its fit: epoch, iteration, schedule position, and where a resumed fit starts.

    `next_epoch` (the first unfinished epoch) is derived from the count of training batches done unless given.
    """
    n_iter = _epoch_len(learn)
    train_iter = int(getattr(learn, "train_iter", 0))
    boundary = next_epoch is not None or (bool(n_iter) and train_iter % n_iter == 0)
    if next_epoch is None:
        next_epoch = train_iter // n_iter if n_iter else int(getattr(learn, "epoch", 0))
    return {"epoch": int(getattr(learn, "epoch", 0)), "iter": int(getattr(learn, "iter", 0)),
            "train_iter": train_iter, "n_iter": n_iter, "n_epoch": int(getattr(learn, "n_epoch", 1)),
            "pct_train": float(getattr(learn, "pct_train", 0.0)), "next_epoch": int(next_epoch),
            "epoch_boundary": bool(boundary)}


def callback_states(learn: Learner) -> dict[str, Any]:
    """`state_dict()` of every callback that defines one, by callback name."""
    out = {}
    for cb in learn.cbs:
        f = getattr(cb, "state_dict", None)
        if callable(f) and callable(getattr(cb, "load_state_dict", None)):
            out[cb.name] = check_plain(f(), f"{type(cb).__name__}.state_dict()")
    return out


def _barrier() -> None:
    from .distributed import barrier

    barrier()


def loader_generators(dl: Any) -> list[torch.Generator]:
    """The `torch.Generator`s a training loader shuffles with, when it was given its own (else it uses the
    global torch RNG, which `get_rng_state` covers)."""
    out: list[torch.Generator] = []
    for g in (getattr(dl, "generator", None), getattr(getattr(dl, "sampler", None), "generator", None)):
        if isinstance(g, torch.Generator) and all(g is not o for o in out):
            out.append(g)
    return out


def save_checkpoint(learn: Learner, path: Path, with_opt: bool = True, next_epoch: int | None = None) -> Path:
    """Model, optimizer, training position, RNG states and callback states, written atomically.

    Under distributed training only the main process writes (the others return the same path).
    """
    from .distributed import is_main_process

    path = Path(path)
    if not is_main_process():
        return path
    state = {"model": _unwrap(learn.model).state_dict(),
             "opt": learn.opt.state_dict() if with_opt and learn.opt is not None else None,
             "position": training_position(learn, next_epoch),
             "rng": {**get_rng_state(), "loaders": [g.get_state() for g in loader_generators(learn.dls.train)]},
             "callbacks": callback_states(learn),
             "manifest": manifest()}
    atomic_save(state, path)
    _write_pointer(path)
    return path


LATEST = "latest_checkpoint.txt"


def _write_pointer(path: Path) -> None:
    """Record `path` as the latest checkpoint of its folder (a one-line text file, replaced atomically)."""
    tmp = path.with_name(f".{LATEST}.tmp{os.getpid()}")
    tmp.write_text(path.name + "\n")
    os.replace(tmp, path.parent / LATEST)


def load_checkpoint(learn: Learner, path: Path, with_opt: bool = True, strict: bool = True,
                    with_rng: bool = True, with_cbs: bool = True) -> dict:
    """Load what `save_checkpoint` wrote into `learn`; a file that does not fit is an error naming it.

    Restores weights, optimizer state (`with_opt`), RNG states (`with_rng`) and, at the start of the next fit
    (after the callbacks' own `before_fit`), the state of callbacks with the same names (`with_cbs`).
    """
    path = Path(path)
    _barrier()  # under DDP: wait until the main process has finished writing
    state = safe_load(path, map_location="cpu")
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
            raise ValueError(f"optimizer state in {path} does not fit this learner's layer groups: {e}"
                             ) from e
    if with_rng and state.get("rng"):
        set_rng_state(state["rng"])
        for g, s in zip(loader_generators(learn.dls.train), state["rng"].get("loaders", [])):
            g.set_state(s)
    if with_cbs:
        for cb in [c for c in learn.cbs if isinstance(c, RestoreCallbackStates)]:
            learn.remove_cb(cb)
        if state.get("callbacks"):
            learn.add_cb(RestoreCallbackStates(state["callbacks"], path))
    return state


class RestoreCallbackStates(Callback):
    """Gives saved callback states to the next fit's callbacks (after their own `before_fit`), then leaves."""

    order = 10_000

    def __init__(self, states: dict[str, Any], path: Path) -> None:
        self.states, self.path = states, path

    def before_fit(self) -> None:
        """Load each saved state into the callback of the same name, then remove this callback (an
        `lr_find` sweep puts both the states and this callback back afterwards)."""
        for cb in self.learn.cbs:
            if cb.name in self.states and callable(getattr(cb, "load_state_dict", None)):
                cb.load_state_dict(self.states[cb.name])
        self.learn.remove_cb(self)


def checkpoint_files(learn: Learner) -> list[Path]:
    """The checkpoints under `learn.path / learn.model_dir`, oldest first: by modification time, except that
    the one named in `latest_checkpoint.txt` (written by every save, survives copying) comes last."""
    folder = learn.path / learn.model_dir
    if not folder.is_dir():
        return []
    files = sorted((p for p in folder.glob("*.pth") if not p.name.startswith(".") and p.is_file()),
                   key=lambda p: (p.stat().st_mtime_ns, p.name))
    pointer = folder / LATEST
    if pointer.is_file():
        named = folder / pointer.read_text().strip()
        if named in files:
            files = [p for p in files if p != named] + [named]
    return files


def resume_latest(learn: Learner) -> int:
    """Load the most recently written checkpoint under `path / model_dir`; returns the epoch to start from."""
    from .distributed import is_main_process

    files = checkpoint_files(learn)
    folder = learn.path / learn.model_dir
    if not files:
        raise FileNotFoundError(
            f"resume=True, but there is no checkpoint (*.pth) in {folder}. Train with "
            "cbs=SaveModelCallback(every_epoch=True) to write one per epoch, or drop resume=True to start "
            "afresh.")
    latest = files[-1]
    try:
        # inside dry_run only the position is read: the plan starts there, nothing is loaded
        state = safe_load(latest) if learn.dry else load_checkpoint(learn, latest)
    except (RuntimeError, ValueError) as e:
        prev = f" to resume from {files[-2].name}" if len(files) > 1 else ""
        raise RuntimeError(f"cannot resume from the latest checkpoint {latest}: {e}. "
                           f"Delete or move it{prev}, or load another with learn.load(name) and pass "
                           "start_epoch=k.") from e
    pos = state.get("position")
    if not pos:
        raise RuntimeError(f"{latest} holds no training position (was it written by Learner.export?); "
                           "move it out of the checkpoint folder, or learn.load(name) and pass start_epoch=k")
    n_iter = _epoch_len(learn)
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


# ---- SaveModelCallback -------------------------------------------------------------------------
class SaveModelCallback(Callback):
    """Saves the model when `monitor` improves (to `fname`), or every epoch (`every_epoch`: `fname_{epoch}`).

    With `every_epoch` (True, or an int n: every n-th epoch) each file holds all that `fit(..., resume=True)`
    needs; `keep=k` deletes all but the newest k of them (after the new one is safely written). In best-model
    mode the best weights are loaded back at the end of the fit, unless `at_end=True`, which saves the final
    model instead. `comp` defaults to "lower is better" when `monitor` contains 'loss' or 'error'.
    """

    order = 70  # after Recorder (50): this epoch's values are there; after ProgressCallback (60)

    def __init__(self, monitor: str = "valid_loss", comp: Callable[[float, float], bool] | None = None,
                 min_delta: float = 0.0, fname: str = "model", every_epoch: bool | int = False,
                 at_end: bool = False, with_opt: bool = True, keep: int | None = None) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be None (keep every file) or at least 1, got {keep}")
        self.monitor, self.min_delta, self.fname = monitor, abs(float(min_delta)), fname
        self.every_epoch, self.at_end, self.with_opt, self.keep = every_epoch, at_end, with_opt, keep
        self.lower_is_better = comp is None and ("loss" in monitor or "error" in monitor)
        self.comp = comp or (np.less if self.lower_is_better else np.greater)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.saved_epochs: list[int] = []
        self._started = self._saved = False

    def _improved(self, val: float) -> bool:
        if self.best is None:
            return True
        if self.comp is np.less:
            return bool(val < self.best - self.min_delta)
        if self.comp is np.greater:
            return bool(val > self.best + self.min_delta)
        return bool(self.comp(val, self.best))

    def before_fit(self) -> None:
        """Start tracking afresh (a resumed fit gets its saved state back right after this)."""
        if getattr(self.learn, "recorder", None) is None:
            raise ValueError("SaveModelCallback reads the Recorder's values; create the Learner with "
                             "default_cbs=True or add a Recorder()")
        names = self.learn.recorder.metric_names
        if self.monitor not in names[1:-1]:
            raise ValueError(f"SaveModelCallback monitors {self.monitor!r}, which the recorder does not "
                             f"have; choose one of {names[1:-1]}")
        if not self.every_epoch and self.monitor.startswith("valid") and self.learn.dls.valid is None:
            raise ValueError(f"SaveModelCallback monitors {self.monitor!r} but there is no validation set; "
                             "monitor='train_loss', or use every_epoch=True")
        self._started = True
        self.best, self.best_epoch, self.saved_epochs, self._saved = None, None, [], False

    def after_epoch(self) -> None:
        """Track the monitored value; write this epoch's checkpoint or the new best."""
        learn = self.learn
        val = learn.recorder.values[-1][learn.recorder.metric_names.index(self.monitor)]
        new_best = val is not None and not math.isnan(val) and self._improved(val)
        if new_best:
            self.best, self.best_epoch = float(val), learn.epoch
        if self.every_epoch:
            every = 1 if self.every_epoch is True else int(self.every_epoch)
            if learn.epoch % every == 0:
                self.saved_epochs.append(learn.epoch)
                save_checkpoint(learn, learn.checkpoint_path(f"{self.fname}_{learn.epoch}"), self.with_opt,
                                next_epoch=learn.epoch + 1)
                self._prune()
        elif new_best:
            self._print(f"Better model found at epoch {learn.epoch} with {self.monitor} value: {val:.6g}.")
            save_checkpoint(learn, learn.checkpoint_path(self.fname), self.with_opt,
                            next_epoch=learn.epoch + 1)
            self._saved = True

    def _prune(self) -> None:
        from .distributed import is_main_process

        if self.keep is None or len(self.saved_epochs) <= self.keep:
            return
        old, self.saved_epochs = self.saved_epochs[: -self.keep], self.saved_epochs[-self.keep :]
        if is_main_process():
            for e in old:
                self.learn.checkpoint_path(f"{self.fname}_{e}").unlink(missing_ok=True)

    def _print(self, msg: str) -> None:
        from .distributed import is_main_process

        if is_main_process():
            print(msg)

    def after_fit(self) -> None:
        """Save the final model (`at_end`), or load the best one back (best-model mode)."""
        learn = self.learn
        started, self._started = self._started, False
        if self.at_end and started:
            save_checkpoint(learn, learn.checkpoint_path(self.fname), self.with_opt)
        elif not self.every_epoch and self._saved:
            load_checkpoint(learn, learn.checkpoint_path(self.fname), self.with_opt, with_rng=False,
                            with_cbs=False)

    def state_dict(self) -> dict:
        """Best value so far, its epoch, and the epochs saved (for `keep`)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "saved_epochs": list(self.saved_epochs)}

    def load_state_dict(self, state: dict) -> None:
        """Continue tracking from a checkpoint."""
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
        self.saved_epochs = list(state.get("saved_epochs", []))


# ---- export ------------------------------------------------------------------------------------
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
        warnings.warn(f"{path} was written with {', '.join(diff)}; it usually loads fine, but check "
                      "predictions", stacklevel=3)


def export_weights(learn: Learner) -> dict[str, Any]:
    """The weights `export` writes: the model's, unless a callback's `export_weights(weights)` replaces them
    (`EMA` gives its averaged weights)."""
    weights = _unwrap(learn.model).state_dict()
    for cb in learn.cbs:
        f = getattr(cb, "export_weights", None)
        if callable(f):
            weights = f(weights)
    return weights


def export_learner(learn: Learner, path: Path) -> Path:
    """Weights plus what inference needs (classes, preprocessing, how to rebuild the model), atomically.

    Everything is checked to load with `torch.load(weights_only=True)`; under DDP only the main process
    writes.
    """
    from .distributed import is_main_process

    path = Path(path)
    state = {"model": export_weights(learn),
             "dls": check_plain(learn.dls.export_state(), "dls.export_state()"),
             "builder": check_plain(learn.export_info, "learn.export_info"),
             "activation": learn.activation_name,
             "group_names": list(learn.group_names),
             "manifest": manifest()}
    if not is_main_process():
        return path
    return atomic_save(state, path)


def load_learner(path: str | os.PathLike, model: nn.Module | None = None, device: Any = "cpu") -> Learner:
    """Rebuild a learner from `Learner.export`: built-in vision/tabular learners need no code, else pass
    `model`."""
    from .data import DataLoaders
    from .learner import Learner

    path = Path(path)
    state = safe_load(path, map_location=device)
    check_manifest(state.get("manifest", {}), path)
    builder = state.get("builder")
    if model is None:
        if not builder:
            raise ValueError(f"{path} holds a custom model: pass it, e.g. "
                             f"load_learner({str(path)!r}, model=MyNet())")
        module = builder.get("module", "")
        if not module.startswith("minifastai."):
            raise ValueError(f"{path} names builder module {module!r}; only minifastai's own are loaded")
        learn = importlib.import_module(module).rebuild_learner(state, device=device)
    else:
        dls = DataLoaders(None, None, device=device, n_inp=state["dls"].get("n_inp"),
                          vocab=state["dls"].get("vocab"))
        learn = Learner(dls, model, activation=state.get("activation"))
    try:
        learn.model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"the weights in {path} do not fit the model: {e}") from e
    learn.model.to(learn.dls.device).eval()
    return learn
