"""Tabular at scale, tested small: compact dtypes, pyarrow-backed and categorical columns read without Python
strings, parquet column selection, and the loader's batches (the timed 2M/20M-row runs live in bench/)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from minifastai.tabular import NA, TabularDataLoaders, TabularLoader, factorize

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def table(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Object strings, a wide vocab (400 values), floats with missing values, a string target."""
    rng = np.random.default_rng(seed)
    small = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    small[rng.random(n) < 0.1] = None
    x = rng.normal(5, 2, n)
    x[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"small": small, "wide": np.array([f"w{i}" for i in rng.integers(0, 400, n)], dtype=object),
                         "x": x, "z": rng.normal(0, 1, n).astype(np.float32),
                         "y": rng.choice(np.array(["no", "yes"], dtype=object), n)})


KW = dict(cat_names=["small", "wide"], cont_names=["x", "z"], y_names="y", valid_pct=0.25, seed=0, device="cpu")


def test_compact_storage_and_int64_batches():
    df = table()
    dls = TabularDataLoaders.from_df(df, bs=64, **KW)
    x_cat, x_cont, y = dls.train.tensors
    # the widest vocab is 'wide' (#na# + about 400 values > 256): int16 for the codes; float32; uint8 targets
    assert len(dls.classes["wide"]) > 256 and x_cat.dtype == torch.int16
    assert x_cont.dtype == torch.float32 and y.dtype == torch.uint8 and y.shape == (900, 1)
    n_cat = len(dls.cat_names)  # small, wide, x_na
    assert dls.train.nbytes + dls.valid.nbytes == 1200 * (2 * n_cat + 4 * 2 + 1)
    b = next(iter(dls.train))
    assert [x.dtype for x in b] == [torch.int64, torch.float32, torch.int64]
    assert torch.equal(torch.cat([b[0] for b in dls.valid]), dls.valid.tensors[0].long())
    narrow = TabularDataLoaders.from_df(df, **{**KW, "cat_names": ["small"]})
    assert narrow.train.tensors[0].dtype == torch.uint8  # every vocab fits a byte
    many = pd.DataFrame({"id": np.arange(70_000) % 40_000, "x": np.ones(70_000), "y": np.arange(70_000) % 2})
    wide = TabularDataLoaders.from_df(many, cat_names=["id"], cont_names=[], y_names="y", valid_idx=[], device="cpu")
    assert wide.train.tensors[0].dtype == torch.int32 and len(wide.classes["id"]) == 40_001


def test_procs_fit_and_apply_in_float64_and_store_float32():
    df = table()
    dls = TabularDataLoaders.from_df(df, **KW)
    fill, _, norm = dls.procs
    x = df["x"].to_numpy()
    tr = x[dls.train_idx]
    med = np.median(tr[~np.isnan(tr)])
    assert fill.fill["x"] == pytest.approx(med)
    filled = np.where(np.isnan(x), med, x)
    mean, std = filled[dls.train_idx].mean(), filled[dls.train_idx].std() + 1e-7
    assert norm.means["x"] == pytest.approx(mean, rel=1e-12) and norm.stds["x"] == pytest.approx(std, rel=1e-12)
    expect = ((filled[dls.valid_idx] - mean) / std).astype(np.float32)  # computed in float64, stored as float32
    np.testing.assert_array_equal(dls.valid.tensors[1][:, 0].numpy(), expect)


def arrow_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The same table with pyarrow-backed string columns of three kinds."""
    return df.assign(small=df["small"].astype(pd.StringDtype("pyarrow")),
                     wide=df["wide"].astype(pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))),
                     y=df["y"].astype(pd.ArrowDtype(pa.string())))


def test_pyarrow_backed_columns_are_never_turned_into_python_strings(monkeypatch):
    df = table()
    ref = TabularDataLoaders.from_df(df, **KW)
    adf = arrow_frame(df)

    def refuse(self, *a, **k):
        raise AssertionError(f"{type(self).__name__} was converted to numpy")

    for col in ("small", "wide", "y"):
        arr_type = type(adf[col].array)
        monkeypatch.setattr(arr_type, "__array__", refuse)
        monkeypatch.setattr(arr_type, "to_numpy", refuse)
    dls = TabularDataLoaders.from_df(adf, **KW)
    monkeypatch.undo()
    assert dls.classes == ref.classes and dls.vocab == ref.vocab
    for a, b in zip(dls.train.tensors + dls.valid.tensors, ref.train.tensors + ref.valid.tensors):
        assert torch.equal(a, b)
    # pyarrow floats with nulls, pandas nullable floats and ints read as float32 with NaN for missing values
    f32 = TabularDataLoaders.from_df(df.assign(x=df["x"].astype(np.float32)), **KW)
    for dtype, same in (("float32[pyarrow]", f32), ("float64[pyarrow]", ref), ("Float64", ref)):
        other = TabularDataLoaders.from_df(adf.assign(x=df["x"].astype(dtype)), **KW)
        assert torch.equal(other.train.tensors[1], same.train.tensors[1]), dtype
        assert other.procs[0].na_cols == ["x"]


def test_pandas_categoricals_use_their_codes(monkeypatch):
    df = table()
    cdf = df.assign(small=pd.Categorical(df["small"], categories=["c", "b", "a", "unused"]))
    monkeypatch.setattr(pd.Categorical, "__array__", lambda self, *a, **k: pytest.fail("Categorical to numpy"))
    dls = TabularDataLoaders.from_df(cdf, **KW)
    monkeypatch.undo()
    assert dls.classes["small"] == [NA, "c", "b", "a", "unused"]  # the dtype's categories, in their order
    codes = cdf["small"].cat.codes.to_numpy()[dls.train_idx] + 1
    assert dls.train.tensors[0][:, 0].tolist() == codes.tolist()


def test_factorize_reads_every_kind_of_column():
    s = pd.Series(["b", None, "a", "b"], dtype=pd.StringDtype("pyarrow"))
    f = factorize(s)
    assert [f.values[c] if c >= 0 else None for c in f.codes] == ["b", None, "a", "b"] and not f.ordered
    chunked = pa.chunked_array([pa.array(["x", "y"]).dictionary_encode(),
                                pa.array(["z", "x", None]).dictionary_encode()])
    f = factorize(chunked)  # chunks with different dictionaries
    assert [f.values[c] if c >= 0 else None for c in f.codes] == ["x", "y", "z", "x", None]
    f = factorize(pa.chunked_array([pa.array([1.5, float("nan"), None, 1.5])]))
    assert [f.values[c] if c >= 0 else None for c in f.codes] == [1.5, None, None, 1.5]  # NaN is missing
    f = factorize(pd.Series([3, 1, 3], dtype="Int64").astype("category"))
    assert f.ordered and f.values == [1, 3] and f.codes.tolist() == [1, 0, 1]


def test_from_parquet_reads_only_the_needed_columns(tmp_path, monkeypatch):
    df = table()
    df["note"] = "a long text column that no model needs"
    file = tmp_path / "t.parquet"
    df.to_parquet(file)
    calls = []
    real = pq.read_table

    def spy(*a, **k):
        calls.append(k)
        return real(*a, **k)

    monkeypatch.setattr(pq, "read_table", spy)
    dls = TabularDataLoaders.from_parquet(file, bs=64, **KW)
    assert [sorted(c["columns"]) for c in calls] == [["small", "wide", "x", "y", "z"]]
    assert sorted(calls[0]["read_dictionary"]) == ["small", "wide", "y"]  # strings from the dictionary pages
    assert dls.path == tmp_path
    ref = TabularDataLoaders.from_df(pd.read_parquet(file), bs=64, **KW)
    assert dls.classes == ref.classes and dls.vocab == ref.vocab and dls.cat_names == ref.cat_names
    for a, b in zip(dls.train.tensors + dls.valid.tensors, ref.train.tensors + ref.valid.tensors):
        assert torch.equal(a, b)
    # predictions on new rows work from a pandas DataFrame as usual
    assert len(dls.test_dl(df.iloc[:5]).tensors) == 3
    with pytest.raises(ValueError, match=r"continuous column 'note' is not numeric.*list it in cat_names"):
        TabularDataLoaders.from_parquet(file, cat_names=["small", "wide"], y_names="y", device="cpu")
    with pytest.raises(ValueError, match=r"\['smal'\] not in the parquet file.*did you mean 'small'"):
        TabularDataLoaders.from_parquet(file, cat_names=["smal"], cont_names=["x"], y_names="y", device="cpu")


def test_loader_gathers_every_tensor_with_one_permutation():
    t = [torch.arange(40, dtype=torch.int16).reshape(20, 2), torch.arange(20).float().reshape(20, 1)]
    batches = list(TabularLoader(t, bs=6, shuffle=True))
    assert [len(b[0]) for b in batches] == [6, 6, 6, 2]
    assert sorted(torch.cat([b[1][:, 0] for b in batches]).long().tolist()) == list(range(20))
    for x_cat, x_cont in batches:  # row i of x_cat is [2i, 2i+1]: the same rows in every tensor
        assert x_cat.dtype == torch.int64 and torch.equal(x_cat[:, 0], x_cont[:, 0].long() * 2)
    first = [b[1] for b in TabularLoader(t, bs=6)]
    assert torch.equal(torch.cat(first)[:, 0], torch.arange(20).float())  # unshuffled: in order
