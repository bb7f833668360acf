"""Hostile probes, round 3 (issue 21): what broke, made a clear error raised before any state changes, or made
correct. Trained weights are never silently replaced (EMA after a failed pass); values read from a checkpoint
never choose where minifastai writes or deletes; learning rates are checked before they reach the optimizer;
cancellations at the first epoch do not crash."""
from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_learner, same_state, state_copy, synth_dls, three_group_model
from torch.utils.data import DataLoader, TensorDataset

from minifastai import (
    Callback,
    CancelEpochException,
    CancelTrainException,
    CancelValidException,
    DataLoaders,
    Learner,
    SaveModelCallback,
    layer_decay,
)
from minifastai.callback.ema import EMA
from minifastai.groups import LayerDecay
from minifastai.persist import DamagedFileError, with_checksum


def quiet(f, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()):
        return f(*a, **k)


# ---- 1. trained weights are never silently replaced ---------------------------------------------------
class FailingLoader:
    """The validation set, raising at its second batch."""

    def __init__(self, dl) -> None:
        self.dl = dl

    def __iter__(self):
        for i, b in enumerate(self.dl):
            if i == 1:
                raise RuntimeError("disk read failed")
            yield b

    def __len__(self) -> int:
        return len(self.dl)


class RaiseInValidation(Callback):
    def after_batch(self) -> None:
        if not self.training:
            raise RuntimeError("a metric broke")


@pytest.mark.parametrize("how", ["get_preds", "validate", "predict-like"])
def test_a_failed_pass_with_ema_puts_the_trained_weights_back(how):
    learn = make_learner(cbs=EMA(decay=0.9))
    quiet(learn.fit, 2, 1e-2)
    trained = state_copy(learn.model)
    avg = {k: v.clone() for k, v in learn.ema.ema_model.module.state_dict().items()}
    assert not same_state(trained, avg)  # the average differs: a leak would show
    with pytest.raises(RuntimeError, match="disk read failed|a metric broke"):
        if how == "get_preds":
            learn.get_preds(dl=FailingLoader(learn.dls.valid))
        elif how == "validate":
            learn.validate(cbs=RaiseInValidation())
        else:
            learn.get_preds(dl=[next(iter(learn.dls.valid))], cbs=RaiseInValidation())
    assert same_state(state_copy(learn.model), trained)  # not the average
    preds, _ = learn.get_preds()  # and the next pass still validates on the average
    with torch.no_grad():
        learn.ema.ema_model.module.eval()
        x = torch.cat([b[0] for b in learn.dls.valid])
        torch.testing.assert_close(preds, torch.softmax(learn.ema.ema_model.module(x), -1))
    assert same_state(state_copy(learn.model), trained)


# ---- 2. nothing read from a checkpoint chooses a path ---------------------------------------------------
def _crafted(src: Path, dst: Path, cb: str, **changes) -> None:
    st = torch.load(src, weights_only=True)
    st.pop("checksum")
    st["callbacks"][cb].update(changes)
    torch.save(with_checksum(st), dst)


@pytest.mark.parametrize("bad", [["x.pth"], ["../../victim"], [True], [-1], "0"])
def test_saved_epochs_from_a_file_cannot_name_what_keep_deletes(tmp_path, bad):
    victim = tmp_path / "x.pth"
    victim.write_bytes(b"precious")
    learn = make_learner(path=tmp_path)
    quiet(learn.fit, 2, 1e-3, cbs=SaveModelCallback(every_epoch=True, keep=1))
    models = tmp_path / "models"
    _crafted(models / "model_1.pth", models / "model_1.pth", "save_model", saved_epochs=bad)  # the latest one
    with torch.no_grad():
        for p in learn.model.parameters():
            p.add_(1.0)  # so that a load would show
    before = state_copy(learn.model)
    with pytest.raises(RuntimeError, match=r"callback 'save_model' in .*model_1.pth does not fit it .*saved_epochs "
                                         r"must be a list of epoch numbers"):
        quiet(learn.fit, 4, 1e-3, cbs=SaveModelCallback(every_epoch=True, keep=1), resume=True)
    assert same_state(state_copy(learn.model), before)  # refused before the weights were loaded
    assert sorted(p.name for p in models.iterdir() if p.suffix == ".pth") == ["model_1.pth"]
    assert victim.read_bytes() == b"precious"


def test_tensorboard_run_folder_from_a_file_is_a_name_under_runs(tmp_path):
    pytest.importorskip("tensorboard")
    from minifastai.callback.loggers import TensorBoardCallback

    learn = make_learner(path=tmp_path)
    quiet(learn.fit, 1, 1e-3, cbs=[TensorBoardCallback(), SaveModelCallback(every_epoch=True)])
    models = tmp_path / "models"
    outside = tmp_path.parent / f"{tmp_path.name}_elsewhere"
    for i, change in enumerate([dict(run_name="../../elsewhere"), dict(run_name=None, run_dir=str(outside)),
                                dict(run_name=None, run_dir="relative/dir"), dict(run_name=7)]):
        _crafted(models / "model_0.pth", models / f"c{i}.pth", "tensor_board", **change)
        fresh = make_learner(path=tmp_path, cbs=[TensorBoardCallback(), SaveModelCallback(every_epoch=True)])
        before = state_copy(fresh.model)
        with pytest.raises(ValueError, match=r"callback 'tensor_board' in .*c\d.pth does not fit it .*cannot choose "
                                             r"where TensorBoard writes"):
            fresh.load(f"c{i}")
        assert same_state(state_copy(fresh.model), before)
    assert not outside.exists() and not (Path.cwd() / "relative").exists()
    # an older file's run_dir inside <path>/runs still resumes into the same folder
    run = next((tmp_path / "runs").iterdir())
    _crafted(models / "model_0.pth", models / "old.pth", "tensor_board", run_name=None, run_dir=str(run))
    again = make_learner(path=tmp_path, cbs=[TensorBoardCallback()])
    again.load("old")
    quiet(again.fit, 1, 1e-3, start_epoch=0)
    assert list((tmp_path / "runs").iterdir()) == [run]


# ---- 4. learning rates are checked before they reach the optimizer -----------------------------------------
@pytest.mark.parametrize("lr, exc, match", [
    (lambda: layer_decay(float("nan"), 0.8), ValueError, r"layer_decay's lr is nan"),
    (lambda: layer_decay(-1e-3, 0.8), ValueError, r"layer_decay's lr is -0.001"),
    (lambda: layer_decay(1e-3, 0), ValueError, r"decay must be in \(0, 1\]"),
    (lambda: LayerDecay(float("nan"), 0.8), ValueError, r"layer_decay's lr is nan"),  # built directly
    (lambda: LayerDecay(1e-3, -0.5), ValueError, r"decay must be in \(0, 1\]"),
    (lambda: layer_decay(1e-3, 1e-200), ValueError, r"gives layer group 0 of 3 an LR of 0 .*underflows"),
    (lambda: ["a"], TypeError, r"learning rate 0 must be a number, got 'a'"),
    (lambda: [1e-3, "x", 1e-2], TypeError, r"learning rate 1 must be a number, got 'x'"),
    (lambda: torch.ones(2, 2) * 1e-3, TypeError, r"learning rate is a 2-d Tensor of shape \(2, 2\)"),
    (lambda: 1e300, ValueError, r"learning rate is 1e\+300, more than float32 holds"),
    (lambda: slice(1e-5, 1e300), ValueError, r"slice stop is 1e\+300, more than float32 holds"),
])
def test_bad_learning_rates_are_refused_before_the_fit_changes_anything(lr, exc, match):
    learn = make_learner()
    quiet(learn.fit, 1, 1e-3)
    before, opt_state = state_copy(learn.model), copy.deepcopy(learn.opt.state_dict())
    with pytest.raises(exc, match=match):
        learn.fit_one_cycle(1, lr())
    assert same_state(state_copy(learn.model), before)
    assert str(learn.opt.state_dict()) == str(opt_state)


def test_numpy_and_tensor_decays_are_numbers():
    want = layer_decay(1e-3, 0.5).values(3)
    assert layer_decay(1e-3, np.float32(0.5)).values(3) == want == [2.5e-4, 5e-4, 1e-3]
    assert layer_decay(1e-3, torch.tensor(0.5)).values(3) == want
    assert layer_decay(np.float64(1e-3), 0.5).values(3) == want
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\]"):
        layer_decay(1e-3, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\]"):
        layer_decay(1e-3, True)


# ---- 6. cancelling at the first epoch ----------------------------------------------------------------------
def _canceller(event: str, exc: type[Exception], epoch: int) -> Callback:
    class Cancel(Callback):
        order = -50  # before the Recorder and the progress display have seen the event

    def hook(self) -> None:
        if self.epoch == epoch:
            raise exc()
    setattr(Cancel, event, hook)
    return Cancel()


@pytest.mark.parametrize("event, exc, row", [
    ("before_epoch", CancelEpochException, "all"),
    ("before_train", CancelTrainException, "train"),
    ("before_train", CancelEpochException, "all"),
    ("before_validate", CancelValidException, "valid"),
])
@pytest.mark.parametrize("epoch", [0, 1])
def test_cancelling_a_phase_gives_a_nan_row_not_a_crash(event, exc, row, epoch):
    learn = make_learner()
    out = quiet_out(learn.fit, 3, 1e-3, cbs=_canceller(event, exc, epoch))
    values = learn.recorder.values
    assert len(values) == 3 and all(len(v) == 3 for v in values)
    cancelled = values[epoch]
    if row in ("all", "valid"):
        assert np.isnan(cancelled[1:]).all()  # no validation result: not the previous epoch's
    else:
        assert not np.isnan(cancelled[1:]).any()
    if row in ("all", "train") and epoch == 0:
        assert np.isnan(cancelled[0])  # no batch trained yet
    assert not np.isnan(values[2]).any()  # later epochs train and validate
    lines = [ln.split() for ln in out.splitlines()]
    assert len(lines) == 4 and all(len(ln) == len(lines[0]) for ln in lines)  # the table stays aligned


def quiet_out(f, *a, **k) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        f(*a, **k)
    return buf.getvalue()


# ---- 7. schedules and splitters that silently went wrong ---------------------------------------------------
def test_resuming_with_another_n_epoch_warns(tmp_path):
    learn = make_learner(path=tmp_path)
    quiet(learn.fit_one_cycle, 3, 1e-3, cbs=SaveModelCallback(every_epoch=True))
    (tmp_path / "models" / "model_2.pth").unlink()  # as if killed during the last epoch
    with pytest.warns(UserWarning, match=r"resuming a fit of 3 epochs as one of n_epoch=5: the schedule is stretched"):
        quiet(make_learner(path=tmp_path).fit_one_cycle, 5, 1e-3, resume=True)


def test_a_splitter_returning_generators_is_read_once():
    def gen_splitter(m):
        return (p for p in (m[:3].parameters(), m[3].parameters(), m[5].parameters()))
    learn = Learner(synth_dls(), three_group_model(), torch.nn.CrossEntropyLoss(), splitter=gen_splitter)
    assert [len(g) for g in learn.layer_groups] == [4, 2, 2]
    for bad, match in [(lambda m: None, r"the splitter returned NoneType \(None\); return a list of parameter lists"),
                       (lambda m: [m[0].weight], r"layer group 0 returned by the splitter is Parameter"),
                       (lambda m: [list(m.parameters()), 3], r"layer group 1 returned by the splitter is int")]:
        with pytest.raises(ValueError, match=match):
            Learner(synth_dls(), three_group_model(), torch.nn.CrossEntropyLoss(), splitter=bad)


# ---- 9. crafted tensors and other versions' files ----------------------------------------------------------
@pytest.mark.parametrize("kind", ["sparse", "meta"])
def test_sparse_and_meta_tensors_in_a_checkpoint_are_refused_naming_the_file(tmp_path, kind):
    learn = make_learner(path=tmp_path)
    learn.save("good")
    st = torch.load(tmp_path / "models" / "good.pth", weights_only=True)
    shape = st["model"]["0.weight"].shape
    st["model"]["0.weight"] = (torch.sparse_coo_tensor(torch.zeros(2, 1, dtype=torch.long), torch.ones(1),
                                                       (200_000, 200_000)) if kind == "sparse"
                               else torch.empty(shape, device="meta"))
    st["checksum"] = {"crc32": "0"}  # never reached: the tensor is refused before anything is hashed
    torch.save(st, tmp_path / "models" / "bad.pth")
    before = state_copy(learn.model)
    with pytest.raises(DamagedFileError, match=rf"bad.pth is malformed: tensor file\['model'\]\['0.weight'\] is a "
                                               rf"{'torch.sparse_coo' if kind == 'sparse' else 'meta'} tensor"):
        learn.load("bad")
    assert same_state(state_copy(learn.model), before)


def test_learn_load_warns_about_another_versions_file(tmp_path):
    learn = make_learner(path=tmp_path)
    learn.save("mine")
    st = torch.load(tmp_path / "models" / "mine.pth", weights_only=True)
    st.pop("checksum")
    st["manifest"] = {**st["manifest"], "minifastai": "0.0.1"}
    torch.save(with_checksum(st), tmp_path / "models" / "old.pth")
    with pytest.warns(UserWarning, match=r"old.pth was written with minifastai 0.0.1 \(now .*\); it usually loads"):
        learn.load("old")


# ---- 11. messages that name the problem --------------------------------------------------------------------
class DetachedLoss(torch.nn.Module):
    def forward(self, pred, y):
        return torch.nn.functional.cross_entropy(pred, y).detach()


def test_unhelpful_messages_now_name_the_problem():
    for decay in ("0.99", None, True):
        with pytest.raises(ValueError, match=r"EMA's decay is the weight of the old average, a number in \[0, 1\]"):
            EMA(decay=decay)

    class Loud(Callback):
        order = "high"
    learn = make_learner()
    with pytest.raises(TypeError, match=r"Loud.order is 'high': it must be a number"):
        learn.add_cb(Loud())
    assert not any(isinstance(c, Loud) for c in learn.cbs)
    with pytest.raises(ValueError, match=r"the loss does not depend on the model's trainable parameters .*Detached"):
        quiet(Learner(synth_dls(), three_group_model(), DetachedLoss()).fit, 1, 1e-3)
    frozen = make_learner()
    for p in frozen.model.parameters():
        p.requires_grad_(False)
    before = state_copy(frozen.model)
    with pytest.raises(ValueError, match=r"nothing to train: every parameter of the model is frozen"):
        quiet(frozen.fit, 1, 1e-3)
    weights = [k for k, _ in frozen.model.named_parameters()]  # BatchNorm's statistics saw the first batch
    assert all(torch.equal(before[k], frozen.model.state_dict()[k]) for k in weights)
    assert quiet(make_learner().lr_find, num_it=np.int64(20), show_plot=False).valley > 0
    with pytest.raises(TypeError, match=r"num_it=2.5: lr_find's number of batches must be a whole number"):
        make_learner().lr_find(num_it=2.5, show_plot=False)
    empty = DataLoader(TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)), 4)
    with pytest.raises(ValueError, match=r"get_preds: the loader yielded no batches"):
        make_learner().get_preds(dl=empty)


def test_to_channels_last_on_a_conv3d_model_warns_and_trains():
    x, y = torch.randn(8, 1, 4, 4, 4), torch.randint(0, 2, (8,))
    dl = DataLoader(TensorDataset(x, y), 4)
    model = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(16, 2))
    learn = Learner(DataLoaders(dl, dl, device="cpu"), model, torch.nn.CrossEntropyLoss())
    with pytest.warns(UserWarning, match=r"no 4-D \(convolution\) weights"):
        learn.to_channels_last()
    quiet(learn.fit, 1, 1e-3)
    assert learn.model[0].weight.ndim == 5 and np.isfinite(learn.recorder.values[-1][0])


class PeerDies(torch.nn.Module):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.lin, self.error = torch.nn.Linear(8, 2), error

    def forward(self, x):
        raise self.error


@pytest.mark.parametrize("error, blamed", [
    (torch.distributed.DistBackendError("[gloo] Connection closed by peer [127.0.0.1]:29500"), False),
    (RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer"), False),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 8x2)"), True),
])
def test_a_dead_peer_is_not_reported_as_the_model_failing(error, blamed):
    learn = Learner(synth_dls(), PeerDies(error), torch.nn.CrossEntropyLoss())
    with pytest.raises(type(error)) as info:
        quiet(learn.fit, 1, 1e-3)
    text = str(info.value) + " ".join(getattr(info.value, "__notes__", []))
    assert ("the model failed on a batch" in text) == blamed
    assert ("another process of the distributed run failed or stopped answering" in text) == (not blamed)
