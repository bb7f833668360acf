"""`vision_learner`: a torchvision CNN body with fastai's head, frozen and normalized when pretrained, split
into layer groups; `VisionLearner` adds fastai's `tta` and `show_results`; `rebuild_learner` is what
`load_learner` calls to rebuild an exported vision learner from plain data."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..data import DataLoaders
from ..learner import Learner
from ..losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat
from .data import ImageDataLoaders, ImageDL, show_images
from .models import create_vision_model, resolve_arch, resolve_weights

__all__ = ["VisionLearner", "vision_learner", "cnn_learner", "rebuild_learner"]


class VisionLearner(Learner):
    """A Learner for images: everything `Learner` does, plus test-time augmentation and `show_results`."""

    def _image_dl(self, ds_idx: int, dl: Any) -> ImageDL:
        dl = self.dls[ds_idx] if dl is None else dl
        if not isinstance(dl, ImageDL):
            raise TypeError(f"this needs an image loader (from ImageDataLoaders), got {type(dl).__name__}")
        return dl

    def tta(self, ds_idx: int = 1, dl: Any = None, n: int = 4, beta: float | None = 0.25,
            use_max: bool = False) -> tuple[Any, Tensor | None]:
        """Test-time augmentation (fastai): predictions averaged over `n` passes with the training
        transforms, mixed with the plain prediction: `lerp(aug, plain, beta)`. Returns (preds, targets)."""
        if n < 1:
            raise ValueError(f"n={n} must be at least 1 (augmented passes)")
        if beta is not None and not 0 <= beta <= 1:
            raise ValueError(f"beta={beta} must be in [0, 1] (the weight of the un-augmented prediction)")
        base = self._image_dl(ds_idx, dl)
        aug_dl, plain_dl = base.new(train=True), base.new(train=False)
        aug = torch.stack([self.get_preds(dl=aug_dl)[0] for _ in range(n)])
        aug = aug.max(0)[0] if use_max else aug.mean(0)
        preds, targs = self.get_preds(dl=plain_dl)
        if use_max:
            return torch.stack([preds, aug]).max(0)[0], targs
        return ((aug, preds) if beta is None else torch.lerp(aug, preds, beta)), targs

    def show_results(self, ds_idx: int = 1, dl: Any = None, max_n: int = 9, shuffle: bool = True,
                     nrows: int | None = None, ncols: int | None = None,
                     figsize: tuple[float, float] | None = None) -> Any:
        """A batch of images titled with target (first line) and prediction (second line; green when right,
        red when wrong), as fastai; returns the figure."""
        src = self._image_dl(ds_idx, dl)
        b = next(iter(src.new(shuffle=shuffle, bs=min(src.bs, max_n))))
        if len(b) < 2:
            raise ValueError("show_results needs labelled data; use predict or get_preds for unlabelled images")
        preds, _ = self.get_preds(dl=[b])
        x, y = b[0].cpu(), b[1].cpu()
        dec = preds.argmax(-1)
        n = min(max_n, len(x))
        vocab = self.dls.vocab
        name = (lambda i: str(vocab[i])) if vocab is not None else str
        titles = [f"{name(int(y[i]))}\n{name(int(dec[i]))}" for i in range(n)]
        colors = ["green" if int(y[i]) == int(dec[i]) else "red" for i in range(n)]
        imgs = src.pipeline.decode(x[:n].float())
        return show_images(imgs, titles, colors, nrows=nrows, ncols=ncols, figsize=figsize)


def _check_head_args(n_out: Any, lin_ftrs: Any, ps: Any, concat_pool: Any, where: str) -> None:
    if not (isinstance(n_out, int) and not isinstance(n_out, bool) and n_out > 0):
        raise ValueError(f"{where}n_out={n_out!r} must be a positive int (the number of classes)")
    if lin_ftrs is not None and not (isinstance(lin_ftrs, (list, tuple)) and all(
            isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in lin_ftrs)):
        raise ValueError(f"{where}lin_ftrs={lin_ftrs!r} must be a list of positive ints (hidden layer sizes)")
    drops = [ps] if isinstance(ps, (int, float)) and not isinstance(ps, bool) else ps
    if not (isinstance(drops, (list, tuple)) and all(
            isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p < 1 for p in drops)):
        raise ValueError(f"{where}ps={ps!r} must be a dropout probability in [0, 1) or a list of them")
    if not isinstance(concat_pool, bool):
        raise ValueError(f"{where}concat_pool={concat_pool!r} must be True or False")


def vision_learner(dls: DataLoaders, arch: str | Callable[..., nn.Module], pretrained: bool = True,
                   weights: Any = None, n_out: int | None = None, cut: int | Callable | None = None,
                   splitter: Callable | None = None, normalize: bool = True,
                   lin_ftrs: Sequence[int] | None = None, ps: float | Sequence[float] = 0.5,
                   concat_pool: bool = True, loss_func: Callable | None = None,
                   **learner_kwargs: Any) -> VisionLearner:
    """A Learner for a torchvision CNN with fastai's head; pretrained models are frozen and normalized.

    `vision_learner(dls, resnet34, metrics=error_rate)` as in fastai. `weights=` takes a torchvision
    weights enum (or its name), a local file or a state dict; with `pretrained=True` and no `weights`,
    torchvision's file is read from torch hub's cache (`$TORCH_HOME/hub/checkpoints/`) or downloaded once.
    ResNets get three layer groups (`body[:6]`, `body[6:]`, `head`), other archs (`body`, `head`). The loss
    defaults to `dls.loss_func`, `path` to `dls.path`; other keywords go to `Learner`.
    """
    name, builder = resolve_arch(arch)
    if n_out is None:
        if getattr(dls, "vocab", None) is None:
            raise ValueError("dls has no vocab to count classes from; pass n_out= (the number of outputs)")
        n_out = len(dls.vocab)  # type: ignore[arg-type]
    _check_head_args(n_out, None if lin_ftrs is None else list(lin_ftrs), ps, concat_pool, "")
    if cut is not None and not callable(cut) and not (isinstance(cut, int) and not isinstance(cut, bool)):
        raise ValueError(f"cut={cut!r} must be an int (index into the model's children) or a function model -> body")
    sd, source = resolve_weights(builder, pretrained, weights)
    model, meta = create_vision_model(builder, n_out, sd, cut, lin_ftrs, ps, concat_pool, source)
    is_pretrained = sd is not None
    if normalize and is_pretrained:
        if isinstance(dls, ImageDataLoaders):
            dls.normalize(*meta.stats)
        else:
            warnings.warn("dls is not an ImageDataLoaders, so vision_learner cannot add the pretrained "
                          "model's normalization: normalize inputs yourself with "
                          f"mean={meta.stats[0]}, std={meta.stats[1]}", stacklevel=2)
    if splitter is None:
        splitter = meta.split
        learner_kwargs.setdefault("group_names", list(meta.group_names))
    if loss_func is None:
        loss_func = getattr(dls, "loss_func", None) or CrossEntropyLossFlat()
    learner_kwargs.setdefault("path", getattr(dls, "path", "."))
    learn = VisionLearner(dls, model, loss_func=loss_func, splitter=splitter, **learner_kwargs)
    learn.export_info = {"module": "minifastai.vision", "arch": name, "n_out": n_out,
                         "cut": cut if isinstance(cut, int) else None, "custom_cut": callable(cut),
                         "lin_ftrs": None if lin_ftrs is None else list(lin_ftrs),
                         "ps": ps if isinstance(ps, (int, float)) else list(ps), "concat_pool": concat_pool,
                         "weights": source}
    if is_pretrained:
        learn.freeze()
    return learn


cnn_learner = vision_learner


def _head_shapes(sd: dict) -> list[tuple[int, ...]]:
    """Shapes of the head's Linear weights in a (body, head) state dict, in layer order."""
    keys = [k for k, t in sd.items() if k.startswith("1.") and k.endswith(".weight")
            and isinstance(t, Tensor) and t.ndim == 2]
    keys.sort(key=lambda k: int(k.split(".")[1]) if k.split(".")[1].isdigit() else -1)
    return [tuple(sd[k].shape) for k in keys]


def rebuild_learner(state: dict, device: Any = "cpu", source: str | None = None) -> VisionLearner:
    """Rebuild an exported vision learner (architecture, head, classes, transforms) from plain data; the
    caller (`load_learner`) loads the weights.

    Nothing is built that the export does not declare consistently: the arch must be registered or in
    torchvision, the head's declared sizes must match the stored weights (checked before the head is
    allocated), transforms come from an allow-list. Errors name `source` (the file) and the entry.
    """
    src = str(source) if source is not None else "the export"
    info = state.get("builder")
    if not isinstance(info, dict):
        raise ValueError(f"{src}: 'builder' must describe the model (a dict), got {type(info).__name__}")
    if info.get("custom_cut"):
        raise ValueError(f"{src}: this learner was built with a custom cut function, which an export cannot "
                         "store: load it with load_learner(path, model=<the same nn.Sequential(body, head)>)")
    arch, n_out = info.get("arch"), info.get("n_out")
    cut, lin_ftrs = info.get("cut"), info.get("lin_ftrs")
    ps, concat_pool = info.get("ps", 0.5), info.get("concat_pool", True)
    if not isinstance(arch, str):
        raise ValueError(f"{src}: builder['arch'] must be an architecture name, got {arch!r}")
    _check_head_args(n_out, lin_ftrs, ps, concat_pool, f"{src}: builder ")
    if cut is not None and not (isinstance(cut, int) and not isinstance(cut, bool)):
        raise ValueError(f"{src}: builder['cut']={cut!r} must be an int or None")
    sd = state.get("model")
    if not isinstance(sd, dict) or not all(isinstance(t, Tensor) for t in sd.values()):
        raise ValueError(f"{src}: 'model' must be a state dict (parameter name -> tensor)")
    try:
        _, builder = resolve_arch(arch)
    except ValueError as e:
        raise ValueError(f"{src}: {e}. If {arch!r} is your own builder, call register_arch({arch!r}, builder) "
                         "before load_learner, or pass load_learner(path, model=...)") from None

    def check_head(nf: int) -> None:
        ftrs = [nf * 2 if concat_pool else nf, *([512] if lin_ftrs is None else lin_ftrs), n_out]
        declared = [(o, i) for i, o in zip(ftrs[:-1], ftrs[1:])]
        stored = _head_shapes(sd)
        if stored != declared:
            raise ValueError(f"{src}: the head it declares (n_out={n_out}, lin_ftrs={lin_ftrs}, concat_pool="
                             f"{concat_pool}: Linear weights {declared}) does not match its stored weights "
                             f"({stored}); the file is damaged or was altered. Nothing was built.")

    # the head's declared sizes are checked before it is allocated; the whole model's shapes are checked by
    # load_learner, which runs this first on the meta device (no memory) and compares with the stored tensors
    args = (builder, int(n_out), None, cut, lin_ftrs, ps, concat_pool)  # type: ignore[arg-type]
    model, meta = create_vision_model(*args, check_head=check_head)
    dls_state = state.get("dls")
    if not isinstance(dls_state, dict):
        raise ValueError(f"{src}: 'dls' must describe the data (a dict), got {type(dls_state).__name__}")
    dls = ImageDataLoaders.from_export_state(dls_state, device=device, source=src)
    act = state.get("activation")
    if act not in ("softmax", "sigmoid", None):
        raise ValueError(f"{src}: activation={act!r} must be 'softmax', 'sigmoid' or None")
    loss = {"softmax": CrossEntropyLossFlat(), "sigmoid": BCEWithLogitsLossFlat()}.get(act)  # type: ignore[arg-type]
    learn = VisionLearner(dls, model, loss_func=loss, splitter=meta.split, activation=act)
    names = state.get("group_names")
    if isinstance(names, list) and len(names) == learn.n_groups and all(isinstance(n, str) for n in names):
        learn.group_names = list(names)
    learn.export_info = dict(info)
    return learn
