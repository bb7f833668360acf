"""fastai's nbs/43_tabular.learner.ipynb test cells, as fastai wrote them.

The notebook imports `fastai.basics`, `fastai.tabular.core`, `fastai.tabular.model` and `fastai.tabular.data`;
minifastai has no `tabular.data` module, so the cells import `fastai.tabular.all` (which holds them all). The
notebook downloads ADULT_SAMPLE; SETUP writes a synthetic `adult.csv`
offline instead and each cell calls `_adult_sample()` (the folder holding it) where the notebook calls
`untar_data(URLs.ADULT_SAMPLE)`: ADULT_SAMPLE's 15 columns with their dtypes, string fields written as adult.csv
writes them (`49, Private,...`: a space after the comma, `salary` without one), missing values in
`education-num` and `occupation`; 10,240 rows (the cells take rows 800 to 1000 as the validation set). A cell
that continues an earlier cell's objects starts with the earlier cell's lines that make them.
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

LEARNER = """
path = _adult_sample()
df = pd.read_csv(path/'adult.csv')
cat_names = ['workclass', 'education', 'marital-status', 'occupation', 'relationship', 'race']
cont_names = ['age', 'fnlwgt', 'education-num']
procs = [Categorify, FillMissing, Normalize]
dls = TabularDataLoaders.from_df(df, path, procs=procs, cat_names=cat_names, cont_names=cont_names,
                                 y_names="salary", valid_idx=list(range(800,1000)), bs=64)
learn = tabular_learner(dls)
"""

CELLS = [
    Cell("tabular_learner", LEARNER),
    Cell("predict", LEARNER + """
row, clas, probs = learn.predict(df.iloc[0])
clas, probs
"""),
    Cell("predict_row_show", LEARNER + """
row, clas, probs = learn.predict(df.iloc[0])
row.show()
"""),
    Cell("y_range", LEARNER + """
#test y_range is passed
learn = tabular_learner(dls, y_range=(0,32))
assert isinstance(learn.model.layers[-1], SigmoidRange)
test_eq(learn.model.layers[-1].low, 0)
test_eq(learn.model.layers[-1].high, 32)

learn = tabular_learner(dls, config = tabular_config(y_range=(0,32)))
assert isinstance(learn.model.layers[-1], SigmoidRange)
test_eq(learn.model.layers[-1].low, 0)
test_eq(learn.model.layers[-1].high, 32)
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    run_cell(lib, IMPORTS, cell, setup=SETUP)
