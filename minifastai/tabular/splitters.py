"""Which rows validate: fastai's splitters (`minifastai.data.transforms`), and the check of explicit `splits`."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..data.transforms import IndexSplitter, RandomSplitter, Splitter, row_mask

__all__ = ["IndexSplitter", "RandomSplitter", "Splitter"]


def _check_splits(splits: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows), each in the table's order (reading them is sequential, and fast)."""
    if splits is None:
        return np.arange(n), np.zeros(0, np.int64)
    if callable(splits):
        raise TypeError("splits takes the split itself, e.g. splits=RandomSplitter(0.2)(range(len(df))), "
                        "not the splitter")
    splits = list(splits)
    if len(splits) != 2:
        raise ValueError(f"splits must be (train_idx, valid_idx), got {len(splits)} parts")
    train = row_mask(splits[0], n, "splits[0] (training rows)")
    valid = row_mask(splits[1], n, "splits[1] (validation rows)")
    both = np.flatnonzero(train & valid)
    if len(both):
        raise ValueError(f"rows {both[:5].tolist()} are in both the training and the validation split")
    return np.flatnonzero(train), np.flatnonzero(valid)
