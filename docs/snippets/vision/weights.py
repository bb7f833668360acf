from minifastai.vision import default_weights, mobilenet_v2, resnet34, resnet50
from minifastai.vision.weights import hub_checkpoint_path

for arch in (mobilenet_v2, resnet34, resnet50):  # what pretrained=True loads (fastai's choice)
    w = default_weights(arch)
    print(f"{arch.__name__:13s} {w!r:38s} {hub_checkpoint_path(w).name}")
