"""minifastai: a small, fast, fastai-style training framework for PyTorch.

`import minifastai` loads torch and nothing heavy beyond it; `minifastai.vision` (torchvision) and
`minifastai.tabular` (pandas) are imported on demand, and plots import matplotlib when drawn.
"""

__version__ = "0.1.0"

from .callback import (
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
from .callbacks import CSVLogger, EarlyStoppingCallback, GradientAccumulation, GradientClip, TerminateOnNaNCallback
from .checkpoint import SaveModelCallback, load_learner
from .data import DataLoaders
from .ema import EMA
from .groups import default_splitter, lr_range
from .learner import Learner
from .loggers import MLflowCallback, TensorBoardCallback
from .lr_find import LRFinder, LRSweep, SuggestedLRs, minimum, slide, steep, valley
from .metrics import AvgMetric, Metric, accuracy, error_rate, mae, rmse
from .mixed_precision import MixedPrecision
from .plan import PlanRecord
from .progress import ProgressCallback
from .recorder import Recorder
from .schedule import OneCycle, ParamScheduler, combined_cos, sched_cos, sched_exp, sched_lin

__all__ = [
    # core
    "Learner", "DataLoaders", "Callback", "TrainEvalCallback", "Recorder", "ProgressCallback", "PlanRecord",
    "lr_range", "default_splitter", "load_learner",
    "CancelBatchException", "CancelBackwardException", "CancelStepException", "CancelTrainException",
    "CancelValidException", "CancelEpochException", "CancelFitException",
    # schedules and the LR finder
    "OneCycle", "ParamScheduler", "combined_cos", "sched_cos", "sched_exp", "sched_lin",
    "LRFinder", "LRSweep", "SuggestedLRs", "valley", "minimum", "steep", "slide",
    # metrics
    "Metric", "AvgMetric", "accuracy", "error_rate", "rmse", "mae",
    # training callbacks
    "MixedPrecision", "GradientAccumulation", "GradientClip", "EarlyStoppingCallback", "SaveModelCallback",
    "TerminateOnNaNCallback", "CSVLogger",
    # seeing and speeding up training
    "TensorBoardCallback", "MLflowCallback", "EMA",
]
