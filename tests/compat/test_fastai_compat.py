"""fastai drop-in (SPEC §10): snippets written the way fastai's docs and course notebooks write them, with
numbers compared against fastai 2.8.12 itself (installed for the tests only; the package never imports it)."""
from __future__ import annotations

import math
import random
import re
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fastai = pytest.importorskip("fastai")
    import fastai.callback.schedule as fsched
    import fastai.losses as floss
    import fastai.metrics as fmet
    import fastai.optimizer as fopt
    import fastai.torch_core as fcore
    from fastai.data.core import DataLoaders as FastaiDataLoaders
    from fastai.learner import Learner as FastaiLearner
    from fastai.learner import Metric as FastaiMetric

from helpers import (  # noqa: E402
    make_learner,
    same_state,
    state_copy,
    synth_dls,
    three_group_model,
    three_group_splitter,
)

from minifastai import (  # noqa: E402
    SGD,
    Adam,
    BCEWithLogitsLossFlat,
    Callback,
    CrossEntropyLossFlat,
    DataLoaders,
    EarlyStoppingCallback,
    LabelSmoothingCrossEntropyFlat,
    Learner,
    Metric,
    MSELossFlat,
    OptimWrapper,
    ParamScheduler,
    ProgressCallback,
    Recorder,
    RMSProp,
    SchedCos,
    SchedExp,
    SchedLin,
    SchedNo,
    SchedPoly,
    accuracy,
    accuracy_multi,
    combine_scheds,
    combined_cos,
    set_seed,
)
from minifastai import losses as mloss  # noqa: E402
from minifastai import metrics as mmet  # noqa: E402

POS = np.linspace(0, 1, 21)[:-1].tolist() + [0.999]


# ---- schedules --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ours,theirs,args", [
    (SchedLin, fsched.SchedLin, (0.1, 1e-3)),
    (SchedCos, fsched.SchedCos, (1e-3, 1e-5)),
    (SchedNo, fsched.SchedNo, (0.3, 0.9)),
    (SchedExp, fsched.SchedExp, (1e-7, 10.0)),
    (SchedPoly, fsched.SchedPoly, (1e-2, 0.0, 2.0)),
    (SchedPoly, fsched.SchedPoly, (0.0, 1.0, 0.5)),
])
def test_sched_functions_match_fastai(ours, theirs, args):
    f, g = ours(*args), theirs(*args)
    for p in POS:
        assert f(p) == pytest.approx(g(p), rel=1e-12, abs=1e-15)


def test_sched_start_end_per_layer_group_match_fastai():
    starts, ends = np.array([1e-5, 1e-4, 1e-3]), np.array([1e-7, 1e-6, 1e-5])
    f, g = SchedCos(starts, ends), fsched.SchedCos(starts, ends)
    for p in POS:
        np.testing.assert_allclose(f(p), g(p), rtol=1e-12)
    assert SchedLin([1.0, 2.0], [3.0, 4.0])(0.5).tolist() == [2.0, 3.0]  # lists too (fastai needs arrays)


def test_combine_scheds_matches_fastai():
    # fastai's docs: p = torch.linspace(0.,1,100); f = combine_scheds([0.3,0.7], [SchedCos(0.3,0.6), SchedCos(0.6,0.2)])
    for pcts, mk in [([0.3, 0.7], lambda S: [S.SchedCos(0.3, 0.6), S.SchedCos(0.6, 0.2)]),
                     ([0.3, 0.2, 0.5], lambda S: [S.SchedLin(0.0, 1.0), S.SchedNo(1.0, 1.0), S.SchedCos(1.0, 0.0)]),
                     ([0.0, 1.0], lambda S: [S.SchedLin(5.0, 6.0), S.SchedLin(0.0, 1.0)])]:
        import minifastai.callback.schedule as msched

        f, g = combine_scheds(pcts, mk(msched)), fsched.combine_scheds(pcts, mk(fsched))
        for p in torch.linspace(0.0, 1, 100).tolist()[:-1]:
            assert f(p) == pytest.approx(g(p), rel=1e-5, abs=1e-7)  # fastai locates pos in float32
    a, b = combined_cos(0.25, 1e-4, 1e-3, 1e-8), fsched.combined_cos(0.25, 1e-4, 1e-3, 1e-8)
    for p in POS:
        assert a(p) == pytest.approx(b(p), rel=1e-5)


@pytest.mark.parametrize("call,err,match", [
    (lambda: combine_scheds([0.3, 0.6], [SchedLin(0, 1), SchedLin(1, 0)]), ValueError, "summing to 1"),
    (lambda: combine_scheds([0.5], [SchedLin(0, 1), SchedLin(1, 0)]), ValueError, "1 pcts for 2 schedules"),
    (lambda: combine_scheds([1.2, -0.2], [SchedLin(0, 1), SchedLin(1, 0)]), ValueError, "non-negative"),
    (lambda: combine_scheds([1.0], [0.5]), TypeError, "function of the position"),
    (lambda: SchedExp(0.0, 1.0), ValueError, "non-zero and of the same sign"),
    (lambda: SchedLin(slice(1e-5, 1e-3), 0), TypeError, "lr_range"),
    (lambda: SchedCos("1e-3", 0), TypeError, "must be a number"),
    (lambda: SchedPoly(0, 1, -1), ValueError, "power"),
    (lambda: ParamScheduler([SchedLin(0, 1)]), TypeError, "dict of schedules"),
    (lambda: ParamScheduler({"lr": 1e-3}), TypeError, "function of the position"),
])
def test_bad_schedules_are_refused_with_a_message(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_param_scheduler_dict_with_per_group_values():
    # fastai: learn.fit(n, cbs=ParamScheduler({'lr': SchedCos(lr_max, lr_max/1e4), 'mom': SchedLin(0.95, 0.85)}))
    learn = make_learner()  # 3 layer groups, 8 batches per epoch
    peaks = np.array([1e-4, 1e-3, 1e-2])
    learn.fit(2, cbs=ParamScheduler({"lr": SchedCos(peaks, peaks / 1e4), "mom": SchedLin(0.95, 0.85),
                                     "sqr_mom": SchedNo(0.98, 0.98)}))
    lrs, moms = learn.recorder.lrs, learn.recorder.moms
    assert lrs.shape == moms.shape == (16, 3)
    f, m = fsched.SchedCos(peaks, peaks / 1e4), fsched.SchedLin(0.95, 0.85)
    for i in range(16):
        np.testing.assert_allclose(lrs[i], f(i / 16), rtol=1e-12)
        np.testing.assert_allclose(moms[i], [m(i / 16)] * 3, rtol=1e-12)
    assert all(pg["betas"][1] == 0.98 for pg in learn.opt.param_groups)


def test_param_scheduler_combine_scheds_in_a_fit():
    learn = make_learner()
    sched = combine_scheds([0.25, 0.75], [SchedLin(1e-4, 1e-2), SchedCos(1e-2, 1e-6)])
    learn.fit(2, cbs=ParamScheduler({"lr": sched}))
    expected = fsched.combine_scheds([0.25, 0.75], [fsched.SchedLin(1e-4, 1e-2), fsched.SchedCos(1e-2, 1e-6)])
    np.testing.assert_allclose(learn.recorder.lrs[:, 2], [expected(i / 16) for i in range(16)], rtol=1e-5)
    np.testing.assert_allclose(learn.recorder.lrs[:, 0], learn.recorder.lrs[:, 2])  # a float: every group


@pytest.mark.parametrize("scheds,match", [
    ({"lr": SchedCos(np.array([1e-3, 1e-2]), 0.0)}, "2 values for 3 layer groups"),
    ({"lr": [SchedCos(1e-3, 0.0)] * 2}, "2 entries for 3 layer groups"),
    ({"momentum_typo": SchedLin(0.9, 0.8)}, "cannot schedule 'momentum_typo'"),
])
def test_param_scheduler_mismatch_fails_before_any_batch(scheds, match):
    learn = make_learner()
    before = state_copy(learn.model)
    with pytest.raises(ValueError, match=match):
        learn.fit(1, cbs=ParamScheduler(scheds))
    assert same_state(before, state_copy(learn.model))


def test_one_cycle_still_records_every_group():
    learn = make_learner()
    learn.fit_one_cycle(1, slice(1e-5, 1e-3))
    f = fsched.combined_cos(0.25, np.array([1e-5, 1e-4, 1e-3]) / 25, np.array([1e-5, 1e-4, 1e-3]),
                            np.array([1e-5, 1e-4, 1e-3]) / 1e5)
    for i in range(8):
        np.testing.assert_allclose(learn.recorder.lrs[i], f(i / 8), rtol=1e-5)


# ---- optimizers -------------------------------------------------------------------------------------------------
OPTS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, mom=0.9, wd=0.1)),
    ("SGD", dict(lr=0.1, mom=0.9, wd=0.1, decouple_wd=False)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, mom=0.8, sqr_mom=0.9, eps=1e-6, wd=0.1)),
    ("Adam", dict(lr=1e-2, wd=0.1, decouple_wd=False)),
    ("RMSProp", dict(lr=1e-2, wd=0.1)),
    ("RMSProp", dict(lr=1e-2, sqr_mom=0.9, wd=0.1, decouple_wd=False)),
    ("RMSProp", dict(lr=1e-2, mom=0.9)),
    ("RMSProp", dict(lr=1e-2, mom=0.9, wd=0.1)),
    ("RMSProp", dict(lr=1e-2, mom=0.9, wd=0.1, decouple_wd=False)),
]


def _step_both(ours, theirs, hyper_sched: bool, n_steps: int = 6) -> float:
    """Same weights, same gradients, `n_steps` steps with each optimizer; the largest weight difference."""
    w = [torch.randn(4, 3), torch.randn(3)]
    pf = [x.clone().requires_grad_() for x in w]
    pm = [x.clone().requires_grad_() for x in w]
    of, om = theirs(pf), ours(pm)
    g = torch.Generator().manual_seed(1)
    for i in range(n_steps):
        if hyper_sched:  # what fit_one_cycle does between steps
            lr, mom = 0.02 * (i + 1), 0.95 - 0.02 * i
            of.set_hyper("lr", lr)
            of.set_hyper("mom", mom)
            for pg in om.param_groups:
                pg["lr"] = lr
                pg["betas" if "betas" in pg else "momentum"] = (mom, pg["betas"][1]) if "betas" in pg else mom
        grads = [torch.randn(x.shape, generator=g) for x in w]
        for ps in (pf, pm):
            for p, gr in zip(ps, grads):
                p.grad = gr.clone()
        of.step()
        om.step()
    return max((a - b).abs().max().item() for a, b in zip(pf, pm))


@pytest.mark.parametrize("hyper_sched", [False, True])
@pytest.mark.parametrize("name,kwargs", OPTS)
def test_optimizers_step_like_fastai(name, kwargs, hyper_sched):
    import minifastai.optimizer as mopt

    ours, theirs = partial(getattr(mopt, name), **kwargs), partial(getattr(fopt, name), **kwargs)
    assert _step_both(ours, theirs, hyper_sched) < 1e-6


def test_rmsprop_momentum_is_fastais_not_torchs():
    """With mom > 0 the step is fastai's (averaged gradient over the current denominator), which torch's RMSprop
    (averaging grad / denominator) is not; the state keeps torch's keys, so torch's state dicts load."""
    ours = partial(RMSProp, lr=1e-2, mom=0.9)
    torch_ = partial(torch.optim.RMSprop, lr=1e-2, momentum=0.9, alpha=0.99, eps=1e-8)
    assert _step_both(ours, torch_, hyper_sched=False) > 1e-3
    p = torch.ones(3, requires_grad=True)
    opt = RMSProp([p], lr=0.01, mom=0.9)
    p.grad = torch.full((3,), 0.5)
    opt.step()
    assert sorted(opt.state[p]) == ["momentum_buffer", "square_avg", "step"]
    # step 1: square_avg = 0.01 * 0.5**2, buf = grad
    assert torch.allclose(p.detach(), torch.full((3,), 1 - 0.01 * 0.5 / (0.05 + 1e-8)))
    opt.step()  # step 2: square_avg = 0.99 * 0.0025 + 0.01 * 0.25, buf = 0.9 * 0.5 + 0.5
    expected = 1 - 0.01 * 0.5 / (0.05 + 1e-8) - 0.01 * 0.95 / (math.sqrt(0.99 * 0.0025 + 0.0025) + 1e-8)
    assert torch.allclose(p.detach(), torch.full((3,), expected))
    again = RMSProp([p], lr=0.1, mom=0.9)
    again.load_state_dict(opt.state_dict())
    assert torch.equal(again.state[p]["momentum_buffer"], opt.state[p]["momentum_buffer"])


def _fastai_and_ours(opt_pair, wd=None, n_epoch=3, lr=1e-2):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 5, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).long()

    def model():
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))

    def loaders():
        return DataLoader(TensorDataset(x[:64], y[:64]), 16), DataLoader(TensorDataset(x[64:], y[64:]), 16)

    theirs_opt, ours_opt = opt_pair
    fl = FastaiLearner(FastaiDataLoaders(*loaders(), device="cpu"), model(), loss_func=nn.CrossEntropyLoss(),
                       opt_func=theirs_opt, wd=wd, metrics=fmet.accuracy)
    with fl.no_bar(), fl.no_logging():
        fl.fit_one_cycle(n_epoch, lr)
        f_valid = fl.validate()
    kw = {} if ours_opt is None else {"opt_func": ours_opt}
    ml = Learner(DataLoaders(*loaders(), device="cpu"), model(), nn.CrossEntropyLoss(), wd=wd, metrics=accuracy,
                 **kw)
    ml.fit_one_cycle(n_epoch, lr)
    return fl, ml, f_valid, ml.validate()


@pytest.mark.parametrize("opt_pair,wd", [
    ((fopt.SGD, SGD), None),  # mom=0: fastai ignores the one-cycle momentum schedule, so do we
    ((partial(fopt.SGD, mom=0.9), partial(SGD, mom=0.9)), 0.1),
    ((fopt.Adam, Adam), None),
    ((fopt.Adam, None), 1e-3),  # minifastai's default optimizer is fastai's default Adam
    ((fopt.RMSProp, RMSProp), 0.01),
    ((partial(fopt.RMSProp, mom=0.9), partial(RMSProp, mom=0.9)), 0.01),
])
def test_learner_fit_one_cycle_matches_fastai_learner(opt_pair, wd):
    fl, ml, f_valid, m_valid = _fastai_and_ours(opt_pair, wd)
    for a, b in zip(fl.model.parameters(), ml.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m_valid, [float(v) for v in f_valid], rtol=1e-5)


def test_optim_wrapper_as_fastai_writes_it():
    # fastai: opt_func = partial(OptimWrapper, opt=torch.optim.SGD, momentum=0.9)
    learn = make_learner(opt_func=partial(OptimWrapper, opt=torch.optim.SGD, momentum=0.9))
    learn.fit_one_cycle(1, 1e-2)
    assert isinstance(learn.opt, torch.optim.SGD) and type(learn.opt).__name__ == "SGD"  # torch's, plus .hypers
    assert [h["momentum"] for h in learn.opt.hypers] == [pg["momentum"] for pg in learn.opt.param_groups]
    assert learn.recorder.moms[0, 0] == pytest.approx(0.95) and learn.recorder.moms[-1, 2] < 0.95
    built = torch.optim.AdamW(nn.Linear(2, 2).parameters())
    assert OptimWrapper(opt=built) is built
    groups = [list(nn.Linear(2, 2).parameters()), list(nn.Linear(2, 2).parameters())]
    assert len(OptimWrapper(groups, opt=torch.optim.Adam, lr=1e-3).param_groups) == 2  # a splitter's lists


def test_optimizers_accept_what_fastai_users_pass():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    opt = SGD(model.parameters(), lr=0.1)  # a generator of parameters
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["momentum"] == 0
    groups = [list(model[0].parameters()), list(model[1].parameters())]  # a splitter's output
    opt = Adam(groups, lr=slice(1e-3))  # fastai spreads a slice over the groups
    assert [pg["lr"] for pg in opt.param_groups] == pytest.approx([1e-4, 1e-3])
    assert opt.param_groups[0]["betas"] == (0.9, 0.99) and opt.param_groups[0]["weight_decay"] == 0.01


@pytest.mark.parametrize("call,err,match", [
    (lambda ps: SGD(ps, lr=0.1, mom=1.5), ValueError, "mom must be in"),
    (lambda ps: Adam(ps, lr=0.1, sqr_mom=float("nan")), ValueError, "sqr_mom must be a finite number"),
    (lambda ps: Adam(ps, lr=-1.0), ValueError, "lr must be"),
    (lambda ps: RMSProp(ps, lr=0.1, eps=0), ValueError, "eps > 0"),
    (lambda ps: SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda ps: OptimWrapper(ps, opt=torch.optim.SGD, hp_map={"momentum": "mom"}), TypeError, "hp_map"),
    (lambda ps: OptimWrapper(ps, opt=torch.optim.SGD(ps, lr=0.1)), ValueError, "both params and a built"),
    (lambda ps: OptimWrapper(ps), ValueError, "needs opt="),
])
def test_bad_optimizer_arguments(call, err, match):
    with pytest.raises(err, match=match):
        call(list(nn.Linear(2, 2).parameters()))


# ---- losses -----------------------------------------------------------------------------------------------------
def _loss_cases():
    torch.manual_seed(0)
    logits, cls = torch.randn(6, 4), torch.randint(0, 4, (6,))
    seg, seg_t = torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))  # (N, C, H, W), class axis 1
    multi, multi_t = torch.randn(6, 3), torch.randint(0, 2, (6, 3))
    reg, reg_t = torch.randn(6, 1), torch.randn(6)
    return [
        ("CrossEntropyLossFlat", {}, logits, cls),
        ("CrossEntropyLossFlat", {"axis": 1}, seg, seg_t),
        ("CrossEntropyLossFlat", {"weight": torch.tensor([1.0, 2.0, 0.5, 1.0]), "reduction": "none"}, logits, cls),
        ("CrossEntropyLossFlat", {}, logits, cls.int()),  # int32 targets become long
        ("BCEWithLogitsLossFlat", {}, multi, multi_t),
        ("BCEWithLogitsLossFlat", {"thresh": 0.3, "pos_weight": torch.tensor([1.0, 2.0, 3.0])}, multi, multi_t),
        ("BCELossFlat", {}, multi.sigmoid(), multi_t),
        ("MSELossFlat", {}, reg, reg_t),  # (N, 1) against (N,): flattened, no broadcasting
        ("L1LossFlat", {}, reg, reg_t),
        ("LabelSmoothingCrossEntropyFlat", {}, logits, cls),
        ("LabelSmoothingCrossEntropyFlat", {"eps": 0.3, "reduction": "sum"}, logits, cls),
        ("LabelSmoothingCrossEntropy", {"weight": torch.tensor([1.0, 2.0, 0.5, 1.0])}, logits, cls),
        ("FocalLossFlat", {}, logits, cls),
        ("FocalLossFlat", {"gamma": 0.5, "axis": 1, "reduction": "sum"}, seg, seg_t),
        ("FocalLoss", {"gamma": 3.0, "weight": torch.tensor([1.0, 2.0, 0.5, 1.0])}, logits, cls),
        ("DiceLoss", {}, seg, seg_t),
        ("DiceLoss", {"reduction": "mean", "square_in_union": True, "smooth": 1.0}, seg, seg_t),
    ]


@pytest.mark.parametrize("name,kwargs,inp,targ", _loss_cases())
def test_losses_match_fastai(name, kwargs, inp, targ):
    ours, theirs = getattr(mloss, name)(**kwargs), getattr(floss, name)(**kwargs)
    torch.testing.assert_close(ours(inp, targ), theirs(inp, targ).as_subclass(torch.Tensor))
    if hasattr(theirs, "activation"):
        act = ours.activation(inp)
        torch.testing.assert_close(act, theirs.activation(inp).as_subclass(torch.Tensor))
        torch.testing.assert_close(ours.decodes(act), theirs.decodes(act).as_subclass(torch.Tensor))


def test_dice_loss_with_one_hot_targets_is_a_clear_error():
    seg = torch.randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"DiceLoss: predictions of shape \(2, 3, 4, 5\) and class-index targets of "
                                         r"shape \(2, 3, 4, 5\) do not match"):
        mloss.DiceLoss()(seg, torch.zeros(2, 3, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction must be"):
        mloss.DiceLoss(reduction="avg")


def test_flat_loss_reduction_and_repr_like_fastai():
    loss = CrossEntropyLossFlat()
    assert repr(loss) == repr(floss.CrossEntropyLossFlat()) == "FlattenedLoss of CrossEntropyLoss()"
    loss.reduction = "none"  # what get_preds(with_loss=True) does
    assert loss(torch.randn(5, 3), torch.randint(0, 3, (5,))).shape == (5,)
    with pytest.raises(ValueError, match="flatten must be False"):
        BCEWithLogitsLossFlat(pos_weight=torch.ones(3), flatten=True)


def _multilabel(dls):
    """The same data with one-hot targets (a 2-label multi-label problem)."""
    return DataLoaders([(x, nn.functional.one_hot(y, 2)) for x, y in dls.train],
                       [(x, nn.functional.one_hot(y, 2)) for x, y in dls.valid], device="cpu")


def _learner(loss, dls=None, **kwargs):
    return Learner(dls or synth_dls(), three_group_model(), loss, splitter=three_group_splitter, **kwargs)


@pytest.mark.parametrize("loss,multilabel,check", [
    (CrossEntropyLossFlat(), False, lambda p: torch.allclose(p.sum(1), torch.ones(len(p)))),
    (LabelSmoothingCrossEntropyFlat(), False, lambda p: torch.allclose(p.sum(1), torch.ones(len(p)))),
    (BCEWithLogitsLossFlat(), True,
     lambda p: bool(((p > 0) & (p < 1)).all()) and not torch.allclose(p.sum(1), torch.ones(len(p)))),
])
def test_learner_predicts_with_the_flat_loss_activation(loss, multilabel, check):
    learn = _learner(loss, _multilabel(synth_dls()) if multilabel else None)
    learn.fit(1, 1e-2)
    preds, _ = learn.get_preds()
    assert check(preds)
    torch.testing.assert_close(preds, loss.activation(learn.get_preds(act=lambda x: x)[0]))
    assert _learner(MSELossFlat()).activation_name is None


# ---- metrics ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kwargs", [("accuracy", {}), ("error_rate", {}), ("accuracy_multi", {}),
                                         ("accuracy_multi", {"thresh": 0.2}), ("accuracy_multi", {"sigmoid": False}),
                                         ("top_k_accuracy", {"k": 2}), ("mae", {}), ("mse", {})])
def test_metric_functions_match_fastai(name, kwargs):
    torch.manual_seed(0)
    if name == "accuracy_multi":
        inp, targ = torch.randn(8, 3), torch.randint(0, 2, (8, 3))
    elif name in ("mae", "mse"):
        inp, targ = torch.randn(8, 1), torch.randn(8)
    else:
        inp, targ = torch.randn(8, 5), torch.randint(0, 5, (8,))
    ours, theirs = getattr(mmet, name)(inp, targ, **kwargs), getattr(fmet, name)(inp, targ, **kwargs)
    assert float(ours) == pytest.approx(float(theirs))


def test_accuracy_multi_in_a_fit_as_fastai_writes_it():
    learn = _learner(BCEWithLogitsLossFlat(), _multilabel(synth_dls()), metrics=partial(accuracy_multi, thresh=0.2))
    learn.fit(1, 1e-2)
    assert learn.recorder.metric_names[3] == "accuracy_multi"  # fastai names a partial after its function
    preds, targs = learn.get_preds(act=lambda x: x)
    assert learn.validate()[1] == pytest.approx(float(fmet.accuracy_multi(preds, targs, thresh=0.2)))


class BalancedAccMetric(Metric):
    """Written as fastai's docs write a Metric: state in reset, accumulate(learn), value."""

    def reset(self):
        self.correct, self.seen = torch.zeros(2), torch.zeros(2)

    def accumulate(self, learn):
        pred, targ = learn.pred.argmax(dim=-1), learn.yb[0]
        for c in (0, 1):
            self.correct[c] += ((pred == c) & (targ == c)).sum()
            self.seen[c] += (targ == c).sum()

    @property
    def value(self):
        return (self.correct / self.seen).mean()


def test_fastai_style_metric_class():
    learn = make_learner(metrics=[BalancedAccMetric(), accuracy])
    learn.fit(1, 1e-2)
    assert learn.recorder.metric_names[3:5] == ["balanced_acc", "accuracy"]
    theirs = type("BalancedAccMetric", (FastaiMetric,), {})()
    assert learn.metrics[0].name == theirs.name  # fastai's naming rule
    preds, targs = learn.get_preds()
    from sklearn.metrics import balanced_accuracy_score

    expected = balanced_accuracy_score(targs.numpy(), preds.argmax(1).numpy())
    _, bal, acc = learn.validate()
    assert bal == pytest.approx(expected, rel=1e-6) and acc == pytest.approx(float(accuracy(preds, targs)))


def test_metric_functions_returning_python_and_numpy_numbers():
    from sklearn.metrics import accuracy_score

    def skl_accuracy(pred, targ):
        return accuracy_score(targ.numpy(), pred.argmax(-1).numpy())  # a numpy float64

    def py_accuracy(pred, targ):
        return (pred.argmax(-1) == targ).float().mean().item()  # a Python float

    learn = make_learner(metrics=[accuracy, skl_accuracy, py_accuracy])
    learn.fit(1, 1e-2)
    _, acc, skl, py = learn.validate()
    assert skl == pytest.approx(acc) and py == pytest.approx(acc)
    assert learn.recorder.metric_names[3:6] == ["accuracy", "skl_accuracy", "py_accuracy"]


def _bad_none(pred, targ):
    return None


def _bad_str(pred, targ):
    return "0.5"


def _bad_shape(pred, targ):
    return (pred.argmax(-1) == targ).float()


class BadValueMetric(Metric):
    def accumulate(self, learn):
        pass

    @property
    def value(self):
        return [0.5, 0.1]


@pytest.mark.parametrize("metric,err,match", [
    (_bad_none, TypeError, "metric '_bad_none' returned None"),
    (_bad_str, TypeError, "metric '_bad_str' returned a str"),
    (_bad_shape, ValueError, r"metric '_bad_shape' returned a tensor of shape \(32,\)"),
    (BadValueMetric(), TypeError, "metric 'bad_value': value is a list"),
])
def test_metric_errors_name_the_metric(metric, err, match):
    learn = make_learner(metrics=metric)
    with pytest.raises(err, match=match):
        learn.fit(1, 1e-3)


def test_metric_class_instead_of_instance_is_refused():
    with pytest.raises(TypeError, match=r"pass an instance, e.g. metrics=BalancedAccMetric\(\)"):
        make_learner(metrics=BalancedAccMetric)


def test_torchmetrics_objects_update_per_batch_compute_per_epoch():
    torchmetrics = pytest.importorskip("torchmetrics")
    acc = torchmetrics.classification.MulticlassAccuracy(num_classes=2, average="micro")
    f1 = torchmetrics.classification.MulticlassF1Score(num_classes=2, average="macro")
    learn = make_learner(metrics=[accuracy, acc, f1])
    learn.fit(2, 1e-2)
    assert learn.recorder.metric_names[3:6] == ["accuracy", "multiclass_accuracy", "multiclass_f1_score"]
    preds, targs = learn.get_preds()
    from sklearn.metrics import f1_score

    _, ours, tm_acc, tm_f1 = learn.validate()  # reset before this pass: not cumulative over the fit's passes
    assert tm_acc == pytest.approx(ours, rel=1e-6)
    assert tm_f1 == pytest.approx(f1_score(targs, preds.argmax(1), average="macro"), rel=1e-5)
    assert float(acc.compute()) == pytest.approx(float(accuracy(preds, targs)))  # the user's own object was updated
    per_class = torchmetrics.classification.MulticlassAccuracy(num_classes=2, average=None)
    with pytest.raises(ValueError, match=r"metric 'multiclass_accuracy': value is a tensor of shape \(2,\)"):
        make_learner(metrics=per_class).fit(1, 1e-3)


class _NoSync(torch.Tensor):
    """A tensor that fails on anything that would copy a value to the host (a sync on a GPU)."""

    SYNCS = {torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__float__, torch.Tensor.__int__,
             torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu, torch.Tensor.__index__}

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in cls.SYNCS:
            raise AssertionError(f"host-device sync: {func.__name__}")
        return super().__torch_function__(func, types, args, kwargs or {})


SYNC_FREE = [accuracy, mmet.error_rate, partial(accuracy_multi, thresh=0.3), mmet.rmse, mmet.mae,
             partial(mmet.top_k_accuracy, k=2), BalancedAccMetric()]


def _metric_batches(metric, n=3):
    torch.manual_seed(0)
    for _ in range(n):
        pred, targ = torch.randn(8, 3), torch.randint(0, 3, (8,))
        if metric in (mmet.rmse, mmet.mae):
            pred, targ = pred[:, 0], targ.float()
        if isinstance(metric, partial) and metric.func is accuracy_multi:
            targ = torch.randint(0, 2, (8, 3))
        yield pred, targ


@pytest.mark.parametrize("metric", SYNC_FREE)
def test_builtin_metrics_accumulate_without_host_sync(metric):
    from types import SimpleNamespace

    spied, plain = mmet.to_metric(metric), mmet.to_metric(metric)
    for pred, targ in _metric_batches(metric):
        spied.accumulate(SimpleNamespace(pred=pred.as_subclass(_NoSync), yb=(targ.as_subclass(_NoSync),)))
        plain.accumulate(SimpleNamespace(pred=pred, yb=(targ,)))
    assert np.isfinite(mmet.metric_value(plain))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("metric", SYNC_FREE[:-1])
def test_builtin_metrics_accumulate_without_sync_on_cuda(metric):
    from types import SimpleNamespace

    m = mmet.to_metric(metric)
    batches = [(p.cuda(), t.cuda()) for p, t in _metric_batches(metric)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for pred, targ in batches:
            m.accumulate(SimpleNamespace(pred=pred, yb=(targ,)))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    cpu = mmet.to_metric(metric)
    for pred, targ in _metric_batches(metric):
        cpu.accumulate(SimpleNamespace(pred=pred, yb=(targ,)))
    assert mmet.metric_value(m) == pytest.approx(mmet.metric_value(cpu), rel=1e-5)


# ---- set_seed -----------------------------------------------------------------------------------------------------
def _draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()


def test_set_seed_matches_fastai():
    fcore.set_seed(42)
    theirs = _draws()
    set_seed(42)
    assert _draws() == theirs
    set_seed(2**40 + 3)  # numpy's seed is taken modulo 2**32 - 1, as fastai does
    a = _draws()
    fcore.set_seed(2**40 + 3)
    assert _draws() == a


def test_set_seed_reproducible_flags_and_bad_seed():
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        set_seed(0, reproducible=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
    set_seed(1)
    expected = _draws()
    set_seed(1)
    with pytest.raises(TypeError, match="integer seed"):
        set_seed("1")
    assert _draws() == expected  # nothing was reseeded


# ---- data -------------------------------------------------------------------------------------------------------
def test_from_dsets_batches_as_fastai():
    x, y = torch.randn(100, 3), torch.arange(100)
    train_ds, valid_ds = TensorDataset(x, y), TensorDataset(x[:30], y[:30])
    dls = DataLoaders.from_dsets(train_ds, valid_ds, bs=16, device="cpu")
    theirs = FastaiDataLoaders.from_dsets(train_ds, valid_ds, bs=16, device="cpu")
    assert (len(dls.train), len(dls.valid)) == (len(theirs.train), len(theirs.valid)) == (6, 2)
    assert [len(b[1]) for b in dls.valid] == [len(b[1]) for b in theirs.valid] == [16, 14]
    e1, e2 = (torch.cat([b[1] for b in dls.train]) for _ in range(2))
    assert len(e1) == len(e2) == 96 and len(set(e1.tolist())) == 96  # last partial batch dropped
    assert not torch.equal(e1, e2)  # shuffled every epoch
    assert dls.train_ds is train_ds and dls.valid_ds is valid_ds
    xb, yb = dls.one_batch()
    assert xb.shape == (16, 3) and yb.shape == (16,) and xb.device == dls.device
    assert dls.loss_func is None and str(dls.path) == "."


@pytest.mark.parametrize("call,err,match", [
    (lambda: DataLoaders.from_dsets(TensorDataset(torch.randn(10, 2)), bs=16).one_batch(), ValueError,
     "yielded no batch.*drop_last"),
    (lambda: DataLoaders.from_dsets(TensorDataset(torch.randn(10, 2)), bs=0), ValueError, "positive integer"),
    (lambda: DataLoaders(b for b in [(torch.ones(2), torch.ones(2))]), TypeError, "iterated only once"),
    (lambda: DataLoaders([(torch.ones(2), torch.ones(2))], 5), TypeError, "dls.valid must be an iterable"),
    (lambda: DataLoaders(None).one_batch(), ValueError, "dls.train is None"),
    (lambda: DataLoaders([(torch.ones(2), torch.ones(2))]).valid_ds, AttributeError, "dls.valid is None"),
    (lambda: DataLoaders([(torch.ones(2), torch.ones(2))]).train_ds, AttributeError, "without a .dataset"),
    (lambda: DataLoaders([]).one_batch(), ValueError, "yielded no batch"),
])
def test_bad_data_is_a_clear_error(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_single_pass_loaders_are_refused_and_train_none_cannot_fit():
    with pytest.raises(TypeError, match="can be iterated only once"):
        DataLoaders(iter([(torch.randn(4, 8), torch.zeros(4))]))
    with pytest.raises(TypeError, match="must be an iterable of batches"):
        DataLoaders(3)
    small = DataLoaders.from_dsets(TensorDataset(torch.randn(10, 8), torch.randint(0, 2, (10,))), bs=16, device="cpu")
    with pytest.raises(ValueError, match="dls.train is empty"):
        make_learner(dls=small).fit(1)
    learn = make_learner(dls=DataLoaders(None, device="cpu"))
    before = state_copy(learn.model)
    with pytest.raises(ValueError, match="a fit needs a training loader"):
        learn.fit(1)
    assert same_state(before, state_copy(learn.model)) and learn.opt is None


# ---- the Learner, Recorder and callbacks as fastai's docs and course notebooks write them -----------------------
def _clf_parts():
    """The same small classification task for fastai and minifastai: train and valid loaders, a fresh model."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 5, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).long()
    torch.manual_seed(1)
    return (DataLoader(TensorDataset(x[:64], y[:64]), 16), DataLoader(TensorDataset(x[64:], y[64:]), 16),
            nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2)))


def _fastai_and_ours_fitted(n_epoch=3, lr=1e-2, flat=False):
    from fastai.losses import CrossEntropyLossFlat as FastaiCEFlat

    t, v, m = _clf_parts()
    fl = FastaiLearner(FastaiDataLoaders(t, v, device="cpu"), m, metrics=fmet.accuracy,
                       loss_func=FastaiCEFlat() if flat else nn.CrossEntropyLoss())
    with fl.no_bar(), fl.no_logging():
        fl.fit_one_cycle(n_epoch, lr)
    t, v, m = _clf_parts()
    ml = Learner(DataLoaders(t, v, device="cpu"), m, CrossEntropyLossFlat() if flat else nn.CrossEntropyLoss(),
                 metrics=accuracy)
    with ml.no_bar():
        ml.fit_one_cycle(n_epoch, lr)
    return fl, ml, tuple(v.dataset.tensors)


def test_recorder_values_losses_iters_and_final_record_match_fastai():
    fl, ml, _ = _fastai_and_ours_fitted()
    fr, mr = fl.recorder, ml.recorder
    assert mr.metric_names == list(fr.metric_names)  # ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']
    np.testing.assert_allclose(mr.values, [[float(v) for v in row] for row in fr.values], rtol=1e-5)
    np.testing.assert_allclose(mr.losses, [float(v) for v in fr.losses], rtol=1e-5)  # smoothed, as fastai's
    assert mr.iters == list(fr.iters)
    np.testing.assert_allclose(ml.final_record, [float(v) for v in fl.final_record], rtol=1e-5)
    assert ml.recorder.values[-1][-1] == pytest.approx(float(fl.recorder.values[-1][-1]))  # the course's idiom
    np.testing.assert_allclose(mr.lrs[:, -1], [float(v) for v in fr.lrs], rtol=1e-6)  # fastai keeps the last group


def test_get_preds_with_decoded_and_with_loss_match_fastai():
    from fastai.data.core import DataLoaders as FastaiDLs

    fl, ml, (xv, yv) = _fastai_and_ours_fitted(flat=True)  # fastai applies softmax for its flat losses only
    ds = TensorDataset(xv, yv)
    fdl = FastaiDLs.from_dsets(ds, ds, bs=16, shuffle=False, device="cpu")  # fastai's get_preds needs its loaders
    f_preds, f_targs, f_dec, f_loss = fl.get_preds(dl=fdl.valid, with_decoded=True, with_loss=True)
    inp, preds, targs, dec, loss = ml.get_preds(with_input=True, with_decoded=True, with_loss=True)
    torch.testing.assert_close(preds, f_preds, rtol=1e-5, atol=1e-6)
    assert torch.equal(targs, f_targs) and torch.equal(dec, f_dec) and inp.shape == (32, 5)
    torch.testing.assert_close(loss, f_loss, rtol=1e-5, atol=1e-6)


class TrackLR(Callback):
    """A callback written as fastai's docs write one: the loop's state through `self`."""

    def before_fit(self):
        self.seen = []

    def after_batch(self):
        if self.training:
            self.seen.append((self.epoch, self.iter, self.n_iter, float(self.opt.param_groups[-1]["lr"]),
                              round(float(self.pct_train), 6), float(self.loss)))


def test_a_callback_written_for_fastai_sees_the_same_loop():
    from fastai.callback.core import Callback as FastaiCallback

    class FastaiTrackLR(FastaiCallback):
        def before_fit(self):
            self.seen = []

        def after_batch(self):
            if self.training:
                self.seen.append((self.epoch, self.iter, self.n_iter, float(self.opt.hypers[-1]["lr"]),
                                  round(float(self.pct_train), 6), float(self.loss)))

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    y = (x[:, 0] > 0).long()

    def parts():
        torch.manual_seed(1)
        return DataLoader(TensorDataset(x[:48], y[:48]), 16), DataLoader(TensorDataset(x[48:], y[48:]), 16), \
            nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))

    t, v, m = parts()
    fl = FastaiLearner(FastaiDataLoaders(t, v, device="cpu"), m, loss_func=nn.CrossEntropyLoss(), cbs=FastaiTrackLR())
    with fl.no_bar(), fl.no_logging():
        fl.fit_one_cycle(2, 1e-2)
    t, v, m = parts()
    ml = Learner(DataLoaders(t, v, device="cpu"), m, nn.CrossEntropyLoss(), cbs=TrackLR())
    with ml.no_bar():
        ml.fit_one_cycle(2, 1e-2)
    ours, theirs = ml.track_lr.seen, fl.fastai_track_lr.seen
    assert [s[:3] for s in ours] == [s[:3] for s in theirs]
    np.testing.assert_allclose([s[3:] for s in ours], [s[3:] for s in theirs], rtol=1e-5)


def test_learner_conveniences_as_fastai_writes_them(capsys):
    learn = make_learner()
    learn.remove_cb(ProgressCallback)  # fastai: learn.remove_cb(ProgressCallback)
    learn.fit(1, 1e-2)
    row = capsys.readouterr().out  # as fastai's: without the table, learn.logger (print) prints the row as a list
    assert re.fullmatch(r"\[0, \d+\.\d+, \d+\.\d+, \d+\.\d+, '\d\d:\d\d'\]\n", row), row
    learn.add_cb(ProgressCallback())
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, 1e-2)
    assert capsys.readouterr().out == ""
    learn.fit_one_cycle(1, 1e-2, cbs=[EarlyStoppingCallback(monitor="accuracy", min_delta=0.01, patience=2)])
    assert "accuracy" in capsys.readouterr().out


def test_fit_sgdr_lrs_match_fastais():
    """fit_sgdr: cosine cycles of 1, 2, 4 epochs, each restarting at lr_max, batch for batch as fastai's."""
    import fastai.test_utils as ftu

    from minifastai.test_utils import synth_learner

    ours, theirs = synth_learner(n_trn=4), ftu.synth_learner(n_trn=4)
    with ours.no_logging():
        ours.fit_sgdr(3, 1, lr_max=1e-2)
    with theirs.no_logging(), theirs.no_bar():
        theirs.fit_sgdr(3, 1, lr_max=1e-2)
    mine, fastai_lrs = ours.recorder.lrs[:, -1], np.array(theirs.recorder.lrs)
    # fastai adds 1/(batches) to its position in floats each batch; at the third cycle's start (batch 12, position
    # exactly 3/7) its sum falls just short, so it draws one more lr ~ 0 where minifastai (train_iter / total) restarts
    same = [i for i in range(28) if i != 12]
    np.testing.assert_allclose(mine[same], fastai_lrs[same], rtol=1e-5)
    assert fastai_lrs[12] < 1e-12 and mine[12] == pytest.approx(1e-2)
    assert len(ours.recorder.lrs) == 7 * 4 and ours.recorder.lrs[[0, 4, 12], -1] == pytest.approx([1e-2] * 3)
    with pytest.raises(ValueError, match="cycle_len"):
        ours.fit_sgdr(2, 0)


def test_recorder_train_metrics_gives_fastais_columns_and_values():
    t, v, m = _clf_parts()
    fl = FastaiLearner(FastaiDataLoaders(t, v, device="cpu"), m, loss_func=nn.CrossEntropyLoss(),
                       metrics=fmet.accuracy, opt_func=fopt.SGD)
    fl.recorder.train_metrics = True
    with fl.no_bar(), fl.no_logging():
        fl.fit(2, 0.1)
    t, v, m = _clf_parts()
    ml = Learner(DataLoaders(t, v, device="cpu"), m, nn.CrossEntropyLoss(), metrics=accuracy, opt_func=SGD)
    ml.recorder.train_metrics = True
    with ml.no_bar(), ml.no_logging():
        ml.fit(2, 0.1)
    assert ml.recorder.metric_names == list(fl.recorder.metric_names) == [
        "epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "time"]
    np.testing.assert_allclose(ml.recorder.values, [[float(v) for v in row] for row in fl.recorder.values],
                               rtol=1e-5)
    assert ml.results.value("train_accuracy") == pytest.approx(float(fl.recorder.values[-1][1]))


def test_recorder_train_metrics_must_be_a_bool_and_off_changes_nothing():
    with pytest.raises(TypeError, match="train_metrics must be True or False"):
        Recorder(train_metrics="yes")
    learn = make_learner(metrics=accuracy)
    learn.fit(1)
    assert learn.recorder.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
