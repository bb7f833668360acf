"""fastai's mid-level pipeline, small: `Transform`, `Pipeline`, `Datasets`, a `TfmdDL` over them (`decode_batch`,
`test_dl`), and `predict` decoding through the loss and the target pipeline as fastai's."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from minifastai import DataLoaders
from minifastai.basics import Datasets, Pipeline, TfmdDL, Transform
from minifastai.test_utils import synth_learner


class Add1(Transform):
    def encodes(self, x):
        return x + 1

    def decodes(self, x):
        return x - 1


class Times10(Transform):
    order = 5

    def encodes(self, x):
        return x * 10

    def decodes(self, x):
        return x / 10


def test_transform_encodes_decodes_and_maps_over_tuples():
    t = Add1()
    assert t(1) == 2 and t.decode(2) == 1 and t((1, 2)) == (2, 3) and t.decode((2, 3)) == (1, 2)
    assert Transform(len)([1, 2, 3]) == 3  # a list is one element (fastai maps over tuples only)
    neg = Transform(lambda x: -x, lambda x: -x)
    assert neg(3) == -3 and neg.decode(-3) == 3 and Transform()(7) == 7


def test_pipeline_runs_in_order_and_decodes_in_reverse():
    p = Pipeline([Times10(), Add1(), lambda x: x * 2])  # Add1 and the function (order 0) run before Times10
    assert p(1) == (1 + 1) * 2 * 10 == 40
    assert p.decode(40) == 40 / 10 - 1 == 3  # a plain function has no decodes
    assert len(Pipeline(None)) == 0 and Pipeline(Add1)(1) == 2


def test_datasets_build_items_from_pipelines_and_decode_them():
    ds = Datasets(torch.arange(5), tfms=[[], [Add1(), Times10()]])
    assert len(ds) == 5 and ds.n_inp == 1
    x, y = ds[3]
    assert int(x) == 3 and int(y) == 40
    assert [int(v) for v in ds.decode((x, y))] == [3, 3]
    assert Datasets([1, 2], tfms=[None, None, None]).n_inp == 2 and Datasets([1])[0] == (1,)


def test_a_tfmddl_over_datasets_decodes_batches_and_builds_test_loaders():
    dl = TfmdDL(Datasets(torch.arange(10), tfms=[[Times10()], [Add1()]]), bs=4)
    xb, yb = dl.one_batch()
    assert xb.tolist() == [0, 10, 20, 30] and yb.tolist() == [1, 2, 3, 4]
    dec = dl.decode_batch((xb, yb), max_n=2)
    assert [(float(a), int(b)) for a, b in dec] == [(0.0, 0), (1.0, 1)]
    tdl = dl.test_dl([5, 6, 7])
    assert [b[0].tolist() for b in tdl] == [[50, 60, 70]] and tdl.bs == 4


class ShiftedLoss(nn.Module):
    reduction = "mean"

    def forward(self, x, y):
        return F.mse_loss(x, y)

    def activation(self, x):
        return x + 1

    def decodes(self, x):
        return 2 * x


def test_predict_decodes_through_the_loss_and_the_target_pipeline_as_fastai():
    learn = synth_learner()
    dl = TfmdDL(Datasets(torch.arange(20.0), tfms=[[], [Add1()]]), bs=8)
    learn.dls = DataLoaders(dl, dl, device="cpu")
    learn.loss_func = ShiftedLoss()
    inp = torch.tensor([2.0])
    out = learn.model(inp).detach() + 1  # the model, then the loss's activation
    full_dec, dec, pred = learn.predict(inp)
    torch.testing.assert_close(pred, out)
    torch.testing.assert_close(dec, 2 * out)  # the loss's decodes
    torch.testing.assert_close(full_dec, 2 * out - 1)  # then the target pipeline's
    dec_inp, *rest = learn.predict(inp, with_input=True)
    assert torch.equal(dec_inp, inp) and len(rest) == 3
    preds, _ = learn.get_preds(dl=dl)
    torch.testing.assert_close(preds, learn.model(torch.arange(20.0)).detach() + 1)


def test_bad_pipeline_pieces_are_clear_errors():
    with pytest.raises(TypeError, match="must be a function"):
        Transform(enc=3)
    with pytest.raises(TypeError, match="a transform is a Transform or a function"):
        Pipeline([3])
    with pytest.raises(ValueError, match="n_inp must be an int from 1 to 2"):
        Datasets([1, 2], tfms=[None, None], n_inp=3)
    plain = TfmdDL(torch.utils.data.TensorDataset(torch.arange(3)), bs=2)
    with pytest.raises(TypeError, match="test_dl needs a TfmdDL over a Datasets"):
        plain.test_dl([1])


class Noisy(torch.utils.data.Dataset):
    """A dataset whose items are drawn again on each read (a random augmentation in the dataset)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple:
        return self.x[i] + 0.1 * torch.randn(()), self.x[i]


def test_tta_on_any_learner_mixes_augmented_and_plain_passes_as_fastai():
    learn = synth_learner()
    x = torch.arange(16.0)
    plain = TfmdDL(Datasets(x, tfms=[[], []]), bs=8)
    learn.dls = DataLoaders(plain, plain, device="cpu")
    preds, targs = learn.tta()
    expected = learn.model(x).detach()
    torch.testing.assert_close(preds, expected)
    torch.testing.assert_close(targs, x)
    noisy = TfmdDL(Noisy(x), bs=8)
    torch.manual_seed(0)
    (aug, plain_preds), _ = learn.tta(dl=noisy, n=3, beta=None)
    torch.manual_seed(0)
    passes = [learn.get_preds(dl=noisy)[0] for _ in range(4)]  # three augmented passes, then the plain one
    torch.testing.assert_close(aug, torch.stack(passes[:3]).mean(0))
    torch.testing.assert_close(plain_preds, passes[3])
    torch.manual_seed(0)
    mixed, _ = learn.tta(dl=noisy, n=3, beta=0.25)
    torch.testing.assert_close(mixed, torch.lerp(aug, plain_preds, 0.25))


def test_tta_bad_arguments_are_errors_before_any_pass():
    learn = synth_learner()
    a = learn.model.a.detach().clone()
    with pytest.raises(ValueError, match="must be at least 1"):
        learn.tta(n=0)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        learn.tta(beta=2)
    assert torch.equal(learn.model.a.detach(), a) and learn.opt is None
