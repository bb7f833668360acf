"""Vision: fine-tune torchvision CNNs the fastai way, offline.

`vision_learner` cuts a (pretrained) torchvision CNN into a body, adds fastai's head, freezes the body and
normalizes the data; `ImageDataLoaders` reads images with fastai's constructors and transforms
(`Resize`, `RandomResizedCrop`, `aug_transforms`, `Normalize`), augmenting whole batches on the device;
`ClassificationInterpretation`, `show_batch`, `show_results` and `tta` look at the results. torchvision's
builders (`resnet34`, `mobilenet_v2`, ...) are exported here, as fastai exports them.
"""
from . import tvm
from .block import ImageBlock
from .create import create_timm_model, create_vision_model
from .data import (
    IMAGE_EXTENSIONS,
    ImageDataLoaders,
    ImageDL,
    ImageListDataset,
    get_image_files,
    parent_label,
    read_image,
    to_image_tensor,
)
from .export import rebuild_learner  # importing it registers vision's rebuilder (persist.registry)
from .heads import has_pool_type
from .image_files import ImageGetter
from .image_limits import ImageTooLargeError, max_image_pixels, set_max_image_pixels
from .interpret import ClassificationInterpretation
from .learner import VisionLearner, cnn_learner, vision_learner
from .models import (
    AdaptiveConcatPool2d,
    ArchMeta,
    WeightsUnavailableError,
    create_body,
    create_head,
    default_weights,
    load_weights,
    model_meta,
    num_features,
    register_arch,
    resnet10,
    resolve_arch,
)
from .pil import PILImage, PILImageBW, show_image
from .pipeline import ImagePipeline
from .transforms import (
    IMAGENET_STATS,
    AffineTfm,
    Brightness,
    Contrast,
    CropPad,
    Dihedral,
    Flip,
    ImageTransform,
    LightingTfm,
    Normalize,
    PadMode,
    RandomResizedCrop,
    RandomResizedCropGPU,
    Resize,
    ResizeMethod,
    Rotate,
    Warp,
    Zoom,
    aug_transforms,
    imagenet_stats,
)
from .tvm import *  # noqa: F403  (torchvision's builders and weights enums, listed in tvm.__all__)
from .xresnet import (
    XResNet,
    xresnet18,
    xresnet34,
    xresnet50,
    xresnet101,
    xresnet152,
    xresnext18,
    xresnext34,
    xresnext50,
    xse_resnet18,
    xse_resnet34,
    xse_resnet50,
    xse_resnext18,
    xse_resnext34,
    xse_resnext50,
)

__all__ = [
    # learners
    "vision_learner", "cnn_learner", "VisionLearner", "rebuild_learner", "ClassificationInterpretation",
    # data
    "ImageDataLoaders", "ImageDL", "ImageListDataset", "ImagePipeline", "get_image_files", "parent_label",
    "read_image", "to_image_tensor", "IMAGE_EXTENSIONS", "PILImage", "PILImageBW", "show_image", "ImageBlock",
    "ImageGetter", "ImageTooLargeError", "max_image_pixels", "set_max_image_pixels",
    "XResNet", "xresnet18", "xresnet34", "xresnet50", "xresnet101", "xresnet152", "xse_resnet18", "xse_resnext18",
    "xresnext18", "xse_resnet34", "xse_resnext34", "xresnext34", "xse_resnet50", "xse_resnext50", "xresnext50",
    # transforms
    "Resize", "ResizeMethod", "PadMode", "RandomResizedCrop", "CropPad", "aug_transforms", "Flip", "Dihedral",
    "Rotate", "Zoom", "Warp", "Brightness", "Contrast", "RandomResizedCropGPU", "Normalize", "ImageTransform",
    "AffineTfm", "LightingTfm", "imagenet_stats", "IMAGENET_STATS",
    # models and weights
    "AdaptiveConcatPool2d", "ArchMeta", "WeightsUnavailableError", "create_body", "create_head", "has_pool_type",
    "create_vision_model", "create_timm_model", "default_weights", "load_weights", "model_meta", "num_features",
    "register_arch", "resnet10", "resolve_arch",
    *tvm.__all__,
]
