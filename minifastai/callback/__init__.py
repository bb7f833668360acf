"""Callbacks: `core` (the `Callback` base class, the events, the cancellation exceptions, `TrainEvalCallback`),
and one module per callback concern (schedules, recording, progress, training, tracking, mixed precision, EMA,
loggers, distributed training, the LR finder, `dry_run`'s plan), as fastai's `fastai.callback.*`."""
from .core import (
    EVENTS,
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    TrainEvalCallback,
)

__all__ = ["Callback", "TrainEvalCallback", "EVENTS", "CancelBatchException", "CancelBackwardException",
           "CancelStepException", "CancelTrainException", "CancelValidException", "CancelEpochException",
           "CancelFitException"]
