"""Issue 10, class 4: a failed `learn.load` changes nothing.

Each probe loads a checkpoint that does not fit in one part only (the head, the optimizer's groups, its state's
shapes, its kind, the RNG, the callback states) into a trained learner and checks the error names the file and
that weights, optimizer state, RNG states and callbacks are exactly as before.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from helpers import make_learner, synth_dls, three_group_model
from torch import nn

from minifastai import Callback, Learner
from minifastai.persist import DamagedFileError, load_checkpoint, with_checksum


class Counter(Callback):
    def __init__(self) -> None:
        self.n = 0

    def after_epoch(self) -> None:
        self.n += 1

    def state_dict(self) -> dict:
        return {"n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.n = state["n"]


def snapshot(learn) -> dict:
    """Everything a load may change, deep-copied."""
    opt = learn.opt.state_dict() if learn.opt is not None else None
    return {"model": {k: v.clone() for k, v in learn.model.state_dict().items()},
            "opt_state": None if opt is None else {i: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
                                                   for i, s in opt["state"].items()},
            "opt_groups": None if opt is None else [dict(g) for g in opt["param_groups"]],
            "opt_id": id(learn.opt), "torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].copy(),
            "random": random.getstate(), "cbs": [type(c).__name__ for c in learn.cbs]}


def assert_unchanged(before: dict, learn) -> None:
    after = snapshot(learn)
    assert before["model"].keys() == after["model"].keys()
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"]), "weights changed"
    assert before["opt_id"] == after["opt_id"], "optimizer replaced"
    if before["opt_state"] is not None:
        assert before["opt_groups"] == after["opt_groups"]
        assert before["opt_state"].keys() == after["opt_state"].keys()
        for i, s in before["opt_state"].items():
            assert all(torch.equal(v, after["opt_state"][i][k]) if torch.is_tensor(v) else v == after["opt_state"][i][k]
                       for k, v in s.items()), "optimizer state changed"
    assert torch.equal(before["torch"], after["torch"]) and np.array_equal(before["numpy"], after["numpy"])
    assert before["random"] == after["random"] and before["cbs"] == after["cbs"]


def trained():
    learn = make_learner(cbs=Counter())
    learn.fit(1, 1e-2)
    return learn


def craft(learn, name: str, edit) -> str:
    """Save `learn` under `name`, then edit the file (and recompute its checksum, as a crafted file would)."""
    path = learn.save(name)
    st = torch.load(path, weights_only=True)
    st.pop("checksum")
    edit(st)
    torch.save(with_checksum(st), path)
    return name


def test_a_head_that_does_not_fit_copies_no_body_weight():
    other = make_learner()
    other.model[5] = nn.Linear(16, 3)  # another head
    other.fit(1, 1e-2)
    other.save("other_head")
    learn = trained()
    before = snapshot(learn)
    with pytest.raises(ValueError, match=r"checkpoint models/other_head\.pth does not fit this model: 2 size "
                                         r"mismatch\(es\), e\.g\. 5\.weight: file \(3, 16\) vs model \(2, 16\)"):
        learn.load("other_head")
    assert_unchanged(before, learn)


def test_optimizer_groups_of_another_splitter_leave_the_weights_alone():
    one_group = Learner(synth_dls(), three_group_model(), nn.CrossEntropyLoss())  # one layer group
    one_group.fit(1, 1e-2)
    one_group.save("one_group")
    learn = trained()
    before = snapshot(learn)
    with pytest.raises(ValueError, match=r"optimizer state in models/one_group\.pth does not fit this learner's "
                                         r"layer groups: the file has 2 param groups, this optimizer 6"):
        learn.load("one_group")
    assert_unchanged(before, learn)


def test_optimizer_state_of_other_shapes_in_the_same_groups():
    learn = trained()
    name = craft(learn, "swapped", lambda st: st["opt"]["state"].update(
        {0: st["opt"]["state"][1], 1: st["opt"]["state"][0]}))  # group 0: (16, 8) weight and (16,) bias swapped
    learn.fit(1, 1e-2)
    before = snapshot(learn)
    with pytest.raises(ValueError, match=r"models/swapped\.pth does not fit this learner's layer groups: its "
                                         r"'exp_avg' for parameter 0 has shape \(16,\), the parameter \(16, 8\)"):
        learn.load(name)
    assert_unchanged(before, learn)


def test_optimizer_state_of_another_optimizer_kind():
    sgd = make_learner(opt_func=lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9))
    sgd.fit(1, 1e-2)
    sgd.save("sgd")
    learn = trained()
    before = snapshot(learn)
    with pytest.raises(ValueError, match=r"models/sgd\.pth does not fit .*written by another kind of optimizer"):
        learn.load("sgd")
    assert_unchanged(before, learn)


def test_a_learner_without_an_optimizer_keeps_none():
    one_group = Learner(synth_dls(), three_group_model(), nn.CrossEntropyLoss())  # one layer group
    one_group.fit(1, 1e-2)
    one_group.save("one_group")
    fresh = make_learner()
    assert fresh.opt is None
    before = snapshot(fresh)
    with pytest.raises(ValueError, match="param groups"):
        fresh.load("one_group")
    assert fresh.opt is None
    assert_unchanged(before, fresh)


@pytest.mark.parametrize("part, bad", [
    ("torch", torch.randint(0, 255, (5056,), dtype=torch.uint8)),  # "Invalid mt19937 state" before
    ("torch", torch.zeros(10, dtype=torch.uint8)),
    ("numpy", ["MT19937", torch.zeros(10, dtype=torch.int64), 0, 0, 0.0]),
    ("random", (3, (0,) * 10, None)),
    ("loaders", [torch.zeros(3, dtype=torch.uint8)]),
])
def test_a_bad_rng_state_is_found_before_the_weights_are_loaded(part, bad):
    learn = trained()
    if part == "loaders":
        gen = torch.Generator().manual_seed(3)
        learn.dls.train = torch.utils.data.DataLoader(learn.dls.train.dataset, 32, shuffle=True, generator=gen)
    name = craft(learn, "bad_rng", lambda st: st["rng"].update({part: bad}))
    learn.fit(1, 1e-2)
    before = snapshot(learn)
    gen_state = gen.get_state() if part == "loaders" else None
    with pytest.raises(DamagedFileError, match=r"models/bad_rng\.pth: entry 'rng' is damaged \(invalid RNG state"):
        learn.load(name)
    assert_unchanged(before, learn)
    if part == "loaders":
        assert torch.equal(gen.get_state(), gen_state)
    load_checkpoint(learn, learn.checkpoint_path(name), with_rng=False)  # the rest of the file is fine
    assert learn.counter.n == 2 and torch.equal(torch.get_rng_state(), before["torch"])


def test_malformed_callback_states_are_found_before_anything_changes():
    learn = trained()
    name = craft(learn, "bad_cbs", lambda st: st.update(callbacks=["counter", {"n": 1}]))
    before = snapshot(learn)
    with pytest.raises(DamagedFileError, match=r"models/bad_cbs\.pth is malformed: entry 'callbacks' is a list"):
        learn.load(name)
    assert_unchanged(before, learn)


def test_a_callback_state_that_does_not_fit_names_the_callback_and_the_file():
    learn = trained()
    name = craft(learn, "bad_counter", lambda st: st["callbacks"].update(counter={"count": 1}))
    learn.load(name)
    with pytest.raises(ValueError, match=r"the state of callback 'counter' in models/bad_counter\.pth does not fit it "
                                         r"\(KeyError: 'n'\); minifastai\.persist\.load_checkpoint\(learn, path, "
                                         r"with_cbs=False\)"):
        learn.fit(1, 1e-2)


def test_a_good_checkpoint_still_loads_everything():
    learn = trained()
    learn.save("good")
    weights = {k: v.clone() for k, v in learn.model.state_dict().items()}
    draws = torch.rand(3)
    other = make_learner(cbs=Counter())
    other.load("good")
    assert all(torch.equal(v, weights[k]) for k, v in other.model.state_dict().items())
    assert torch.equal(torch.rand(3), draws)
