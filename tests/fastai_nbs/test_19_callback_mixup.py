# ruff: noqa: W291  (fastai's cells keep their own trailing spaces)
"""fastai's nbs/19_callback.mixup.ipynb test cells, as fastai wrote them.

The notebook downloads PETS (`untar_data(URLs.PETS)`); SETUP writes the same layout offline instead (`images/`
holding `<breed>_<n>.jpg` files: two "breeds" of 40 synthetic 32x32 images: one training batch of 64 after the
20% validation split) and the notebook's data cell is `PETS_DLS`, with `_pets()` where it calls
`untar_data(URLs.PETS)`; the cells that use its `dls` start with it. The notebook's CutMix training cell continues
the `cutmix` of the cell before it; here it starts with that cell's line that makes it, and builds its
`cnn_learner` with `pretrained=False` (no weights may download here). The notebook's import cells (`fastai.basics`,
`fastai.vision.all`, `fastai.test_utils`, `torch.distributions.beta`) and the module under test,
`fastai.callback.mixup`, are the imports.

fastai's stored notebook (commit 015931b) is a megabyte of embedded images, and the source of its MixUp cells sits
in a part of it that could not be read here; the `mixup_before_batch` cell is the notebook's CutMix cell (read
verbatim) with `MixUp(1.)`, the form both cells have in fastai's notebook ("We train with it in the exact same way
as well"). The notebook's MixUp training cell (`#slow`) is not ported for that reason; its CutMix one is. That
cell is flagged `#slow` (about 10 s per library on 2 CPU cores: one resnet18 batch of 64 at 224 pixels); as fastai's
`nbdev_test`, this module skips it unless `FASTAI_NBS_SLOW=1` is set.
"""
from __future__ import annotations

import os

import pytest
from fastai_nbs.nbcells import OFFLINE_DATA, Cell, cases, run_cell

IMPORTS = """\
from fastai.basics import *
from torch.distributions.beta import Beta
from fastai.test_utils import *
from fastai.vision.all import *
from fastai.callback.mixup import *
"""

SETUP = OFFLINE_DATA + ''''''

PETS_DLS = r"""
path = _pets()
pat        = r'([^/]+)_\d+.*$'
fnames     = get_image_files(path/'images')
item_tfms  = [Resize(256, method='crop')]
batch_tfms = [*aug_transforms(size=224), Normalize.from_stats(*imagenet_stats)]
dls = ImageDataLoaders.from_name_re(path, fnames, pat, bs=64, item_tfms=item_tfms, 
                                    batch_tfms=batch_tfms)
"""

PRIVATE_SPLIT = ("the cell drives fastai's training loop by hand through the private `Learner._split` "
                 "(fastai-internal: minifastai's Learner splits each batch into `xb`/`yb` inside its own loop)")

CELLS = [
    Cell("pets_dataloaders", PETS_DLS),
    Cell("mixup_before_batch", PETS_DLS + """
mixup = MixUp(1.)
with Learner(dls, nn.Linear(3,4), loss_func=CrossEntropyLossFlat(), cbs=mixup) as learn:
    learn.epoch,learn.training = 0,True
    learn.dl = dls.train
    b = dls.one_batch()
    learn._split(b)
    learn('before_train')
    learn('before_batch')

_,axs = plt.subplots(3,3, figsize=(9,9))
dls.show_batch(b=(mixup.x,mixup.y), ctxs=axs.flatten())
""", out_of_scope=PRIVATE_SPLIT),
    Cell("cutmix_before_batch", PETS_DLS + """
cutmix = CutMix(1.)
with Learner(dls, nn.Linear(3,4), loss_func=CrossEntropyLossFlat(), cbs=cutmix) as learn:
    learn.epoch,learn.training = 0,True
    learn.dl = dls.train
    b = dls.one_batch()
    learn._split(b)
    learn('before_train')
    learn('before_batch')

_,axs = plt.subplots(3,3, figsize=(9,9))
dls.show_batch(b=(cutmix.x,cutmix.y), ctxs=axs.flatten())
""", out_of_scope=PRIVATE_SPLIT),
    Cell("cutmix_fit_one_cycle", PETS_DLS + """
cutmix = CutMix(1.)
#slow
learn = cnn_learner(dls, resnet18, loss_func=CrossEntropyLossFlat(), metrics=[accuracy, error_rate], pretrained=False)
learn.fit_one_cycle(1, cbs=cutmix)
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    import matplotlib.pyplot as plt

    if "#slow" in cell.code and not os.environ.get("FASTAI_NBS_SLOW"):
        pytest.skip("a `#slow` cell, which fastai's `nbdev_test` skips too; run it with FASTAI_NBS_SLOW=1")

    try:
        run_cell(lib, IMPORTS, cell, setup=SETUP)
    finally:
        plt.close("all")
