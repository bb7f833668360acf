"""Hostile and unlucky tabular input (issue 10, items 11 and 14): each probe asserts a clear error raised before
anything changed (the DataFrame, the procs passed in, a trained learner's weights), or a correct result."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from frames import KW, frame, quiet, unchanged  # noqa: E402
from helpers import same_state  # noqa: E402
from helpers import state_copy as fitted_state  # noqa: E402
from torch import nn

from minifastai import load_learner
from minifastai.tabular import (
    Categorify,
    FillMissing,
    Normalize,
    TabularDataLoaders,
    TabularLoader,
    TabularModel,
    rebuild_learner,
    tabular_learner,
)


# ---- item 11: targets and continuous values that would train a silently wrong model --------------------
@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_regression_target_is_refused(bad):
    df = frame()
    df.loc[[3, 17], "y"] = bad
    procs = [Categorify(), FillMissing(), Normalize()]
    with unchanged(df, *procs), pytest.raises(ValueError, match=r"regression target 'y' has 2 infinite value\(s\) "
                                                               r"\(index \[3, 17\]\): a regression cannot learn"):
        TabularDataLoaders.from_df(df, procs=procs, y_names="y", **KW)
    # and new rows with an infinite target for a trained learner: refused before predicting anything
    dls = TabularDataLoaders.from_df(frame(), y_names="y", **KW)
    with pytest.raises(ValueError, match="infinite value"):
        dls.test_dl(df)


def test_infinite_continuous_value_says_fillmissing_fills_nan_only():
    df = frame()
    df.loc[5, "x"] = np.inf
    procs = [Categorify(), FillMissing(), Normalize()]
    msg = (r"continuous column 'x' has 1 infinite value\(s\) \(index \[5\]\): FillMissing fills missing values "
           r"\(NaN\) only; to have it fill these, first write df\['x'\] = df\['x'\]\.replace\(\[np\.inf, -np\.inf\], "
           r"np\.nan\)")
    with unchanged(df, *procs), pytest.raises(ValueError, match=msg):
        TabularDataLoaders.from_df(df, procs=procs, y_names="label", **KW)
    # the suggested fix works: FillMissing fills the value and flags it
    fixed = df.assign(x=df["x"].replace([np.inf, -np.inf], np.nan))
    dls = TabularDataLoaders.from_df(fixed, y_names="label", **KW)
    assert dls.cat_names == ["c", "x_na"] and torch.isfinite(dls.train.tensors[1]).all()
    learn = tabular_learner(dls, layers=[4])
    with pytest.raises(ValueError, match="continuous column 'x' has 1 infinite"):
        learn.predict(df.iloc[5])
    with pytest.raises(ValueError, match="continuous column 'x' has 1 infinite"):
        dls.test_dl(df)


def test_constant_training_column_is_centred_not_divided_by_1e_7():
    df = frame()
    df["k"] = 3.0
    df.loc[35, "k"] = 5.0  # a validation row differs
    with pytest.warns(UserWarning, match=r"continuous column 'k' is constant in the training rows \(every value is "
                                         r"3\): it carries no information; Normalize subtracts the mean and does "
                                         r"not divide"):
        dls = TabularDataLoaders.from_df(df, y_names="label", **{**KW, "cont_names": ["x", "k"]})
    norm = dls.procs[2]
    assert norm.means["k"] == 3.0 and norm.stds["k"] == 1.0
    assert dls.train.tensors[1][:, 1].abs().max() == 0
    assert dls.valid.tensors[1][5, 1].item() == pytest.approx(2.0)  # 5 - 3, not 2e7
    # other columns keep fastai's std + 1e-7
    assert norm.stds["x"] == pytest.approx(df.x.iloc[:30].std(ddof=0) + 1e-7, rel=1e-6)


def test_all_missing_training_column_warns_and_stays_finite():
    df = frame()
    df["gone"] = np.nan
    df.loc[33, "gone"] = 100.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dls = TabularDataLoaders.from_df(df, y_names="label", **{**KW, "cont_names": ["x", "gone"]})
    messages = [str(w.message) for w in caught]
    assert any("'gone' has no values in the training rows (all 30 missing)" in m for m in messages), messages
    assert any("'gone' is constant in the training rows" in m for m in messages), messages
    x = torch.cat([dls.train.tensors[1], dls.valid.tensors[1]])
    assert torch.isfinite(x).all() and x.abs().max() < 1000  # 100 - 0, never 1e9
    assert dls.classes["gone_na"] == ["#na#", True]  # every training row was missing


def test_regression_targets_never_broadcast():
    dls = TabularDataLoaders.from_df(frame(), y_names="y", **KW)
    learn = tabular_learner(dls, layers=[4], loss_func=nn.MSELoss())  # a plain torch MSE works: same shapes
    quiet(learn.fit, 1)
    preds, targs = learn.get_preds()
    assert preds.shape == targs.shape == (10, 1)
    xb = dls.valid.tensors
    learn.model.eval()
    with torch.no_grad():
        out = learn.model(xb[0].long(), xb[1])
    assert float(learn.loss_func(out, xb[2])) == pytest.approx(float(((out - xb[2]) ** 2).mean()), rel=1e-6)
    # the default loss flattens both and refuses different sizes with both shapes
    with pytest.raises(ValueError, match=r"predictions of shape \(4, 2\) and targets of shape \(4, 1\)"):
        dls.loss_func(torch.zeros(4, 2), torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"n_out=2 but the regression has 1 target column"):
        tabular_learner(dls, n_out=2)


def test_classification_with_an_unflattening_loss_is_refused():
    dls = TabularDataLoaders.from_df(frame(), y_names="label", **KW)
    with pytest.raises(ValueError, match=r"targets have shape \(batch, 1\).*nn\.CrossEntropyLoss wants \(batch,\)"):
        tabular_learner(dls, loss_func=nn.CrossEntropyLoss())


def test_training_on_batches_without_targets_raises():
    dls = TabularDataLoaders.from_df(frame(), y_names="label", **KW)
    no_y = dls.test_dl(frame().drop(columns="label"))
    assert len(no_y.tensors) == 2
    with pytest.raises(ValueError, match="the training loader has no targets"):
        TabularDataLoaders(no_y, dls.valid, dls.processor, device="cpu")
    learn = tabular_learner(dls, layers=[4])
    before = fitted_state(learn)
    learn.dls.train = no_y  # swapped in after the learner was made
    with pytest.raises(ValueError, match="dls.train yields batches without targets"):
        quiet(learn.fit_one_cycle, 1)
    assert same_state(fitted_state(learn), before) and learn.opt is None


# ---- item 14: tiny tables -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n, kw", [(1, {}), (1, {"valid_pct": 0.0}), (2, {"valid_idx": [0]}), (5, {"valid_pct": 0.8})])
def test_one_training_row_is_a_clear_error(n, kw):
    df = frame(n)
    procs = [Categorify(), FillMissing(), Normalize()]
    with unchanged(df, *procs), pytest.raises(ValueError, match=r"only 1 training row \(of \d\): a model cannot learn "
                                                               r"from one row, and BatchNorm cannot train"):
        TabularDataLoaders.from_df(df, procs=procs, cat_names=["c"], cont_names=["x"], y_names="label", device="cpu",
                                   **kw)


def test_batch_size_one_with_batchnorm_is_refused():
    dls = TabularDataLoaders.from_df(frame(), y_names="label", **{**KW, "bs": 1})
    with pytest.raises(ValueError, match=r"a batch of one row \(bs=1, 30 rows\) and the model has BatchNorm"):
        tabular_learner(dls)
    learn = tabular_learner(dls, layers=[4], use_bn=False, bn_cont=False)  # without BatchNorm, bs=1 trains
    quiet(learn.fit, 1)
    assert len(learn.recorder.losses) == 30


def test_two_rows_train():
    df = frame(3)
    dls = TabularDataLoaders.from_df(df, cat_names=["c"], cont_names=["x"], y_names="y", valid_idx=[2], device="cpu")
    learn = tabular_learner(dls, layers=[4])
    quiet(learn.fit, 2)
    assert torch.isfinite(learn.get_preds()[0]).all()


# ---- splits ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("valid_idx, msg", [
    ([3, 3, 5], r"valid_idx lists rows \[3\] more than once"),
    ([1, 40], r"valid_idx holds positions outside \[0, 40\): they are row positions"),
    (np.ones(39, dtype=bool), r"a boolean valid_idx must have one entry per row \(40\)"),
    (["a"], r"valid_idx must hold integer row positions"),
    (range(40), r"every one of the 40 rows went to the validation set"),
])
def test_bad_valid_idx(valid_idx, msg):
    df = frame()
    with unchanged(df), pytest.raises((ValueError, TypeError), match=msg):
        TabularDataLoaders.from_df(df, cat_names=["c"], cont_names=["x"], y_names="label", valid_idx=valid_idx,
                                   device="cpu")


def test_overlapping_splits_are_refused():
    from minifastai.tabular import TabularPandas

    df = frame()
    with unchanged(df), pytest.raises(ValueError, match=r"rows \[5\] are in both the training and the validation"):
        TabularPandas(df, [Categorify], ["c"], ["x"], y_names="label", splits=(range(0, 30), [5, 35]))


# ---- exports: a crafted file must not allocate more than its weights ------------------------------------------
def exported_state(tmp_path) -> dict:
    dls = TabularDataLoaders.from_df(frame(), y_names="label", **KW)
    learn = tabular_learner(dls, layers=[8])
    path = learn.export(tmp_path / "t.pth")
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("change", [
    lambda cfg: cfg.update(layers=[16384, 16384]),  # 1 GB of weights
    lambda cfg: cfg.update(out_sz=2_000_000),
    lambda cfg: cfg["emb_szs"].__setitem__(0, [10**9, 2]),  # an 8 GB embedding
])
def test_crafted_model_sizes_are_refused_before_building(tmp_path, change):
    """load_learner plans the model on the meta device and compares it with the stored weights first."""
    from minifastai import load_learner
    from minifastai.persist import with_checksum

    state = exported_state(tmp_path)
    state.pop("checksum")
    change(state["builder"]["model"])
    path = tmp_path / "crafted.pkl"
    torch.save(with_checksum(state), path)
    with pytest.raises(ValueError, match=r"crafted\.pkl describes a model \(minifastai\.tabular\) that does not fit "
                                         r"the weights stored in it"):
        load_learner(path)


@pytest.mark.parametrize("change, msg", [
    (lambda cfg: cfg.update(layers=[-5]), r"\['layers'\]\[0\] must be a non-negative int, got -5"),
    (lambda cfg: cfg.update(n_cont="2"), r"\['n_cont'\] must be a non-negative int"),
    (lambda cfg: cfg.update(act_cls="os.system"), r"has entries .*'act_cls'"),
])
def test_crafted_model_config_is_refused_before_building(tmp_path, change, msg):
    state = exported_state(tmp_path)
    change(state["builder"]["model"])
    with pytest.raises(ValueError, match=msg):
        rebuild_learner(state)


def test_crafted_processor_state_is_refused(tmp_path):
    state = exported_state(tmp_path)
    state["dls"]["tabular"]["procs"][0]["name"] = "Lambda"
    with pytest.raises(ValueError, match=r"unknown proc 'Lambda' in the export"):
        rebuild_learner(state)
    state = exported_state(tmp_path)
    state["dls"]["tabular"]["y_kind"] = "code"
    with pytest.raises(ValueError, match=r"unknown target kind 'code'"):
        rebuild_learner(state)


def test_export_round_trip_still_loads(tmp_path):
    dls = TabularDataLoaders.from_df(frame(), y_names="label", **KW)
    learn = tabular_learner(dls, layers=[8])
    loaded = load_learner(learn.export(tmp_path / "t.pth"))
    assert isinstance(loaded.model, TabularModel)
    row = frame().iloc[0]
    torch.testing.assert_close(loaded.predict(row)[2], learn.predict(row)[2])


def test_test_dl_with_wrong_types_names_the_column():
    dls = TabularDataLoaders.from_df(frame(), y_names="label", **KW)
    bad = frame().assign(x="big")
    with pytest.raises(ValueError, match=r"continuous column 'x' is not numeric.*list it in cat_names"):
        dls.test_dl(bad)
    with pytest.raises(ValueError, match=r"column\(s\) \['w'\] not in the DataFrame"):
        dls.test_dl(frame().drop(columns="w"))
    loader = TabularLoader([torch.zeros(3, 1)], bs=2)
    assert len(loader) == 2


def test_a_column_value_an_export_cannot_store_is_named_before_anything_is_written(tmp_path):
    """One `check_plain` (persist's) checks every export: a Decimal category names its entry and what to do."""
    import decimal

    df = frame()
    df["c"] = [decimal.Decimal(i % 3) for i in range(len(df))]
    learn = tabular_learner(TabularDataLoaders.from_df(df, y_names="label", **KW), layers=[4])
    with pytest.raises(TypeError, match=r"state\['procs'\]\[1\]\['state'\]\['classes'\]\['c'\]\[1\] is a Decimal "
                                        r"\(Decimal\('0'\)\).*convert that column to str, int or float"):
        learn.export(tmp_path / "export.pkl")
    assert list(tmp_path.iterdir()) == []
