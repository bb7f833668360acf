"""The training loop: event order, every cancellation exception, after_fit on errors, no per-batch sync."""
from functools import partial

import pytest
import torch
from helpers import count_host_reads, make_learner, same_state, state_copy, synth_dls
from torch import nn

import minifastai as mf
from minifastai import Callback

BATCH = ["before_batch", "after_pred", "after_loss"]
TRAIN_BATCH = BATCH + ["before_backward", "after_backward", "before_step", "after_step", "after_batch"]


class Log(Callback):
    """Records every event it sees."""

    def __init__(self):
        self.events = []


for _e in mf.callback.EVENTS:
    setattr(Log, _e, (lambda e: lambda self: self.events.append(e))(_e))


def small():
    return make_learner(dls=synth_dls(n_train=64, n_valid=32, bs=32), default_cbs=False)


def test_event_order_one_epoch():
    learn, log = small(), Log()
    learn.fit(1, cbs=log)
    expected = (["before_fit", "before_epoch", "before_train"] + TRAIN_BATCH * 2 + ["after_train", "before_validate"]
                + (BATCH + ["after_batch"]) + ["after_validate", "after_epoch", "after_fit"])
    assert log.events == expected


def test_after_create_runs_once():
    log = Log()
    make_learner(cbs=log)
    assert log.events == ["after_create"]


def test_callbacks_sorted_by_order_stably():
    calls = []

    def mk(o, tag):
        class C(Callback):
            order = o

            def before_fit(self):
                calls.append(tag)
        return C()

    learn = small()
    learn.fit(1, cbs=[mk(5, "a"), mk(-20, "b"), mk(5, "c")])
    assert calls == ["b", "a", "c"]


def raiser(event, exc, when=lambda learn: True):
    class R(Callback):
        pass

    def hook(self):
        if when(self.learn):
            raise exc()
    setattr(R, event, hook)
    return R()


def test_cancel_batch_skips_rest_of_batch():
    learn, log = small(), Log()
    before = state_copy(learn.model)
    learn.fit(1, cbs=[log, raiser("after_pred", mf.CancelBatchException, lambda L: L.training)])
    assert "after_loss" not in log.events[: log.events.index("after_train")]
    assert log.events.count("after_cancel_batch") == 2 and log.events.count("after_batch") == 3
    lin = [k for k in before if k.endswith("weight") and "1." not in k]
    assert all(torch.equal(before[k], state_copy(learn.model)[k]) for k in lin)  # nothing stepped


def test_cancel_backward_skips_backward_but_step_runs():
    learn, log = small(), Log()
    learn.fit(1, cbs=[log, raiser("before_backward", mf.CancelBackwardException)])
    assert log.events.count("after_cancel_backward") == 2 and log.events.count("after_backward") == 2
    assert log.events.count("before_step") == 2


def test_cancel_step_skips_opt_step_and_zero_grad_still_runs():
    learn, log = small(), Log()
    before = state_copy(learn.model)
    grads = []

    class G(Callback):
        order = 1

        def after_step(self):
            grads.append([p.grad for p in self.learn.model.parameters()])

        def after_batch(self):
            if self.learn.training:
                assert all(p.grad is None for p in self.learn.model.parameters())

    learn.fit(1, cbs=[log, raiser("before_step", mf.CancelStepException), G()])
    assert log.events.count("after_cancel_step") == 2 and log.events.count("after_step") == 2
    after = state_copy(learn.model)
    params = [k for k in before if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(before[k], after[k]) for k in params)  # no weight moved
    assert all(g is not None for gs in grads for g in gs)  # grads existed, then zero_grad cleared them


def test_cancel_train_skips_to_validation():
    learn, log = small(), Log()
    learn.fit(1, cbs=[log, raiser("before_batch", mf.CancelTrainException, lambda L: L.training)])
    i = log.events.index("after_cancel_train")
    assert log.events[i + 1:i + 3] == ["after_train", "before_validate"]
    assert learn.train_iter == 0


def test_cancel_valid_skips_validation():
    learn, log = small(), Log()
    learn.fit(2, cbs=[log, raiser("before_validate", mf.CancelValidException)])
    assert log.events.count("after_cancel_validate") == 2
    assert log.events.count("after_validate") == 2 and log.events.count("after_pred") == 4


def test_cancel_epoch_goes_to_next_epoch():
    learn, log = small(), Log()
    learn.fit(3, cbs=[log, raiser("after_train", mf.CancelEpochException)])
    assert log.events.count("after_cancel_epoch") == 3 and log.events.count("before_validate") == 0
    assert log.events.count("after_epoch") == 3


def test_cancel_fit_stops_everything():
    learn, log = small(), Log()
    learn.fit(5, cbs=[log, raiser("after_epoch", mf.CancelFitException, lambda L: L.epoch == 1)])
    assert log.events.count("before_epoch") == 2
    assert log.events[-2:] == ["after_cancel_fit", "after_fit"]


def test_after_fit_runs_when_training_raises_and_temporary_cbs_removed():
    learn, log = make_learner(), Log()
    with pytest.raises(ZeroDivisionError):
        learn.fit(1, cbs=[log, raiser("after_loss", ZeroDivisionError)])
    assert log.events[-1] == "after_fit"
    assert log not in learn.cbs and learn.progress.mbar is None


def test_learner_exposes_fastai_names_during_fit():
    seen = {}

    class Spy(Callback):
        def after_loss(self):
            L = self.learn
            if L.training and L.iter == 1:
                seen.update(epoch=L.epoch, n_epoch=L.n_epoch, iter=L.iter, n_iter=L.n_iter,
                            train_iter=L.train_iter, pct_train=L.pct_train, xb=L.xb[0].shape, yb=L.yb[0].shape,
                            pred=L.pred.shape, loss=L.loss.shape, batch=len(L.batch))

    learn = make_learner()
    learn.fit(2, cbs=Spy())
    assert seen == dict(epoch=1, n_epoch=2, iter=1, n_iter=8, train_iter=9, pct_train=9 / 16,
                        xb=(32, 8), yb=(32,), pred=(32, 2), loss=(), batch=2)


def test_default_callbacks_make_no_per_batch_sync(monkeypatch):
    """Reading a tensor's value on the host is counted; it must not grow with the number of batches."""
    counts = count_host_reads(monkeypatch)

    def syncs(n_train):
        # SGD: torch's Adam reads its CPU step counter with .item() each step, in any training loop
        learn = make_learner(dls=synth_dls(n_train=n_train, n_valid=64, bs=8),
                             opt_func=partial(torch.optim.SGD, momentum=0.9))
        counts["n"] = 0
        learn.fit_one_cycle(2, 1e-3)
        return counts["n"]

    few, many = syncs(64), syncs(512)  # 8 vs 64 training batches per epoch
    assert few == many, (few, many)
    assert many <= 2 * 10  # a handful per epoch: losses to numpy, valid loss, metric, table


def test_empty_loader_is_a_clear_error():
    learn = make_learner(dls=synth_dls(n_train=0 + 8, bs=32))
    learn.dls.train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(8, 8)), 32,
                                                  drop_last=True)
    with pytest.raises(ValueError, match=r"dls.train is empty \(0 batches\)"):
        learn.fit(1)


def test_batch_shape_mismatch_names_loader_and_shapes():
    learn = make_learner(dls=synth_dls(n_feat=5))
    with pytest.raises(RuntimeError) as e:
        learn.fit(1)
    assert "dls.train" in str(e.value) and "(32, 5)" in str(e.value)


def test_loss_mismatch_names_shapes():
    learn = make_learner()
    learn.loss_func = nn.NLLLoss()
    learn.dls.train.dataset.tensors = (learn.dls.train.dataset.tensors[0], torch.full((256,), 5))  # class 5 of 2
    with pytest.raises(IndexError) as e:
        learn.fit(1)
    assert "loss_func failed on predictions (32, 2) and targets ((32,))" in str(e.value)


def test_broadcasting_elementwise_loss_is_refused_with_both_shapes():
    learn = make_learner()
    learn.loss_func = nn.MSELoss()  # (32, 2) predictions against (32,) targets would broadcast to (32, 32)
    before = state_copy(learn.model)
    with pytest.raises(ValueError, match=r"MSELoss got predictions of shape \(32, 2\) and targets of shape \(32,\)"):
        learn.fit(1)
    assert all(torch.equal(p, before[n]) for n, p in learn.model.named_parameters())  # BN statistics saw one batch


def test_no_loss_func_is_a_clear_error():
    learn = make_learner()
    learn.loss_func = None
    before = state_copy(learn.model)
    with pytest.raises(ValueError, match="no loss_func"):
        learn.fit(1)
    assert same_state(before, state_copy(learn.model))


def test_batches_cancelled_before_the_loss_are_not_recorded():
    learn = make_learner()
    learn.fit(1, cbs=raiser("after_pred", mf.CancelBatchException, lambda L: L.training and L.iter % 2 == 0))
    assert len(learn.recorder.losses) == 4 and learn.recorder.lrs.shape == (4, 3)
    assert learn.train_iter == 8  # the schedule position still counts every training batch
