"""`TabularLearner` and `tabular_learner`."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from torch import nn

from ..learner import Learner
from .dataloaders import TabularDataLoaders
from .loader import TabularLoader, _display
from .model import TabularModel, get_emb_sz, tabular_config


class TabularRow:
    """The first thing `predict` returns, as in fastai: the row as the model saw it (categories, with `#na#`
    for unseen or missing ones, and continuous values after FillMissing) and the prediction in the target
    column(s). `items` is that one-row DataFrame; `show()` displays it."""

    def __init__(self, items: pd.DataFrame) -> None:
        self.items = items

    def show(self) -> None:
        """Display the row (a table in notebooks, text elsewhere)."""
        _display(self.items)

    def __repr__(self) -> str:
        return f"TabularRow\n{self.items.to_string()}"


class TabularLearner(Learner):
    """A `Learner` whose `predict` takes a table row and answers as fastai's `TabularLearner`."""

    dls: TabularDataLoaders

    def fit_checked(self, args: dict[str, Any], reset_opt: bool = False) -> None:
        """`Learner.fit_checked` (what every fit runs), after checking that the training batches carry targets (else
        nothing would train)."""
        train = self.dls.train
        if isinstance(train, TabularLoader) and len(train.tensors) < 3:
            raise ValueError("dls.train yields batches without targets (only inputs, e.g. a test_dl): training "
                             "would compute no loss and change nothing; train on rows that include the targets")
        super().fit_checked(args, reset_opt)

    def predict(self, row: pd.Series | pd.DataFrame | Mapping, with_input: bool = False) -> tuple:
        """`row, clas, probs = learn.predict(df.iloc[0])`: the decoded row with the prediction in the target
        column(s), the class index (a tensor; multi-label: one bool per class; regression: the predicted values)
        and the probabilities (for a regression the predicted values); `with_input` puts the processed row's
        `(x_cat, x_cont)` first."""
        df = self.dls.item_frame(row)
        x_cat, x_cont = self.dls.processor.process(df, with_y=False)
        preds, _ = self.get_preds(dl=[(x_cat.long(), x_cont)])
        probs = preds[0]
        if self.dls.y_kind == "category":
            clas = probs.argmax()
            y = clas.reshape(1, 1)
        elif self.dls.y_kind == "multi_category":  # fastai's: one bool per class
            clas = probs > 0.5
            y = clas.float().reshape(1, -1)
        else:
            clas, y = probs, probs.reshape(1, -1)
        res = TabularRow(self.dls.processor.decode(x_cat, x_cont, y, raw=df)), clas, probs
        return ((x_cat[0], x_cont[0]), *res) if with_input else res

    def show_results(self, ds_idx: int = 1, dl: Any = None, max_n: int = 10) -> pd.DataFrame:
        """The first `max_n` rows of a batch (default: the validation set's first), decoded, with the targets and
        the predictions in `<target>_pred` columns (fastai's); shown, and returned."""
        loader = dl if dl is not None else self.dls[ds_idx]
        if loader is None:
            raise ValueError(f"dls[{ds_idx}] is empty: nothing to show")
        batch = next(iter(loader))
        if len(batch) < 3:
            raise ValueError("show_results needs batches with their targets (this loader yields inputs only)")
        batch = [t[:max_n] for t in batch]
        preds, _ = self.get_preds(dl=[tuple(batch)])
        if self.dls.y_kind == "category":
            pred_y = preds.argmax(-1).reshape(-1, 1)
        elif self.dls.y_kind == "multi_category":
            pred_y = (preds > 0.5).float()
        else:
            pred_y = preds.reshape(len(preds), -1)
        proc = self.dls.processor
        df = proc.decode(batch[0], batch[1], batch[2])
        pred_df = proc.decode(batch[0], batch[1], pred_y)
        for c in proc.y_names:
            df[f"{c}_pred"] = pred_df[c].to_numpy()
        _display(df)
        return df


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def tabular_learner(dls: TabularDataLoaders, layers: Sequence[int] = (200, 100),
                    emb_szs: Mapping[str, int] | None = None, ps: float | Sequence[float] | None = None,
                    embed_p: float = 0.0, y_range: tuple[float, float] | None = None,
                    n_out: int | None = None,
                    use_bn: bool = True, bn_final: bool = False, bn_cont: bool = True,
                    config: Mapping[str, Any] | None = None, **learner_kwargs: Any) -> TabularLearner:
    """A `TabularLearner` with a `TabularModel` for `dls`: the data's loss (cross-entropy for classification,
    MSE for regression). The model is one layer group, so give `fit_one_cycle` a float LR. `config` (fastai's
    `tabular_config(ps=..., embed_p=..., ...)`) gives the model's arguments instead of the keywords."""
    if not isinstance(dls, TabularDataLoaders):
        raise TypeError(f"tabular_learner needs TabularDataLoaders, got {type(dls).__name__}")
    if config is not None:
        conf = tabular_config(**config)  # checks the names
        ps, embed_p = conf.get("ps", ps), conf.get("embed_p", embed_p)
        y_range = conf.get("y_range", y_range) if y_range is None else y_range
        use_bn, bn_final, bn_cont = conf.get("use_bn", use_bn), conf.get("bn_final", bn_final), conf.get(
            "bn_cont", bn_cont)
    if y_range is not None:
        if len(y_range) != 2 or not float(y_range[0]) < float(y_range[1]):
            raise ValueError(f"y_range must be (low, high) with low < high, got {y_range!r}")
        y_range = (float(y_range[0]), float(y_range[1]))
    out_sz = int(n_out or dls.c)
    if dls.y_kind == "regression" and out_sz != len(dls.y_names):
        raise ValueError(f"n_out={out_sz} but the regression has {len(dls.y_names)} target column(s) "
                         f"{dls.y_names}: one output per target column")
    loss = learner_kwargs.get("loss_func")
    if dls.y_kind == "category" and type(loss) is nn.CrossEntropyLoss:
        raise ValueError("tabular targets have shape (batch, 1), as in fastai, and nn.CrossEntropyLoss wants "
                         "(batch,): leave loss_func out (the default flattens) or pass a flattening loss")
    cfg: dict[str, Any] = {"emb_szs": [list(e) for e in get_emb_sz(dls, emb_szs)], "n_cont": len(dls.cont_names),
           "out_sz": out_sz, "layers": [int(x) for x in layers],
           "ps": ps if ps is None or isinstance(ps, (int, float)) else [float(p) for p in ps],
           "embed_p": float(embed_p), "y_range": None if y_range is None else list(y_range),
           "use_bn": use_bn, "bn_final": bn_final, "bn_cont": bn_cont}
    model = TabularModel(**cfg)
    train = dls.train
    if isinstance(train, TabularLoader) and 1 in train.sizes and _has_batchnorm(model):
        raise ValueError(f"the training loader has a batch of one row (bs={train.bs}, {train.n} rows) and the model "
                         "has BatchNorm, which cannot train on one row: use bs >= 2 (and at least 2 training rows)")
    learner_kwargs.setdefault("loss_func", dls.loss_func)
    learner_kwargs.setdefault("path", dls.path)
    learn = TabularLearner(dls, model, **learner_kwargs)
    learn.export_info = {"module": "minifastai.tabular", "model": cfg}
    return learn
