# Setup of the timm page: scikit-learn's digits 5-9 as 32x32 PNG files (16 training and 4 validation images per
# class). Nothing is downloaded: the models start from random weights or from local files written here.
import sys
import warnings
from pathlib import Path

import timm
import torch

import minifastai

sys.path.insert(0, str(Path(minifastai.__file__).resolve().parent.parent / "examples"))
from pretrain_digits import write_digits_tree  # noqa: E402

from minifastai import accuracy, load_learner  # noqa: E402
from minifastai.vision import ImageDataLoaders, resnet18, vision_learner  # noqa: E402

warnings.filterwarnings("ignore", message="The image decoding", category=DeprecationWarning)
path = write_digits_tree("digits", size=32, n_per_class=20)
dls = ImageDataLoaders.from_folder(path, bs=16, device="cpu")
