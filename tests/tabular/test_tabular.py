"""Tabular: procs fitted on training rows, the tensor loader, the model, predict/export, and errors."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minifastai import accuracy, load_learner
from minifastai.tabular import (
    NA,
    Categorify,
    CategoryBlock,
    FillMissing,
    Normalize,
    RegressionBlock,
    TabularDataLoaders,
    TabularLoader,
    TabularModel,
    TabularRow,
    emb_sz_rule,
    get_emb_sz,
    sigmoid_range,
    tabular_learner,
)


def small_df() -> pd.DataFrame:
    """8 rows; rows 6 and 7 are the validation rows in most tests."""
    return pd.DataFrame({
        "color": ["red", "blue", None, "blue", "green", "red", "purple", "blue"],
        "size": [1.0, 2.0, np.nan, 4.0, 6.0, 8.0, np.nan, 100.0],
        "weight": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0],
        "label": ["b", "a", "a", "b", "a", "b", "c", "a"],
    })


def small_dls(**kw) -> TabularDataLoaders:
    args = dict(cat_names=["color"], cont_names=["size", "weight"], y_names="label", valid_idx=[6, 7], bs=4,
                device="cpu")
    with pytest.warns(UserWarning, match=r"class\(es\) \['c'\] of target 'label' occur only in the validation rows"):
        return TabularDataLoaders.from_df(small_df(), **{**args, **kw})


def quiet(f, *args, **kw):
    with contextlib.redirect_stdout(io.StringIO()):
        return f(*args, **kw)


def learnable_df(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Class = the category, blurred by noise; a continuous column also carries it; some missing values."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 3, n)
    df = pd.DataFrame({"kind": np.array(["x", "y", "z"])[k], "noise": rng.choice(["p", "q"], n),
                       "v": k + rng.normal(0, 0.3, n), "w": rng.normal(0, 1, n),
                       "target": np.array(["A", "B", "C"])[k]})
    df.loc[rng.random(n) < 0.1, "v"] = np.nan
    return df


# ---- procs --------------------------------------------------------------------------------------
def test_procs_are_fitted_on_training_rows_only():
    dls = small_dls()
    fill, cat, norm = dls.procs
    assert [type(p) for p in dls.procs] == [FillMissing, Categorify, Normalize]  # run order, not given order
    # training rows 0..5: size [1, 2, nan, 4, 6, 8] -> median of [1, 2, 4, 6, 8] = 4 (all rows would give 5)
    assert fill.fill["size"] == 4.0
    assert fill.fill["weight"] == 35.0
    assert fill.na_cols == ["size"]
    # vocab from training rows: 'purple' (row 6, validation only) is not in it
    assert dls.classes["color"] == [NA, "blue", "green", "red"]
    assert dls.classes["size_na"] == [NA, False, True]
    # Normalize on the filled training values: size [1, 2, 4, 4, 6, 8]
    size = np.array([1, 2, 4, 4, 6, 8.0])
    assert norm.means["size"] == pytest.approx(size.mean())
    assert norm.stds["size"] == pytest.approx(size.std(ddof=0) + 1e-7)
    assert norm.means["weight"] == pytest.approx(35.0)
    assert norm.stds["weight"] == pytest.approx(np.arange(10, 70, 10).std(ddof=0) + 1e-7)


def test_encoded_values_of_every_row():
    dls = small_dls()
    assert dls.cat_names == ["color", "size_na"]
    assert dls.cont_names == ["size", "weight"]
    x_cat, x_cont, y = dls.valid.tensors  # rows 6, 7
    # 'purple' was never seen in training -> 0 ('#na#'); row 6 size is missing -> size_na True (code 2)
    assert x_cat.tolist() == [[0, 2], [1, 1]]
    m, s = dls.procs[2].means["size"], dls.procs[2].stds["size"]
    assert x_cont[:, 0].tolist() == pytest.approx([(4 - m) / s, (100 - m) / s], rel=1e-5)
    assert dls.vocab == ["a", "b", "c"]  # every class of the target, sorted
    assert y.tolist() == [[2], [0]]  # (rows, 1), as fastai's
    tx_cat, tx_cont, ty = dls.train.tensors
    assert tx_cat[:, 0].tolist() == [3, 1, 0, 1, 2, 3]  # red, blue, None -> #na#, blue, green, red
    assert tx_cat[:, 1].tolist() == [1, 1, 2, 1, 1, 1]
    assert tx_cont[:, 0].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert tx_cont[:, 0].std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)


def test_batch_types_and_n_inp():
    dls = small_dls()
    x_cat, x_cont, y = next(iter(dls.train))
    assert (x_cat.dtype, x_cont.dtype, y.dtype) == (torch.int64, torch.float32, torch.int64)
    assert x_cat.shape == (4, 2) and x_cont.shape == (4, 2) and y.shape == (4, 1)
    assert dls.n_inp == 2
    xb, yb = dls.split_batch((x_cat, x_cont, y))
    assert len(xb) == 2 and len(yb) == 1
    ds = dls.train.dataset  # fastai's `len(dls.train.dataset)`: the training rows
    assert len(ds) == dls.train.n and len(dls.valid.dataset) == dls.valid.n
    row = ds[0]
    assert len(row) == 3 and torch.equal(row[1], dls.train.tensors[1][0]) and row[0].shape == (2,)


def test_loader_dataset_shows_the_processed_rows_as_fastais_tabularpandas():
    dls = small_dls()
    items = dls.valid.dataset.items  # fastai: dls.valid.dataset is a TabularPandas; its rows, processed
    assert list(items.columns) == [*dls.cat_names, *dls.cont_names, "label"]
    assert items["color"].tolist() == dls.valid.tensors[0][:, 0].tolist()  # codes, not names
    assert items["size"].tolist() == pytest.approx(dls.valid.tensors[1][:, 0].tolist())  # normalized values
    assert dls.valid.dataset.iloc[1]["weight"] == pytest.approx(dls.valid.tensors[1][1, 1].item())
    tdl = dls.test_dl(pd.DataFrame({"color": ["green", "teal"], "size": [6.0, np.nan], "weight": [50.0, 0.0]}))
    rows = tdl.dataset
    assert len(rows) == 2 and list(rows.ys.columns) == []  # no target column given
    green = dls.classes["color"].index("green")
    assert rows.iloc[0]["color"] == green and rows.iloc[1]["color"] == 0  # an unseen category is #na# (0)
    assert rows.iloc[1]["size_na"] == dls.classes["size_na"].index(True)
    bare = TabularLoader(dls.train.tensors, bs=2)
    with pytest.raises(ValueError, match="built from bare tensors: they have no column names"):
        _ = bare.dataset.items
    assert len(bare.dataset) == dls.train.n  # still a TensorDataset


def test_categorical_dtype_keeps_its_order_and_fill_strategies():
    df = small_df()
    df["color"] = pd.Categorical(df["color"], categories=["red", "green", "blue", "purple"])
    with pytest.warns(UserWarning, match="occur only in the validation rows"):
        dls = TabularDataLoaders.from_df(
            df, cat_names=["color"], cont_names=["size"], y_names="label",
            procs=[Categorify, FillMissing(fill_strategy="constant", fill_val=-1)], valid_idx=[6, 7], device="cpu")
    assert dls.classes["color"] == [NA, "red", "green", "blue", "purple"]
    assert dls.train.tensors[0][:, 0].tolist() == [1, 3, 0, 3, 2, 1]
    assert dls.procs[0].fill["size"] == -1.0
    assert dls.train.tensors[1][2, 0].item() == -1.0  # no Normalize: raw values
    mode = FillMissing(fill_strategy="mode")
    dls = TabularDataLoaders.from_df(pd.DataFrame({"a": [1.0, 2.0, 2.0, np.nan, 3.0], "y": [0, 1, 0, 1, 0]}),
                                     cont_names=["a"], y_names="y", procs=[mode, Categorify], valid_idx=[],
                                     device="cpu")
    assert dls.procs[0].fill["a"] == 2.0
    # the proc given holds the fit (fastai's); dls.procs is the table's own copy, which a later fit leaves alone
    assert mode.fill == {"a": 2.0} and mode.na_dict == {"a": 2.0} and dls.procs[0] is not mode
    TabularDataLoaders.from_df(pd.DataFrame({"a": [5.0, 5.0, np.nan, 7.0], "y": [0, 1, 0, 1]}), cont_names=["a"],
                               y_names="y", procs=[mode], valid_idx=[], device="cpu")
    assert mode.fill == {"a": 5.0} and dls.procs[0].fill == {"a": 2.0}
    with pytest.raises(ValueError, match="fill_strategy must be one of"):
        FillMissing("mean")


# ---- loader -------------------------------------------------------------------------------------
def test_every_training_row_once_per_epoch_in_a_new_order():
    n = 203
    df = pd.DataFrame({"row": np.arange(n, dtype=float), "y": np.arange(n) % 2})
    dls = TabularDataLoaders.from_df(df, cont_names=["row"], y_names="y", procs=[], valid_pct=0.2, seed=1, bs=16,
                                     device="cpu")
    train_rows = sorted(dls.train_idx.tolist())
    assert len(train_rows) == n - int(0.2 * n) and not set(train_rows) & set(dls.valid_idx.tolist())
    orders = []
    for _ in range(3):
        seen = torch.cat([b[1][:, 0] for b in dls.train]).long().tolist()
        assert sorted(seen) == train_rows  # each row exactly once
        orders.append(seen)
    assert orders[0] != orders[1] != orders[2]
    valid_seen = torch.cat([b[1][:, 0] for b in dls.valid]).long().tolist()
    assert valid_seen == sorted(dls.valid_idx.tolist())  # validation: every row, in order
    # the seed fixes the split; a different seed changes it
    kw = dict(cont_names=["row"], y_names="y", procs=[], valid_pct=0.2, device="cpu")
    again = TabularDataLoaders.from_df(df, seed=1, **kw)
    other = TabularDataLoaders.from_df(df, seed=2, **kw)
    assert again.valid_idx.tolist() == dls.valid_idx.tolist() != other.valid_idx.tolist()


def test_loader_batch_sizes_and_single_row_remainder():
    t = [torch.arange(33), torch.arange(33).float()]
    assert [len(b[0]) for b in TabularLoader(t, bs=8, shuffle=True)] == [8, 8, 8, 9]  # no batch of one in training
    assert [len(b[0]) for b in TabularLoader(t, bs=8)] == [8, 8, 8, 8, 1]
    assert [len(b[0]) for b in TabularLoader(t, bs=10, shuffle=True)] == [10, 10, 10, 3]
    dl = TabularLoader(t, bs=8, drop_last=True, shuffle=True)
    assert len(dl) == 4 and sum(len(b[0]) for b in dl) == 32
    with pytest.raises(ValueError, match="bs must be a positive int"):
        TabularLoader(t, bs=0)


# ---- model --------------------------------------------------------------------------------------
def test_emb_sz_rule_and_get_emb_sz():
    assert [emb_sz_rule(n) for n in (2, 3, 4, 10, 100, 1001, 10_000, 100_000)] == [2, 3, 3, 6, 21, 77, 278, 600]
    dls = small_dls()
    assert get_emb_sz(dls) == [(4, 3), (3, 3)]
    assert get_emb_sz(dls, {"color": 10}) == [(4, 10), (3, 3)]
    with pytest.raises(ValueError, match=r"emb_szs names \['colour'\]"):
        get_emb_sz(dls, {"colour": 10})


def test_tabular_model_layers_and_shapes():
    m = TabularModel([(4, 3), (3, 2)], n_cont=2, out_sz=5, layers=[8, 6], ps=[0.1, 0.2], embed_p=0.05)
    kinds = [type(x).__name__ for x in m.layers]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert m.layers[0].in_features == 3 + 2 + 2 and m.layers[0].bias is None and m.layers[-1].bias is not None
    assert [d.p for d in m.layers if isinstance(d, nn.Dropout)] == [0.1, 0.2] and m.emb_drop.p == 0.05
    assert m(torch.tensor([[1, 2], [0, 0]]), torch.randn(2, 2)).shape == (2, 5)
    only_cont = TabularModel([], n_cont=3, out_sz=1, layers=[4])
    assert only_cont(torch.zeros(2, 0, dtype=torch.long), torch.randn(2, 3)).shape == (2, 1)
    only_cat = TabularModel([(5, 2)], n_cont=0, out_sz=2, layers=[4])
    assert only_cat(torch.tensor([[1], [4]]), torch.zeros(2, 0)).shape == (2, 2)
    ranged = TabularModel([], n_cont=1, out_sz=1, layers=[4], y_range=(2.0, 3.0)).eval()
    out = ranged(torch.zeros(64, 0, dtype=torch.long), torch.randn(64, 1))
    assert ((out >= 2.0) & (out <= 3.0)).all() and out.std() > 0
    assert sigmoid_range(torch.tensor([0.0]), -1, 5).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="ps has 1 dropout values for 2 hidden layers"):
        TabularModel([], 1, 1, [4, 4], ps=[0.1])


# ---- learner ------------------------------------------------------------------------------------
def test_one_layer_group_and_the_one_cycle_shape():
    dls = TabularDataLoaders.from_df(learnable_df(), cat_names=["kind", "noise"], cont_names=["v", "w"],
                                     y_names="target", valid_pct=0.25, seed=0, bs=32, device="cpu")
    learn = tabular_learner(dls, layers=(16, 8), metrics=accuracy)
    assert learn.n_groups == 1 and learn.group_names == ["all"]
    pred, targ = torch.randn(4, 3), torch.tensor([[0], [2], [1], [2]])  # fastai's CrossEntropyLossFlat
    assert learn.loss_func(pred, targ).item() == pytest.approx(F.cross_entropy(pred, targ.view(-1)).item())
    assert "1 layer group(s)" in learn.summary() and "float LR is the natural choice" in learn.summary()
    quiet(learn.fit_one_cycle, 4, 1e-2)
    lrs = learn.recorder.lrs
    assert lrs.shape == (4 * len(dls.train), 1)
    peak = int(lrs[:, 0].argmax())
    assert lrs[:, 0].max() == pytest.approx(1e-2, rel=1e-3)
    assert peak == pytest.approx(0.25 * len(lrs), abs=1)  # cycles up then down over time
    assert lrs[0, 0] == pytest.approx(1e-2 / 25) and lrs[-1, 0] < 1e-4
    assert (np.diff(lrs[: peak + 1, 0]) > 0).all() and (np.diff(lrs[peak:, 0]) < 0).all()
    preds, targs = learn.get_preds()
    assert (preds.argmax(1) == targs[:, 0]).float().mean() >= 0.9  # the class is in 'kind'


def test_regression_from_float_target_with_y_range():
    df = learnable_df()
    df["amount"] = df["v"].fillna(1.0) * 2 + 10
    dls = TabularDataLoaders.from_df(df, cat_names=["kind"], cont_names=["w"], y_names="amount", valid_pct=0.25,
                                     seed=0, bs=32, device="cpu")
    assert dls.y_kind == "regression" and dls.vocab is None and dls.c == 1
    y = next(iter(dls.train))[2]
    assert y.dtype == torch.float32 and y.shape == (32, 1)
    learn = tabular_learner(dls, layers=(16,), y_range=(8.0, 16.0))
    pred, targ = torch.randn(4, 1), torch.randn(4, 1)  # fastai's MSELossFlat
    assert learn.loss_func(pred, targ).item() == pytest.approx(F.mse_loss(pred, targ).item())
    assert learn.activation_name is None
    quiet(learn.fit_one_cycle, 8, 3e-2)
    row, pred, out = learn.predict(df.iloc[0])
    value = row.items["amount"].iloc[0]
    assert 8.0 < value < 16.0 and pred.shape == (1,) and float(out[0]) == pytest.approx(value)
    preds, targs = learn.get_preds()
    assert preds.shape == targs.shape == (100, 1)
    assert float(((preds - targs) ** 2).mean()) < float(targs.var()) / 2  # learned something
    with pytest.raises(ValueError, match=r"y_range must be \(low, high\) with low < high"):
        tabular_learner(dls, y_range=(3, 1))


def test_y_block_overrides_the_dtype():
    df = pd.DataFrame({"a": ["x", "y"] * 10, "n": np.arange(20) % 4, "f": np.arange(20) / 2})
    kw = dict(cat_names=["a"], cont_names=[], device="cpu")
    assert TabularDataLoaders.from_df(df, y_names="n", **kw).y_kind == "category"
    for block in ("regression", RegressionBlock(), RegressionBlock):
        reg = TabularDataLoaders.from_df(df, y_names="n", y_block=block, **kw)
        assert reg.y_kind == "regression" and reg.train.tensors[2].dtype == torch.float32
    for block in ("category", CategoryBlock(), CategoryBlock):
        with pytest.warns(UserWarning, match="occur only in the validation rows"):  # 20 rows, 20 classes
            cat = TabularDataLoaders.from_df(df, y_names="f", y_block=block, **kw)
        assert cat.y_kind == "category" and cat.vocab == sorted(set(df.f.tolist()))
    with pytest.raises(ValueError, match="y_block must be one of"):
        TabularDataLoaders.from_df(df, y_names="f", y_block="float", **kw)
    with pytest.raises(ValueError, match=r"target column\(s\) \['a'\] are not numeric"):
        TabularDataLoaders.from_df(df, cont_names=["f"], y_names="a", y_block="regression", device="cpu")


# ---- inference ----------------------------------------------------------------------------------
def trained_learner():
    df = learnable_df()
    dls = TabularDataLoaders.from_df(df, cat_names=["kind", "noise"], cont_names=["v", "w"], y_names="target",
                                     valid_pct=0.25, seed=0, bs=32, device="cpu")
    learn = tabular_learner(dls, layers=(16, 8), metrics=accuracy)
    quiet(learn.fit_one_cycle, 3, 1e-2)
    return df, learn


def test_test_dl_with_unseen_category_missing_value_and_no_target():
    df, learn = trained_learner()
    dls = learn.dls
    new = pd.DataFrame({"kind": ["y", "never-seen", None], "noise": ["p", "q", "p"], "v": [np.nan, 2.0, 0.0],
                        "w": [0.0, 0.0, 0.0]})
    dl = dls.test_dl(new)
    batch = next(iter(dl))
    assert len(batch) == 2  # no target column -> inputs only
    x_cat, x_cont = batch
    assert dls.cat_names == ["kind", "noise", "v_na"]
    assert x_cat[:, 0].tolist() == [2, 0, 0]  # unseen and missing -> '#na#'
    assert x_cat[:, 2].tolist() == [2, 1, 1]  # v_na flag
    fill, norm = dls.procs[0].fill["v"], dls.procs[2]
    assert x_cont[0, 0].item() == pytest.approx((fill - norm.means["v"]) / norm.stds["v"], rel=1e-5)
    preds, targs = learn.get_preds(dl=dl)
    assert preds.shape == (3, 3) and targs is None
    assert torch.allclose(preds.sum(1), torch.ones(3))
    with_y = dls.test_dl(df.iloc[:50])
    assert len(next(iter(with_y))) == 3
    preds, targs = learn.get_preds(dl=with_y)
    assert targs.tolist() == dls.processor.encode_y(df.iloc[:50]).tolist()
    assert len(next(iter(dls.test_dl(df.iloc[:50], with_labels=False)))) == 2
    with pytest.raises(ValueError, match=r"column\(s\) \['w'\] not in the DataFrame"):
        dls.test_dl(new.drop(columns="w"))
    with pytest.raises(ValueError, match="labels the model does not know"):
        dls.test_dl(df.iloc[:5].assign(target="Z"))
    with pytest.raises(ValueError, match="missing value.*or pass with_labels=False"):
        dls.test_dl(df.iloc[:5].assign(target=None))
    assert len(next(iter(dls.test_dl(df.iloc[:5].assign(target=None), with_labels=False)))) == 2


def test_predict_on_a_row_in_every_form():
    df, learn = trained_learner()
    row = df.iloc[0]
    decoded, idx, probs = learn.predict(row)
    assert isinstance(decoded, TabularRow) and idx.shape == () and idx.dtype == torch.int64
    assert decoded.items["target"].iloc[0] == learn.dls.vocab[idx]  # the prediction, in the target column
    assert probs.shape == (3,) and int(probs.argmax()) == idx and probs.sum().item() == pytest.approx(1.0)
    for other in (df.iloc[[0]], row.to_dict(), row.drop("target")):
        d2, i2, p2 = learn.predict(other)
        assert d2.items.equals(decoded.items) and i2 == idx and torch.allclose(p2, probs, atol=1e-6)
    # predicting matches get_preds on the same rows
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(df.iloc[:1]))
    assert torch.allclose(preds[0], probs, atol=1e-6)
    with pytest.raises(ValueError, match="predict takes one row"):
        learn.predict(df.iloc[:2])
    with pytest.raises(TypeError, match="a tabular item is a row"):
        learn.predict([1, 2, 3])


def test_export_and_load_learner_round_trip():
    df, learn = trained_learner()
    path = learn.export("tab.pth")
    state = torch.load(path, weights_only=True)  # plain data only
    assert state["builder"]["module"] == "minifastai.tabular"
    assert state["dls"]["tabular"]["procs"][1]["state"]["classes"]["kind"] == [NA, "x", "y", "z"]
    loaded = load_learner(path)
    assert loaded.dls.cat_names == learn.dls.cat_names and loaded.dls.vocab == learn.dls.vocab
    assert loaded.n_groups == 1
    rows = pd.concat([df.iloc[:20], pd.DataFrame({"kind": ["new"], "noise": [None], "v": [np.nan], "w": [1.0]})])
    p1, _ = learn.get_preds(dl=learn.dls.test_dl(rows.drop(columns="target")))
    p2, _ = loaded.get_preds(dl=loaded.dls.test_dl(rows.drop(columns="target")))
    assert torch.allclose(p1, p2, atol=1e-6)
    assert loaded.predict(df.iloc[3])[1] == learn.predict(df.iloc[3])[1]


def test_regression_export_round_trip():
    df = learnable_df(200)
    dls = TabularDataLoaders.from_df(df.dropna(), cat_names=["kind"], cont_names=["w"], y_names="v", valid_pct=0.2,
                                     seed=0, device="cpu")
    learn = tabular_learner(dls, layers=(8,), y_range=(-1.0, 3.0))
    quiet(learn.fit_one_cycle, 1, 1e-2)
    loaded = load_learner(learn.export())
    assert loaded.model.layers[-1].low == -1.0
    assert loaded.predict(df.iloc[0])[1] == pytest.approx(learn.predict(df.iloc[0])[1], abs=1e-6)


# ---- errors -------------------------------------------------------------------------------------
def test_error_messages():
    df = small_df()
    with pytest.raises(ValueError, match=r"column\(s\) \['colour', 'heigth'\] not in the DataFrame.*did you mean"):
        TabularDataLoaders.from_df(df, cat_names=["colour"], cont_names=["heigth", "size"], y_names="label")
    with pytest.raises(ValueError, match=r"'label' has 1 missing value\(s\).*dropna\(subset=\['label'\]\)"):
        TabularDataLoaders.from_df(df.assign(label=["a", None, "b", "a", "b", "a", "b", "a"]), cat_names=["color"],
                                   cont_names=[], y_names="label")
    with pytest.raises(ValueError, match=r"target column 'weight' has 1 missing"):
        TabularDataLoaders.from_df(df.assign(weight=[1.0, np.nan] + [2.0] * 6), cat_names=["color"], y_names="weight")
    with pytest.raises(ValueError, match=r"the DataFrame is empty \(0 rows\)"):
        TabularDataLoaders.from_df(df.iloc[:0], cat_names=["color"], cont_names=["size"], y_names="label")
    with pytest.raises(ValueError, match=r"\['size'\] are listed as both categorical and continuous"):
        TabularDataLoaders.from_df(df, cat_names=["color", "size"], cont_names=["size"], y_names="label")
    with pytest.raises(ValueError, match=r"target column\(s\) \['label'\] are also listed as inputs"):
        TabularDataLoaders.from_df(df, cat_names=["color", "label"], y_names="label")
    with pytest.raises(ValueError, match="continuous column 'color' is not numeric.*list it in cat_names"):
        TabularDataLoaders.from_df(df, cont_names=["color"], y_names="label")
    with pytest.raises(ValueError, match="y_names is empty"):
        TabularDataLoaders.from_df(df, cat_names=["color"], y_names=[])
    with pytest.raises(ValueError, match="procs has no Categorify"):
        TabularDataLoaders.from_df(df, cat_names=["color"], cont_names=[], y_names="label", procs=[FillMissing])
    with pytest.raises(ValueError, match="nothing is left to train on"):
        TabularDataLoaders.from_df(df, cat_names=["color"], y_names="label", valid_idx=range(8))
    with pytest.raises(ValueError, match="positions outside"):
        TabularDataLoaders.from_df(df, cat_names=["color"], y_names="label", valid_idx=[3, 8])
    with pytest.raises(ValueError, match="classification takes one target column"):
        TabularDataLoaders.from_df(df, cat_names=["color"], y_names=["label", "weight"], y_block="category")
    with pytest.raises(TypeError, match="needs TabularDataLoaders"):
        tabular_learner(object())


def test_two_regression_targets():
    df = learnable_df(200).dropna()
    df = df.assign(a=df.v * 2.0, b=df.w - 1.0)
    dls = TabularDataLoaders.from_df(df, cat_names=["kind"], cont_names=["w"], y_names=["a", "b"], valid_pct=0.2,
                                     seed=0, bs=16, device="cpu")
    assert dls.y_kind == "regression" and dls.c == 2 and dls.train.tensors[2].shape == (len(dls.train_idx), 2)
    learn = tabular_learner(dls, layers=(8,))
    assert learn.model.layers[-1].out_features == 2
    quiet(learn.fit, 1)
    preds, targs = learn.get_preds()
    assert preds.shape == targs.shape == (len(dls.valid_idx), 2)
    row, pred, out = learn.predict(df.iloc[0])
    assert pred.shape == (2,) and row.items[["a", "b"]].to_numpy()[0].tolist() == pytest.approx(pred.tolist())
