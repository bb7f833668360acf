"""DataBlock: the same items, splits, classes and targets as fastai's DataBlock; the loaders ImageDataLoaders
builds; multi-label and regression trained end to end and exported; clear errors before any image is read."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from minifastai import Learner, load_learner
from minifastai.data.block import DataBlock
from minifastai.data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from minifastai.data.transforms import (
    ColReader,
    ColSplitter,
    EndSplitter,
    FileSplitter,
    FuncSplitter,
    GrandparentSplitter,
    IndexSplitter,
    MaskSplitter,
    RandomSplitter,
    RandomSubsetSplitter,
    RegexLabeller,
    TrainTestSplitter,
    parent_label,
    using_attr,
)
from minifastai.metrics import accuracy_multi
from minifastai.vision import ImageBlock, ImageDataLoaders, PILImageBW, Resize, get_image_files, vision_learner

COLOURS = {"r": 0, "g": 1, "b": 2}


def _colour_image(path, labels, rng):
    """A 12x12 image whose channel c is bright when colour c is a label (noise on top): learnable from pixels."""
    arr = rng.integers(0, 60, (12, 12, 3))
    for lab in labels:
        arr[..., COLOURS[lab]] += 180
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path)


@pytest.fixture
def tree(tmp_path):
    """An ImageNet-style tree, train/<class>/ and valid/<class>/, two classes, 16 + 8 images."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("valid", 4)):
        for c in ("r", "g"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                _colour_image(tmp_path / split / c / f"{c}{i}.png", [c], rng)
    return tmp_path


@pytest.fixture
def multi(tmp_path):
    """A labels DataFrame (fastai's PASCAL layout): file name, space-separated labels, is_valid; 48 images."""
    rng = np.random.default_rng(1)
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(48):
        labels = [c for c in "rgb" if rng.random() < 0.5] or ["r"]
        _colour_image(tmp_path / "img" / f"{i}.png", labels, rng)
        rows.append((f"{i}.png", " ".join(labels), i >= 36, sum(COLOURS[c] + 1 for c in labels) / 6))
    return tmp_path, pd.DataFrame(rows, columns=["fname", "labels", "is_valid", "score"])


# ---- splitters and labellers: fastai's results -------------------------------------------------------------
def test_splitters_give_fastais_positions(tmp_path):
    fd = pytest.importorskip("fastai.data.transforms")
    items = [tmp_path / s / c / f"{i}.png" for s in ("train", "valid", "test") for c in "ab" for i in range(5)]
    df = pd.DataFrame({"x": range(30), "is_valid": [i % 3 == 0 for i in range(30)], "fold": [i % 4 for i in range(30)]})
    (tmp_path / "valid.txt").write_text("1.png\n3.png")
    pairs = [
        (RandomSplitter(0.25, seed=3), fd.RandomSplitter(0.25, seed=3), items),
        (RandomSubsetSplitter(0.5, 0.2, seed=1), fd.RandomSubsetSplitter(0.5, 0.2, seed=1), items),
        (TrainTestSplitter(0.3, random_state=2), fd.TrainTestSplitter(0.3, random_state=2), items),
        (IndexSplitter([0, 4, 7]), fd.IndexSplitter([0, 4, 7]), items),
        (EndSplitter(0.2), fd.EndSplitter(0.2), items),
        (EndSplitter(0.2, valid_last=False), fd.EndSplitter(0.2, valid_last=False), items),
        (GrandparentSplitter(), fd.GrandparentSplitter(), items),
        (GrandparentSplitter("train", ["valid", "test"]), fd.GrandparentSplitter("train", ["valid", "test"]), items),
        (FuncSplitter(lambda o: o.parent.name == "b"), fd.FuncSplitter(lambda o: o.parent.name == "b"), items),
        (MaskSplitter([i % 5 == 0 for i in range(30)]), fd.MaskSplitter([i % 5 == 0 for i in range(30)]), items),
        (FileSplitter(tmp_path / "valid.txt"), fd.FileSplitter(tmp_path / "valid.txt"), items),
        (ColSplitter(), fd.ColSplitter(), df),
        (ColSplitter("fold", on=[1, 2]), fd.ColSplitter("fold", on=[1, 2]), df),
        (ColSplitter(2, on=3), fd.ColSplitter(2, on=3), df),
    ]
    for ours, theirs, o in pairs:
        a, b = ours(o), theirs(o)
        assert [list(map(int, s)) for s in a] == [list(map(int, s)) for s in b]
    assert len(RandomSplitter(0.25, seed=3)(items)[1]) == 7


def test_labellers_give_fastais_labels(tmp_path):
    fd = pytest.importorskip("fastai.data.transforms")
    f = tmp_path / "images" / "great_pyrenees_12.jpg"
    for pat, match in ((r"^(.+)_\d+\.jpg$", False), (r".*/(.+)_\d+\.jpg$", True), (r"images/([a-z]+)_", False)):
        assert RegexLabeller(pat, match)(f) == fd.RegexLabeller(pat, match)(f)
    assert parent_label(f) == fd.parent_label(f) == "images"
    row = pd.Series({"fn": "a.png", "tags": "cat dog", "n": 3})
    for args, kw in (((["fn"]), {}), (("fn",), {"pref": tmp_path, "suff": ".x"}), (("tags",), {"label_delim": " "}),
                     ((["fn", "n"],), {}), ((0,), {"pref": "p/"})):
        assert list(np.atleast_1d(ColReader(*args, **kw)(row))) == list(np.atleast_1d(fd.ColReader(*args, **kw)(row)))
    assert using_attr(str.upper, "name")(f) == "GREAT_PYRENEES_12.JPG"
    with pytest.raises(ValueError, match="no group"):
        RegexLabeller(r"\d+")
    with pytest.raises(ValueError, match="does not match"):
        RegexLabeller(r"^(cat)_")(f)


# ---- single label: fastai's classes and split, ImageDataLoaders' pixels ----------------------------------
def test_a_folder_datablock_is_fastais_split_and_imagedataloaders_pixels(tree):
    fb = pytest.importorskip("fastai.data.block")
    fv = pytest.importorskip("fastai.vision.data")
    db = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, splitter=GrandparentSplitter(),
                   get_y=parent_label, item_tfms=Resize(8))
    dsets = db.datasets(tree)
    theirs = fb.DataBlock(blocks=(fv.ImageBlock, fb.CategoryBlock), get_items=fv.get_image_files,
                          splitter=fb.GrandparentSplitter(), get_y=fb.parent_label).datasets(tree)
    assert dsets.vocab == list(theirs.vocab) == ["g", "r"]
    assert sorted(map(str, dsets.train.items)) == sorted(map(str, theirs.train.items))
    assert sorted(map(str, dsets.valid.items)) == sorted(map(str, theirs.valid.items))
    x, y = dsets.train[0]
    i = [str(o) for o in theirs.train.items].index(str(dsets.train.items[0]))
    assert np.array_equal(np.asarray(x), np.asarray(theirs.train[i][0])) and int(y) == int(theirs.train[i][1])

    dls = db.dataloaders(tree, bs=4, shuffle=False, device="cpu")
    ref = ImageDataLoaders.from_folder(tree, item_tfms=Resize(8), bs=4, shuffle=False, device="cpu")
    assert (dls.vocab, dls.c, type(dls.loss_func)) == (ref.vocab, ref.c, type(ref.loss_func))
    assert dls.train_ds.items == ref.train_ds.items
    for a, b in zip(dls.valid, ref.valid):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert isinstance(dls, ImageDataLoaders) and dls.one_batch()[0].shape == (4, 3, 8, 8)


def test_grey_images_have_one_channel_and_pils_luma(tree):
    pytest.importorskip("fastai")
    from fastai.vision.core import PILImageBW as FastaiBW

    db = DataBlock(blocks=(ImageBlock(cls=PILImageBW), CategoryBlock), get_items=get_image_files,
                   splitter=GrandparentSplitter(), get_y=parent_label)
    dsets = db.datasets(tree)
    f = dsets.valid.items[0]
    assert dsets.valid[0][0].mode == "L" and dsets.valid[0][0].size == (12, 12)
    dls = db.dataloaders(tree, bs=4, shuffle=False, device="cpu")
    x = next(iter(dls.valid))[0]
    assert x.shape == (4, 1, 12, 12)
    assert torch.equal((x[0, 0] * 255).round().to(torch.uint8), torch.from_numpy(np.asarray(FastaiBW.create(f))))


# ---- multi-label and regression, end to end ----------------------------------------------------------------
def _tiny_cnn(n_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, n_out))


def test_multi_label_targets_are_fastais_and_it_trains(multi):
    fb = pytest.importorskip("fastai.data.block")
    fv = pytest.importorskip("fastai.vision.data")
    path, df = multi
    kw = {"get_x": ColReader("fname", pref=path / "img"), "get_y": ColReader("labels", label_delim=" "),
          "splitter": ColSplitter("is_valid")}
    db = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), item_tfms=Resize(12), **kw)
    dsets = db.datasets(df)
    from fastai.data.transforms import ColReader as FCR
    from fastai.data.transforms import ColSplitter as FCS

    theirs = fb.DataBlock(blocks=(fv.ImageBlock, fb.MultiCategoryBlock), get_x=FCR("fname", pref=path / "img"),
                          get_y=FCR("labels", label_delim=" "), splitter=FCS("is_valid")).datasets(df)
    assert dsets.vocab == list(theirs.vocab) == ["b", "g", "r"]
    for i in range(len(dsets.valid)):
        assert torch.equal(dsets.valid[i][1], torch.as_tensor(theirs.valid[i][1]))
    dls = db.dataloaders(df, bs=8, device="cpu")
    assert dls.c == 3 and type(dls.loss_func).__name__ == "BCEWithLogitsLossFlat"
    assert dls.one_batch()[1].shape == (8, 3) and dls.one_batch()[1].dtype == torch.float32
    torch.manual_seed(0)
    learn = Learner(dls, _tiny_cnn(3), loss_func=dls.loss_func, metrics=accuracy_multi)
    with learn.no_logging():
        learn.fit_one_cycle(12, 5e-2)
    losses = [v[1] for v in learn.recorder.values]  # validation losses
    assert losses[-1] < 0.25 * losses[0]
    assert learn.recorder.values[-1][-1] > 0.9  # accuracy_multi on held-out images
    decoded, on, probs = learn.predict(path / "img" / df.fname[40])
    assert decoded == [v for v, o in zip(dls.vocab, (probs > 0.5).tolist()) if o] and on.dtype == torch.bool
    b = dls.one_batch()
    fig = dls.show_batch(b, max_n=4)
    assert [a.get_title() for a in fig.axes[:4]] == [
        ";".join(v for v, o in zip(dls.vocab, y.tolist()) if o) for y in b[1][:4]]


def test_regression_trains_with_y_range_and_its_export_predicts_the_same(multi, tmp_path):
    path, df = multi
    db = DataBlock(blocks=(ImageBlock, RegressionBlock), get_x=ColReader("fname", pref=path / "img"),
                   get_y=ColReader("score"), splitter=ColSplitter("is_valid"), item_tfms=Resize(12))
    dls = db.dataloaders(df, bs=8, device="cpu")
    assert dls.c == 1 and dls.vocab is None and type(dls.loss_func).__name__ == "MSELossFlat"
    y = dls.one_batch()[1]
    assert y.dtype == torch.float32 and y.shape == (8,)
    torch.manual_seed(0)
    learn = vision_learner(dls, "resnet18", pretrained=False, y_range=(0, 1.2), lin_ftrs=[16])
    assert type(learn.model[1][-1]).__name__ == "SigmoidRange"
    with learn.no_logging():
        learn.fit_one_cycle(2, 1e-2)
    preds, targs = learn.get_preds()
    assert preds.shape == (12, 1) and bool(((preds >= 0) & (preds <= 1.2)).all())
    learn.export(tmp_path / "reg.pkl")
    back = load_learner(tmp_path / "reg.pkl")
    assert (back.dls.target, back.dls.c, back.dls.vocab) == ("regression", 1, None)
    f = path / "img" / df.fname[40]
    assert torch.allclose(back.predict(f)[2], learn.predict(f)[2])
    with pytest.raises(ValueError, match="y_range"):
        vision_learner(dls, "resnet18", pretrained=False, y_range=(1, 0))


def test_an_exported_multi_label_learner_decodes_the_same(multi, tmp_path):
    path, df = multi
    db = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_x=ColReader("fname", pref=path / "img"),
                   get_y=ColReader("labels", label_delim=" "), splitter=ColSplitter("is_valid"), item_tfms=Resize(12))
    dls = db.dataloaders(df, bs=8, device="cpu")
    learn = vision_learner(dls, "resnet18", pretrained=False, lin_ftrs=[16], metrics=accuracy_multi)
    learn.export(tmp_path / "multi.pkl")
    back = load_learner(tmp_path / "multi.pkl")
    assert (back.dls.target, back.dls.vocab, type(back.loss_func).__name__) == (
        "multi_category", ["b", "g", "r"], "BCEWithLogitsLossFlat")
    f = path / "img" / df.fname[3]
    mine, theirs = learn.predict(f), back.predict(f)
    assert mine[0] == theirs[0] and torch.equal(mine[1], theirs[1]) and torch.allclose(mine[2], theirs[2])


# ---- errors: which piece, what it returned, before any image is read ------------------------------------
def test_pieces_that_do_not_fit_are_refused_before_any_image_is_read(tmp_path):
    for c in ("a", "b"):
        (tmp_path / "train" / c).mkdir(parents=True)
        (tmp_path / "valid" / c).mkdir(parents=True)
        for s in ("train", "valid"):
            (tmp_path / s / c / "x.png").write_bytes(b"not an image: reading it would fail")
    block = CategoryBlock()
    db = DataBlock(blocks=(ImageBlock, block), get_items=get_image_files, splitter=GrandparentSplitter(),
                   get_y=lambda f: [parent_label(f)])
    with pytest.raises(TypeError, match=r"get_y \(.*<lambda>\) returned \['a'\] for the first item .*train/a/x.png"
                                        r".*CategoryBlock needs one label .*use MultiCategoryBlock"):
        db.dataloaders(tmp_path)
    assert block.vocab is None  # nothing was set up
    db = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files,
                   splitter=GrandparentSplitter(valid_name="val"), get_y=parent_label)
    with pytest.raises(ValueError, match=r"splitter \(.*GrandparentSplitter.*\) left the validation set empty "
                                         r"\(2 training, 0 validation of 4 items\)"):
        db.dataloaders(tmp_path)
    db = DataBlock(blocks=(ImageBlock, RegressionBlock), get_items=get_image_files, get_y=parent_label,
                   splitter=GrandparentSplitter())
    with pytest.raises(TypeError, match=r"returned 'a' .*RegressionBlock needs a number"):
        db.datasets(tmp_path)
    db = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=lambda p: [p / "missing.png"] * 4,
                   splitter=IndexSplitter([0]), get_y=parent_label)
    with pytest.raises(TypeError, match=r"getters\[0\] .* ImageBlock needs an image file that exists"):
        db.datasets(tmp_path)
    with pytest.raises(ValueError, match="get_y contains 2 functions, but must contain 1"):
        DataBlock(blocks=(ImageBlock, CategoryBlock), get_y=[parent_label, parent_label])
    with pytest.raises(TypeError, match="wrong_kwarg"):
        DataBlock(wrong_kwarg=42)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"blocks\[1\] is a str, not a block"):
        DataBlock(blocks=(ImageBlock, "category"))
    with pytest.raises(ValueError, match="encoded=True.*needs vocab"):
        MultiCategoryBlock(encoded=True)


def test_summary_steps_through_one_sample_and_one_batch(tree, capsys):
    db = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, splitter=GrandparentSplitter(),
                   get_y=parent_label, item_tfms=Resize(8))
    text = db.summary(tree, bs=4)
    assert "Found 24 items" in text and "2 datasets of sizes 16,8" in text
    assert "applying parent_label gives\n      'g'" in text
    assert "Tensor of shape (4, 3, 8, 8) (torch.float32), Tensor of shape (4,) (torch.int64)" in text
    assert "c=2" in text and text in capsys.readouterr().out


def test_a_class_only_in_validation_is_kept_with_a_warning(tree):
    (tree / "valid" / "z").mkdir()
    _colour_image(tree / "valid" / "z" / "z.png", ["b"], np.random.default_rng(0))
    db = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, splitter=GrandparentSplitter(),
                   get_y=parent_label, item_tfms=Resize(8))
    with pytest.warns(UserWarning, match=r"classes \['z'\] occur only in the validation set"):
        dls = db.dataloaders(tree, bs=4)
    assert dls.vocab == ["g", "r", "z"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = DataBlock(blocks=(ImageBlock, CategoryBlock(vocab=["r", "g", "z"])), get_items=get_image_files,
                          splitter=GrandparentSplitter(), get_y=parent_label, item_tfms=Resize(8))
        assert fixed.dataloaders(tree, bs=4).vocab == ["r", "g", "z"]


def test_get_files_and_the_getters_list_fastais_files(tmp_path):
    fd = pytest.importorskip("fastai.data.transforms")
    from minifastai.data.transforms import FileGetter, get_files
    from minifastai.vision import ImageGetter

    for rel in ("train/a/1.png", "train/a/2.TXT", "train/.hid/3.png", "training/b/4.jpg", "valid/c/5.png", "6.csv",
                ".7.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    cases = [((), {}), ((".png",), {}), (([".txt", ".png"],), {"folders": ["train"]}), ((), {"recurse": False}),
             ((), {"folders": "train"}), ((), {"folders": ["train", "."]})]
    for args, kw in cases:
        ours = get_files(tmp_path, *args, **kw)
        assert ours == sorted(ours) and sorted(ours) == sorted(fd.get_files(tmp_path, *args, **kw)), (args, kw)
    assert FileGetter("train", extensions=".png")(tmp_path) == [tmp_path / "train/a/1.png"]
    assert get_image_files(tmp_path, folders="train") == [tmp_path / "train/a/1.png"]  # not "training" too
    assert ImageGetter("valid")(tmp_path) == [tmp_path / "valid/c/5.png"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_files(tmp_path / "nope")
