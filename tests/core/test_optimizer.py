"""fastai-named optimizers inside minifastai: freezing, checkpoints, hyper-parameters seen by schedules."""
from functools import partial

import pytest
import torch
from helpers import make_learner, state_copy
from torch import nn

from minifastai import SGD, Adam, RMSProp
from minifastai.groups import get_hyper


@pytest.mark.parametrize("opt_func", [partial(SGD, mom=0.9, wd=0.1), partial(RMSProp, wd=0.1),
                                      partial(Adam, wd=0.1)])
def test_frozen_groups_unchanged_by_decoupled_weight_decay(opt_func):
    learn = make_learner(opt_func=opt_func, wd_bn_bias=True)
    learn.freeze()
    before = state_copy(learn.model)
    learn.fit(1, 1e-2)
    after = state_copy(learn.model)
    assert torch.equal(before["0.weight"], after["0.weight"]) and torch.equal(before["3.weight"], after["3.weight"])
    assert not torch.equal(before["5.weight"], after["5.weight"])  # the head trained
    assert not torch.equal(before["1.weight"], after["1.weight"])  # BatchNorm of a frozen group trains (train_bn)


def test_step_leaves_scheduled_hyper_parameters_in_place():
    p = nn.Parameter(torch.ones(3))
    opt = SGD([p], lr=0.1, wd=0.1)  # mom=0: no momentum step, as fastai
    opt.param_groups[0]["momentum"] = 0.9  # what a one-cycle schedule writes
    p.grad = torch.ones(3)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((3,), (1 - 0.1 * 0.1) - 0.1))  # decay, then plain SGD
    assert get_hyper(opt.param_groups[0], "mom") == 0.9 and get_hyper(opt.param_groups[0], "wd") == 0.1
    p.grad = torch.ones(3)
    opt.step()  # still no momentum buffer
    assert "momentum_buffer" not in opt.state[p] or opt.state[p]["momentum_buffer"] is None


def test_step_with_closure_returns_the_loss():
    p = nn.Parameter(torch.tensor([2.0]))
    opt = SGD([p], lr=0.5, mom=0.9, wd=0.1)

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(4.0)
    assert p.item() == pytest.approx(2.0 * (1 - 0.05) - 0.5 * 4.0)


def test_checkpoint_round_trip_keeps_optimizer_state(tmp_path):
    learn = make_learner(opt_func=partial(SGD, mom=0.9, wd=0.01), path=tmp_path)
    learn.fit_one_cycle(1, 1e-2)
    learn.save("sgd")
    other = make_learner(opt_func=partial(SGD, mom=0.9, wd=0.01), path=tmp_path).load("sgd")
    assert type(other.opt) is type(learn.opt)
    for a, b in zip(learn.opt.param_groups, other.opt.param_groups):
        assert (a["lr"], a["momentum"], a["weight_decay"]) == (b["lr"], b["momentum"], b["weight_decay"])
    for p, q in zip(learn.model.parameters(), other.model.parameters()):
        torch.testing.assert_close(learn.opt.state[p]["momentum_buffer"], other.opt.state[q]["momentum_buffer"])
