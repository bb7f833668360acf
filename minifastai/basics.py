"""`from minifastai.basics import *`, as fastai's `from fastai.basics import *`: every public name of minifastai,
the names fastai's star imports bring with them (`torch`, `nn`, `F`, `np`, `pd`, `Path`, `partial`, `tensor`,
fastcore's `L`), and fastai's torch helpers and test helpers modules' names."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812 (fastai's name)
from fastcore.foundation import L
from torch import Tensor, nn, tensor

from . import *  # noqa: F403
from . import __all__ as _package_all
from .callback.core import event
from .data import TfmdDL
from .external import URLs, download_url, untar_data
from .interpret import ClassificationInterpretation, Interpretation, SegmentationInterpretation
from .test_utils import equals, test_eq, test_ne
from .torch_core import (
    Module,
    defaults,
    find_bs,
    find_device,
    no_random,
    params,
    replacing_yield,
    to_cpu,
    to_detach,
    to_device,
    to_np,
    trainable_params,
    unwrap_model,
)
from .transform import Datasets, Pipeline, Transform

__all__ = [*_package_all, "event", "Module", "to_detach", "unwrap_model", "no_random", "defaults",
           "find_bs", "find_device", "replacing_yield", "TfmdDL", "to_cpu", "to_device", "to_np",
           "trainable_params", "params",
           "Interpretation", "ClassificationInterpretation", "SegmentationInterpretation",
           "equals", "test_eq", "test_ne", "Transform", "Pipeline", "Datasets",
           "URLs", "untar_data", "download_url",
           "torch", "nn", "F", "np", "pd", "Path", "partial", "tensor", "Tensor", "L"]
