"""Schedules: fastai's formulas and SPEC §4's worked one-cycle example, through a real fit."""
import math

import numpy as np
import pytest
import torch
from helpers import make_learner, synth_dls
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import DataLoaders, Learner, OneCycle, combined_cos, sched_cos


def test_sched_cos_formula():
    for p in (0.0, 0.3, 0.5, 1.0):
        assert sched_cos(1.0, 3.0, p) == pytest.approx(1 + (1 + math.cos(math.pi * (1 - p))) * 2 / 2)
    assert sched_cos(1.0, 3.0, 0.0) == pytest.approx(1.0)
    assert sched_cos(1.0, 3.0, 1.0) == pytest.approx(3.0)


def test_combined_cos_phases():
    f = combined_cos(0.25, 1.0, 2.0, 0.5)
    assert f(0.0) == pytest.approx(1.0)
    assert f(0.25) == pytest.approx(2.0)
    assert f(0.125) == pytest.approx(1.5)
    assert f(1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="pct_start"):
        combined_cos(1.5, 1, 2, 3)


def _learner_with_iters(n_iter: int, n_feat: int = 4) -> Learner:
    x, y = torch.randn(n_iter * 2, n_feat), torch.randint(0, 2, (n_iter * 2,))
    dls = DataLoaders(DataLoader(TensorDataset(x, y), 2), None, device="cpu")
    return Learner(dls, nn.Linear(n_feat, 2), nn.CrossEntropyLoss())


def test_one_cycle_worked_example():
    learn = _learner_with_iters(100)
    learn.fit_one_cycle(1, 1e-3)
    lrs, moms = learn.recorder.lrs[:, 0], learn.recorder.moms[:, 0]
    assert lrs.shape == (100,)
    assert lrs[0] == pytest.approx(4e-5)
    assert moms[0] == pytest.approx(0.95)
    assert lrs[25] == pytest.approx(1e-3)
    assert moms[25] == pytest.approx(0.85)
    assert lrs[50] == pytest.approx(7.5e-4, rel=1e-4)  # SPEC rounds 7.500025e-4
    assert moms[50] == pytest.approx(0.875)
    assert lrs[99] == pytest.approx(4.4858e-7, rel=1e-4)
    assert learn.opt.param_groups[0]["betas"] == pytest.approx((moms[99], 0.99))


def test_one_cycle_position_spans_epochs():
    learn = _learner_with_iters(25)
    learn.fit_one_cycle(4, 1e-3)  # the same 100 positions, over 4 epochs of 25 batches
    lrs = learn.recorder.lrs[:, 0]
    assert len(lrs) == 100
    assert lrs[25] == pytest.approx(1e-3) and lrs[50] == pytest.approx(7.5e-4, rel=1e-4)
    assert learn.recorder.epoch_ends == [25, 50, 75, 100]


def test_one_cycle_slice_spreads_peaks_not_shape():
    learn = make_learner()
    learn.fit_one_cycle(2, slice(1e-5, 1e-3))
    lrs = learn.recorder.lrs
    assert lrs.shape == (16, 3)
    np.testing.assert_allclose(lrs.max(0), [1e-5, 1e-4, 1e-3], rtol=1e-3)
    shapes = lrs / lrs.max(0)  # every group follows the same curve, scaled to its own peak
    np.testing.assert_allclose(shapes[:, 0], shapes[:, 2])
    np.testing.assert_allclose(shapes[:, 1], shapes[:, 2])


def test_lr_max_alias_and_defaults():
    a, b = make_learner(), make_learner()
    a.fit_one_cycle(1, lr_max=2e-3)
    b.fit_one_cycle(1, max_lr=2e-3)
    np.testing.assert_array_equal(a.recorder.lrs, b.recorder.lrs)
    c = make_learner()
    c.fit_one_cycle(1)  # learn.lr = 1e-3
    assert c.recorder.lrs.max() == pytest.approx(1e-3, rel=1e-2)


def test_onecycle_passed_to_fit_directly():
    a, b = make_learner(), make_learner()
    a.fit(2, cbs=OneCycle(max_lr=slice(1e-4, 1e-2), pct_start=0.5))
    b.fit_one_cycle(2, slice(1e-4, 1e-2), pct_start=0.5)
    np.testing.assert_allclose(a.recorder.lrs, b.recorder.lrs)
    assert not any(isinstance(cb, OneCycle) for cb in a.cbs)  # temporary callbacks are removed


def test_fit_flat_cos_is_flat_then_cosine_no_momentum_schedule():
    learn = make_learner()
    learn.fit_flat_cos(4, 1e-3)
    lrs = learn.recorder.lrs[:, 2]
    n = len(lrs)
    assert np.allclose(lrs[: int(0.75 * n)], 1e-3)
    pos = np.arange(n) / n
    expected = [1e-3 if p < 0.75 else sched_cos(1e-3, 1e-8, (p - 0.75) / 0.25) for p in pos]
    np.testing.assert_allclose(lrs, expected)
    assert np.allclose(learn.recorder.moms, 0.9)  # AdamW's beta1 as created


def test_sgd_momentum_is_scheduled():
    from functools import partial

    learn = make_learner(opt_func=partial(torch.optim.SGD, momentum=0.9))
    learn.fit_one_cycle(1, 1e-2)
    moms = learn.recorder.moms
    assert moms[0, 0] == pytest.approx(0.95) and moms.min() == pytest.approx(0.85, abs=0.01)
    assert learn.opt.param_groups[0]["momentum"] == pytest.approx(moms[-1, 0])


def test_start_epoch_continues_the_same_schedule():
    full, part = make_learner(), make_learner()
    full.fit_one_cycle(4, 1e-3)
    part.fit_one_cycle(4, 1e-3, start_epoch=2)
    np.testing.assert_allclose(part.recorder.lrs, full.recorder.lrs[16:])
    assert len(part.recorder.values) == 2 and part.recorder.log[0] == 3


def test_pct_train_counts_only_training_batches():
    learn = make_learner(dls=synth_dls(n_train=128, n_valid=128))
    seen = []

    from minifastai import Callback

    class Spy(Callback):
        def before_batch(self):
            seen.append((self.learn.training, self.learn.pct_train))

    learn.fit(2, cbs=Spy())
    train_pos = [p for t, p in seen if t]
    assert train_pos == pytest.approx([i / 8 for i in range(8)])
