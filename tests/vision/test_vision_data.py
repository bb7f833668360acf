"""ImageDataLoaders' fastai constructors, get_image_files, reading images; splits compared with fastai's."""
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import fastai_random_split
from PIL import Image

from minifastai import CrossEntropyLossFlat
from minifastai.vision import (
    ImageDataLoaders,
    Resize,
    get_image_files,
    parent_label,
    read_image,
    to_image_tensor,
)

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


@pytest.fixture
def pets(tmp_path):
    """fastai's pets layout: one folder, the breed in the file name, cats capitalised."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for breed in ("Abyssinian", "Bengal", "beagle", "pug"):
        for i in range(6):
            arr = (rng.random((10 + i, 12, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(folder / f"{breed}_{i}.png")
    return tmp_path


def test_from_name_func_labels_splits_and_batches_as_fastai(pets):
    files = get_image_files(pets / "images")
    assert len(files) == 24 and files == sorted(files)

    def is_cat(name):
        return name[0].isupper()

    dls = ImageDataLoaders.from_name_func(pets, files, is_cat, valid_pct=0.25, seed=42, item_tfms=Resize(8), bs=4,
                                          device="cpu")
    t_idx, v_idx = fastai_random_split(files, 0.25, 42)
    assert dls.valid.items == [str(files[i]) for i in v_idx] and dls.train.items == [str(files[i]) for i in t_idx]
    assert dls.vocab == [False, True] and dls.c == 2 and dls.path == pets
    assert dls.valid_ds.labels == [int(files[i].name[0].isupper()) for i in v_idx]
    assert isinstance(dls.loss_func, CrossEntropyLossFlat)  # fastai's default for single-label images
    x, y = dls.one_batch()
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(dls.train) == 18 // 4 and sum(len(b[1]) for b in dls.valid) == 6  # last partial batch dropped


def test_from_name_re_from_path_re_and_from_path_func(pets):
    files = get_image_files(pets)
    dls = ImageDataLoaders.from_name_re(pets, files, r"^(.+)_\d+\.png$", item_tfms=Resize(8), bs=4, seed=0,
                                        device="cpu")
    assert dls.vocab == ["Abyssinian", "Bengal", "beagle", "pug"]
    lab = dict(zip(dls.train.items + dls.valid.items, dls.train_ds.labels + dls.valid_ds.labels))
    assert all(dls.vocab[v] == re.match(r"^(.+)_\d+\.png$", k.split("/")[-1]).group(1) for k, v in lab.items())
    with pytest.raises(ValueError, match=r"pattern '\^\(\[a-z\]\+\)_' does not match 'Abyssinian_0.png'"):
        ImageDataLoaders.from_name_re(pets, files, r"^([a-z]+)_", device="cpu")
    with pytest.raises(ValueError, match="has no group"):
        ImageDataLoaders.from_name_re(pets, files, r"^[a-z]+_", device="cpu")
    lower = [f for f in files if f.name[0].islower()]
    dls = ImageDataLoaders.from_path_re(pets, lower, r"/([a-z]+)_\d+\.png$", item_tfms=Resize(8), bs=2, seed=0,
                                        device="cpu")
    assert dls.vocab == ["beagle", "pug"]
    dls = ImageDataLoaders.from_path_func(pets, files, parent_label, item_tfms=Resize(8), bs=4, seed=0,
                                          device="cpu")
    assert dls.vocab == ["images"]


def test_from_lists_from_df_and_from_csv(pets):
    files = get_image_files(pets)
    labels = [f.name.split("_")[0] for f in files]
    dls = ImageDataLoaders.from_lists(pets, files, labels, valid_pct=0.5, seed=1, item_tfms=Resize(8), bs=4,
                                      device="cpu")
    t_idx, v_idx = fastai_random_split(files, 0.5, 1)
    assert dls.valid.items == [str(files[i]) for i in v_idx]
    assert [dls.vocab[y] for y in dls.valid_ds.labels] == [labels[i] for i in v_idx]
    df = pd.DataFrame({"name": [f.stem for f in files], "label": labels, "is_valid": [i % 4 == 0 for i in range(24)]})
    dls = ImageDataLoaders.from_df(df, pets, folder="images", suff=".png", fn_col="name", label_col="label",
                                   valid_col="is_valid", item_tfms=Resize(8), bs=4, device="cpu")
    assert dls.valid.items == [str(pets / "images" / f"{n}.png") for n in df.name[df.is_valid]]
    assert len(dls.train_ds) == 18 and dls.vocab == sorted(set(labels))
    df.assign(name=[f"images/{n}.png" for n in df.name]).to_csv(pets / "labels.csv", index=False)
    dls = ImageDataLoaders.from_csv(pets, item_tfms=Resize(8), bs=4, seed=3, device="cpu")  # fn_col=0, label_col=1
    _, v_idx = fastai_random_split(list(range(24)), 0.2, 3)
    assert dls.valid.items == [str(pets / "images" / f"{df.name[i]}.png") for i in v_idx] and dls.path == pets
    with pytest.raises(KeyError, match="column 'file' is not in the DataFrame"):
        ImageDataLoaders.from_df(df, pets, fn_col="file")
    with pytest.raises(FileNotFoundError, match="24 of 24 image files do not exist"):
        ImageDataLoaders.from_df(df, pets, fn_col="name", label_col="label")
    with pytest.raises(NotImplementedError, match="multi-label"):
        ImageDataLoaders.from_df(df, pets, label_delim=" ")
    with pytest.raises(ValueError, match="24 fnames but 23 labels"):
        ImageDataLoaders.from_lists(pets, files, labels[:-1])


def test_class_only_in_validation_warns_and_stays_in_the_vocab(pets):
    files = get_image_files(pets)
    labels = ["a"] * 23 + ["rare"]
    with pytest.warns(UserWarning, match=r"classes \['rare'\] occur only in the validation set"):
        dls = ImageDataLoaders.from_df(pd.DataFrame({"f": files, "y": labels, "v": [i >= 20 for i in range(24)]}),
                                       "/", fn_col="f", label_col="y", valid_col="v", item_tfms=Resize(8), bs=4,
                                       device="cpu")
    assert dls.vocab == ["a", "rare"]


def test_get_image_files_skips_hidden_and_unreadable_kinds_and_follows_folders(tmp_path):
    for d in ("a", "b/c", ".hidden"):
        (tmp_path / d).mkdir(parents=True)
    for f in ("a/1.png", "a/2.JPG", "b/c/3.jpeg", ".hidden/4.png", "a/._1.png", "a/.DS_Store", "a/notes.txt",
              "b/anim.gif", "b/logo.svg"):
        (tmp_path / f).write_bytes(b"")
    with pytest.warns(UserWarning, match=r"skipped 1 image files that minifastai does not read \(1 \.svg"):
        files = get_image_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a/1.png", "a/2.JPG", "b/anim.gif", "b/c/3.jpeg"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [f.name for f in get_image_files(tmp_path, folders=["a"])] == ["1.png", "2.JPG"]
        assert get_image_files(tmp_path / "a", recurse=False) == [tmp_path / "a/1.png", tmp_path / "a/2.JPG"]
    assert parent_label(files[3]) == "c"


def _png16(path, arr):
    Image.fromarray(arr.astype(np.uint16)).save(path)


@pytest.mark.parametrize("backend", ["torchvision", "pil"])
def test_read_image_8_and_16_bit(tmp_path, backend):
    rgb = (np.random.default_rng(0).random((5, 7, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    x = read_image(tmp_path / "c.png", backend)
    assert x.dtype == torch.uint8 and x.shape == (3, 5, 7) and torch.equal(x, torch.from_numpy(rgb).permute(2, 0, 1))
    ramp = np.arange(0, 65536, 257 * 5).reshape(4, -1)[:, :13]  # 0, 1285, ..., 16-bit values
    _png16(tmp_path / "g16.png", ramp)
    g = read_image(tmp_path / "g16.png", backend)
    assert g.shape == (3, 4, 13) and torch.equal(g[0], g[2])
    assert torch.equal(g[0].long(), torch.from_numpy(ramp // 257))  # scaled to 8 bits, not clipped at 255
    with pytest.raises(RuntimeError, match=f"could not read image {tmp_path / 'bad.png'}"):
        (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
        read_image(tmp_path / "bad.png", backend)


def test_to_image_tensor_checks_ranges_and_layouts():
    u8 = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    assert torch.equal(to_image_tensor(u8), u8)
    assert torch.equal(to_image_tensor(u8.permute(1, 2, 0).numpy()), u8)  # numpy arrays are (H, W, C)
    assert to_image_tensor(torch.rand(1, 4, 5)).shape == (3, 4, 5)
    with pytest.raises(ValueError, match=r"float image tensor must hold values in \[0, 1\]; this one spans"
                                         r" \[\d+, \d+\].*torch.uint8"):
        to_image_tensor(u8.float())
    assert torch.equal(to_image_tensor(u8.long()), u8)
    assert torch.equal(to_image_tensor(u8.to(torch.int32) * 257), u8)  # 16-bit values scaled
    with pytest.raises(ValueError, match=r"shape \(C, H, W\) with 1, 3 or 4 channels"):
        to_image_tensor(torch.rand(5, 4, 4))
    with pytest.raises(TypeError, match="cannot read an image from a dict"):
        to_image_tensor({"a": 1})


def test_split_and_batch_size_errors_are_clear_and_early(tmp_path):
    (tmp_path / "x").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "x" / "only.png")
    with pytest.raises(ValueError, match=r"valid_pct=0.2 of 1 image\(s\) leaves no validation image.*at least 5"):
        ImageDataLoaders.from_folder(tmp_path, valid_pct=0.2)
    for i in range(9):
        Image.new("RGB", (4, 4)).save(tmp_path / "x" / f"{i}.png")
    with pytest.raises(ValueError, match="training set has 8 images, fewer than bs=64.*pass bs=8 or less"):
        ImageDataLoaders.from_folder(tmp_path, valid_pct=0.2)
    with pytest.raises(ValueError, match="valid_pct=1.5 must be a fraction"):
        ImageDataLoaders.from_folder(tmp_path, valid_pct=1.5)
    dls = ImageDataLoaders.from_folder(tmp_path, valid_pct=0.2, bs=3, device="cpu")
    assert len(dls.train) == 2 and [len(b[1]) for b in dls.train] == [3, 3]  # 8 images: 3 + 3, 2 dropped


def test_test_dl_with_labels_reads_the_labels_the_data_knows(pets):
    files = get_image_files(pets / "images")
    dls = ImageDataLoaders.from_name_func(pets, files, lambda n: n[0].isupper(), valid_pct=0.25, seed=42,
                                          item_tfms=Resize(8), bs=4, device="cpu")
    items = dls.valid.items[:3] + dls.train.items[:2]
    tdl = dls.test_dl(items, with_labels=True, process=True)  # fastai's tabular keyword: accepted, unused
    x, y = next(iter(tdl))
    assert x.shape == (5, 3, 8, 8) and y.tolist() == [int(os.path.basename(f)[0].isupper()) for f in items]
    (x_only,) = next(iter(dls.test_dl(items)))
    assert torch.equal(x_only, x)
    with pytest.raises(ValueError, match=r"1 of 2 items are not files of these loaders"):
        dls.test_dl([items[0], str(pets / "elsewhere.png")], with_labels=True)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['shuffle'\]"):
        dls.test_dl(items, shuffle=True)


def test_pilimage_create_and_show_image_as_fastai(pets):
    fva = pytest.importorskip("fastai.vision.core")
    from minifastai.vision import PILImage, PILImageBW, show_image

    f = get_image_files(pets / "images")[0]
    ours, theirs = PILImage.create(f), fva.PILImage.create(f)
    assert isinstance(ours, Image.Image) and ours.shape == theirs.shape and ours.mode == theirs.mode == "RGB"
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    arr = (np.random.default_rng(0).random((6, 7, 3)) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(PILImage.create(arr)), np.asarray(fva.PILImage.create(arr)))
    t = torch.from_numpy(arr).permute(2, 0, 1)
    assert np.array_equal(np.asarray(PILImage.create(t)), arr)  # a (C, H, W) tensor
    assert np.array_equal(np.asarray(PILImage.create(f.read_bytes())), np.asarray(ours))
    bw = PILImageBW.create(f)
    assert bw.mode == "L" and np.array_equal(np.asarray(bw), np.asarray(fva.PILImageBW.create(f)))
    ax = show_image(ours, title="cat?")
    assert np.array_equal(ax.get_images()[0].get_array(), np.asarray(ours)) and ax.get_title() == "cat?"
    ax2 = ours.show()
    assert np.array_equal(ax2.get_images()[0].get_array(), np.asarray(ours))
    assert np.array_equal(np.asarray(PILImage.create(arr / 255)), np.asarray(PILImage.create(arr)))  # [0, 1] floats
    with pytest.raises(ValueError, match=r"values in \[0, 1\]; this one spans \[0, 25\d\]"):
        PILImage.create(arr.astype(np.float32))
    grey = PILImage.create(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4))  # fastai's: mode "F", kept
    assert grey.mode == "F" and grey.size == (4, 3)
    with pytest.raises(TypeError, match="takes a file path, bytes"):
        PILImage.create(3)


def test_each_loader_shows_its_batch_as_fastai(pets):
    files = get_image_files(pets / "images")
    dls = ImageDataLoaders.from_name_func(pets, files, lambda n: "cat" if n[0].isupper() else "dog", valid_pct=0.25,
                                          seed=42, item_tfms=Resize(8), bs=4, device="cpu")
    fig = dls.valid.show_batch(max_n=4)
    _, y = next(iter(dls.valid))
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles == [dls.vocab[int(i)] for i in y[:4]] and set(titles) <= {"cat", "dog"}
    fig = dls.train.show_batch(max_n=2)
    assert len([ax for ax in fig.axes if ax.get_images()]) == 2
    tfig = dls.test_dl(dls.valid.items[:3]).show_batch()  # no labels: no titles
    assert [ax.get_title() for ax in tfig.axes if ax.get_images()] == ["", "", ""]
    lfig = dls.test_dl(dls.valid.items[:3], with_labels=True).show_batch()
    assert [ax.get_title() for ax in lfig.axes if ax.get_images()] == titles[:3]
