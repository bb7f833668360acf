"""Evaluation and inference: `validate`, `get_preds` (with inputs, decoded predictions, per-item losses) and
`predict`."""
from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from .callback.core import Callback, listify
from .losses import ACTIVATIONS, activation_for, per_item_loss  # noqa: F401 (part of this module's API)

if TYPE_CHECKING:
    from .learner import Learner

def decode_preds(loss_func: Any, activation: str | None, preds: torch.Tensor) -> torch.Tensor:
    """Decoded predictions (fastai's `decodes`): the loss's own `decodes`, else class indices after softmax,
    0/1 after sigmoid, the predictions themselves otherwise."""
    dec = getattr(loss_func, "decodes", None)
    if callable(dec):
        return dec(preds)
    if activation == "softmax":
        return preds.argmax(dim=-1)
    if activation == "sigmoid":
        return preds > 0.5
    return preds


class GatherPreds(Callback):
    """Collects predictions (and targets, inputs, per-item losses) of a validation pass, on the device."""

    order = 100
    run_train = False

    def __init__(self, with_input: bool = False, loss_func: Callable[..., torch.Tensor] | None = None) -> None:
        self.with_input, self.loss_func = with_input, loss_func
        self.preds: list = []
        self.targs: list = []
        self.inputs: list = []
        self.losses: list = []

    def after_batch(self) -> None:
        """Keep this batch's outputs (no sync until concatenated); every input and target of the batch."""
        learn = self.learn
        self.preds.append(learn.pred.detach())
        self.targs.append(tuple(t.detach() for t in learn.yb) if learn.yb else None)
        if self.with_input:
            self.inputs.append(tuple(t.detach() for t in learn.xb))
        if self.loss_func is not None and learn.yb:
            self.losses.append(self.loss_func(learn.pred, *learn.yb).detach())


def cat(ts: list) -> torch.Tensor | None:
    """Concatenate the non-None tensors on the host (None when there are none)."""
    ts = [t for t in ts if t is not None]
    return torch.cat(ts).cpu() if ts else None


def cat_parts(batches: list) -> Any:
    """Per-batch tuples of tensors (a batch's inputs or targets) concatenated: one tensor when the batches hold
    one, else a list with one tensor per position (fastai's `[y, y]` for two targets); None when there are none."""
    batches = [b for b in batches if b is not None]
    if not batches:
        return None
    parts = [cat([b[i] for b in batches]) for i in range(len(batches[0]))]
    return parts[0] if len(parts) == 1 else parts


def in_order(dl: Iterable, strict: bool = False) -> Iterable:
    """`dl` with every item in dataset order, as fastai's `get_preds` reads it (`dl.new(shuffle=False,
    drop_last=False)`): a loader with `new` is rebuilt so; a torch `DataLoader` that shuffles or drops the last batch
    is rebuilt over the same dataset, unless its sampler is the user's own (a distributed shard), kept as it is.
    Anything else is used as it is; with `strict`, one that shuffles or drops is a clear error instead."""
    if callable(getattr(dl, "new", None)):
        if not (is_shuffled(dl) or getattr(dl, "drop_last", False) is True):
            return dl
        return dl.new(shuffle=False, drop_last=False)  # type: ignore[attr-defined]
    if isinstance(dl, DataLoader):
        plain = isinstance(dl.sampler, (RandomSampler, SequentialSampler)) and type(dl.batch_sampler) is BatchSampler
        if plain and (isinstance(dl.sampler, RandomSampler) or dl.drop_last):
            return DataLoader(dl.dataset, batch_size=dl.batch_size, shuffle=False, drop_last=False,
                              num_workers=dl.num_workers, collate_fn=dl.collate_fn, pin_memory=dl.pin_memory)
        if plain or not strict:
            return dl
    if strict and (is_shuffled(dl) or getattr(dl, "drop_last", False) is True):
        raise ValueError(f"cannot read a {type(dl).__name__} in order with every item (it shuffles or drops its "
                         "last batch): pass dl= a loader without shuffle or drop_last")
    return dl


def is_shuffled(dl: Any) -> bool:
    """Whether `dl` draws its items in a random order (a torch DataLoader's RandomSampler, or `shuffle=True`)."""
    inner = getattr(dl, "dl", dl)
    return isinstance(getattr(inner, "sampler", None), RandomSampler) or getattr(dl, "shuffle", False) is True


def loader_of(learn: Learner, ds_idx: int, dl: Iterable | None,
              hint: str = "pass dl=... (e.g. dl=learn.dls.test_dl(items)) or another ds_idx") -> Iterable:
    """`dl`, else `learn.dls[ds_idx]` (0: training set, 1: validation set); a clear error ending in `hint` when that
    set is missing."""
    if dl is not None:
        return dl
    if ds_idx not in (0, 1):
        raise ValueError(f"ds_idx is 0 (training set) or 1 (validation set), got {ds_idx!r}")
    found = learn.dls[ds_idx]
    if found is None:
        what = ("validation set", "dls.valid") if ds_idx == 1 else ("training set", "dls.train")
        raise ValueError(f"this learner has no {what[0]} ({what[1]} is None): {hint}")
    return found


@contextlib.contextmanager
def loss_not_reduced(learn: Learner) -> Iterator[None]:
    """Inside the block `learn.loss_func` returns one loss per item (`reduction='none'`; fastai's); the loss
    function is put back after, even after an error."""
    old = learn.loss_func
    learn.loss_func = per_item_loss(old)
    try:
        yield
    finally:
        learn.loss_func = old


def run_valid(learn: Learner, dl: Iterable, cbs: Any = None) -> None:
    """One validation pass over `dl` (eval mode, no grad) with extra callbacks."""
    learn.to_data_device()
    with learn.added_cbs(cbs):
        try:
            learn.run_validation(dl)
        except BaseException as e:  # every callback puts back what it changed, so no state outlives the error
            for cb in learn.cbs:
                try:
                    cb.restore_after_error()
                except Exception as err:
                    e.add_note(f"{type(cb).__name__}.restore_after_error then also raised {type(err).__name__}: {err}")
            raise


def validate(learn: Learner, ds_idx: int = 1, dl: Iterable | None = None, cbs: Any = None) -> list[float]:
    """[valid_loss, *metrics] on `dl` (default: the validation set); NaN where a value could not be computed."""
    dl = loader_of(learn, ds_idx, dl)
    if getattr(learn, "recorder", None) is None:
        raise ValueError("validate() reads the Recorder: create the Learner with default_cbs=True")
    run_valid(learn, dl, cbs)
    return list(learn.results.valid_result)


def get_preds(learn: Learner, ds_idx: int = 1, dl: Iterable | None = None, with_input: bool = False,
              with_decoded: bool = False, with_loss: bool = False, act: Callable | None = None,
              cbs: Any = None, reorder: bool = True) -> tuple:
    """`(inputs?, preds, targets, decoded?, losses?)` over `dl` (default: the validation set), as fastai orders
    them; the loss's activation is applied to `preds` (or `act`), `losses` are per item. `cbs` are callbacks for
    this pass only (e.g. `MCDropoutCallback()`). A loader that shuffles or drops its last batch is read in order
    with every item (`reorder=False`: as it is, in its own order, as fastai's)."""
    dl = in_order(loader_of(learn, ds_idx, dl)) if reorder else loader_of(learn, ds_idx, dl)
    gather = GatherPreds(with_input, per_item_loss(learn.loss_func) if with_loss else None)
    run_valid(learn, dl, [gather, *listify(cbs)])
    if not gather.preds:
        raise ValueError("get_preds: the loader yielded no batches, so there is nothing to predict; check the items "
                         "given to test_dl (and that the dataset is not empty)")
    preds = cat(gather.preds)
    if preds is not None:
        preds = (act or activation_fn(learn))(preds)
    res: list = [preds, cat_parts(gather.targs)]
    if with_input:
        res.insert(0, cat_parts(gather.inputs))
    if with_decoded:
        res.append(None if preds is None else decode_preds(learn.loss_func, learn.activation_name, preds))
    if with_loss:
        res.append(cat(gather.losses))
    return tuple(res)


def predict(learn: Learner, item: Any, with_input: bool = False) -> tuple:
    """(decoded, class index or raw output, probabilities or output) for one item; `with_input` puts the
    (decoded) input first. Over a fastai `Datasets`, as fastai's: (the loss's decoded prediction decoded through
    the target pipeline, the loss's decoded prediction, the prediction)."""
    batch = learn.dls.item_to_batch(item)
    inp, preds, _, dec = get_preds(learn, dl=[batch], with_input=True, with_decoded=True)
    inps = inp if isinstance(inp, list) else [inp]
    ds = getattr(learn.dls, "tfmd_dataset", None)
    if ds is not None:
        sample = ds.decode([*(x[0] for x in inps), dec[0]])
        dec_inp, res = sample[: len(inps)], (sample[len(inps)] if len(sample) > len(inps) else dec[0], dec[0], preds[0])
    else:
        dec_inp, res = tuple(x[0] for x in inps), (*learn.dls.decode(preds[0]), preds[0])
    return ((dec_inp[0] if len(dec_inp) == 1 else dec_inp), *res) if with_input else res


def tta(learn: Learner, ds_idx: int = 1, dl: Iterable | None = None, n: int = 4, beta: float | None = 0.25,
        use_max: bool = False) -> tuple[Any, torch.Tensor | None]:
    """Test-time augmentation (fastai's `tta`): predictions averaged (or, `use_max`, the maximum) over `n` passes
    with the training augmentations, mixed with the plain prediction, `lerp(aug, plain, beta)` (`beta=None`:
    both). A loader whose `new(train=True)` switches its augmentations on (the image loaders) uses them; any other
    loader is read `n` times as it is (random transforms in its dataset then draw again). Returns (preds, targets)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be at least 1 (the number of augmented passes, an int)")
    if beta is not None and not (isinstance(beta, (int, float)) and 0 <= beta <= 1):
        raise ValueError(f"beta={beta!r} must be in [0, 1] (the weight of the un-augmented prediction) or None")
    base = loader_of(learn, ds_idx, dl)
    new = getattr(base, "new", None)
    modes = callable(new) and "train" in inspect.signature(new).parameters
    aug_dl, plain_dl = (new(train=True), new(train=False)) if modes else (base, base)  # type: ignore[misc]
    aug = torch.stack([get_preds(learn, dl=aug_dl)[0] for _ in range(n)])
    aug = aug.max(0)[0] if use_max else aug.mean(0)
    preds, targs = get_preds(learn, dl=plain_dl)
    if use_max:
        return torch.stack([preds, aug]).max(0)[0], targs
    return ((aug, preds) if beta is None else torch.lerp(aug, preds, beta)), targs


def activation_fn(learn: Learner) -> Callable[[torch.Tensor], torch.Tensor]:
    """What `get_preds` applies to the outputs: the loss's own `activation` method (fastai's), else the named
    activation of `learn.activation_name`."""
    own = getattr(learn.loss_func, "activation", None) if learn.activation == "auto" else None
    return own if callable(own) and not isinstance(own, type) else ACTIVATIONS[learn.activation_name]
