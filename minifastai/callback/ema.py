"""Exponential moving average of the weights (`EMA`), kept in a `torch.optim.swa_utils.AveragedModel`."""
from __future__ import annotations

from collections import defaultdict
from numbers import Real
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..torch_core import unwrap_model
from .core import Callback


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, detached (the order `AveragedModel(use_buffers=True)` averages them in)."""
    return [t.detach() for t in (*model.parameters(), *model.buffers())]


class EMA(Callback):
    """Keeps `ema_model`, an exponential moving average of the weights (and norm-layer statistics):
    `ema = decay * ema + (1 - decay) * weights` after every optimizer step, starting from a copy at the first.

    `ema_model` is a `torch.optim.swa_utils.AveragedModel` (its `module` has the model's parameter names),
    updated with torch's `get_ema_multi_avg_fn(decay)` on the device, without the host-device
    synchronisations `AveragedModel.update_parameters` makes. With `validate_on_ema=True` (default) the
    validation of each epoch, `learn.validate()`, `get_preds()` and `predict()` run on the averaged weights
    (swapped into `learn.model` for the pass, so a compiled model stays compiled); `learn.model` keeps the
    trained weights. `learn.export()` writes the averaged weights. The average is saved in checkpoints and a
    resumed fit continues it exactly, and `learn.load` brings back the file's average with its weights (a file
    without one resets it, so `validate()` and `export()` never mix a loaded model with another average).
    Skipped optimizer steps (float16 overflow, gradient accumulation) do not update it; `lr_find` sweeps leave
    it alone.
    """

    order = 20
    run_after = ("MixedPrecision", "GradientClip")  # they decide whether the step happens
    run_in_lr_find = False  # a sweep's weights are not averaged
    restore_on_load = True  # the average belongs to the weights: learn.load restores (or resets) it with them

    def __init__(self, decay: float = 0.999, validate_on_ema: bool = True) -> None:
        d: Any = decay  # any object may arrive here, whatever the annotation says
        if isinstance(d, bool) or not isinstance(d, Real) or not 0.0 <= float(d) <= 1.0:
            raise ValueError(f"EMA's decay is the weight of the old average, a number in [0, 1] (typical: 0.999), "
                             f"got {decay!r}")
        self.decay, self.validate_on_ema = float(decay), validate_on_ema
        self.ema_model: AveragedModel | None = None
        self.n_updates = 0  # optimizer steps averaged so far (ema_model.n_averaged, kept on the host too)
        self._avg_fn = get_ema_multi_avg_fn(self.decay)
        self._backup: list[torch.Tensor] | None = None
        self._active = self._step_cancelled = False
        self._plan: tuple[list, list] | None = None  # what update() does, built once per fit

    @property
    def name(self) -> str:
        """Exposed as `learn.ema`."""
        return "ema"

    # ---- the average ------------------------------------------------------------------------------
    def create(self) -> AveragedModel:
        """Build `ema_model` from the learner's model now (done at the first fit otherwise)."""
        model = unwrap_model(self.learn.model)
        ema = AveragedModel(model, multi_avg_fn=self._avg_fn, use_buffers=True)
        for m in ema.module.modules():  # a compiled model's copy would call the original module's compiled forward
            if getattr(m, "_compiled_call_impl", None) is not None:
                m._compiled_call_impl = None
        ema.requires_grad_(False)
        ema.n_averaged.fill_(self.n_updates)
        self.ema_model = ema
        return ema

    def _pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        assert self.ema_model is not None
        ema, model = _tensors(self.ema_model.module), _tensors(unwrap_model(self.learn.model))
        if len(ema) != len(model) or any(e.shape != m.shape for e, m in zip(ema, model)):
            raise ValueError("the model's parameters no longer match the EMA's copy (was the model replaced?); "
                             "create a new EMA callback for the new model")
        return list(zip(ema, model))

    def _make_plan(self) -> tuple[list, list]:
        """(float tensors grouped by device and dtype for torch's foreach EMA, other tensors to copy)."""
        groups: dict[tuple, tuple[list[torch.Tensor], list[torch.Tensor]]] = defaultdict(lambda: ([], []))
        copies = []
        for e, m in self._pairs():
            if e.device != m.device:
                raise ValueError(f"the EMA's weights are on {e.device} and the model's on {m.device}")
            if e.is_floating_point() or e.is_complex():
                g = groups[(e.device, e.dtype)]
                g[0].append(e)
                g[1].append(m)
            else:  # integer buffers (BatchNorm's num_batches_tracked) follow the model
                copies.append((e, m))
        return list(groups.values()), copies

    @torch.no_grad()
    def update(self) -> None:
        """Average the current weights in (the first update copies them), on the device, with no sync."""
        if self.ema_model is None:
            self.create()
        assert self.ema_model is not None
        if self._plan is None:
            self._plan = self._make_plan()
        groups, copies = self._plan
        if self.n_updates == 0:
            for ema_ts, model_ts in groups:
                torch._foreach_copy_(ema_ts, model_ts)
        else:
            for ema_ts, model_ts in groups:
                self._avg_fn(ema_ts, model_ts, self.ema_model.n_averaged)
        for e, m in copies:
            e.copy_(m)
        self.ema_model.n_averaged += 1
        self.n_updates += 1

    # ---- events -----------------------------------------------------------------------------------
    def before_fit(self) -> None:
        """Create the average at the first fit; follow the model to its device."""
        self._restore()
        self._active = True
        model = unwrap_model(self.learn.model)
        if self.ema_model is None:
            self.create()
        else:
            p = next(iter(model.parameters()), None)
            if p is not None:
                self.ema_model.to(p.device)
        self._plan = self._make_plan()  # a model that no longer fits is an error now, not at the first step

    def before_batch(self) -> None:
        """Note that this batch's step has not been cancelled (yet)."""
        self._step_cancelled = False

    def after_cancel_step(self) -> None:
        """The optimizer did not step (e.g. a float16 overflow): nothing to average."""
        self._step_cancelled = True

    def after_step(self) -> None:
        """Average the new weights in."""
        if self._active and not self._step_cancelled:
            self.update()

    def before_train(self) -> None:
        """Training uses the trained weights (put back if a validation ended in an error)."""
        self._restore()

    def before_validate(self) -> None:
        """Swap the averaged weights into the model for the validation pass."""
        self._restore()
        if not self.validate_on_ema or self.ema_model is None or self.n_updates == 0:
            return
        with torch.no_grad():
            pairs = self._pairs()
            self._backup = [m.clone() for _, m in pairs]
            for e, m in pairs:
                m.copy_(e)

    def after_validate(self) -> None:
        """Put the trained weights back."""
        self._restore()

    def after_fit(self) -> None:
        """Put the trained weights back (also after an error)."""
        self._restore()
        self._active, self._plan = False, None

    def restore_after_error(self) -> None:
        """A `validate`/`get_preds` that raised: the trained weights go back into the model at once."""
        self._restore()

    @torch.no_grad()
    def _restore(self) -> None:
        if self._backup is not None:
            backup, self._backup = self._backup, None
            for t, b in zip(_tensors(unwrap_model(self.learn.model)), backup):
                t.copy_(b)

    # ---- checkpoints and export -------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The averaged weights and the update count (checkpoints keep them; a resumed fit continues)."""
        return {"ema": None if self.ema_model is None else self.ema_model.state_dict(),
                "n_updates": int(self.n_updates), "decay": self.decay}

    def check_state_dict(self, state: dict | None) -> None:
        """Raise `ValueError` unless `load_state_dict(state)` fits this model (nothing changes)."""
        if state is None:
            return
        n = state["n_updates"]
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n_updates must be an int >= 0, got {n!r}")
        ema = state.get("ema")
        if ema is None:
            return
        if not isinstance(ema, dict):
            raise TypeError(f"'ema' must be a state dict, got {type(ema).__name__}")
        want = {f"module.{k}": tuple(v.shape) for k, v in unwrap_model(self.learn.model).state_dict().items()}
        want["n_averaged"] = ()
        got = {k: tuple(getattr(v, "shape", (None,))) for k, v in ema.items()}
        if got != want:
            diff = sorted(set(got.items()) ^ set(want.items()))[:4]
            raise ValueError(f"the saved average does not have this model's names and shapes (first differences: "
                             f"{diff})")

    def load_state_dict(self, state: dict | None) -> None:
        """Continue from `state_dict()`'s average (None: no average yet)."""
        self._plan = None
        if state is None:
            self.n_updates, self.ema_model = 0, None
            return
        self.n_updates = int(state["n_updates"])
        if state.get("ema") is None:
            self.ema_model = None
            return
        if self.ema_model is None:
            self.create()
        assert self.ema_model is not None
        self.ema_model.load_state_dict(state["ema"])

    def export_weights(self, weights: dict[str, Any]) -> dict[str, Any]:
        """`learn.export()` writes the averaged weights instead of the trained ones (same names)."""
        if self.ema_model is None or self.n_updates == 0:
            return weights
        ema = self.ema_model.module.state_dict()
        if ema.keys() != weights.keys():
            raise ValueError("the EMA's weights do not have the model's names; create a new EMA for this model")
        return ema

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, validate_on_ema={self.validate_on_ema}, updates={self.n_updates})"
