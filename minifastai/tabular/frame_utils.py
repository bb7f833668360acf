"""fastai's DataFrame helpers for tabular data (`fastai.tabular.core`): `make_date`, `add_datepart`,
`add_elapsed_times`, `cont_cat_split`, `df_shrink_dtypes` and `df_shrink`."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["make_date", "add_datepart", "add_elapsed_times", "cont_cat_split", "df_shrink_dtypes", "df_shrink"]

_DATE_ATTRS = ("Year", "Month", "Week", "Day", "Dayofweek", "Dayofyear", "Is_month_end", "Is_month_start",
               "Is_quarter_end", "Is_quarter_start", "Is_year_end", "Is_year_start")


def make_date(df: pd.DataFrame, date_field: str) -> None:
    """Make `df[date_field]` a datetime column (in place), parsing strings with `pd.to_datetime`."""
    if date_field not in df:
        raise KeyError(f"make_date: {date_field!r} is not a column of the DataFrame ({list(df.columns)[:10]})")
    dtype = df[date_field].dtype
    if not (isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype)):
        df[date_field] = pd.to_datetime(df[date_field])


def add_datepart(df: pd.DataFrame, field_name: str, prefix: str | None = None, drop: bool = True,
                 time: bool = False) -> pd.DataFrame:
    """fastai's `add_datepart`: columns `<prefix>Year`, `Month`, `Week` (ISO), `Day`, `Dayofweek`, `Dayofyear`, the
    `Is_month_end` ... `Is_year_start` flags (and `Hour`, `Minute`, `Second` with `time`) and `Elapsed` (seconds
    since 1970, NaN for a missing date), from the date column `field_name` (dropped with `drop`); in place, returns
    `df`. The prefix defaults to the column's name without a trailing `Date`/`date`."""
    make_date(df, field_name)
    field = df[field_name]
    prefix = re.sub("[Dd]ate$", "", field_name) if prefix is None else prefix
    attrs = [*_DATE_ATTRS, *(("Hour", "Minute", "Second") if time else ())]
    week = field.dt.isocalendar().week.astype(field.dt.day.dtype)
    pandas_name = {"Dayofweek": "day_of_week", "Dayofyear": "day_of_year"}
    for n in attrs:
        df[prefix + n] = week if n == "Week" else getattr(field.dt, pandas_name.get(n, n.lower()))
    stamps = field.dt.tz_convert(None) if isinstance(field.dtype, pd.DatetimeTZDtype) else field
    seconds = stamps.astype("datetime64[ns]").to_numpy().astype(np.int64) // 10**9
    df[prefix + "Elapsed"] = np.where(field.notna().to_numpy(), seconds, np.nan)
    if drop:
        del df[field_name]
    return df


def add_elapsed_times(df: pd.DataFrame, field_names: str | Iterable[str], date_field: str, base_field: str
                      ) -> pd.DataFrame:
    """fastai's `add_elapsed_times`: for each event column `f` in `field_names` (made bool, in place; `date_field`
    made a date, in place), per group of `base_field` in date order, the whole days since the last event
    (`After<f>`, 0 on an event's day and before the first), until the next one (`Before<f>`, negative, 0 after
    the last), and the number of events in the 7 rows up to this one (`<f>_bw`) and from it on (`<f>_fw`).
    Returns a new DataFrame: `df`'s columns, then those."""
    fields = [field_names] if isinstance(field_names, str) else list(field_names)
    missing = [c for c in [*fields, date_field, base_field] if c not in df]
    if missing:
        raise KeyError(f"add_elapsed_times: {missing} are not columns of the DataFrame ({list(df.columns)[:10]})")
    df[fields] = df[fields].astype("bool")
    make_date(df, date_field)
    order = df.sort_values([base_field, date_field], kind="stable").index
    work = df.loc[order, [base_field, date_field, *fields]]
    groups, dates = work[base_field], work[date_field]
    day = np.timedelta64(1, "D")

    def days(delta: pd.Series) -> pd.Series:
        whole = delta.to_numpy().astype("timedelta64[D]") / day  # fastai's truncation to whole days
        return pd.Series(whole, index=delta.index).fillna(0).astype(int)

    out = pd.DataFrame(index=work.index)
    for prefix, fill in (("After", "ffill"), ("Before", "bfill")):
        for f in fields:
            event_dates = dates.where(work[f])
            out[prefix + f] = days(dates - getattr(event_dates.groupby(groups), fill)())
    counts = work[fields].astype(float)
    out[[f"{f}_bw" for f in fields]] = counts.groupby(groups).rolling(7, min_periods=1).sum().droplevel(0).loc[
        work.index].to_numpy()
    backwards = counts.iloc[::-1]
    out[[f"{f}_fw" for f in fields]] = backwards.groupby(groups.iloc[::-1]).rolling(7, min_periods=1).sum(
        ).droplevel(0).loc[work.index].to_numpy()
    return pd.concat([df, out.loc[df.index]], axis=1)


def cont_cat_split(df: pd.DataFrame, max_card: int = 20, dep_var: str | Iterable[str] | None = None
                   ) -> tuple[list[str], list[str]]:
    """fastai's split of the columns into (continuous, categorical): floats, and integers with more than `max_card`
    distinct values, are continuous; everything else is categorical. `dep_var` (the target) is left out."""
    skip = set() if dep_var is None else {dep_var} if isinstance(dep_var, str) else set(dep_var)
    cont, cat = [], []
    for c in df.columns:
        if c in skip:
            continue
        dtype = df[c].dtype
        if pd.api.types.is_float_dtype(dtype) or (pd.api.types.is_integer_dtype(dtype)
                                                  and df[c].nunique(dropna=False) > max_card):
            cont.append(c)
        else:
            cat.append(c)
    return cont, cat


def df_shrink_dtypes(df: pd.DataFrame, skip: Iterable[str] = (), obj2cat: bool = True,
                     int2uint: bool = False) -> dict[str, Any]:
    """fastai's: the smallest dtype that holds each column's values (int8 ... int64, uint with `int2uint` for
    non-negative columns, float32 before float64; object/string columns become `category` with `obj2cat`),
    for the columns whose dtype would change."""
    skip = set(skip)
    kinds: dict[str, list[np.dtype]] = {
        "int": [np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64)],
        "uint": [np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64)],
        "float": [np.dtype(t) for t in (np.float32, np.float64)],
    }
    out: dict[str, Any] = {}
    for c, old in df.dtypes.items():
        if c in skip or old.name in ("category", "bool") or old.name.startswith("datetime"):
            continue
        if old.name in ("object", "str", "string"):
            if obj2cat:
                out[str(c)] = "category"
            continue
        kind = next((k for k in ("uint", "int", "float") if old.name.startswith(k)), None)
        if kind is None:
            continue
        lo, hi = df[c].min(), df[c].max()
        if kind == "int" and int2uint and lo >= 0:
            kind = "uint"
        limits = np.iinfo if kind != "float" else np.finfo
        new = next((t for t in kinds[kind] if limits(t).min <= lo and limits(t).max >= hi), None)
        if new is not None and new != old:
            out[str(c)] = new
    return out


def df_shrink(df: pd.DataFrame, skip: Iterable[str] = (), obj2cat: bool = True, int2uint: bool = False
              ) -> pd.DataFrame:
    """`df` with the smaller dtypes of `df_shrink_dtypes` (a new DataFrame)."""
    return df.astype(df_shrink_dtypes(df, skip, obj2cat=obj2cat, int2uint=int2uint))
