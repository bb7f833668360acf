"""timm backbones in vision_learner (offline: random init or local files) and layer groups by stage."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

timm = pytest.importorskip("timm")

import image_trees  # noqa: E402

from minifastai import layer_decay, load_learner  # noqa: E402
from minifastai.vision import ImageDataLoaders, WeightsUnavailableError, vision_learner  # noqa: E402
from minifastai.vision.models import build_vision_model  # noqa: E402
from minifastai.vision.stages import stage_groups  # noqa: E402
from minifastai.vision.timm_models import TimmBody  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


def write_tree(root: Path, n: int = 4, classes=("a", "b", "c"), size=(32, 32)) -> Path:
    return image_trees.write_tree(root, n, classes, size)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """3 classes of random 32x32 RGB images, 4 per class and split."""
    return write_tree(tmp_path_factory.mktemp("timm") / "data")


def dls_of(tree, **kw):
    return ImageDataLoaders.from_folder(tree, bs=4, device="cpu", **kw)


def quiet(learn):
    learn.remove_cb(learn.progress)
    return learn


def shifted_state(name, **kw):
    """A state dict of timm's `name` (with its 1000-class classifier) whose values differ from any init."""
    m = timm.create_model(name, **kw)
    g = torch.Generator().manual_seed(1)
    return {k: (v + torch.randn(v.shape, generator=g) if v.is_floating_point() else v) for k, v in
            m.state_dict().items()}


# ---- item 1: timm bodies ---------------------------------------------------------------------------------
def test_convnext_body_holds_the_files_weights_and_matches_fastais_timm_model(tree, tmp_path):
    from fastai.vision.learner import create_timm_model

    sd = shifted_state("convnext_atto")
    pth, st = tmp_path / "convnext_atto.pth", tmp_path / "convnext_atto.safetensors"
    torch.save(sd, pth)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(st))
    for path in (pth, st):
        dls = dls_of(tree)
        learn = vision_learner(dls, "convnext_atto", weights=path)
        body, head = learn.model
        assert isinstance(body, TimmBody) and body.needs_pool
        assert torch.equal(body.model.stem[0].weight, sd["stem.0.weight"])
        assert torch.equal(body.model.stages[3].blocks[1].mlp.fc2.weight, sd["stages.3.blocks.1.mlp.fc2.weight"])
        body_sd = body.model.state_dict()
        assert all(torch.equal(t, sd[k]) for k, t in body_sd.items())  # every body tensor is the file's
        # timm's classifier (head.norm, head.fc) is not part of the body: fastai's head replaces it
        assert not any(k.startswith("head.") for k in body_sd) and "head.norm.weight" in sd
        assert [type(m).__name__ for m in head] == ["AdaptiveConcatPool2d", "Flatten", "BatchNorm1d", "Dropout",
                                                    "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
        assert head[4].weight.shape == (512, 2 * 320) and head[8].weight.shape == (3, 512)  # num_features = 320
        assert dls.pipeline.norm.mean == [0.485, 0.456, 0.406]  # from timm's pretrained_cfg
        assert learn.group_names == ["body", "head"] and str(path) in learn.export_info["weights"]
        assert not body.model.stem[0].weight.requires_grad and head[8].weight.requires_grad  # frozen
    # fastai's create_timm_model builds the same network (plus dead head.norm weights): same outputs
    fa, _ = create_timm_model("convnext_atto", 3, pretrained=False)
    missing, unexpected = fa.load_state_dict(learn.model.state_dict(), strict=False)
    assert sorted(missing) == ["0.model.head.norm.bias", "0.model.head.norm.weight"] and not unexpected
    x = torch.randn(2, 3, 32, 32)
    learn.model.eval(), fa.eval()
    assert torch.allclose(learn.model(x), fa(x), atol=1e-5)


def test_vit_tokens_are_pooled_by_the_model_and_the_head_has_no_pool(tree, tmp_path):
    from fastai.vision.learner import create_timm_model

    kw = dict(img_size=32, patch_size=8, depth=2)
    sd = shifted_state("vit_tiny_patch16_224", **kw)
    torch.save(sd, tmp_path / "vit.pth")
    dls = dls_of(tree)
    learn = vision_learner(dls, "vit_tiny_patch16_224", weights=tmp_path / "vit.pth", **kw)
    body, head = learn.model
    assert not body.needs_pool and [type(m).__name__ for m in head][:3] == ["BatchNorm1d", "Dropout", "Linear"]
    assert head[2].weight.shape == (512, 192)  # num_features, not doubled: no concat pooling of tokens
    assert torch.equal(body.model.pos_embed, sd["pos_embed"]) and torch.equal(body.model.norm.weight, sd["norm.weight"])
    x = torch.randn(2, 3, 32, 32)
    body.eval()
    ref = body.model.forward_head(body.model.forward_features(x), pre_logits=True)
    assert body(x).shape == (2, 192) and torch.equal(body(x), ref)  # the class token after the final norm
    assert dls.pipeline.norm.mean == [0.5, 0.5, 0.5]  # ViT's own statistics, from its pretrained_cfg
    fa, _ = create_timm_model("vit_tiny_patch16_224", 3, pretrained=False, **kw)  # fastai: model(x), pool=False
    assert fa.load_state_dict(learn.model.state_dict())  # same keys and shapes, nothing dead
    fa.eval(), learn.model.eval()
    assert torch.allclose(learn.model(x), fa(x), atol=1e-5)
    # export / load_learner rebuild it from timm's registry with the same model keywords, no user code
    quiet(learn).fit(1, 1e-3)
    new = load_learner(learn.export())
    assert new.export_info["model_kwargs"] == kw and new.export_info["source"] == "timm"
    img = torch.rand(3, 32, 32)
    assert torch.allclose(new.predict(img)[2], learn.predict(img)[2], atol=1e-6)


def test_weights_errors_name_the_file_and_change_nothing(tree, tmp_path):
    dls = dls_of(tree)
    sd = shifted_state("resnet10t")
    other = tmp_path / "convnext.pth"
    torch.save(shifted_state("convnext_atto"), other)
    with pytest.raises(ValueError, match=rf"{other} does not fit timm's resnet10t \(Missing key"):
        vision_learner(dls, "resnet10t", weights=other)
    partial = tmp_path / "partial.pth"  # timm alone loads this silently (non-strict when the class count differs)
    torch.save({k: v for k, v in sd.items() if k != "layer4.0.conv1.weight"}, partial)
    with pytest.raises(ValueError, match=r"partial.pth does not fit timm's resnet10t.*layer4.0.conv1.weight"):
        vision_learner(dls, "resnet10t", weights=partial)
    damaged = tmp_path / "damaged.pth"
    torch.save(sd, damaged)
    damaged.write_bytes(damaged.read_bytes()[:500])
    with pytest.raises(ValueError, match=rf"could not read weights file {damaged}"):
        vision_learner(dls, "resnet10t", weights=damaged)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.pth")):
        vision_learner(dls, "resnet10t", weights=tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="pretrained=False but weights="):
        vision_learner(dls, "resnet10t", pretrained=False, weights=partial)
    with pytest.raises(ValueError, match=r"no pretrained weights tagged 'in22k'; its tags: \['c3_in1k'\]"):
        vision_learner(dls, "resnet10t", weights="in22k")
    with pytest.raises(ValueError, match="pretrained_cfg_overlay= is not a keyword vision_learner passes on"):
        vision_learner(dls, "resnet10t", pretrained_cfg_overlay=dict(file=str(partial)))
    with pytest.raises(TypeError, match=r"vision_learner got wdd=, which is not a Learner keyword: did you mean wd=\?"):
        vision_learner(dls, "resnet10t", pretrained=False, wdd=0.1)  # a typo of wd=
    with pytest.raises(TypeError, match=r"timm.create_model\('resnet10t', ...\) refused the model keywords \['dropp"):
        vision_learner(dls, "resnet10t", pretrained=False, dropp=0.1)  # no Learner keyword is near: timm's
    with pytest.raises(ValueError, match="cut= does not apply to timm models"):
        vision_learner(dls, "resnet10t", pretrained=False, cut=-2)
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['img_size'\].*only timm architectures"):
        vision_learner(dls, torchvision.models.resnet18, pretrained=False, img_size=32)
    assert dls.pipeline.norm is None  # no error touched the data


def test_pretrained_true_reads_the_hugging_face_cache_offline(tree, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailableError, match=r"resnet10t weights are not in the Hugging Face cache.*"
                                                      r"weights='/path/to/model.safetensors'.*pretrained=False"):
        vision_learner(dls_of(tree), "resnet10t")
    # as an earlier online run leaves it: models--timm--<repo>/snapshots/<commit>/model.safetensors
    from safetensors.torch import save_file

    commit = "0" * 40
    repo = tmp_path / "hub" / "models--timm--resnet10t.c3_in1k"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    sd = shifted_state("resnet10t")
    save_file(sd, str(repo / "snapshots" / commit / "model.safetensors"))
    learn = vision_learner(dls_of(tree), "resnet10t")
    assert torch.equal(learn.model[0].model.layer4[0].conv2.weight, sd["layer4.0.conv2.weight"])
    assert "Hugging Face cache" in learn.export_info["weights"]


def test_a_timm_model_instance_is_the_body(tree):
    m = timm.create_model("mobilenetv3_small_050", num_classes=7)
    learn = vision_learner(dls_of(tree), m)  # pretrained=True: frozen and normalized, weights as they are
    body = learn.model[0]
    assert body.model is m and body.needs_pool
    # conv_head (in timm's forward_head) and the classifier are unused by forward_features: dropped, not dead
    assert isinstance(m.conv_head, nn.Identity) and isinstance(m.classifier, nn.Identity)
    assert learn.model[1][4].weight.shape == (512, 2 * 288)
    assert not m.conv_stem.weight.requires_grad and learn.dls.pipeline.norm is not None
    new = load_learner(learn.export())
    img = torch.rand(3, 32, 32)
    assert torch.allclose(new.predict(img)[2], learn.predict(img)[2], atol=1e-6)
    # an instance timm.create_model(name) would not rebuild (other keywords) cannot be exported for rebuilding
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, depth=1)
    path = vision_learner(dls_of(tree), vit, pretrained=False).export("vit.pkl")
    with pytest.raises(ValueError, match=r"not what timm.create_model\('vit_tiny_patch16_224'\) builds.*img_size"):
        load_learner(path)
    with pytest.raises(ValueError, match="weights= with a model instance"):
        vision_learner(dls_of(tree), timm.create_model("resnet10t"), weights="x.pth")


def _tamper(path, tmp_path, **change):
    state = torch.load(path, weights_only=True)
    state.pop("checksum", None)
    state["builder"] = {**state["builder"], **change}
    out = tmp_path / "tampered.pkl"
    torch.save(state, out)
    return out


@pytest.mark.filterwarnings("ignore:.*has no checksum")
@pytest.mark.parametrize("change,match", [
    (dict(arch="hf-hub:timm/resnet10t.c3_in1k"), r"'hf-hub:timm/resnet10t.c3_in1k' is not in timm's registry"),
    (dict(arch="os.system"), r"'os.system' is not in timm's registry"),
    (dict(model_kwargs={"pretrained_cfg_overlay": {"file": "/etc/passwd"}}), "pretrained_cfg_overlay= is not a"),
    (dict(model_kwargs={"act_layer": {"x": 1}}), "must be a plain value"),
    (dict(arch="convnext_xxlarge"), r"the head it declares .* does not match its stored weights"),  # 3072 features
    (dict(arch="convnext_atto_ols"), r"describes a model \(minifastai.vision\) that does not fit the weights"),
    (dict(splitter="mine"), r"builder\['splitter'\]='mine' must be 'stages' or None"),
])
def test_tampered_timm_exports_build_nothing_unexpected(tree, tmp_path, monkeypatch, change, match):
    import minifastai.vision.timm_models as tm

    learn = vision_learner(dls_of(tree), "convnext_atto", pretrained=False)
    path = _tamper(learn.export(), tmp_path, **change)
    devices = []
    real = tm.TimmArch.__call__
    monkeypatch.setattr(tm.TimmArch, "__call__", lambda self, **kw: devices.append(
        torch.get_default_device().type) or real(self, **kw))
    with pytest.raises(ValueError, match=match):
        load_learner(path)
    assert set(devices) <= {"meta"}  # 846M-parameter convnext_xxlarge is only planned, never allocated


def test_names_from_both_libraries(tree):
    with pytest.raises(ValueError, match=r"unknown architecture 'convnext_atom'.*did you mean convnext_atto \(timm\)"
                       r".*convnext_tiny \(torchvision, timm\)"):  # every library that has the name
        vision_learner(dls_of(tree), "convnext_atom", pretrained=False)
    with pytest.raises(ValueError, match=r"'resnet19'.*resnet18 \(torchvision, timm\)"):
        vision_learner(dls_of(tree), "resnet19", pretrained=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("resnet18", "timm/resnet18"):  # a name both libraries have is timm's, as in fastai
            learn = vision_learner(dls_of(tree), name, pretrained=False)
            assert isinstance(learn.model[0], TimmBody) and learn.export_info == {**learn.export_info,
                                                                                   "arch": "resnet18", "source": "timm"}
        for arch in ("torchvision/resnet18", torchvision.models.resnet18):  # torchvision's: prefix or builder
            learn = vision_learner(dls_of(tree), arch, pretrained=False)
            assert not isinstance(learn.model[0], TimmBody)
            assert learn.export_info["source"] == "torchvision" and learn.export_info["arch"] == "resnet18"
        learn = vision_learner(dls_of(tree), "mobilenet_v2", pretrained=False)  # a name only torchvision has
        assert learn.export_info["source"] == "torchvision"


# ---- item 2: layer groups by stage ---------------------------------------------------------------------------
TORCHVISION_STAGES = {
    "resnet18": ["conv1+bn1", "layer1", "layer2", "layer3", "layer4", "head"],
    "mobilenet_v2": ["features.0", "features.1", "features[2:4]", "features[4:7]", "features[7:11]",
                     "features[11:14]", "features[14:17]", "features[17:19]", "head"],
    "mobilenet_v3_small": ["features.0", "features.1", "features[2:4]", "features[4:7]", "features[7:9]",
                           "features[9:13]", "head"],
    "efficientnet_b0": [*(f"features.{i}" for i in range(7)), "features[7:9]", "head"],
    "efficientnet_v2_s": [*(f"features.{i}" for i in range(6)), "features[6:8]", "head"],
    "convnext_tiny": ["features.0", "features.1", "features[2:4]", "features[4:6]", "features[6:8]", "head"],
    "regnet_y_400mf": ["stem", *(f"trunk_output.block{i}" for i in range(1, 5)), "head"],
}
TIMM_STAGES = {
    "resnet10t": ({}, ["conv1+bn1", "layer1", "layer2", "layer3", "layer4", "head"]),
    "convnext_atto": ({}, ["stem", "stages.0", "stages.1", "stages.2", "stages.3", "head"]),
    "efficientnet_b0": ({}, ["conv_stem+bn1", *(f"blocks.{i}" for i in range(6)), "blocks.6+conv_head+bn2", "head"]),
    "mobilenetv3_small_050": ({}, ["conv_stem+bn1", *(f"blocks.{i}" for i in range(6)), "head"]),
    "regnetx_002": ({}, ["stem", "s1", "s2", "s3", "s4", "head"]),
    "vit_tiny_patch16_224": (dict(img_size=32, depth=3), ["cls_token+pos_embed+patch_embed", "blocks.0", "blocks.1",
                                                          "blocks.2+norm", "head"]),
}


@pytest.mark.parametrize("arch", TORCHVISION_STAGES)
def test_torchvision_stage_groups(arch):
    try:
        with torch.device("meta"):  # planned only: the group structure needs no memory
            model, _ = build_vision_model(getattr(torchvision.models, arch), 5)
    except NotImplementedError:  # regnet's init reads its weights: build it for real (4M parameters)
        model, _ = build_vision_model(getattr(torchvision.models, arch), 5)
    groups = stage_groups(model)
    assert [n for n, _ in groups] == TORCHVISION_STAGES[arch]
    ids = [id(p) for _, ps in groups for p in ps]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # every parameter exactly once


@pytest.mark.parametrize("arch", TIMM_STAGES)
def test_timm_stage_groups_follow_its_group_matcher(tree, arch):
    kw, names = TIMM_STAGES[arch]
    learn = vision_learner(dls_of(tree), f"timm/{arch}", pretrained=False, splitter="stages", **kw)
    assert learn.group_names == names and learn.n_groups == len(names)
    timm_model = learn.model[0].model
    from timm.models import group_parameters

    expected = group_parameters(timm_model, timm_model.group_matcher(coarse=True))
    assert [[id(p) for p in g] for g in learn.layer_groups[:-1]] == [
        [id(timm_model.get_parameter(n)) for n in expected[k]] for k in sorted(expected)]


def test_stage_split_learner_summary_decay_and_export(tree):
    learn = quiet(vision_learner(dls_of(tree), "convnext_atto", pretrained=False, splitter="stages"))
    text = str(learn.summary())
    for name in ("0: stem", "3: stages.2", "5: head"):
        assert name in text
    learn.fit_one_cycle(1, layer_decay(1e-2, 0.5))
    peaks = learn.recorder.lrs.max(0)  # 3 batches: the cycle's top falls between two of them, in every group alike
    assert np.allclose(peaks / peaks[-1], [0.5 ** (5 - i) for i in range(6)]) and 0.9e-2 < peaks[-1] <= 1e-2
    ax = learn.recorder.plot_sched(log=True).axes[0]
    assert [line.get_label().split(":")[0] for line in ax.get_lines()] == learn.group_names  # one line per stage
    assert np.allclose([line.get_ydata().max() for line in ax.get_lines()], peaks)
    new = load_learner(learn.export())
    assert new.group_names == learn.group_names and new.n_groups == 6
    assert [len(g) for g in new.layer_groups] == [len(g) for g in learn.layer_groups]


def test_stages_of_an_unknown_family_is_an_error_before_the_data_changes(tree):
    dls = dls_of(tree)
    sd = torchvision.models.squeezenet1_1().state_dict()
    with pytest.raises(ValueError, match=r"splitter='stages' knows the stages of timm models.*ResNet.*ConvNeXt"):
        vision_learner(dls, torchvision.models.squeezenet1_1, weights=sd, splitter="stages")
    assert dls.pipeline.norm is None
    with pytest.raises(ValueError, match=r"splitter='layers' must be a function model -> list of parameter lists, "
                                         "or 'stages'"):
        vision_learner(dls, "resnet10t", pretrained=False, splitter="layers")
