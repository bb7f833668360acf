"""fastai's nbs/16_callback.progress.ipynb test cells, as fastai wrote them."""
from __future__ import annotations

import pytest
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = """\
from fastai.basics import *
from fastai.callback.progress import *
from fastai.test_utils import *
import os
"""

CELLS = [
    Cell("fit_shows_progress", """
learn = synth_learner()
learn.fit(5)
"""),
    Cell("no_bar", """
learn = synth_learner()
with learn.no_bar(): learn.fit(5)
"""),
    Cell("validate_without_training", """
def tst_metric(out, targ): return F.mse_loss(out, targ)
learn = synth_learner(n_trn=5, metrics=tst_metric)
preds,targs = learn.validate()
learn = synth_learner(n_trn=5, metrics=tst_metric)
preds,targs = learn.validate()
"""),
    Cell("show_graph", """
learn = synth_learner(cbs=ShowGraphCallback())
learn.fit(5)
learn.predict(torch.tensor([[0.1]]))
"""),
    Cell("csv_logger", """
learn = synth_learner(cbs=CSVLogger())
learn.fit(5)
df = learn.csv_logger.read_log()
test_eq(df.columns.values, learn.recorder.metric_names)
for i,v in enumerate(learn.recorder.values):
    test_close(df.iloc[i][:3], [i] + v)
os.remove(learn.path/learn.csv_logger.fname)
"""),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # learn.path is '.': the CSV log is written there
    code = cell.code if lib == "fastai" else cell.code.replace("from fastai.", "from minifastai.")
    run_cell(lib, IMPORTS, Cell(cell.name, code), setup="")
