"""AccumMetric and the scikit-learn metrics in a real fit: values equal scikit-learn's on the whole validation set
(not a mean of per-batch values), predictions stay on their device until the end, bad arguments are named."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from helpers import make_learner, synth_dls
from sklearn import metrics as skm

from minifastai import AccumMetric, F1Score, RocAucBinary, skm_to_fastai
from minifastai.metrics import ActivationType, CorpusBLEUMetric, DiceMulti, RocAuc


def test_sklearn_metrics_in_a_fit_equal_sklearn_on_the_whole_validation_set():
    learn = make_learner(dls=synth_dls(n_valid=70, bs=32), metrics=[RocAucBinary(), F1Score(),
                                                                     skm_to_fastai(skm.balanced_accuracy_score)])
    learn.fit(1, 1e-2)
    preds, targs = learn.get_preds()
    row = dict(zip(learn.recorder.metric_names[1:-1], learn.recorder.values[-1]))
    assert row["roc_auc_score"] == pytest.approx(skm.roc_auc_score(targs, preds[:, 1]), rel=1e-6)
    assert row["f1_score"] == pytest.approx(skm.f1_score(targs, preds.argmax(1)), rel=1e-6)
    assert row["balanced_accuracy_score"] == pytest.approx(skm.balanced_accuracy_score(targs, preds.argmax(1)),
                                                           rel=1e-6)
    # a per-batch mean would differ: the validation set has batches of 32, 32 and 6
    per_batch = np.mean([skm.roc_auc_score(targs[i:i + 32], preds[i:i + 32, 1]) for i in (0, 32)])
    assert abs(per_batch - row["roc_auc_score"]) > 1e-6 or len(set(targs[64:].tolist())) < 2


def test_predictions_are_kept_on_their_device_and_read_once():
    m = AccumMetric(lambda p, t: float((p == t).float().mean()), dim_argmax=-1)
    m.reset()
    m.accum_values(torch.tensor([0, 1]), torch.tensor([0, 0]))
    assert all(isinstance(p, torch.Tensor) for p in m.preds) and m.value == 0.5


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="activation must be one of ActivationType's"):
        AccumMetric(lambda p, t: 0, activation="relu")
    with pytest.raises(ValueError, match="multi_class must be 'ovr' or 'ovo'"):
        RocAuc(multi_class="both")
    assert ActivationType.BinarySoftmax == "binarysoftmax"


def test_a_missing_scikit_learn_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)
    with pytest.raises(ImportError, match=r"pip install 'minifastai\[metrics\]'"):
        F1Score()


def test_dice_multi_and_bleu_by_hand():
    class L:  # what a metric reads from a learner
        training = False

    learn = L()
    learn.pred = torch.tensor([[[[5.0, 0.0]], [[0.0, 5.0]]]])  # (1, 2 classes, 1, 2): predicts class 0 then 1
    learn.y = torch.tensor([[[0, 0]]])
    d = DiceMulti()
    d.accumulate(learn)
    assert d.value == pytest.approx((2 * 1 / 3 + 0.0) / 2)  # class 0: 2*1/(1+2); class 1: 0
    b = CorpusBLEUMetric()
    learn.pred = torch.nn.functional.one_hot(torch.tensor([[1, 2, 3, 4, 5]]), 6).float()
    learn.y = torch.tensor([[1, 2, 3, 4, 5]])
    b.accumulate(learn)
    assert b.value == pytest.approx(1.0)  # identical sentences
