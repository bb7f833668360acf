"""GradientAccumulation, GradientClip, EarlyStoppingCallback, TerminateOnNaNCallback and CSVLogger."""
import csv

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import (
    Callback,
    CancelFitException,
    CSVLogger,
    DataLoaders,
    EarlyStoppingCallback,
    GradientAccumulation,
    GradientClip,
    Learner,
    TerminateOnNaNCallback,
    accuracy,
    combined_cos,
)

W_TRUE = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


def data(n: int = 64, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g) * scale
    return x, x @ W_TRUE + 0.1


def dls_of(x, y, bs, valid=True) -> DataLoaders:
    v = DataLoader(TensorDataset(x[:16], y[:16]), 16) if valid else None
    return DataLoaders(DataLoader(TensorDataset(x, y), bs), v, device="cpu")


def sgd_learner(dls, model=None, **kw) -> Learner:
    torch.manual_seed(0)
    return Learner(dls, model or nn.Linear(4, 1), loss_func=nn.MSELoss(), opt_func=torch.optim.SGD, wd=0, **kw)


class StepCounter(Callback):
    """Counts optimizer steps and keeps the weights before each training batch."""

    order = 30

    def __init__(self) -> None:
        self.steps, self.changed = 0, []

    def before_batch(self) -> None:
        if self.learn.training:
            self.w0 = [p.detach().clone() for p in self.learn.model.parameters()]

    def after_step(self) -> None:
        self.steps += 1

    def after_batch(self) -> None:
        if self.learn.training:
            ps = self.learn.model.parameters()
            self.changed.append(any(not torch.equal(a, b) for a, b in zip(self.w0, ps)))


# ---- GradientAccumulation -------------------------------------------------------------------------
@pytest.mark.parametrize("n_big,bs,n_acc", [(32, 8, 32), (24, 8, 20)])
def test_accumulation_steps_like_one_big_batch(n_big, bs, n_acc):
    x, y = data(n_big)
    big = sgd_learner(dls_of(x, y, n_big, valid=False), lr=0.1)
    big.fit(1)
    counter = StepCounter()
    acc = sgd_learner(dls_of(x, y, bs, valid=False), lr=0.1, cbs=[GradientAccumulation(n_acc), counter])
    acc.fit(1)
    n_batches = n_big // bs
    assert counter.steps == 1 and acc.gradient_accumulation.n_steps == 1
    assert counter.changed == [False] * (n_batches - 1) + [True]  # weights move only on the last batch
    for a, b in zip(acc.model.parameters(), big.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert not torch.equal(acc.model.weight, sgd_learner(dls_of(x, y, bs)).model.weight)  # it did train
    assert acc.train_iter == n_batches  # the schedule position counts batches, not steps


def test_accumulation_with_one_cycle_advances_the_schedule_per_batch_and_closes_windows_per_epoch():
    x, y = data(80)  # 10 batches of 8; n_acc=24 -> steps after batches 3, 6, 9 and 10 (the epoch's last)
    counter = StepCounter()
    learn = Learner(dls_of(x, y, 8), nn.Linear(4, 1), loss_func=nn.MSELoss(),
                    cbs=[GradientAccumulation(24), counter])
    learn.fit_one_cycle(2, 1e-2)
    assert counter.steps == 8 and learn.gradient_accumulation.n_steps == 8
    assert counter.changed == [i % 3 == 2 or i == 9 for i in range(10)] * 2
    assert learn.opt.state[learn.model.weight]["step"].item() == 8
    sched = combined_cos(0.25, 1e-2 / 25, 1e-2, 1e-2 / 1e5)
    np.testing.assert_allclose(learn.recorder.lrs[:, 0], [sched(i / 20) for i in range(20)], rtol=1e-9)
    assert len(learn.recorder.losses) == 20  # every batch is recorded
    assert all(p.grad is None or not p.grad.any() for p in learn.model.parameters())  # nothing left over


def test_accumulation_partial_window_at_epoch_end_is_the_mean_of_its_samples():
    x, y = data(40)  # n_acc=32, bs=8: steps after batch 4 (32 samples) and batch 5 (8 samples, the epoch's end)
    acc = sgd_learner(dls_of(x, y, 8, valid=False), lr=0.1, cbs=GradientAccumulation(32))
    acc.fit(1)
    big = sgd_learner(DataLoaders(DataLoader(TensorDataset(x, y), 32), None, device="cpu"), lr=0.1)
    big.fit(1)  # batches of 32 and 8, no accumulation
    for a, b in zip(acc.model.parameters(), big.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="number of samples"):
        GradientAccumulation(0)


# ---- GradientClip -------------------------------------------------------------------------------
class GradNorm(Callback):
    """The total gradient norm the optimizer uses, and which parameters have gradients."""

    order = 40

    def __init__(self) -> None:
        self.norms, self.with_grad = [], None

    def before_step(self) -> None:
        ps = [p for p in self.learn.model.parameters() if p.grad is not None]
        self.with_grad = {id(p) for p in ps}
        self.norms.append(torch.cat([p.grad.flatten() for p in ps]).norm().item())


def test_gradient_clip_bounds_the_norm_and_ignores_frozen_groups():
    x, y = data(32, scale=10.0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    probe, clip = GradNorm(), GradientClip(max_norm=0.25)
    learn = Learner(dls_of(x, y, 8), model, loss_func=nn.MSELoss(), cbs=[clip, probe],
                    splitter=lambda m: [list(m[0].parameters()), list(m[1].parameters())])
    learn.freeze()
    body = [p.detach().clone() for p in model[0].parameters()]
    learn.fit(1, 1e-3)
    assert probe.with_grad == {id(p) for p in model[1].parameters()}  # frozen body: no gradients, not counted
    assert max(probe.norms) <= 0.25 + 1e-5 and min(probe.norms) == pytest.approx(0.25, rel=1e-4)
    assert clip.last_norm.item() > 10  # the raw norm was far above max_norm
    assert all(torch.equal(a, b) for a, b in zip(body, model[0].parameters()))
    with pytest.raises(ValueError, match="max_norm"):
        GradientClip(0)


def test_gradient_clip_leaves_small_gradients_alone():
    x, y = data(32, scale=0.01)
    probe = GradNorm()
    learn = sgd_learner(dls_of(x, y, 8), lr=1e-3, cbs=[GradientClip(max_norm=100.0), probe])
    learn.fit(1)
    assert len(probe.norms) == 4 and 0 < max(probe.norms) < 100
    assert learn.gradient_clip.last_norm.item() == pytest.approx(probe.norms[-1], rel=1e-6)  # unchanged


# ---- EarlyStoppingCallback ------------------------------------------------------------------------
def test_early_stopping_stops_after_patience_epochs_without_improvement(capsys):
    x, y = data(32)
    es = EarlyStoppingCallback(min_delta=5e-3, patience=2)
    learn = sgd_learner(dls_of(x, y, 8), lr=1e-6, cbs=es)  # valid loss improves by ~7e-4 per epoch
    learn.fit(10)
    assert len(learn.recorder.values) == 3  # epochs 0, 1, 2: epoch 0 sets the best; 1 and 2 are too small
    assert es.stopped_epoch == 2 and es.best_epoch == 0 and es.wait == 2
    assert es.best == pytest.approx(learn.recorder.values[0][1])
    assert "early stopping after epoch 2" in capsys.readouterr().out
    assert es.state_dict() == {"best": es.best, "best_epoch": 0, "wait": 2}
    es.min_delta = 0.0  # every tiny improvement counts: no stop
    learn.fit(4)
    assert len(learn.recorder.values) == 4 and es.stopped_epoch is None and es.best_epoch == 3


def test_early_stopping_cuts_one_cycle_short_and_checks_its_monitor():
    x, y = data(32)
    learn = Learner(dls_of(x, y, 8), nn.Linear(4, 1), loss_func=nn.MSELoss(), metrics=accuracy)
    with pytest.raises(ValueError, match=r"choose one of \['train_loss', 'valid_loss', 'accuracy'\]"):
        learn.fit(1, cbs=EarlyStoppingCallback(monitor="f1"))
    learn.metrics = []
    es = EarlyStoppingCallback(monitor="train_loss", comp=np.greater, patience=1)  # 'improves' only upward
    learn.fit_one_cycle(5, 1e-2, cbs=es)
    assert len(learn.recorder.values) == 2 and es.stopped_epoch == 1
    lrs = learn.recorder.lrs[:, 0]
    assert len(lrs) == 8 and lrs[-1] > 1e-2 / 10  # stopped mid-cycle: the LR never annealed (final: 1e-7)


def test_early_stopping_keeps_going_while_improving():
    x, y = data(32)
    es = EarlyStoppingCallback(patience=1)
    learn = sgd_learner(dls_of(x, y, 8), lr=0.05, cbs=es)
    learn.fit(4)
    assert len(learn.recorder.values) == 4 and es.stopped_epoch is None and es.best_epoch == 3


# ---- TerminateOnNaNCallback --------------------------------------------------------------------
def test_terminate_on_nan_stops_before_the_bad_step():
    x, y = data(32)
    calls = []

    def loss_func(pred, targ):
        loss = nn.functional.mse_loss(pred, targ)
        if pred.requires_grad:
            calls.append(1)
            if len(calls) == 7:  # epoch 1, batch 2
                return loss * float("nan")
        return loss

    counter = StepCounter()
    learn = Learner(dls_of(x, y, 8), nn.Linear(4, 1), loss_func=loss_func, cbs=[TerminateOnNaNCallback(), counter])
    assert learn.terminate_on_nan is learn.cbs[1]
    with pytest.warns(RuntimeWarning, match=r"loss is nan at epoch 1, batch 2"):
        learn.fit(3, 1e-2)
    assert learn.terminate_on_nan.stopped_at == (1, 2)
    assert counter.steps == 6 and len(learn.recorder.values) == 1  # epoch 0 finished, epoch 1 cut short
    assert torch.equal(learn.model.weight, counter.w0[0])  # weights from before the NaN batch
    assert torch.isfinite(learn.model.weight).all() and torch.isfinite(learn.recorder.losses).all()
    assert len(learn.recorder.losses) == 6


# ---- CSVLogger -------------------------------------------------------------------------------
def test_csv_logger_writes_the_recorder_table(tmp_path):
    x, y = data(32)
    yc = (y > 0).long().squeeze(1)
    model = nn.Linear(4, 2)
    line_counts = []

    class ReadBack(Callback):
        order = 70  # after CSVLogger (55): the line is already on disk

        def after_epoch(self):
            line_counts.append(len((tmp_path / "logs" / "h.csv").read_text().splitlines()))

    learn = Learner(DataLoaders(DataLoader(TensorDataset(x, yc), 8), DataLoader(TensorDataset(x, yc), 16),
                                device="cpu"),
                    model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy, path=tmp_path,
                    cbs=[CSVLogger("logs/h.csv"), ReadBack()])
    learn.fit(2, 1e-2)
    assert learn.csv_logger.path == tmp_path / "logs" / "h.csv"
    assert line_counts == [2, 3]  # flushed line by line
    with open(learn.csv_logger.path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    parsed = [[float(r[1]), float(r[2]), float(r[3])] for r in rows[1:]]
    assert parsed == learn.recorder.values  # exact: floats are written with repr
    assert [int(r[0]) for r in rows[1:]] == [0, 1] and rows[-1][-1] == learn.recorder.log[-1]
    df = learn.csv_logger.read_log()
    assert list(df.columns) == rows[0] and len(df) == 2
    first = learn.recorder.values

    learn.add_cb(CSVLogger("logs/h.csv", append=True))  # a second logger on the same file
    learn.remove_cb(next(c for c in learn.cbs if isinstance(c, CSVLogger) and not c.append))
    learn.fit(1, 1e-2)
    rows = list(csv.reader(open(learn.csv_logger.path, newline="")))
    assert len(rows) == 4 and rows.count(rows[0]) == 1  # one header, 2 + 1 epochs
    assert [float(r[2]) for r in rows[1:]] == [r[1] for r in first] + [learn.recorder.values[0][1]]

    learn.metrics = []
    with pytest.raises(ValueError, match="has columns"):
        learn.fit(1, 1e-2)


def test_csv_logger_leaves_the_file_alone_in_a_fit_that_ends_no_epoch(tmp_path):
    class StopEarly(Callback):  # what lr_find does: cancel the fit after some batches
        def after_batch(self):
            if self.learn.iter == 1:
                raise CancelFitException()

    x, y = data(32)
    learn = sgd_learner(dls_of(x, y, 8), lr=1e-3, path=tmp_path, cbs=CSVLogger())
    learn.fit(2)
    before = (tmp_path / "history.csv").read_text()
    assert len(before.splitlines()) == 3
    learn.fit(1, cbs=StopEarly())
    assert (tmp_path / "history.csv").read_text() == before


def test_csv_logger_without_validation_leaves_cells_empty(tmp_path):
    x, y = data(16)
    learn = sgd_learner(dls_of(x, y, 8, valid=False), lr=1e-3, path=tmp_path, cbs=CSVLogger())
    learn.fit(1)
    rows = list(csv.reader(open(tmp_path / "history.csv", newline="")))
    assert rows[1][2] == "" and float(rows[1][1]) == learn.recorder.values[0][0]


def test_mc_dropout_samples_differ_and_leave_the_model_in_eval_mode():
    """MCDropoutCallback keeps dropout on for get_preds only: repeated calls differ, a plain call is deterministic."""
    from helpers import synth_dls

    from minifastai import Learner, MCDropoutCallback

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2))
    learn = Learner(synth_dls(), model, nn.CrossEntropyLoss())
    a, _ = learn.get_preds(cbs=MCDropoutCallback())
    b, _ = learn.get_preds(cbs=[MCDropoutCallback()])
    c, _ = learn.get_preds()
    d, _ = learn.get_preds()
    assert not torch.equal(a, b) and torch.equal(c, d)
    assert not model[2].training and MCDropoutCallback not in {type(cb) for cb in learn.cbs}
