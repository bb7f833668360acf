"""Which rows validate: fastai's `RandomSplitter` and `IndexSplitter`."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

Splitter = Callable[[Any], tuple[np.ndarray, np.ndarray]]


def RandomSplitter(valid_pct: float = 0.2, seed: int | None = None) -> Splitter:  # noqa: N802 (fastai's name)
    """fastai's splitter: `splitter(items)` gives (train, valid) row positions, a random `valid_pct` of the
    rows for validation. The same seed gives the same rows as fastai's `RandomSplitter` (a `torch.randperm`);
    without a seed, torch's global RNG decides (`torch.manual_seed`)."""
    if not 0 <= valid_pct < 1:
        raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct}")

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        n = len(o)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        perm = torch.randperm(n, generator=gen).numpy()
        cut = int(valid_pct * n)
        return perm[cut:], perm[:cut]

    return _inner


def IndexSplitter(valid_idx: Sequence[int] | np.ndarray) -> Splitter:  # noqa: N802 (fastai's name)
    """fastai's splitter: rows `valid_idx` (positions, as in `df.iloc`, or a boolean mask) are the validation
    set; the others are the training set."""

    def _inner(o: Any) -> tuple[np.ndarray, np.ndarray]:
        valid = _row_mask(valid_idx, len(o), "valid_idx")
        return np.flatnonzero(~valid), np.flatnonzero(valid)

    return _inner


def _row_mask(idx: Any, n: int, what: str) -> np.ndarray:
    """A boolean mask of the rows in `idx`: positions (negative ones count from the end, each row once) or
    a boolean mask."""
    v = np.asarray(idx)
    if v.dtype == bool:
        if v.shape != (n,):
            raise ValueError(f"a boolean {what} must have one entry per row ({n}), got shape {v.shape}")
        return v
    mask = np.zeros(n, dtype=bool)
    if v.size == 0:
        return mask
    if v.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer row positions (as in df.iloc) or be a boolean mask, "
                        f"got dtype {v.dtype}")
    v = v.reshape(-1)
    lo, hi = int(v.min()), int(v.max())
    if lo < -n or hi >= n:
        raise ValueError(f"{what} holds positions outside [0, {n}): they are row positions (as in df.iloc), "
                         "not index labels")
    mask[v] = True
    if int(mask.sum()) != len(v):
        counts = np.bincount(v % n, minlength=n)
        raise ValueError(f"{what} lists rows {np.flatnonzero(counts > 1)[:5].tolist()} more than once")
    return mask


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
    train = _row_mask(splits[0], n, "splits[0] (training rows)")
    valid = _row_mask(splits[1], n, "splits[1] (validation rows)")
    both = np.flatnonzero(train & valid)
    if len(both):
        raise ValueError(f"rows {both[:5].tolist()} are in both the training and the validation split")
    return np.flatnonzero(train), np.flatnonzero(valid)
