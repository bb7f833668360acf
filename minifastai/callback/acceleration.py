"""Speed-ups that keep the Learner's contract: channels-last memory format and `torch.compile`.

`learn.to_channels_last()` converts the model's 4-D weights and every 4-D input batch to channels-last
(NHWC) memory format, which tensor cores prefer for convolutions. `learn.compile(**kwargs)` compiles the
model *in place*, as `nn.Module.compile` does, rather than wrapping it with `torch.compile(model)`: the learner keeps
the same module and parameter objects, so layer groups, the optimizer, freezing and `lr_find` see what they
saw before, and `state_dict` names stay plain (no `_orig_mod.` prefix), so checkpoints and exports load into
an uncompiled model.

Freezing after compiling: when the set of trainable parameters changes between fits (`freeze`, `unfreeze`,
`freeze_to`), the next fit clears torch's compilation caches (`torch.compiler.reset()`), so the model is traced
again with the new `requires_grad` flags. Some torch versions reuse a graph traced with the old flags and
silently give an unfrozen layer no gradient (pytorch issue #139476); the reset also keeps repeated
freeze/unfreeze cycles from exhausting dynamo's recompilation limit. It clears every compiled function of
the process, not only this model's.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..torch_core import unwrap_model
from .core import Callback

if TYPE_CHECKING:
    from ..learner import Learner



def to_channels_last_input(x: Any) -> Any:
    """4-D floating-point tensors (also inside tuples and lists) in channels-last memory format."""
    if isinstance(x, torch.Tensor):
        return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 and x.is_floating_point() else x
    if isinstance(x, (list, tuple)):
        return type(x)(to_channels_last_input(v) for v in x)
    return x


@torch.no_grad()
def _to_channels_last(model: nn.Module) -> None:
    """The model's 4-D parameters and buffers in channels-last format, in place (`Module.to(memory_format=...)`
    refuses a model that also holds 5-D weights, e.g. a Conv3d; those stay as they are)."""
    for t in [*model.parameters(), *model.buffers()]:
        if t.ndim == 4:
            t.data = t.data.to(memory_format=torch.channels_last)  # what Module.to does, tensor by tensor


class ChannelsLast(Callback):
    """Keeps the model's 4-D weights and each batch's 4-D inputs in channels-last memory format."""

    order = -5  # before anything reads the inputs

    def before_fit(self) -> None:
        """Convert the model (again, in case it was replaced or reloaded since)."""
        _to_channels_last(self.learn.model)

    def before_validate(self) -> None:
        """`validate`/`get_preds` run outside a fit: convert the model here too."""
        _to_channels_last(self.learn.model)

    def before_batch(self) -> None:
        """Convert the inputs (a no-op when the loader already yields channels-last batches)."""
        self.learn.xb = to_channels_last_input(self.learn.xb)


def to_channels_last(learn: Learner) -> Learner:
    """Channels-last memory format for the model's 4-D weights and the inputs; returns `learn`.

    Convolutions on GPUs with tensor cores run faster in this layout (with mixed precision above all). A model
    without 4-D weights gains nothing: that is a warning.
    """
    model = unwrap_model(learn.model)
    if not any(p.ndim == 4 for p in model.parameters()):
        warnings.warn("to_channels_last: the model has no 4-D (convolution) weights, so channels-last changes "
                      "nothing for it", stacklevel=3)
    learn.remove_cb(ChannelsLast)
    _to_channels_last(model)
    learn.add_cb(ChannelsLast())
    return learn


def trainable_signature(model: nn.Module) -> tuple[bool, ...]:
    """`requires_grad` of every parameter, in order: what a compiled graph's gradients depend on."""
    return tuple(p.requires_grad for p in model.parameters())


class CompiledModel(Callback):
    """Added by `learn.compile()`: holds the compile arguments, and clears torch's compilation caches before a
    fit whose trainable parameters differ from the previous fit's (see the module's notes)."""

    order = -20

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.backend = str(kwargs.get("backend", "inductor"))
        self.mode = str(kwargs.get("mode", "default"))
        self.signature: tuple[bool, ...] | None = None
        self.resets = 0

    def before_fit(self) -> None:
        """Recompile from scratch when freezing changed since the last fit."""
        sig = trainable_signature(unwrap_model(self.learn.model))
        if self.signature is not None and sig != self.signature:
            torch.compiler.reset()
            self.resets += 1
        self.signature = sig


def is_compiled(model: nn.Module) -> bool:
    """True when `model` was compiled in place (`nn.Module.compile`, as `learn.compile()` does)."""
    return getattr(unwrap_model(model), "_compiled_call_impl", None) is not None


def _outer_frame(call: Any) -> Any:
    """`call` inside a plain function: the frame where dynamo starts tracing. Some torch versions (2.11) skip a
    root frame that belongs to torch.nn (`Module._call_impl` of an `nn.Sequential`, which `nn.Module.compile`
    compiles) and then compile each block's `forward` on its own, recompiling per block until the recompile
    limit; `torch.compile(module)` adds the same kind of outer frame for such modules."""

    def compiled_call(*args: Any, **kwargs: Any) -> Any:
        return call(*args, **kwargs)

    return compiled_call


def compile_learner(learn: Learner, **kwargs: Any) -> Learner:
    """Compile `learn.model` in place with `torch.compile(**kwargs)` (e.g. `mode="max-autotune"`,
    `backend="inductor"`, `dynamic=False`); returns `learn`. The first batches of a fit are slow (compiling).

    This is `nn.Module.compile` (the module's call is compiled, the module and its parameter names stay), with
    an outer frame for dynamo to start from (see `_outer_frame`).
    """
    model = unwrap_model(learn.model)
    if hasattr(model, "_orig_mod"):  # torch.compile(model)'s wrapper
        raise ValueError("learn.model is already wrapped by torch.compile(model) (its parameters are named "
                         "'_orig_mod.*', which checkpoints and exports would keep): give the Learner the plain "
                         "model and call learn.compile() instead")
    compiled = torch.compile(_outer_frame(model._call_impl), **kwargs)  # bad arguments raise here: nothing changed
    model._compiled_call_impl = compiled  # what nn.Module.compile sets; nn.Module.__call__ runs it
    learn.remove_cb(CompiledModel)
    learn.add_cb(CompiledModel(**kwargs))
    return learn
