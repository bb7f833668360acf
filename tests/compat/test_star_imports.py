"""fastai's star-import modules under minifastai's name: a notebook changes only `fastai` to `minifastai`."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch


@pytest.mark.parametrize("mod, names", [
    ("minifastai.basics", ["Learner", "TfmdDL", "Datasets", "Transform", "test_eq", "to_np", "L", "torch", "nn"]),
    ("minifastai.callback.all", ["LRFinder", "ShowGraphCallback", "EarlyStoppingCallback", "MixedPrecision"]),
    ("minifastai.vision.all", ["vision_learner", "ImageDataLoaders", "TensorImage", "cast", "Learner", "np"]),
    ("minifastai.tabular.all", ["tabular_learner", "TabularPandas", "Categorify", "Learner", "pd"]),
    ("minifastai.tabular.core", ["TabularPandas", "Categorify", "FillMissing", "TabDataLoader"]),
])
def test_star_imports_give_fastais_names_and_every_listed_name_exists(mod, names):
    ns: dict = {}
    exec(f"from {mod} import *", ns)  # noqa: S102 (the import line a notebook writes)
    missing = [n for n in names if n not in ns]
    assert not missing, f"`from {mod} import *` lacks {missing}"
    m = importlib.import_module(mod)
    assert [n for n in m.__all__ if not hasattr(m, n)] == []
    assert len(set(m.__all__)) == len(m.__all__), "a name listed twice"


def test_the_names_star_imports_bring_are_fastais_and_the_docs_list_them():
    pytest.importorskip("fastai")
    from minifastai.basics import STAR_NAMES

    theirs: dict = {}
    ours: dict = {}
    exec("from fastai.basics import *", theirs)  # noqa: S102
    exec("from minifastai.basics import *", ours)  # noqa: S102
    for n in STAR_NAMES:
        assert n in theirs and n in ours, n
        if n != "tensor":
            assert ours[n] is theirs[n], f"{n} is another object than fastai's"  # the same modules and classes
    t = torch.ones(2)
    for args in [(1, 2, 3), ([1.0, 2.0],), (np.arange(3.0),), (np.arange(3, dtype=np.uint16),), (pd.Series([1.5]),),
                 (range(3),), (2.5,), ([[1, 2], [3, 4]],)]:
        a, b = ours["tensor"](*args), theirs["tensor"](*args)
        assert a.dtype == b.dtype and torch.equal(a, b), args  # fastai's `tensor`: float64 becomes float32, ...
    assert ours["tensor"](t) is t is theirs["tensor"](t)
    vision_theirs: dict = {}
    vision_ours: dict = {}
    exec("from fastai.vision.all import *", vision_theirs)  # noqa: S102
    exec("from minifastai.vision.all import *", vision_ours)  # noqa: S102
    assert vision_ours["Image"] is vision_theirs["Image"]
    doc = (Path(__file__).parents[2] / "docs" / "fastai-differences.md").read_text()
    listed = doc[doc.index("<!-- star-names:start -->"):doc.index("<!-- star-names:end -->")]
    assert sorted(re.findall(r"`(\w+)`", listed)) == sorted([*STAR_NAMES, "Image"])
