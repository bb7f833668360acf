"""lr_find: the sweep, divergence, suggestions, the result, the plot, and that the learner is left untouched."""
import copy
import random
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import (
    Callback,
    CSVLogger,
    DataLoaders,
    Learner,
    LRSweep,
    SuggestedLRs,
    accuracy,
    minimum,
    slide,
    steep,
    valley,
)

# short sweeps on a tiny model often end before the loss falls: the messages are tested on their own below
pytestmark = pytest.mark.filterwarnings("ignore:lr_find. ")

# ---- small fixtures (a 3-group model with BatchNorm on a separable problem) -------------------------
def _dls(n_train=128, bs=16, seed=0, shuffle=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + 32, 6, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    return DataLoaders(DataLoader(TensorDataset(x[:n_train], y[:n_train]), bs, shuffle=shuffle),
                       DataLoader(TensorDataset(x[n_train:], y[n_train:]), 32), device="cpu")


def _model():
    return nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(),
                         nn.Linear(12, 2))


def _split(m):
    return [[*m[0].parameters(), *m[1].parameters()], list(m[3].parameters()), list(m[5].parameters())]


def _learner(groups=3, **kw):
    torch.manual_seed(0)
    splitter = _split if groups == 3 else (lambda m: [list(m.parameters())])
    return Learner(_dls(**kw), _model(), nn.CrossEntropyLoss(), splitter=splitter, metrics=accuracy)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _assert_same_opt(sd_a, sd_b):
    assert sd_a["param_groups"] == sd_b["param_groups"]
    assert sd_a["state"].keys() == sd_b["state"].keys()
    for p in sd_a["state"]:
        for k, v in sd_a["state"][p].items():
            assert torch.equal(v, sd_b["state"][p][k]), (p, k)


def _recorder_snapshot(rec):
    return dict(values=copy.deepcopy(rec.values), losses=rec.raw_losses.clone(), smooth=rec.losses.clone(),
                lrs=rec.lrs.copy(), moms=rec.moms.copy(), epoch_ends=list(rec.epoch_ends),
                names=list(getattr(rec, "metric_names", [])))


def _assert_same_recorder(a, b):
    assert a["values"] == b["values"] and a["epoch_ends"] == b["epoch_ends"] and a["names"] == b["names"]
    for k in ("losses", "smooth", "lrs", "moms"):
        assert np.array_equal(a[k], b[k]), k


# ---- the sweep ---------------------------------------------------------------------------------------
def test_sweep_is_exponential_cycles_the_loader_and_sweeps_every_group():
    learn = _learner()  # 8 training batches per epoch, 30 batches swept: the loader cycles
    learn.lr_find(start_lr=1e-6, end_lr=1e-1, num_it=30, stop_div=False, show_plot=False)
    sweep = learn.recorder.lr_sweep
    expected = 1e-6 * (1e-1 / 1e-6) ** (np.arange(30) / 30)
    assert sweep.lrs.shape == (30, 3) and len(sweep.losses) == 30
    for g in range(3):  # like fastai, every layer group gets the swept LR
        np.testing.assert_allclose(sweep.lrs[:, g], expected, rtol=1e-12)
    assert sweep.stop_reason == "ran all 30 batches"
    assert sweep.trim == (3, 25)  # points num_it//10 to 5 before the end


def test_smoothed_loss_is_debiased_ema_of_the_raw_losses():
    learn = _learner()
    learn.lr_find(num_it=20, stop_div=False, show_plot=False)
    sweep = learn.recorder.lr_sweep
    avg, expected = 0.0, []
    for i, v in enumerate(sweep.losses, 1):
        avg = 0.98 * avg + 0.02 * v
        expected.append(avg / (1 - 0.98**i))
    np.testing.assert_allclose(sweep.smooth_losses, expected, rtol=1e-12)
    assert sweep.smooth_losses[0] == pytest.approx(sweep.losses[0])


def test_slice_start_and_end_give_one_sweep_per_group():
    learn = _learner()
    learn.lr_find(start_lr=slice(1e-7, 1e-5), end_lr=slice(1e-3, 1e-1), num_it=10, stop_div=False,
                  show_plot=False)
    lrs = learn.recorder.lr_sweep.lrs
    np.testing.assert_allclose(lrs[0], [1e-7, 1e-6, 1e-5])
    np.testing.assert_allclose(lrs[5], [1e-7 * 1e4**0.5, 1e-6 * 1e4**0.5, 1e-5 * 1e4**0.5])


def test_stops_when_smoothed_loss_exceeds_4x_best():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(64)
    dls = DataLoaders(DataLoader(TensorDataset(x, y[:, None]), 8, shuffle=True), None, device="cpu")
    learn = Learner(dls, nn.Linear(4, 1), nn.MSELoss(), opt_func=partial(torch.optim.SGD, momentum=0.9))
    learn.lr_find(num_it=100, show_plot=False)
    sweep = learn.recorder.lr_sweep
    n = len(sweep.losses)
    assert 20 < n < 100 and sweep.stop_reason.startswith(f"stopped at batch {n} of 100")
    assert sweep.smooth_losses[-1] > 4 * sweep.smooth_losses[:-1].min()
    assert np.all(sweep.smooth_losses[:-1] <= 4 * np.minimum.accumulate(sweep.smooth_losses[:-1]))
    learn.lr_find(num_it=100, stop_div=False, show_plot=False)
    assert 50 < len(learn.recorder.lr_sweep.losses) <= 100


def test_stops_on_nan_and_suggestions_ignore_non_finite_points():
    calls = []

    def loss_nan_late(pred, y):  # a loss that turns NaN after 40 batches
        calls.append(1)
        loss = nn.functional.cross_entropy(pred, y)
        return loss * float("nan") if len(calls) > 40 else loss

    torch.manual_seed(0)
    learn = Learner(_dls(), _model(), loss_nan_late)
    res = learn.lr_find(num_it=100, show_plot=False)
    sweep = learn.recorder.lr_sweep
    assert len(sweep.losses) == 41 and "NaN" in sweep.stop_reason
    assert sweep.trim == (10, 36) and np.all(np.isfinite(sweep.trimmed()[1]))
    assert np.isfinite(res.valley)
    calls.clear()
    learn.lr_find(num_it=60, stop_div=False, show_plot=False)
    sweep = learn.recorder.lr_sweep
    assert len(sweep.losses) == 60 and sweep.trim == (6, 40)  # trimmed at the first NaN


# ---- the learner is left exactly as it was -------------------------------------------------------
@pytest.mark.parametrize("groups", [1, 3])
def test_after_fitting_everything_is_restored(groups):
    learn = _learner(groups=groups)
    learn.fit_one_cycle(1, 1e-2)
    if groups == 3:
        learn.freeze()
    weights, opt_sd = _state(learn.model), copy.deepcopy(learn.opt.state_dict())
    flags = [p.requires_grad for p in learn.model.parameters()]
    modes = [m.training for m in learn.model.modules()]
    rec = _recorder_snapshot(learn.recorder)
    position = (learn.epoch, learn.train_iter, learn.n_epoch)
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    opt = learn.opt

    res = learn.lr_find(num_it=40, show_plot=False)

    assert np.isfinite(res.valley)
    _assert_same_state(weights, _state(learn.model))
    assert learn.opt is opt
    _assert_same_opt(opt_sd, learn.opt.state_dict())
    assert [p.requires_grad for p in learn.model.parameters()] == flags
    assert [m.training for m in learn.model.modules()] == modes
    _assert_same_recorder(rec, _recorder_snapshot(learn.recorder))
    assert (learn.epoch, learn.train_iter, learn.n_epoch) == position
    assert torch.equal(torch.get_rng_state(), rng[0])
    np_now = np.random.get_state()
    assert np_now[0] == rng[1][0] and np.array_equal(np_now[1], rng[1][1]) and np_now[2:] == rng[1][2:]
    assert random.getstate() == rng[2]
    assert all(p.grad is None for p in learn.model.parameters())


def test_before_fitting_the_optimizer_stays_none_and_nothing_changes():
    learn = _learner()
    weights, rec = _state(learn.model), _recorder_snapshot(learn.recorder)
    learn.lr_find(show_plot=False)
    assert learn.opt is None
    _assert_same_state(weights, _state(learn.model))
    _assert_same_recorder(rec, _recorder_snapshot(learn.recorder))
    assert 50 < len(learn.recorder.lr_sweep.losses) <= 100


def test_training_after_lr_find_matches_training_without_it():
    a, b = _learner(), _learner()
    for learn in (a, b):
        torch.manual_seed(1)
        learn.fit(1, 1e-2)
        if learn is a:
            learn.lr_find(num_it=30, show_plot=False)
        learn.fit_one_cycle(1, 1e-2)  # same shuffling, optimizer state and RNG with or without lr_find
    _assert_same_state(_state(a.model), _state(b.model))
    assert np.array_equal(a.recorder.losses, b.recorder.losses)


def test_loader_generator_state_is_restored():
    g = torch.Generator().manual_seed(3)
    dls = _dls()
    dls.train = DataLoader(dls.train.dataset, 16, shuffle=True, generator=g)
    torch.manual_seed(0)
    learn = Learner(dls, _model(), nn.CrossEntropyLoss())
    before = g.get_state()
    learn.lr_find(num_it=20, show_plot=False)
    assert torch.equal(g.get_state(), before)


def test_restores_even_when_the_sweep_fails():
    def bad_loss(pred, y):
        if len(seen) == 5:
            raise RuntimeError("boom")
        seen.append(1)
        return nn.functional.cross_entropy(pred, y)

    seen: list = []
    learn = _learner()
    learn.loss_func = bad_loss
    weights = _state(learn.model)
    with pytest.raises(RuntimeError, match="boom"):
        learn.lr_find(show_plot=False)
    _assert_same_state(weights, _state(learn.model))
    assert learn.opt is None and learn.progress in learn.cbs


def test_no_output_and_callbacks_back_in_place(capsys):
    learn = _learner()
    cbs = list(learn.cbs)
    learn.lr_find(num_it=10, show_plot=False)
    assert capsys.readouterr().out == ""
    assert learn.cbs == cbs and learn.progress is cbs[-1]


def test_dry_run_shows_the_sweep_without_training():
    learn = _learner()
    weights = _state(learn.model)
    with learn.dry_run() as runs:
        assert learn.lr_find(num_it=50) is None
    assert len(runs) == 1 and runs[0].lrs.shape == (50, 3)
    np.testing.assert_allclose(runs[0].lrs[:, 0], 1e-7 * 1e8 ** (np.arange(50) / 50))
    _assert_same_state(weights, _state(learn.model))
    assert learn.recorder.lr_sweep is None  # a planned sweep measures nothing


# ---- suggestion functions (fastai's algorithms) --------------------------------------------------
LRS = 10.0 ** np.linspace(-6, 0, 30)


def test_minimum_is_a_tenth_of_the_lowest_point():
    assert minimum([1.0, 2.0, 3.0, 4.0], [3.0, 1.0, 2.0, 5.0]) == pytest.approx(0.2)


def test_steep_is_the_left_end_of_the_steepest_fall_per_log_lr():
    losses = np.ones(30)
    losses[12:] -= 0.1 * np.arange(18)  # falls 0.1 per point from index 12 on ...
    losses[20] -= 0.5  # ... and 0.6 from point 19 to 20
    assert steep(LRS, losses) == pytest.approx(LRS[19])


def test_valley_follows_the_longest_decreasing_run():
    # the longest decreasing subsequence is 5, 4, 3, 2, 1 (length 5, ending at index 5);
    # fastai starts the valley 5 points before its end and steps in int(5/3) + int(5/6) = 1 point
    lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
    assert valley(lrs, [5, 6, 4, 3, 2, 1, 7, 8]) == pytest.approx(1e-4)
    # a long valley: 4 flat points, then 20 falling ones, then a rise
    losses = np.r_[np.full(4, 2.0) + [0, 0.01, 0.02, 0.03], np.linspace(1.9, 0.5, 20), np.linspace(0.6, 3, 6)]
    # longest decreasing run ends at index 23 with length 21 (2.03 then the 20 falling points):
    # index 23 - 21 + int(7) + int(3.5) = 12
    assert valley(LRS, losses) == pytest.approx(LRS[12])


def test_valley_of_a_rising_curve_is_the_first_point():
    assert valley(LRS[:10], np.arange(10.0)) == pytest.approx(LRS[0])


def test_slide_walks_left_while_the_gradients_disagree():
    losses = np.r_[np.zeros(20), 0.1 * np.arange(1, 11)]  # flat, then rising from index 20 on
    # gradient: 0 up to 18, 0.05 at 19, 0.1 from 20; the walk stops when both ends are flat (right=18, left=3)
    assert slide(LRS, losses) == pytest.approx(LRS[4])
    assert slide(LRS, losses, adjust_value=0.5) == pytest.approx(LRS[4] / 2)
    assert slide(LRS[:20], np.linspace(2, 1, 20)) == pytest.approx(LRS[4])  # equal gradients: lr_diff back
    assert slide(LRS[:5], np.linspace(2, 1, 5)) == pytest.approx(LRS[0])  # shorter than lr_diff


def test_suggestion_input_errors():
    with pytest.raises(ValueError, match="same length"):
        valley([1e-3, 1e-2], [1.0])
    with pytest.raises(ValueError, match="at least 2 points"):
        steep([1e-3], [1.0])


# ---- the result, messages, the plot ----------------------------------------------------------------
def test_result_names_each_suggestion_and_unpacks():
    learn = _learner()
    res = learn.lr_find(suggest_funcs=(valley, minimum, steep, slide, partial(slide, lr_diff=5)),
                        show_plot=False)
    assert isinstance(res, SuggestedLRs) and isinstance(res, tuple)
    assert res._fields == ("valley", "minimum", "steep", "slide", "slide_2")
    v, mi, st, sl, sl2 = res
    sweep = learn.recorder.lr_sweep
    lrs, losses = sweep.trimmed()
    assert res.valley == v == valley(lrs, losses) and res.minimum == mi == minimum(lrs, losses)
    assert res.steep == st == steep(lrs, losses) and sl2 == slide(lrs, losses, lr_diff=5)
    assert sweep.suggestions == res.as_dict()
    assert lrs[0] <= v <= lrs[-1]
    assert repr(res).startswith("SuggestedLRs(valley=")


def test_default_is_valley_and_fastai_style_functions_work():
    learn = _learner()
    assert learn.lr_find(num_it=30, show_plot=False)._fields == ("valley",)

    def fastai_style(lrs, losses, num_it):  # fastai's signature: tensors in, (lr, (x, y)) out
        assert isinstance(lrs, torch.Tensor) and num_it == 50
        return float(lrs[0]), (float(lrs[0]), float(losses[0]))

    res = learn.lr_find(num_it=50, suggest_funcs=fastai_style, show_plot=False)
    assert res.fastai_style == pytest.approx(learn.recorder.lr_sweep.trimmed()[0][0])


def test_plain_message_when_the_loss_never_falls():
    torch.manual_seed(0)
    learn = Learner(_dls(), _model(), lambda pred, y: 1.0 + 0.0 * pred.sum())
    with pytest.warns(UserWarning, match="no clear valley: the smoothed loss never fell"):
        res = learn.lr_find(num_it=50, show_plot=False)
    assert learn.recorder.lr_sweep.note.startswith("lr_find: no clear valley")
    assert np.isfinite(res.valley)


def test_no_message_for_a_normal_sweep(recwarn):
    learn = _learner()
    learn.lr_find(show_plot=False)
    assert learn.recorder.lr_sweep.note is None
    assert not [w for w in recwarn if "lr_find" in str(w.message)]


def test_plot_marks_every_suggestion_and_returns_the_figure():
    learn = _learner()
    with pytest.raises(ValueError, match="run learn.lr_find"):
        learn.recorder.plot_lr_find()
    res = learn.lr_find(suggest_funcs=(valley, minimum, steep, slide), show_plot=True)
    fig = learn.recorder.plot_lr_find()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for name, lr in res.as_dict().items():
        assert f"{name}: {lr:.2e}" in labels
        marker = [ln for ln in ax.lines if ln.get_label() == f"{name}: {lr:.2e}"][0]
        assert marker.get_xdata()[0] == pytest.approx(lr)
    assert ax.get_xscale() == "log"
    n = len(learn.recorder.lr_sweep.losses)
    assert len(ax.lines[1].get_xdata()) == n - 5  # skip_end=5


def test_argument_errors():
    learn = _learner()
    with pytest.raises(ValueError, match="at least 6 batches"):
        learn.lr_find(num_it=3)
    with pytest.raises(ValueError, match="start_lr must be below end_lr"):
        learn.lr_find(start_lr=1.0, end_lr=1e-3)
    with pytest.raises(TypeError, match="suggest_funcs must hold functions"):
        learn.lr_find(suggest_funcs=("valley",))
    with pytest.raises(ValueError, match="slice"):
        learn.lr_find(start_lr=slice(1e-7, 1e-5, 2))


def test_lr_sweep_is_exported():
    assert LRSweep.__module__ == "minifastai.callback.lr_find"


def test_callback_states_are_restored():
    class Counter(Callback):  # a callback with checkpointable state, like a GradScaler's scale
        def __init__(self):
            self.seen = 0

        def after_batch(self):
            self.seen += 1

        def state_dict(self):
            return {"seen": self.seen}

        def load_state_dict(self, state):
            self.seen = state["seen"]

    learn = _learner()
    counter = Counter()
    learn.add_cb(counter)
    learn.fit(1)
    assert counter.seen == 8 + 1  # 8 training batches, 1 validation batch
    learn.lr_find(num_it=20, show_plot=False)
    assert counter.seen == 9


def test_the_csv_log_of_the_previous_fit_is_kept():
    learn = _learner()
    learn.add_cb(CSVLogger("history.csv"))
    learn.fit(2)
    log = (learn.path / "history.csv").read_text()
    assert len(log.splitlines()) == 3
    learn.lr_find(num_it=20, show_plot=False)
    assert (learn.path / "history.csv").read_text() == log and learn.csv_logger in learn.cbs


def test_fastai_signatures_of_suggestions_and_lrfinder_defaults(tmp_path):
    """fastai's `valley(lrs, losses, num_it)` call form, `SuggestionMethod`, `annealer`, and `LRFinder()` with
    fastai's defaults (1e-7 to 10) used directly in `fit`, which puts the weights and optimizer back."""
    from minifastai import LRFinder, SuggestionMethod, annealer
    from minifastai.test_utils import synth_learner

    lrs, losses = np.geomspace(1e-6, 1.0, 40), np.r_[np.linspace(3, 1, 30), np.linspace(1, 4, 10)]
    assert valley(lrs, losses, 40) == valley(lrs, losses) == SuggestionMethod.Valley(lrs, losses)
    assert slide(lrs, losses, 40) == slide(lrs, losses)  # the third argument is num_it, not lr_diff
    assert minimum(lrs, losses, 40) == pytest.approx(lrs[29] / 10)

    @annealer
    def sched_half(start, end, pos):
        return start + (end - start) * pos / 2

    assert sched_half(0.0, 4.0)(0.5) == pytest.approx(1.0)

    learn = synth_learner(path=tmp_path)
    before = [p.detach().clone() for p in learn.model.parameters()]
    finder = LRFinder(num_it=20)
    learn.fit(3, cbs=finder)
    lrs_seen = learn.recorder.lrs[:, 0]
    assert len(lrs_seen) == 20 and lrs_seen[0] == pytest.approx(1e-7)
    np.testing.assert_allclose(lrs_seen, [1e-7 * (10 / 1e-7) ** (i / 20) for i in range(20)], rtol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))
    assert learn.opt.state_dict()["state"] == {}
    with pytest.raises(ValueError, match="num_it=0"):
        LRFinder(num_it=0)
