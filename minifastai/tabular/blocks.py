"""Tabular targets: which kind a target column is, for `CategoryBlock` and `RegressionBlock`
(`minifastai.data.blocks`)."""
from __future__ import annotations

from typing import Any

from ..data.blocks import CategoryBlock, RegressionBlock
from ..losses import CrossEntropyLossFlat, MSELossFlat
from .columns import _Source

__all__ = ["CategoryBlock", "RegressionBlock"]


YBlock = CategoryBlock | RegressionBlock


Y_BLOCKS = ("category", "regression")


def _as_block(y_block: Any) -> YBlock | None:
    if y_block is None:
        return None
    if isinstance(y_block, str):
        if y_block not in Y_BLOCKS:
            raise ValueError(f"y_block must be one of {Y_BLOCKS}, CategoryBlock() or RegressionBlock() (or None: "
                             f"a float target is a regression, anything else a classification), got {y_block!r}")
        return CategoryBlock() if y_block == "category" else RegressionBlock()
    if y_block in (CategoryBlock, RegressionBlock):
        return y_block()
    if isinstance(y_block, (CategoryBlock, RegressionBlock)):
        return y_block
    raise TypeError(f"y_block must be CategoryBlock(), RegressionBlock(), 'category' or 'regression', not "
                    f"{y_block!r} (fastai's blocks from fastai itself are not understood: import them from "
                    "minifastai.tabular)")


def _y_kind(src: _Source, y_names: list[str], block: YBlock | None) -> str:
    kinds = [src.kind(y) for y in y_names]
    kind = block.kind if block is not None else ("regression" if all(k == "float" for k in kinds) else "category")
    if kind == "category" and len(y_names) > 1:
        raise ValueError(f"classification takes one target column, got {y_names}; for several float targets "
                         "use y_block=RegressionBlock()")
    if kind == "regression":
        bad = [y for y, k in zip(y_names, kinds) if k not in ("float", "int", "bool")]
        if bad:
            raise ValueError(f"target column(s) {bad} are not numeric, so they cannot be a regression "
                             "target; use y_block=CategoryBlock()")
        if isinstance(block, RegressionBlock) and block.n_out is not None and block.n_out != len(y_names):
            raise ValueError(f"RegressionBlock(n_out={block.n_out}) but there are {len(y_names)} target "
                             f"column(s) {y_names}: a regression has one output per target column")
    return kind


def _default_loss(y_kind: str) -> CrossEntropyLossFlat | MSELossFlat:
    """The task's loss, as fastai's: `CrossEntropyLossFlat()` or `MSELossFlat()`."""
    return CrossEntropyLossFlat() if y_kind == "category" else MSELossFlat()
