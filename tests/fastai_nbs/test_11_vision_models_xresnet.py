"""fastai's nbs/11_vision.models.xresnet.ipynb test cells, as fastai wrote them.

The notebook's imports are `fastai.torch_basics` and the module it defines, `fastai.vision.models.xresnet`; neither
module path exists in minifastai (its xresnets live in `minifastai.vision.xresnet`, exported by `minifastai.vision`),
so both become `from fastai.vision.all import *`, which holds them in fastai and in minifastai. The notebook's test
cells are the six that build a model and run a batch through it; they download nothing.
"""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = """\
from fastai.vision.all import *
"""


CELLS = [
    Cell("xse_resnext18_forward", """
tst = xse_resnext18()
x = torch.randn(64, 3, 128, 128)
y = tst(x)
"""),
    Cell("xresnext18_forward", """
tst = xresnext18()
x = torch.randn(64, 3, 128, 128)
y = tst(x)
"""),
    Cell("xse_resnet50_forward", """
tst = xse_resnet50()
x = torch.randn(8, 3, 64, 64)
y = tst(x)
"""),
    Cell("xresnet18_1d", """
tst = xresnet18(ndim=1, c_in=1, ks=15)
x = torch.randn(64, 1, 128)
y = tst(x)
"""),
    Cell("xresnext50_1d_stride4", """
tst = xresnext50(ndim=1, c_in=2, ks=31, stride=4)
x = torch.randn(8, 2, 128)
y = tst(x)
"""),
    Cell("xresnet18_3d", """
tst = xresnet18(ndim=3, c_in=3, ks=3)
x = torch.randn(8, 3, 32, 32, 32)
y = tst(x)
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    run_cell(lib, IMPORTS, cell)
