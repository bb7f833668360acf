"""Tabular targets: which kind the target columns are, for `CategoryBlock`, `RegressionBlock` and
`MultiCategoryBlock(encoded=True, vocab=...)` (one 0/1 column per class; `minifastai.data.blocks`)."""
from __future__ import annotations

from typing import Any

from ..data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from ..losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat
from .columns import _Source

__all__ = ["CategoryBlock", "MultiCategoryBlock", "RegressionBlock"]


YBlock = CategoryBlock | RegressionBlock | MultiCategoryBlock


Y_BLOCKS = ("category", "regression")
Y_KINDS = (*Y_BLOCKS, "multi_category")
"""The kinds of target a tabular processor knows (an export names one)."""


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
    if y_block is MultiCategoryBlock or (isinstance(y_block, MultiCategoryBlock) and not y_block.encoded):
        raise ValueError("a tabular multi-label target is one 0/1 column per class: name them in y_names and pass "
                         "y_block=MultiCategoryBlock(encoded=True, vocab=y_names) (as fastai's; a column of label "
                         "lists is not supported)")
    if isinstance(y_block, (CategoryBlock, RegressionBlock, MultiCategoryBlock)):
        return y_block
    raise TypeError(f"y_block must be CategoryBlock(), RegressionBlock(), MultiCategoryBlock(encoded=True, vocab=...), "
                    f"'category' or 'regression', not "
                    f"{y_block!r} (fastai's blocks from fastai itself are not understood: import them from "
                    "minifastai.tabular)")


def _y_kind(src: _Source, y_names: list[str], block: YBlock | None) -> str:
    kinds = [src.kind(y) for y in y_names]
    kind = block.kind if block is not None else ("regression" if all(k == "float" for k in kinds) else "category")
    if kind == "category" and len(y_names) > 1:
        raise ValueError(f"classification takes one target column, got {y_names}; for several float targets "
                         "use y_block=RegressionBlock()")
    if kind in ("regression", "multi_category"):
        bad = [y for y, k in zip(y_names, kinds) if k not in ("float", "int", "bool")]
        if bad and kind == "regression":
            raise ValueError(f"target column(s) {bad} are not numeric, so they cannot be a regression "
                             "target; use y_block=CategoryBlock()")
        if bad:
            raise ValueError(f"target column(s) {bad} are not numeric: MultiCategoryBlock(encoded=True) takes one 0/1 "
                             "(or bool) column per class")
    if isinstance(block, MultiCategoryBlock) and len(block.vocab or []) != len(y_names):
        raise ValueError(f"MultiCategoryBlock(encoded=True, vocab={block.vocab}) names {len(block.vocab or [])} "
                         f"classes but y_names has {len(y_names)} columns {y_names}: one 0/1 column per class "
                         "(e.g. vocab=y_names)")
    if isinstance(block, RegressionBlock) and block.n_out is not None and block.n_out != len(y_names):
        raise ValueError(f"RegressionBlock(n_out={block.n_out}) but there are {len(y_names)} target "
                         f"column(s) {y_names}: a regression has one output per target column")
    return kind


def _default_loss(y_kind: str) -> CrossEntropyLossFlat | MSELossFlat | BCEWithLogitsLossFlat:
    """The task's loss, as fastai's: `CrossEntropyLossFlat()`, `MSELossFlat()` or, for multi-label targets,
    `BCEWithLogitsLossFlat()`."""
    if y_kind == "multi_category":
        return BCEWithLogitsLossFlat()
    return CrossEntropyLossFlat() if y_kind == "category" else MSELossFlat()
