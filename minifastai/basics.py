"""`from minifastai.basics import *`, as fastai's `from fastai.basics import *`: every public name of minifastai,
the names fastai's star imports bring with them and notebooks rely on (`STAR_NAMES`: `torch`, `nn`, `F`, `np`,
`pd`, `plt`, `Path`, `partial`, `tensor`, fastcore's `L`, and the standard modules `math`, `os`, `re`, `random`,
`time`, `warnings`, `json`, `sys`), and fastai's torch helpers and test helpers modules' names. matplotlib's
`pyplot` is imported here, as fastai's star imports do: `import minifastai` alone does not."""
from __future__ import annotations

import json
import math
import os
import pickle
import random
import re
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F  # noqa: N812 (fastai's name)
from fastcore.basics import range_of
from fastcore.foundation import L
from numpy import array
from torch import Tensor, nn

from . import *  # noqa: F403
from . import __all__ as _package_all
from .callback.core import event
from .data import TfmdDL
from .data.block import DataBlock, noop, show_at
from .data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from .data.transforms import (
    AttrGetter,
    ColReader,
    ColSplitter,
    EndSplitter,
    FileGetter,
    FileSplitter,
    FuncSplitter,
    GrandparentSplitter,
    IndexSplitter,
    ItemGetter,
    MaskSplitter,
    RandomSplitter,
    RandomSubsetSplitter,
    RegexLabeller,
    TrainTestSplitter,
    get_files,
    parent_label,
    using_attr,
)
from .external import URLs, download_url, fastai_path, untar_data
from .interpret import ClassificationInterpretation, Interpretation, SegmentationInterpretation
from .layers import BatchNorm, ConvLayer, ResBlock, SEBlock, SEModule, SEResNeXtBlock, SigmoidRange, sigmoid_range
from .test_utils import equals, test_eq, test_ne
from .torch_core import (
    Module,
    defaults,
    find_bs,
    find_device,
    logit,
    no_random,
    params,
    replacing_yield,
    subplots,
    tensor,
    to_cpu,
    to_detach,
    to_device,
    to_np,
    trainable_params,
    unwrap_model,
)
from .transform import Datasets, Pipeline, Transform

__all__ = [*_package_all, "event", "Module", "to_detach", "unwrap_model", "no_random", "defaults",
           "find_bs", "find_device", "logit", "subplots", "replacing_yield", "TfmdDL", "to_cpu", "to_device",
           "to_np",
           "trainable_params", "params",
           "Interpretation", "ClassificationInterpretation", "SegmentationInterpretation",
           "equals", "test_eq", "test_ne", "Transform", "Pipeline", "Datasets",
           "URLs", "untar_data", "download_url", "fastai_path", "get_files", "FileGetter",
           "BatchNorm", "ConvLayer", "ResBlock", "SEBlock", "SEModule", "SEResNeXtBlock", "SigmoidRange",
           "sigmoid_range",
           "DataBlock", "noop", "show_at", "CategoryBlock", "MultiCategoryBlock", "RegressionBlock",
           "RandomSplitter", "TrainTestSplitter", "IndexSplitter", "EndSplitter", "GrandparentSplitter",
           "FuncSplitter", "MaskSplitter", "FileSplitter", "ColSplitter", "RandomSubsetSplitter", "parent_label",
           "RegexLabeller", "ColReader", "ItemGetter", "AttrGetter", "using_attr",
           "torch", "nn", "F", "np", "pd", "plt", "Path", "partial", "tensor", "Tensor", "L",
           "math", "os", "re", "random", "time", "warnings", "json", "sys", "tempfile", "array", "pickle", "range_of"]

STAR_NAMES = ("torch", "nn", "F", "np", "pd", "plt", "Path", "partial", "tensor", "Tensor", "L",
              "math", "os", "re", "random", "time", "warnings", "json", "sys", "tempfile", "array", "pickle",
              "range_of")
"""The names beyond minifastai's own that `from minifastai.basics import *` gives, as fastai's star imports do
(docs/fastai-differences.md lists them; a test compares them with fastai's)."""
