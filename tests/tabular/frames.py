"""Shared by the tabular adversarial tests: a small mixed frame, the loader keywords, and checks that nothing
changed."""
from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pandas as pd


def frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"c": rng.choice(np.array(["p", "q", "r"], dtype=object), n), "x": rng.normal(5, 2, n),
                         "w": rng.normal(0, 1, n), "y": rng.normal(10, 3, n),
                         "label": rng.choice(np.array(["A", "B"], dtype=object), n)})


KW = dict(cat_names=["c"], cont_names=["x", "w"], valid_idx=list(range(30, 40)), bs=8, device="cpu")


def quiet(f, *args, **kw):
    with contextlib.redirect_stdout(io.StringIO()):
        return f(*args, **kw)


@contextlib.contextmanager
def unchanged(df: pd.DataFrame, *procs):
    """The DataFrame and the procs passed in are exactly as before, whatever happens inside."""
    df_before, procs_before = df.copy(deep=True), [copy.deepcopy(vars(p)) for p in procs]
    try:
        yield
    finally:
        pd.testing.assert_frame_equal(df, df_before)
        for p, before in zip(procs, procs_before):
            assert repr(vars(p)) == repr(before)
