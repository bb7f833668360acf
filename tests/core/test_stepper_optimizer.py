"""fastai's stepper optimizers in a real fit: the same weights as fastai's own after training, a checkpoint that
resumes them, and clear errors for bad arguments."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from helpers import make_learner, same_state, state_copy

from minifastai import Lamb, Lookahead, Optimizer, QHAdam, RAdam, ranger
from minifastai.optimizer import sgd_step


def _train(opt_func, lib: str):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    opt = opt_func(list(model.parameters()), lr=1e-2)
    for i in range(0, 64, 16):
        loss = torch.nn.functional.mse_loss(model(x[i:i + 16]), y[i:i + 16])
        loss.backward()
        opt.step()
        opt.zero_grad()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", ["RAdam", "QHAdam", "Lamb", "Larc", "ranger"])
def test_training_gives_fastais_weights(name):
    fopt = pytest.importorskip("fastai.optimizer")
    import minifastai.optimizer as mopt

    ours, theirs = _train(getattr(mopt, name), "minifastai"), _train(getattr(fopt, name), "fastai")
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b.as_subclass(torch.Tensor), rtol=1e-5, atol=1e-6)


def test_a_stepper_optimizer_trains_a_learner_and_resumes_from_a_checkpoint(tmp_path):
    learn = make_learner(path=tmp_path, opt_func=partial(RAdam, wd=0.01))
    learn.fit_one_cycle(2, 1e-2)
    assert isinstance(learn.opt, Optimizer) and isinstance(learn.opt, torch.optim.Optimizer)
    assert learn.recorder.values[-1][2] > 0.5  # accuracy above chance
    steps = [s["step"] for s in learn.opt.state.values()]
    assert steps and all(s == 16 for s in steps)  # 8 batches x 2 epochs, every parameter
    learn.save("radam", with_opt=True)
    other = make_learner(path=tmp_path, opt_func=partial(RAdam, wd=0.01))
    other.load("radam", with_opt=True)
    assert same_state(state_copy(other.model), state_copy(learn.model))
    assert [s["step"] for s in other.opt.state.values()] == steps


def test_bad_arguments_are_named():
    p = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="Trying to set 2 values for lr but there are 3 parameter groups"):
        Optimizer([[p], [p.clone()], [p.clone()]], sgd_step, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="Optimizer got no parameters"):
        Optimizer([], sgd_step, lr=0.1)
    with pytest.raises(ValueError, match="Lookahead needs k >= 1"):
        Lookahead(RAdam([p], lr=0.1), k=0)
    with pytest.raises(ValueError, match="at least two parameter groups"):
        QHAdam([p], lr=0.1).freeze()
    assert isinstance(ranger([p], lr=0.1), Lookahead) and isinstance(Lamb([p], lr=0.1), Optimizer)
