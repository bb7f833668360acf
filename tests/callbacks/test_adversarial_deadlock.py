"""Issue 10, class 12: an error on one rank never leaves the others waiting in a collective.

In one process (a one-rank gloo group, collectives counted): a fit that fails runs no collective on its way
out, while a normal fit, and a fit run inside an `except` block, still synchronise. Under torchrun with two
processes (CPU, gloo, a model with BatchNorm buffers, a best model to load back): rank 1 fails in `after_loss`;
it prints its error with its rank and leaves at once, long before the timeout, and the run ends.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from _ddp_script import FAIL_TIMEOUT
from helpers import TESTS, make_learner

import minifastai.callback.distributed as D
from minifastai import Callback
from minifastai.callback.distributed import DistributedTrainer, barrier, distrib_ctx

SCRIPT = TESTS / "_ddp_script.py"


class Boom(Callback):
    def after_loss(self) -> None:
        if self.learn.training and self.learn.iter == 1:
            raise ValueError("boom")


@pytest.fixture
def one_rank_group(tmp_path, monkeypatch):
    """A real one-process gloo group; every broadcast and barrier minifastai makes is counted."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    calls = {"broadcast": 0, "barrier": 0}
    real_broadcast = dist.broadcast

    def broadcast(*args, **kwargs):
        calls["broadcast"] += 1
        return real_broadcast(*args, **kwargs)

    def fake_barrier(*args, **kwargs):
        calls["barrier"] += 1

    monkeypatch.setattr(D.dist, "broadcast", broadcast)
    monkeypatch.setattr(D.dist, "barrier", fake_barrier)
    monkeypatch.setattr(D.dist, "get_world_size", lambda *a, **k: 2)  # so that barrier() would wait
    try:
        yield calls
    finally:
        monkeypatch.undo()
        dist.destroy_process_group()


def _ddp_learner():
    learn = make_learner()  # BatchNorm: buffers that after_fit would broadcast
    learn.add_cb(DistributedTrainer(torch.device("cpu"), learn.dls.train, learn.dls.valid, {}))
    return learn


def test_a_failing_fit_runs_no_collective_on_its_way_out(one_rank_group):
    calls = one_rank_group
    learn = _ddp_learner()
    with pytest.raises(ValueError, match="^boom$"):  # the original error, not a collective's
        learn.fit(1, 1e-2, cbs=Boom())
    assert calls == {"broadcast": 0, "barrier": 0}
    assert type(learn.model).__name__ == "Sequential"  # unwrapped all the same
    barrier()  # later barriers of the failing rank (e.g. a best model loaded back) do not wait either
    assert calls["barrier"] == 0


def test_a_normal_fit_and_a_fit_inside_an_except_block_still_synchronise(one_rank_group):
    calls = one_rank_group
    learn = _ddp_learner()
    learn.fit(1, 1e-2)
    n_buffers = len(list(learn.model.buffers()))
    assert calls["broadcast"] == 2 * n_buffers  # before validation and after the fit
    try:
        raise KeyError("handled by the caller")
    except KeyError:
        learn.fit(1, 1e-2)  # the exception being handled is not this fit's
    assert calls["broadcast"] == 4 * n_buffers
    barrier()
    assert calls["barrier"] == 1


def test_timeout_must_be_positive():
    learn = make_learner()
    with pytest.raises(ValueError, match=r"timeout must be a positive number of seconds"):
        with distrib_ctx(learn, timeout=0):
            pass
    assert D.DEFAULT_TIMEOUT == 600


@pytest.mark.slow
def test_torchrun_rank_failure_is_reported_and_nobody_hangs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["PYTHONPATH"] = str(SCRIPT.parent.parent)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(SCRIPT), str(tmp_path), "fail"], env=env, capture_output=True, text=True,
                          timeout=FAIL_TIMEOUT * 6)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert re.search(r"\[rank 1/2\] training failed on this rank with ValueError: injected failure on rank 1 "
                     r"\(raised at .*_ddp_script\.py:\d+ in after_loss\)", log), log[-3000:]
    left = re.search(r"rank 1 left distrib_ctx after ([\d.]+) s", log)
    assert left and float(left.group(1)) < FAIL_TIMEOUT / 2, log[-3000:]  # no collective waited for a timeout
    assert "collective mismatch" not in log and "Timed out" not in log, log[-3000:]
