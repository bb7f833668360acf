"""Run fastai's own notebook test cells, as fastai wrote them, against fastai and against minifastai.

Each test module holds one notebook's test cells (`Cell`: a name and fastai's code, unchanged) and the import
line the notebook's cells rely on, written for fastai; for minifastai the same line names the same module path in
`minifastai` (fastai's module names, SPEC §14). Both run after the same prelude: fastcore's test helpers and
utilities (`test_eq`, `mk_class`, `L`, ...; the test framework fastai's notebooks use) and the torch and numpy
names fastai's star imports bring. Only imports and offline data are changed.

A cell that fails on fastai itself here is skipped on both, with the reason (`fastai_fails`); a deliberate
difference of minifastai is `xfail` with its reason (`differs`), and each such reason is listed in
docs/fastai-differences.md (a test checks it); so is a cell that tests what SPEC §14 leaves out of scope
(`out_of_scope`: fastai's mid-level API, points, boxes and segmentation, fastai-private methods), which the docs'
tables count apart from the in-scope cells; what is not built yet is `xfail` as `pending` (strict: a cell
that starts passing must lose its mark).
"""
from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass

import pytest

LIBS = ("fastai", "minifastai")
PRELUDE = """\
from fastcore.all import *
from fastcore.test import *
import math, torch, numpy as np
from torch import nn, tensor, Tensor
import torch.nn.functional as F
from functools import partial
"""


OFFLINE_DATA = '''
import tempfile
from pathlib import Path as _Path
import numpy as _np
from PIL import Image as _Image

def _digits_tree(n_train=24, n_valid=16, mode="RGB", prefix="mnist_sample_"):
    "MNIST_SAMPLE / MNIST_TINY offline: scikit-learn's digits 3 and 7 as 28x28 PNGs in train/<digit>/, valid/<digit>/"
    from sklearn.datasets import load_digits
    root = _Path(tempfile.mkdtemp(prefix=prefix))
    d = load_digits()
    for label in (3, 7):
        imgs = d.images[d.target == label]
        for split, part in (("train", imgs[:n_train]), ("valid", imgs[n_train:n_train + n_valid])):
            (root/split/str(label)).mkdir(parents=True)
            for i, img in enumerate(part):
                im = _Image.fromarray((img * 255 / 16).astype("uint8")).resize((28, 28)).convert(mode)
                im.save(root/split/str(label)/f"{i}.png")
    return root

def _pets(n_per_breed=40, size=32):
    "PETS offline: images/<breed>_<n>.jpg, two breeds of synthetic RGB images"
    root = _Path(tempfile.mkdtemp(prefix="pets_"))
    (root/"images").mkdir()
    rng = _np.random.default_rng(0)
    for b, breed in enumerate(("Abyssinian", "beagle")):
        for i in range(n_per_breed):
            a = rng.integers(0, 256, (size, size, 3), dtype=_np.uint8)
            a[..., b] = 255
            _Image.fromarray(a).save(root/"images"/f"{breed}_{i+1}.jpg")
    return root
'''
"""Offline stand-ins for the datasets fastai's notebooks download (`_digits_tree`, `_pets`), for a module's SETUP."""


@dataclass(frozen=True)
class Cell:
    """One test cell of a fastai notebook: `code` is fastai's, unchanged."""

    name: str
    code: str
    fastai_fails: str = ""  # why this cell fails on fastai 2.8.12 here: skipped on both
    differs: str = ""  # a deliberate difference of minifastai (xfail there), listed in docs/fastai-differences.md
    out_of_scope: str = ""  # tests what SPEC §14 leaves out (the mid-level API, ...): xfail there, not counted in scope
    pending: str = ""  # not built yet (xfail there, counted as failing): what is missing


def imports_for(lib: str, fastai_imports: str) -> str:
    """The notebook's import lines for `lib`: fastai's own, or the same module paths in minifastai."""
    return fastai_imports if lib == "fastai" else fastai_imports.replace("fastai", "minifastai")


PATCHED_CLASSES = ("torch.Tensor", "torch.nn.Module", "torch.optim.Optimizer", "pathlib.Path")


@contextlib.contextmanager
def without_fastai_patches():
    """Hide what fastai's import patched onto torch and pathlib classes (`Tensor.__array_eq__`, which fastcore's
    `test_eq` uses on tensors, ...), so that a minifastai cell sees no trace of a fastai cell run before it in
    the same process. minifastai patches no class."""
    import importlib

    hidden = []
    for qual in PATCHED_CLASSES:
        mod, _, name = qual.rpartition(".")
        cls = getattr(importlib.import_module(mod), name)
        for attr, value in list(vars(cls).items()):
            if str(getattr(value, "__module__", "") or "").split(".")[0] == "fastai":
                hidden.append((cls, attr, value))
                delattr(cls, attr)
    try:
        yield
    finally:
        for cls, attr, value in hidden:
            setattr(cls, attr, value)


@contextlib.contextmanager
def fastai_defaults_as_imported(fastai_imports: str):
    """fastai's `defaults.callbacks` as a fresh kernel running only `fastai_imports` has it: once any test in this
    process imported `fastai.callback.progress` (or a `.all` module), fastai adds `ProgressCallback` to every new
    Learner for good, which a notebook that imports neither never sees."""
    import fastai.learner  # noqa: F401  (it sets `defaults.callbacks`)
    from fastcore.basics import defaults

    fresh = not re.search(r"fastai\.(callback\.progress|[\w.]*all) import", fastai_imports)
    hidden = [c for c in defaults.callbacks if c.__name__ == "ProgressCallback"] if fresh else []
    defaults.callbacks = [c for c in defaults.callbacks if c not in hidden]
    try:
        yield
    finally:
        defaults.callbacks = [*defaults.callbacks, *(c for c in hidden if c not in defaults.callbacks)]


def run_cell(lib: str, fastai_imports: str, cell: Cell, setup: str = "") -> dict:
    """Execute the prelude, the imports, the notebook's `setup` code and the cell; returns the namespace.

    A minifastai cell runs without fastai's patches of torch classes (`without_fastai_patches`)."""
    if lib == "fastai":
        pytest.importorskip("fastai")
        with fastai_defaults_as_imported(fastai_imports):
            return _run(lib, fastai_imports, cell, setup)
    with without_fastai_patches():
        return _run(lib, fastai_imports, cell, setup)


def _run(lib: str, fastai_imports: str, cell: Cell, setup: str) -> dict:
    ns: dict = {"__name__": f"nb_{lib}"}
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        exec(compile(PRELUDE + imports_for(lib, fastai_imports), f"<{lib} imports>", "exec"), ns)
    if setup:
        exec(compile(setup, f"<{lib} setup>", "exec"), ns)
    exec(compile(cell.code, f"<{lib} cell {cell.name}>", "exec"), ns)
    return ns


def cases(cells: list[Cell]) -> list:
    """pytest parameters: every cell on both libraries, with its skip or xfail mark."""
    out = []
    for cell in cells:
        for lib in LIBS:
            marks = []
            if cell.fastai_fails:
                marks.append(pytest.mark.skip(reason=f"fails on fastai 2.8.12 itself: {cell.fastai_fails}"))
            elif cell.differs and lib == "minifastai":
                marks.append(pytest.mark.xfail(reason=cell.differs, strict=True))
            elif cell.out_of_scope and lib == "minifastai":
                marks.append(pytest.mark.xfail(reason=f"out of scope: {cell.out_of_scope}", strict=True))
            elif cell.pending and lib == "minifastai":
                marks.append(pytest.mark.xfail(reason=f"not built yet: {cell.pending}", strict=True))
            out.append(pytest.param(lib, cell, id=f"{cell.name}-{lib}", marks=marks))
    return out
