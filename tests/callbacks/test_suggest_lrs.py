"""The per-group LR suggestion that bench/discriminative_lrs.py measures (two sweeps; it lives in the benchmark, not
in the package, since it did not beat a flat LR): the learner comes back untouched between recipes, and the
proposal's numbers come from the sweeps as documented (checked on a synthetic loss whose shape is known)."""
import math

import numpy as np
import pytest
import torch
from helpers import load_script
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import Callback, DataLoaders, Learner, layer_decay, valley
from minifastai.groups import group_hypers

B = load_script("bench/discriminative_lrs.py")
suggest_group_lrs = B.suggest_group_lrs

pytestmark = pytest.mark.filterwarnings("ignore:lr_find. ")


class LRLoss:
    """A loss that is a known function of the learning rates the optimizer holds right now: with the body frozen,
    a parabola in log10(head LR) with its bottom at 1e-3; with it training, one in log10(first group's LR / head's)
    with its bottom at 0.1. (Times 0 of the model's output, so that backward works.)"""

    def __init__(self):
        self.learn = None

    def __call__(self, pred, y):
        lrs = group_hypers(self.learn.opt, "lr", self.learn.n_groups)
        body_trains = self.learn.model[0].weight.requires_grad
        x = math.log10(lrs[0] / lrs[-1]) + 1 if body_trains else math.log10(lrs[-1]) + 3
        return pred.sum() * 0 + 1 + x * x


class Spy(Callback):
    order = 52  # after the Recorder, before LRFinder ends the sweep

    def __init__(self):
        self.lrs, self.body_trains = [], []

    def after_batch(self):
        if self.learn.training:
            self.lrs.append(group_hypers(self.learn.opt, "lr", self.learn.n_groups))
            self.body_trains.append(self.learn.model[0].weight.requires_grad)


def make_learner(n_groups=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    dls = DataLoaders(DataLoader(TensorDataset(x, x[:, 0].long().abs() % 2), 8, shuffle=True),
                      DataLoader(TensorDataset(x, x[:, 0].long().abs() % 2), 8), device="cpu")
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 4), nn.Linear(4, 2))
    groups = [[0, 1], [2], [3]] if n_groups == 3 else [[0, 1, 2], [3]]
    loss = LRLoss()
    learn = Learner(dls, model, loss, splitter=lambda m: [[p for i in ix for p in m[i].parameters()] for ix in groups])
    loss.learn = learn
    learn.remove_cb(learn.progress)
    return learn


def test_proposal_numbers_from_the_two_sweeps():
    learn = make_learner(3)
    spy = Spy()
    learn.add_cb(spy)
    res = suggest_group_lrs(learn)
    lrs, trains = np.array(spy.lrs), np.array(spy.body_trains)
    head_phase, ratio_phase = lrs[~trains], lrs[trains]
    # phase 1: body frozen, every group swept from 1e-7 to 10 (the frozen ones do not train)
    assert len(head_phase) == 100 and np.allclose(head_phase[:, -1], 1e-7 * 1e8 ** (np.arange(100) / 100))
    assert res.head_lr == valley(*res.head_sweep.trimmed()) and 1e-5 < res.head_lr < 1e-3  # left of the bottom
    # phase 2: head constant at that LR, first group from 1e-4 of it upwards, the middle one geometric between
    assert np.allclose(ratio_phase[:, -1], res.head_lr)
    ratio = ratio_phase[:, 0] / ratio_phase[:, -1]
    assert np.isclose(ratio[0], 1e-4) and np.allclose(ratio_phase[:, 1] / ratio_phase[:, -1], np.sqrt(ratio))
    assert res.ratio == valley(*res.ratio_sweep.trimmed()) and 1e-3 < res.ratio < 0.1
    assert np.allclose(res.ratio_sweep.trimmed()[0], ratio[res.ratio_sweep.trim[0]:res.ratio_sweep.trim[1]])
    # the proposal, as a slice and as the equivalent layer decay
    assert res.slice == slice(res.head_lr * res.ratio, res.head_lr)
    assert np.allclose(res.lrs, [res.head_lr * res.ratio, res.head_lr * res.ratio ** 0.5, res.head_lr])
    assert res.layer_decay == layer_decay(res.head_lr, res.ratio ** 0.5)
    assert np.allclose(learn.lr_range(res.layer_decay), res.lrs)


def test_the_learner_comes_back_as_it_was():
    learn = make_learner(2)
    learn.fit(1, 1e-2)  # some optimizer state, a recorder with one epoch
    learn.freeze()
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    flags = [p.requires_grad for p in learn.model.parameters()]
    opt_state = {id(p): {k: v.clone() for k, v in s.items() if torch.is_tensor(v)} for p, s in learn.opt.state.items()}
    values, rng = list(learn.recorder.values), torch.get_rng_state()
    suggest_group_lrs(learn, num_it=20)
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in before.items())
    assert [p.requires_grad for p in learn.model.parameters()] == flags  # still frozen as the user left it
    assert {id(p): {k: v for k, v in s.items() if torch.is_tensor(v)} for p, s in learn.opt.state.items()}.keys() \
        == opt_state.keys()
    for p, s in learn.opt.state.items():
        assert all(torch.equal(v, opt_state[id(p)][k]) for k, v in s.items() if torch.is_tensor(v))
    assert learn.recorder.values == values and torch.equal(torch.get_rng_state(), rng)


def test_bad_arguments_change_nothing():
    one = Learner(make_learner().dls, nn.Linear(4, 2), nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="needs several layer groups"):
        suggest_group_lrs(one)
    learn = make_learner()
    with pytest.raises(ValueError, match=r"min_ratio=2 must be in \(0, 1\)"):
        suggest_group_lrs(learn, min_ratio=2)
    with pytest.raises(ValueError, match="at least 6 batches"):
        suggest_group_lrs(learn, num_it=3)
    assert learn.opt is None and all(p.requires_grad for p in learn.model.parameters())
