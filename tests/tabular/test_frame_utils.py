"""fastai's DataFrame helpers (`add_datepart`, `add_elapsed_times`, `cont_cat_split`, `df_shrink`,
`tabular_config`), compared with fastai's own on the same frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from minifastai.tabular import (
    TabularDataLoaders,
    add_datepart,
    add_elapsed_times,
    cont_cat_split,
    df_shrink,
    df_shrink_dtypes,
    make_date,
    tabular_config,
    tabular_learner,
)

ftc = pytest.importorskip("fastai.tabular.core")


def dates(unit: str = "ns") -> pd.DataFrame:
    d = pd.to_datetime(["2019-12-31", "2020-02-29", None, "2021-07-04 13:45:10"], format="ISO8601")
    return pd.DataFrame({"saledate": d.astype(f"datetime64[{unit}]"), "x": [1, 2, 3, 4]})


@pytest.mark.parametrize("kw", [{}, {"time": True}, {"prefix": "s_", "drop": False}])
def test_add_datepart_is_fastais(kw):
    ours, theirs = add_datepart(dates(), "saledate", **kw), ftc.add_datepart(dates(), "saledate", **kw)
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
    assert ours["saleYear"].iloc[0] == 2019 if not kw.get("prefix") else ours["s_Year"].iloc[0] == 2019
    # microsecond datetimes (pandas' default for parsed strings): fastai's Elapsed is then 1000 times too small
    us = add_datepart(dates("us"), "saledate", **kw)
    col = (kw.get("prefix") or "sale") + "Elapsed"
    assert us[col].iloc[0] == 1577750400.0 == ours[col].iloc[0]  # 2019-12-31 00:00 UTC, in seconds


def events(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    day = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.permutation(300)[:n], "D")
    return pd.DataFrame({"date": day.strftime("%Y-%m-%d"), "promo": rng.random(n) < 0.2,
                         "holiday": rng.integers(0, 2, n), "store": rng.integers(0, 4, n), "x": np.arange(n)})


def test_add_elapsed_times_is_fastais():
    df = events()
    ours = add_elapsed_times(df.copy(), ["promo", "holiday"], "date", "store")
    theirs = ftc.add_elapsed_times(df.copy(), ["promo", "holiday"], "date", "store")
    assert list(ours.columns) == list(theirs.columns) == [*df.columns, "Afterpromo", "Afterholiday", "Beforepromo",
                                                          "Beforeholiday", "promo_bw", "holiday_bw", "promo_fw",
                                                          "holiday_fw"]
    pd.testing.assert_frame_equal(ours, theirs)
    # by hand, one store: events on Jan 2 and Jan 5; rows on Jan 1, 2, 3, 5, 9
    one = pd.DataFrame({"date": ["2020-01-03", "2020-01-01", "2020-01-09", "2020-01-05", "2020-01-02"],
                        "ev": [0, 0, 0, 1, 1], "s": 1})
    r = add_elapsed_times(one, "ev", "date", "s").set_index("date")
    assert r["Afterev"].tolist() == [1, 0, 4, 0, 0]  # days since the last event (0 before the first)
    assert r["Beforeev"].tolist() == [-2, -1, 0, 0, 0]  # days until the next one (0 after the last)
    assert r.loc[pd.Timestamp("2020-01-09"), "ev_bw"] == 2 and r.loc[pd.Timestamp("2020-01-01"), "ev_fw"] == 2
    assert one["ev"].dtype == bool  # in place, as fastai's


def test_add_elapsed_times_names_a_missing_column_before_changing_the_frame():
    df = events(10)
    before = df.copy()
    with pytest.raises(KeyError, match=r"\['promos'\] are not columns"):
        add_elapsed_times(df, ["promos"], "date", "store")
    pd.testing.assert_frame_equal(df, before)


def test_make_date_parses_strings_and_names_a_missing_column():
    df = pd.DataFrame({"d": ["2020-01-02", "2020-03-04"]})
    make_date(df, "d")
    assert pd.api.types.is_datetime64_dtype(df["d"]) and df["d"].iloc[1].month == 3
    with pytest.raises(KeyError, match="'date' is not a column"):
        make_date(df, "date")


def test_cont_cat_split_is_fastais():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"f": rng.random(50), "few": rng.integers(0, 5, 50), "many": np.arange(50),
                       "s": rng.choice(["a", "b"], 50), "y": rng.random(50), "b": rng.random(50) > 0.5})
    for kw in [{}, {"max_card": 3}, {"dep_var": "y"}, {"dep_var": ["y", "f"], "max_card": 60}]:
        assert cont_cat_split(df, **kw) == ftc.cont_cat_split(df, **kw), kw


def test_df_shrink_is_fastais():
    df = pd.DataFrame({"i": [1, 2, 300], "u": [0, 5, 70000], "f": [0.5, 1.5, 2.5], "o": ["a", "b", "a"],
                       "big": [1, 2, 2**40], "neg": [-1, 0, 1]})
    for kw in [{}, {"int2uint": True}, {"obj2cat": False}, {"skip": ["i"]}]:
        assert {k: str(v) for k, v in df_shrink_dtypes(df, **kw).items()} == \
            {k: str(v) for k, v in ftc.df_shrink_dtypes(df, **kw).items()}, kw
    small = df_shrink(df, int2uint=True)
    pd.testing.assert_frame_equal(small, ftc.df_shrink(df, int2uint=True))
    assert small.memory_usage(deep=True).sum() < df.memory_usage(deep=True).sum()


def test_tabular_config_checks_names_and_configures_the_model():
    assert tabular_config(ps=[0.1, 0.2], embed_p=0.05) == {"ps": [0.1, 0.2], "embed_p": 0.05}
    with pytest.raises(TypeError, match=r"TabularModel takes no \['dropout'\]"):
        tabular_config(dropout=0.1)
    df = pd.DataFrame({"a": np.linspace(0, 1, 40), "c": ["x", "y"] * 20, "t": [0.0, 1.0] * 20})
    dls = TabularDataLoaders.from_df(df, cat_names=["c"], cont_names=["a"], y_names="t", bs=8)
    learn = tabular_learner(dls, layers=[8, 4], config=tabular_config(ps=[0.25, 0.5], bn_final=True, y_range=(0, 1)))
    drops = [m.p for m in learn.model.modules() if type(m).__name__ == "Dropout"]
    assert drops[-2:] == [0.25, 0.5] and type(list(learn.model.modules())[-1]).__name__ == "SigmoidRange"


def test_fill_strategy_is_fastais():
    from minifastai.tabular import Categorify, FillMissing, FillStrategy

    s = pd.Series([1.0, 2.0, 2.0, np.nan, 10.0])
    for name in ("median", "constant", "mode"):
        assert getattr(FillStrategy, name)(s, 7.0) == getattr(ftc.FillStrategy, name)(s, 7.0), name
    df = pd.DataFrame({"a": [1.0, 2.0, 2.0, np.nan, 10.0, 3.0] * 3, "y": [0, 1, 0, 1, 0, 1] * 3})
    for strategy, expected in ((FillStrategy.mode, 2.0), (FillStrategy.median, 2.0), (FillStrategy.constant, 0.0)):
        dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing(fill_strategy=strategy)],
                                         cont_names=["a"], y_names="y", valid_idx=[17], bs=4)
        fill = next(p for p in dls.processor.procs if isinstance(p, FillMissing)).fill
        assert fill == {"a": expected}, strategy.__name__


def test_tabular_pandas_views_are_fastais(capsys):
    from minifastai.tabular import Categorify, Normalize, TabularPandas

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.random(30), "c": rng.choice(["x", "y", "z"], 30), "y": rng.choice(["p", "q"], 30)})
    splits = (list(range(24)), list(range(24, 30)))
    ours = TabularPandas(df, [Categorify, Normalize], ["c"], ["a"], y_names="y", splits=splits)
    theirs = ftc.TabularPandas(df.copy(), [ftc.Categorify, ftc.Normalize], ["c"], ["a"], y_names="y", splits=splits)
    np.testing.assert_allclose(ours.xs["a"].to_numpy(), theirs.xs["a"].to_numpy(dtype=float), rtol=1e-5, atol=1e-6)
    assert ours.xs["c"].tolist() == theirs.xs["c"].tolist() and ours.ys["y"].tolist() == theirs.ys["y"].tolist()
    assert ours["c"].tolist() == theirs["c"].tolist() and list(ours.items.columns) == ["c", "a", "y"]
    row = ours.decode_row(ours.items.iloc[3])
    assert row["c"] == df["c"].iloc[3] and row["y"] == df["y"].iloc[3]
    assert row["a"] == pytest.approx(df["a"].iloc[3], abs=1e-6)
    ours.show(2)
    shown = capsys.readouterr().out
    assert df["c"].iloc[0] in shown.splitlines()[1] and df["y"].iloc[1] in shown.splitlines()[2]
    with pytest.raises(KeyError, match=r"\['nope'\] not input or target columns"):
        ours["nope"]


def test_to_new_processes_new_rows_with_the_fitted_procs_as_fastai():
    from minifastai.tabular import Categorify, Normalize, TabularPandas

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.random(30) * 10, "c": rng.choice(["x", "y"], 30), "y": rng.choice(["p", "q"], 30)})
    new = pd.DataFrame({"a": [0.0, 5.0, 50.0], "c": ["y", "x", "y"], "y": ["q", "p", "p"]})
    splits = (list(range(24)), list(range(24, 30)))
    ours = TabularPandas(df, [Categorify, Normalize], ["c"], ["a"], y_names="y", splits=splits)
    theirs = ftc.TabularPandas(df.copy(), [ftc.Categorify, ftc.Normalize], ["c"], ["a"], y_names="y", splits=splits)
    o, t = ours.new(new), theirs.new(new.copy())
    o.process(), t.process()
    np.testing.assert_allclose(o.xs["a"].to_numpy(), t.xs["a"].to_numpy(dtype=float), rtol=1e-5)  # train stats
    assert o.xs["c"].tolist() == t.xs["c"].tolist() and o.ys["y"].tolist() == t.ys["y"].tolist()
    assert len(o) == 3 and len(ours) == 30  # the original is unchanged
    dls = o.dataloaders(bs=2, device="cpu")
    assert sum(len(b[0]) for b in dls.train) == 3
    test_rows = ours.new(new.drop(columns="y"))  # test rows (fastai's): no targets, and no loaders to train on
    assert "y" not in test_rows.items and len(test_rows.items) == 3
    with pytest.raises(ValueError, match=r"these rows have no target column \['y'\]"):
        test_rows.dataloaders()
