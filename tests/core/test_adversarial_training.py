"""Hostile numbers and faults in the training loop (issue 10, items 7, 8, 9 and the loop's cases of 14): each
probe gets a clear error or a correct result, and nothing is silently corrupted."""
import math
import warnings

import pytest
import torch
from helpers import make_learner, same_state, state_copy, synth_dls
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import Callback, DataLoaders, GradientClip, Learner, TerminateOnNaNCallback


class PoisonGrad(Callback):
    """Makes one gradient entry non-finite at training batch `at` (the loss stays finite)."""

    order = -20

    def __init__(self, at=3, value=math.inf):
        self.at, self.value = at, value

    def after_backward(self):
        if self.train_iter == self.at:
            self.learn.model[5].weight.grad[0, 0] = self.value


# ---- 7: nothing reaches the optimizer unchecked --------------------------------------------------
@pytest.mark.parametrize("attr,value,pattern", [("lr", float("nan"), "learning rate is nan"),
                                                ("wd", -1.0, r"learn\.wd must be >= 0"),
                                                ("moms", (0.95, 1.5, 0.95), r"learn\.moms\[1\] must be in \[0, 1\)")])
def test_hyper_parameters_set_after_creation_are_checked_before_the_fit(attr, value, pattern):
    learn = make_learner()
    before = state_copy(learn.model)
    setattr(learn, attr, value)
    with pytest.raises((ValueError, TypeError), match=pattern):
        learn.fit_one_cycle(1)
    assert same_state(before, state_copy(learn.model)) and learn.opt is None


# ---- 8: non-finite gradients skip the step (GradientClip) or stop the fit (TerminateOnNaN) -------
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_gradient_clip_skips_a_step_with_non_finite_gradients_and_counts_it(value):
    learn = make_learner()
    clip = GradientClip(1.0)
    learn.fit(1, 1e-2, cbs=[PoisonGrad(3, value), clip])
    assert clip.n_skipped == 1
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    assert math.isfinite(learn.recorder.values[-1][1])


def test_terminate_on_nan_stops_on_a_non_finite_gradient_before_the_step():
    learn = make_learner()
    seen = {}

    class Before(Callback):
        order = -30

        def after_backward(self):
            if self.train_iter == 3:
                seen["w"] = state_copy(self.model)

    with pytest.warns(RuntimeWarning, match=r"a gradient is not finite \(the loss is\) at epoch 0, batch 3; the fit "
                                            r"stops \(the weights are from before this batch\)"):
        learn.fit(2, 1e-2, cbs=[Before(), PoisonGrad(3), stop := TerminateOnNaNCallback()])
    assert stop.stopped_at == (0, 3)
    assert same_state(seen["w"], state_copy(learn.model))  # really from before the batch
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_without_either_callback_the_default_loop_is_fastais_and_documented():
    """The plain loop makes no host sync per batch, so it cannot see a poisoned gradient (as fastai): the docs say
    to add GradientClip or TerminateOnNaNCallback. This pins that behaviour so the docs stay true."""
    learn = make_learner()
    learn.fit(1, 1e-2, cbs=PoisonGrad(3))
    assert not torch.isfinite(learn.model[5].weight).all()


# ---- 9: an exception leaves no gradients and no graph --------------------------------------------
@pytest.mark.parametrize("event", ["after_backward", "before_step", "after_step"])
def test_an_exception_late_in_a_batch_leaves_nothing_for_the_next_fit(event):
    class Fail(Callback):
        pass

    def boom(self):
        raise RuntimeError(f"fault in {event}")

    setattr(Fail, event, boom)
    learn = make_learner(opt_func=torch.optim.SGD)
    with pytest.raises(RuntimeError, match=f"fault in {event}"):
        learn.fit(1, 1e-2, cbs=Fail())
    assert all(p.grad is None for p in learn.model.parameters())
    assert learn.loss.grad_fn is None and learn.pred.grad_fn is None


# ---- 14: errors that name the culprit ------------------------------------------------------------
@pytest.mark.parametrize("loss_func,exc,pattern", [
    (lambda p, y: 0.5, TypeError, r"returned a float \(0\.5\), not a tensor"),
    (nn.CrossEntropyLoss(reduction="none"), ValueError, r"returned a torch\.float32 tensor of shape \(32,\); it "
                                                        r"must be a float scalar"),
    (lambda p, y: (p.argmax(1) == y).sum(), ValueError, r"returned a torch\.int64 tensor of shape \(\)"),
])
def test_a_loss_that_is_not_a_float_scalar_names_loss_func(loss_func, exc, pattern):
    learn = make_learner()
    learn.loss_func = loss_func
    before = {n: p.clone() for n, p in learn.model.named_parameters()}
    with pytest.raises(exc, match=pattern):
        learn.fit(1)
    assert all(torch.equal(p, before[n]) for n, p in learn.model.named_parameters())


def test_training_batches_without_targets_are_an_error_not_a_silent_success():
    x = torch.randn(64, 8)
    dls = DataLoaders(DataLoader(TensorDataset(x), 16), None, device="cpu", n_inp=1)
    learn = Learner(dls, nn.Linear(8, 2), nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"a training batch from dls\.train has no targets .* shapes \(\(16, 8\)\)"):
        learn.fit(1)


def test_unsized_loaders_train_at_a_constant_lr_and_schedules_say_what_they_need():
    class Stream:
        """An iterable of batches without __len__ (a generator-backed stream)."""

        def __init__(self, dl):
            self.dl = dl

        def __iter__(self):
            yield from self.dl

    dls = synth_dls()
    learn = make_learner(dls=DataLoaders(Stream(dls.train), Stream(dls.valid), device="cpu"))
    learn.fit(2, 1e-2)
    assert len(learn.recorder.values) == 2 and learn.recorder.iters == [8, 16]
    assert math.isfinite(learn.recorder.values[-1][1])
    preds, targs = learn.get_preds()
    assert preds.shape == (64, 2)
    before = state_copy(learn.model)
    with pytest.raises(ValueError, match=r"dls\.train has no len\(\), but a schedule needs the number of batches"):
        learn.fit_one_cycle(1)
    assert same_state(before, state_copy(learn.model))


def test_a_splitter_returning_modules_says_to_return_parameters():
    with pytest.raises(ValueError, match=r"is a module, not parameters; a splitter returns lists of parameters"):
        make_learner().__class__(synth_dls(), nn.Sequential(nn.Linear(8, 2)), nn.CrossEntropyLoss(),
                                 splitter=lambda m: [m[0]])
    with pytest.raises(ValueError, match=r"the splitter returned a module"):
        Learner(synth_dls(), nn.Sequential(nn.Linear(8, 2)), nn.CrossEntropyLoss(), splitter=lambda m: m)


def test_no_warning_noise_from_a_normal_fit():
    learn = make_learner()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learn.fit(1, 1e-2, cbs=[GradientClip(), TerminateOnNaNCallback()])
