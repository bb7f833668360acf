"""fastai's star-import modules under minifastai's name: a notebook changes only `fastai` to `minifastai`."""
from __future__ import annotations

import importlib

import pytest


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
