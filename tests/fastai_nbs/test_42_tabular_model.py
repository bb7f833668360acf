"""fastai's nbs/42_tabular.model.ipynb test cells, as fastai wrote them.

The notebook imports `fastai.torch_basics` and `fastai.tabular.core`; minifastai has no `torch_basics` module, so
the cells import `fastai.tabular.all` (which holds them and `fastai.tabular.model`). Both cells test by running.
"""
# ruff: noqa: E501  (fastai's cells keep their own line lengths)
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = """\
from fastai.tabular.all import *
"""

CELLS = [
    Cell("tabular_model_forward", """
emb_szs = [(4,2), (17,8)]
m = TabularModel(emb_szs, n_cont=2, out_sz=2, layers=[200,100]).eval()
x_cat = torch.tensor([[2,12]]).long()
x_cont = torch.tensor([[0.7633, -0.1887]]).float()
out = m(x_cat, x_cont)
"""),
    Cell("tabular_config", """
config = tabular_config(embed_p=0.6, use_bn=False); config
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    run_cell(lib, IMPORTS, cell)
