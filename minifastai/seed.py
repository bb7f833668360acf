"""`set_seed` and `no_random`: seed every random number generator a training run draws from (fastai's)."""
from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def set_seed(s: int, reproducible: bool = False) -> None:
    """Seed `random`, numpy and torch (CPU and every GPU) with `s`; `reproducible=True` also makes cuDNN
    deterministic and turns off its benchmark mode (slower, same results run to run)."""
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
        raise TypeError(f"set_seed takes an integer seed, got {s!r}")
    s = int(s)
    torch.manual_seed(s)
    torch.cuda.manual_seed_all(s)
    np.random.seed(s % (2**32 - 1))
    random.seed(s)
    if reproducible:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def no_random(seed: int = 42, reproducible: bool = True) -> Iterator[None]:
    """Inside the block every generator is seeded with `seed`; after it, `random`, numpy and torch (CPU and GPUs)
    continue exactly where they were (fastai's `no_random`)."""
    py, npy = random.getstate(), np.random.get_state()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=gpus):
        set_seed(seed, reproducible)
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
