"""Multi-label tabular targets, as fastai's `TabularPandas(..., y_block=MultiCategoryBlock(encoded=True,
vocab=y_names))`: one 0/1 column per class, float multi-hot targets, `BCEWithLogitsLossFlat`, `accuracy_multi`,
predict/show_results/export."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
import torch

from minifastai import accuracy_multi, load_learner
from minifastai.losses import BCEWithLogitsLossFlat
from minifastai.tabular import (
    Categorify,
    FillMissing,
    MultiCategoryBlock,
    Normalize,
    TabularPandas,
    tabular_learner,
)

Y = ["big", "red", "round"]


def labelled_df(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Three labels: `big` from v, `red` from the colour, `round` from w; bools, ints and floats."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n)
    v, w = rng.normal(0, 1, n), rng.normal(0, 1, n)
    return pd.DataFrame({"colour": colour, "v": v, "w": w, "big": v > 0, "red": (colour == "red").astype(int),
                         "round": (w > 0.3).astype(float)})


def splits(n: int) -> tuple[list[int], list[int]]:
    return list(range(n - n // 5)), list(range(n - n // 5, n))


def make_to(df: pd.DataFrame, **kw) -> TabularPandas:
    args = dict(procs=[Categorify, FillMissing, Normalize], cat_names=["colour"], cont_names=["v", "w"],
                y_names=Y, y_block=MultiCategoryBlock(encoded=True, vocab=Y), splits=splits(len(df)))
    return TabularPandas(df, **{**args, **kw})


def test_targets_are_fastais_multi_hot_floats():
    fastai_tab = pytest.importorskip("fastai.tabular.all")
    df = labelled_df(200)
    df[Y] = df[Y].astype(bool)  # fastai's tensor conversion needs one dtype over the target columns
    to = make_to(df)
    ours = torch.cat([to._train[2], to._valid[2]])
    assert ours.dtype == torch.float32 and ours.shape == (200, 3)
    assert torch.equal(ours, torch.tensor(df[Y].to_numpy(dtype=np.float32)))
    fa = fastai_tab.TabularPandas(df.copy(), [fastai_tab.Categorify, fastai_tab.FillMissing, fastai_tab.Normalize],
                                  ["colour"], ["v", "w"], y_names=Y,
                                  y_block=fastai_tab.MultiCategoryBlock(encoded=True, vocab=Y), splits=splits(200))
    np.testing.assert_array_equal(to.ys.to_numpy(dtype=np.float32), fa.ys.to_numpy(dtype=np.float32))
    dls = to.dataloaders(bs=32)
    fdls = fa.dataloaders(bs=32)
    assert dls.c == fdls.c == 3 and list(dls.vocab) == list(fdls.vocab) == Y
    assert isinstance(dls.loss_func, BCEWithLogitsLossFlat)
    x_cat, x_cont, y = next(iter(dls.train))
    assert y.shape == (32, 3) and y.dtype == torch.float32


def test_trains_to_high_accuracy_multi_and_predicts_bools(tmp_path):
    torch.manual_seed(0)
    df = labelled_df(800)
    dls = make_to(df).dataloaders(bs=64)
    learn = tabular_learner(dls, layers=[32], metrics=accuracy_multi, path=tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        base = learn.validate()[1]
        learn.fit_one_cycle(6, 1e-2)
        loss, acc = learn.validate()
    assert acc > 0.9 > base  # three learnable labels; chance is about 0.5
    row, clas, probs = learn.predict(df.iloc[0])
    assert clas.dtype == torch.bool and clas.shape == (3,) and torch.equal(clas, probs > 0.5)
    assert row.items[Y].dtypes.tolist() == [np.dtype(bool)] * 3
    assert row.items[Y].iloc[0].tolist() == clas.tolist()
    with contextlib.redirect_stdout(io.StringIO()):
        res = learn.show_results(max_n=5)
    assert [f"{c}_pred" for c in Y] == [c for c in res.columns if c.endswith("_pred")] and len(res) == 5
    preds, targs = learn.get_preds()
    assert ((preds > 0.5).float() == targs).float().mean().item() == pytest.approx(acc, abs=1e-6)
    learn.export("multi.pkl")
    back = load_learner(tmp_path / "multi.pkl")
    _, clas2, probs2 = back.predict(df.iloc[0])
    torch.testing.assert_close(probs2, probs)
    assert back.dls.vocab == Y and back.dls.y_kind == "multi_category"


@pytest.mark.parametrize("change, kw, match", [
    (None, dict(y_block=MultiCategoryBlock(encoded=True, vocab=Y[:2])), r"names 2 classes but y_names has 3"),
    (None, dict(y_block=MultiCategoryBlock(vocab=Y)), r"one 0/1 column per class.*encoded=True"),
    (None, dict(y_block=MultiCategoryBlock), r"one 0/1 column per class"),
    ("two", {}, r"column 'red' holds 2\.0 at row 5: MultiCategoryBlock\(encoded=True\) takes 0/1"),
    ("text", {}, r"\['red'\] are not numeric"),
])
def test_bad_multi_label_targets_are_refused_naming_the_column(change, kw, match):
    df = labelled_df(50)
    if change == "two":
        df.loc[5, "red"] = 2
    if change == "text":
        df["red"] = df["red"].map({0: "no", 1: "yes"})
    before = df.copy()
    with pytest.raises(ValueError, match=match):
        make_to(df, **kw)
    pd.testing.assert_frame_equal(df, before)  # the table is never modified
