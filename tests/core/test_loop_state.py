"""The loop state has one owner (`learn.loop`): a field added to `LoopState` is carried by checkpoints and resume
(when `saved`) and by `Snapshot` (`lr_find`, `dry_run`), with no other change."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pytest
from helpers import make_learner

from minifastai import Callback, SaveModelCallback
from minifastai.state import LOOP_STATE, LoopState, saved


@dataclass
class LoopWithMore(LoopState):
    """The one-line change a new field needs (here in a subclass, so that the test leaves LoopState alone)."""

    best_epoch: int = saved(-1)  # carried by checkpoints
    scratch: int = 0  # per-fit only: snapshots carry it, checkpoints do not


def learner_with_more_state():
    learn = make_learner()
    learn.loop = LoopWithMore(**asdict(learn.loop))
    return learn


class MarkBest(Callback):
    def after_epoch(self) -> None:
        self.learn.loop.best_epoch = self.epoch + 10
        self.learn.loop.scratch += 1


def test_learner_reads_and_writes_the_loop_by_fastai_names():
    learn = make_learner()
    learn.fit(1, 1e-2)
    assert isinstance(learn.loop, LoopState) and LOOP_STATE == tuple(asdict(LoopState()))
    assert (learn.epoch, learn.train_iter, learn.n_iter_total) == (0, 8, 8) == (
        learn.loop.epoch, learn.loop.train_iter, learn.loop.n_iter_total)
    learn.pred = "set by a callback, as fastai's do"
    assert learn.loop.pred == "set by a callback, as fastai's do"


def test_state_dict_holds_the_saved_fields_and_loads_them_back():
    loop = LoopState(epoch=3, iter=5, train_iter=29, n_epoch=4, pct_train=0.9, n_iter=8, training=True)
    assert loop.state_dict() == {"epoch": 3, "n_epoch": 4, "iter": 5, "train_iter": 29, "pct_train": 0.9}
    other = LoopState()
    other.load_state_dict({**loop.state_dict(), "next_epoch": 4})  # other keys of a position are ignored
    assert other.state_dict() == loop.state_dict() and other.n_iter == 0 and not other.training


def test_a_bad_saved_value_is_refused_before_any_field_changes():
    loop = LoopState(epoch=2, train_iter=16)
    with pytest.raises(ValueError, match=r"loop state 'train_iter' is 'x', not a int"):
        loop.load_state_dict({"epoch": 7, "train_iter": "x"})
    assert (loop.epoch, loop.train_iter) == (2, 16)


def test_an_added_field_is_carried_by_save_and_resume():
    learn = learner_with_more_state()
    learn.fit(2, 1e-2, cbs=[MarkBest(), SaveModelCallback(every_epoch=True)])
    assert (learn.loop.best_epoch, learn.loop.scratch) == (11, 2)
    again = learner_with_more_state()
    assert again.loop.best_epoch == -1
    again.fit(3, 1e-2, resume=True)  # resumes after epoch 1, from model_1.pth
    assert again.loop.best_epoch == 11  # saved: loaded back
    assert again.loop.scratch == 0  # not saved: a new fit's own


def test_an_added_field_is_carried_by_snapshots_of_lr_find_and_dry_run():
    learn = learner_with_more_state()
    learn.loop.best_epoch, learn.loop.scratch = 5, 9
    learn.add_cb(MarkBest())  # changes both fields at every epoch end, sweeps and planned fits included
    with pytest.warns(UserWarning, match="lr_find"):
        learn.lr_find(num_it=6, show_plot=False)
    assert (learn.loop.best_epoch, learn.loop.scratch) == (5, 9)
    with learn.dry_run():
        learn.fit_one_cycle(2, 1e-2)
    assert (learn.loop.best_epoch, learn.loop.scratch) == (5, 9)
