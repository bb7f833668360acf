# ruff: noqa: E501  (fastai's cells keep their own line lengths)
"""fastai's nbs/08_vision.data.ipynb test cells, as fastai wrote them.

The notebook downloads MNIST_TINY, PASCAL_2007, PETS and CAMVID_TINY (`untar_data(URLs.X)`); SETUP writes the same
layouts offline instead and each cell reads `_mnist_tiny()`, `_pascal_2007()`, `_pets()` or `_camvid_tiny()` where
the notebook calls `untar_data(URLs.X)`:

- MNIST_TINY: scikit-learn's 8x8 digits 3 and 7, scaled to 28x28 grey PNGs, in `train/3`, `train/7`, `valid/3`,
  `valid/7`, and `labels.csv` (`name`, `label`: `train/3/0.png,3`, ...);
- PASCAL_2007: small synthetic JPEGs in `train/` and `train.csv` (`fname`, `labels`, `is_valid`, with space
  separated multi-labels as PASCAL's);
- PETS: small synthetic JPEGs named `<breed>_<n>.jpg` in `images/`;
- CAMVID_TINY: small synthetic PNGs in `images/`, their masks `labels/<stem>_P.png` and `codes.txt`.

Each set has at least 64 training images (the notebook's loaders use the default `bs=64`). The notebook's import
cell (`fastai.torch_basics`, `fastai.data.all`, `fastai.vision.core`, and the module under test,
`fastai.vision.data`) becomes fastai's `fastai.vision.all`, which holds them: minifastai has no
`torch_basics`, `data.all` or `vision.core` modules (its DataBlock is `minifastai.data.block`, its ImageBlock and
`ImageDataLoaders` are in `minifastai.vision`). A cell that continues an earlier cell (`path`, `fnames`, `df`)
starts with the earlier cell's lines that make them.
"""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = """\
from fastai.vision.all import *
import types
"""

SETUP = '''
import tempfile
from pathlib import Path as _Path
from PIL import Image as _Image

def _mnist_tiny(n_train=50, n_valid=25):
    "MNIST_TINY offline: digits 3 and 7 of scikit-learn's digits, 28x28 grey PNGs in train/ and valid/, labels.csv"
    from sklearn.datasets import load_digits
    root = _Path(tempfile.mkdtemp(prefix="mnist_tiny_"))
    d, rows = load_digits(), []
    for label in (3, 7):
        imgs = d.images[d.target == label]
        for split, part in (("train", imgs[:n_train]), ("valid", imgs[n_train:n_train + n_valid])):
            (root/split/str(label)).mkdir(parents=True)
            for i, a in enumerate(part):
                _Image.fromarray((a * 255 / 16).astype("uint8")).resize((28, 28)).save(root/split/str(label)/f"{i}.png")
                rows.append((f"{split}/{label}/{i}.png", label))
    pd.DataFrame(rows, columns=["name", "label"]).to_csv(root/"labels.csv", index=False)
    return root

def _rand_img(rng, size=(32, 32)):
    return _Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))

def _pascal_2007(n=100):
    "PASCAL_2007 offline: synthetic JPEGs in train/, train.csv with fname, labels (space separated) and is_valid"
    root, rng = _Path(tempfile.mkdtemp(prefix="pascal_2007_")), np.random.default_rng(0)
    (root/"train").mkdir()
    labels = ["chair", "car", "horse person", "bicycle", "dog", "person", "cat"]
    rows = []
    for i in range(n):
        fname = f"{i:06d}.jpg"
        _rand_img(rng).save(root/"train"/fname)
        rows.append((fname, labels[i % len(labels)], i % 4 == 0))
    pd.DataFrame(rows, columns=["fname", "labels", "is_valid"]).to_csv(root/"train.csv", index=False)
    return root

def _pets(n_per_breed=25):
    "PETS offline: synthetic JPEGs named <breed>_<n>.jpg in images/"
    root, rng = _Path(tempfile.mkdtemp(prefix="oxford_iiit_pet_")), np.random.default_rng(0)
    (root/"images").mkdir()
    for breed in ("Abyssinian", "Bengal", "great_pyrenees", "yorkshire_terrier"):
        for i in range(1, n_per_breed + 1):
            _rand_img(rng).save(root/"images"/f"{breed}_{i}.jpg")
    return root

def _camvid_tiny(n=12, codes=("Animal", "Building", "Car", "Road", "Sky")):
    "CAMVID_TINY offline: synthetic PNGs in images/, their masks labels/<stem>_P.png and codes.txt"
    root, rng = _Path(tempfile.mkdtemp(prefix="camvid_tiny_")), np.random.default_rng(0)
    (root/"images").mkdir(); (root/"labels").mkdir()
    for i in range(n):
        _rand_img(rng).save(root/"images"/f"0001TP_{i:06d}.png")
        _Image.fromarray(rng.integers(0, len(codes), (32, 32), dtype=np.uint8)).save(root/"labels"/f"0001TP_{i:06d}_P.png")
    (root/"codes.txt").write_text("\\n".join(codes) + "\\n")
    return root
'''

OUT_OF_SCOPE = ("points, bounding boxes and segmentation masks (`TensorPoint`, `TensorBBox`, `PILMask`, `PointBlock`, "
                "`BBoxBlock`, `MaskBlock`, `bb_pad`, `clip_remove_empty`, `SegmentationDataLoaders`) are out of scope")

CELLS = [
    Cell("clip_remove_empty", """
bb = TensorBBox([[-2,-0.5,0.5,1.5], [-0.5,-0.5,0.5,0.5], [1,0.5,0.5,0.75], [-0.5,-0.5,0.5,0.5], [-2, -0.5, -1.5, 0.5]])
bb,lbl = clip_remove_empty(bb, TensorMultiCategory([1,2,3,2,5]))
test_eq(bb, TensorBBox([[-1,-0.5,0.5,1.], [-0.5,-0.5,0.5,0.5], [-0.5,-0.5,0.5,0.5]]))
test_eq(lbl, TensorMultiCategory([1,2,2]))
""", out_of_scope=OUT_OF_SCOPE),
    Cell("bb_pad", """
img1,img2 = TensorImage(torch.randn(16,16,3)),TensorImage(torch.randn(16,16,3))
bb1 = tensor([[-2,-0.5,0.5,1.5], [-0.5,-0.5,0.5,0.5], [1,0.5,0.5,0.75], [-0.5,-0.5,0.5,0.5]])
lbl1 = tensor([1, 2, 3, 2])
bb2 = tensor([[-0.5,-0.5,0.5,0.5], [-0.5,-0.5,0.5,0.5]])
lbl2 = tensor([2, 2])
samples = [(img1, bb1, lbl1), (img2, bb2, lbl2)]
res = bb_pad(samples)
non_empty = tensor([True,True,False,True])
test_eq(res[0][0], img1)
test_eq(res[0][1], tensor([[-1,-0.5,0.5,1.], [-0.5,-0.5,0.5,0.5], [-0.5,-0.5,0.5,0.5]]))
test_eq(res[0][2], tensor([1,2,2]))
test_eq(res[1][0], img2)
test_eq(res[1][1], tensor([[-0.5,-0.5,0.5,0.5], [-0.5,-0.5,0.5,0.5], [0,0,0,0]]))
test_eq(res[1][2], tensor([2,2,0]))
""", out_of_scope=OUT_OF_SCOPE),
    Cell("from_folder", """
path = _mnist_tiny()
dls = ImageDataLoaders.from_folder(path)
"""),
    Cell("from_folder_valid_pct", """
path = _mnist_tiny()
dls = ImageDataLoaders.from_folder(path, valid_pct=0.2)
dls.valid_ds.items[:3]
"""),
    Cell("from_path_func", """
path = _mnist_tiny()
fnames = get_image_files(path)
def label_func(x): return x.parent.name
dls = ImageDataLoaders.from_path_func(path, fnames, label_func)
"""),
    Cell("from_path_re", """
path = _mnist_tiny()
fnames = get_image_files(path)
pat = r'/([^/]*)/\\d+.png$'
dls = ImageDataLoaders.from_path_re(path, fnames, pat)
"""),
    Cell("mnist_labels_csv", """
path = _mnist_tiny()
df = pd.read_csv(path/'labels.csv')
df.head()
"""),
    Cell("from_df", """
path = _mnist_tiny()
df = pd.read_csv(path/'labels.csv')
dls = ImageDataLoaders.from_df(df, path)
"""),
    Cell("pascal_train_csv", """
path = _pascal_2007()
df = pd.read_csv(path/'train.csv')
df.head()
"""),
    Cell("from_df_folder_valid_col", """
path = _pascal_2007()
df = pd.read_csv(path/'train.csv')
dls = ImageDataLoaders.from_df(df, path, folder='train', valid_col='is_valid')
"""),
    Cell("from_csv", """
path = _pascal_2007()
dls = ImageDataLoaders.from_csv(path, 'train.csv', folder='train', valid_col='is_valid')
"""),
    Cell("from_lists", """
path = _pets()
fnames = get_image_files(path/"images")
labels = ['_'.join(x.name.split('_')[:-1]) for x in fnames]
dls = ImageDataLoaders.from_lists(path, fnames, labels)
"""),
    Cell("segmentation_from_label_func", """
path = _camvid_tiny()
fnames = get_image_files(path/'images')
def label_func(x): return path/'labels'/f'{x.stem}_P{x.suffix}'
codes = np.loadtxt(path/'codes.txt', dtype=str)

dls = SegmentationDataLoaders.from_label_func(path, fnames, label_func, codes=codes)
""", out_of_scope=OUT_OF_SCOPE),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    pytest.importorskip("sklearn")
    run_cell(lib, IMPORTS, cell, setup=SETUP)
