"""The progress table's throughput columns: items per second and the share of time spent waiting for data."""
from __future__ import annotations

import time

import pytest
import torch
from helpers import NoSync, make_learner, synth_dls

from minifastai import Callback, ProgressCallback
from minifastai.callback.progress import format_rate, format_share, n_items


class SlowLoader:
    """Wraps a loader and sleeps `delay` seconds before yielding each batch (a slow data pipeline)."""

    def __init__(self, dl, delay: float) -> None:
        self.dl, self.delay = dl, delay

    def __len__(self) -> int:
        return len(self.dl)

    def __iter__(self):
        for b in self.dl:
            time.sleep(self.delay)
            yield b


class SlowStep(Callback):
    """A slow training step (as if the GPU were the bottleneck)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def after_loss(self) -> None:
        if self.learn.training:
            time.sleep(self.delay)


def _table(out: str) -> list[list[str]]:
    return [ln.split() for ln in out.strip().splitlines()]


def test_plain_table_shows_throughput_and_data_wait(capsys):
    learn = make_learner(dls=synth_dls(n_train=256, bs=32))  # 8 batches of 32 per epoch
    learn.fit(2, 1e-3)
    rows = _table(capsys.readouterr().out)
    assert rows[0] == ["epoch", "train_loss", "valid_loss", "accuracy", "time", "throughput", "data_wait"]
    stats = learn.progress.stats
    assert len(stats) == 2 and len(rows) == 3
    for row, st in zip(rows[1:], stats):
        # items/s is the number of training items over the training phase's duration
        assert st["items_per_s"] == pytest.approx(256 / st["seconds"])
        assert 0 <= st["data_wait"] < 1
        assert row[5] == format_rate(st["items_per_s"]) and row[6] == format_share(st["data_wait"])
        assert row[5].endswith("/s") and row[6].endswith("%")


class FailFirstBatch(Callback):
    def before_batch(self) -> None:
        raise RuntimeError("boom")


def test_plain_table_header_comes_with_the_first_row(capsys):
    """In plain mode the header is printed with the first row (once per fit): a fit that fails before its first
    epoch ends prints no orphan header, and the events before training print nothing (fastai's notebook test)."""
    learn = make_learner(dls=synth_dls(n_train=64, bs=32))
    learn("before_fit")
    learn("before_epoch")
    assert capsys.readouterr().out == ""
    learn = make_learner(dls=synth_dls(n_train=64, bs=32))
    with pytest.raises(RuntimeError, match="boom"):
        learn.fit(1, 1e-3, cbs=FailFirstBatch())
    assert "train_loss" not in capsys.readouterr().out
    learn.fit(3, 1e-3)
    rows = _table(capsys.readouterr().out)
    assert [r[0] for r in rows] == ["epoch", "0", "1", "2"]


def test_data_wait_is_high_when_the_loader_is_slow_and_low_when_the_step_is():
    slow_data = make_learner(dls=synth_dls(n_train=128, bs=32))
    slow_data.dls.train = SlowLoader(slow_data.dls.train, 0.05)
    slow_data.fit(1, 1e-3)
    slow_step = make_learner(dls=synth_dls(n_train=128, bs=32))
    slow_step.fit(1, 1e-3, cbs=SlowStep(0.05))
    assert slow_data.progress.stats[0]["data_wait"] > 0.6
    assert slow_step.progress.stats[0]["data_wait"] < 0.4
    # 4 batches of 32 items, each taking at least 0.05 s: at most 640 items/s
    assert slow_data.progress.stats[0]["items_per_s"] <= 32 / 0.05
    assert slow_step.progress.stats[0]["items_per_s"] <= 32 / 0.05


def test_terminal_bar_comment_shows_loss_items_per_second_and_data_wait(capsys):
    learn = make_learner(dls=synth_dls(n_train=128, bs=32))
    learn.remove_cb(learn.progress)
    learn.add_cb(ProgressCallback(mode="terminal"))
    learn.dls.train = SlowLoader(learn.dls.train, 0.3)  # 4 batches over 1.2 s: the comment updates once
    learn.fit(1, 1e-3)
    out = capsys.readouterr().out
    assert "items/s · data wait" in out
    assert "throughput  data_wait" in out


def test_throughput_false_keeps_fastais_columns(capsys):
    learn = make_learner()
    learn.remove_cb(learn.progress)
    learn.add_cb(ProgressCallback(throughput=False))
    learn.fit(1, 1e-3)
    assert _table(capsys.readouterr().out)[0] == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]


def test_formats_and_item_counts():
    assert format_rate(25314.4) == "25,314/s" and format_rate(812.2) == "812/s" and format_rate(3.414) == "3.41/s"
    assert format_rate(None) == "-" and format_rate(float("nan")) == "-"
    assert format_share(0.024) == "2%" and format_share(1.0) == "100%"
    assert n_items((torch.zeros(5, 3),)) == 5
    assert n_items(({"ids": torch.zeros(7, 2)},)) == 7
    assert n_items((torch.tensor(1.0), torch.zeros(4))) == 4
    assert n_items(("text",)) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bar_never_synchronises_during_training_batches(capsys):
    """The bar's loss comment is copied to pinned memory asynchronously: no sync even with the bar drawn."""
    from torch.utils.data import DataLoader, TensorDataset

    dls = synth_dls(n_train=512, bs=8)
    x, y = dls.train.dataset.tensors
    dls.train = SlowLoader(DataLoader(TensorDataset(x.cuda(), y.cuda()), 8), 0.02)  # 64 batches, > 1 s
    dls.valid = DataLoader(TensorDataset(*(t.cuda() for t in dls.valid.dataset.tensors)), 32)
    dls.device = torch.device("cuda")
    learn = make_learner(dls=dls, opt_func=torch.optim.SGD)
    learn.remove_cb(learn.progress)
    learn.add_cb(ProgressCallback(mode="terminal"))
    learn.fit(1, 1e-3)  # warm-up: one-off syncs
    learn.fit(2, 1e-3, cbs=NoSync())
    assert "items/s" in capsys.readouterr().out
