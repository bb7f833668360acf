"""The one switch for giving freed memory back between the columns of a big table (tabular/memory.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from minifastai.tabular import TabularDataLoaders, memory


class CountTrims:
    def __init__(self) -> None:
        self.calls = 0

    def malloc_trim(self, pad: int) -> int:
        self.calls += 1
        return 1


def big_table_dls(monkeypatch, rows: int = 64):
    monkeypatch.setattr("minifastai.tabular.columns.BIG_TABLE", 8)  # "big" from 8 rows on
    monkeypatch.setattr("minifastai.tabular.processor.BIG_TABLE", 8)
    np.random.seed(0)
    torch.manual_seed(0)  # the same random split every call
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.choice(["x", "y", "z"], rows), "b": rng.normal(size=rows),
                       "y": rng.integers(0, 2, rows)})
    return TabularDataLoaders.from_df(df, cat_names=["a"], cont_names=["b"], y_names="y", bs=16)


@pytest.fixture
def trims(monkeypatch):
    counter = CountTrims()
    monkeypatch.setattr(memory, "_LIBC", counter)
    return counter


def test_big_tables_trim_between_columns_when_on(monkeypatch, trims):
    monkeypatch.delenv("MINIFASTAI_TRIM_MEMORY", raising=False)
    assert memory.trimming()
    big_table_dls(monkeypatch)
    assert trims.calls >= 2  # after encoding the categorical column, and before the tensors


@pytest.mark.parametrize("how", ["constant", "env"])
def test_the_switch_turns_trimming_off_and_changes_nothing_else(monkeypatch, trims, how):
    monkeypatch.delenv("MINIFASTAI_TRIM_MEMORY", raising=False)
    on = big_table_dls(monkeypatch)
    before = trims.calls
    if how == "constant":
        monkeypatch.setattr(memory, "TRIM_MEMORY", False)
    else:
        monkeypatch.setenv("MINIFASTAI_TRIM_MEMORY", "0")
    assert not memory.trimming()
    off = big_table_dls(monkeypatch)
    assert trims.calls == before
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(on.train.tensors, off.train.tensors))
