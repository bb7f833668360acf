"""Rebuilding an exported tabular learner; registered with `minifastai.persist`'s rebuilder registry."""
from __future__ import annotations

from typing import Any

import torch

from ..persist.registry import register_rebuilder
from .blocks import _default_loss
from .dataloaders import TabularDataLoaders
from .learner import TabularLearner
from .model import TabularModel
from .processor import TabularProcessor


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


def rebuild_learner(state: dict, device: torch.device | str = "cpu", source: str | None = None) -> TabularLearner:
    """The learner `load_learner` needs for an exported tabular learner (weights are loaded afterwards). The model
    configuration's fields are checked here (errors name `source`, the file); `load_learner` runs this first on
    the meta device and compares the model's shapes with the stored weights before building it for real."""
    cfg = _check_model_config(state["builder"].get("model"), f"{source or 'the export'}: builder['model']")
    processor = TabularProcessor.from_state(state["dls"]["tabular"])
    dls = TabularDataLoaders(None, None, processor, device=device)
    model = TabularModel(**cfg)
    learn = TabularLearner(dls, model, loss_func=_default_loss(processor.y_kind), activation=state.get("activation"),
                           group_names=state.get("group_names"))
    learn.export_info = state["builder"]
    return learn


register_rebuilder("minifastai.tabular", rebuild_learner)
