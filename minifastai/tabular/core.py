"""fastai's module name for tabular preprocessing (`from fastai.tabular.core import *`): `TabularPandas`, the
procs (`Categorify`, `FillMissing`, `Normalize`, `TabularProc`) and the loader, under fastai's name
`TabDataLoader` too (minifastai's `TabularLoader`)."""
from __future__ import annotations

from .dataloaders import TabularPandas
from .loader import TabularLoader
from .procs import Categorify, FillMissing, Normalize, TabularProc

TabDataLoader = TabularLoader
"""fastai's name for the tabular loader: minifastai's `TabularLoader`."""

__all__ = ["TabularPandas", "TabularProc", "Categorify", "FillMissing", "Normalize", "TabularLoader", "TabDataLoader"]
