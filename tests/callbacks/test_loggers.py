"""TensorBoard and MLflow loggers: values read back with each tool's own reader equal the Recorder's."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import count_host_reads, make_learner, synth_dls

import minifastai.callback.loggers as loggers_mod
from minifastai import Callback, CancelFitException, SaveModelCallback, load_learner
from minifastai.callback.loggers import MLflowCallback, TensorBoardCallback, mlflow_key, series_name

NAMES = ["body", "middle", "head"]


class LossSpy(Callback):
    """The raw training loss of every batch, read after the fit (no sync during it)."""

    order = 100

    def before_fit(self) -> None:
        self.t: list[torch.Tensor] = []

    def after_batch(self) -> None:
        if self.learn.training and self.learn.loss is not None:
            self.t.append(self.learn.loss.detach())

    @property
    def losses(self) -> np.ndarray:
        return torch.stack(self.t).numpy()


def tb_scalars(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    ea.Reload()
    out = {tag: (np.array([e.step for e in ea.Scalars(tag)]), np.array([e.value for e in ea.Scalars(tag)]))
           for tag in ea.Tags()["scalars"]}
    out["_ea"] = ea  # type: ignore[assignment]
    return out


def epoch_column(learn, name: str) -> np.ndarray:
    """One column of the recorder's table by name (rows are fastai's [train_loss, valid_loss, *metrics])."""
    names = learn.recorder.metric_names[1:-1]
    return np.array([float(r[names.index(name)]) for r in learn.recorder.values])


def test_tensorboard_logs_every_group_loss_and_epoch_columns(tmp_path):
    learn = make_learner(group_names=NAMES)  # 8 training batches per epoch
    spy = LossSpy()
    learn.fit_one_cycle(2, slice(1e-4, 1e-2), cbs=[TensorBoardCallback(tmp_path / "tb"), spy])
    s = tb_scalars(tmp_path / "tb")
    rec = learn.recorder
    for hp in ("lr", "mom", "wd"):
        for g, name in enumerate(NAMES):
            steps, vals = s[f"{hp}/{name}"]
            assert np.array_equal(steps, np.arange(1, 17))  # step = training batches done
            assert vals == pytest.approx(rec.hps[hp][:, g], rel=1e-6)  # event files hold float32
    assert s["lr/head"][1].max() == pytest.approx(1e-2, rel=1e-6) and s["lr/body"][1].max() == pytest.approx(1e-4)
    steps, vals = s["batch/train_loss"]
    assert np.array_equal(steps, np.arange(1, 17)) and vals == pytest.approx(spy.losses, rel=1e-6)
    for col in ("train_loss", "valid_loss", "accuracy"):
        steps, vals = s[f"epoch/{col}"]
        assert np.array_equal(steps, [8, 16]) and vals == pytest.approx(epoch_column(learn, col), rel=1e-6)
    assert np.array_equal(s["epoch/epoch"][1], [0, 1])
    assert all(0 < t < 60 for t in s["epoch/time"][1])
    stats = learn.progress.stats
    assert s["epoch/throughput"][1] == pytest.approx([st["items_per_s"] for st in stats], rel=1e-6)
    assert s["epoch/data_wait"][1] == pytest.approx([st["data_wait"] for st in stats], rel=1e-5, abs=1e-7)
    ea = s["_ea"]
    text = ea.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| n_epoch | 2 |" in text and "| one_cycle.lr_max | slice(0.0001, 0.01, None) |" in text
    assert "| group_names | ['body', 'middle', 'head'] |" in text and "| batches_per_epoch | 8 |" in text
    img = ea.Images("plot_sched")
    assert len(img) == 1 and img[0].step == 16 and img[0].width > 300


def test_tensorboard_fine_tune_continues_the_step_axis_and_logs_both_fits(tmp_path):
    learn = make_learner(group_names=NAMES)
    tb = TensorBoardCallback(tmp_path / "tb")
    learn.add_cb(tb)
    learn.fine_tune(2, freeze_epochs=1)  # 8 frozen batches, then 16
    s = tb_scalars(tmp_path / "tb")
    steps, lrs = s["lr/head"]
    assert np.array_equal(steps, np.arange(1, 25))
    assert lrs[8:] == pytest.approx(learn.recorder.lrs[:, 2], rel=1e-6)  # the recorder holds the last fit
    assert np.array_equal(s["epoch/epoch"][0], [8, 16, 24]) and np.array_equal(s["epoch/epoch"][1], [0, 0, 1])
    texts = s["_ea"].Tensors("hyperparameters/text_summary")
    assert [t.step for t in texts] == [0, 1]
    first, second = (t.tensor_proto.string_val[0].decode() for t in texts)
    assert "| trainable_groups | ['head'] |" in first and "| trainable_groups | ['body', 'middle', 'head'] |" in second
    assert [i.step for i in s["_ea"].Images("plot_sched")] == [8, 24]
    assert tb.step_offset == 24 and tb.n_fits == 2
    # the peaks the schedule planned for each group: slice(2e-3) frozen, slice(1e-5, 1e-3) after unfreezing
    assert "| peak_lrs | [0.0002, 0.0002, 0.002] |" in first and "| peak_lrs | [1e-05, 0.0001, 0.001] |" in second
    # one event file for both fits: TensorBoard reads a folder's files in name order and drops the steps of a file
    # read later that come before those it has (file names sort wrongly when their counter passes 9 -> 10)
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1
    tb.close()
    assert tb.writer is None


def test_lr_find_is_not_logged_and_other_ranks_write_nothing(tmp_path, monkeypatch):
    learn = make_learner()
    learn.add_cb(TensorBoardCallback(tmp_path / "tb"))
    with pytest.warns(UserWarning):  # a 10-batch sweep is too short for good suggestions: not the point here
        learn.lr_find(num_it=10, show_plot=False)
    assert not (tmp_path / "tb").exists()
    learn.fit(1, 1e-3)
    assert np.array_equal(tb_scalars(tmp_path / "tb")["lr/group 0"][0], np.arange(1, 9))

    other = make_learner()
    monkeypatch.setattr(loggers_mod, "is_main_process", lambda: False)
    other.fit(1, 1e-3, cbs=TensorBoardCallback(tmp_path / "rank1"))
    assert not (tmp_path / "rank1").exists()


def test_loggers_add_no_per_batch_sync(monkeypatch, tmp_path):
    """Reading a tensor's value on the host is counted; with a logger it still does not grow with batches."""
    counts = count_host_reads(monkeypatch)

    def syncs(n_train: int, folder: str) -> int:
        learn = make_learner(dls=synth_dls(n_train=n_train, n_valid=64, bs=8),
                             opt_func=partial(torch.optim.SGD, momentum=0.9))
        counts["n"] = 0
        learn.fit_one_cycle(2, 1e-3, cbs=TensorBoardCallback(tmp_path / folder, log_figure=False))
        return counts["n"]

    assert syncs(64, "few") == syncs(512, "many")


class Interrupt(Callback):
    """Stops the fit in the middle of epoch 2 (stand-in for a crash)."""

    order = 100

    def after_batch(self) -> None:
        if self.learn.training and self.learn.epoch == 2 and self.learn.iter == 3:
            raise CancelFitException()


def test_resumed_fit_logs_into_the_same_folder_and_continues_the_steps(tmp_path):
    crashed = make_learner(path=tmp_path)
    crashed.fit_one_cycle(4, 1e-2, cbs=[TensorBoardCallback(), SaveModelCallback(every_epoch=True), Interrupt()])
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    state = torch.load(tmp_path / "models" / "model_1.pth", weights_only=True)["callbacks"]["tensor_board"]
    assert state == {"step_offset": 0, "n_fits": 1, "run_name": runs[0].name}  # all a resumed fit needs
    again = make_learner(path=tmp_path)
    again.fit_one_cycle(4, 1e-2, cbs=TensorBoardCallback(), resume=True)
    assert list((tmp_path / "runs").iterdir()) == runs
    s = tb_scalars(runs[0])
    steps, lrs = s["lr/group 0"]  # TensorBoard drops the crashed run's steps after the restart point
    assert np.array_equal(steps, np.arange(1, 33))
    assert lrs[16:] == pytest.approx(again.recorder.lrs[:, 0], rel=1e-6)
    assert np.array_equal(s["epoch/epoch"][1], [0, 1, 2, 3])


def test_export_and_checkpoints_hold_no_logger(tmp_path):
    learn = make_learner(path=tmp_path)
    learn.fit(1, 1e-3, cbs=TensorBoardCallback(tmp_path / "tb"))
    learn.add_cb(TensorBoardCallback(tmp_path / "tb2"))
    path = learn.export()
    state = torch.load(path, weights_only=True)
    assert "tensor_board" not in str({k: v for k, v in state.items() if k != "model"})
    assert load_learner(path, model=type(learn.model)(*learn.model)).model is not None
    assert not (tmp_path / "tb2").exists()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="flush_secs must be >= 0"):
        TensorBoardCallback(flush_secs=-1)
    with pytest.raises(ValueError, match="flush_secs must be >= 0"):
        MLflowCallback(flush_secs=float("nan"))


def test_mlflow_bad_store_fails_before_training(tmp_path):
    from mlflow.exceptions import MlflowException

    learn = make_learner()
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    with pytest.raises(MlflowException):
        learn.fit(1, 1e-3, cbs=MLflowCallback("nosuchscheme://nowhere"))
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert len(learn.recorder.lrs) == 0


def test_series_names_are_one_tool_safe_name_for_every_tool():
    names = ("group 2 (head)", "group 0", "body", "accuracy_multi[0.5]", "a/b", "x,y", "()")
    assert [series_name(n) for n in names] == [
        "group 2 head", "group 0", "body", "accuracy_multi0.5", "a_b", "x_y", "_"]
    tb, ml = TensorBoardCallback.__new__(TensorBoardCallback), MLflowCallback.__new__(MLflowCallback)
    assert tb.key("lr", "group 2 (head)") == ml.key("lr", "group 2 (head)") == "lr/group 2 head"


def test_mlflow_key_follows_mlflows_rules():
    assert mlflow_key("lr/group 2 (head)") == "lr/group 2 head"
    assert mlflow_key("epoch/accuracy_multi[0.5]") == "epoch/accuracy_multi0.5"
    assert mlflow_key("fit1/one_cycle.lr_max") == "fit1/one_cycle.lr_max"
    assert mlflow_key("a,b;c") == "a_b_c"


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"  # one store: its tables take seconds


def test_mlflow_logs_metrics_params_and_figure_to_a_local_store(mlflow_uri):
    from mlflow.tracking import MlflowClient

    learn = make_learner()  # default group names: 'group 0', 'group 1', 'group 2 (head)'
    spy = LossSpy()
    cb = MLflowCallback(mlflow_uri, experiment_name="digits", run_name="one-cycle")
    learn.fine_tune(1, cbs=[cb, spy])
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(cb.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "one-cycle"
    assert client.get_experiment(run.info.experiment_id).name == "digits"
    from minifastai.version import __version__

    assert run.data.tags["minifastai.run_type"] == "training" and run.data.tags["minifastai.version"] == __version__
    assert client.get_experiment(run.info.experiment_id).tags["minifastai.run_type"] == "training"

    def history(key):
        h = sorted(client.get_metric_history(cb.run_id, key), key=lambda m: m.step)
        return np.array([m.step for m in h]), np.array([m.value for m in h])

    steps, lrs = history("lr/group 2 head")
    assert np.array_equal(steps, np.arange(1, 17))
    assert lrs[8:] == pytest.approx(learn.recorder.lrs[:, 2], rel=1e-12)  # MLflow keeps float64
    assert history("mom/group 0")[1][8:] == pytest.approx(learn.recorder.moms[:, 0], rel=1e-12)
    assert history("batch/train_loss")[1][8:] == pytest.approx(spy.losses, rel=1e-6)
    steps, vl = history("epoch/valid_loss")
    assert np.array_equal(steps, [8, 16]) and vl[-1] == pytest.approx(epoch_column(learn, "valid_loss")[-1])
    assert history("epoch/accuracy")[1][-1] == pytest.approx(epoch_column(learn, "accuracy")[-1])
    params = run.data.params
    assert params["n_epoch"] == "1" and params["fit1/n_epoch"] == "1"
    assert params["one_cycle.pct_start"] == "0.99" and params["fit1/one_cycle.pct_start"] == "0.3"
    assert params["trainable_groups"] == "['group 2 (head)']"
    arts = sorted(a.path for a in client.list_artifacts(cb.run_id))
    assert arts == ["plot_sched.png", "plot_sched_fit1.png"]
    png = Path(client.download_artifacts(cb.run_id, "plot_sched.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_uses_an_active_run_and_leaves_it_open(mlflow_uri, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)  # MLflowCallback() takes MLflow's default store
    with mlflow.start_run() as run:
        learn = make_learner()
        with pytest.warns(UserWarning):
            learn.lr_find(num_it=10, show_plot=False)  # not logged
        learn.fit(1, 1e-3, cbs=MLflowCallback())
        assert mlflow.active_run().info.run_id == run.info.run_id
        client = mlflow.tracking.MlflowClient(mlflow_uri)
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
        assert len(client.get_metric_history(run.info.run_id, "lr/group 0")) == 8


def test_tensorboard_hparams_tab_holds_the_fit_and_its_final_metrics(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    learn = make_learner(group_names=NAMES)
    learn.fit_one_cycle(2, slice(1e-4, 1e-2), cbs=TensorBoardCallback(tmp_path / "tb"))
    ea = tb_scalars(tmp_path / "tb")["_ea"]
    content = ea.PluginTagToContent("hparams")
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert {m.name.tag for m in exp.metric_infos} == {"epoch/train_loss", "epoch/valid_loss", "epoch/accuracy"}
    assert start.hparams["n_epoch"].number_value == 2
    assert start.hparams["one_cycle.lr_max"].string_value  # a per-group list, as text
    # the metrics HParams shows are the run's own epoch series, whose last value is the recorder's
    acc = tb_scalars(tmp_path / "tb")["epoch/accuracy"][1]
    assert acc[-1] == pytest.approx(learn.recorder.values[-1][2], rel=1e-6)


def test_mlflow_log_lines_stay_out_of_the_results_table(tmp_path, capfd, monkeypatch):
    import logging

    monkeypatch.chdir(tmp_path)  # MLflow's default experiment keeps its artifacts in ./mlruns
    learn = make_learner()
    learn.fit(2, 1e-3, cbs=MLflowCallback(f"sqlite:///{tmp_path}/fresh.db"))  # a new store: MLflow sets up tables
    out, err = capfd.readouterr()
    assert "INFO" not in out + err and "Updating database tables" not in out + err
    assert [ln.split()[0] for ln in out.splitlines()] == ["epoch", "0", "1"]
    assert logging.getLogger("mlflow").level < logging.WARNING  # MLflow's own INFO level is put back after
