"""fastai's nbs/20_interpret.ipynb test cells, as fastai wrote them.

The notebook's hidden setup cell downloads MNIST_SAMPLE and builds a `DataBlock`; SETUP writes the same kind of
data offline instead (scikit-learn's 8x8 digits 3 and 7, scaled to 28x28, in `train/` and `valid/` folders) and
builds `test_dls` with `ImageDataLoaders.from_folder(bs=8)` and `test_learner` with `cnn_learner(test_dls,
resnet18)` as the notebook does, with `pretrained=False` (no weights may download here). The notebook's
`from fastai.vision.all import *` becomes the two vision modules the setup uses (`fastai.vision.data`,
`fastai.vision.learner`) and the module under test, `fastai.interpret`; the cell that uses `TabDataLoader`
imports fastai's `fastai.tabular.core` (one of the notebook's import lines) itself. The notebook's second test
cell continues the first one's `interp`; here it starts with the line of the first cell that makes it.
"""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import OFFLINE_DATA, Cell, cases, run_cell

IMPORTS = """\
from fastai.basics import *
from fastai.vision.data import *
from fastai.vision.learner import *
from fastai.interpret import *
from fastai.test_utils import *
import sklearn.metrics as skm
"""

SETUP = OFFLINE_DATA + '''
from torchvision.models import resnet18

def _digits_sample(n_train=24, n_valid=16):
    "MNIST_SAMPLE offline: digits 3 and 7 of scikit-learn's digits, 28x28 RGB PNGs in train/ and valid/ folders"
    return _digits_tree(n_train, n_valid)

torch.manual_seed(42)
test_dls = ImageDataLoaders.from_folder(_digits_sample(), bs=8)
test_learner = cnn_learner(test_dls, resnet18, pretrained=False)
'''


CELLS = [
    Cell("interp_getitem_valid", """
interp = Interpretation.from_learner(test_learner)
x, y, out = [], [], []
for batch in test_learner.dls.valid:
    x += batch[0]
    y += batch[1]
    out += test_learner.model(batch[0])
x,y,out = torch.stack(x), torch.stack(y, dim=0), torch.stack(out, dim=0)
inps, preds, targs, decoded, losses = interp[:]
test_eq(inps, to_cpu(x))
test_eq(targs, to_cpu(y))
loss = torch.stack([test_learner.loss_func(p,t) for p,t in zip(out,y)], dim=0)
test_close(losses, to_cpu(loss))
"""),
    Cell("top_losses_match_recomputed", """
from fastai.tabular.core import *
interp = Interpretation.from_learner(test_learner)
# verify stored losses equal calculated losses for idx
top_losses, idx = interp.top_losses(9)

dl = test_learner.dls[1].new(shuffle=False, drop_last=False)
items = getattr(dl.items, 'iloc', L(dl.items))[idx]
tmp_dl = test_learner.dls.test_dl(items, with_labels=True, process=not isinstance(dl, TabDataLoader))
_, _, _, _, losses = test_learner.get_preds(dl=tmp_dl, with_input=True, with_loss=True,
                                            with_decoded=True, act=None, reorder=False)

test_close(top_losses, losses, 1e-3)
"""),
    Cell("interp_getitem_train", """
#dummy test to ensure we can run on the training set
interp = Interpretation.from_learner(test_learner, ds_idx=0)
x, y, out = [], [], []
for batch in test_learner.dls.train.new(drop_last=False, shuffle=False):
    x += batch[0]
    y += batch[1]
    out += test_learner.model(batch[0])
x,y,out = torch.stack(x), torch.stack(y, dim=0), torch.stack(out, dim=0)
inps, preds, targs, decoded, losses = interp[:]
test_eq(inps, to_cpu(x))
test_eq(targs, to_cpu(y))
loss = torch.stack([test_learner.loss_func(p,t) for p,t in zip(out,y)], dim=0)
test_close(losses, to_cpu(loss))
"""),
    Cell("classification_confusion_matrix", """
# simple test to make sure ClassificationInterpretation works
interp = ClassificationInterpretation.from_learner(test_learner)
cm = interp.confusion_matrix()
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    code = cell.code if lib == "fastai" else cell.code.replace("from fastai.", "from minifastai.")
    run_cell(lib, IMPORTS, Cell(cell.name, code), setup=SETUP)
