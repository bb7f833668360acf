"""minifastai: a small, fast, fastai-style training framework for PyTorch.

`import minifastai` loads torch and nothing heavy beyond it; `minifastai.vision` (torchvision) and
`minifastai.tabular` (pandas) are imported on demand, and plots import matplotlib when drawn.
"""

from . import metrics as _metrics
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
from .callback.core import before_batch_cb
from .callback.ema import EMA
from .callback.loggers import MLflowCallback, TensorBoardCallback
from .callback.lr_find import LRFinder, LRSweep, SuggestedLRs, SuggestionMethod, minimum, slide, steep, valley
from .callback.mixed_precision import MixedPrecision
from .callback.mixup import CutMix, MixHandler, MixUp, reduce_loss
from .callback.plan import PlanRecord
from .callback.preds import MCDropoutCallback
from .callback.progress import ProgressCallback, ShowGraphCallback
from .callback.recorder import Recorder
from .callback.schedule import (
    OneCycle,
    ParamScheduler,
    SchedCos,
    SchedExp,
    SchedLin,
    SchedNo,
    SchedPoly,
    annealer,
    combine_scheds,
    combined_cos,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
)
from .callback.tracker import EarlyStoppingCallback, ReduceLROnPlateau, SaveModelCallback, TrackerCallback
from .callback.training import (
    BnFreeze,
    CSVLogger,
    GradientAccumulation,
    GradientClip,
    ShortEpochCallback,
    TerminateOnNaNCallback,
)
from .data import DataLoaders, default_device
from .groups import LayerDecay, default_splitter, layer_decay, lr_range
from .learner import Learner
from .losses import (
    BaseLoss,
    BCELossFlat,
    BCEWithLogitsLossFlat,
    CrossEntropyLossFlat,
    DiceLoss,
    FocalLoss,
    FocalLossFlat,
    L1LossFlat,
    LabelSmoothingCrossEntropy,
    LabelSmoothingCrossEntropyFlat,
    MSELossFlat,
)
from .metrics import *  # noqa: F403  (every metric, as `from fastai.vision.all import *` gives them)
from .metrics import AvgMetric, Metric, accuracy, error_rate, mae, rmse
from .optimizer import SGD, Adam, Lamb, Larc, Lookahead, Optimizer, OptimWrapper, QHAdam, RAdam, RMSProp, ranger
from .persist.export import load_learner
from .persist.registry import declare
from .seed import set_seed
from .version import __version__  # noqa: F401 (the package version)

# the applications minifastai ships: load_learner imports one when an export asks for it (registry.py)
declare("minifastai.vision", "minifastai.vision")
declare("minifastai.tabular", "minifastai.tabular")

__all__ = [
    # core
    "Learner", "DataLoaders", "default_device", "Callback", "before_batch_cb", "TrainEvalCallback", "Recorder",
    "ProgressCallback", "PlanRecord",
    "lr_range", "layer_decay", "LayerDecay", "default_splitter", "load_learner",
    "CancelBatchException", "CancelBackwardException", "CancelStepException", "CancelTrainException",
    "CancelValidException", "CancelEpochException", "CancelFitException",
    # schedules and the LR finder
    "OneCycle", "ParamScheduler", "combined_cos", "sched_cos", "sched_exp", "sched_lin",
    "LRFinder", "LRSweep", "SuggestedLRs", "SuggestionMethod", "valley", "minimum", "steep", "slide",
    # metrics
    "Metric", "AvgMetric", "accuracy", "error_rate", "rmse", "mae",  # (and every name of minifastai.metrics)
    # training callbacks
    "MixedPrecision", "GradientAccumulation", "GradientClip", "EarlyStoppingCallback", "SaveModelCallback",
    "TerminateOnNaNCallback", "CSVLogger", "TrackerCallback", "ReduceLROnPlateau", "ShortEpochCallback", "BnFreeze",
    "ShowGraphCallback", "MCDropoutCallback", "MixUp", "CutMix", "MixHandler", "reduce_loss",
    # fastai names (schedules, optimizers, losses, metrics, seeding)
    "SchedLin", "SchedCos", "SchedNo", "SchedExp", "SchedPoly", "combine_scheds", "sched_no", "annealer",
    "SGD", "Adam", "RMSProp", "OptimWrapper", "Optimizer", "RAdam", "QHAdam", "Larc", "Lamb", "Lookahead", "ranger",
    "BaseLoss", "CrossEntropyLossFlat", "BCEWithLogitsLossFlat", "BCELossFlat", "MSELossFlat", "L1LossFlat",
    "LabelSmoothingCrossEntropy", "LabelSmoothingCrossEntropyFlat", "FocalLoss", "FocalLossFlat", "DiceLoss",
    "set_seed",
    # seeing and speeding up training
    "TensorBoardCallback", "MLflowCallback", "EMA",
]
__all__ += [n for n in _metrics.__all__ if n not in __all__]
