"""EMA: the average equals torch's AveragedModel EMA, validation and export use it, checkpoints resume it."""
from __future__ import annotations

import warnings
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from _ema_script import N_EPOCH, column, run
from _train_script import KILL_BATCH, KILL_EPOCH
from helpers import (
    TESTS,
    NoSync,
    count_host_reads,
    make_learner,
    same_state,
    sigkill,
    start_script,
    state_copy,
    synth_dls,
    three_group_model,
    wait_for_file,
)
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from minifastai import Callback, GradientAccumulation, SaveModelCallback, load_learner
from minifastai.callback.ema import EMA
from minifastai.persist import with_checksum

SCRIPT = TESTS / "_ema_script.py"


class Reference(Callback):
    """torch's own AveragedModel EMA, updated after every optimizer step, and the trained weights then."""

    order = 100

    def __init__(self, decay: float) -> None:
        self.decay, self.steps = decay, 0

    def before_fit(self) -> None:
        self.avg = AveragedModel(self.learn.model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)

    def after_step(self) -> None:
        self.avg.update_parameters(self.learn.model)
        self.steps += 1
        self.trained = state_copy(self.learn.model)


def _close(a: dict, b: dict, floats_only: bool = False) -> bool:
    keys = [k for k in a if a[k].is_floating_point()] if floats_only else list(a)
    return all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6, rtol=1e-5) for k in keys)


def valid_loss(model: torch.nn.Module, dl) -> float:
    model.eval()
    with torch.no_grad():
        tot = sum(F.cross_entropy(model(x), y, reduction="sum") for x, y in dl)
    return float(tot) / len(dl.dataset)


def test_average_equals_torchs_ema_and_validation_uses_it():
    learn = make_learner(cbs=EMA(decay=0.9))
    ref = Reference(0.9)
    learn.fit_one_cycle(2, 1e-2, cbs=ref)
    ema, avg = learn.ema.ema_model.module.state_dict(), ref.avg.module.state_dict()
    assert learn.ema.n_updates == ref.steps == 16 and int(learn.ema.ema_model.n_averaged) == 16
    assert _close(ema, avg, floats_only=True)  # torch's own update garbles integer buffers: compare floats
    assert int(ema["1.num_batches_tracked"]) == int(learn.model.state_dict()["1.num_batches_tracked"]) == 16
    assert same_state(state_copy(learn.model), ref.trained)  # learn.model holds the trained weights
    assert not _close(ema, ref.trained, floats_only=True)
    # the epoch's validation ran on the averaged weights (norm statistics included)
    vl = column(learn, "valid_loss")[-1]
    assert vl == pytest.approx(valid_loss(learn.ema.ema_model.module, learn.dls.valid), rel=1e-5)
    assert vl != pytest.approx(valid_loss(learn.model, learn.dls.valid), rel=1e-3)
    # and so do validate, get_preds and predict after the fit; the model is left as trained
    assert learn.validate()[0] == pytest.approx(vl, rel=1e-5)
    preds, _ = learn.get_preds()
    x = learn.dls.valid.dataset.tensors[0]
    with torch.no_grad():
        assert torch.allclose(preds, learn.ema.ema_model.module.eval()(x).softmax(-1), atol=1e-6)
    assert same_state(state_copy(learn.model), ref.trained)


def test_formula_with_decay_half():
    """ema_0 = w_1 (the weights after the first step), then ema_k = 0.5 * ema_(k-1) + 0.5 * w_k."""
    learn = make_learner(cbs=EMA(decay=0.5), dls=synth_dls(n_train=96, bs=32))  # 3 steps

    class Weights(Callback):
        order = 100

        def before_fit(self):
            self.w = []

        def after_step(self):
            self.w.append(self.learn.model[5].weight.detach().clone())

    spy = Weights()
    learn.fit(1, 1e-1, cbs=spy)
    w = spy.w
    expected = 0.5 * (0.5 * w[0] + 0.5 * w[1]) + 0.5 * w[2]
    assert torch.allclose(learn.ema.ema_model.module[5].weight, expected, atol=1e-7)


def test_validate_on_ema_false_validates_the_trained_weights():
    learn = make_learner(cbs=EMA(decay=0.9, validate_on_ema=False))
    learn.fit(1, 1e-2)
    assert column(learn, "valid_loss")[-1] == pytest.approx(valid_loss(learn.model, learn.dls.valid), rel=1e-5)


def test_export_writes_the_averaged_weights(tmp_path):
    learn = make_learner(cbs=EMA(decay=0.9), path=tmp_path)
    learn.fit(1, 1e-2)
    trained = state_copy(learn.model)
    path = learn.export()
    assert same_state(state_copy(learn.model), trained)
    loaded = load_learner(path, model=three_group_model())
    assert _close(state_copy(loaded.model), learn.ema.ema_model.module.state_dict())
    assert not _close(state_copy(loaded.model), trained, floats_only=True)


def test_skipped_steps_do_not_update_and_lr_find_leaves_the_average_alone():
    learn = make_learner(cbs=EMA(decay=0.9), dls=synth_dls(n_train=256, bs=32))
    acc = GradientAccumulation(n_acc=64)  # 8 batches of 32: a step every second batch
    learn.fit(1, 1e-2, cbs=acc)
    assert acc.n_steps == 4 and learn.ema.n_updates == 4
    before = state_copy(learn.ema.ema_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 10-batch sweep is too short for good suggestions: not the point here
        learn.lr_find(num_it=10, show_plot=False)
    assert learn.ema.n_updates == 4 and same_state(before, state_copy(learn.ema.ema_model))


def test_no_per_batch_sync(monkeypatch):
    counts = count_host_reads(monkeypatch)

    def syncs(n_train: int) -> int:
        learn = make_learner(dls=synth_dls(n_train=n_train, n_valid=64, bs=8), cbs=EMA(),
                             opt_func=partial(torch.optim.SGD, momentum=0.9))
        counts["n"] = 0
        learn.fit_one_cycle(2, 1e-3)
        return counts["n"]

    assert syncs(64) == syncs(512)


def test_bad_decay_and_a_replaced_model_are_clear_errors_that_change_nothing():
    learn = make_learner()
    cbs = list(learn.cbs)
    with pytest.raises(ValueError, match=r"decay is the weight of the old average, a number in \[0, 1\]"):
        learn.add_cb(EMA(decay=1.5))
    assert learn.cbs == cbs
    learn.add_cb(EMA())
    learn.fit(1, 1e-3)
    learn.model = torch.nn.Sequential(torch.nn.Linear(8, 2))
    learn.layer_groups = [list(learn.model.parameters())]
    learn.opt = None
    before = state_copy(learn.model)
    with pytest.raises(ValueError, match="no longer match the EMA's copy"):
        learn.fit(1, 1e-3)
    assert same_state(before, state_copy(learn.model))


@pytest.mark.slow
def test_sigkill_then_resume_continues_the_average_exactly(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    proc = start_script(SCRIPT, out, "kill")
    full = run(tmp_path / "full", "full")  # the uninterrupted run, in this process while the other one starts
    wait_for_file(proc, out / "ready")
    sigkill(proc)
    state = torch.load(out / "models" / f"model_{KILL_EPOCH - 1}.pth", weights_only=True)["callbacks"]["ema"]
    assert state["n_updates"] == KILL_EPOCH * 8 and set(state) == {"ema", "n_updates", "decay"}
    resumed = start_script(SCRIPT, out, "resume")
    log, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, log
    res = torch.load(out / "result_resume.pt", weights_only=True)
    assert res["n_updates"] == full["n_updates"] == N_EPOCH * 8
    assert _close(res["model"], full["model"]) and _close(res["ema"], full["ema"])
    assert res["valid_loss"] == pytest.approx(full["valid_loss"][KILL_EPOCH:], abs=1e-6)
    assert KILL_BATCH < 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_updates_without_host_device_sync_and_validates_on_the_average():
    from torch.utils.data import DataLoader, TensorDataset

    dls = synth_dls(n_train=256, bs=32)
    dls.train = DataLoader(TensorDataset(*(t.cuda() for t in dls.train.dataset.tensors)), 32)
    dls.valid = DataLoader(TensorDataset(*(t.cuda() for t in dls.valid.dataset.tensors)), 32)
    dls.device = torch.device("cuda")
    learn = make_learner(dls=dls, cbs=EMA(decay=0.9), opt_func=torch.optim.SGD)
    learn.fit(1, 1e-2)  # warm-up: one-off syncs (optimizer state)
    learn.fit(2, 1e-2, cbs=NoSync())
    assert learn.ema.n_updates == 24 and learn.ema.ema_model.n_averaged.device.type == "cuda"
    x, y = dls.valid.dataset.tensors
    with torch.no_grad():
        expected = F.cross_entropy(learn.ema.ema_model.module.eval()(x), y)
    assert column(learn, "valid_loss")[-1] == pytest.approx(float(expected), rel=1e-4)


def _avg(learn) -> dict:
    return {k: v.clone() for k, v in learn.ema.ema_model.module.state_dict().items()}


def test_load_brings_back_the_files_average_with_its_weights(tmp_path):
    learn = make_learner(cbs=EMA(decay=0.9), path=tmp_path)
    learn.fit(1, 1e-2)
    learn.save("a")
    saved_avg, saved_n, saved_valid = _avg(learn), learn.ema.n_updates, learn.validate()
    learn.fit(1, 1e-2)
    assert not _close(_avg(learn), saved_avg, floats_only=True) and learn.ema.n_updates == 2 * saved_n
    learn.load("a")
    assert same_state(_avg(learn), saved_avg) and learn.ema.n_updates == saved_n
    assert learn.validate() == pytest.approx(saved_valid, abs=1e-6)  # validated on the file's average
    loaded = load_learner(learn.export(), model=three_group_model())
    assert same_state(state_copy(loaded.model), saved_avg)  # export writes the file's average, not the newer one
    learn.fit(1, 1e-2)  # and the next fit continues it (the deferred restore at before_fit changes nothing)
    assert learn.ema.n_updates == 2 * saved_n


def test_a_file_without_an_average_resets_it_and_a_bad_one_changes_nothing(tmp_path):
    plain = make_learner(path=tmp_path)
    plain.fit(1, 1e-2)
    plain.save("plain")
    learn = make_learner(cbs=EMA(decay=0.9), path=tmp_path)
    learn.fit(1, 1e-2)
    learn.load("plain")  # a model trained without EMA: its weights, and no stale average
    assert learn.ema.ema_model is None and learn.ema.n_updates == 0
    assert learn.validate() == pytest.approx(plain.validate(), abs=1e-6)
    assert same_state(state_copy(load_learner(learn.export(), model=three_group_model()).model),
                      state_copy(plain.model))
    learn.fit(1, 1e-2)
    learn.save("mine")
    st = torch.load(tmp_path / "models" / "mine.pth", weights_only=True)
    st.pop("checksum")
    st["callbacks"]["ema"]["ema"]["module.0.weight"] = torch.zeros(3, 3)  # a crafted file: wrong shape
    torch.save(with_checksum(st), tmp_path / "models" / "bad.pth")
    before, avg = state_copy(learn.model), _avg(learn)
    with pytest.raises(ValueError, match=r"callback 'ema' in .*bad.pth does not fit.*module.0.weight"):
        learn.load("bad")
    assert same_state(state_copy(learn.model), before) and same_state(_avg(learn), avg)


def test_savemodel_best_brings_back_the_best_epochs_average(tmp_path):
    class Worse(Callback):  # valid loss rises after epoch 1, so epoch 1 is the best
        order = 100

        def after_validate(self) -> None:
            if self.epoch >= 2:
                self.learn.recorder.valid_result[0] += 10.0 * self.epoch

    seen = {}

    class Grab(Callback):
        order = 101

        def after_epoch(self) -> None:
            seen[self.epoch] = _avg(self.learn)

    learn = make_learner(cbs=[EMA(decay=0.9), SaveModelCallback(), Worse(), Grab()], path=tmp_path)
    learn.fit(3, 1e-2)
    assert [r[1] for r in learn.recorder.values].index(min(r[1] for r in learn.recorder.values)) == 1
    assert same_state(_avg(learn), seen[1]) and not _close(_avg(learn), seen[2], floats_only=True)
