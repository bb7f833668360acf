"""Resuming a fit: SIGKILL in mid-epoch then `resume=True` in a new process, `load` + `start_epoch`,
and the errors and warnings of `resume_latest`."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _train_script import BS, KILL_BATCH, KILL_EPOCH, LR, N_EPOCH, make_learner, run
from helpers import TESTS, sigkill, start_script, wait_for_file
from helpers import make_learner as make_3group_learner

from minifastai import Callback, CancelFitException, SaveModelCallback

SCRIPT = TESTS / "_train_script.py"
N_ITER = 64 // BS


def _same_weights(a: dict, b: dict, atol: float = 1e-6) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


@pytest.mark.slow
def test_sigkill_in_mid_epoch_then_resume_ends_like_an_uninterrupted_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    proc = start_script(SCRIPT, out, "kill")
    full = run(tmp_path / "full", "full")  # the uninterrupted run, in this process while the other one starts
    ready = out / "ready"
    wait_for_file(proc, ready)
    # epoch KILL_EPOCH is half done: its checkpoint does not exist, the previous one does
    assert int(ready.read_text()) == KILL_EPOCH * N_ITER + KILL_BATCH + 1
    assert sorted(p.name for p in (out / "models").glob("*.pth")) == [f"model_{e}.pth" for e in range(KILL_EPOCH)]
    sigkill(proc)

    resumed = start_script(SCRIPT, out, "resume")
    log, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, log
    assert f"resuming from {out / 'models' / f'model_{KILL_EPOCH - 1}.pth'}: {KILL_EPOCH} epoch(s) done" in log

    res = torch.load(out / "result_resume.pt", weights_only=True)
    assert res["epochs"] == list(range(KILL_EPOCH, N_EPOCH))
    assert _same_weights(res["model"], full["model"])
    assert len(res["lrs"]) == (N_EPOCH - KILL_EPOCH) * N_ITER
    assert torch.equal(res["lrs"], full["lrs"][KILL_EPOCH * N_ITER:])
    assert torch.equal(res["moms"], full["moms"][KILL_EPOCH * N_ITER:])
    assert res["valid_loss"] == pytest.approx(full["valid_loss"][KILL_EPOCH:], abs=1e-6)


class Interrupt(Callback):
    """Stops the fit in the middle of an epoch (in-process stand-in for a crash)."""

    order = 100

    def after_batch(self) -> None:
        if self.learn.training and self.learn.epoch == KILL_EPOCH and self.learn.iter == KILL_BATCH:
            raise CancelFitException()


def test_load_then_start_epoch_continues_the_same_schedule():
    full = make_learner("full")
    full.fit_one_cycle(N_EPOCH, LR)
    crashed = make_learner("crashed")
    crashed.fit_one_cycle(N_EPOCH, LR, cbs=[SaveModelCallback(every_epoch=True), Interrupt()])
    assert len(crashed.recorder.lrs) == KILL_EPOCH * N_ITER + KILL_BATCH + 1
    again = make_learner("crashed", seed=7)  # other initial weights: they come from the checkpoint
    again.load(f"model_{KILL_EPOCH - 1}")
    again.fit_one_cycle(N_EPOCH, LR, start_epoch=KILL_EPOCH)
    assert _same_weights(again.model.state_dict(), full.model.state_dict())
    assert np.array_equal(again.recorder.lrs, full.recorder.lrs[KILL_EPOCH * N_ITER:])
    assert again.recorder.values[-1][1] == pytest.approx(full.recorder.values[-1][1])  # smoothed train loss


def test_resume_without_a_checkpoint_says_what_to_do():
    learn = make_learner(".")
    with pytest.raises(FileNotFoundError, match=r"no checkpoint \(\*\.pth\) in models.*SaveModelCallback\("
                                                r"every_epoch=True\)"):
        learn.fit_one_cycle(2, LR, resume=True)


def test_resume_of_a_finished_fit_is_an_error():
    learn = make_learner(".")
    learn.fit_one_cycle(2, LR, cbs=SaveModelCallback(every_epoch=True))
    with pytest.raises(ValueError, match=r"end of epoch 1: a fit of n_epoch=2 is already complete"):
        learn.fit_one_cycle(2, LR, resume=True)


class BestProbe(Callback):
    """Reads SaveModelCallback's best value once the fit has started (after saved states are restored)."""

    order = 20_000

    def before_fit(self) -> None:
        self.best = self.learn.save_model.best


def test_resume_restores_save_model_tracking():
    learn = make_3group_learner()
    learn.fit(2, 1e-2, cbs=SaveModelCallback())
    best = min(row[1] for row in learn.recorder.values)
    again = make_3group_learner()
    probe = BestProbe()
    again.fit(4, 1e-2, cbs=[SaveModelCallback(), probe], resume=True)
    assert probe.best == pytest.approx(best)
    assert len(again.recorder.values) == 2 and again.recorder.log[0] == 3  # epochs 2 and 3 ran


def test_resume_warns_about_mid_epoch_checkpoints_and_other_batch_counts():
    learn = make_learner(".")
    learn.fit_one_cycle(2, LR, cbs=Interrupt())  # KILL_EPOCH=2 is never reached: fit ends normally
    learn.train_iter = N_ITER + 3  # as if saved three batches into epoch 1
    learn.save("mid")
    again = make_learner(".")
    with pytest.warns(UserWarning, match=r"middle of epoch 1: that epoch restarts from its beginning"):
        again.fit_one_cycle(2, LR, resume=True)
    assert len(again.recorder.values) == 1 and again.recorder.log[0] == 1
    make_learner("b").fit_one_cycle(2, LR, cbs=SaveModelCallback(every_epoch=True, keep=1))
    small = make_learner("b")
    small.dls.train = list(small.dls.train)[:5]
    with pytest.warns(UserWarning, match=rf"written with {N_ITER} training batches per epoch, but dls\.train "
                                         r"has 5"):
        small.fit_one_cycle(3, LR, resume=True)


def test_dry_run_with_resume_plans_the_rest_without_loading_anything():
    learn = make_learner(".")
    learn.fit_one_cycle(N_EPOCH, LR, cbs=[SaveModelCallback(every_epoch=True), Interrupt()])
    weights = {k: v.clone() for k, v in learn.model.state_dict().items()}
    with learn.dry_run() as runs:
        learn.fit_one_cycle(N_EPOCH, LR, resume=True)
    assert _same_weights(weights, learn.model.state_dict(), atol=0)
    full = make_learner("full")
    full.fit_one_cycle(N_EPOCH, LR)
    assert np.array_equal(runs[0].lrs, full.recorder.lrs[KILL_EPOCH * N_ITER:])


def test_lr_find_between_load_and_fit_leaves_the_callback_states_for_the_fit():
    learn = make_3group_learner()
    learn.fit(2, 1e-2, cbs=SaveModelCallback())
    best = min(row[1] for row in learn.recorder.values)
    again = make_3group_learner()
    again.load("model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 10-batch sweep is too short for good suggestions; not the point here
        again.lr_find(num_it=10, show_plot=False)
    probe = BestProbe()
    again.fit(1, 1e-2, cbs=[SaveModelCallback(), probe])
    assert probe.best == pytest.approx(best)
