"""Metrics over the whole validation set: `AccumMetric` keeps every batch's predictions and targets (on their
device, detached: no host-device synchronisation per batch) and applies its function once at the end;
`skm_to_fastai` turns a scikit-learn metric into one; the scikit-learn and scipy metrics fastai names.

scikit-learn and scipy are optional (`pip install 'minifastai[metrics]'`), imported when such a metric is made.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..torch_core import flatten_check
from .core import Metric, func_name

if TYPE_CHECKING:
    from ..learner import Learner


class ActivationType:
    """What `AccumMetric` applies to predictions first (fastai's names and values)."""

    No = "no"
    Sigmoid = "sigmoid"
    Softmax = "softmax"
    BinarySoftmax = "binarysoftmax"


def _skm() -> Any:
    try:
        import sklearn.metrics as skm
    except ImportError as e:
        raise ImportError("this metric wraps scikit-learn: pip install 'minifastai[metrics]' (or scikit-learn)") from e
    return skm


def _scs() -> Any:
    try:
        import scipy.stats as scs
    except ImportError as e:
        raise ImportError("this metric wraps scipy: pip install 'minifastai[metrics]' (or scipy)") from e
    return scs


def _detach(x: Any) -> Any:
    return x.detach() if isinstance(x, torch.Tensor) else x


class AccumMetric(Metric):
    """`func(preds, targs, **kwargs)` on everything a validation pass saw (fastai's `AccumMetric`).

    Per batch, predictions go through `activation` (softmax over `dim_argmax`, the last column of it for
    `BinarySoftmax`, or sigmoid), else an arg-max over `dim_argmax`, then `>= thresh` when given; predictions and
    targets are flattened (`flatten`). `to_np` hands numpy arrays to `func`; `invert_arg` calls
    `func(targs, preds)` (scikit-learn's order). Batches stay on their device until `value` concatenates them.
    """

    def __init__(self, func: Callable[..., Any], dim_argmax: int | None = None, activation: str = ActivationType.No,
                 thresh: float | None = None, to_np: bool = False, invert_arg: bool = False, flatten: bool = True,
                 name: str | None = None, **kwargs: Any) -> None:
        if activation not in vars(ActivationType).values():
            raise ValueError(f"activation must be one of ActivationType's: no, sigmoid, softmax, binarysoftmax; "
                             f"got {activation!r}")
        self.func, self.dim_argmax, self.activation, self.thresh = func, dim_argmax, activation, thresh
        self.to_np, self.invert_args, self.flatten, self.kwargs = to_np, invert_arg, flatten, kwargs
        self.name = name or func_name(func)
        self.reset()

    def reset(self) -> None:
        """Forget the accumulated predictions and targets."""
        self.preds: list[Any] = []
        self.targs: list[Any] = []

    def accumulate(self, learn: Learner) -> None:
        """Keep this batch's (activated) predictions and its target `learn.y`."""
        pred = learn.pred
        if self.activation in (ActivationType.Softmax, ActivationType.BinarySoftmax):
            pred = F.softmax(pred, dim=-1 if self.dim_argmax is None else self.dim_argmax)
            if self.activation == ActivationType.BinarySoftmax:
                pred = pred[:, -1]
        elif self.activation == ActivationType.Sigmoid:
            pred = torch.sigmoid(pred)
        elif self.dim_argmax:
            pred = pred.argmax(dim=self.dim_argmax)
        if self.thresh:
            pred = pred >= self.thresh
        self.accum_values(pred, learn.y)

    def accum_values(self, preds: Any, targs: Any, learn: Learner | None = None) -> None:
        """Keep `preds` and `targs` (detached, flattened when `flatten`)."""
        preds, targs = _detach(preds), _detach(targs)
        if self.flatten:
            preds, targs = flatten_check(preds, targs)
        self.preds.append(preds)
        self.targs.append(targs)

    def __call__(self, preds: Any, targs: Any) -> Any:
        """The metric of one batch."""
        self.reset()
        self.accum_values(preds, targs)
        return self.value

    @property
    def value(self) -> Any:
        """`func` on everything accumulated (None before any batch)."""
        if not self.preds:
            return None
        preds: Any = torch.cat(self.preds).cpu()  # one read, at the end
        targs: Any = torch.cat(self.targs).cpu()
        if self.to_np:
            preds, targs = preds.numpy(), targs.numpy()
        return self.func(targs, preds, **self.kwargs) if self.invert_args else self.func(preds, targs, **self.kwargs)


def skm_to_fastai(func: Callable[..., Any], is_class: bool = True, thresh: float | None = None, axis: int = -1,
                  activation: str | None = None, **kwargs: Any) -> AccumMetric:
    """A scikit-learn metric `func(y_true, y_pred, **kwargs)` as a metric: single-label classification takes the
    arg-max over `axis`; with `thresh`, multi-label (sigmoid, then `>= thresh`); `is_class=False`, regression."""
    dim_argmax = axis if is_class and thresh is None else None
    if activation is None:
        activation = ActivationType.Sigmoid if (is_class and thresh is not None) else ActivationType.No
    return AccumMetric(func, dim_argmax=dim_argmax, activation=activation, thresh=thresh, to_np=True,
                       invert_arg=True, **kwargs)


def optim_metric(f: Callable[..., Any], argname: str, bounds: tuple[float, float], tol: float = 0.01,
                 do_neg: bool = True, get_x: bool = False) -> Callable[..., Any]:
    """`f` with its argument `argname` chosen within `bounds` to maximise it (scipy's bounded scalar search)."""
    import scipy.optimize

    def _f(preds: Any, targs: Any) -> Any:
        def minfunc(x: float) -> float:
            res = f(preds, targs, **{argname: x})
            return -res if do_neg else res

        opt = scipy.optimize.minimize_scalar(minfunc, bounds=bounds, method="bounded", options={"xatol": tol})
        fun = -opt.fun if do_neg else opt.fun
        return (fun, opt.x) if get_x else fun

    _f.__name__ = f"opt_{f.__name__}"
    return _f


# ---- single-label classification (scikit-learn) --------------------------------------------------------------
def APScoreBinary(axis: int = -1, average: str = "macro", pos_label: int = 1,  # noqa: N802 (fastai's names)
                  sample_weight: Any = None) -> AccumMetric:
    """Average precision for single-label binary classification."""
    return skm_to_fastai(_skm().average_precision_score, axis=axis, activation=ActivationType.BinarySoftmax,
                         average=average, pos_label=pos_label, sample_weight=sample_weight)


def BalancedAccuracy(axis: int = -1, sample_weight: Any = None, adjusted: bool = False) -> AccumMetric:  # noqa: N802
    """Balanced accuracy for single-label classification."""
    return skm_to_fastai(_skm().balanced_accuracy_score, axis=axis, sample_weight=sample_weight, adjusted=adjusted)


def BrierScore(axis: int = -1, sample_weight: Any = None, pos_label: Any = None) -> AccumMetric:  # noqa: N802
    """Brier score for single-label classification."""
    return skm_to_fastai(_skm().brier_score_loss, axis=axis, sample_weight=sample_weight, pos_label=pos_label)


def CohenKappa(axis: int = -1, labels: Any = None, weights: Any = None,  # noqa: N802
               sample_weight: Any = None) -> AccumMetric:
    """Cohen's kappa for single-label classification."""
    return skm_to_fastai(_skm().cohen_kappa_score, axis=axis, labels=labels, weights=weights,
                         sample_weight=sample_weight)


def F1Score(axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary",  # noqa: N802
            sample_weight: Any = None) -> AccumMetric:
    """F1 score for single-label classification."""
    return skm_to_fastai(_skm().f1_score, axis=axis, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight)


def FBeta(beta: float, axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary",  # noqa: N802
          sample_weight: Any = None) -> AccumMetric:
    """F-beta score for single-label classification."""
    return skm_to_fastai(_skm().fbeta_score, axis=axis, beta=beta, labels=labels, pos_label=pos_label,
                         average=average, sample_weight=sample_weight)


def HammingLoss(axis: int = -1, sample_weight: Any = None) -> AccumMetric:  # noqa: N802
    """Hamming loss for single-label classification."""
    return skm_to_fastai(_skm().hamming_loss, axis=axis, sample_weight=sample_weight)


def Jaccard(axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary",  # noqa: N802
            sample_weight: Any = None) -> AccumMetric:
    """Jaccard score for single-label classification."""
    return skm_to_fastai(_skm().jaccard_score, axis=axis, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight)


def Precision(axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary",  # noqa: N802
              sample_weight: Any = None) -> AccumMetric:
    """Precision for single-label classification."""
    return skm_to_fastai(_skm().precision_score, axis=axis, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight)


def Recall(axis: int = -1, labels: Any = None, pos_label: int = 1, average: str = "binary",  # noqa: N802
           sample_weight: Any = None) -> AccumMetric:
    """Recall for single-label classification."""
    return skm_to_fastai(_skm().recall_score, axis=axis, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight)


def RocAuc(axis: int = -1, average: str = "macro", sample_weight: Any = None, max_fpr: float | None = None,  # noqa: N802
           multi_class: str = "ovr") -> AccumMetric:
    """ROC AUC for single-label multi-class classification (softmax probabilities, one-vs-rest by default)."""
    if multi_class not in ("ovr", "ovo"):
        raise ValueError(f"multi_class must be 'ovr' or 'ovo', got {multi_class!r}")
    return skm_to_fastai(_skm().roc_auc_score, axis=axis, activation=ActivationType.Softmax, flatten=False,
                         average=average, sample_weight=sample_weight, max_fpr=max_fpr, multi_class=multi_class)


def RocAucBinary(axis: int = -1, average: str = "macro", sample_weight: Any = None,  # noqa: N802
                 max_fpr: float | None = None, multi_class: str = "raise") -> AccumMetric:
    """ROC AUC for single-label binary classification (the positive class's softmax probability)."""
    return skm_to_fastai(_skm().roc_auc_score, axis=axis, activation=ActivationType.BinarySoftmax, average=average,
                         sample_weight=sample_weight, max_fpr=max_fpr, multi_class=multi_class)


def MatthewsCorrCoef(sample_weight: Any = None, **kwargs: Any) -> AccumMetric:  # noqa: N802
    """Matthews correlation coefficient for single-label classification."""
    return skm_to_fastai(_skm().matthews_corrcoef, sample_weight=sample_weight, **kwargs)


# ---- multi-label classification (scikit-learn) ---------------------------------------------------------------
def _multi(func: Callable[..., Any], thresh: float | None, sigmoid: bool, **kwargs: Any) -> AccumMetric:
    act = ActivationType.Sigmoid if sigmoid else ActivationType.No
    return skm_to_fastai(func, thresh=thresh, activation=act, flatten=False, **kwargs)


def APScoreMulti(sigmoid: bool = True, average: str = "macro", pos_label: int = 1,  # noqa: N802
                 sample_weight: Any = None) -> AccumMetric:
    """Average precision for multi-label classification."""
    return _multi(_skm().average_precision_score, None, sigmoid, average=average, pos_label=pos_label,
                  sample_weight=sample_weight)


def BrierScoreMulti(thresh: float = 0.5, sigmoid: bool = True, sample_weight: Any = None,  # noqa: N802
                    pos_label: Any = None) -> AccumMetric:
    """Brier score for multi-label classification."""
    return _multi(_skm().brier_score_loss, thresh, sigmoid, sample_weight=sample_weight, pos_label=pos_label)


def F1ScoreMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1,  # noqa: N802
                 average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """F1 score for multi-label classification."""
    return _multi(_skm().f1_score, thresh, sigmoid, labels=labels, pos_label=pos_label, average=average,
                  sample_weight=sample_weight)


def FBetaMulti(beta: float, thresh: float = 0.5, sigmoid: bool = True, labels: Any = None,  # noqa: N802
               pos_label: int = 1, average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """F-beta score for multi-label classification."""
    return _multi(_skm().fbeta_score, thresh, sigmoid, beta=beta, labels=labels, pos_label=pos_label,
                  average=average, sample_weight=sample_weight)


def HammingLossMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None,  # noqa: N802
                     sample_weight: Any = None) -> AccumMetric:
    """Hamming loss for multi-label classification."""
    return _multi(_skm().hamming_loss, thresh, sigmoid, sample_weight=sample_weight)


def JaccardMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1,  # noqa: N802
                 average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """Jaccard score for multi-label classification."""
    return _multi(_skm().jaccard_score, thresh, sigmoid, labels=labels, pos_label=pos_label, average=average,
                  sample_weight=sample_weight)


def MatthewsCorrCoefMulti(thresh: float = 0.5, sigmoid: bool = True,  # noqa: N802
                          sample_weight: Any = None) -> AccumMetric:
    """Matthews correlation coefficient for multi-label classification."""
    return _multi(_skm().matthews_corrcoef, thresh, sigmoid, sample_weight=sample_weight)


def PrecisionMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1,  # noqa: N802
                   average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """Precision for multi-label classification."""
    return _multi(_skm().precision_score, thresh, sigmoid, labels=labels, pos_label=pos_label, average=average,
                  sample_weight=sample_weight)


def RecallMulti(thresh: float = 0.5, sigmoid: bool = True, labels: Any = None, pos_label: int = 1,  # noqa: N802
                average: str = "macro", sample_weight: Any = None) -> AccumMetric:
    """Recall for multi-label classification."""
    return _multi(_skm().recall_score, thresh, sigmoid, labels=labels, pos_label=pos_label, average=average,
                  sample_weight=sample_weight)


def RocAucMulti(sigmoid: bool = True, average: str = "macro", sample_weight: Any = None,  # noqa: N802
                max_fpr: float | None = None) -> AccumMetric:
    """ROC AUC for multi-label classification."""
    return _multi(_skm().roc_auc_score, None, sigmoid, average=average, sample_weight=sample_weight, max_fpr=max_fpr)


# ---- regression --------------------------------------------------------------------------------------------
def msle(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    """Mean squared logarithmic error."""
    inp, targ = flatten_check(inp, targ)
    return F.mse_loss(torch.log1p(inp), torch.log1p(targ))


def _exp_rmspe(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    inp, targ = torch.exp(inp), torch.exp(targ)
    return torch.sqrt(((targ - inp) / targ).pow(2).mean())


exp_rmspe = AccumMetric(_exp_rmspe)
"""Root mean square percentage error of the exponentials of predictions and targets (over the validation set)."""


def ExplainedVariance(sample_weight: Any = None) -> AccumMetric:  # noqa: N802
    """Explained variance of predictions against targets."""
    return skm_to_fastai(_skm().explained_variance_score, is_class=False, sample_weight=sample_weight)


def R2Score(sample_weight: Any = None) -> AccumMetric:  # noqa: N802
    """R² of predictions against targets."""
    return skm_to_fastai(_skm().r2_score, is_class=False, sample_weight=sample_weight)


def PearsonCorrCoef(dim_argmax: int | None = None, **kwargs: Any) -> AccumMetric:  # noqa: N802
    """Pearson correlation of predictions and targets (scipy)."""
    scs = _scs()

    def pearsonr(x: Any, y: Any) -> Any:
        return scs.pearsonr(x, y)[0]

    return AccumMetric(pearsonr, invert_arg=False, dim_argmax=dim_argmax, **kwargs)


def SpearmanCorrCoef(dim_argmax: int | None = None, axis: int = 0, nan_policy: str = "propagate",  # noqa: N802
                     **kwargs: Any) -> AccumMetric:
    """Spearman rank correlation of predictions and targets (scipy)."""
    scs = _scs()

    def spearmanr(a: Any, b: Any = None, **kw: Any) -> Any:
        return scs.spearmanr(a, b, **kw)[0]

    return AccumMetric(partial(spearmanr, axis=axis, nan_policy=nan_policy), invert_arg=False,
                       dim_argmax=dim_argmax, **kwargs)
