# ruff: noqa: E501  (fastai's cells keep their own line lengths)
"""fastai's nbs/06_data.block.ipynb test cells, as fastai wrote them.

The notebook downloads MNIST_TINY (`untar_data(URLs.MNIST_TINY)`); SETUP writes the same layout offline instead
(scikit-learn's 8x8 digits 3 and 7, scaled to 28x28 grey PNGs, in `train/3`, `train/7`, `valid/3`, `valid/7`) and
each cell reads `_mnist_tiny()` where the notebook calls `untar_data(URLs.MNIST_TINY)`. The notebook's own import
cells (`fastai.data.block`, `...transforms`, `fastai.vision.core`, `fastai.vision.data`) become fastai's
`fastai.vision.all`, which holds them (minifastai's DataBlock lives in `minifastai.data.block`, its ImageBlock in
`minifastai.vision`).
"""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import OFFLINE_DATA, Cell, cases, run_cell

IMPORTS = """\
from fastai.vision.all import *
"""

SETUP = OFFLINE_DATA + '''
def _mnist_tiny(n_train=20, n_valid=10):
    "MNIST_TINY offline: digits 3 and 7 of scikit-learn's digits, 28x28 grey PNGs in train/ and valid/ folders"
    return _digits_tree(n_train, n_valid, mode="L", prefix="mnist_tiny_")
'''

MID_LEVEL = ("fastai's type-transform machinery (`type_tfms`, `default_item_tfms`, `_merge_tfms`, `Categorize`, "
             "`ToTensor`, `IntToFloatTensor` objects) is the mid-level API, out of scope: a minifastai block is an "
             "object with `check`, `setup`, `encode` (targets) or `create` (inputs)")

CELLS = [
    Cell("merge_tfms", """
tfms = _merge_tfms([Categorize, MultiCategorize, Categorize(['dog', 'cat'])], Categorize(['a', 'b']))
#If there are several instantiated versions, the last one is kept.
test_eq(len(tfms), 2)
test_eq(tfms[1].__class__, MultiCategorize)
test_eq(tfms[0].__class__, Categorize)
test_eq(tfms[0].vocab, ['a', 'b'])

tfms = _merge_tfms([PILImage.create, PILImage.show])
#Check methods are properly separated
test_eq(len(tfms), 2)
tfms = _merge_tfms([show_image, set_trace])
#Check functions are properly separated
test_eq(len(tfms), 2)

_f = lambda x: 0
test_eq(len(_merge_tfms([_f,lambda x: 1])), 2)
test_eq(len(_merge_tfms([_f,_f])), 1)
""", fastai_fails="`_merge_tfms` is private to fastai.data.block: `import *` does not give it (the notebook runs "
                  "it inside the module)"),
    Cell("type_tfms", """
mnist = DataBlock(blocks = (ImageBlock(cls=PILImageBW),CategoryBlock),
                  get_items = get_image_files,
                  splitter = GrandparentSplitter(),
                  get_y = parent_label)
test_eq(mnist.type_tfms[0], [PILImageBW.create])
test_eq(mnist.type_tfms[1].map(type), [Categorize])
test_eq(mnist.default_item_tfms.map(type), [ToTensor])
test_eq(mnist.default_batch_tfms.map(type), [IntToFloatTensor])
""", out_of_scope=MID_LEVEL),
    Cell("datasets", """
mnist = DataBlock(blocks = (ImageBlock(cls=PILImageBW),CategoryBlock),
                  get_items = get_image_files,
                  splitter = GrandparentSplitter(),
                  get_y = parent_label)
dsets = mnist.datasets(_mnist_tiny())
test_eq(dsets.vocab, ['3', '7'])
x,y = dsets.train[0]
test_eq(x.size,(28,28))
show_at(dsets.train, 0, cmap='Greys', figsize=(2,2));
"""),
    Cell("wrong_kwargs", """
test_fail(lambda: DataBlock(wrong_kwarg=42, wrong_kwarg2='foo'))
"""),
    Cell("n_inp_two_inputs", """
mnist = DataBlock((ImageBlock, ImageBlock, CategoryBlock), get_items=get_image_files, splitter=GrandparentSplitter(),
                   get_y=parent_label)
dsets = mnist.datasets(_mnist_tiny())
test_eq(mnist.n_inp, 2)
test_eq(len(dsets.train[0]), 3)
"""),
    Cell("get_y_count", """
test_fail(lambda: DataBlock((ImageBlock, ImageBlock, CategoryBlock), get_items=get_image_files, splitter=GrandparentSplitter(),
                  get_y=[parent_label, noop],
                  n_inp=2), msg='get_y contains 2 functions, but must contain 1 (one for each output)')
"""),
    Cell("n_inp_one_two_targets", """
mnist = DataBlock((ImageBlock, ImageBlock, CategoryBlock), get_items=get_image_files, splitter=GrandparentSplitter(),
                  n_inp=1,
                  get_y=[noop, Pipeline([noop, parent_label])])
dsets = mnist.datasets(_mnist_tiny())
test_eq(len(dsets.train[0]), 3)
"""),
    Cell("short_repr", """
test_eq(_short_repr(TensorImage(torch.randn(40,56))), 'TensorImage of size 40x56')
test_eq(_short_repr(TensorCategory([1,2,3])), 'TensorCategory([1, 2, 3])')
test_eq(_short_repr((TensorImage(torch.randn(40,56)), TensorImage(torch.randn(32,20)))),
        '(TensorImage of size 40x56, TensorImage of size 32x20)')
""", fastai_fails="`_short_repr` is private to fastai.data.block: `import *` does not give it"),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    pytest.importorskip("sklearn")
    run_cell(lib, IMPORTS, cell, setup=SETUP)
