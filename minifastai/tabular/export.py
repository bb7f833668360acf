"""Rebuilding an exported tabular learner; registered with `minifastai.persist`'s rebuilder registry."""
from __future__ import annotations

import math
from typing import Any

import torch

from ..persist.registry import register_rebuilder
from .blocks import Y_KINDS, _default_loss
from .columns import NA
from .dataloaders import TabularDataLoaders
from .learner import TabularLearner
from .model import TabularModel
from .processor import TabularProcessor
from .procs import FILL_STRATEGIES, PROCS


def _check_model_config(cfg: Any, where: str) -> dict:
    """The TabularModel arguments of an export, checked for types and sizes (before anything is built)."""
    if not isinstance(cfg, dict):
        raise ValueError(f"{where} is not a dict of TabularModel arguments")
    keys = {"emb_szs", "n_cont", "out_sz", "layers", "ps", "embed_p", "y_range", "use_bn", "bn_final", "bn_cont"}
    if set(cfg) - keys or {"emb_szs", "n_cont", "out_sz", "layers"} - set(cfg):
        raise ValueError(f"{where} has entries {sorted(cfg)}; expected {sorted(keys)}")

    def count(v: Any, what: str) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{where}[{what}] must be a non-negative int, got {v!r}")
        return v

    for i, e in enumerate(cfg["emb_szs"]):
        if not isinstance(e, (list, tuple)) or len(e) != 2:
            raise ValueError(f"{where}['emb_szs'][{i}] must be (vocab size, width), got {e!r}")
        for k in (0, 1):
            count(e[k], f"'emb_szs'][{i}][{k}")
    for key in ("n_cont", "out_sz"):
        count(cfg[key], repr(key))
    for i, n in enumerate(cfg["layers"]):
        count(n, f"'layers'][{i}")
    return cfg


def _column_list(v: Any, where: str) -> list:
    if not isinstance(v, list) or not all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in v):
        raise ValueError(f"{where} must be a list of column names, got {str(v)[:80]}")
    if len(set(v)) != len(v):
        raise ValueError(f"{where} lists a column more than once: {v}")
    return v


def _distinct(values: list) -> bool:
    """Plain values (str, int, float, bool), none twice (True and 1 count as different)."""
    return (all(isinstance(v, (str, int, float, bool)) for v in values)
            and len({(type(v), v) for v in values}) == len(values))


def _number(v: Any, where: str, positive: bool = False) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{where} must be a finite number{' above 0' if positive else ''}, got {v!r}")


def _numbers_by_column(v: Any, cols: list, where: str, positive: bool = False) -> None:
    if not isinstance(v, dict) or set(v) != set(cols):
        raise ValueError(f"{where} must have one entry per continuous column {cols}, got "
                         f"{sorted(map(str, v)) if isinstance(v, dict) else type(v).__name__}")
    for c, x in v.items():
        _number(x, f"{where}[{c!r}]", positive)


def _check_proc(name: str, st: dict, cont: list, where: str) -> None:
    """One proc's fitted state, checked against the continuous columns (`where` names the entry)."""
    expected = {"FillMissing": {"fill_strategy", "fill_val", "add_col", "fill", "na_cols"},
                "Categorify": {"classes"}, "Normalize": {"means", "stds"}}[name]
    if set(st) != expected:
        raise ValueError(f"{where} ({name}) has entries {sorted(map(str, st))}; expected {sorted(expected)}")
    if name == "FillMissing":
        if st["fill_strategy"] not in FILL_STRATEGIES:
            raise ValueError(f"{where}['fill_strategy'] is {st['fill_strategy']!r}, not one of {FILL_STRATEGIES}")
        _number(st["fill_val"], f"{where}['fill_val']")
        if not isinstance(st["add_col"], bool):
            raise ValueError(f"{where}['add_col'] must be True or False, got {st['add_col']!r}")
        _numbers_by_column(st["fill"], cont, f"{where}['fill']")
        na = _column_list(st["na_cols"], f"{where}['na_cols']")
        if set(na) - set(cont):
            raise ValueError(f"{where}['na_cols'] names {sorted(set(na) - set(cont))}, not continuous columns {cont}")
    elif name == "Categorify" and not isinstance(st["classes"], dict):
        raise ValueError(f"{where}['classes'] must be a dict of vocabs by column, got {type(st['classes']).__name__}")
    elif name == "Normalize":  # a std of 0 divides by zero, a NaN mean turns every value into NaN
        _numbers_by_column(st["means"], cont, f"{where}['means']")
        _numbers_by_column(st["stds"], cont, f"{where}['stds']", positive=True)


def _check_processor_state(tab: Any, cfg: dict, weights: Any, where: str) -> None:
    """The tabular processor's state of an export, checked against itself and the model configuration `cfg`
    (the embeddings, `n_cont`, the regression's outputs) before anything is built; errors name `where`. An
    embedding whose configured size differs from its stored `weights` is left to load_learner's shape check."""
    weights = weights if isinstance(weights, dict) else {}
    keys = {"cat_names", "cont_names", "y_names", "y_kind", "vocab", "procs"}
    if not isinstance(tab, dict) or set(tab) != keys:
        raise ValueError(f"{where} has entries {sorted(map(str, tab)) if isinstance(tab, dict) else tab!r}; "
                         f"expected {sorted(keys)}")
    cats, cont = _column_list(tab["cat_names"], f"{where}['cat_names']"), _column_list(tab["cont_names"],
                                                                                         f"{where}['cont_names']")
    ys = _column_list(tab["y_names"], f"{where}['y_names']")
    if not ys:
        raise ValueError(f"{where}['y_names'] is empty: an exported learner predicts a target column")
    if tab["y_kind"] not in Y_KINDS:
        raise ValueError(f"{where}: unknown target kind {tab['y_kind']!r} in the export (known: {list(Y_KINDS)})")
    if tab["y_kind"] != "regression" and not (isinstance(tab["vocab"], list) and tab["vocab"] and
                                              _distinct(tab["vocab"])):
        raise ValueError(f"{where}['vocab'] must list the distinct classes of the {tab['y_kind']} target, got "
                         f"{str(tab['vocab'])[:80]}")
    if not isinstance(tab["procs"], list):
        raise ValueError(f"{where}['procs'] must be a list, got {type(tab['procs']).__name__}")
    states: dict[str, dict] = {}
    for i, d in enumerate(tab["procs"]):
        w = f"{where}['procs'][{i}]"
        if not isinstance(d, dict) or set(d) != {"name", "state"} or not isinstance(d["state"], dict):
            raise ValueError(f"{w} must be a dict {{'name': ..., 'state': {{...}}}}, got {str(d)[:80]}")
        if d["name"] not in PROCS:
            raise ValueError(f"{w}: unknown proc {d['name']!r} in the export: only {sorted(PROCS)} are rebuilt")
        if d["name"] in states:
            raise ValueError(f"{w}: proc {d['name']} appears twice")
        _check_proc(d["name"], d["state"], cont, f"{w}['state']")
        states[d["name"]] = d["state"]
    fm = states.get("FillMissing")
    flags = [f"{c}_na" for c in fm["na_cols"]] if fm is not None and fm["add_col"] else []
    inputs = cats + flags
    classes = states.get("Categorify", {}).get("classes")
    if (inputs or classes is not None) and set(classes or {}) != set(inputs):
        raise ValueError(f"{where}: the categorical inputs {inputs} need one Categorify vocab each, got "
                         f"{'no Categorify' if classes is None else sorted(map(str, classes))}")
    for c, vocab in (classes or {}).items():
        if not (isinstance(vocab, list) and vocab and vocab[0] == NA and _distinct(vocab)):
            raise ValueError(f"{where}: Categorify's vocab of {c!r} must be a list of distinct values starting "
                             f"with {NA!r}, got {str(vocab)[:80]}")
    embs = cfg["emb_szs"]
    if len(embs) != len(inputs):
        raise ValueError(f"{where} names {len(inputs)} categorical input(s) {inputs}, but the model has "
                         f"{len(embs)} embedding(s): the file is inconsistent (crafted or damaged)")
    for i, (c, (n, _)) in enumerate(zip(inputs, embs)):
        stored = weights.get(f"embeds.{i}.weight")
        if isinstance(stored, torch.Tensor) and stored.shape[:1] != (n,):
            continue  # the configuration does not fit its own weights: load_learner's shape check says so
        if classes is not None and n != len(classes[c]):
            raise ValueError(f"{where}: column {c!r} has {len(classes[c])} categories, but its embedding has {n} "
                             "rows: the file is inconsistent (crafted or damaged)")
    if cfg["n_cont"] != len(cont):
        raise ValueError(f"{where} names {len(cont)} continuous column(s) {cont}, but the model takes "
                         f"n_cont={cfg['n_cont']}: the file is inconsistent (crafted or damaged)")
    if tab["y_kind"] == "regression" and cfg["out_sz"] != len(ys):
        raise ValueError(f"{where}: the regression has {len(ys)} target column(s) {ys}, but the model has "
                         f"{cfg['out_sz']} output(s): the file is inconsistent (crafted or damaged)")


def rebuild_learner(state: dict, device: torch.device | str = "cpu", source: str | None = None) -> TabularLearner:
    """The learner `load_learner` needs for an exported tabular learner (weights are loaded afterwards). The model
    configuration's fields and the processor's state (against the model) are checked here (errors name `source`,
    the file); `load_learner` runs this first on
    the meta device and compares the model's shapes with the stored weights before building it for real."""
    where = source or "the export"
    cfg = _check_model_config(state["builder"].get("model"), f"{where}: builder['model']")
    _check_processor_state(state["dls"]["tabular"], cfg, state.get("model"), f"{where}: dls['tabular']")
    processor = TabularProcessor.from_state(state["dls"]["tabular"])
    dls = TabularDataLoaders(None, None, processor, device=device)
    model = TabularModel(**cfg)
    learn = TabularLearner(dls, model, loss_func=_default_loss(processor.y_kind), activation=state.get("activation"),
                           group_names=state.get("group_names"))
    learn.export_info = state["builder"]
    return learn


register_rebuilder("minifastai.tabular", rebuild_learner)
