"""The "coming from fastai" page lists exactly the fastai names minifastai still lacks (it cannot drift)."""

import pytest
from helpers import load_script

pytest.importorskip("fastai")
gen = load_script("docs/gen_fastai_names.py")


def test_the_page_lists_exactly_the_missing_names():
    assert gen.current() == gen.render(), "run `.venv/bin/python docs/gen_fastai_names.py` to update the page"


def test_the_everyday_idioms_are_covered():
    everyday = ["Learner", "Callback", "Recorder", "SchedCos", "combine_scheds", "ParamScheduler", "SGD", "Adam",
                "OptimWrapper", "CrossEntropyLossFlat", "MSELossFlat", "accuracy", "error_rate", "set_seed",
                "SaveModelCallback", "EarlyStoppingCallback", "ReduceLROnPlateau", "CSVLogger", "ProgressCallback",
                "vision_learner", "ImageDataLoaders", "aug_transforms", "Resize", "ClassificationInterpretation",
                "TabularDataLoaders", "tabular_learner", "Categorify", "FillMissing", "RandomSplitter"]
    assert [n for n in everyday if not gen.have(n)] == []
