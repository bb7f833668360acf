"""Every bad argument is refused before anything changes, with a message that names it and says what to pass."""
import math

import pytest
import torch
from helpers import make_learner

from minifastai import OneCycle, ReduceLROnPlateau
from minifastai.state import LOOP_STATE


def fingerprint(learn):
    """What a call could change: weights, trainable flags, optimizer, callbacks, loop state, recorded values."""
    return {"weights": {k: v.clone() for k, v in learn.model.state_dict().items()},
            "requires_grad": [p.requires_grad for p in learn.model.parameters()],
            "opt": None if learn.opt is None else repr(learn.opt.state_dict()),
            "cbs": list(learn.cbs), "loop": {k: getattr(learn, k) for k in LOOP_STATE},
            "values": [list(r) for r in learn.recorder.values], "rng": torch.get_rng_state()}


def assert_same(a, b):
    assert a["weights"].keys() == b["weights"].keys()
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    assert all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k]
               for k in a if k not in ("weights", "loop", "values"))
    assert all(a["loop"][k] is b["loop"][k] or a["loop"][k] == b["loop"][k] for k in a["loop"])
    assert [[x for x in r if not math.isnan(x)] for r in a["values"]] == \
        [[x for x in r if not math.isnan(x)] for r in b["values"]]


BAD = [
    # (call, exception, message pattern)
    (lambda lrn: lrn.fine_tune(1, slice(1e-5, 1e-3)), TypeError, r"fine_tune's base_lr is one float.*got slice"),
    (lambda lrn: lrn.fine_tune(0), ValueError, r"epochs must be >= 1, got 0"),
    (lambda lrn: lrn.fine_tune(1, lr_mult=0), ValueError, r"lr_mult must be >= 1, got 0"),
    (lambda lrn: lrn.fine_tune(1, div=0), ValueError, r"div must be > 0, got 0"),
    (lambda lrn: lrn.fine_tune(1, pct_start=2), ValueError, r"pct_start must be in \[0, 1\], got 2"),
    (lambda lrn: lrn.fine_tune(1, freeze_epochs=-1), ValueError, r"freeze_epochs must be >= 0"),
    (lambda lrn: lrn.fine_tune(1, moms=(0.9, 0.8)), ValueError, r"moms=\(0\.9, 0\.8\) has 2 values; give 3"),
    (lambda lrn: lrn.fine_tune(1, wd=float("nan")), ValueError, r"wd is nan; it must be a finite number"),
    (lambda lrn: lrn.fine_tune(1, colour="red"), TypeError, r"unexpected keyword argument 'colour'"),
    (lambda lrn: lrn.fit_one_cycle(1, div=float("nan")), ValueError, r"div is nan"),
    (lambda lrn: lrn.fit_one_cycle(1, div_final=0), ValueError, r"div_final must be > 0"),
    (lambda lrn: lrn.fit_one_cycle(1, moms=(0.95, 1.0, 0.95)), ValueError, r"moms\[1\] must be in \[0, 1\), got 1"),
    (lambda lrn: lrn.fit_one_cycle(1, moms=(0.95, float("nan"), 0.95)), ValueError, r"moms\[1\] is nan"),
    (lambda lrn: lrn.fit_one_cycle(1, moms=0.9), TypeError, r"moms must be a tuple of 3 momentums"),
    (lambda lrn: lrn.fit_one_cycle(1, wd=-0.1), ValueError, r"wd must be >= 0, got -0\.1"),
    (lambda lrn: lrn.fit_one_cycle(1, "1e-3"), TypeError, r"the learning rate is the string '1e-3'; pass a number, "
                                                      r"e\.g\. 0\.001"),
    (lambda lrn: lrn.fit_one_cycle(1, {1e-3, 1e-2, 1e-1}), TypeError, r"a set of learning rates has no order"),
    (lambda lrn: lrn.fit_one_cycle(1.5), TypeError, r"n_epoch must be a whole number \(an int >= 1\), got 1\.5"),
    (lambda lrn: lrn.fit_one_cycle(0), ValueError, r"n_epoch must be >= 1, got 0"),
    (lambda lrn: lrn.fit_one_cycle(1, 1e-3, lr_max=1e-2), TypeError, r"give either max_lr or lr_max"),
    (lambda lrn: lrn.fit_one_cycle(1, slice(1e-3, 1e-5)), ValueError, r"did you mean slice\(1e-05, 0\.001\)"),
    (lambda lrn: lrn.fit_one_cycle(1, [1e-3, 1e-3]), ValueError, r"got 2 learning rates for 3 layer group"),
    (lambda lrn: lrn.fit(True), TypeError, r"n_epoch must be a whole number"),
    (lambda lrn: lrn.fit(1, float("inf")), ValueError, r"learning rate is inf"),
    (lambda lrn: lrn.fit_flat_cos(1, pct_start=-0.1), ValueError, r"pct_start must be in \[0, 1\]"),
    (lambda lrn: lrn.fit_flat_cos(1, div_final=-1), ValueError, r"div_final must be > 0"),
    (lambda lrn: lrn.freeze_to(3), ValueError, r"freeze_to\(3\) would freeze all 3 layer groups"),
    (lambda lrn: lrn.freeze_to(1.0), TypeError, r"freeze_to's n must be a whole number"),
    (lambda lrn: lrn.freeze_to(-4), ValueError, r"freeze_to's n must be >= -3"),
    (lambda lrn: lrn.lr_find(num_it=3), ValueError, r"num_it=3: lr_find needs at least 6 batches"),
    (lambda lrn: lrn.lr_find(start_lr=1, end_lr=1e-3), ValueError, r"start_lr must be below end_lr"),
]


@pytest.mark.parametrize("call,exc,pattern", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_argument_is_refused_and_nothing_changes(call, exc, pattern):
    learn = make_learner()
    learn.fit(1, 1e-2)  # an optimizer with state, recorded values, a position
    before = fingerprint(learn)
    with pytest.raises(exc, match=pattern):
        call(learn)
    assert_same(before, fingerprint(learn))


def test_fine_tune_checks_both_phases_before_freezing():
    learn = make_learner()
    before = fingerprint(learn)
    with pytest.raises(ValueError, match=r"pct_start must be in \[0, 1\], got 2"):
        learn.fine_tune(1, pct_start=2)  # pct_start is only used by the unfrozen phase
    assert_same(before, fingerprint(learn))
    assert all(p.requires_grad for p in learn.model.parameters())  # not frozen


@pytest.mark.parametrize("kwargs,exc,pattern", [
    (dict(moms=(0.9, 0.8, 1.2)), ValueError, r"moms\[2\] must be in \[0, 1\)"),
    (dict(wd=float("nan")), ValueError, r"wd is nan"),
    (dict(lr="fast"), TypeError, r"the learning rate is the string 'fast'"),
])
def test_learner_arguments_are_checked_at_creation(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make_learner(**kwargs)


def test_callback_arguments_are_checked_at_creation():
    with pytest.raises(ValueError, match=r"pct_start must be in \[0, 1\]"):
        OneCycle(1e-3, pct_start=1.5)
    with pytest.raises(ValueError, match=r"factor divides the LR and must be > 1"):
        ReduceLROnPlateau(factor=0.5)


def test_a_schedule_value_that_is_not_finite_never_reaches_the_optimizer():
    from minifastai import ParamScheduler

    learn = make_learner()
    sched = ParamScheduler({"lr": lambda pos: 1e-3 if pos < 0.5 else float("nan")})
    with pytest.raises(ValueError, match=r"the 'lr' schedule gives \[nan, nan, nan\] at position 0\.5000"):
        learn.fit(2, cbs=sched)
    assert all(math.isfinite(pg["lr"]) for pg in learn.opt.param_groups)
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
