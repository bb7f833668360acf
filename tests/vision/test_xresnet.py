"""fastai's xresnets: the same layers, parameter names and shapes, initial values and outputs as fastai's."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from minifastai.vision.xresnet import XResNet, xresnet18, xresnet34, xresnet50

fxr = pytest.importorskip("fastai.vision.models.xresnet")


@pytest.mark.parametrize("name, kwargs", [("xresnet18", {}), ("xresnet34", {"n_out": 10}),
                                           ("xresnet50", {"n_out": 7, "p": 0.2, "c_in": 1})])
def test_xresnet_is_fastais(name, kwargs):
    ours = {"xresnet18": xresnet18, "xresnet34": xresnet34, "xresnet50": xresnet50}[name](**kwargs)
    torch.manual_seed(0)
    theirs = getattr(fxr, name)(**kwargs)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    for k in a:  # fastai's init: BatchNorm weights 1 (0 for each block's last), every bias 0
        if k.endswith(("running_mean", "running_var", "bias")) or (k.endswith("weight") and a[k].ndim == 1):
            assert torch.equal(a[k], b[k]), k
    ours.load_state_dict(b)
    ours.eval(), theirs.eval()
    x = torch.randn(2, kwargs.get("c_in", 3), 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
    assert ours(x).shape == (2, kwargs.get("n_out", 1000))


@pytest.mark.parametrize("name, kwargs, shape", [
    ("xresnet18", {"ndim": 1, "c_in": 1, "ks": 15, "n_out": 4}, (2, 1, 128)),
    ("xresnext50", {"ndim": 1, "c_in": 2, "ks": 31, "stride": 4, "n_out": 3}, (2, 2, 128)),
    ("xresnet34", {"ndim": 3, "n_out": 2}, (2, 3, 32, 32, 32)),
])
def test_1d_and_3d_xresnets_are_fastais(name, kwargs, shape):
    import minifastai.vision.xresnet as ours_mod

    ours, theirs = getattr(ours_mod, name)(**kwargs), getattr(fxr, name)(**kwargs)
    a, b = ours.state_dict(), theirs.state_dict()
    assert [v.shape for v in a.values()] == [v.shape for v in b.values()]
    ndim = kwargs["ndim"]
    assert any(isinstance(m, getattr(nn, f"Conv{ndim}d")) for m in ours.modules())
    assert not any(isinstance(m, nn.Conv2d) for m in ours.modules())
    ours.load_state_dict(dict(zip(a, b.values())))
    ours.eval(), theirs.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
    assert ours(x).shape == (2, kwargs["n_out"])


def test_a_3d_squeeze_excitation_xresnet_gates_with_3d_layers():
    """fastai's 3d SE xresnet puts 2d convolutions in its gate and fails on a volume; ours runs."""
    import minifastai.vision.xresnet as ours_mod

    m = ours_mod.xse_resnet18(ndim=3, n_out=2)
    assert m(torch.randn(2, 3, 32, 32, 32)).shape == (2, 2)
    with pytest.raises(RuntimeError):
        fxr.xse_resnet18(ndim=3, n_out=2)(torch.randn(2, 3, 32, 32, 32))


def test_xresnet_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="kernel size must be odd"):
        XResNet(1, [2, 2, 2, 2], ks=4)
    with pytest.raises(ValueError, match="expansion is 1"):
        XResNet(2, [2, 2, 2, 2])
    with pytest.raises(ValueError, match=r"ndim is 1, 2 or 3 \(1d, 2d or 3d convolutions\), got 4"):
        XResNet(1, [2, 2, 2, 2], ndim=4)
    with pytest.raises(ValueError, match="no published weights"):
        xresnet18(weights="DEFAULT")
    assert isinstance(xresnet18()[-1], nn.Linear)


def test_vision_learner_on_an_xresnet_has_fastais_layer_groups_and_trains(tmp_path):
    import numpy as np
    from PIL import Image

    from minifastai.vision import ImageDataLoaders, Resize, get_image_files, vision_learner

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(8):
            Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(tmp_path / label / f"{i}.png")
    files = get_image_files(tmp_path)
    dls = ImageDataLoaders.from_path_func(tmp_path, files, lambda p: p.parent.name, valid_pct=0.25, seed=0,
                                          item_tfms=Resize(16), bs=4, device="cpu")
    learn = vision_learner(dls, xresnet18, pretrained=False)
    body = learn.model[0]
    assert len(body) == len(xresnet18()) - 4 and learn.n_groups == 3
    assert learn.group_names == ["body[:3]", "body[3:]", "head"]
    stem = {id(p) for p in body[:3].parameters()}
    assert {id(p) for p in learn.layer_groups[0]} == stem
    learn.freeze()
    assert not body[0][0].weight.requires_grad and body[3:][1][0].convpath[0][0].weight.requires_grad is False
    learn.fit(1, 1e-3)
    assert len(learn.recorder.values) == 1
    with pytest.raises(ValueError, match="no published weights|weights"):
        vision_learner(dls, xresnet18)


@pytest.mark.parametrize("name", ["xse_resnet18", "xse_resnext18", "xresnext18", "xse_resnet50", "xresnext50"])
def test_squeeze_excitation_and_resnext_xresnets_are_fastais(name):
    import minifastai.vision.xresnet as ours_mod

    ours = getattr(ours_mod, name)(n_out=5)
    theirs = getattr(fxr, name)(n_out=5)
    a, b = ours.state_dict(), theirs.state_dict()
    # the same tensors in the same order (fastai's SEModule is a SequentialEx: its keys say `layers` where ours
    # say `gate`); the grouped convolutions have fastai's widths
    assert [v.shape for v in a.values()] == [v.shape for v in b.values()]
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    ours.load_state_dict(dict(zip(a, b.values())))
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_xresnet_takes_fastais_block_argument():
    from minifastai.layers import SEBlock

    m = XResNet(SEBlock, 1, [1, 1, 1, 1], n_out=3, reduction=16)
    assert sum(isinstance(x, nn.Sigmoid) for x in m.modules()) == 4
    assert m.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(TypeError, match="block must be a block builder"):
        XResNet("ResBlock", 1, [1, 1])
