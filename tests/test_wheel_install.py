"""The package as a user installs it: a wheel built from this tree, installed on its own (not the editable
checkout), imports, trains and is typed; a fit imports no web framework; the version is written in one place."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FIT = """
import sys, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import minifastai
from minifastai import DataLoaders, Learner, accuracy
x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
dl = DataLoader(TensorDataset(x, y), 16)
learn = Learner(DataLoaders(dl, dl, device="cpu"), nn.Linear(4, 2), nn.CrossEntropyLoss(), metrics=accuracy)
learn.fit(2, 1e-1)
print("FILE", minifastai.__file__)
print("VERSION", minifastai.__version__)
print("WEB", [m for m in ("starlette", "uvicorn", "fasthtml") if m in sys.modules])
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """What a build reads, copied: building writes build/ and *.egg-info next to its sources."""
    src = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "minifastai", src / "minifastai", ignore=shutil.ignore_patterns("__pycache__"))
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, source) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True, cwd=out)
    (whl,) = out.glob("minifastai-*.whl")
    return whl


def test_the_built_wheel_installs_imports_and_trains(wheel, tmp_path):
    names = zipfile.ZipFile(wheel).namelist()
    assert "minifastai/py.typed" in names and any(n.endswith("licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "docs/", "examples/", "bench/")) for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, "-c", FIT], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = dict(ln.split(" ", 1) for ln in res.stdout.splitlines() if ln.split(" ", 1)[0] in ("FILE", "VERSION",
                                                                                               "WEB"))
    assert lines["FILE"].startswith(str(target))  # the wheel's copy, not this checkout
    from minifastai.version import __version__

    assert lines["VERSION"] == __version__ and wheel.name.startswith(f"minifastai-{__version__}-")
    assert lines["WEB"] == "[]"
    assert "epoch" in res.stdout and "accuracy" in res.stdout  # the results table of a real fit


def test_a_fit_imports_no_web_framework():
    code = ("import sys, io, contextlib; sys.path.insert(0, 'tests'); from helpers import make_learner; "
            "l = make_learner(); f = io.StringIO(); c = contextlib.redirect_stdout(f); c.__enter__(); "
            "l.fit(1, 1e-3); c.__exit__(None, None, None); "
            "print([m for m in ('starlette', 'uvicorn', 'fasthtml') if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"


def test_the_version_is_written_once():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and "\nversion = " not in pyproject.split("[tool.setuptools")[0]
    import minifastai
    from minifastai.version import __version__

    assert minifastai.__version__ == __version__


def test_the_sdist_holds_the_package_and_its_license_not_the_tests(tmp_path, source):
    import tarfile

    build = f"from setuptools import build_meta; build_meta.build_sdist({str(tmp_path)!r})"
    subprocess.run([sys.executable, "-c", build], cwd=source, check=True, capture_output=True)
    (sdist,) = tmp_path.glob("minifastai-*.tar.gz")
    names = [n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n]
    assert "LICENSE" in names and "minifastai/py.typed" in names and "minifastai/learner.py" in names
    assert not any(n.startswith(("tests/", "docs/", "examples/", "bench/")) for n in names)
