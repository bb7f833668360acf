"""Offline stand-ins for the two tabular datasets that fastbook's chapter 9 and fastai's tabular tutorial download.

Nothing here touches the network. Each writer writes a small synthetic CSV with the columns and dtypes that the
notebooks' cells use, and with a signal that a model can learn, so the ported scripts
(`fastbook_09_tabular.py`, `fastai_tabular_tutorial.py`) run in seconds on a CPU:

- `write_bulldozers(folder)`: Kaggle's "Blue Book for Bulldozers" (`TrainAndValid.csv`, `Test.csv`). It has a
  subset of the real 53 columns: the ones the chapter's cells touch, plus a few more of the same kinds. Prices
  are multiples of 500. The log price depends on the age of the machine, the model (base model, secondary
  description, descriptor, product group, class, size), the equipment columns (Enclosure, Coupler_System,
  Hydraulics_Flow, Grouser_Tracks, ...) and the sale date (a market cycle by sale year, a slow trend).
  `SalesID` grows with the sale date. About 10% of `YearMade` is the real data's placeholder 1000.
  Categorical columns have missing values, as in the real data. Numeric columns have none, so `FillMissing`
  adds no `<col>_na` column here: the chapter picks its network's columns from a random forest's feature
  importances, and a `_na` flag that got picked would not be a column of the raw table. The sales run from
  1998 to December 2011, about 12% of them in the chapter's validation window (October to December 2011);
  `Test.csv` holds sales of May to November 2012.
- `write_adult_sample(folder)`: fastai's `ADULT_SAMPLE` (`adult.csv`), the UCI Adult census columns, with a few
  missing values in `workclass`, `occupation`, `education-num` and `native-country`, and `salary` ('>=50k' /
  '<50k', about a quarter '>=50k') that depends on education, age, marital status, occupation, hours, sex and
  capital gain and loss.

Both writers are deterministic for a given `seed` and return the folder as a `pathlib.Path`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_bulldozers", "write_adult_sample"]

_SIZES = ["Large", "Large / Medium", "Medium", "Small", "Mini", "Compact"]
_GROUPS = {"TEX": "Track Excavators", "WL": "Wheel Loader", "SSL": "Skid Steer Loaders",
           "BL": "Backhoe Loaders", "TTT": "Track Type Tractors", "MG": "Motor Graders"}
_CLASS_RANGES = {
    "TEX": ["Hydraulic Excavator, Track - 12.0 to 14.0 Metric Tons",
            "Hydraulic Excavator, Track - 21.0 to 24.0 Metric Tons",
            "Hydraulic Excavator, Track - 33.0 to 40.0 Metric Tons",
            "Hydraulic Excavator, Track - 4.0 to 5.0 Metric Tons"],
    "WL": ["Wheel Loader - 110.0 to 120.0 Horsepower", "Wheel Loader - 150.0 to 175.0 Horsepower",
           "Wheel Loader - 200.0 to 225.0 Horsepower", "Wheel Loader - 60.0 to 80.0 Horsepower"],
    "SSL": ["Skid Steer Loader - 1351.0 to 1601.0 Lb Operating Capacity",
            "Skid Steer Loader - 1601.0 to 1751.0 Lb Operating Capacity",
            "Skid Steer Loader - 2201.0 to 2701.0 Lb Operating Capacity"],
    "BL": ["Backhoe Loader - 14.0 to 15.0 Ft Standard Digging Depth",
           "Backhoe Loader - 15.0 to 16.0 Ft Standard Digging Depth",
           "Backhoe Loader - Unidentified"],
    "TTT": ["Track Type Tractor, Dozer - 105.0 to 130.0 Horsepower",
            "Track Type Tractor, Dozer - 190.0 to 260.0 Horsepower",
            "Track Type Tractor, Dozer - 75.0 to 85.0 Horsepower"],
    "MG": ["Motorgrader - 145.0 to 170.0 Horsepower", "Motorgrader - 170.0 to 200.0 Horsepower"],
}
_GROUP_EFFECT = {"TEX": 0.25, "WL": 0.2, "SSL": -0.45, "BL": -0.1, "TTT": 0.3, "MG": 0.35}
_SIZE_EFFECT = {"Large": 0.55, "Large / Medium": 0.35, "Medium": 0.1, "Small": -0.2, "Mini": -0.45,
                "Compact": -0.55}
_SECONDARY = ["A", "B", "C", "D", "E", "F", "G", "H", "L", "M", "N", "P", "R", "SE", "SR", "X"]
_SERIES = ["II", "III", "-6E", "LC", "7"]
_DESCRIPTORS = ["LC", "L", "XL", "LGP", "ZTS", "Turbo", "XLT", "LT", "SSR", "XT"]
_STATES = ["Alabama", "Arizona", "California", "Colorado", "Florida", "Georgia", "Illinois", "Maryland",
           "Mississippi", "North Carolina", "Ohio", "Pennsylvania", "Tennessee", "Texas", "Washington"]
_ENCLOSURE = {"OROPS": -0.1, "EROPS": 0.1, "EROPS w AC": 0.35, "EROPS AC": 0.3, "NO ROPS": -0.3,
              "None or Unspecified": -0.2}
_COUPLER = {"None or Unspecified": -0.15, "Yes": 0.2}
_FLOW = {"Standard": 0.0, "High Flow": 0.3, "None or Unspecified": -0.25}
_GROUSER = {"None or Unspecified": -0.1, "Yes": 0.3, "No": -0.25}
_HYDRAULICS = {"2 Valve": 0.0, "Auxiliary": 0.05, "Standard": 0.0, "Base + 1 Function": 0.05,
               "Base + 3 Function": 0.1, "4 Valve": 0.1, "3 Valve": 0.05}
_TIRES = {"None or Unspecified": 0.0, "23.5": 0.1, "26.5": 0.15, "17.5": -0.05, "20.5": 0.05, "14\"": -0.1}
_DRIVE = {"Two Wheel Drive": -0.05, "Four Wheel Drive": 0.1, "No": 0.0, "All Wheel Drive": 0.15}


def _pick(rng: np.random.Generator, values: list, n: int, p_missing: float = 0.0) -> np.ndarray:
    """`n` values drawn from `values`, a share `p_missing` of them missing (None, read back as NaN)."""
    out = np.array(values, dtype=object)[rng.integers(0, len(values), n)]
    out[rng.random(n) < p_missing] = None
    return out


def _effect(col: np.ndarray, table: dict) -> np.ndarray:
    return np.array([table.get(v, 0.0) if v is not None else 0.0 for v in col])


def _models(rng: np.random.Generator, n_models: int) -> pd.DataFrame:
    """One row per machine model: its id, name parts, group, class and size, and its price effect."""
    groups = _pick(rng, list(_GROUPS), n_models)
    bases = np.array([f"{'DLPWK'[i % 5]}{rng.integers(1, 9) * 10 + i % 9}" for i in range(n_models // 2)], dtype=object)
    base = bases[rng.integers(0, len(bases), n_models)]
    secondary = _pick(rng, _SECONDARY, n_models, 0.35)
    series = _pick(rng, _SERIES, n_models, 0.8)
    descriptor = _pick(rng, _DESCRIPTORS, n_models, 0.55)
    desc = ["".join(p for p in parts if p is not None) for parts in zip(base, secondary, series, descriptor)]
    klass = np.array([_CLASS_RANGES[g][rng.integers(0, len(_CLASS_RANGES[g]))] for g in groups], dtype=object)
    size = _pick(rng, _SIZES, n_models, 0.45)
    base_effect = {b: rng.normal(0, 0.3) for b in bases}
    sec_effect = {s: rng.normal(0, 0.15) for s in _SECONDARY}
    desc_effect = {d: e for d, e in zip(_DESCRIPTORS, np.linspace(-0.4, 0.4, len(_DESCRIPTORS)))}
    class_effect = {c: rng.normal(0, 0.2) for cs in _CLASS_RANGES.values() for c in cs}
    effect = (np.array([base_effect[b] for b in base]) + _effect(secondary, sec_effect)
              + _effect(descriptor, desc_effect) + _effect(groups, _GROUP_EFFECT) + _effect(klass, class_effect)
              + _effect(size, _SIZE_EFFECT))
    return pd.DataFrame({
        "ModelID": rng.choice(np.arange(1000, 38000), n_models, replace=False), "fiModelDesc": desc,
        "fiBaseModel": base, "fiSecondaryDesc": secondary, "fiModelSeries": series, "fiModelDescriptor": descriptor,
        "ProductSize": size, "fiProductClassDesc": klass, "ProductGroup": groups,
        "ProductGroupDesc": [_GROUPS[g] for g in groups], "effect": effect})


def _dates(rng: np.random.Generator, n: int, start: str, end: str) -> pd.Series:
    lo, hi = pd.Timestamp(start).value // 86_400_000_000_000, pd.Timestamp(end).value // 86_400_000_000_000
    return pd.Series(pd.to_datetime(rng.integers(lo, hi + 1, n), unit="D"))


def _machines(rng: np.random.Generator, models: pd.DataFrame, dates: pd.Series) -> tuple[pd.DataFrame, np.ndarray]:
    """The columns of one sale per date, and each sale's log price."""
    n = len(dates)
    m = models.iloc[rng.integers(0, len(models), n)].reset_index(drop=True)
    sale_year = dates.dt.year.to_numpy() + dates.dt.dayofyear.to_numpy() / 366
    age = rng.integers(0, 22, n)
    year_made = dates.dt.year.to_numpy() - age
    hours = np.where(rng.random(n) < 0.6, 0.0, np.round(rng.gamma(2.0, 1500.0, n) * (1 + age / 10)))
    usage = np.where(hours == 0, None,
                     np.where(hours < 3000, "Low", np.where(hours < 8000, "Medium", "High"))).astype(object)
    usage[rng.random(n) < 0.2] = None
    cols = {
        "MachineID": rng.integers(1_000_000, 2_500_000, n), "ModelID": m["ModelID"].to_numpy(),
        "datasource": rng.choice([121, 132, 136, 149, 172], n), "auctioneerID": rng.integers(0, 30, n),
        "YearMade": np.where(rng.random(n) < 0.1, 1000, year_made), "MachineHoursCurrentMeter": hours,
        "UsageBand": usage, "saledate": dates.dt.strftime("%m/%d/%Y 0:00").to_numpy(),
    }
    for c in ("fiModelDesc", "fiBaseModel", "fiSecondaryDesc", "fiModelSeries", "fiModelDescriptor", "ProductSize",
              "fiProductClassDesc"):
        cols[c] = m[c].to_numpy()
    cols["state"] = _pick(rng, _STATES, n)
    cols["ProductGroup"], cols["ProductGroupDesc"] = m["ProductGroup"].to_numpy(), m["ProductGroupDesc"].to_numpy()
    extra = {"Drive_System": (_DRIVE, 0.6), "Enclosure": (_ENCLOSURE, 0.01), "Hydraulics": (_HYDRAULICS, 0.2),
             "Tire_Size": (_TIRES, 0.6), "Coupler_System": (_COUPLER, 0.6), "Grouser_Tracks": (_GROUSER, 0.5),
             "Hydraulics_Flow": (_FLOW, 0.5)}
    year_shock = {y: 0.35 * np.sin(2 * np.pi * (y - 1998) / 7) for y in range(1990, 2021)}  # a market cycle, by year
    log_price = (10.0 + m["effect"].to_numpy() - 0.045 * age + 0.03 * (sale_year - 2005) - hours / 200_000
                 + np.array([year_shock[y] for y in dates.dt.year]))
    for c, (table, p_missing) in extra.items():
        cols[c] = _pick(rng, list(table), n, p_missing)
        log_price = log_price + _effect(cols[c], table)
    log_price += rng.normal(0, 0.12, n)
    return pd.DataFrame(cols), np.clip(log_price, 8.5, 11.8)


def write_bulldozers(folder: str | os.PathLike, n: int = 4000, n_test: int = 500, seed: int = 42) -> Path:
    """Write `TrainAndValid.csv` (`n` sales with `SalePrice`) and `Test.csv` (`n_test` later sales, no price) into
    `folder` (created), with the bulldozers columns the chapter uses; returns the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    models = _models(rng, 240)
    n_late = int(n * 0.12)
    dates = pd.concat([_dates(rng, n - n_late, "1998-01-01", "2011-09-30"),
                       _dates(rng, n_late, "2011-10-01", "2011-12-31")]).sort_values(ignore_index=True)
    df, log_price = _machines(rng, models, dates)
    df.insert(0, "SalesID", 1_139_246 + np.arange(n) * 1000 + rng.integers(0, 900, n))
    df.insert(1, "SalePrice", (np.round(np.exp(log_price) / 500) * 500).astype(np.int64))
    df.to_csv(folder / "TrainAndValid.csv", index=False)
    test_dates = _dates(rng, n_test, "2012-05-01", "2012-11-30").sort_values(ignore_index=True)
    test, _ = _machines(rng, models, test_dates)
    test.insert(0, "SalesID", 1_139_246 + (n + np.arange(n_test)) * 1000 + rng.integers(0, 900, n_test))
    test.to_csv(folder / "Test.csv", index=False)
    return folder


_WORKCLASS = ["Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov", "State-gov", "Without-pay"]
_EDUCATION = {"Preschool": 1, "1st-4th": 2, "5th-6th": 3, "7th-8th": 4, "9th": 5, "10th": 6, "11th": 7, "12th": 8,
              "HS-grad": 9, "Some-college": 10, "Assoc-voc": 11, "Assoc-acdm": 12, "Bachelors": 13, "Masters": 14,
              "Prof-school": 15, "Doctorate": 16}
_MARITAL = ["Married-civ-spouse", "Never-married", "Divorced", "Separated", "Widowed", "Married-spouse-absent"]
_OCCUPATION = ["Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial", "Prof-specialty",
               "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical", "Farming-fishing", "Transport-moving",
               "Protective-serv"]
_OCC_EFFECT = {"Exec-managerial": 0.8, "Prof-specialty": 0.7, "Tech-support": 0.3, "Sales": 0.2,
               "Protective-serv": 0.2, "Craft-repair": 0.0, "Adm-clerical": -0.2, "Transport-moving": -0.2,
               "Machine-op-inspct": -0.4, "Farming-fishing": -0.6, "Handlers-cleaners": -0.8, "Other-service": -0.9}
_RACE = ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"]
_COUNTRIES = ["United-States", "Mexico", "Philippines", "Germany", "Canada", "India", "England"]


def write_adult_sample(folder: str | os.PathLike, n: int = 3000, seed: int = 42) -> Path:
    """Write `adult.csv` (`n` rows, the columns of fastai's ADULT_SAMPLE) into `folder` (created); returns the
    folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    age = rng.integers(17, 80, n)
    edu_names = list(_EDUCATION)
    edu_p = np.array([1, 2, 3, 6, 5, 8, 10, 4, 90, 65, 12, 10, 50, 16, 5, 4], float)
    education = np.array(edu_names, dtype=object)[rng.choice(len(edu_names), n, p=edu_p / edu_p.sum())]
    edu_num = np.array([_EDUCATION[e] for e in education], dtype=float)
    marital = np.array(_MARITAL, dtype=object)[rng.choice(len(_MARITAL), n, p=[.46, .33, .13, .03, .03, .02])]
    sex = np.where(rng.random(n) < 0.67, "Male", "Female").astype(object)
    married = marital == "Married-civ-spouse"
    relationship = np.where(married, np.where(sex == "Male", "Husband", "Wife"),
                            _pick(rng, ["Not-in-family", "Own-child", "Unmarried", "Other-relative"], n)).astype(object)
    occupation = _pick(rng, _OCCUPATION, n, 0.05)
    hours = np.clip(np.round(rng.normal(40, 11, n)), 1, 99).astype(np.int64)
    gain = np.where(rng.random(n) < 0.08, rng.choice([2174, 3103, 5178, 7688, 10520, 15024, 99999], n), 0)
    loss = np.where(rng.random(n) < 0.05, rng.choice([1485, 1672, 1902, 1977, 2415], n), 0)
    logit = (-9.6 + 0.45 * edu_num + 0.05 * np.minimum(age, 60) + 1.9 * married + 0.025 * (hours - 40)
             + 0.4 * (sex == "Male") + 2.5 * (gain > 5000) + 0.6 * (loss > 0) + _effect(occupation, _OCC_EFFECT))
    salary = np.where(rng.random(n) < 1 / (1 + np.exp(-2 * logit)), ">=50k", "<50k")  # a sharp boundary
    edu_num[rng.random(n) < 0.15] = np.nan
    df = pd.DataFrame({
        "age": age, "workclass": _pick(rng, _WORKCLASS, n, 0.05), "fnlwgt": rng.integers(12_000, 800_000, n),
        "education": education, "education-num": edu_num, "marital-status": marital, "occupation": occupation,
        "relationship": relationship, "race": _pick(rng, _RACE, n), "sex": sex, "capital-gain": gain,
        "capital-loss": loss, "hours-per-week": hours, "native-country": _pick(rng, _COUNTRIES, n, 0.02),
        "salary": salary})
    df.to_csv(folder / "adult.csv", index=False)
    return folder
