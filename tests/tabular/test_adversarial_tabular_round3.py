"""Hostile tabular input and exports (issue 21): each probe asserts a clear error naming the problem (the column,
the file) raised before anything changed (the DataFrame, a learner, the files on disk), or a correct result."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from frames import KW, frame, quiet, unchanged  # noqa: E402
from helpers import same_state as same  # noqa: E402
from helpers import state_copy as weights  # noqa: E402

from minifastai import load_learner
from minifastai.persist import with_checksum
from minifastai.tabular import TabularDataLoaders, TabularPandas, tabular_learner


# ---- 1. duplicate column names ------------------------------------------------------------------------------
def test_duplicate_column_names_are_named():
    df = pd.concat([frame(), frame(seed=1)[["x"]]], axis=1)  # two columns called "x"
    msg = r"the DataFrame has more than one column named \['x'\]: rename or drop the duplicates"
    with unchanged(df):
        with pytest.raises(ValueError, match=msg):
            TabularDataLoaders.from_df(df, cat_names="c", y_names="label", device="cpu")  # cont_names: the rest
        with pytest.raises(ValueError, match=msg):
            TabularDataLoaders.from_df(df, cat_names="c", cont_names=["w"], y_names="x", device="cpu")
        with pytest.raises(ValueError, match=msg):
            TabularPandas(df, cat_names="c", cont_names=["x"], y_names="label")
        # an unused duplicate is harmless
        dls = TabularDataLoaders.from_df(df, cat_names="c", cont_names=["w"], y_names="label", valid_pct=0.2,
                                         seed=0, device="cpu")
    dls = TabularDataLoaders.from_df(frame(), y_names="label", **KW)
    with unchanged(df), pytest.raises(ValueError, match=msg):
        dls.test_dl(df)


def test_duplicate_column_names_in_parquet_are_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = frame()
    pq.write_table(pa.table([df["x"], df["w"], df["label"]], names=["x", "x", "label"]), tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match=r"the parquet file .*dup\.parquet has more than one column named \['x'\]"):
        TabularDataLoaders.from_parquet(tmp_path / "dup.parquet", y_names="label", device="cpu")
    dls = TabularDataLoaders.from_parquet(tmp_path / "dup.parquet", cont_names=[], y_names="label", device="cpu")
    assert dls.cont_names == []  # an unused duplicate is harmless


# ---- 2. column lists that are not names ---------------------------------------------------------------------
@pytest.mark.parametrize("kw, msg", [
    (dict(y_names=3), r"y_names takes a column name \(a str\) or a list of names, got int 3; for a column "
                      r"labelled 3, pass \[3\]"),
    (dict(y_names="label", cat_names=3), r"cat_names takes a column name \(a str\) or a list of names, got int 3"),
    (dict(y_names="label", cont_names=2.5), r"cont_names takes a column name .* got float 2\.5"),
    (dict(y_names="label", cat_names=[["c"]]), r"cat_names takes .*; it lists \['c'\] \(list\), which is not a "
                                               "column name"),
    (dict(y_names=b"label"), r"y_names takes a column name \(a str\) or a list of names, got bytes"),
])
def test_column_lists_must_be_names(kw, msg):
    df = frame()
    with unchanged(df):
        with pytest.raises(TypeError, match=msg):
            TabularDataLoaders.from_df(df, device="cpu", **kw)
        with pytest.raises(TypeError, match=msg):
            TabularPandas(df, **kw)


# ---- 3. from_csv with read_csv's keywords -------------------------------------------------------------------
@pytest.mark.parametrize("csv_kw", [dict(sep=";"), dict(delimiter=";")])
@pytest.mark.parametrize("cont", [None, ["x", "w"]])
def test_from_csv_passes_read_csv_keywords(tmp_path, csv_kw, cont):
    df = frame().drop(columns="label")
    df.to_csv(tmp_path / "t.csv", sep=";", index=False)
    kw = dict(cat_names=["c"], cont_names=cont, y_names="y", valid_idx=list(range(30, 40)), bs=8, device="cpu")
    got = TabularDataLoaders.from_csv(tmp_path / "t.csv", **csv_kw, **kw)
    want = TabularDataLoaders.from_df(df, **kw)
    assert got.cont_names == want.cont_names
    for a, b in zip(got.train.tensors, want.train.tensors):
        torch.testing.assert_close(a, b)


def test_from_csv_keeps_the_callers_usecols(tmp_path):
    frame().to_csv(tmp_path / "t.csv", sep="|", index=False)
    dls = TabularDataLoaders.from_csv(tmp_path / "t.csv", sep="|", usecols=["c", "x", "label"], cat_names="c",
                                      y_names="label", device="cpu")
    assert dls.cont_names == ["x"]


def test_from_csv_refuses_unknown_keywords_before_reading(tmp_path):
    missing = tmp_path / "never-read.csv"
    with pytest.raises(TypeError, match=r"from_csv got unknown keyword\(s\) \['seperator'\]: it takes from_df's "
                                        r"arguments .* and pd\.read_csv's \(sep, delimiter"):
        TabularDataLoaders.from_csv(missing, seperator=";", y_names="y")
    with pytest.raises(ValueError, match=r"reads the whole CSV into one DataFrame: leave out \['chunksize'\]"):
        TabularDataLoaders.from_csv(missing, chunksize=10, y_names="y")
    assert not missing.exists()


# ---- 4. datetime columns: the same numbers from a DataFrame and from parquet ---------------------------------
def dated(n: int = 40) -> pd.DataFrame:
    df = frame(n)[["c", "y"]]
    df["d"] = pd.date_range("2020-01-01", periods=n, freq="D")
    df.loc[3, "d"] = pd.NaT
    return df


def test_datetime_columns_agree_between_dataframe_and_parquet(tmp_path):
    df = dated()
    df.to_parquet(tmp_path / "d.parquet")
    kw = dict(cat_names="c", y_names="y", valid_idx=list(range(30, 40)), bs=8, device="cpu")
    with unchanged(df):
        a = TabularDataLoaders.from_df(df, **kw)
    b = TabularDataLoaders.from_parquet(tmp_path / "d.parquet", **kw)
    assert a.cont_names == b.cont_names == ["d"] and a.cat_names == b.cat_names == ["c", "d_na"]
    for x, z in zip(a.train.tensors, b.train.tensors):
        torch.testing.assert_close(x, z)
    # seconds since 1970 (as add_datepart's Elapsed), whatever the unit or the timezone
    mean = a.procs.normalize.means["d"]
    assert b.procs.normalize.means["d"] == mean
    for other in (df.assign(d=df["d"].astype("datetime64[s]")), df.assign(d=df["d"].dt.tz_localize("UTC"))):
        assert TabularDataLoaders.from_df(other, **kw).procs.normalize.means["d"] == pytest.approx(mean)
    assert pd.Timestamp("2020-01-01").timestamp() < mean < pd.Timestamp("2020-02-10").timestamp()
    # a row at predict time (a Timestamp in seconds) gives what the same row of the table gives
    learn = tabular_learner(a, layers=[4])
    row = {"c": df["c"][4], "d": pd.Timestamp("2020-01-05")}
    torch.testing.assert_close(quiet(learn.predict, row)[2], quiet(learn.predict, df.iloc[4])[2])


# ---- 5. nested (list) columns -------------------------------------------------------------------------------
@pytest.mark.parametrize("as_cat", [True, False])
def test_a_list_column_from_parquet_is_named_with_its_type(tmp_path, as_cat):
    df = frame().assign(l=[[1, 2]] * 40)
    df.to_parquet(tmp_path / "l.parquet")
    with pytest.raises(ValueError, match=r"column 'l' of the parquet file .*l\.parquet has type list<element: "
                                         r"int64>: a tabular column holds one value per row"):
        TabularDataLoaders.from_parquet(tmp_path / "l.parquet", cat_names=["c", "l"] if as_cat else ["c"],
                                        y_names="label", device="cpu")


def test_a_list_category_in_a_dataframe_is_named():
    df = frame().assign(l=[[1, 2]] * 40)
    with unchanged(df), pytest.raises(ValueError, match=r"categorical column 'l' holds a list \(\[1, 2\]\) at index "
                                                        r"0: a category is one value per row"):
        TabularDataLoaders.from_df(df, cat_names=["c", "l"], cont_names=["x"], y_names="label", device="cpu")
    with pytest.raises(ValueError, match=r"target column 'label' holds a dict"):
        TabularDataLoaders.from_df(frame().assign(label=[{"a": 1}] * 40), y_names="label", **KW)


# ---- 6. damaged parquet files -------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "garbage", "zeroed"])
def test_damaged_parquet_names_the_file(tmp_path, damage):
    frame().to_parquet(tmp_path / "ok.parquet")
    raw = (tmp_path / "ok.parquet").read_bytes()
    bad = {"truncated": raw[: len(raw) // 2], "garbage": b"not a parquet file" * 8,
           "zeroed": raw[: len(raw) // 3] + bytes(64) + raw[len(raw) // 3 + 64:]}[damage]
    path = tmp_path / f"{damage}.parquet"
    path.write_bytes(bad)
    with pytest.raises(ValueError, match=rf"cannot read the parquet file .*{damage}\.parquet: it is damaged, "
                                         r"truncated or not a parquet file \(.*\); write it again"):
        TabularDataLoaders.from_parquet(path, cat_names="c", y_names="label", device="cpu")
    assert path.read_bytes() == bad
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet"):
        TabularDataLoaders.from_parquet(tmp_path / "nope.parquet", y_names="label")


# ---- 7. a list as a category at predict ---------------------------------------------------------------------
@pytest.mark.parametrize("value, kind", [([1, 2], "list"), ({"a": 1}, "dict")])
def test_predict_with_an_unhashable_category_names_the_column(value, kind):
    learn = tabular_learner(TabularDataLoaders.from_df(frame(), y_names="label", **KW), layers=[4])
    before = weights(learn)
    with pytest.raises(ValueError, match=rf"categorical column 'c' holds a {kind} .*: a category is one value"):
        learn.predict({"c": value, "x": 1.0, "w": 0.0})
    assert same(before, weights(learn))


# ---- 8. valid_pct -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, err, msg", [
    ("0.2", TypeError, r"valid_pct must be a fraction \(a float\), got '0\.2'"),
    (True, TypeError, r"valid_pct must be a fraction \(a float\), got True"),
    (1.0, ValueError, r"valid_pct must be in \[0, 1\), got 1\.0"),
    (-0.1, ValueError, r"valid_pct must be in \[0, 1\), got -0\.1"),
])
def test_valid_pct_must_be_a_fraction(tmp_path, bad, err, msg):
    df = frame()
    with unchanged(df), pytest.raises(err, match=msg):
        TabularDataLoaders.from_df(df, cat_names="c", y_names="label", valid_pct=bad, device="cpu")
    never = tmp_path / "never-read"  # refused before the file is opened
    with pytest.raises(err, match=msg):
        TabularDataLoaders.from_csv(f"{never}.csv", y_names="label", valid_pct=bad)
    with pytest.raises(err, match=msg):
        TabularDataLoaders.from_parquet(f"{never}.parquet", y_names="label", valid_pct=bad)


# ---- 9. crafted or inconsistent exports ---------------------------------------------------------------------
def exported(tmp_path, df: pd.DataFrame | None = None) -> tuple[object, dict]:
    learn = tabular_learner(TabularDataLoaders.from_df(frame() if df is None else df, y_names="label", **KW),
                            layers=[8])
    path = learn.export(tmp_path / "t.pth")
    return learn, torch.load(path, weights_only=True)


def procs(tab: dict) -> dict:
    return {d["name"]: d["state"] for d in tab["procs"]}


def drop_w(tab: dict) -> None:  # a consistent processor without column 'w': the model still takes 2
    tab["cont_names"].remove("w")
    for st, keys in ((procs(tab)["FillMissing"], ["fill"]), (procs(tab)["Normalize"], ["means", "stds"])):
        for k in keys:
            st[k].pop("w")


CRAFTED = [
    (lambda t: t.update(cat_names=[]) or procs(t)["Categorify"].update(classes={}),
     r"names 0 categorical input\(s\) \[\], but the model has 1 embedding\(s\)"),
    (lambda t: procs(t)["Categorify"]["classes"]["c"].append("s"),
     r"column 'c' has 5 categories, but its embedding has 4 rows"),
    (lambda t: t.update(cat_names=["x"]),
     r"the categorical inputs \['x'\] need one Categorify vocab each, got \['c'\]"),
    (drop_w, r"names 1 continuous column\(s\) \['x'\], but the model takes n_cont=2"),
    (lambda t: procs(t)["Normalize"]["stds"].update(x=0.0),
     r"\['procs'\]\[2\]\['state'\]\['stds'\]\['x'\] must be a finite number above 0, got 0\.0"),
    (lambda t: procs(t)["Normalize"]["stds"].update(w=-1.0), r"\['stds'\]\['w'\] must be a finite number above 0"),
    (lambda t: procs(t)["Normalize"]["means"].update(x=math.nan),
     r"\['means'\]\['x'\] must be a finite number, got nan"),
    (lambda t: procs(t)["Normalize"]["means"].pop("w"),
     r"\['means'\] must have one entry per continuous column \['x', 'w'\], got \['x'\]"),
    (lambda t: t["procs"][0].update(name="Lambda"), r"\['procs'\]\[0\]: unknown proc 'Lambda' in the export"),
    (lambda t: t["procs"].append(t["procs"][2]), r"\['procs'\]\[3\]: proc Normalize appears twice"),
    (lambda t: procs(t)["FillMissing"].update(fill_strategy="mean"), r"\['fill_strategy'\] is 'mean', not one of"),
    (lambda t: procs(t)["FillMissing"]["fill"].update(x="abc"), r"\['fill'\]\['x'\] must be a finite number"),
    (lambda t: procs(t)["FillMissing"].update(na_cols="x"), r"\['na_cols'\] must be a list of column names"),
    (lambda t: procs(t)["FillMissing"].update(na_cols=["q"]), r"\['na_cols'\] names \['q'\], not continuous columns"),
    (lambda t: procs(t)["FillMissing"].pop("add_col"), r"\(FillMissing\) has entries .*; expected"),
    (lambda t: procs(t)["FillMissing"].update(add_col="yes"), r"\['add_col'\] must be True or False"),
    (lambda t: procs(t)["Categorify"]["classes"].update(c=["p", "q", "r", "s"]),
     r"vocab of 'c' must be a list of distinct values starting with '#na#'"),
    (lambda t: t.update(vocab=["A", "A"]), r"\['vocab'\] must list the distinct classes of the category target"),
    (lambda t: t.update(y_names=[]), r"\['y_names'\] is empty"),
    (lambda t: t.update(y_kind="code"), r"unknown target kind 'code'"),
    (lambda t: t.update(cont_names=["x", "x"]), r"\['cont_names'\] lists a column more than once"),
]


@pytest.mark.parametrize("edit, msg", CRAFTED)
def test_crafted_processor_state_is_refused_naming_the_file(tmp_path, edit, msg):
    _, state = exported(tmp_path)
    edit(state["dls"]["tabular"])
    path = tmp_path / "crafted.pkl"
    torch.save(with_checksum(state), path)
    raw = path.read_bytes()
    with pytest.raises(ValueError, match=r"crafted\.pkl: dls\['tabular'\].*" + msg):
        load_learner(path)
    assert path.read_bytes() == raw and sorted(p.name for p in tmp_path.iterdir()) == ["crafted.pkl", "t.pth"]


def test_exports_with_missing_value_flags_still_load(tmp_path):
    df = frame()
    df.loc[[1, 5, 33], "x"] = np.nan  # FillMissing adds the x_na flag: an input of the model
    learn, _ = exported(tmp_path, df)
    loaded = load_learner(tmp_path / "t.pth")
    assert loaded.dls.cat_names == ["c", "x_na"]
    row = df.iloc[1]
    torch.testing.assert_close(quiet(loaded.predict, row)[2], quiet(learn.predict, row)[2])
