"""minifastai.vision: vision_learner groups/freezing/weights, ImageDataLoaders, export/reload, offline errors."""
import copy
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from helpers import fastai_random_split, load_script
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from minifastai import accuracy, load_learner
from minifastai.vision import (
    IMAGENET_STATS,
    AdaptiveConcatPool2d,
    ImageDataLoaders,
    RandomResizedCrop,
    Resize,
    WeightsUnavailableError,
    aug_transforms,
    cnn_learner,
    create_body,
    create_head,
    get_image_files,
    register_arch,
    resnet10,
    vision_learner,
)

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


P = load_script("examples/pretrain_digits.py")


@pytest.fixture(scope="module")
def weights() -> Path:
    """resnet10 pretrained on digits 0-4 (made once, cached in examples/out, shared with the notebook)."""
    return P.pretrained_weights()


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    """Digits 5-9, 20 images per class (16 train, 4 valid)."""
    return P.write_digits_tree(tmp_path_factory.mktemp("digits") / "small", n_per_class=20)


@pytest.fixture(scope="module")
def full_tree(tmp_path_factory) -> Path:
    """All digits 5-9 (about 720 train, 180 valid images)."""
    return P.write_digits_tree(tmp_path_factory.mktemp("digits") / "full")


def small_dls(tree: Path, **kw) -> ImageDataLoaders:
    return ImageDataLoaders.from_folder(tree, bs=32, device="cpu", **kw)


def quiet(learn):
    learn.remove_cb(learn.progress)
    return learn


# ---- model structure, groups, freezing ------------------------------------------------------------------
def test_resnet_groups_frozen_state_and_head(small_tree, weights):
    dls = small_dls(small_tree)
    learn = vision_learner(dls, "resnet10", weights=weights)
    body, head = learn.model
    assert isinstance(learn.model, nn.Sequential) and len(learn.model) == 2 and len(body) == 8
    assert learn.n_groups == 3 and learn.group_names == ["body[:6]", "body[6:]", "head"]
    ids = [{id(p) for p in g} for g in learn.layer_groups]
    assert ids[0] == {id(p) for p in body[:6].parameters()} and ids[1] == {id(p) for p in body[6:].parameters()}
    assert ids[2] == {id(p) for p in head.parameters()}
    # pretrained => frozen body, except its norm layers; the head trains
    for m in body.modules():
        for p in m.parameters(recurse=False):
            assert p.requires_grad == isinstance(m, nn.BatchNorm2d), type(m)
    assert all(p.requires_grad for p in head.parameters())
    # fastai's head: concat pool, flatten, BN-Dropout-Linear(no bias)-ReLU, BN-Dropout-Linear(no bias)
    assert [type(m) for m in head] == [AdaptiveConcatPool2d, nn.Flatten, nn.BatchNorm1d, nn.Dropout, nn.Linear,
                                       nn.ReLU, nn.BatchNorm1d, nn.Dropout, nn.Linear]
    assert head[2].num_features == 2 * 512 and head[4].out_features == 512 and head[8].out_features == 5
    assert head[3].p == 0.25 and head[7].p == 0.5 and head[4].bias is None and head[8].bias is None
    assert (tuple(dls.pipeline.norm.mean), tuple(dls.pipeline.norm.std)) == IMAGENET_STATS
    assert cnn_learner is vision_learner


def test_other_arch_splits_body_head_and_random_is_not_frozen(small_tree):
    dls = small_dls(small_tree)
    learn = vision_learner(dls, torchvision.models.mobilenet_v3_small, pretrained=False, ps=0.2)
    body, head = learn.model
    assert learn.group_names == ["body", "head"] and learn.n_groups == 2
    assert isinstance(body[0], nn.Sequential) and len(body) == 1  # `features`; avgpool and classifier cut off
    assert head[2].num_features == 2 * 576 and head[3].p == 0.1
    assert all(p.requires_grad for p in learn.model.parameters())
    assert dls.pipeline.norm is None  # random weights: no ImageNet normalization
    x, _ = next(iter(dls.train))
    assert learn.model.eval()(x).shape == (len(x), 5)


def test_create_body_finds_the_cut():
    se = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 4, 1)), nn.ReLU())
    vgg_like = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2)), se,  # kept: conv blocks
                             nn.Sequential(nn.Dropout(), nn.Conv2d(4, 7, 1), nn.AdaptiveAvgPool2d(1)),  # squeezenet
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(7, 3))  # pool and classifier
    body = create_body(vgg_like)  # fastai's rule: the children before the last one holding a pooling layer
    assert len(body) == 3 and body[0] is vgg_like[0] and body[1] is se and body[2] is vgg_like[2]
    no_pool = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    assert len(create_body(no_pool)) == 2  # no pooling child (fastai: StopIteration): the classifier is dropped
    assert len(create_body(vgg_like, cut=1)) == 1 and create_body(vgg_like, cut=lambda m: m[0]) is vgg_like[0]
    with pytest.raises(ValueError, match="empty body; pass cut="):
        create_body(nn.Sequential(nn.Flatten(), nn.Linear(3, 3)))


def test_create_head_and_concat_pool():
    x = torch.randn(2, 8, 3, 3)
    assert torch.equal(AdaptiveConcatPool2d()(x)[:, :8, 0, 0], x.amax((2, 3)))
    assert torch.allclose(AdaptiveConcatPool2d()(x)[:, 8:, 0, 0], x.mean((2, 3)))
    head = create_head(8, 3, lin_ftrs=[32, 16], ps=0.4, concat_pool=False)
    lins = [m for m in head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lins] == [(8, 32), (32, 16), (16, 3)]
    assert [m.p for m in head if isinstance(m, nn.Dropout)] == [0.2, 0.2, 0.4]
    with pytest.raises(ValueError, match="3 head blocks"):
        create_head(8, 3, lin_ftrs=[32, 16], ps=[0.1, 0.2])


def test_slice_gives_per_group_lrs_and_frozen_weights_stay(small_tree, weights):
    learn = quiet(vision_learner(small_dls(small_tree), "resnet10", weights=weights))
    conv, lin = learn.model[0][0].weight.clone(), learn.model[1][4].weight.clone()
    with learn.dry_run() as runs:
        learn.fine_tune(1, base_lr=2e-3)
    # one-cycle starts each group at its peak / div: frozen phase slice(base_lr), then slice(1e-3/100, 1e-3)
    assert runs[0].lrs[0] == pytest.approx([2e-4 / 25, 2e-4 / 25, 2e-3 / 25])
    assert runs[1].lrs[0] == pytest.approx([1e-5 / 5, 1e-4 / 5, 1e-3 / 5])
    learn.fit_one_cycle(1, slice(1e-5, 1e-3))
    lrs = learn.recorder.lrs
    # 80 training images at bs=32: 2 batches (the partial third is dropped, as fastai does)
    assert lrs.shape == (2, 3) and lrs[0] == pytest.approx([1e-5 / 25, 1e-4 / 25, 1e-3 / 25])
    assert lrs / lrs[:, 2:] == pytest.approx(torch.tensor([[0.01, 0.1, 1.0]] * 2).numpy())  # same shape, scaled
    assert torch.equal(learn.model[0][0].weight, conv)  # frozen conv: untouched
    assert not torch.equal(learn.model[1][4].weight, lin)  # head: trained


# ---- weights ---------------------------------------------------------------------------------------------
def test_weights_really_loaded_from_file_dict_and_checkpoint(small_tree, weights):
    sd = torch.load(weights, weights_only=True)
    learn = vision_learner(small_dls(small_tree), "resnet10", weights=weights)
    body = learn.model[0]
    assert torch.equal(body[0].weight, sd["conv1.weight"])
    assert torch.equal(body[7][0].conv2.weight, sd["layer4.0.conv2.weight"])
    assert torch.equal(body[1].running_mean, sd["bn1.running_mean"])
    learn2 = vision_learner(small_dls(small_tree), "resnet10", weights=sd)  # a state dict
    assert torch.equal(learn2.model[0][4][0].conv1.weight, sd["layer1.0.conv1.weight"])
    ckpt = learn.save("stage1")  # a minifastai checkpoint of (body, head) also works as body weights
    learn3 = vision_learner(small_dls(small_tree), "resnet10", weights=ckpt)
    assert torch.equal(learn3.model[0][6][0].conv1.weight, sd["layer3.0.conv1.weight"])


def test_pretrained_body_beats_random_body_after_one_frozen_epoch(full_tree, weights):
    # measured over seeds 0-5 (16px digits 5-9, resnet10 pretrained on 0-4 for 2 epochs): pretrained accuracy
    # 0.80-0.86, random 0.32-0.53, margin 0.29-0.54; valid loss 0.47-0.58 vs 1.15-1.65
    res = {}
    for pretrained in (True, False):
        torch.manual_seed(0)
        dls = ImageDataLoaders.from_folder(full_tree, bs=64, device="cpu")
        learn = quiet(vision_learner(dls, "resnet10", pretrained=pretrained,
                                     weights=weights if pretrained else None, metrics=accuracy))
        if not pretrained:  # same treatment as the pretrained body: normalized inputs, frozen body
            dls.normalize(*IMAGENET_STATS)
            learn.freeze()
        learn.fit_one_cycle(1, 2e-3)
        res[pretrained] = learn.validate()  # valid_loss, accuracy
    (pre_loss, pre_acc), (rnd_loss, rnd_acc) = res[True], res[False]
    assert pre_acc >= 0.7
    assert pre_acc - rnd_acc >= 0.15, res
    assert rnd_loss - pre_loss >= 0.3, res


def test_no_network_error_says_how_to_pass_a_local_file(small_tree, tmp_path, monkeypatch):
    seen = {}

    def no_network(*args, **kwargs):
        import socket

        seen["timeout"] = socket.getdefaulttimeout()
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # empty cache
    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    with pytest.raises(WeightsUnavailableError) as e:
        vision_learner(small_dls(small_tree), torchvision.models.resnet18)
    msg = str(e.value)
    assert "resnet18-f37072fd.pth" in msg and "weights='/path/to/resnet18-f37072fd.pth'" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg and "pretrained=False" in msg
    assert seen["timeout"] is not None and 0 < seen["timeout"] <= 30  # never waits forever
    # a file in torch hub's cache is used without any network access
    cache = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cache.parent.mkdir(parents=True, exist_ok=True)
    ref = torchvision.models.resnet18().state_dict()
    torch.save(ref, cache)
    learn = vision_learner(small_dls(small_tree), torchvision.models.resnet18)
    assert torch.equal(learn.model[0][0].weight, ref["conv1.weight"]) and learn.n_groups == 3
    learn = vision_learner(small_dls(small_tree), "torchvision/resnet18", weights="IMAGENET1K_V1")  # enum by name
    assert torch.equal(learn.model[0][7][1].conv2.weight, ref["layer4.1.conv2.weight"])


def test_weights_file_errors_name_the_file(small_tree, weights, tmp_path):
    dls = small_dls(small_tree)
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        vision_learner(dls, "resnet10", weights=missing)
    other = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), other)
    with pytest.raises(ValueError, match=rf"weights file {other} does not fit the body of resnet10 \(48 unexpected"):
        vision_learner(dls, "resnet10", weights=other)
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match=rf"could not read weights file {damaged}"):
        vision_learner(dls, "resnet10", weights=damaged)
    with pytest.raises(ValueError, match="no torchvision pretrained weights.*weights="):
        vision_learner(dls, "resnet10")  # pretrained=True, but resnet10 has no published weights
    with pytest.raises(ValueError, match="pretrained=False but weights="):
        vision_learner(dls, "resnet10", pretrained=False, weights=weights)
    with pytest.raises(ValueError, match="unknown architecture 'resnet9'"):
        vision_learner(dls, "resnet9", pretrained=False)


# ---- export, reload, predict -----------------------------------------------------------------------------
def test_export_reload_predicts_the_same(small_tree, weights):
    dls = small_dls(small_tree, batch_tfms=aug_transforms(do_flip=False))
    learn = quiet(vision_learner(dls, "resnet10", weights=weights, metrics=accuracy))
    learn.fit_one_cycle(1, 1e-3)
    path = learn.export("digits.pth")
    state = torch.load(path, weights_only=True)
    assert state["builder"]["arch"] == "resnet10" and state["dls"]["vocab"] == ["eight", "five", "nine", "seven",
                                                                                  "six"]
    assert state["dls"]["normalize"] == [list(IMAGENET_STATS[0]), list(IMAGENET_STATS[1])]
    # the whole pipeline is stored (augmentation too, for tta after reloading), as plain data
    assert [d["name"] for d in state["dls"]["batch_tfms"]] == ["minifastai.Warp", "minifastai.Rotate",
                                                               "minifastai.Zoom", "minifastai.Brightness",
                                                               "minifastai.Contrast"]
    assert state["dls"]["batch_tfms"][1]["args"]["max_deg"] == 10.0
    new = load_learner(path)
    assert new.group_names == learn.group_names and new.dls.vocab == dls.vocab
    img = sorted((small_tree / "valid" / "seven").glob("*.png"))[0]
    dec, idx, probs = learn.predict(img)
    dec2, idx2, probs2 = new.predict(img)
    assert (dec, idx) == (dec2, idx2) and isinstance(dec, str) and dec == dls.vocab[idx]
    assert torch.allclose(probs, probs2, atol=1e-6) and probs.sum().item() == pytest.approx(1, abs=1e-5)
    with Image.open(img) as pil:
        assert torch.allclose(new.predict(pil)[2], probs, atol=1e-6)  # a PIL image works too
    # the inference pipeline (files -> test_dl) gives the same predictions as the validation loader
    files = [p for p, _ in dls.valid.dataset.samples]
    preds, targs = learn.get_preds()
    preds2, none = new.get_preds(dl=new.dls.test_dl(files))
    assert none is None and torch.allclose(preds, preds2, atol=1e-5) and len(targs) == len(files)


def tiny_resnet(*, weights=None, **kwargs):
    """A builder of our own (not registered, not in torchvision)."""
    return resnet10(**kwargs)


def test_export_of_own_builder_asks_to_register_it(small_tree):
    learn = vision_learner(small_dls(small_tree), tiny_resnet, pretrained=False)
    assert learn.n_groups == 3  # a torchvision ResNet: ResNet metadata by class
    path = learn.export("tiny.pth")
    with pytest.raises(ValueError, match=r"unknown architecture 'tiny_resnet'.*register_arch\('tiny_resnet'"):
        load_learner(path)
    register_arch("tiny_resnet", tiny_resnet)
    new = load_learner(path)
    x = torch.rand(3, 16, 16)
    assert torch.allclose(new.predict(x)[2], learn.predict(x)[2], atol=1e-6)


# ---- data ------------------------------------------------------------------------------------------------
def test_from_folder_vocab_split_and_batches(small_tree):
    dls = small_dls(small_tree)
    assert dls.vocab == ["eight", "five", "nine", "seven", "six"] and dls.n_inp == 1
    assert len(dls.train.dataset) == 80 and len(dls.valid.dataset) == 20
    x, y = next(iter(dls.valid))
    assert x.shape == (20, 3, 16, 16) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.dtype == torch.int64 and set(y.tolist()) == set(range(5))
    dls.device = "meta"  # the loaders follow dls.device (distrib_ctx sets it per process)
    assert next(iter(dls.valid))[0].device.type == "meta"
    # fastai's valid_pct: every image under path, labelled by its folder, split by RandomSplitter(0.25, seed=1)
    split = ImageDataLoaders.from_folder(small_tree, valid_pct=0.25, seed=1, device="cpu", bs=16)
    again = ImageDataLoaders.from_folder(small_tree, valid_pct=0.25, seed=1, device="cpu", bs=16)
    assert len(split.valid.dataset) == 25 and len(split.train.dataset) == 75
    assert split.valid.dataset.samples == again.valid.dataset.samples
    files = get_image_files(small_tree)
    t_idx, v_idx = fastai_random_split(files, 0.25, 1)
    assert split.valid.items == [str(files[i]) for i in v_idx] and split.train.items == [str(files[i]) for i in t_idx]
    assert split.path == small_tree and len(split.train) == 75 // 16  # last partial training batch dropped


def test_augmentation_touches_training_batches_only(small_tree):
    dls = ImageDataLoaders.from_folder(small_tree, item_tfms=RandomResizedCrop(12, min_scale=0.5),
                                       batch_tfms=aug_transforms(), bs=80, shuffle=False, device="cpu")
    t1, t2 = next(iter(dls.train))[0], next(iter(dls.train))[0]
    v1, v2_ = next(iter(dls.valid))[0], next(iter(dls.valid))[0]
    assert t1.shape[-2:] == (12, 12) and v1.shape[-2:] == (12, 12)
    assert not torch.equal(t1, t2) and torch.equal(v1, v2_)
    same = next(iter(dls.valid))[0][:1].expand(16, -1, -1, -1)  # 16 copies of one image
    out = dls.pipeline.batch(same.clone(), train=True)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 4  # each image gets its own random parameters
    assert torch.equal(dls.pipeline.batch(same.clone(), train=False), same)
    state = dls.export_state()
    assert [d["name"] for d in state["item_tfms"]] == ["minifastai.RandomResizedCrop"]
    assert state["item_tfms"][0]["args"]["min_scale"] == 0.5


def test_folder_errors_name_the_path(tmp_path, small_tree):
    with pytest.raises(FileNotFoundError, match=f"image folder {tmp_path / 'nope'} does not exist"):
        ImageDataLoaders.from_folder(tmp_path / "nope")
    (tmp_path / "a" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=rf"valid folder {tmp_path / 'a' / 'valid'} does not exist"):
        ImageDataLoaders.from_folder(tmp_path / "a")
    (tmp_path / "a" / "valid").mkdir()
    with pytest.raises(FileNotFoundError, match=rf"no images in {tmp_path / 'a' / 'train' / 'cat'}"):
        ImageDataLoaders.from_folder(tmp_path / "a")
    (tmp_path / "b" / "train").mkdir(parents=True)
    (tmp_path / "b" / "valid").mkdir()
    with pytest.raises(FileNotFoundError, match=rf"train folder {tmp_path / 'b' / 'train'} has no class folders"):
        ImageDataLoaders.from_folder(tmp_path / "b")


def test_unreadable_and_odd_sized_images_name_the_path(tmp_path):
    root = tmp_path / "imgs"
    for split in ("train", "valid"):
        for c in ("x", "y"):
            (root / split / c).mkdir(parents=True)
            Image.new("RGB", (8, 8), (10, 20, 30)).save(root / split / c / "ok.png")
    bad = root / "train" / "x" / "broken.png"
    bad.write_bytes(b"not a png at all")
    dls = ImageDataLoaders.from_folder(root, bs=2, device="cpu", shuffle=False)  # x/broken.png comes first
    with pytest.raises(RuntimeError, match=f"could not read image {bad}"):
        next(iter(dls.train))
    bad.unlink()
    Image.new("RGB", (9, 7)).save(root / "train" / "y" / "big.png")
    dls = ImageDataLoaders.from_folder(root, bs=2, device="cpu", shuffle=False)  # x/ok.png, y/big.png
    with pytest.raises(RuntimeError, match=r"different sizes \(3x7x9, 3x8x8\).*item_tfms"):
        next(iter(dls.train))
    for tfm in (v2.Resize((8, 8)), Resize(8)):
        resized = ImageDataLoaders.from_folder(root, bs=3, device="cpu", item_tfms=tfm)
        assert next(iter(resized.train))[0].shape == (3, 3, 8, 8)


def test_image_loaders_shard_their_inner_dataloader_for_distributed_training(small_tree):
    from torch.utils.data import DistributedSampler

    from minifastai.callback.distributed import shard_train, shard_valid

    dls = small_dls(small_tree)
    n_valid = len(dls.valid.dataset)
    trains = [shard_train(dls.train, r, 2, seed=3) for r in range(2)]
    valids = [shard_valid(dls.valid, r, 2) for r in range(2)]
    assert all(type(t) is type(dls.train) and isinstance(t.sampler, DistributedSampler) for t in trains)
    assert trains[0].sampler.rank == 0 and trains[1].sampler.rank == 1 and trains[0].sampler.seed == 3
    assert [len(v.sampler) for v in valids] == [(n_valid + 1) // 2, n_valid // 2]  # no padding, no overlap
    x, y = next(iter(valids[1]))
    x0, _ = next(iter(dls.valid))
    assert x.dtype == x0.dtype and x.shape[1:] == x0.shape[1:]  # still decoded and normalized by the pipeline
    assert sum(len(b[1]) for v in valids for b in v) == n_valid


@pytest.mark.parametrize("kwargs", [
    {}, {"lin_ftrs": [32, 16], "ps": 0.4, "concat_pool": False}, {"first_bn": False, "bn_final": True},
    {"lin_first": True, "lin_ftrs": [20]}, {"y_range": (0.0, 5.0), "pool": False}, {"ps": 0.0},
])
def test_create_head_is_fastais_layer_for_layer(kwargs):
    fvl = pytest.importorskip("fastai.vision.learner")
    ours, theirs = create_head(16, 3, **kwargs, init=None), fvl.create_head(16, 3, **kwargs)

    def layout(head):  # each layer of the head, in order (a concat pool as one layer)
        return [(type(m).__name__, getattr(m, "in_features", None), getattr(m, "out_features", None),
                 m.bias is not None if isinstance(m, nn.Linear) else None, getattr(m, "p", None),
                 getattr(m, "num_features", None), getattr(m, "momentum", None)) for m in head]

    assert layout(ours) == layout(theirs)
    for a, b in zip([m for m in ours.modules() if isinstance(m, nn.BatchNorm1d)],
                    [m for m in theirs.modules() if isinstance(m, nn.BatchNorm1d)]):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)  # fastai's BatchNorm: bias 1e-3
    torch.manual_seed(0)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 16, 2, 2) if kwargs.get("pool", True) else torch.randn(4, 16)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("n_in", [1, 2, 3, 5])
def test_create_body_cuts_and_adapts_the_first_layer_as_fastai(n_in):
    fvl = pytest.importorskip("fastai.vision.learner")
    from torchvision.models import resnet18

    torch.manual_seed(0)
    ref = resnet18()
    ours = create_body(copy.deepcopy(ref), n_in, True)
    theirs = fvl.create_body(copy.deepcopy(ref), n_in, True)
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert ours[0].in_channels == theirs[0].in_channels == n_in
    torch.testing.assert_close(ours[0].weight, theirs[0].weight)  # the pretrained weights adapted the same way
    cut = len(create_body(copy.deepcopy(ref), n_in, False, cut=-3))
    assert cut == len(fvl.create_body(copy.deepcopy(ref), n_in, False, cut=-3)) == 7


def test_create_body_bad_arguments_are_errors_before_the_model_changes():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))
    with pytest.raises(ValueError, match="n_in=0 must be a positive int"):
        create_body(m, 0)
    with pytest.raises(TypeError, match="cut must be an int"):
        create_body(m, 1, cut="last")
    assert m[0].in_channels == 3
    with pytest.raises(ValueError, match="needs a Conv2d first layer"):
        create_body(nn.Sequential(nn.Linear(3, 3)), 1)
