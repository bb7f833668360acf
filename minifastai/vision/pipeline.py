"""The image pipeline: item transforms (per image, uint8) and batch transforms (per batch, float, on the
device), normalization last. How an export stores it (an explicit allow-list of transforms, rebuilt from plain
data, never from a name looked up in a module) is `export_format`'s; `EXPORTABLE_TRANSFORMS`, `tfm_to_state` and
`tfm_from_state` are importable from here as before."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchvision.transforms import v2

from .export_format import EXPORTABLE_TRANSFORMS, pipeline_from_state, pipeline_state, tfm_from_state, tfm_to_state
from .transforms import (
    AffineTfm,
    ImageTransform,
    LightingTfm,
    Normalize,
    apply_affine,
    apply_lighting,
    is_augmentation,
    tfm_order,
    valid_version,
)

__all__ = ["ImagePipeline", "EXPORTABLE_TRANSFORMS", "tfm_to_state", "tfm_from_state"]


def _listify(t: Any) -> list:
    if t is None:
        return []
    if isinstance(t, v2.Compose):
        return list(t.transforms)
    return list(t) if isinstance(t, (list, tuple)) else [t]


# ---- the pipeline ------------------------------------------------------------------------------------
class ImagePipeline:
    """Item transforms (uint8 images, in the dataset) and batch transforms (float batches in [0, 1], on the
    device), sorted by `order` as fastai sorts them; normalization comes last.

    Augmentation applies to training data only; validation and inference get the deterministic version
    (random crops become centre crops). A `Normalize` among the batch transforms is the normalization.
    """

    def __init__(self, item_tfms: Any = None, batch_tfms: Any = None, norm: Normalize | None = None) -> None:
        self.item_tfms = sorted(_listify(item_tfms), key=tfm_order)
        norm_items = [type(t).__name__ for t in self.item_tfms if isinstance(t, (Normalize, v2.Normalize))]
        if norm_items:
            raise ValueError(f"item_tfms holds a normalization ({', '.join(norm_items)}), which works on float "
                             "batches, not on the uint8 images item transforms see: pass it in batch_tfms (or let "
                             "vision_learner add the pretrained model's)")
        batch = sorted(_listify(batch_tfms), key=tfm_order)
        norms = [t for t in batch if isinstance(t, (Normalize, v2.Normalize))]
        if len(norms) > 1:
            raise ValueError(f"batch_tfms has {len(norms)} normalizations ({norms}); keep one")
        self.batch_tfms = [t for t in batch if t not in norms]
        if norms:
            norm = norms[0] if isinstance(norms[0], Normalize) else Normalize(norms[0].mean, norms[0].std)
        self.norm = norm
        self.valid_item = [x for t in self.item_tfms
                           for x in ([t] if isinstance(t, ImageTransform) else valid_version(t))]

    def item(self, img: Tensor, train: bool) -> Tensor:
        """Apply the item transforms to one (C, H, W) uint8 image."""
        if train:
            for t in self.item_tfms:
                img = t(img, True) if isinstance(t, ImageTransform) else t(img)
        else:
            for t in self.valid_item:
                img = t(img, False) if isinstance(t, ImageTransform) else t(img)
        return img

    def batch(self, x: Tensor, train: bool) -> Tensor:
        """uint8 -> float in [0, 1], the batch transforms (training: random per image), normalization."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        tfms, i = self.batch_tfms, 0
        while i < len(tfms):
            t = tfms[i]
            if isinstance(t, (AffineTfm, LightingTfm)):
                kind = AffineTfm if isinstance(t, AffineTfm) else LightingTfm
                j = i
                while j < len(tfms) and isinstance(tfms[j], kind):
                    j += 1
                if kind is AffineTfm:
                    x = apply_affine(tfms[i:j], x, train)
                elif train:
                    x = apply_lighting(tfms[i:j], x)
                i = j
                continue
            if isinstance(t, ImageTransform):
                x = t(x, train)
            elif is_augmentation(t):
                if train:  # torchvision draws one set of parameters per call: call it per image
                    x = torch.stack([t(xi) for xi in x])
                else:
                    for s in valid_version(t):
                        x = s(x)
            else:
                x = t(x)
            i += 1
        return x if self.norm is None else self.norm(x, train)

    def decode(self, x: Tensor) -> Tensor:
        """A batch as images in [0, 1] again (normalization undone), for showing."""
        if x.dtype == torch.uint8:
            return x.float() / 255
        return (x if self.norm is None else self.norm.decode(x)).clamp(0, 1)

    def export_state(self) -> dict:
        """Item and batch transforms (allow-listed ones) and the normalization, as plain data
        (`export_format.pipeline_state`)."""
        return pipeline_state(self)

    @classmethod
    def from_export_state(cls, state: dict, source: str = "the export") -> ImagePipeline:
        """Rebuild from `export_state()`, building only allow-listed transforms (errors name the entry;
        `export_format.pipeline_from_state`)."""
        return cls(*pipeline_from_state(state, source))
