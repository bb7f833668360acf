"""TabularPandas as fastai's notebooks use it: without a target, its procs by name, a proc's decode, a loader's
show_batch and test rows without targets; compared with fastai's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from minifastai.basics import noop
from minifastai.tabular import Categorify, FillMissing, Normalize, TabularPandas
from minifastai.tabular.loader import TabularLoader


def _df():
    return pd.DataFrame({"a": [0, 1, 2, 1, 1, 2, 0, 2], "b": [0, 1, np.nan, 1, 2, 3, 4, 5.0],
                         "c": list("babaabab")})


def test_no_target_procs_by_name_and_decode_are_fastais():
    ft = pytest.importorskip("fastai.tabular.core")
    df = _df()
    ours = TabularPandas(df, [Normalize, Categorify, FillMissing, noop], cat_names="a", cont_names="b")
    theirs = ft.TabularPandas(df, [ft.Normalize, ft.Categorify, ft.FillMissing], cat_names="a", cont_names="b")
    assert list(ours.cat_names) == list(theirs.cat_names) == ["a", "b_na"]
    for c in ("a", "b_na", "b"):
        np.testing.assert_allclose(ours[c].to_numpy(dtype=float), theirs[c].to_numpy(dtype=float), rtol=1e-6)
    assert list(ours.procs.categorify["a"]) == list(theirs.procs.categorify["a"]) == ["#na#", 0, 1, 2]
    assert ours.categorify is ours.procs.categorify and ours.ys.shape == (8, 0)
    np.testing.assert_allclose(ours.procs.normalize.decode(ours)["b"], theirs.procs.normalize.decode(theirs)["b"],
                               atol=1e-6)
    assert list(ours.procs.categorify.decode(ours)["a"]) == list(df.a)
    dec = ours.procs.decode(ours)
    assert list(dec["a"]) == list(df.a) and np.allclose(dec["b"], df.b.fillna(df.b.median()))
    assert list(ours[["a", "b"]].columns) == ["a", "b"] and ours.all_cols.equals(ours.items)


def test_test_rows_without_targets_and_a_loaders_show_batch():
    df = _df()
    to = TabularPandas(df, [Categorify, FillMissing, Normalize], "a", "b", y_names="c",
                       splits=[[0, 1, 2, 3, 4, 5], [6, 7]])
    dls = to.dataloaders(bs=4, device="cpu")
    shown = dls.valid.show_batch()
    assert list(shown["c"]) == ["a", "b"] and list(shown["a"]) == [0, 2]
    tst = to.new(df.drop(columns="c").iloc[:3])
    assert len(tst.items) == 3 and "c" not in tst.items and list(tst["a"]) == [1, 2, 3]
    dl = dls.valid.new(tst)
    assert dl.n == 3 and list(dl.show_batch()["a"]) == [0, 1, 2]


def test_bad_inputs_are_clear_errors_and_change_nothing():
    df = _df()
    before = df.copy()
    with pytest.raises(ValueError, match="y_block=.* but no y_names"):
        TabularPandas(df, Categorify, "a", y_block="category")
    to = TabularPandas(df, Categorify, "a")
    with pytest.raises(ValueError, match="has no target"):
        to.dataloaders()
    with pytest.raises(KeyError, match=r"\['zz'\] not input or target columns"):
        to[["a", "zz"]]
    with pytest.raises(AttributeError, match="no proc named 'normalize'"):
        _ = to.procs.normalize
    with pytest.raises(KeyError, match="Categorify has no column 'b'"):
        to.procs.categorify["b"]
    with pytest.raises(ValueError, match="built from bare tensors"):
        TabularLoader([torch.zeros(4, 1), torch.zeros(4, 1)]).show_batch()
    with pytest.raises(TypeError, match="procs must be TabularProc"):
        TabularPandas(df, [Categorify, print], "a")
    assert df.equals(before)
