"""Layer groups: splitter validation, optimizer param groups, freezing with BatchNorm, fine_tune's phases."""
import random
import warnings

import numpy as np
import pytest
import torch
from helpers import make_learner, state_copy, synth_dls, three_group_model
from torch import nn

from minifastai import Learner


def test_splitter_leaving_out_params_is_named():
    bad = lambda m: [list(m[0].parameters()), list(m[5].parameters())]  # noqa: E731
    with pytest.raises(ValueError) as e:
        Learner(synth_dls(), three_group_model(), nn.CrossEntropyLoss(), splitter=bad)
    msg = str(e.value)
    assert "leaves out trainable parameters ['1.weight', '1.bias', '3.weight', '3.bias']" in msg
    assert "exactly one layer group" in msg


def test_splitter_repeating_params_is_named():
    bad = lambda m: [list(m.parameters()), list(m[5].parameters())]  # noqa: E731
    with pytest.raises(ValueError, match=r"repeats parameters \['5.weight \(groups 0 and 1\)'"):
        Learner(synth_dls(), three_group_model(), nn.CrossEntropyLoss(), splitter=bad)


def test_splitter_returning_modules_or_empty_groups():
    with pytest.raises(ValueError, match="holds modules, not parameters"):
        Learner(synth_dls(), three_group_model(), nn.CrossEntropyLoss(), splitter=lambda m: [[m[0]], [m[5]]])
    with pytest.raises(ValueError, match="layer group 1 returned by the splitter is empty"):
        Learner(synth_dls(), three_group_model(), nn.CrossEntropyLoss(),
                splitter=lambda m: [list(m.parameters()), []])


def test_default_optimizer_is_fastai_adam_with_groups_tagged():
    learn = make_learner()
    opt = learn.create_opt()
    assert isinstance(opt, torch.optim.AdamW)
    assert {pg["layer_group"] for pg in opt.param_groups} == {0, 1, 2}
    for pg in opt.param_groups:
        assert pg["betas"] == (0.9, 0.99) and pg["eps"] == 1e-5
        assert pg["weight_decay"] == (0.01 if pg["apply_wd"] else 0.0)
    no_wd = {id(p) for pg in opt.param_groups if not pg["apply_wd"] for p in pg["params"]}
    m = learn.model
    assert no_wd == {id(m[0].bias), id(m[1].weight), id(m[1].bias), id(m[3].bias), id(m[5].bias)}


def test_wd_bn_bias_true_puts_wd_everywhere():
    opt = make_learner(wd_bn_bias=True, wd=0.1).create_opt()
    assert len(opt.param_groups) == 3 and all(pg["weight_decay"] == 0.1 for pg in opt.param_groups)


def test_any_torch_optimizer_works():
    from functools import partial

    learn = make_learner(opt_func=partial(torch.optim.RMSprop, momentum=0.5))
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    assert learn.recorder.moms[0, 0] == pytest.approx(0.95)
    assert learn.recorder.lrs.max(0) == pytest.approx([1e-4, 1e-3, 1e-2], rel=1e-2)


def test_freeze_keeps_norm_layers_training():
    learn = make_learner()
    learn.freeze()
    m = learn.model
    assert not m[0].weight.requires_grad and not m[3].weight.requires_grad
    assert m[1].weight.requires_grad and m[1].bias.requires_grad  # BatchNorm in a frozen group
    assert m[5].weight.requires_grad
    learn.freeze_to(1)
    assert not m[0].weight.requires_grad and m[3].weight.requires_grad
    learn.unfreeze()
    assert all(p.requires_grad for p in m.parameters())


def test_train_bn_false_freezes_norm_layers_too():
    learn = make_learner(train_bn=False)
    learn.freeze()
    assert not learn.model[1].weight.requires_grad


def test_freeze_single_group_warns():
    learn = Learner(synth_dls(), three_group_model(), nn.CrossEntropyLoss())
    with pytest.warns(UserWarning, match="single layer group"):
        learn.freeze()
    assert all(p.requires_grad for p in learn.model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learn.unfreeze()


def test_freeze_clears_optimizer_state_of_affected_params():
    learn = make_learner()
    learn.fit(1, 1e-3)
    m = learn.model
    assert m[0].weight in learn.opt.state and m[5].weight in learn.opt.state
    learn.freeze()
    assert m[0].weight not in learn.opt.state and m[1].weight in learn.opt.state and m[5].weight in learn.opt.state


def test_frozen_params_unchanged_even_by_weight_decay():
    learn = make_learner(wd=0.5)
    learn.fit(1, 1e-2)
    learn.freeze()
    before = state_copy(learn.model)
    learn.fit(2, 1e-2)
    after = state_copy(learn.model)
    for k in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert torch.equal(before[k], after[k]), k
    for k in ("1.weight", "1.running_mean", "5.weight"):
        assert not torch.equal(before[k], after[k]), k


def test_fine_tune_two_phases():
    learn = make_learner()
    snaps, trains = [], []

    from minifastai import Callback

    class Phase(Callback):
        def before_fit(self):
            snaps.append(state_copy(self.learn.model))
            trains.append([any(p.requires_grad for p in g if p.ndim > 1) for g in self.learn.layer_groups])

        def after_fit(self):
            snaps.append(state_copy(self.learn.model))

    learn.add_cb(Phase())
    with learn.dry_run() as plans:
        learn.fine_tune(2, base_lr=2e-3)
    assert len(snaps) == 0  # Phase is not a schedule: it does not run in a dry run
    learn.fine_tune(2, base_lr=2e-3)
    # phase 1: frozen, slice(2e-3) -> [2e-4, 2e-4, 2e-3] with pct_start 0.99; phase 2: slice(1e-5, 1e-3), div 5
    assert trains == [[False, False, True], [True, True, True]]
    np.testing.assert_allclose(plans[0].lrs[0], np.array([2e-4, 2e-4, 2e-3]) / 25)
    np.testing.assert_allclose(plans[1].lrs.max(0), [1e-5, 1e-4, 1e-3], rtol=2e-2)
    np.testing.assert_allclose(plans[1].lrs[0], np.array([1e-5, 1e-4, 1e-3]) / 5)
    assert plans[0].trainable == [False, False, True] and plans[1].trainable == [True, True, True]
    b1, a1 = snaps[0], snaps[1]
    for k in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert torch.equal(b1[k], a1[k]), f"{k} changed while frozen"
    for k in ("1.weight", "1.bias", "1.running_mean", "5.weight"):
        assert not torch.equal(b1[k], a1[k]), f"{k} did not train while frozen"
    b2, a2 = snaps[2], snaps[3]
    assert all(not torch.equal(b2[k], a2[k]) for k in ("0.weight", "3.weight", "5.weight"))
    np.testing.assert_allclose(learn.recorder.lrs, plans[1].lrs)


def test_dry_run_changes_nothing_and_matches_real_run():
    learn = make_learner()
    learn.fit(1, 1e-3)  # optimizer state exists
    learn.freeze()
    w, opt_state = state_copy(learn.model), {k: v.clone() for k, v in learn.opt.state[learn.model[5].weight].items()}
    rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    flags = [p.requires_grad for p in learn.model.parameters()]
    learn.model.eval()
    with learn.dry_run() as runs:
        learn.fine_tune(2)
        learn.fit_flat_cos(1, slice(1e-4, 1e-3))
    assert [r.lrs.shape for r in runs] == [(8, 3), (16, 3), (8, 3)]
    assert all(torch.equal(w[k], v) for k, v in state_copy(learn.model).items())
    now = learn.opt.state[learn.model[5].weight]
    assert all(torch.equal(opt_state[k], now[k]) for k in opt_state)
    assert learn.model[0].weight not in learn.opt.state  # freeze cleared it before the dry run; still cleared
    assert torch.equal(rng[0], torch.get_rng_state()) and (rng[1] == np.random.get_state()[1]).all()
    assert rng[2] == random.getstate()
    assert flags == [p.requires_grad for p in learn.model.parameters()] and not learn.model.training
    assert len(learn.recorder.values) == 1  # the recorder still holds the earlier fit
    assert not learn.dry and not hasattr(learn, "plan_recorder")
    learn.fine_tune(2)
    np.testing.assert_array_equal(runs[1].lrs, learn.recorder.lrs)
    np.testing.assert_array_equal(runs[1].moms, learn.recorder.moms)


def test_dry_run_loads_no_batch():
    class Boom:
        def __len__(self):
            return 5

        def __iter__(self):
            raise AssertionError("a batch was loaded")

    learn = make_learner()
    learn.dls.train = Boom()
    with learn.dry_run() as runs:
        learn.fit_one_cycle(2, 1e-3)
    assert runs[0].lrs.shape == (10, 3) and learn.opt is None


def test_plot_sched_one_line_per_group(tmp_path):
    learn = make_learner()
    with learn.dry_run() as runs:
        learn.fit_one_cycle(1, slice(1e-5, 1e-3))
    fig = runs[0].plot_sched()
    learn.fit_one_cycle(1, slice(1e-5, 1e-3))
    fig2 = learn.recorder.plot_sched(log=True)
    for f in (fig, fig2):
        lr_ax, mom_ax = f.axes
        assert len(lr_ax.get_lines()) == 3 and len(mom_ax.get_lines()) == 3
        labels = [t.get_text() for t in lr_ax.get_legend().get_texts()]
        assert labels[0].startswith("group 0:") and labels[2].startswith("group 2 (head):")
        assert "peak 1e-05" in labels[0] and "peak 0.001" in labels[2]
    np.testing.assert_allclose(fig2.axes[0].get_lines()[1].get_ydata(), learn.recorder.lrs[:, 1])
    assert fig2.axes[0].get_yscale() == "log"
    fig2.savefig(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_plots_label_frozen_groups():
    learn = make_learner()
    learn.freeze()
    with learn.dry_run() as runs:
        learn.fine_tune(1)
    learn.fit_one_cycle(1, slice(1e-3))
    for fig in (runs[0].plot_sched(), learn.recorder.plot_sched()):
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert "(frozen)" in labels[0] and "(frozen)" in labels[1] and "(frozen)" not in labels[2]
    unfrozen = [t.get_text() for t in runs[1].plot_sched().axes[0].get_legend().get_texts()]
    assert not any("(frozen)" in t for t in unfrozen)


def test_plot_sched_shows_the_headline_fact():
    """Log LR axis by default, each group's requested peak in the legend (1e-2, not the 0.00999 a batch saw),
    frozen groups faded, and both phases of fine_tune on one figure."""
    learn = make_learner(dls=synth_dls(n_train=224, bs=32))  # 7 batches: no batch lands exactly on the peak
    learn.fit_one_cycle(1, slice(1e-4, 1e-2))
    assert learn.recorder.lrs[:, 2].max() < 1e-2
    fig = learn.recorder.plot_sched()
    assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_yscale() == "linear"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["group 0: peak 0.0001", "group 1: peak 0.001", "group 2 (head): peak 0.01"]
    lines = fig.axes[0].get_lines()[:3]
    lower = lines[0].get_ydata()
    assert lower.min() > 0 and lower.max() == pytest.approx(learn.recorder.lrs[:, 0].max())  # visible on log axis

    learn.fine_tune(1, base_lr=4e-3)
    both = learn.recorder.plot_sched(fits=2)
    ax = both.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "group 0 (frozen in fit 1): peak 0.0004 | 2e-05"  # slice(4e-3): stop/10
    assert labels[2] == "group 2 (head): peak 0.004 | 0.002"
    frozen_line = [ln for ln in ax.get_lines() if ln.get_color() == "C0"][0]  # group 0 in the frozen fit
    assert frozen_line.get_alpha() == pytest.approx(0.35)
    n1, n2 = len(learn.recorder.fits[-2].lrs), len(learn.recorder.fits[-1].lrs)
    assert sum(len(ln.get_ydata()) for ln in ax.get_lines() if ln.get_color() == "C2") == n1 + n2
    assert "(2 fits)" in ax.get_title()
    with pytest.raises(ValueError, match=r"fits is how many of the latest fits to draw"):
        learn.recorder.plot_sched(fits=0)


def test_dry_run_plan_of_fine_tune_plots_both_phases_and_names_exact_peaks():
    learn = make_learner()
    with learn.dry_run() as runs:
        learn.fine_tune(2)
    assert repr(runs[1]) == ("PlanRecord(2 epochs, 16 iterations, peak lr group 0: 1e-05, group 1: 0.0001, "
                             "group 2 (head): 0.001)")
    fig = runs.plot_sched()
    assert "planned" in fig.axes[0].get_title() and "(2 fits)" in fig.axes[0].get_title()
    assert sum(len(ln.get_ydata()) for ln in fig.axes[0].get_lines() if ln.get_color() == "C2") == 8 + 16


def test_after_a_dry_run_the_learner_saves_and_resumes_as_if_it_never_ran(tmp_path):
    learn = make_learner(path=tmp_path)
    before = {k: getattr(learn, k) for k in ("epoch", "n_epoch", "train_iter", "pct_train", "start_epoch")}
    with learn.dry_run():
        learn.fit_one_cycle(3)
    assert {k: getattr(learn, k) for k in before} == before
    learn.save("untrained")
    pos = torch.load(tmp_path / "models" / "untrained.pth", weights_only=True)["position"]
    assert pos["train_iter"] == 0 and pos["next_epoch"] == 0
    learn.fit_one_cycle(3, resume=True)  # resumes from the untrained checkpoint: all 3 epochs run
    assert len(learn.recorder.values) == 3


def test_groupnorm_freezes_and_decays_like_other_layers_as_fastai():
    from minifastai.groups import NORM_TYPES, no_wd_params, norm_params

    ftc = pytest.importorskip("fastai.torch_core")
    assert set(NORM_TYPES) - {nn.SyncBatchNorm} == set(ftc.norm_types)
    body = nn.Sequential(nn.Linear(8, 6), nn.GroupNorm(2, 6), nn.BatchNorm1d(6))
    model = nn.Sequential(body, nn.Linear(6, 2))
    gn, bn = body[1], body[2]
    assert id(gn.weight) not in norm_params(model) and id(bn.weight) in norm_params(model)
    assert id(gn.weight) not in no_wd_params(model) and id(gn.bias) in no_wd_params(model)  # a bias all the same
    learn = Learner(synth_dls(n_feat=8), model, nn.CrossEntropyLoss(),
                    splitter=lambda m: [list(m[0].parameters()), list(m[1].parameters())])
    learn.freeze()
    assert not gn.weight.requires_grad and not gn.bias.requires_grad  # fastai: GroupNorm is not in norm_types
    assert bn.weight.requires_grad and bn.bias.requires_grad  # BatchNorm keeps training (train_bn=True)
