"""Tabular data, one concern per module: `columns` (reading columns), `procs` (FillMissing, Categorify,
Normalize), `blocks` (targets), `splitters`, `processor` (procs and target fitted once), `loader`, `dataloaders`
(`TabularPandas`, `TabularDataLoaders`), `model` (`TabularModel`), `learner` (`tabular_learner`), `export`
(rebuilding exports, registered with `minifastai.persist`), `memory` (giving freed memory back, one switch)."""
# ruff: noqa: F401 (private names re-exported for the modules and tests that used minifastai.tabular.<name>)
from .blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from .columns import NA, factorize
from .dataloaders import TabularDataLoaders, TabularPandas
from .export import rebuild_learner
from .frame_utils import add_datepart, add_elapsed_times, cont_cat_split, df_shrink, df_shrink_dtypes, make_date
from .learner import TabularLearner, TabularRow, tabular_learner
from .loader import TabularLoader
from .model import SigmoidRange, TabularModel, emb_sz_rule, get_emb_sz, sigmoid_range, tabular_config
from .processor import TabularProcessor
from .procs import Categorify, FillMissing, FillStrategy, Normalize, TabularProc
from .splitters import IndexSplitter, RandomSplitter

__all__ = [
    "NA", "TabularProc", "FillMissing", "FillStrategy", "Categorify", "Normalize", "TabularProcessor", "TabularLoader",
    "TabularPandas", "TabularDataLoaders", "CategoryBlock", "MultiCategoryBlock", "RegressionBlock", "RandomSplitter",
    "IndexSplitter", "TabularModel", "emb_sz_rule", "get_emb_sz", "sigmoid_range", "SigmoidRange", "TabularRow",
    "TabularLearner", "tabular_learner", "rebuild_learner",
    "make_date", "add_datepart", "add_elapsed_times", "cont_cat_split", "df_shrink_dtypes", "df_shrink",
    "tabular_config",
]
