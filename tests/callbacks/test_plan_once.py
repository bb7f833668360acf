"""The per-group plan is computed once per fit: `fit_args` turns the LR into one peak per group (one `lr_range`
call), the schedule publishes those peaks into `learn.group_plan`, and the recorder, loggers, `summary` and plots
read them from there."""
from __future__ import annotations

import inspect

import pytest
from helpers import make_learner

import minifastai.groups as G
from minifastai.callback import schedule

NAMES = ["body", "middle", "head"]


@pytest.fixture
def counted(monkeypatch):
    """Counts of `lr_range` and `fit_args` calls (after the learner is made)."""
    learn = make_learner(group_names=NAMES)
    calls = {"lr_range": 0, "fit_args": 0}
    real_range, real_args = G.lr_range, learn.fit_args

    def lr_range(*a, **k):
        calls["lr_range"] += 1
        return real_range(*a, **k)

    def fit_args(*a, **k):
        calls["fit_args"] += 1
        return real_args(*a, **k)

    monkeypatch.setattr(G, "lr_range", lr_range)
    monkeypatch.setattr(learn, "fit_args", fit_args)
    return learn, calls


@pytest.mark.parametrize("recipe, n_fits", [
    (lambda learn: learn.fit_one_cycle(1, slice(1e-4, 1e-2)), 1),
    (lambda learn: learn.fit_flat_cos(1, slice(1e-4, 1e-2)), 1),
    (lambda learn: learn.fit(1, slice(1e-4, 1e-2)), 1),
    (lambda learn: learn.fine_tune(1, 1e-2), 2),
])
def test_each_fit_computes_its_peaks_once(counted, recipe, n_fits):
    learn, calls = counted
    recipe(learn)
    assert calls == {"lr_range": n_fits, "fit_args": n_fits}


def test_the_plan_holds_names_and_peaks_and_the_recorder_reads_it():
    learn = make_learner(group_names=NAMES)
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    plan = learn.group_plan
    assert plan.group_names == NAMES
    assert plan.peaks["lr"] == pytest.approx([1e-4, 1e-3, 1e-2])
    assert learn.recorder.peak_lrs() == pytest.approx(plan.peaks["lr"])
    assert learn.recorder.group_names == NAMES
    assert learn.recorder.lrs.max(0) == pytest.approx(plan.peaks["lr"], rel=1e-3)  # what each group really got
    assert "peak lr of the last fit: body 0.0001, middle 0.001, head 0.01" in learn.summary()


def test_one_cycle_recipe_and_its_argument_check_share_the_defaults():
    """`fit_one_cycle` and the function that checks its arguments for `fine_tune` list the same defaults."""
    a = inspect.signature(schedule.fit_one_cycle).parameters
    b = inspect.signature(schedule._one_cycle_args).parameters
    assert [(n, p.default) for n, p in a.items()] == [(n, p.default) for n, p in b.items()]


def test_a_bad_second_phase_changes_nothing():
    """fine_tune checks both phases (one plan each) before the first one trains."""
    learn = make_learner(group_names=NAMES)
    before = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(ValueError, match="div"):
        learn.fine_tune(1, 1e-2, div=0)
    assert all((p == q).all() for p, q in zip(learn.model.parameters(), before)) and learn.opt is None
    with pytest.raises(TypeError, match="unexpected keyword argument 'lr_maxx'"):
        learn.fine_tune(1, 1e-2, lr_maxx=1e-3)
    assert learn.opt is None and learn.recorder.values == []
