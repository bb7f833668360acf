"""fastai's nbs/41_tabular.data.ipynb test cells, as fastai wrote them.

The notebook imports `fastai.torch_basics`, `fastai.data.all` and `fastai.tabular.core`; minifastai has no
`torch_basics` or `data.all` module, so the cells import `fastai.tabular.all` (which holds them and
`fastai.tabular.data`). The notebook downloads ADULT_SAMPLE; SETUP writes a synthetic `adult.csv`
offline instead (test_40_tabular_core's `ADULT_SAMPLE`: ADULT_SAMPLE's 15 columns with their dtypes, string fields
written as adult.csv writes them, missing values in `education-num` and `occupation`, 10,240 rows; the cells take
rows 800 to 1000 as the validation set) and each cell calls `_adult_sample()` (the folder holding it) where the
notebook calls `untar_data(URLs.ADULT_SAMPLE)`. A cell that continues an earlier cell's objects starts with the
earlier cell's lines that make them.
"""
# ruff: noqa: E501  (fastai's cells keep their own line lengths)
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell
from fastai_nbs.test_40_tabular_core import ADULT_SAMPLE

IMPORTS = """\
from fastai.tabular.all import *
"""

SETUP = ADULT_SAMPLE

FROM_DF = """
path = _adult_sample()
df = pd.read_csv(path/'adult.csv', skipinitialspace=True)
df.head()
cat_names = ['workclass', 'education', 'marital-status', 'occupation', 'relationship', 'race']
cont_names = ['age', 'fnlwgt', 'education-num']
procs = [Categorify, FillMissing, Normalize]
dls = TabularDataLoaders.from_df(df, path, procs=procs, cat_names=cat_names, cont_names=cont_names,
                                 y_names="salary", valid_idx=list(range(800,1000)), bs=64)
"""

FROM_CSV = """
path = _adult_sample()
cat_names = ['workclass', 'education', 'marital-status', 'occupation', 'relationship', 'race']
cont_names = ['age', 'fnlwgt', 'education-num']
procs = [Categorify, FillMissing, Normalize]
dls = TabularDataLoaders.from_csv(path/'adult.csv', path=path, procs=procs, cat_names=cat_names, cont_names=cont_names,
                                  y_names="salary", valid_idx=list(range(800,1000)), bs=64)
"""

CELLS = [
    Cell("from_df", FROM_DF),
    Cell("show_batch", FROM_DF + """
dls.show_batch()
"""),
    Cell("from_csv", FROM_CSV),
    Cell("test_dl_skipinitialspace", FROM_CSV + """
test_data = {
    'age': [49],
    'workclass': ['Private'],
    'fnlwgt': [101320],
    'education': ['Assoc-acdm'],
    'education-num': [12.0],
    'marital-status': ['Married-civ-spouse'],
    'occupation': [''],
    'relationship': ['Wife'],
    'race': ['White'],
}
input = pd.DataFrame(test_data)
tdl = dls.test_dl(input)

test_ne(0, tdl.dataset.iloc[0]['workclass'])
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    run_cell(lib, IMPORTS, cell, setup=SETUP)
