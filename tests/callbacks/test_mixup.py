"""MixUp and CutMix: fastai's draws in fastai's order, so a seeded fit gives fastai's weights; the loss comes back."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import SGD, CrossEntropyLossFlat, CutMix, DataLoaders, Learner, MixUp, MSELossFlat

fastai = pytest.importorskip("fastai")
from fastai.callback.mixup import CutMix as FastaiCutMix  # noqa: E402
from fastai.callback.mixup import MixUp as FastaiMixUp  # noqa: E402
from fastai.data.core import DataLoaders as FastaiDataLoaders  # noqa: E402
from fastai.learner import Learner as FastaiLearner  # noqa: E402
from fastai.losses import CrossEntropyLossFlat as FastaiCE  # noqa: E402
from fastai.losses import MSELossFlat as FastaiMSE  # noqa: E402
from fastai.optimizer import SGD as FastaiSGD  # noqa: E402


def parts(images: bool, regression: bool):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, 6, 6, generator=g) if images else torch.randn(48, 5, generator=g)
    y = x.flatten(1)[:, :2].sum(1, keepdim=True) if regression else (x.flatten(1)[:, 0] > 0).long()
    torch.manual_seed(1)
    body = [nn.Flatten(), nn.Linear(108, 8)] if images else [nn.Linear(5, 8)]
    model = nn.Sequential(*body, nn.ReLU(), nn.Linear(8, 1 if regression else 2))
    return DataLoader(TensorDataset(x[:32], y[:32]), 8), DataLoader(TensorDataset(x[32:], y[32:]), 8), model


@pytest.mark.parametrize("cb, theirs_cb, images, regression", [
    (MixUp, FastaiMixUp, False, False), (MixUp, FastaiMixUp, False, True), (CutMix, FastaiCutMix, True, False),
])
def test_a_seeded_fit_gives_fastais_weights(cb, theirs_cb, images, regression):
    t, v, m = parts(images, regression)
    fl = FastaiLearner(FastaiDataLoaders(t, v, device="cpu"), m, loss_func=FastaiMSE() if regression else FastaiCE(),
                       opt_func=FastaiSGD, lr=0.1, cbs=theirs_cb())
    torch.manual_seed(5)
    with fl.no_logging():
        fl.fit(2)
    t, v, m = parts(images, regression)
    ml = Learner(DataLoaders(t, v, device="cpu"), m, MSELossFlat() if regression else CrossEntropyLossFlat(),
                 opt_func=SGD, lr=0.1, cbs=cb())
    torch.manual_seed(5)
    with ml.no_bar(), ml.no_logging():
        ml.fit(2)
    for a, b in zip(fl.model.parameters(), ml.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert isinstance(ml.loss_func, MSELossFlat if regression else CrossEntropyLossFlat)  # given back
    torch.testing.assert_close(torch.tensor(ml.recorder.values[-1][1]), torch.tensor(float(fl.recorder.values[-1][1])))


def test_mixup_leaves_validation_alone_and_gives_the_loss_back_after_an_error():
    t, v, m = parts(False, False)
    lf = nn.CrossEntropyLoss()  # torch's loss (no fastai y_int): the losses are blended, not the class indices

    class Boom(Exception):
        pass

    def boom(cb):
        raise Boom

    from minifastai import Callback

    bomb = Callback(after_step=boom)
    learn = Learner(DataLoaders(t, v, device="cpu"), m, lf, cbs=[MixUp(), bomb])
    with pytest.raises(Boom):
        learn.fit(1)
    assert learn.loss_func is lf
    learn.remove_cb(bomb)
    x, y = v.dataset.tensors
    valid_loss = learn.validate()[0]  # MixUp does not run in validation: the plain loss of the plain inputs
    with torch.no_grad():
        learn.model.eval()
        assert valid_loss == pytest.approx(float(lf(learn.model(x), y)), rel=1e-5)


def test_bad_alpha_and_cutmix_on_non_images_are_clear_errors():
    with pytest.raises(ValueError, match="alpha must be a number > 0"):
        MixUp(alpha=0)
    t, v, m = parts(False, False)
    learn = Learner(DataLoaders(t, v, device="cpu"), m, CrossEntropyLossFlat(), cbs=CutMix())
    w = m[0].weight.detach().clone()
    with pytest.raises(ValueError, match=r"CutMix cuts boxes out of image batches \(N, C, H, W\)"):
        learn.fit(1)
    assert torch.equal(m[0].weight, w) and isinstance(learn.loss_func, CrossEntropyLossFlat)
