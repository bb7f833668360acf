"""Hostile probes for vision, round 3 (issue 21): decompression bombs, `valid_col` values, float TIFFs, broken
symlinks, GIFs, crafted or inconsistent exports, tta/show_results after load_learner, empty interpretation and bad
tta arguments. Each asserts the correct result, or a clear error raised before anything changed."""
import io
import os
import struct
import warnings
import zlib
from functools import partial
from pathlib import Path

import image_trees
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import same_state, state_copy
from image_trees import tampered
from PIL import Image
from torchvision.transforms import v2

import minifastai.vision.image_limits as limits
from minifastai import load_learner
from minifastai.vision import (
    ClassificationInterpretation,
    ImageDataLoaders,
    ImagePipeline,
    ImageTooLargeError,
    PILImage,
    Resize,
    get_image_files,
    max_image_pixels,
    read_image,
    rebuild_learner,
    set_max_image_pixels,
    to_image_tensor,
    vision_learner,
)
from minifastai.vision.image_limits import declared_size

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
write_tree = partial(image_trees.write_tree, n_per_class=3)
PIL_DEFAULT = 89_478_485


def bomb_png(path: Path, w: int = 20000, h: int = 20000) -> Path:
    """A PNG of a few dozen bytes whose IHDR declares w x h RGB pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    body = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def limit():
    """Restore the image-size limit (PIL's Image.MAX_IMAGE_PIXELS) after the test."""
    before = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = before


@pytest.fixture
def no_decode(monkeypatch):
    """Record every call to a decoder (torchvision's decode_image, PIL's load)."""
    import torchvision.io

    calls = []
    real_decode, real_load = torchvision.io.decode_image, Image.Image.load
    monkeypatch.setattr(torchvision.io, "decode_image", lambda *a, **k: calls.append("tv") or real_decode(*a, **k))
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: calls.append("pil") or real_load(self))
    return calls


# ---- 1. decompression bombs: the declared size is checked before decoding, on every decoder --------------------
def test_default_limit_is_pils():
    assert max_image_pixels() == Image.MAX_IMAGE_PIXELS == PIL_DEFAULT


@pytest.mark.parametrize("backend", ["torchvision", "pil"])
def test_bomb_png_is_refused_before_decoding(tmp_path, no_decode, backend):
    path = bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1000
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png declares 20000x20000 pixels \(400,000,000\), more than "
                       r"the limit of 89,478,485.*decompression bomb.*set_max_image_pixels\(400000000\)"):
        read_image(path, backend)
    assert no_decode == []


def test_bomb_is_refused_by_loaders_and_pilimage(tmp_path, no_decode):
    root = write_tree(tmp_path / "d")
    bomb_png(root / "train" / "a" / "zz_bomb.png")
    dls = ImageDataLoaders.from_folder(root, bs=2, device="cpu", shuffle=False)
    i = dls.train.items.index(str(root / "train" / "a" / "zz_bomb.png"))
    no_decode.clear()
    with pytest.raises(ImageTooLargeError, match="zz_bomb.png declares 20000x20000"):
        dls.train_ds[i]
    with pytest.raises(ImageTooLargeError, match="zz_bomb.png declares 20000x20000"):
        PILImage.create(root / "train" / "a" / "zz_bomb.png")
    with pytest.raises(ImageTooLargeError, match=r"\(the bytes given\) declares 20000x20000"):
        PILImage.create((root / "train" / "a" / "zz_bomb.png").read_bytes())
    assert no_decode == []


def test_crafted_jpeg_header_is_refused_before_torchvision_decodes(tmp_path, no_decode):
    buf = io.BytesIO()
    Image.new("RGB", (6, 6), (10, 20, 30)).save(buf, "JPEG", exif=Image.Exif().tobytes() + b"\x00" * 2000)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 30000, 30000)  # height, width
    path = tmp_path / "huge.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageTooLargeError, match=r"huge\.jpg declares 30000x30000 pixels"):
        read_image(path)
    assert no_decode == []


@pytest.mark.parametrize("ext,kw", [(".png", {}), (".jpg", {}), (".jpg", {"progressive": True}), (".webp", {}),
                                    (".webp", {"lossless": True}), (".tif", {}), (".gif", {}), (".bmp", {})])
@pytest.mark.parametrize("backend", ["torchvision", "pil"])
def test_a_lowered_limit_refuses_real_images_of_every_format(tmp_path, limit, ext, kw, backend):
    path = tmp_path / f"img{ext}"
    Image.new("RGB", (7, 5), (200, 10, 10)).save(path, **kw)
    set_max_image_pixels(34)  # 7 x 5 = 35 pixels: between PIL's warning (> 34) and its error (> 68)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # replaced by the error
        with pytest.raises(ImageTooLargeError, match=rf"img\{ext} declares 7x5 pixels \(35\), more than the limit "
                                                     r"of 34"):
            read_image(path, backend)
    set_max_image_pixels(35)
    assert read_image(path, backend).shape == (3, 5, 7)
    set_max_image_pixels(None)  # no limit
    assert read_image(path, backend).shape == (3, 5, 7)


@pytest.mark.parametrize("ext,kw", [(".png", {}), (".jpg", {}), (".jpg", {"progressive": True}), (".webp", {}),
                                    (".webp", {"lossless": True})])
def test_declared_size_reads_headers_as_pil(tmp_path, ext, kw):
    path = tmp_path / f"x{ext}"
    Image.new("RGB", (301, 17)).save(path, **kw)
    assert declared_size(path.read_bytes()) == (301, 17)
    assert declared_size(b"not an image") is None and declared_size(b"\xff\xd8\xff") is None


@pytest.mark.parametrize("bad", [0, -5, 2.5, "big", True])
def test_set_max_image_pixels_refuses_nonsense(limit, bad):
    with pytest.raises(ValueError, match="must be a positive int"):
        set_max_image_pixels(bad)
    assert max_image_pixels() == PIL_DEFAULT


def test_the_header_check_costs_little(tmp_path):
    """The check reads the header from the bytes already read (no extra I/O): far less than a decode."""
    import timeit

    from torchvision.io import ImageReadMode, decode_image, read_file

    path = tmp_path / "x.jpg"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(path)
    data = read_file(str(path))
    dec = min(timeit.repeat(lambda: decode_image(data, mode=ImageReadMode.RGB), number=50, repeat=5))
    chk = min(timeit.repeat(lambda: limits.check_pixels(path, declared_size(data.numpy().data)), number=50, repeat=5))
    assert chk < 0.25 * dec


# ---- 2. from_df's valid_col -------------------------------------------------------------------------------------
@pytest.fixture
def df_files(tmp_path):
    root = write_tree(tmp_path / "d", n_per_class=2)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))
    return root, files


@pytest.mark.parametrize("flags", [
    lambda f: [("valid" in x) for x in f],
    lambda f: [int("valid" in x) for x in f],
    lambda f: [str("valid" in x) for x in f],  # "True" / "False", as a CSV read with dtype=str gives them
    lambda f: [str("valid" in x).lower() for x in f],
])
def test_valid_col_takes_bools_01_and_true_false_strings(df_files, flags):
    root, files = df_files
    df = pd.DataFrame({"fn": files, "label": [Path(x).parent.name for x in files], "is_valid": flags(files)})
    dls = ImageDataLoaders.from_df(df, root, valid_col="is_valid", bs=2, device="cpu")
    assert len(dls.train_ds) == 4 and len(dls.valid_ds) == 4
    assert all("/valid/" in i for i in dls.valid.items) and all("/train/" in i for i in dls.train.items)


def test_valid_col_from_a_csv_of_strings(df_files):
    root, files = df_files
    pd.DataFrame({"fn": files, "label": [Path(x).parent.name for x in files],
                  "is_valid": [("valid" in x) for x in files]}).to_csv(root / "labels.csv", index=False)
    df = pd.read_csv(root / "labels.csv", dtype=str)
    dls = ImageDataLoaders.from_df(df, root, valid_col="is_valid", bs=2, device="cpu")
    assert len(dls.valid_ds) == 4


@pytest.mark.parametrize("value,shown", [(np.nan, "nan"), (None, "None"), ("yes", "'yes'"), (2, "2")])
def test_valid_col_other_values_are_refused_naming_the_rows(df_files, value, shown):
    root, files = df_files
    flags = [("valid" in x) for x in files]
    flags[3] = value
    df = pd.DataFrame({"fn": files, "label": [Path(x).parent.name for x in files], "is_valid": flags},
                      index=[f"r{i}" for i in range(len(files))])
    with pytest.raises(ValueError, match=rf"valid_col='is_valid' must hold True/False.*1 row\(s\) hold something "
                                         rf"else \(row: value, e.g. 'r3': {shown}\).*fillna\(False\)"):
        ImageDataLoaders.from_df(df, root, valid_col="is_valid", bs=2, device="cpu")


def test_valid_col_all_valid_is_a_clear_error(df_files):
    root, files = df_files
    df = pd.DataFrame({"fn": files, "label": [Path(x).parent.name for x in files], "is_valid": True})
    with pytest.raises(ValueError, match="marks every row as validation: no training images"):
        ImageDataLoaders.from_df(df, root, valid_col="is_valid", bs=2, device="cpu")


# ---- 3. 32-bit float TIFFs -----------------------------------------------------------------------------------
def test_float_tiff_in_0_1_reads_every_level(tmp_path):
    ramp = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6)
    Image.fromarray(ramp).save(tmp_path / "f.tif")
    expect = torch.from_numpy(np.round(ramp * 255).astype(np.uint8))
    for backend in ("torchvision", "pil"):
        x = read_image(tmp_path / "f.tif", backend)
        assert x.shape == (3, 6, 6) and len(x.unique()) == 36 and torch.equal(x[0], expect)
    assert torch.equal(to_image_tensor(Image.fromarray(ramp))[0], expect)
    assert np.array_equal(np.asarray(PILImage.create(tmp_path / "f.tif"))[..., 0], expect.numpy())


@pytest.mark.parametrize("hi", [1000.0, np.nan])
def test_float_tiff_out_of_0_1_is_refused(tmp_path, hi):
    arr = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6)
    arr[0, 0] = hi
    Image.fromarray(arr).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match=r"f\.tif is a 32-bit float image with values in .*Rescale it to \[0, 1\]"):
        read_image(tmp_path / "f.tif")
    with pytest.raises(ValueError, match="32-bit float image"):
        PILImage.create(tmp_path / "f.tif")


# ---- 4. broken symlinks: skipped with a warning naming them; an explicit list names them in its error -----------
def test_broken_symlinks_are_reported(tmp_path):
    root = write_tree(tmp_path / "d")
    link = root / "train" / "a" / "gone.png"
    link.symlink_to(tmp_path / "nowhere.png")
    with pytest.warns(UserWarning, match=r"skipped 1 broken symbolic link.*gone\.png -> .*nowhere\.png"):
        files = get_image_files(root)
    assert len(files) == 12 and str(link) not in map(str, files)
    with pytest.warns(UserWarning, match="broken symbolic link"):
        dls = ImageDataLoaders.from_folder(root, bs=2, device="cpu")
    assert len(dls.train_ds) == 6
    with pytest.raises(FileNotFoundError, match=r"1 of 2 image files do not exist.*1 of them are broken symbolic "
                                                r"links \(e.g. .*gone\.png -> .*nowhere\.png\)"):
        ImageDataLoaders.from_lists(root, [link, root / "train" / "a" / "0.png"], ["a", "a"], valid_pct=0.5)
    with pytest.raises(FileNotFoundError, match=r"gone\.png is a broken symbolic link"):
        read_image(link)


# ---- 5. GIFs are read (first frame, RGB) ------------------------------------------------------------------------
def test_gifs_are_listed_and_read_as_their_first_frame(tmp_path):
    root = write_tree(tmp_path / "d")
    frames = [Image.new("RGB", (6, 6), c) for c in ((250, 0, 0), (0, 250, 0))]
    frames[0].save(root / "train" / "a" / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("L", (6, 6), 77).save(root / "valid" / "b" / "grey.gif")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing skipped
        dls = ImageDataLoaders.from_folder(root, bs=2, device="cpu", shuffle=False)
    assert str(root / "train" / "a" / "anim.gif") in dls.train.items
    x = read_image(root / "train" / "a" / "anim.gif")
    assert x.shape == (3, 6, 6) and x[:, 0, 0].tolist() == [250, 0, 0]
    assert read_image(root / "valid" / "b" / "grey.gif")[:, 0, 0].tolist() == [77, 77, 77]
    learn = vision_learner(dls, "resnet10", pretrained=False, lin_ftrs=[8])
    learn.remove_cb(learn.progress)
    learn.fit(1)


# ---- 6. exports: inconsistent ones refused at load, naming the file; v2 resizes and unicode classes load --------
@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = write_tree(tmp_path_factory.mktemp("r3") / "data")
    dls = ImageDataLoaders.from_folder(root, item_tfms=Resize(8), bs=2, device="cpu")
    learn = vision_learner(dls, "resnet10", pretrained=False, lin_ftrs=[8])
    path = learn.export("good.pkl")
    return root, path, torch.load(path, weights_only=True)


@pytest.mark.parametrize("change,match", [
    (lambda s: s["dls"].pop("vocab"), r"entry 'dls'\['vocab'\] is missing: a classifier's export stores its class"),
    (lambda s: (s["dls"].update(vocab=["a"]), s["builder"].update(n_out=1)),  # the stored weights have 2 outputs
     r"entry 'dls'\['vocab'\] holds 1 class names but the model has 2 outputs"),
    (lambda s: s["dls"].update(vocab=["a"]), r"entry 'dls'\['vocab'\] holds 1 class names but the model has 2 outputs"),
    (lambda s: s["dls"]["item_tfms"].append({"name": "v2.Normalize", "args": {"mean": [0.5] * 3, "std": [0.2] * 3}}),
     r"entry 'dls'\['item_tfms'\]\[1\] is a normalization \(v2.Normalize\).*belongs in batch_tfms"),
    (lambda s: s["dls"]["item_tfms"].append({"name": "minifastai.Normalize",
                                             "args": {"mean": [0.5] * 3, "std": [0.2] * 3}}),
     r"entry 'dls'\['item_tfms'\]\[1\] is a normalization \(minifastai.Normalize\)"),
])
def test_inconsistent_exports_are_refused_naming_the_file(export, tmp_path, monkeypatch, change, match):
    import minifastai.vision.export as vx

    _, _, state = export
    path = tampered(tmp_path, state, change)
    before = path.read_bytes()
    built = []
    monkeypatch.setattr(vx, "build_vision_model", lambda *a, **k: built.append(a))
    with pytest.raises(RuntimeError, match=rf"tampered\.pkl is malformed: {match}"):
        load_learner(path)
    with pytest.raises(ValueError, match=rf"tampered\.pkl: {match}"):
        rebuild_learner(torch.load(path, weights_only=True), source=path)
    assert built == [] and path.read_bytes() == before  # refused before any model was built


def test_normalize_as_an_item_transform_is_refused_when_built():
    from minifastai.vision import Normalize

    for norm in (v2.Normalize([0.5] * 3, [0.2] * 3), Normalize.from_stats([0.5] * 3, [0.2] * 3)):
        with pytest.raises(ValueError, match=r"item_tfms holds a normalization \(Normalize\).*pass it in batch_tfms"):
            ImagePipeline([Resize(8), norm])


@pytest.mark.parametrize("tfm", [v2.Resize(8), v2.RandomResizedCrop(8), v2.Resize(8, v2.InterpolationMode.NEAREST)])
def test_default_torchvision_resizes_export_and_load(export, tmp_path, tfm):
    root, _, _ = export
    dls = ImageDataLoaders.from_folder(root, item_tfms=tfm, bs=2, device="cpu")
    learn = vision_learner(dls, "resnet10", pretrained=False, lin_ftrs=[8], path=tmp_path)
    new = load_learner(learn.export("v2.pkl"))
    (t,) = new.dls.pipeline.item_tfms
    assert type(t) is type(tfm) and list(t.size) == list(tfm.size) and v2.InterpolationMode(t.interpolation).value == (
        v2.InterpolationMode(tfm.interpolation).value)
    img = root / "valid" / "a" / "0.png"
    learn.model.eval()
    assert torch.allclose(new.predict(img)[2], learn.predict(img)[2])


def test_unicode_class_names_round_trip(tmp_path):
    classes = ("chat_é", "狗", "Ωmega")
    root = write_tree(tmp_path / "données", classes=classes)
    dls = ImageDataLoaders.from_folder(root, item_tfms=Resize(8), bs=2, device="cpu")
    learn = vision_learner(dls, "resnet10", pretrained=False, lin_ftrs=[8])
    new = load_learner(learn.export("modèle_é.pkl"))
    assert new.dls.vocab == sorted(classes)
    name, idx, probs = new.predict(root / "valid" / "狗" / "0.png")
    assert name == sorted(classes)[int(idx)] and probs.shape == (3,)


# ---- 7. tta and show_results after load_learner -----------------------------------------------------------------
def test_tta_and_show_results_after_load_learner(export):
    root, path, _ = export
    learn = load_learner(path)
    for f in (learn.tta, learn.show_results):
        with pytest.raises(ValueError, match=r"no validation set \(dls.valid is None\): pass "
                                             r"dl=learn.dls.test_dl\(files\)"):
            f()
    files = sorted(get_image_files(root / "valid"))
    preds, targs = learn.tta(dl=learn.dls.test_dl(files), n=2)
    assert preds.shape == (len(files), 2) and targs is None
    assert torch.allclose(preds.sum(1), torch.ones(len(files)), atol=1e-5)
    fig = learn.show_results(dl=learn.dls.test_dl(files), max_n=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and set(titles) <= {"a", "b"}  # the predictions (there are no targets)
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---- 8. interpretation of an empty loader; 9. tta's n -------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(export):
    root, _, _ = export
    dls = ImageDataLoaders.from_folder(root, item_tfms=Resize(8), bs=2, device="cpu")
    return vision_learner(dls, "resnet10", pretrained=False, lin_ftrs=[8])


def test_interpretation_of_an_empty_loader_is_a_clear_error(trained):
    before = state_copy(trained.model)
    for dl in (trained.dls.test_dl([], with_labels=True), trained.dls.test_dl([])):
        with pytest.raises(ValueError, match="no batches"):
            ClassificationInterpretation.from_learner(trained, dl=dl)
    assert same_state(before, state_copy(trained.model))


@pytest.mark.parametrize("n", [2.5, "4", 0, -1, True, None])
def test_tta_n_must_be_a_positive_int(trained, n):
    before = state_copy(trained.model)
    with pytest.raises(ValueError, match=rf"n={n!r} must be at least 1, a positive int \(the number of augmented"):
        trained.tta(n=n)
    assert same_state(before, state_copy(trained.model))
    assert os.path.exists(trained.dls.valid.items[0])


def test_a_misspelt_learner_keyword_is_named_not_blamed_on_timm(tmp_path):
    from minifastai import accuracy

    root = tmp_path / "imgs"
    for split in ("train", "valid"):
        for c in "ab":
            (root / split / c).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (16, 16), (40 * i, 80, 120)).save(root / split / c / f"{i}.png")
    dls = ImageDataLoaders.from_folder(root, bs=2, device="cpu")
    for arch in ("resnet18", "convnext_atto"):
        with pytest.raises(TypeError, match=r"vision_learner got metric=, which is not a Learner keyword: did you "
                                            r"mean metrics=\?"):
            vision_learner(dls, arch, pretrained=False, metric=accuracy)
