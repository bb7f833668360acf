# Setup of the page on discriminative LRs: torchvision's MobileNetV2 with its ImageNet weights (placed in torch
# hub's cache offline), cut into one layer group per stage, on scikit-learn's digits 5-9 as 32x32 PNG files
# (16 training and 4 validation images per class).
import sys
import warnings
from pathlib import Path

import minifastai

sys.path.insert(0, str(Path(minifastai.__file__).resolve().parent.parent / "examples"))
from pretrain_digits import place_mobilenet_weights, write_digits_tree  # noqa: E402

from minifastai import accuracy, layer_decay  # noqa: E402
from minifastai.vision import ImageDataLoaders, mobilenet_v2, vision_learner  # noqa: E402

warnings.filterwarnings("ignore", message="The image decoding", category=DeprecationWarning)
place_mobilenet_weights()
path = write_digits_tree("digits", size=32, n_per_class=20)
dls = ImageDataLoaders.from_folder(path, bs=16, device="cpu")
learn = vision_learner(dls, mobilenet_v2, splitter="stages", metrics=accuracy)
learn.remove_cb(learn.progress)
learn.logger = lambda row: None  # no rows printed either (fastai's learn.logger prints them without the table)
