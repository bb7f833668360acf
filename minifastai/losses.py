"""fastai's flattened losses: torch losses that flatten predictions and targets, with `activation` and `decodes`.

`CrossEntropyLossFlat()(pred, targ)` is `nn.CrossEntropyLoss()(pred.view(-1, c), targ.view(-1))` after moving
the class `axis` last, so the same loss serves (N, C) and (N, ..., C) outputs. `activation` turns the model's
output into what `get_preds` returns (softmax, sigmoid or nothing) and `decodes` turns that into targets.
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class BaseLoss:
    """`loss_cls(*args, **kwargs)` applied to flattened input and target (fastai's `BaseLoss`).

    `axis` is the class axis (moved last before flattening), `flatten` flattens input to (-1, c) (`is_2d`) or
    (-1,) and target to (-1,), `floatify` converts the target to float (for regression and BCE).
    """

    activation_name: str | None = None
    """The name minifastai's exports store for `activation` ('softmax', 'sigmoid' or None)."""

    def __init__(self, loss_cls: Callable[..., Any], *args: Any, axis: int = -1, flatten: bool = True,
                 floatify: bool = False, is_2d: bool = True, **kwargs: Any) -> None:
        self.axis, self.flatten, self.floatify, self.is_2d = axis, flatten, floatify, is_2d
        self.func = loss_cls(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FlattenedLoss of {self.func}"

    @property
    def reduction(self) -> str:
        """The wrapped loss's reduction ('mean', 'sum' or 'none')."""
        return self.func.reduction

    @reduction.setter
    def reduction(self, v: str) -> None:
        self.func.reduction = v

    def _contiguous(self, x: Any) -> Any:
        return x.transpose(self.axis, -1).contiguous() if isinstance(x, torch.Tensor) else x

    def __call__(self, inp: torch.Tensor, targ: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """The loss of `inp` (model output) against `targ`, both flattened."""
        inp, targ = self._contiguous(inp), self._contiguous(targ)
        if self.floatify and targ.dtype != torch.float16:
            targ = targ.float()
        if targ.dtype in (torch.int8, torch.int16, torch.int32):
            targ = targ.long()
        if self.flatten and not self.is_2d and inp.numel() != targ.numel():  # fastai: a size error deep in torch
            raise ValueError(f"{type(self).__name__} got predictions of shape {tuple(inp.shape)} and targets of shape "
                             f"{tuple(targ.shape)}: flattened, they must hold the same number of values")
        if self.flatten:
            inp = inp.reshape(-1, inp.shape[-1]) if self.is_2d else inp.reshape(-1)
        return self.func(inp, targ.reshape(-1) if self.flatten else targ, **kwargs)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """The output activation for predictions (none for this loss)."""
        return x

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions (after `activation`) in the format of the targets (unchanged for this loss)."""
        return x

    def to(self, device: torch.device | str) -> BaseLoss:
        """Move the wrapped loss (and its class weights) to `device`."""
        if isinstance(self.func, nn.Module):
            self.func.to(device)
        return self


class CrossEntropyLossFlat(BaseLoss):
    """`nn.CrossEntropyLoss` on flattened input and target; `activation` is softmax, `decodes` the arg-max."""

    y_int = True
    activation_name = "softmax"

    def __init__(self, *args: Any, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(nn.CrossEntropyLoss, *args, axis=axis, **kwargs)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over the class axis."""
        return F.softmax(x, dim=self.axis)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """The class index: arg-max over the class axis."""
        return x.argmax(dim=self.axis)


class BCEWithLogitsLossFlat(BaseLoss):
    """`nn.BCEWithLogitsLoss` on flattened input and float target; `activation` is sigmoid, `decodes` `x > thresh`."""

    activation_name = "sigmoid"

    def __init__(self, *args: Any, axis: int = -1, floatify: bool = True, thresh: float = 0.5, **kwargs: Any) -> None:
        if kwargs.get("pos_weight") is not None:
            if kwargs.get("flatten") is True:
                raise ValueError("BCEWithLogitsLossFlat: flatten must be False with pos_weight (it is per class)")
            kwargs["flatten"] = False
        super().__init__(nn.BCEWithLogitsLoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)
        self.thresh = thresh

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid."""
        return torch.sigmoid(x)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """`x > thresh`: one boolean per label."""
        return x > self.thresh


class BCELossFlat(BaseLoss):
    """`nn.BCELoss` on flattened input (probabilities) and float target."""

    def __init__(self, *args: Any, axis: int = -1, floatify: bool = True, **kwargs: Any) -> None:
        super().__init__(nn.BCELoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)


class MSELossFlat(BaseLoss):
    """`nn.MSELoss` on flattened input and float target (so (N, 1) outputs meet (N,) targets)."""

    def __init__(self, *args: Any, axis: int = -1, floatify: bool = True, **kwargs: Any) -> None:
        super().__init__(nn.MSELoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)


class L1LossFlat(BaseLoss):
    """`nn.L1Loss` on flattened input and float target."""

    def __init__(self, *args: Any, axis: int = -1, floatify: bool = True, **kwargs: Any) -> None:
        super().__init__(nn.L1Loss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)


class LabelSmoothingCrossEntropy(nn.Module):
    """fastai's label-smoothing cross entropy: `eps / c * sum(-log p) + (1 - eps) * nll` (classes on dim 1)."""

    y_int = True
    activation_name = "softmax"

    def __init__(self, eps: float = 0.1, weight: torch.Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__()
        if not 0 <= eps <= 1:
            raise ValueError(f"LabelSmoothingCrossEntropy: eps must be in [0, 1], got {eps}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"LabelSmoothingCrossEntropy: reduction must be mean, sum or none, got {reduction!r}")
        self.eps, self.weight, self.reduction = eps, weight, reduction

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The smoothed loss of logits `output` (N, C) against class indices `target` (N,)."""
        c = output.size(1)
        log_preds = F.log_softmax(output, dim=1)
        if self.reduction == "sum":
            smooth = -log_preds.sum()
        else:
            smooth = -log_preds.sum(dim=1)
            if self.reduction == "mean":
                smooth = smooth.mean()
        nll = F.nll_loss(log_preds, target.long(), weight=self.weight, reduction=self.reduction)
        return smooth * self.eps / c + (1 - self.eps) * nll

    def activation(self, out: torch.Tensor) -> torch.Tensor:
        """Softmax over the last axis."""
        return F.softmax(out, dim=-1)

    def decodes(self, out: torch.Tensor) -> torch.Tensor:
        """The class index: arg-max over the last axis."""
        return out.argmax(dim=-1)


class LabelSmoothingCrossEntropyFlat(BaseLoss):
    """`LabelSmoothingCrossEntropy(eps=0.1)` on flattened input and target."""

    y_int = True
    activation_name = "softmax"

    def __init__(self, *args: Any, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(LabelSmoothingCrossEntropy, *args, axis=axis, **kwargs)

    def activation(self, out: torch.Tensor) -> torch.Tensor:
        """Softmax over the last axis."""
        return F.softmax(out, dim=-1)

    def decodes(self, out: torch.Tensor) -> torch.Tensor:
        """The class index: arg-max over the last axis."""
        return out.argmax(dim=-1)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017, fastai's `FocalLoss`): cross-entropy with each item's term multiplied by
    `(1 - p_t) ** gamma`, so that well-classified items (high `p_t`) count less; `gamma=0` is cross-entropy."""

    y_int = True

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__()
        self.gamma, self.weight, self.reduction = gamma, weight, reduction

    def forward(self, inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        """The focal loss of logits `inp` (N, C) against class indices `targ` (N,)."""
        ce = F.cross_entropy(inp, targ, weight=self.weight, reduction="none")
        loss = (1 - torch.exp(-ce)) ** self.gamma * ce
        return loss.mean() if self.reduction == "mean" else loss.sum() if self.reduction == "sum" else loss


class FocalLossFlat(BaseLoss):
    """`FocalLoss`, flattened like `CrossEntropyLossFlat` (class `axis`, softmax activation, arg-max decodes);
    the paper's class weight alpha is `weight=`."""

    y_int = True
    activation_name = "softmax"

    def __init__(self, *args: Any, gamma: float = 2.0, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(FocalLoss, *args, gamma=gamma, axis=axis, **kwargs)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over the class axis."""
        return F.softmax(x, dim=self.axis)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """The class index: arg-max over the class axis."""
        return x.argmax(dim=self.axis)


class DiceLoss:
    """1 - the Dice coefficient of softmax predictions against one-hot masks, per item and class (fastai's
    `DiceLoss`, for segmentation): `(2 * |p * t| + smooth) / (|p| + |t| + smooth)`, summed over the spatial
    dimensions; `square_in_union` squares the predictions in the denominator (steeper gradients)."""

    activation_name: str | None = None  # softmax over `axis` (1), not the last axis: not an export activation

    def __init__(self, axis: int = 1, smooth: float = 1e-6, reduction: str = "sum",
                 square_in_union: bool = False) -> None:
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.axis, self.smooth, self.reduction, self.square_in_union = axis, smooth, reduction, square_in_union

    def __call__(self, pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        """The loss of logits `pred` (N, C, ...) against class-index masks `targ` (N, ...)."""
        onehot = self._one_hot(targ, pred.shape[self.axis], self.axis)
        if onehot.shape != pred.shape:
            raise ValueError(f"DiceLoss: predictions of shape {tuple(pred.shape)} and class-index targets of shape "
                             f"{tuple(targ.shape)} do not match (targets hold one class index per pixel, not one-hot)")
        p = self.activation(pred)
        dims = list(range(2, p.ndim))
        inter = (p * onehot).sum(dims)
        union = (p**2 + onehot).sum(dims) if self.square_in_union else (p + onehot).sum(dims)
        loss = 1 - (2.0 * inter + self.smooth) / (union + self.smooth)
        return loss.mean() if self.reduction == "mean" else loss.sum() if self.reduction == "sum" else loss

    @staticmethod
    def _one_hot(x: torch.Tensor, classes: int, axis: int = 1) -> torch.Tensor:
        """One binary mask per class, stacked on `axis`."""
        return F.one_hot(x.long(), classes).movedim(-1, axis)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over the class axis."""
        return F.softmax(x, dim=self.axis)

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        """The class index per pixel: arg-max over the class axis."""
        return x.argmax(dim=self.axis)


ACTIVATIONS: dict[str | None, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": lambda x: torch.softmax(x, dim=-1), "sigmoid": torch.sigmoid, None: lambda x: x}


def activation_for(loss_func: Any) -> str | None:
    """The activation that turns the model's output into predictions for this loss (as fastai's): the loss's
    own `activation_name` when it has one, softmax for cross-entropy, sigmoid for BCE with logits."""
    name = getattr(loss_func, "activation_name", None)
    if name is not None and name in ACTIVATIONS:
        return name
    if isinstance(loss_func, nn.CrossEntropyLoss):
        return "softmax"
    if isinstance(loss_func, nn.BCEWithLogitsLoss):
        return "sigmoid"
    return None


def per_item_loss(loss_func: Any) -> Callable[..., torch.Tensor]:
    """The loss function with `reduction='none'` (for `get_preds(with_loss=True)`, MixUp's blended loss)."""
    if hasattr(loss_func, "reduction"):  # torch losses and the flat losses (whose setter reaches the inner loss)
        f = copy.deepcopy(loss_func)  # deep: a flat loss's inner torch loss must not change
        setattr(f, "reduction", "none")  # noqa: B010 (a torch loss's attribute)
        return f
    try:
        accepts = "reduction" in inspect.signature(loss_func).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts:
        return lambda *a: loss_func(*a, reduction="none")
    raise TypeError(f"per-item losses are needed (get_preds(with_loss=True), MixUp), but loss_func {loss_func!r} "
                    "takes no reduction='none'; use a torch loss (e.g. nn.CrossEntropyLoss()) or a flat loss")
