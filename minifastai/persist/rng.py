"""RNG state: the global torch, CUDA, numpy and Python generators, and the training loader's own generators."""
from __future__ import annotations

import random
from typing import Any, cast

import numpy as np
import torch


def get_rng_state() -> dict:
    """torch, CUDA, numpy and random states as tensors and plain types (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = cast(tuple, np.random.get_state())
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "random": random.getstate()}


def check_rng_state(state: Any, generators: list[torch.Generator] | None = None,
                    loader_states: Any = None) -> None:
    """Raise `ValueError` if `set_rng_state(state)` (or restoring `generators` from `loader_states`) would fail;
    changes nothing (every part is tried on a scratch generator)."""
    try:
        if not isinstance(state, dict):
            raise TypeError(f"it is a {type(state).__name__}, not a dict")
        torch.Generator().set_state(state["torch"])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.RandomState().set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, internal, g = state["random"]
        random.Random().setstate((version, tuple(internal), g))
        cuda = state.get("cuda") or []
        n = torch.cuda.get_rng_state(0).numel() if torch.cuda.is_available() and cuda else None
        for i, s in enumerate(cuda):
            if not (isinstance(s, torch.Tensor) and s.dtype == torch.uint8 and (n is None or s.numel() == n)):
                raise ValueError(f"CUDA state {i} is not a generator state")
        for gen, s in zip(generators or [], loader_states or []):
            torch.Generator(device=gen.device).set_state(s)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        raise ValueError(f"invalid RNG state ({type(e).__name__}: {e})") from e


def set_rng_state(state: dict) -> None:
    """Restore what `get_rng_state` returned (CUDA states only for the devices this machine has); a state that
    does not fit is a `ValueError` raised before anything changes."""
    check_rng_state(state)
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, g = state["random"]
    random.setstate((version, tuple(internal), g))


def loader_generators(dl: Any) -> list[torch.Generator]:
    """The `torch.Generator`s a training loader shuffles with, when it was given its own (else it uses the
    global torch RNG, which `get_rng_state` covers)."""
    out: list[torch.Generator] = []
    for g in (getattr(dl, "generator", None), getattr(getattr(dl, "sampler", None), "generator", None)):
        if isinstance(g, torch.Generator) and all(g is not o for o in out):
            out.append(g)
    return out
