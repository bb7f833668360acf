"""Hostile files and odd data for vision (issue 10, items 2, 3, 10, 13, 14): each probe asserts a clear error
or the correct result, and that nothing was changed or built on the way."""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from image_trees import tampered, write_tree
from PIL import Image
from torch import nn

import minifastai.vision.models as vision_models
from minifastai import load_learner
from minifastai.vision import (
    ImageDataLoaders,
    Resize,
    aug_transforms,
    get_image_files,
    rebuild_learner,
    vision_learner,
)

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A small vision export with item and batch transforms, and its state."""
    root = write_tree(tmp_path_factory.mktemp("adv") / "data")
    dls = ImageDataLoaders.from_folder(root, item_tfms=Resize(8), batch_tfms=aug_transforms(), bs=4, device="cpu")
    learn = vision_learner(dls, "resnet10", pretrained=False, lin_ftrs=[16])
    path = learn.export("good.pkl")
    return path, torch.load(path, weights_only=True)


# ---- item 3: transforms come from an explicit allow-list ---------------------------------------------------
@pytest.mark.parametrize("entry,match", [
    ({"name": "v2.Lambda", "args": {}}, r"dls.batch_tfms\[0\] names the transform 'v2.Lambda', which is not one"),
    ({"name": "Lambda", "lambd": "print"}, r"dls.batch_tfms\[0\] names the transform 'Lambda'"),
    ({"name": "os.system", "args": {"command": "touch pwned"}}, r"'os.system', which is not one"),
    ({"name": "minifastai.Rotate", "args": {"max_deg": 10, "evil": 1}}, r"arguments \['evil'\] that"),
    ({"name": "minifastai.Resize", "args": {"size": 10 ** 9}}, r"\(minifastai.Resize\) has invalid arguments"),
    ({"name": "v2.Resize", "args": {"size": [10 ** 9]}}, r"\(v2.Resize\) has invalid arguments"),
    ("Resize", r"dls.batch_tfms\[0\] is not a transform entry"),
    ({"name": "minifastai.Flip", "args": [0.5]}, r"malformed entry"),
])
def test_export_transforms_outside_the_allow_list_are_refused(export, tmp_path, entry, match):
    good, state = export
    path = tampered(tmp_path, state, lambda s: s["dls"]["batch_tfms"].insert(0, entry))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=match):
        load_learner(path)
    with pytest.raises(ValueError, match=rf"{path}: dls.batch_tfms\[0\]"):  # the file and the entry
        rebuild_learner(torch.load(path, weights_only=True), source=path)
    assert path.read_bytes() == before and not Path("pwned").exists()


def test_export_normalize_and_vocab_are_checked(export, tmp_path):
    _, state = export
    path = tampered(tmp_path, state, lambda s: s["dls"].update(normalize=[[0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="dls.normalize is invalid"):
        load_learner(path)
    path = tampered(tmp_path, state, lambda s: s["dls"].update(vocab={"a": 1}))
    with pytest.raises(RuntimeError, match=r"tampered\.pkl is malformed: entry 'dls'\['vocab'\] is a dict, not a list"):
        load_learner(path)  # checked with the file's other entries, before any builder runs


def test_untampered_export_rebuilds_every_transform(export):
    good, _ = export
    new = load_learner(good)
    assert [type(t).__name__ for t in new.dls.pipeline.item_tfms] == ["Resize"]
    assert [type(t).__name__ for t in new.dls.pipeline.batch_tfms] == ["Flip", "Warp", "Rotate", "Zoom", "Brightness",
                                                                      "Contrast"]


# ---- item 2: declared shapes are checked against the stored tensors before anything big is built ----------
@pytest.mark.parametrize("change,match", [
    (lambda s: s["builder"].update(n_out=2_000_000), r"n_out=2000000.*does not match its stored weights"),
    (lambda s: s["builder"].update(lin_ftrs=[16384, 16384]), r"lin_ftrs=\[16384, 16384\].*does not match"),
    (lambda s: s["builder"].update(concat_pool=False), r"concat_pool=False.*does not match"),
])
def test_head_sizes_are_checked_before_the_head_is_allocated(export, tmp_path, monkeypatch, change, match):
    _, state = export
    path = tampered(tmp_path, state, change)
    built = []
    monkeypatch.setattr(vision_models, "create_head", lambda *a, **k: built.append(a) or nn.Identity())
    with pytest.raises(ValueError, match=match):
        load_learner(path)
    assert built == []  # the 2e6-way head (4 GB) was never allocated


@pytest.mark.parametrize("arch,match", [
    ("resnet152", r"the head it declares .* does not match its stored weights"),  # 2048 features, not 512
    ("resnet18", r"tampered\.pkl describes a model \(minifastai\.vision\) that does not fit the weights stored"),
    ("vit_h_14", "vit_h_14 is a transformer, not a CNN"),
])
def test_an_other_arch_is_planned_on_the_meta_device_only(export, tmp_path, monkeypatch, arch, match):
    import minifastai.vision.export as vx  # rebuild_learner looks build_vision_model up there

    _, state = export
    path = tampered(tmp_path, state, lambda s: s["builder"].update(arch=arch))
    devices = []
    real = vx.build_vision_model

    def spy(*args, **kwargs):
        devices.append(torch.get_default_device().type)
        return real(*args, **kwargs)

    monkeypatch.setattr(vx, "build_vision_model", spy)
    with pytest.raises(ValueError, match=match):
        load_learner(path)
    assert devices == ["meta"]  # 11M / 60M / 630M parameters were only planned, never allocated


@pytest.mark.parametrize("field,value,match", [
    ("arch", "__import__('os').system", r"unknown architecture \"__import__\('os'\).system\"|unknown architecture"),
    ("arch", 3, r"builder\['arch'\] must be an architecture name"),
    ("n_out", -1, "n_out=-1 must be a positive int"),
    ("cut", "features", r"builder\['cut'\]='features' must be an int"),
    ("ps", 7, "ps=7 must be a dropout probability"),
    ("lin_ftrs", "512", "lin_ftrs='512' must be a list of positive ints"),
])
def test_builder_fields_are_validated(export, tmp_path, field, value, match):
    _, state = export
    path = tampered(tmp_path, state, lambda s: s["builder"].update({field: value}))
    with pytest.raises(ValueError, match=match):
        load_learner(path)


# ---- item 10: images ----------------------------------------------------------------------------------------
def test_16_bit_pngs_keep_their_range(tmp_path):
    root = write_tree(tmp_path / "d", n_per_class=2)
    ramp = (np.linspace(0, 65535, 36).reshape(6, 6)).astype(np.uint16)
    for split in ("train", "valid"):
        Image.fromarray(ramp).save(root / split / "a" / "deep.png")
    dls = ImageDataLoaders.from_folder(root, bs=3, device="cpu", shuffle=False)
    i = dls.valid.items.index(str(root / "valid" / "a" / "deep.png"))
    x = dls.valid_ds[i][0]
    assert x.dtype == torch.uint8 and len(x.unique()) == 36  # not clipped to a few values
    assert torch.equal(x[0].long(), torch.from_numpy((ramp.astype(np.int64) + 128) // 257))


def test_float_0_255_tensor_to_predict_is_refused_and_nothing_changes(tmp_path):
    root = write_tree(tmp_path / "d")
    dls = ImageDataLoaders.from_folder(root, bs=4, device="cpu")
    learn = vision_learner(dls, "resnet10", pretrained=False)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    img = torch.rand(3, 6, 6) * 255
    with pytest.raises(ValueError, match=r"float image tensor must hold values in \[0, 1\].*torch.uint8"):
        learn.predict(img)
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in before.items())
    assert learn.predict(img.to(torch.uint8))[0] == learn.predict(img / 255)[0]  # the two ways it names work


def test_unsupported_files_are_reported_and_skipped(tmp_path):
    root = write_tree(tmp_path / "d")
    Image.new("RGB", (6, 6)).save(root / "train" / "a" / "anim.gif")
    (root / "train" / "b" / "vector.svg").write_text("<svg/>")
    with pytest.warns(UserWarning, match=r"skipped 1 image files .*\(1 \.svg; e\.g\. .*vector\.svg\)"):
        dls = ImageDataLoaders.from_folder(root, bs=4, device="cpu")
    assert len(dls.train_ds) == 11 and not any(str(i).endswith(".svg") for i in dls.train.items)
    assert any(str(i).endswith("anim.gif") for i in dls.train.items)  # GIFs are read (their first frame), as fastai


def test_symlink_loops_are_not_followed(tmp_path):
    root = write_tree(tmp_path / "d", n_per_class=2)
    (root / "train" / "a" / "loop").symlink_to(root / "train", target_is_directory=True)
    (root / "train" / "b" / "up").symlink_to(root, target_is_directory=True)
    with pytest.warns(UserWarning, match="did not enter 2 folder"):
        files = get_image_files(root)
    assert len(files) == 8 and len(set(map(os.path.realpath, files))) == 8
    with pytest.warns(UserWarning, match="did not enter"):
        dls = ImageDataLoaders.from_folder(root, bs=2, device="cpu")
    assert len(dls.train_ds) == 4 and dls.vocab == ["a", "b"]


def test_macos_dotfiles_are_skipped_and_training_runs(tmp_path):
    root = write_tree(tmp_path / "d")
    for split in ("train", "valid"):
        (root / split / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble junk")
        (root / split / ".DS_Store").write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        dls = ImageDataLoaders.from_folder(root, bs=4, device="cpu")
    assert not any("._" in i for i in dls.train.items + dls.valid.items) and len(dls.train_ds) == 10
    learn = vision_learner(dls, "resnet10", pretrained=False)
    learn.remove_cb(learn.progress)
    learn.fit(1)  # every file is read without error
    assert learn.validate()[0] > 0


# ---- item 13: the last partial training batch ---------------------------------------------------------------
def test_last_partial_training_batch_is_dropped_so_batchnorm_never_sees_one_image(tmp_path):
    root = write_tree(tmp_path / "d", n_per_class=5, classes=("a", "b", "c"))  # 15 training images
    dls = ImageDataLoaders.from_folder(root, bs=7, device="cpu")  # 7 + 7 + 1
    assert len(dls.train) == 2 and [len(y) for _, y in dls.train] == [7, 7]
    assert sum(len(y) for _, y in dls.valid) == 15  # validation keeps every image
    bn = nn.BatchNorm1d(4).train()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        bn(torch.randn(1, 4))  # what a batch of one would have done to the head
    learn = vision_learner(dls, "resnet10", pretrained=False)
    learn.remove_cb(learn.progress)
    learn.fit(2)
    assert torch.isfinite(torch.tensor(learn.validate())).all()


# ---- item 14: valid_pct with one image and other early, clear errors ----------------------------------------
def test_valid_pct_with_one_image_is_a_clear_error_and_creates_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "one.png")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=r"valid_pct=0.2 of 1 image\(s\) leaves no validation image.*at least 5"):
        ImageDataLoaders.from_folder(tmp_path, valid_pct=0.2)
    with pytest.raises(ValueError, match=r"valid_pct=0.5 of 1 image\(s\) leaves no validation image.*at least 2"):
        ImageDataLoaders.from_lists(tmp_path, [tmp_path / "a" / "one.png"], ["a"], valid_pct=0.5)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
