"""minifastai: a small, fast, fastai-style training framework for PyTorch."""
__version__ = "0.1.0"

from .callback import (Callback, CancelBackwardException, CancelBatchException, CancelEpochException,
                       CancelFitException, CancelStepException, CancelTrainException, CancelValidException,
                       TrainEvalCallback)
from .checkpoint import load_learner
from .data import DataLoaders
from .groups import default_splitter, lr_range
from .learner import Learner
from .metrics import AvgMetric, Metric, accuracy, error_rate, mae, rmse
from .plan import PlanRecord
from .progress import ProgressCallback
from .recorder import Recorder
from .schedule import OneCycle, ParamScheduler, combined_cos, sched_cos, sched_exp, sched_lin

__all__ = [
    "AvgMetric", "Callback", "CancelBackwardException", "CancelBatchException", "CancelEpochException",
    "CancelFitException", "CancelStepException", "CancelTrainException", "CancelValidException", "DataLoaders",
    "Learner", "Metric", "OneCycle", "ParamScheduler", "PlanRecord", "ProgressCallback", "Recorder",
    "TrainEvalCallback", "accuracy", "combined_cos", "default_splitter", "error_rate", "load_learner",
    "lr_range", "mae", "rmse", "sched_cos", "sched_exp", "sched_lin",
]
from .callbacks import (
    CSVLogger,
    EarlyStoppingCallback,
    GradientAccumulation,
    GradientClip,
    TerminateOnNaNCallback,
)
from .mixed_precision import MixedPrecision

__all__ += ["CSVLogger", "EarlyStoppingCallback", "GradientAccumulation", "GradientClip", "MixedPrecision",
            "TerminateOnNaNCallback"]
from .checkpoint import SaveModelCallback

__all__ += ["SaveModelCallback"]
from .lr_find import LRFinder, LRSweep, SuggestedLRs, minimum, slide, steep, valley

__all__ += ["LRFinder", "LRSweep", "SuggestedLRs", "minimum", "slide", "steep", "valley"]
