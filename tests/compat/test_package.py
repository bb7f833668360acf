"""The package surface: SPEC §0 names import, nothing heavy at import, public API documented and typed."""
import inspect
import subprocess
import sys

import pytest

import minifastai

SPEC_CORE = ["Learner", "DataLoaders", "Callback", "lr_range", "accuracy", "load_learner", "valley", "minimum",
             "steep", "slide", "SaveModelCallback", "TerminateOnNaNCallback", "error_rate", "rmse", "mae",
             "OneCycle", "Recorder", "ProgressCallback", "GradientAccumulation", "GradientClip",
             "EarlyStoppingCallback", "CSVLogger", "CancelBatchException", "CancelBackwardException",
             "CancelStepException", "CancelTrainException", "CancelValidException", "CancelEpochException",
             "CancelFitException"]


@pytest.mark.parametrize("name", SPEC_CORE)
def test_spec_names_importable(name):
    assert hasattr(minifastai, name) and name in minifastai.__all__


@pytest.mark.slow
def test_import_is_light():
    code = ("import sys, minifastai; heavy = [m for m in ('torchvision', 'pandas', 'matplotlib', 'fastprogress', "
            "'sklearn', 'IPython') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _public_callables():
    for name in minifastai.__all__:
        obj = getattr(minifastai, name)
        if inspect.isclass(obj):
            yield name, obj
            for mname, m in vars(obj).items():
                if not mname.startswith("_") and callable(m):
                    yield f"{name}.{mname}", m
        elif callable(obj):
            yield name, obj


def test_public_api_has_docstrings_and_type_hints():
    missing_doc, missing_hints = [], []
    for name, obj in _public_callables():
        if not (inspect.getdoc(obj) or "").strip():
            missing_doc.append(name)
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")
                      and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if any(p.annotation is inspect.Parameter.empty for p in params) or \
                    sig.return_annotation is inspect.Signature.empty:
                missing_hints.append(name)
    assert not missing_doc, f"no docstring: {missing_doc}"
    assert not missing_hints, f"no type hints: {missing_hints}"
