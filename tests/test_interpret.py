"""`minifastai.interpret`: the per-item losses of `Interpretation` are the hand-computed ones, `top_losses` sorts
them, `interp[idxs]` gives those items' inputs/predictions/targets, `ClassificationInterpretation` agrees with
scikit-learn, and bad input is a clear error before anything runs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import CrossEntropyLossFlat, DataLoaders, Learner
from minifastai.interpret import ClassificationInterpretation, Interpretation, SegmentationInterpretation

N_VALID, C = 20, 3


def data(n: int = N_VALID, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, C, (n,), generator=g)


def make_learner(valid: bool = True, loss_func=None, **kw) -> Learner:
    x, y = data(32, seed=0)
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, drop_last=True)
    val = DataLoader(TensorDataset(*data()), batch_size=6) if valid else None
    dls = DataLoaders(train, val, device="cpu", vocab=["a", "b", "c"])
    learn = Learner(dls, nn.Linear(4, C), loss_func=loss_func or CrossEntropyLossFlat(), **kw)
    learn.remove_cb(learn.progress)
    return learn


class Counter(nn.Module):
    """Counts forward calls of the wrapped model."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m, self.calls = m, 0

    def forward(self, x):
        self.calls += 1
        return self.m(x)


def test_top_losses_are_the_hand_computed_per_item_losses_sorted():
    learn = make_learner()
    x, y = data()
    with torch.no_grad():
        raw = learn.model(x)
    expected = F.cross_entropy(raw, y, reduction="none")
    interp = Interpretation.from_learner(learn)
    assert len(interp) == N_VALID
    assert torch.allclose(interp.losses, expected, atol=1e-6)
    losses, idx = interp.top_losses(5)
    order = expected.argsort(descending=True)
    assert torch.allclose(losses, expected[order[:5]], atol=1e-6) and torch.equal(idx, order[:5])
    assert (losses[:-1] >= losses[1:]).all()
    low, low_idx = interp.top_losses(4, largest=False)
    assert torch.allclose(low, expected.sort().values[:4], atol=1e-6) and torch.equal(interp.losses[low_idx], low)
    every, _ = interp.top_losses()
    assert len(every) == N_VALID and torch.allclose(every, expected.sort(descending=True).values, atol=1e-6)


def test_getitem_gives_inputs_preds_targets_decoded_and_losses_of_those_items():
    learn = make_learner()
    x, y = data()
    interp = Interpretation.from_learner(learn)
    inps, preds, targs, decoded, losses = interp[[7, 0, -1]]
    pos = [7, 0, N_VALID - 1]
    with torch.no_grad():
        probs = torch.softmax(learn.model(x[pos]), -1)
    assert torch.equal(inps, x[pos]) and torch.equal(targs, y[pos])
    assert torch.allclose(preds, probs, atol=1e-6) and torch.equal(decoded, probs.argmax(-1))
    assert torch.equal(losses, interp.losses[pos])
    assert interp[3][0].shape == (1, 4)  # one index: a batch of one, as fastai
    assert torch.equal(interp[:][0], x) and torch.equal(interp[torch.tensor([2, 5])][2], y[[2, 5]])
    with pytest.raises(IndexError, match="index 20 is out of range: the interpretation holds 20 items"):
        interp[[1, 20]]
    with pytest.raises(ValueError, match="no items selected"):
        interp[[]]


def test_a_loader_that_cannot_be_cut_is_read_whole():
    learn = make_learner()
    x, y = data()
    batches = [(x[i:i + 6], y[i:i + 6]) for i in range(0, N_VALID, 6)]
    interp = Interpretation.from_learner(learn, dl=batches)
    inps, _, targs, _, _ = interp[[4, 13]]
    assert torch.equal(inps, x[[4, 13]]) and torch.equal(targs, y[[4, 13]])


def test_classification_interpretation_agrees_with_scikit_learn(capsys):
    from sklearn.metrics import classification_report, confusion_matrix

    learn = make_learner()
    _, y = data()
    interp = ClassificationInterpretation.from_learner(learn)
    preds, targs = learn.get_preds()
    assert torch.allclose(interp.preds, preds) and torch.equal(interp.targs, targs)
    assert torch.equal(interp.decoded, preds.argmax(-1)) and interp.vocab == ["a", "b", "c"]
    cm = interp.confusion_matrix()
    assert (cm == confusion_matrix(y, preds.argmax(-1), labels=range(C))).all() and cm.sum() == N_VALID
    off = cm.copy()
    np.fill_diagonal(off, 0)
    mc = interp.most_confused()
    assert sum(n for _, _, n in mc) == off.sum() and [n for *_, n in mc] == sorted((n for *_, n in mc), reverse=True)
    assert all(cm["abc".index(a), "abc".index(p)] == n and a != p for a, p, n in mc)
    interp.print_classification_report()
    expected = classification_report(y, preds.argmax(-1), labels=range(C), target_names=["a", "b", "c"],
                                     zero_division=0)
    assert capsys.readouterr().out == expected + "\n"
    fig = interp.plot_confusion_matrix(normalize=True)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == sorted(
        f"{v:.2f}" for v in (cm / np.maximum(cm.sum(1, keepdims=True), 1)).flatten())


def test_the_training_set_is_read_in_order_with_every_item():
    learn = make_learner()
    interp = ClassificationInterpretation.from_learner(learn, ds_idx=0)
    x, y = data(32, seed=0)
    assert torch.equal(interp.targs, y) and interp.confusion_matrix().sum() == 32  # no batch dropped
    assert torch.equal(interp[[0, 31]][0], x[[0, 31]])


def test_per_element_losses_are_averaged_per_item_and_losses_without_reduction_work():
    x, y = torch.randn(10, 2, 5), torch.randint(0, 2, (10, 5))  # (items, classes, positions)
    dl = DataLoader(TensorDataset(x, y), batch_size=4)
    model = nn.Conv1d(2, 2, 1)
    learn = Learner(DataLoaders(dl, dl, device="cpu"), model, loss_func=CrossEntropyLossFlat(axis=1))
    interp = SegmentationInterpretation.from_learner(learn)
    with torch.no_grad():
        expected = F.cross_entropy(model(x), y, reduction="none").mean(1)
    assert torch.allclose(interp.losses, expected, atol=1e-6)

    learn = make_learner(loss_func=lambda p, t: F.cross_entropy(p, t))  # no reduction='none': one call per item
    xv, yv = data()
    with torch.no_grad():
        expected = F.cross_entropy(learn.model(xv), yv, reduction="none")
    assert torch.allclose(Interpretation.from_learner(learn).losses, expected, atol=1e-6)


def test_bad_input_is_a_clear_error_before_anything_runs():
    learn = make_learner(valid=False)
    learn.model = Counter(learn.model)
    with pytest.raises(ValueError, match=r"this learner has no validation set \(dls.valid is None\)"):
        Interpretation.from_learner(learn)
    with pytest.raises(ValueError, match="ds_idx is 0 .training set. or 1 .validation set., got 2"):
        Interpretation.from_learner(learn, ds_idx=2)
    x, y = data()
    with pytest.raises(ValueError, match="random order"):
        Interpretation.from_learner(learn, dl=DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True))
    assert learn.model.calls == 0
    with pytest.raises(ValueError, match="the data has no targets"):
        Interpretation.from_learner(learn, dl=DataLoader(TensorDataset(x), batch_size=4))

    interp = ClassificationInterpretation.from_learner(make_learner())
    before = interp.losses.clone()
    with pytest.raises(ValueError, match=r"k=21 is larger than the number of items interpreted \(20\)"):
        interp.top_losses(21)
    with pytest.raises(ValueError, match="k must be a non-negative int"):
        interp.top_losses(-1)
    with pytest.raises(ValueError, match="k=50 is larger"):
        interp.plot_top_losses(50)
    with pytest.raises(IndexError, match="index 20 is out of range"):
        interp.plot_top_losses(range(18, 26))
    with pytest.raises(ValueError, match="has no .items"):
        interp.top_losses(3, items=True)
    with pytest.raises(TypeError, match="plot_top_losses is not implemented for DataLoader loaders"):
        interp.plot_top_losses(3)
    assert torch.equal(interp.losses, before)


@pytest.fixture(scope="module")
def image_learner(tmp_path_factory):
    from minifastai.vision import ImageDataLoaders, vision_learner

    root = tmp_path_factory.mktemp("imgs")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 8), ("valid", 6)):
        for label in ("x", "y"):
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                px = (torch.rand(16, 16, 3, generator=g) * 255).to(torch.uint8).numpy()
                Image.fromarray(px).save(root / split / label / f"{i}.png")
    dls = ImageDataLoaders.from_folder(root, bs=4, device="cpu")
    learn = vision_learner(dls, "resnet10", pretrained=False)
    learn.remove_cb(learn.progress)
    return learn


@pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
def test_image_plots_titles_and_items(image_learner):
    learn = image_learner
    interp = Interpretation.from_learner(learn)  # the generic one: predictions recomputed for the drawn items
    cls_interp = ClassificationInterpretation.from_learner(learn)
    assert torch.allclose(interp.losses, cls_interp.losses)
    losses, idx = interp.top_losses()
    fig = interp.plot_top_losses(range(1, 4), nrows=1)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    i = int(idx[1])
    p = cls_interp.preds[i]
    assert len(titles) == 3 and titles[0] == (f"{learn.dls.vocab[int(p.argmax())]}/"
                                              f"{learn.dls.vocab[int(cls_interp.targs[i])]} / "
                                              f"{float(losses[1]):.2f} / {float(p.max()):.2f}")
    assert cls_interp.plot_top_losses([1, 2, 3], nrows=1).axes[0].get_title() == titles[0]
    _, _, items = interp.top_losses(2, items=True)
    assert items == [learn.dls.valid.items[j] for j in idx[:2].tolist()]
    fig = cls_interp.show_results([0, 7])
    axes = [ax for ax in fig.axes if ax.images]
    for ax, j in zip(axes, (0, 7)):
        target, pred = ax.get_title().split("\n")
        assert target == learn.dls.vocab[int(cls_interp.targs[j])]
        assert pred == learn.dls.vocab[int(cls_interp.decoded[j])]
        assert ax.title.get_color() == ("green" if target == pred else "red")
