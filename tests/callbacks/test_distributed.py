"""Distributed training: sharding helpers, `distrib_ctx` outside torchrun, a 2-process torchrun run on CPU."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from _ddp_script import N_TRAIN, N_VALID, VALID_BS, make_learner, make_model
from helpers import TESTS
from helpers import make_learner as make_3group_learner
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from minifastai import Callback, ProgressCallback, load_learner
from minifastai.callback.distributed import (
    ShardedLoader,
    ShardSampler,
    is_main_process,
    rank,
    shard_train,
    shard_valid,
    world_size,
)

SCRIPT = TESTS / "_ddp_script.py"


def test_shard_sampler_partitions_without_padding():
    shards = [list(ShardSampler(11, r, 3)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert [len(ShardSampler(11, r, 3)) for r in range(3)] == [4, 4, 3]


def test_sharded_loader_takes_every_nth_batch():
    batches = list(range(7))
    assert [list(ShardedLoader(batches, r, 2, even=True)) for r in range(2)] == [[0, 2, 4], [1, 3, 5]]
    assert [list(ShardedLoader(batches, r, 2, even=False)) for r in range(2)] == [[0, 2, 4, 6], [1, 3, 5]]
    assert [len(ShardedLoader(batches, r, 2, even=False)) for r in range(2)] == [4, 3]
    with pytest.raises(TypeError, match="unsized training loader"):
        shard_train(iter(batches), 0, 2)


def test_torch_loaders_are_recreated_with_the_same_batch_size_and_collate():
    ds = TensorDataset(torch.arange(10.0), torch.arange(10))
    collate = lambda b: tuple(torch.stack(t) for t in zip(*b))
    train = shard_train(DataLoader(ds, 3, shuffle=True, collate_fn=collate), 1, 2, seed=5)
    assert isinstance(train.sampler, DistributedSampler) and train.sampler.shuffle and train.sampler.seed == 5
    assert train.batch_size == 3 and train.collate_fn is collate and len(train) == 2
    valid = shard_valid(DataLoader(ds, 4, collate_fn=collate), 1, 2)
    assert [b[1].tolist() for b in valid] == [[1, 3, 5, 7], [9]]


def test_outside_torchrun_distrib_ctx_does_nothing(monkeypatch):
    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(v, raising=False)
    assert (rank(), world_size(), is_main_process()) == (0, 1, True)
    learn = make_3group_learner()
    train, valid, cbs = learn.dls.train, learn.dls.valid, list(learn.cbs)

    class ModelType(Callback):
        def before_fit(self) -> None:
            self.seen = type(self.learn.model).__name__

    probe = ModelType()
    with learn.distrib_ctx() as ctx_learn:
        assert ctx_learn is learn
        assert learn.dls.train is train and learn.dls.valid is valid and learn.cbs == cbs
        learn.fit(1, 1e-2, cbs=probe)
    assert probe.seen == "Sequential"
    assert learn.cbs == cbs and any(isinstance(c, ProgressCallback) for c in learn.cbs)


@pytest.mark.slow
def test_torchrun_two_processes_agree_and_cover_the_whole_validation_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["PYTHONPATH"] = str(SCRIPT.parent.parent)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(SCRIPT), str(tmp_path)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))

    # both ranks end with the same weights and buffers, and recorded the same (reduced) numbers
    assert r0["model"].keys() == r1["model"].keys()
    assert all(torch.equal(r0["model"][k], r1["model"][k]) for k in r0["model"])
    assert r0["values"] == r1["values"] and r0["validated"] == r1["validated"]
    assert r0["lr_find"] == r1["lr_find"]

    # during the fits: DDP, sharded data (70 rows -> 35 per rank -> 5 batches of 8), progress on rank 0 only
    # (lr_find hides it on every rank); validation partitioned with no padding; all undone afterwards
    for res in (r0, r1):
        assert res["seen"]["model"] == ["DistributedDataParallel"] * 3
        assert res["seen"]["train_batches"] == [5, 5, 5]
        assert res["after_model"] == "Sequential" and res["after_train_batches"] == -(-N_TRAIN // 8)
    assert r0["seen"]["progress"] == [False, True, True] and r1["seen"]["progress"] == [False] * 3
    assert r0["seen"]["valid_items"] + r1["seen"]["valid_items"] == N_VALID
    assert proc.stdout.count("train_loss") == 2  # one table per fit, from rank 0

    # resuming from rank 0's epoch-0 checkpoint on every rank ends where the uninterrupted fit ended
    for res in (r0, r1):
        assert all(torch.allclose(res["resumed"][k], r0["model"][k], atol=1e-6, rtol=0) for k in r0["model"])
        assert res["resumed_values"][0] == pytest.approx(r0["values"][1], abs=1e-6)
        assert len(res["resumed_values"]) == 1

    # the reported validation loss and metric equal a single process's on the whole validation set
    single = make_learner(tmp_path / "single")
    single.model.load_state_dict(r0["model"])
    loss, acc = single.validate()
    assert r0["values"][-1][1] == pytest.approx(loss, abs=1e-6)
    assert r0["values"][-1][2] == pytest.approx(acc, abs=1e-6)
    assert r0["validated"] == pytest.approx([loss, acc], abs=1e-6)
    assert len(single.dls.valid) == -(-N_VALID // VALID_BS)

    # only rank 0 wrote files: checkpoints every epoch, the CSV log and the export, loadable in one process
    assert not (tmp_path / "rank1").exists()
    assert len((tmp_path / "rank0" / "history.csv").read_text().splitlines()) == 3
    assert sorted(p.name for p in (tmp_path / "rank0" / "models").glob("*.pth")) == ["model_0.pth", "model_1.pth"]
    single.load(tmp_path / "rank0" / "models" / "model_1.pth")
    assert all(torch.equal(v, r0["model"][k]) for k, v in single.model.state_dict().items())
    exported = load_learner(tmp_path / "rank0" / "export.pkl", model=make_model())
    assert all(torch.equal(v, r0["model"][k]) for k, v in exported.model.state_dict().items())
