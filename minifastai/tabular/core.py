"""fastai's module name for tabular preprocessing (`from fastai.tabular.core import *`): `TabularPandas`, the
procs (`Categorify`, `FillMissing`, `Normalize`, `TabularProc`) and the loader, under fastai's name
`TabDataLoader` too (minifastai's `TabularLoader`)."""
from __future__ import annotations

from .dataloaders import TabularPandas
from .frame_utils import add_datepart, cont_cat_split, df_shrink, df_shrink_dtypes, make_date
from .loader import TabularLoader
from .procs import Categorify, FillMissing, FillStrategy, Normalize, TabularProc

TabDataLoader = TabularLoader
"""fastai's name for the tabular loader: minifastai's `TabularLoader`."""

__all__ = ["TabularPandas", "TabularProc", "Categorify", "FillMissing", "FillStrategy", "Normalize", "TabularLoader",
           "TabDataLoader", "make_date", "add_datepart", "cont_cat_split", "df_shrink_dtypes", "df_shrink"]
