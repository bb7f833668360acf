"""Tabular entry points written as fastai users write them, compared with fastai 2.8's own numbers.

fastai runs in a subprocess (it patches torch and pandas on import, which must not leak into the other tests):
the script below builds fastai's `TabularPandas`, loaders and an untrained `tabular_learner` on the same
DataFrame and splits, and saves what it computed; each test builds the same thing with minifastai and compares.
"""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from minifastai.tabular import (
    NA,
    Categorify,
    CategoryBlock,
    FillMissing,
    IndexSplitter,
    Normalize,
    RandomSplitter,
    RegressionBlock,
    TabularDataLoaders,
    TabularPandas,
    TabularRow,
    emb_sz_rule,
    get_emb_sz,
    tabular_learner,
)

pytest.importorskip("fastai")

CAT = ["workclass", "education", "children"]
CONT = ["age", "fnlwgt", "hours"]
VALID = list(range(200, 260))
ROWS = [0, 3, 201, 250]  # 3 has missing values (workclass, age); 250 an unseen workclass


def adult_like(n: int = 260, seed: int = 0) -> pd.DataFrame:
    """Strings with missing values, a pandas Categorical with an unused category, an integer categorical,
    floats with missing values, a string target and a float target."""
    rng = np.random.default_rng(seed)
    work = rng.choice(np.array(["Private", "Self-emp", "Gov"], dtype=object), n).astype(object)
    work[rng.random(n) < 0.1] = None
    work[250] = "Never-worked"  # a validation row with a category the training rows do not have
    age = rng.normal(40, 12, n)
    age[rng.random(n) < 0.1] = np.nan
    age[3] = np.nan
    fnlwgt = rng.normal(2e5, 5e4, n)
    fnlwgt[rng.random(n) < 0.05] = np.nan
    df = pd.DataFrame({
        "workclass": work,
        "education": pd.Categorical(rng.choice(["HS", "Bachelors", "Masters"], n),
                                    categories=["HS", "Bachelors", "Masters", "PhD"]),
        "children": rng.integers(0, 4, n),
        "age": age, "fnlwgt": fnlwgt, "hours": rng.normal(40, 10, n).round(),
        "salary": rng.choice(np.array([">=50k", "<50k"], dtype=object), n),
    })
    df["amount"] = (df.hours * 10 + rng.normal(0, 5, n)).astype(float)
    return df


FASTAI_SCRIPT = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
import fastai.tabular.core as core

df = pd.read_pickle(sys.argv[1])
CAT, CONT, VALID, ROWS = json.loads(sys.argv[3])
out = {}
out["random_splits"] = {f"{n},{s}": [list(map(int, x)) for x in RandomSplitter(0.2, seed=s)(range(n))]
                        for n in (10, 333) for s in (0, 42)}
torch.manual_seed(7)
out["random_unseeded"] = [list(map(int, x)) for x in RandomSplitter(0.25)(range(50))]
out["index_split"] = [list(map(int, x)) for x in IndexSplitter([5, 2, 7])(range(10))]
splits = IndexSplitter(VALID)(range_of(df))
procs = [Categorify, FillMissing, Normalize]
shrunk = TabularPandas(df, procs, CAT, CONT, y_names="salary", splits=splits)  # reduce_memory=True (default)
out["shrunk_classes"] = {k: list(v) for k, v in shrunk.procs.categorify.classes.items()}
to = TabularPandas(df, procs, CAT, CONT, y_names="salary", splits=splits, reduce_memory=False)
out["cat_names"] = list(to.cat_names)
out["classes"] = {k: list(v) for k, v in to.procs.categorify.classes.items()}
out["na_dict"] = dict(to.procs.fill_missing.na_dict)
out["means"] = {k: float(v) for k, v in to.procs.normalize.means.items()}
out["stds"] = {k: float(v) for k, v in to.procs.normalize.stds.items()}
for name, sub in (("train", to.train), ("valid", to.valid)):
    xs = sub.xs.sort_index()
    out[f"{name}_xs"] = {c: xs[c].to_numpy().astype(float).tolist() for c in xs.columns}
    out[f"{name}_y"] = sub.y.sort_index().to_numpy().astype(int).tolist()
out["vocab"] = list(to.procs.categorize.vocab)
out["emb_szs"] = [list(e) for e in get_emb_sz(to)]
dls = to.dataloaders(bs=32)
b = dls.one_batch()
out["batch"] = [(tuple(x.shape), str(x.dtype)) for x in b]
learn = tabular_learner(dls, layers=[8, 4])
learn.model.eval()
out["state"] = [v.clone() for v in learn.model.state_dict().values()]
preds, targs = learn.get_preds()
out["preds"], out["targs"] = preds, targs
shown = {}
core.display_df = lambda d: shown.__setitem__("df", d)  # what row.show() displays
out["predict"] = []
for i in ROWS:
    row, clas, probs = learn.predict(df.drop(columns="amount").iloc[i])
    row.show()
    out["predict"].append((shown["df"].to_dict("list"), clas, probs))
# a regression
rto = TabularPandas(df, procs, CAT, CONT, y_names="amount", splits=splits, reduce_memory=False)
rdls = rto.dataloaders(bs=32)
rlearn = tabular_learner(rdls, layers=[8])
rlearn.model.eval()
out["reg_state"] = [v.clone() for v in rlearn.model.state_dict().values()]
out["reg_batch"] = [(tuple(x.shape), str(x.dtype)) for x in rdls.one_batch()]
rpreds, rtargs = rlearn.get_preds()
out["reg_preds"], out["reg_targs"] = rpreds, rtargs
row, clas, probs = rlearn.predict(df.drop(columns="salary").iloc[ROWS[1]].drop("amount"))
row.show()
out["reg_predict"] = (shown["df"].to_dict("list"), clas, probs)
torch.save(out, sys.argv[2])
"""


@pytest.fixture(scope="module")
def fastai_out(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("fastai")
    adult_like().to_pickle(tmp / "df.pkl")
    args = [str(tmp / "df.pkl"), str(tmp / "out.pt"), json.dumps([CAT, CONT, VALID, ROWS])]
    res = subprocess.run([sys.executable, "-c", FASTAI_SCRIPT, *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return torch.load(tmp / "out.pt", weights_only=False)


def fastai_to() -> TabularPandas:
    """minifastai, written as the fastai script writes it."""
    df = adult_like()
    splits = IndexSplitter(VALID)(range(len(df)))
    return TabularPandas(df, [Categorify, FillMissing, Normalize], CAT, CONT, y_names="salary", splits=splits)


def quiet(f, *args, **kw):
    with contextlib.redirect_stdout(io.StringIO()):
        return f(*args, **kw)


def test_splitters_give_fastais_rows(fastai_out):
    for key, (train, valid) in fastai_out["random_splits"].items():
        n, seed = map(int, key.split(","))
        ours = RandomSplitter(0.2, seed=seed)(range(n))
        assert [ours[0].tolist(), ours[1].tolist()] == [train, valid]
    torch.manual_seed(7)  # no seed: torch's global RNG, as fastai
    assert [x.tolist() for x in RandomSplitter(0.25)(range(50))] == fastai_out["random_unseeded"]
    assert [x.tolist() for x in IndexSplitter([5, 2, 7])(range(10))] == [[0, 1, 3, 4, 6, 8, 9], [2, 5, 7]]
    assert sorted(fastai_out["index_split"][1]) == [2, 5, 7]  # fastai keeps the given order; we keep the table's
    with pytest.raises(ValueError, match=r"valid_pct must be in \[0, 1\)"):
        RandomSplitter(1.5)


def test_procs_match_fastai(fastai_out):
    to = fastai_to()
    assert to.cat_names == fastai_out["cat_names"] == ["workclass", "education", "children", "age_na", "fnlwgt_na"]
    assert to.classes == fastai_out["classes"]
    # fastai's default reduce_memory=True first turns string columns into pandas categoricals over *all* rows,
    # so its vocab also gets categories that occur only in validation rows (never trained); ours does not
    assert fastai_out["shrunk_classes"]["workclass"] == [NA, "Gov", "Never-worked", "Private", "Self-emp"]
    assert to.classes["workclass"] == [NA, "Gov", "Private", "Self-emp"]
    assert to.classes["education"] == [NA, "HS", "Bachelors", "Masters", "PhD"]  # the Categorical's order, all
    assert to.classes["age_na"] == [NA, False, True]
    fill = to.procs[0]
    assert fill.na_cols == list(fastai_out["na_dict"])
    for c, v in fastai_out["na_dict"].items():
        assert fill.fill[c] == pytest.approx(v, rel=1e-6)
    norm = to.procs[2]
    for c in CONT:
        assert norm.means[c] == pytest.approx(fastai_out["means"][c], rel=1e-6)
        assert norm.stds[c] == pytest.approx(fastai_out["stds"][c], rel=1e-6)


def test_processed_rows_and_targets_match_fastai(fastai_out):
    to = fastai_to()
    assert to.vocab == fastai_out["vocab"]
    for name, sub in (("train", to.train), ("valid", to.valid)):
        xs = sub.xs
        assert list(xs.columns) == list(fastai_out[f"{name}_xs"])
        for c, vals in fastai_out[f"{name}_xs"].items():
            np.testing.assert_allclose(xs[c].to_numpy(dtype=float), vals, rtol=1e-5, atol=1e-5, err_msg=c)
        assert sub.y.tolist() == fastai_out[f"{name}_y"]
    assert xs.index.tolist() == VALID  # row positions in the table


def test_emb_szs_and_batches_match_fastai(fastai_out):
    to = fastai_to()
    assert get_emb_sz(to) == [tuple(e) for e in fastai_out["emb_szs"]]
    assert [emb_sz_rule(n) for n in (2, 3, 5, 30, 1000, 10**6)] == [2, 3, 4, 11, 77, 600]
    dls = to.dataloaders(bs=32, device="cpu")
    b = next(iter(dls.train))
    # fastai yields (bs, n_cat) int64, (bs, n_cont) float32, (bs, 1) targets; ours the same shapes, int64 targets
    assert [(tuple(x.shape), str(x.dtype)) for x in b][:2] == fastai_out["batch"][:2]
    assert tuple(b[2].shape) == fastai_out["batch"][2][0] and b[2].dtype == torch.int64


def fastai_weights(learn, state: list) -> None:
    """Load fastai's initial weights into our model (same layers in the same order, other names)."""
    ours = learn.model.state_dict()
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in state]
    learn.model.load_state_dict(dict(zip(ours, state)))


def test_predict_and_get_preds_match_fastai(fastai_out):
    dls = fastai_to().dataloaders(bs=32, device="cpu")
    pred, targ = torch.randn(4, 2), torch.tensor([[0], [1], [1], [0]])  # fastai's CrossEntropyLossFlat
    assert dls.loss_func(pred, targ).item() == pytest.approx(F.cross_entropy(pred, targ.view(-1)).item())
    learn = tabular_learner(dls, layers=[8, 4])
    fastai_weights(learn, fastai_out["state"])
    preds, targs = learn.get_preds()
    assert targs.shape == fastai_out["targs"].shape == (len(VALID), 1)
    assert targs.tolist() == fastai_out["targs"].long().tolist()
    torch.testing.assert_close(preds, fastai_out["preds"], rtol=1e-5, atol=1e-6)
    df = adult_like().drop(columns="amount")
    for i, (shown, clas, probs) in zip(ROWS, fastai_out["predict"]):
        row, our_clas, our_probs = learn.predict(df.iloc[i])
        assert isinstance(row, TabularRow)
        assert our_clas.shape == clas.shape == () and int(our_clas) == int(clas)
        torch.testing.assert_close(our_probs, probs, rtol=1e-5, atol=1e-6)
        assert list(row.items.columns) == list(shown)
        for c, vals in shown.items():
            if c in CONT:
                assert row.items[c].tolist() == pytest.approx(vals, rel=1e-5), (i, c)
            else:
                assert [str(v) for v in row.items[c]] == [str(v) for v in vals], (i, c)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        row.show()
    assert "Never-worked" not in out.getvalue() and NA in out.getvalue()  # row 250: unseen -> '#na#'


def test_regression_predict_matches_fastai(fastai_out):
    df = adult_like()
    to = TabularPandas(df, [Categorify, FillMissing, Normalize], CAT, CONT, y_names="amount",
                       splits=IndexSplitter(VALID)(range(len(df))))
    dls = to.dataloaders(bs=32, device="cpu")
    pred, targ = torch.randn(4, 1), torch.randn(4, 1)  # fastai's MSELossFlat
    assert dls.loss_func(pred, targ).item() == pytest.approx(F.mse_loss(pred, targ).item()) and dls.c == 1
    b = next(iter(dls.train))
    assert [(tuple(x.shape), str(x.dtype)) for x in b] == fastai_out["reg_batch"]
    learn = tabular_learner(dls, layers=[8])
    fastai_weights(learn, fastai_out["reg_state"])
    preds, targs = learn.get_preds()
    assert preds.shape == targs.shape == fastai_out["reg_targs"].shape == (len(VALID), 1)
    torch.testing.assert_close(targs, fastai_out["reg_targs"])
    torch.testing.assert_close(preds, fastai_out["reg_preds"], rtol=1e-5, atol=1e-5)
    shown, clas, probs = fastai_out["reg_predict"]
    row, our_clas, our_probs = learn.predict(df.iloc[ROWS[1]].drop(["amount", "salary"]))
    assert our_clas.shape == clas.shape == (1,)
    torch.testing.assert_close(our_clas, clas, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(our_probs, probs, rtol=1e-5, atol=1e-5)
    assert row.items["amount"].tolist() == pytest.approx(shown["amount"], rel=1e-5)


# ---- fastai's entry points, as fastai users call them ----------------------------------------------
def test_from_df_in_fastais_argument_order(tmp_path):
    df = adult_like()
    procs = [Categorify, FillMissing, Normalize]
    pos = TabularDataLoaders.from_df(df, ".", procs, CAT, CONT, "salary", None, VALID, bs=32, device="cpu")
    kw = TabularDataLoaders.from_df(df, path=".", procs=procs, cat_names=CAT, cont_names=CONT, y_names="salary",
                                    valid_idx=VALID, bs=32, device="cpu")
    for a, b in zip(pos.train.tensors + pos.valid.tensors, kw.train.tensors + kw.valid.tensors):
        assert torch.equal(a, b)
    assert pos.valid_idx.tolist() == VALID and pos.train.bs == 32 and pos.valid.bs == 64
    # cont_names=None: every other column, in the DataFrame's order (fastai: the same set)
    auto = TabularDataLoaders.from_df(df.drop(columns="amount"), cat_names=CAT, y_names="salary", device="cpu")
    assert auto.cont_names == CONT
    # today's keyword use keeps working; the old positional order is a clear error
    with pytest.raises(TypeError, match=r"second argument is `path`.*cat_names=\[\.\.\.\]"):
        TabularDataLoaders.from_df(df, CAT, CONT, "salary")
    with pytest.raises(TypeError, match="procs must be TabularProc classes"):
        TabularDataLoaders.from_df(df, ".", CAT)


def test_from_csv_reads_the_named_columns_and_sets_path(tmp_path):
    df = adult_like().drop(columns="education")
    df["unused"] = "x"
    (tmp_path / "data").mkdir()
    csv = tmp_path / "data" / "adult.csv"
    df.to_csv(csv, index=False)
    dls = TabularDataLoaders.from_csv(csv, procs=[Categorify, FillMissing, Normalize], cat_names=["workclass"],
                                      cont_names=CONT, y_names="salary", valid_idx=VALID, device="cpu")
    assert dls.path == tmp_path / "data"
    assert dls.cont_names == CONT and dls.cat_names == ["workclass", "age_na", "fnlwgt_na"]
    ref = TabularDataLoaders.from_df(pd.read_csv(csv), cat_names=["workclass"], cont_names=CONT, y_names="salary",
                                     valid_idx=VALID, device="cpu")
    for a, b in zip(dls.train.tensors, ref.train.tensors):
        assert torch.equal(a, b)
    learn = tabular_learner(dls)
    assert learn.path == tmp_path / "data"
    with pytest.raises(ValueError, match=r"\['salry'\] not in the CSV .*adult.csv.*did you mean 'salary'"):
        TabularDataLoaders.from_csv(csv, cat_names=["workclass"], cont_names=CONT, y_names="salry", device="cpu")
    with open(csv) as f:  # a file object: path '.'
        assert TabularDataLoaders.from_csv(f, cat_names=["workclass"], cont_names=CONT, y_names="salary",
                                           device="cpu").path == Path(".")


def test_tabular_pandas_dataloaders_and_blocks():
    df = adult_like()
    splits = RandomSplitter(valid_pct=0.2, seed=42)(range(len(df)))
    to = TabularPandas(df, [Categorify, FillMissing, Normalize], CAT, CONT, y_names="salary",
                       y_block=CategoryBlock(), splits=splits)
    assert len(to.train) == 208 and len(to.valid) == 52 and len(to) == 260
    assert sorted(to.valid_idx.tolist()) == sorted(splits[1].tolist())
    dls = to.dataloaders(bs=16, device="cpu")
    assert len(dls.train) == 13 and dls.train.bs == 16 and dls.vocab == ["<50k", ">=50k"]
    assert to.train.xs.shape == (208, 8) and to.train.ys.columns.tolist() == ["salary"]
    # CategoryBlock(vocab=...) fixes the classes and their order
    fixed = TabularPandas(df, [Categorify], ["workclass"], [], y_names="salary",
                          y_block=CategoryBlock(vocab=[">=50k", "<50k"]), splits=splits)
    assert fixed.vocab == [">=50k", "<50k"]
    assert fixed.train.y.tolist() == [int(v == "<50k") for v in df.salary.iloc[np.sort(splits[0])]]
    with pytest.raises(ValueError, match=r"labels \['<50k'\] that are not in CategoryBlock"):
        TabularPandas(df, [Categorify], ["workclass"], [], y_names="salary", y_block=CategoryBlock(vocab=[">=50k"]),
                      splits=splits)
    # RegressionBlock for an integer column (which would otherwise be a classification)
    reg = TabularPandas(df, [Categorify], ["workclass"], [], y_names="children", y_block=RegressionBlock(),
                        splits=splits)
    assert reg.c == 1 and reg.train.y.tolist() == df.children.iloc[np.sort(splits[0])].astype(float).tolist()
    with pytest.raises(ValueError, match=r"RegressionBlock\(n_out=2\) but there are 1 target"):
        TabularPandas(df, [], [], ["age"], y_names="amount", y_block=RegressionBlock(n_out=2), splits=splits)
    with pytest.raises(TypeError, match="splits takes the split itself"):
        TabularPandas(df, [], [], ["hours"], y_names="amount", splits=RandomSplitter())


def test_integer_target_warns_above_20_classes():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=200), "rating": rng.integers(0, 25, 200)})
    with pytest.warns(UserWarning, match=r"'rating' is an integer column with 25 distinct values: it is treated as "
                                         r"a classification with 25 classes; for a regression pass "
                                         r"y_block=RegressionBlock\(\)"):
        dls = TabularDataLoaders.from_df(df, cont_names=["x"], y_names="rating", device="cpu")
    assert dls.y_kind == "category" and dls.c == 25
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TabularDataLoaders.from_df(df.assign(rating=df.rating % 20), cont_names=["x"], y_names="rating",
                                          device="cpu").c == 20  # 20 classes: no warning
        reg = TabularDataLoaders.from_df(df, cont_names=["x"], y_names="rating", y_block=RegressionBlock(),
                                         device="cpu")
        assert reg.y_kind == "regression"


def test_validation_only_class_warns_and_keeps_an_output():
    df = pd.DataFrame({"x": np.arange(12.0), "y": ["a", "b"] * 5 + ["rare", "rare"]})
    with pytest.warns(UserWarning, match=r"class\(es\) \['rare'\] of target 'y' occur only in the validation rows"):
        dls = TabularDataLoaders.from_df(df, cont_names=["x"], y_names="y", valid_idx=[10, 11], device="cpu")
    assert dls.vocab == ["a", "b", "rare"] and dls.valid.tensors[2].tolist() == [[2], [2]]
