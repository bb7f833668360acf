"""TrackerCallback's one rule (monitor, comp, min_delta, NaN) and ReduceLROnPlateau."""
import math

import numpy as np
import pytest
from helpers import make_learner

from minifastai import Callback, EarlyStoppingCallback, ReduceLROnPlateau, SaveModelCallback, TrackerCallback


class Script(Callback):
    """Replaces the monitored column of each epoch's row with a scripted value (after the Recorder)."""

    order = 55

    def __init__(self, values, col=1):
        self.values, self.col = list(values), col

    def after_epoch(self):
        self.learn.recorder.values[-1][self.col] = self.values[self.epoch]


def run_tracker(tracker, values, col=1):
    learn = make_learner()
    seen = []

    class Watch(Callback):
        order = 200

        def after_epoch(self):
            seen.append((tracker.new_best, tracker.best))

    learn.fit(len(values), 1e-3, cbs=[Script(values, col), tracker, Watch()])
    return seen


def test_lower_is_better_for_losses_with_min_delta_against_the_new_value():
    t = TrackerCallback(min_delta=0.1)
    seen = run_tracker(t, [1.0, 0.95, 0.85, 0.9, float("nan"), 0.7])
    assert [s[0] for s in seen] == [True, False, True, False, False, True]
    assert [s[1] for s in seen] == [1.0, 1.0, 0.85, 0.85, 0.85, 0.7]  # NaN never improves


def test_higher_is_better_for_metrics_and_a_custom_comp():
    t = TrackerCallback(monitor="accuracy", min_delta=0.05)
    seen = run_tracker(t, [0.5, 0.54, 0.56, 0.7], col=2)
    assert [s[0] for s in seen] == [True, False, True, True]
    t2 = TrackerCallback(comp=np.greater)  # valid_loss, but 'better' is upward
    assert [s[0] for s in run_tracker(t2, [1.0, 0.5, 2.0])] == [True, False, True]


def test_reduce_lr_on_plateau_divides_every_group_and_respects_min_lr(capsys):
    learn = make_learner()
    cb = ReduceLROnPlateau(patience=2, factor=4.0, min_lr=1e-4)
    flat = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # no improvement after epoch 0
    learn.fit(len(flat), [4e-3, 2e-3, 1.6e-2], cbs=[Script(flat), cb])
    lrs = learn.recorder.lrs  # (iterations, groups); 8 batches per epoch
    per_epoch = lrs[::8]
    # epochs 1, 2 without improvement -> after epoch 2: /4; epochs 3, 4 -> after epoch 4: /4 (floored at 1e-4)
    np.testing.assert_allclose(per_epoch[:3], [[4e-3, 2e-3, 1.6e-2]] * 3)
    np.testing.assert_allclose(per_epoch[3:5], [[1e-3, 5e-4, 4e-3]] * 2)
    np.testing.assert_allclose(per_epoch[5:7], [[2.5e-4, 1.25e-4, 1e-3]] * 2)
    out = capsys.readouterr().out
    assert "Epoch 2: reducing lr to 0.004" in out and "Epoch 4: reducing lr to 0.001" in out
    learn.fit(4, [4e-3, 2e-3, 1.6e-2], cbs=[Script(flat), ReduceLROnPlateau(patience=1, factor=100, min_lr=1e-4)])
    assert learn.recorder.lrs[-1].tolist() == pytest.approx([1e-4, 1e-4, 1e-4])


def test_trackers_share_the_rule_and_refuse_unknown_columns():
    for cls in (EarlyStoppingCallback, SaveModelCallback, ReduceLROnPlateau):
        assert issubclass(cls, TrackerCallback)
        learn = make_learner()
        with pytest.raises(ValueError, match=rf"{cls.__name__} monitors 'f1'.*choose one of \['train_loss', "
                                             r"'valid_loss', 'accuracy'\]"):
            learn.fit(1, cbs=cls(monitor="f1"))
    with pytest.raises(ValueError, match="min_delta must be a finite number"):
        TrackerCallback(min_delta=math.inf)
    with pytest.raises(ValueError, match="patience is a number of epochs"):
        EarlyStoppingCallback(patience=0)
