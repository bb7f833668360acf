"""lr_range: every row of SPEC §2's table, and every error with its hint."""
import math

import numpy as np
import pytest
import torch
from helpers import make_learner, same_state, state_copy

from minifastai import lr_range


def test_float_gives_same_lr_to_every_group():
    assert lr_range(1e-3, 3) == [1e-3, 1e-3, 1e-3]


def test_slice_stop_gives_stop_over_10_to_all_but_last():
    assert lr_range(slice(1e-3), 3) == pytest.approx([1e-4, 1e-4, 1e-3])


def test_slice_start_stop_is_geometric():
    assert lr_range(slice(1e-5, 1e-3), 3) == pytest.approx([1e-5, 1e-4, 1e-3])
    lrs = lr_range(slice(1e-6, 1e-2), 5)
    assert lrs == pytest.approx([1e-6 * 1e4 ** (i / 4) for i in range(5)])
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert ratios == pytest.approx([10.0] * 4)


def test_list_tuple_array_as_given():
    assert lr_range([1e-4, 2e-4, 3e-4], 3) == [1e-4, 2e-4, 3e-4]
    assert lr_range((1e-4, 2e-4), 2) == [1e-4, 2e-4]
    assert lr_range(torch.tensor([1e-4, 2e-4]), 2) == pytest.approx([1e-4, 2e-4])


def test_single_group_slice_gives_stop():
    assert lr_range(slice(1e-5, 1e-3), 1) == [1e-3]
    assert lr_range(slice(1e-3), 1) == [1e-3]


def test_learner_method_uses_its_groups():
    assert make_learner().lr_range(slice(1e-5, 1e-3)) == pytest.approx([1e-5, 1e-4, 1e-3])


@pytest.mark.parametrize("bad, words", [
    (slice(1e-5, 1e-3, 2), ["has a step", "spreads peak learning rates across layer groups", "does not shape"]),
    ([1e-3, 1e-3], ["got 2 learning rates for 3 layer group(s)"]),
    (0.0, ["positive and finite"]),
    (-1e-3, ["positive and finite"]),
    (float("nan"), ["positive and finite"]),
    (math.inf, ["positive and finite"]),
    (slice(1e-3, 1e-5), ["start > stop", "did you mean slice(1e-05, 0.001)"]),
    (slice(float("nan"), 1e-3), ["slice start", "positive and finite"]),
])
def test_errors_say_what_was_meant(bad, words):
    with pytest.raises(ValueError) as e:
        lr_range(bad, 3)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("call", [
    lambda L: L.fit_one_cycle(1, slice(1e-5, 1e-3, 1)),
    lambda L: L.fit_one_cycle(1, [1e-3]),
    lambda L: L.fit(1, float("nan")),
    lambda L: L.fit_flat_cos(1, slice(1e-2, 1e-4)),
    lambda L: L.fine_tune(1, base_lr=-1.0),
    lambda L: L.fit_one_cycle(1, max_lr=1e-3, lr_max=1e-3),
])
def test_errors_raised_before_any_weight_changes(call):
    learn = make_learner()
    before = state_copy(learn.model)
    with pytest.raises((ValueError, TypeError)):
        call(learn)
    assert same_state(before, state_copy(learn.model))
    assert len(learn.recorder.values) == 0


# ---- layer_decay --------------------------------------------------------------------------------
def test_layer_decay_spec_numbers():
    from minifastai import layer_decay

    assert lr_range(layer_decay(1e-3, 0.5), 4) == pytest.approx([1.25e-4, 2.5e-4, 5e-4, 1e-3])  # SPEC §11
    assert lr_range(layer_decay(1e-3, 1.0), 3) == pytest.approx([1e-3] * 3)
    assert lr_range(layer_decay(2e-3, 0.7), 1) == [2e-3]
    assert repr(layer_decay(1e-3, 0.75)) == "layer_decay(0.001, 0.75)"
    for bad in (0, -0.5, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match=r"layer_decay's decay must be in \(0, 1\]"):
            layer_decay(1e-3, bad)
    with pytest.raises(ValueError, match="layer_decay's lr is -0.001"):
        layer_decay(-1e-3, 0.5)


def test_layer_decay_through_dry_run_a_real_fit_fine_tune_and_summary():
    from minifastai import layer_decay

    learn = make_learner()
    with learn.dry_run() as runs:
        learn.fit_one_cycle(1, layer_decay(1e-2, 0.6))
    np.testing.assert_allclose(runs[0].peak_lrs(), [3.6e-3, 6e-3, 1e-2])
    learn.fit_one_cycle(1, layer_decay(1e-2, 0.6))
    lrs = learn.recorder.lrs
    np.testing.assert_allclose(lrs / lrs[:, -1:], np.tile([0.36, 0.6, 1.0], (len(lrs), 1)), rtol=1e-12)
    np.testing.assert_array_equal(lrs, runs[0].lrs)
    learn.fine_tune(1, base_lr=layer_decay(4e-3, 0.5))
    np.testing.assert_allclose(learn.recorder.fits[-1].peak_lrs(), [5e-4, 1e-3, 2e-3])  # phase 2: lr/2, same decay
    learn.lr = layer_decay(1e-3, 0.5)
    learn.opt = None
    assert "learn.lr = layer_decay(0.001, 0.5)" in learn.summary()
    assert "0.00025" in learn.summary()
