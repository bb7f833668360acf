"""fastai's nbs/18a_callback.training.ipynb test cells, as fastai wrote them."""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = """\
from fastai.basics import *
from fastai.callback.progress import *
from fastai.callback.fp16 import *
from fastai.callback.training import *
from fastai.test_utils import *
"""

ACC = '''
class GetGrads(Callback):
    run_valid,order = False,GradientAccumulation.order+1
    def before_step(self): self.grads=to_detach(L([p.grad.clone() for p in self.model.parameters()]))

def _test_acc(bs,n,cbs=None,cuda=False):
    with no_random(99):
        db=synth_dbunch(bs=bs,n_train=n,n_valid=n,cuda=cuda)
        learn = synth_learner(data=db,cbs=[GetGrads]+L(cbs))
        learn.fit(1, lr=0.01)
        train,valid = learn.recorder.values[-1]
        return train,valid,learn.get_grads.grads

acc_cb = GradientAccumulation(n_acc=8)
'''

DOWNLOAD = "downloads MNIST_TINY and resnet18's weights (no network here)"

CELLS = [
    Cell("short_epoch", """
learn = synth_learner()
learn.fit(1, cbs=ShortEpochCallback())
learn = synth_learner()
learn.fit(1, cbs=ShortEpochCallback(short_valid=False))
"""),
    Cell("gradient_accumulation_equals_one_batch", ACC + """
train1,valid1,grads1 = _test_acc(8,1)
train2,valid2,grads2 = _test_acc(1,8,acc_cb)

#grads should be same, valid loss same, train loss different
test_close(grads2,grads1)
test_close(valid2, valid1)
test_ne(train2, train1)
"""),
    Cell("gradient_accumulation_fp16_cuda", ACC + """
if torch.cuda.is_available():
    fp16_cb = MixedPrecision(init_scale=1024)
    train1,valid1,grads1 = _test_acc(8,1, fp16_cb, cuda=True)
    train2,valid2,grads2 = _test_acc(1,8, [acc_cb,fp16_cb], cuda=True)
    test_close(grads2,grads1, eps=0.01)
    test_close(valid2, valid1)
    test_ne(train2, train1)
"""),
    Cell("gradient_accumulation_beyond_the_epoch", """
learn = synth_learner()
learn.fit(1, lr=0.01, cbs=GradientAccumulation(n_acc=1000))
# ensure valid_loss didn't change
assert learn.recorder.values[-1][1] == learn.recorder.values[0][1]
"""),
    Cell("gradient_clip", """
fp16 = MixedPrecision()
set_seed(99)
learn = synth_learner(lr=1.1, cuda=True)
learn.fit(3, cbs=fp16)
set_seed(99)
learn = synth_learner(lr=1.1, cuda=True)
learn.fit(3, cbs=[GradientClip,fp16])
"""),
    Cell("bn_freeze", """
path = untar_data(URLs.MNIST_TINY)
dls  = ImageDataLoaders.from_folder(path, valid_pct=0.2)
learn1 = cnn_learner(deepcopy(dls), resnet18, pretrained=True, train_bn=False, cbs=BnFreeze)
m = learn1.model[0][1].running_mean.detach().clone()
learn1.fit(1, lr=0.02)
test_eq(to_detach(learn1.model[0][1].running_mean), m)
""", fastai_fails=DOWNLOAD),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    code = cell.code if lib == "fastai" else cell.code.replace("from fastai.", "from minifastai.")
    run_cell(lib, IMPORTS, Cell(cell.name, code), setup="")
