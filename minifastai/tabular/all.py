"""`from minifastai.tabular.all import *`, as fastai's `from fastai.tabular.all import *`: everything of
`minifastai.basics` and of `minifastai.tabular`."""
from __future__ import annotations

from .. import tabular as _tabular
from ..basics import *  # noqa: F403
from ..basics import __all__ as _basics_all
from . import *  # noqa: F403

__all__ = [*_basics_all, *(n for n in _tabular.__all__ if n not in _basics_all)]
