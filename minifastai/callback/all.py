"""`from minifastai.callback.all import *`, as fastai's `from fastai.callback.all import *`: everything of
`minifastai.basics`, which holds every callback minifastai has (schedules, the LR finder, progress, trackers,
training callbacks, mixed precision, EMA, loggers, predictions, distributed training)."""
from __future__ import annotations

from ..basics import *  # noqa: F403
from ..basics import __all__ as _basics_all

__all__ = list(_basics_all)
