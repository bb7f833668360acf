"""`set_seed`: seed every random number generator a training run draws from (fastai's)."""
from __future__ import annotations

import random

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
