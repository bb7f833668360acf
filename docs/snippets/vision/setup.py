# Setup shared by the snippets on the fine-tuning page: torchvision's MobileNetV2 ImageNet weights placed in torch
# hub's cache (offline, where the download would have put them), and scikit-learn's digits 5-9 written as 32x32
# PNG files into digits/train/<class>/ and digits/valid/<class>/ (48 + 12 images per class).
import sys
import warnings
from pathlib import Path

import minifastai

sys.path.insert(0, str(Path(minifastai.__file__).resolve().parent.parent / "examples"))
from pretrain_digits import place_mobilenet_weights, write_digits_tree  # noqa: E402

warnings.filterwarnings("ignore", message="The image decoding", category=DeprecationWarning)
place_mobilenet_weights()
path = write_digits_tree("digits", size=32, n_per_class=60)
