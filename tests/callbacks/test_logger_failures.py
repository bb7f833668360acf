"""Logger failures (issue 21): what can be checked is checked at `before_fit`, before any batch trains; a logger
that fails mid-fit warns and stops logging, while training and the Recorder go on."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from helpers import make_learner, same_state, state_copy

from minifastai.callback.loggers import MLFLOW_KEY_MAX, MLflowCallback, TensorBoardCallback


def quiet(f, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()):
        return f(*a, **k)


@pytest.mark.parametrize("where", ["is_a_file", "under_a_file"])
def test_tensorboard_log_dir_that_cannot_be_a_folder_fails_before_training(tmp_path, where):
    pytest.importorskip("tensorboard")
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    log_dir = blocker if where == "is_a_file" else blocker / "runs" / "a"
    learn = make_learner(path=tmp_path)
    before = state_copy(learn.model)
    with pytest.raises(ValueError, match=rf"TensorBoardCallback cannot write to .*: {blocker} is a file, not a folder"):
        quiet(learn.fit, 1, 1e-3, cbs=TensorBoardCallback(log_dir))
    assert same_state(state_copy(learn.model), before) and learn.recorder.values == []
    assert blocker.read_text() == "not a folder"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    pytest.importorskip("mlflow")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow_failures')}/mlflow.db"


def test_mlflow_deleted_experiment_and_long_names_fail_before_training(store):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    client.delete_experiment(client.create_experiment("gone"))
    learn = make_learner()
    before = state_copy(learn.model)
    with pytest.raises(ValueError, match=r"MLflow experiment 'gone' is deleted \(in MLflow's trash\): restore it"):
        quiet(learn.fit, 1, 1e-3, cbs=MLflowCallback(store, experiment_name="gone"))
    long = make_learner(group_names=["body", "neck", "h" * 300])
    long_before = state_copy(long.model)
    with pytest.raises(ValueError, match=rf"MLflow refuses names longer than {MLFLOW_KEY_MAX} characters.*shorter "
                                         r"group_names"):
        quiet(long.fit, 1, 1e-3, cbs=MLflowCallback(store, experiment_name="long"))
    assert same_state(state_copy(learn.model), before) and same_state(state_copy(long.model), long_before)
    assert client.get_experiment_by_name("long") is None  # nothing was created


def test_mlflow_outage_mid_fit_warns_and_training_goes_on(store, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a sqlite store keeps its artifacts (the plot_sched figure) under ./mlruns
    learn = make_learner()
    cb = MLflowCallback(store, experiment_name="outage", flush_secs=0)
    calls = {"n": 0}

    def flaky(self, rows):
        calls["n"] += 1
        if calls["n"] > 3:
            raise ConnectionError("tracking server unreachable")
        return real(self, rows)
    real = MLflowCallback._write_scalars
    monkeypatch.setattr(MLflowCallback, "_write_scalars", flaky)
    with pytest.warns(UserWarning, match=r"MLflowCallback: writing the batch values failed at epoch 0 "
                                         r"\(ConnectionError: tracking server unreachable\); this logger stops"):
        quiet(learn.fit, 3, 1e-3, cbs=cb)
    assert len(learn.recorder.values) == 3 and np.isfinite(learn.recorder.values[-1]).all()  # the fit went on
    assert calls["n"] == 4  # no retry per batch once it failed
    from mlflow.tracking import MlflowClient

    run = MlflowClient(store).get_run(cb.run_id)
    assert run.info.status == "FAILED"  # the run says its log is incomplete
    calls["n"] = -100  # the store is back: the next fit logs again, into the same run
    quiet(learn.fit, 1, 1e-3, cbs=cb)
    assert MlflowClient(store).get_run(cb.run_id).info.status == "FINISHED"


def test_mlflow_run_whose_last_write_fails_is_marked_failed(store, monkeypatch, tmp_path):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    learn = make_learner()
    cb = MLflowCallback(store, experiment_name="last_write")

    def broken_figure(self, fig, name, step):
        raise ConnectionError("artifact store unreachable")
    monkeypatch.setattr(MLflowCallback, "_write_figure", broken_figure)
    with pytest.warns(UserWarning, match=r"writing the fit's last values failed .*artifact store unreachable"):
        quiet(learn.fit, 1, 1e-3, cbs=cb)
    assert len(learn.recorder.values) == 1
    assert MlflowClient(store).get_run(cb.run_id).info.status == "FAILED"  # its log is incomplete
