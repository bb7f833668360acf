"""`learn.results`: the one place where a fit's results are published (Keras' `logs`). The Recorder writes it; the
progress table, the CSV log, the trackers, the loggers and `validate` read it; a user's callback reads it too."""
from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import make_learner, synth_dls

from minifastai import Callback, CSVLogger, Recorder, SaveModelCallback
from minifastai.results import Results


class Watch(Callback):
    """A user's callback: it sees each epoch's row as soon as the Recorder has it."""

    run_after = Recorder

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.validated: list[bool] = []

    def after_epoch(self) -> None:
        self.rows.append(self.learn.results.columns())
        self.validated.append(self.learn.results.validated)


def test_results_hold_each_epochs_row_and_match_the_recorder(tmp_path):
    learn = make_learner(path=tmp_path)
    w, csv_log = Watch(), CSVLogger()
    learn.fit_one_cycle(3, 1e-2, cbs=[w, csv_log])
    res = learn.results
    assert res.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert res.metric_names is learn.recorder.metric_names and res.values is learn.recorder.values
    assert len(res.values) == 3 and res.final_record == learn.final_record == res.values[-1]
    assert [list(r) for r in w.rows] == [["train_loss", "valid_loss", "accuracy"]] * 3
    assert [r["valid_loss"] for r in w.rows] == [v[1] for v in res.values]
    assert w.validated == [True] * 3 and res.validated
    assert 0.5 < res.value("accuracy") <= 1.0 and res.value("nope") is None
    assert res.valid_count == 0 and res.valid_loss_sum == 0.0  # the running sums are reset after each validation
    assert res.log[0] == 2 and res.log[1:4] == res.values[-1]  # the display row: epoch, row, time
    assert res.epoch_stats is not None and res.epoch_stats["items_per_s"] > 0  # the progress display's figures
    # the CSV log and validate() read the same results
    csv = csv_log.read_log()
    np.testing.assert_allclose(csv["valid_loss"].to_numpy(), [v[1] for v in res.values], rtol=1e-5)
    vl, acc = learn.validate()
    assert math.isclose(vl, res.valid_result[0]) and math.isclose(acc, res.valid_result[1])


def test_valid_loss_is_the_item_weighted_mean_of_the_running_sums():
    dls = synth_dls(n_valid=70, bs=32)  # batches of 32, 32 and 6 items
    learn = make_learner(dls=dls)
    seen: list[tuple[float, int]] = []

    class Sums(Callback):
        run_before = Recorder  # reads the running sums before the Recorder turns them into valid_loss

        def after_validate(self) -> None:
            seen.append((float(self.learn.results.valid_loss_sum), self.learn.results.valid_count))

    learn.fit(1, 1e-3, cbs=Sums())
    total, count = seen[-1]
    assert count == 70
    assert math.isclose(learn.results.values[-1][1], total / count, rel_tol=1e-6)


def test_an_epoch_without_validation_publishes_nan_and_not_validated():
    dls = synth_dls()
    dls.valid = None
    learn = make_learner(dls=dls)
    learn.fit(1, 1e-3)
    assert not learn.results.validated and math.isnan(learn.results.values[-1][1])
    assert learn.results.value("valid_loss") is None and learn.results.value("train_loss") > 0


def test_a_snapshot_puts_the_results_back():
    learn = make_learner()
    learn.fit(1, 1e-3)
    before = [list(r) for r in learn.results.values]
    learn.lr_find(num_it=10, show_plot=False)
    with learn.dry_run():
        learn.fit_one_cycle(2, 1e-2)
    assert learn.results.values == before and learn.recorder.values == before


def test_a_recorder_before_it_joins_a_learner_has_its_own_empty_results():
    rec = Recorder()
    assert rec.values == [] and rec.metric_names == ["epoch", "train_loss", "valid_loss", "time"]
    assert isinstance(rec.results, Results) and rec.final_record is None


def test_a_tracker_without_recorder_is_a_clear_error_before_anything_changes():
    learn = make_learner(default_cbs=False)
    with pytest.raises(ValueError, match="reads the Recorder"):
        learn.fit(1, 1e-3, cbs=SaveModelCallback())
    assert learn.results.values == []
