# ruff: noqa: E501, W291  (fastai's cells keep their own line lengths and trailing spaces)
"""fastai's nbs/21_vision.learner.ipynb test cells, as fastai wrote them.

fastai/fastai's stored copy of this notebook (commit c9d6709) is fastai 2.6's, whose `create_body` takes an
architecture (`create_body(arch)`) where fastai 2.8.12's takes a model; the cells here are read from the notebook as
fastai 2.8 has it (the same cell ids as the `# %%` markers of fastai 2.8.12's `fastai/vision/learner.py`), in the
fork lejrn/fastai at commit 0538d0c. One hidden cell of that copy, a `show_results` fallback test next to a
`show_results` that differs from fastai 2.8.12's, is that fork's own and is left out.

The notebook's imports are `fastai.basics`, `fastai.vision.core`, `fastai.vision.data`, `fastai.vision.augment`,
`fastai.vision.models`, torchvision and `packaging.version.parse`, and the module under test is
`fastai.vision.learner`; minifastai has no `vision.core` nor `vision.augment`, so those two become
`from fastai.vision.all import *` (which holds them in fastai, and minifastai's image names).

The notebook downloads PETS and CAMVID_TINY (`untar_data`); SETUP writes the same layouts offline instead
(`_pets()`: `images/<breed>_<n>.jpg`, two breeds of synthetic images; `_camvid_tiny()`: `images/*.png`,
`labels/<stem>_P.png` masks and `codes.txt`), and each cell reads them where the notebook calls `untar_data`. The
notebook's data cells are `PETS_DLS` and `CAMVID_DLS`; a cell that uses their `dls` starts with them, and a cell
that continues a previous cell's object (`tst`, `weights`, `learn`) starts with that cell's lines that make it.
Every model that would download weights is built with `pretrained=False` (torchvision's and timm's).
"""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import OFFLINE_DATA, Cell, cases, run_cell

IMPORTS = """\
from packaging.version import parse
from fastai.basics import *
from fastai.vision.all import *
from fastai.vision.data import *
from fastai.vision.learner import *
from fastai.vision import models
import torchvision
try: import timm
except ModuleNotFoundError: pass
"""

SETUP = OFFLINE_DATA + '''
def _camvid_tiny(n=80, size=64, codes=("Sky", "Road", "Car")):
    "CAMVID_TINY offline: images/*.png, labels/<stem>_P.png class-index masks, codes.txt"
    root = _Path(tempfile.mkdtemp(prefix="camvid_tiny_"))
    (root/"images").mkdir(); (root/"labels").mkdir()
    (root/"codes.txt").write_text("\\n".join(codes) + "\\n")
    rng = _np.random.default_rng(0)
    for i in range(n):
        mask = _np.zeros((size, size), dtype=_np.uint8)
        mask[size//3:] = 1
        mask[size//2:, :size//2] = 2
        img = (rng.integers(0, 64, (size, size, 3)) + mask[..., None] * 80).astype(_np.uint8)
        _Image.fromarray(img).save(root/"images"/f"f{i:03d}.png")
        _Image.fromarray(mask).save(root/"labels"/f"f{i:03d}_P.png")
    return root
'''

PETS_DLS = r"""
path = _pets()
fnames = get_image_files(path/"images")
pat = r'^(.*)_\d+.jpg$'
dls = ImageDataLoaders.from_name_re(path, fnames, pat, item_tfms=Resize(224))
"""

CAMVID_DLS = """
path = _camvid_tiny()
fnames = get_image_files(path/'images')
def label_func(x): return path/'labels'/f'{x.stem}_P{x.suffix}'
codes = np.loadtxt(path/'codes.txt', dtype=str)
dls = SegmentationDataLoaders.from_label_func(path, fnames, label_func, codes=codes)
"""

PRIVATE = ("`{}` is private to fastai.vision.learner: `import *` does not give it (the notebook runs it inside the "
           "module)")
SEGMENTATION = ("segmentation is out of scope of minifastai (no `SegmentationDataLoaders`, `unet_learner`, "
                "`create_unet_model`, `DynamicUnet`)")

CELLS = [
    Cell("is_pool_type", """
m = nn.Sequential(nn.AdaptiveAvgPool2d(5), nn.Linear(2,3), nn.Conv2d(2,3,1), nn.MaxPool3d(5))
test_eq([bool(_is_pool_type(m_)) for m_ in m.children()], [True,False,False,True])
""", fastai_fails=PRIVATE.format("_is_pool_type")),
    Cell("has_pool_type", """
m = nn.Sequential(nn.AdaptiveAvgPool2d(5), nn.Linear(2,3), nn.Conv2d(2,3,1), nn.MaxPool3d(5))
assert has_pool_type(m)
test_eq([has_pool_type(m_) for m_ in m.children()], [True,False,False,True])
"""),
    Cell("create_body", """
def tst(): return nn.Sequential(nn.Conv2d(3,5,3), nn.BatchNorm2d(5), nn.AvgPool2d(1), nn.Linear(3,4))
m = create_body(tst())
test_eq(len(m), 2)

m = create_body(tst(), cut=3)
test_eq(len(m), 3)

m = create_body(tst(), cut=noop)
test_eq(len(m), 4)

for n in range(1,5):    
    m = create_body(tst(), n_in=n)
    test_eq(_get_first_layer(m)[0].in_channels, n)
""", fastai_fails=PRIVATE.format("_get_first_layer")),
    Cell("create_head", """
tst = create_head(5, 10)
tst
"""),
    Cell("create_head_layers", """
tst = create_head(5, 10)
mods = list(tst.children())
test_eq(len(mods), 9)
assert isinstance(mods[2], nn.BatchNorm1d)
assert isinstance(mods[-1], nn.Linear)

tst = create_head(5, 10, lin_first=True)
mods = list(tst.children())
test_eq(len(mods), 8)
assert isinstance(mods[2], nn.Dropout)

tst = create_head(5, 10, first_bn=False)
mods = list(tst.children())
test_eq(len(mods), 8)
assert isinstance(mods[2], nn.Dropout)

tst = create_head(5, 10, concat_pool=True)
modes = list(tst.children())
test_eq(modes[4].in_features, 10)

tst = create_head(5, 10, concat_pool=False)
modes = list(tst.children())
test_eq(modes[4].in_features, 5)
"""),
    Cell("create_vision_model", """
tst = create_vision_model(models.resnet18, 10, pretrained=False)
tst = create_vision_model(models.resnet18, 10, pretrained=False, n_in=1)
"""),
    Cell("timm_model_scripted", """
# make sure that timm models can be scripted:
tst, _ = create_timm_model('resnet34', 1, pretrained=False)
scripted = torch.jit.script(tst)
assert scripted, "model could not be converted to TorchScript"
"""),
    Cell("add_norm_once", r"""
path = _pets()
dls = ImageDataLoaders.from_name_re(path, get_image_files(path/"images"), r'^(.*)_\d+.jpg$', item_tfms=Resize(224))
for _ in range(5): _add_norm(dls, model_meta[models.resnet34], True)
test_eq(len(dls.after_batch.fs), 2)
""", fastai_fails=PRIVATE.format("_add_norm")),
    Cell("pets_dataloaders", PETS_DLS),
    Cell("vision_learner_resnet18", PETS_DLS + """
learn = vision_learner(dls, models.resnet18, loss_func=CrossEntropyLossFlat(), ps=0.25, pretrained=False)
"""),
    Cell("vision_learner_weights_cbs", PETS_DLS + """
if parse(torchvision.__version__) >= parse('0.13'):
    from torchvision.models import ResNet34_Weights
    weights = ResNet34_Weights.IMAGENET1K_V1
else:
    weights = None
learn = vision_learner(dls, models.resnet34, weights=weights, loss_func=CrossEntropyLossFlat(), ps=0.25, concat_pool=False)
test_ne(learn.cbs, None)
""", fastai_fails="`weights=ResNet34_Weights.IMAGENET1K_V1` downloads the ResNet34 weights (no network here; "
                  "`pretrained=False` would not stop it: fastai builds `arch(weights=weights)`)"),
    Cell("vision_learner_adds_normalize", PETS_DLS + """
learn = vision_learner(dls, models.resnet18, loss_func=CrossEntropyLossFlat(), ps=0.25, pretrained=False)
test_eq(to_cpu(dls.after_batch[1].mean[0].squeeze()), tensor(imagenet_stats[0]))
test_eq(to_cpu(dls.valid.after_batch[1].mean[0].squeeze()), tensor(imagenet_stats[0]))
""", fastai_fails="needs a pretrained learner: with `pretrained=False` (no weights may download here) "
                  "`vision_learner` adds no `Normalize`, so `dls.after_batch[1]` is an IndexError"),
    Cell("vision_learner_timm", PETS_DLS + """
dls = ImageDataLoaders.from_name_re(path, fnames, pat, item_tfms=Resize(224))
learn = vision_learner(dls, 'convnext_tiny', loss_func=CrossEntropyLossFlat(), ps=0.25, pretrained=False)
"""),
    Cell("create_unet_model", """
tst = create_unet_model(models.resnet18, 10, (24,24), pretrained=False, n_in=1)
""", out_of_scope=SEGMENTATION),
    Cell("unet_learner", CAMVID_DLS + """
learn = unet_learner(dls, models.resnet34, loss_func=CrossEntropyLossFlat(axis=1), y_range=(0,1), pretrained=False)
test_ne(learn.cbs, None)
""", out_of_scope=SEGMENTATION),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    run_cell(lib, IMPORTS, cell, setup=SETUP)
