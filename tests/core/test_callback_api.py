"""Callbacks as fastai users write them: loop state read through `self`, run_train/run_valid, adding and removing
callbacks, no_bar/no_logging, after_fit robustness, and what an error leaves behind."""
import math
import re

import pytest
import torch
from helpers import make_learner, same_state, state_copy, synth_dls
from torch import nn

from minifastai import (
    Callback,
    CancelValidException,
    CSVLogger,
    EarlyStoppingCallback,
    ProgressCallback,
    SaveModelCallback,
)
from minifastai.state import LOOP_STATE


class FastaiStyle(Callback):
    """Written as a fastai callback: reads the loop's state through `self`."""

    def __init__(self):
        self.seen = []

    def after_loss(self):
        if self.training:
            self.seen.append((self.epoch, self.n_epoch, self.iter, self.n_iter, self.train_iter,
                              round(self.pct_train, 6), tuple(self.xb[0].shape), tuple(self.pred.shape),
                              self.loss.ndim, self.model is self.learn.model, self.opt is self.learn.opt,
                              self.dls is self.learn.dls, len(self.yb)))


def test_fastai_names_read_the_learners_state():
    learn = make_learner(dls=synth_dls(n_train=64, n_valid=32, bs=32))
    cb = FastaiStyle()
    learn.fit(2, cbs=cb)
    assert cb.seen == [(e, 2, i, 2, 2 * e + i, (2 * e + i) / 4, (32, 8), (32, 2), 0, True, True, True, 1)
                       for e in range(2) for i in range(2)]


def test_assigning_a_loop_name_on_a_callback_says_to_use_self_learn():
    class Bad(Callback):
        def before_fit(self):
            self.model = nn.Linear(8, 2)

    learn = make_learner()
    before = state_copy(learn.model)
    with pytest.raises(AttributeError, match=r"Bad\.model is the learner's model, read-only on a callback: write "
                                             r"self\.learn\.model = \.\.\."):
        learn.fit(1, cbs=Bad())
    assert same_state(before, state_copy(learn.model)) and not any(isinstance(c, Bad) for c in learn.cbs)


def test_other_learner_attributes_read_through_the_callback_as_in_fastai():
    """fastai forwards attribute reads to the learner (`self.recorder`, `self.dls`, `self.lr`); so do we, reads only."""

    class Reads(Callback):
        run_after = "Recorder"  # sees this epoch's row

        def __init__(self):
            self.got = {}

        def after_epoch(self):
            self.got = {"recorder": self.recorder is self.learn.recorder, "lr": self.lr, "n_groups": self.n_groups,
                        "rows": len(self.recorder.values), "names": list(self.group_names)}

    learn = make_learner(lr=3e-3, group_names=["a", "b", "c"])
    cb = Reads()
    learn.fit(1, cbs=cb)
    assert cb.got == {"recorder": True, "lr": 3e-3, "n_groups": 3, "rows": 1, "names": ["a", "b", "c"]}
    with pytest.raises(AttributeError, match=r"Reads has no attribute 'no_such_thing', and neither has its learner "
                                             r"\(Learner\)"):
        cb.no_such_thing  # noqa: B018
    assert not hasattr(cb, "_private") and not hasattr(Reads(), "recorder")  # not forwarded / not attached yet
    # the callback protocol is never read from the learner: a callback without state_dict has none
    assert not hasattr(cb, "state_dict") and not hasattr(cb, "load_state_dict")
    cb.lr = 0.5  # a write is the callback's own attribute
    assert cb.lr == 0.5 and learn.lr == 3e-3


class Counts(Callback):
    def __init__(self):
        self.train, self.valid, self.epochs = 0, 0, 0

    def after_batch(self):
        if self.training:
            self.train += 1
        else:
            self.valid += 1

    def before_train(self):
        self.epochs += 1


def test_run_train_and_run_valid_skip_batch_events_of_that_phase_only():
    learn = make_learner()  # 8 training and 2 validation batches per epoch
    both, no_train, no_valid = Counts(), Counts(), Counts()
    no_train.run_train = False
    no_valid.run_valid = False
    learn.fit(2, cbs=[both, no_train, no_valid])
    assert (both.train, both.valid) == (16, 4)
    assert (no_train.train, no_train.valid) == (0, 4) and (no_valid.train, no_valid.valid) == (16, 0)
    assert both.epochs == no_train.epochs == no_valid.epochs == 2  # phase events are not filtered


def test_add_and_remove_callbacks_by_instance_and_class(capsys):
    learn = make_learner()
    a, b = Counts(), Counts()
    assert learn.add_cbs([a, b]) is learn
    assert [c for c in learn.cbs if isinstance(c, Counts)] == [a, b] and learn.counts is b  # the latest, as fastai
    learn.remove_cb(Counts)  # fastai's idiom: every callback of that class
    assert not any(isinstance(c, Counts) for c in learn.cbs) and not hasattr(learn, "counts")
    learn.add_cb(SaveModelCallback)  # a class is instantiated
    assert isinstance(learn.save_model, SaveModelCallback)
    learn.remove_cbs([learn.save_model])
    learn.remove_cb(ProgressCallback)
    learn.fit(1)  # as fastai: without the table, `learn.logger` (print) gets the row
    assert capsys.readouterr().out.startswith("[0, ") and not hasattr(learn, "progress")


def test_no_bar_and_no_logging_are_temporary(capsys):
    learn = make_learner()
    with learn.no_bar():
        learn.fit(1)  # no bar and no table; as fastai's, the row is printed as a list
    out = capsys.readouterr().out
    assert re.fullmatch(r"\[0, [^\n]*'\d\d:\d\d'\]\n", out), out
    assert isinstance(learn.progress, ProgressCallback)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1)
    assert capsys.readouterr().out == ""
    with learn.no_logging():
        learn.fit(1)
        assert learn.validate()[0] > 0
    assert capsys.readouterr().out == ""
    learn.fit(1)
    assert "train_loss" in capsys.readouterr().out


def test_cbs_that_are_not_callbacks_are_named():
    learn = make_learner()
    with pytest.raises(TypeError, match=r"cbs\[1\] is 3 \(int\), not a Callback"):
        learn.fit(1, cbs=[Counts(), 3])
    with pytest.raises(TypeError, match=r"cbs\[0\] is 'csv' \(str\), not a Callback"):
        make_learner(cbs=["csv"])
    assert learn.opt is None and not any(isinstance(c, Counts) for c in learn.cbs)


class Boom(Callback):
    def __init__(self, event, order=0):
        self.order, self.event = order, event

    def after_fit(self):
        if self.event == "after_fit":
            raise RuntimeError("boom in after_fit")

    def after_loss(self):
        if self.event == "after_loss":
            raise KeyError("boom in after_loss")


def test_an_error_in_after_fit_does_not_stop_the_others(tmp_path):
    learn = make_learner(path=tmp_path)
    csv = CSVLogger()
    with pytest.raises(RuntimeError, match="boom in after_fit") as e:
        learn.fit(1, cbs=[Boom("after_fit", order=-100), csv])  # runs before the progress bar and the CSV file
    assert csv._file is None and learn.progress.mbar is None  # both still closed their resources
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 2
    assert not any(isinstance(c, Boom) for c in learn.cbs)
    assert not getattr(e.value, "__notes__", [])  # the only error


def test_the_fits_own_error_reaches_the_user_with_after_fit_errors_as_notes():
    learn = make_learner()
    with pytest.raises(KeyError, match="boom in after_loss") as e:
        learn.fit(1, cbs=[Boom("after_loss"), Boom("after_fit")])
    assert e.value.__notes__ == ["after_fit then also raised RuntimeError: boom in after_fit"]


def test_an_error_leaves_no_gradients_and_no_graph_behind():
    class FailAfterBackward(Callback):
        def after_backward(self):
            raise RuntimeError("failed after backward")

    learn = make_learner()
    with pytest.raises(RuntimeError, match="failed after backward"):
        learn.fit(1, cbs=FailAfterBackward())
    assert all(p.grad is None for p in learn.model.parameters())
    assert learn.loss.grad_fn is None and learn.pred.grad_fn is None  # the batch's activations are freed


def test_the_next_fit_does_not_add_stale_gradients():
    torch.manual_seed(0)
    learn = make_learner(opt_func=torch.optim.SGD)
    for p in learn.model.parameters():
        p.grad = torch.full_like(p, 1e6)  # as if a failed step left them
    torch.manual_seed(0)
    ref = make_learner(opt_func=torch.optim.SGD)
    torch.manual_seed(1)
    learn.fit(1, 1e-2)
    torch.manual_seed(1)
    ref.fit(1, 1e-2)
    assert same_state(state_copy(learn.model), state_copy(ref.model))


def test_cancelled_validation_gives_nan_and_trackers_do_not_act(tmp_path):
    class SkipOddValidation(Callback):
        order = -5  # before the Recorder: cancels in before_validate, so the Recorder never starts it

        def before_validate(self):
            if self.epoch % 2:
                raise CancelValidException()

    class CancelMidway(Callback):
        def after_batch(self):
            if not self.training and self.epoch == 2 and self.iter == 0:
                raise CancelValidException()

    es = EarlyStoppingCallback(patience=1, min_delta=10.0)  # only epoch 0 can be "best"
    save = SaveModelCallback()
    learn = make_learner(path=tmp_path)
    learn.fit(4, 1e-2, cbs=[SkipOddValidation(), CancelMidway(), save, es])
    rows = learn.recorder.values
    # epoch 0 validates; 1 and 3 are cancelled in before_validate, 2 after its first batch: NaN, never epoch 0's
    assert len(rows) == 4 and all(math.isnan(r[1]) and math.isnan(r[2]) for r in rows[1:])
    assert rows[0][1] == pytest.approx(save.best) and not math.isnan(rows[0][2])
    assert es.stopped_epoch is None and es.wait == 0 and es.best_epoch == save.best_epoch == 0
    # the same fit with every validation running stops after epoch 1 (patience 1, nothing beats 10.0 of delta)
    again = make_learner(path=tmp_path)
    es2 = EarlyStoppingCallback(patience=1, min_delta=10.0)
    again.fit(4, 1e-2, cbs=es2)
    assert len(again.recorder.values) == 2 and es2.stopped_epoch == 1


def test_validate_and_get_preds_without_a_validation_set_say_what_to_pass():
    learn = make_learner(dls=synth_dls())
    learn.dls.valid = None
    with pytest.raises(ValueError, match=r"no validation set \(dls\.valid is None\): pass dl="):
        learn.validate()
    with pytest.raises(ValueError, match=r"no validation set"):
        learn.get_preds()
    preds, targs = learn.get_preds(ds_idx=0)
    assert preds.shape == (256, 2)


def test_snapshot_covers_every_loop_attribute():
    learn = make_learner()
    learn.fit(1)
    snap = learn.snapshot()
    before = {k: getattr(learn, k) for k in LOOP_STATE}
    learn.fit(2, cbs=Counts())
    assert any(getattr(learn, k) is not before[k] and getattr(learn, k) != before[k] for k in LOOP_STATE)
    snap.restore()
    for k in LOOP_STATE:
        assert getattr(learn, k) is before[k], k


def test_fastai_call_forms_learner_and_callback(capsys):
    """`learn('event')`, `cb('event')`, `Callback(before_fit=f)`, `cbs=L(...)`, `learn.cbs.filter`, and a callback
    overriding `__call__` (fastai's VerboseCallback) seeing every event of a fit in order."""
    from fastcore.foundation import L

    from minifastai.test_utils import VerboseCallback, synth_learner

    seen = []
    learn = synth_learner(n_trn=1, n_val=1, cbs=L([Callback(after_create=lambda self: seen.append("ac"))]))
    learn("after_create")
    learn(["after_create", "after_cancel_fit"])
    assert seen == ["ac", "ac", "ac"] and len(learn.cbs.filter(lambda c: isinstance(c, Callback))) == 4
    with pytest.raises(ValueError, match="'before_fti' is not an event"):
        learn("before_fti")
    with pytest.raises(TypeError, match=r"\['before_fti'\], which are not events"):
        Callback(before_fti=lambda self: None)
    with learn.no_logging():
        learn.fit(1, cbs=VerboseCallback())
    out = capsys.readouterr().out.split()
    assert out[:4] == ["before_fit", "before_epoch", "before_train", "before_batch"] and out[-1] == "after_fit"
    assert out.count("after_batch") == 2 and "after_create" not in out  # one training and one validation batch

    class Boom(Callback):
        def after_epoch(self):
            raise KeyError("x")

    with pytest.raises(KeyError, match="Exception occurred in `Boom` when calling event `after_epoch`"):
        Boom()("after_epoch")


def test_fastai_learner_helpers(capsys):
    """`ordered_cbs`, `show_training_loop`, `loss_not_reduced`, and `fit(n, start_epoch=n)` doing nothing (fastai's)."""
    from minifastai import GradientClip
    from minifastai.test_utils import synth_learner

    learn = synth_learner(cbs=GradientClip())
    assert [type(c).__name__ for c in learn.ordered_cbs("before_step")] == ["GradientClip"]
    assert [type(c).__name__ for c in learn.ordered_cbs("after_batch")] == ["TrainEvalCallback", "Recorder",
                                                                            "ProgressCallback"]
    learn.show_training_loop()
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Start Fit" and "- before_step" in out and ": [GradientClip]" in out
    x, y = torch.randn(5, 1), torch.randn(5, 1)
    with learn.loss_not_reduced():
        assert learn.loss_func(x, y).shape == (5,)
    assert learn.loss_func(x, y).shape == ()
    before = state_copy(learn.model)
    with pytest.warns(UserWarning, match="start_epoch=3 >= n_epoch=3, so every epoch is already done"):
        learn.fit(3, start_epoch=3)
    assert same_state(before, state_copy(learn.model)) and learn.opt is None
