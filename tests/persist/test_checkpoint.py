"""Checkpoints (atomic writes, contents, damaged files), SaveModelCallback, callback state, safe export."""
from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_learner, same_state, state_copy, three_group_model
from torch import nn

from minifastai import Callback, SaveModelCallback, load_learner
from minifastai.persist import atomic_save, safe_load, with_checksum


class Counter(Callback):
    """A callback with state: counts the epochs it has seen."""

    def __init__(self, extra: object = None) -> None:
        self.n, self.extra = 0, extra

    def after_epoch(self) -> None:
        self.n += 1

    def state_dict(self) -> dict:
        return {"n": self.n} if self.extra is None else {"n": self.n, "extra": self.extra}

    def load_state_dict(self, state: dict) -> None:
        self.n = state["n"]


def _opt_tensors(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [v for s in opt.state_dict()["state"].values() for v in s.values() if isinstance(v, torch.Tensor)]


def test_save_returns_the_path_and_load_restores_weights_optimizer_and_rng():
    learn = make_learner()
    learn.fit(1, 1e-2)
    path = learn.save("ck")
    assert path == Path("models/ck.pth") and path.is_file()
    weights, opt = state_copy(learn.model), [t.clone() for t in _opt_tensors(learn.opt)]
    draws = (torch.rand(3), np.random.rand(3))
    learn.fit(1, 1e-2)  # moves weights, optimizer state and RNG on
    assert not same_state(weights, state_copy(learn.model))
    learn.load("ck")
    assert same_state(weights, state_copy(learn.model))
    assert all(torch.equal(a, b) for a, b in zip(opt, _opt_tensors(learn.opt)))
    assert torch.equal(torch.rand(3), draws[0]) and np.array_equal(np.random.rand(3), draws[1])


def test_a_loader_with_its_own_generator_gets_its_state_back():
    learn = make_learner()
    gen = torch.Generator().manual_seed(3)
    learn.dls.train = torch.utils.data.DataLoader(learn.dls.train.dataset, 32, shuffle=True, generator=gen)
    learn.save("ck")
    order = [b[1].tolist() for b in learn.dls.train]
    learn.load("ck")
    assert [b[1].tolist() for b in learn.dls.train] == order


def test_checkpoint_holds_position_rng_callback_state_and_loads_with_weights_only():
    learn = make_learner(cbs=Counter())
    learn.fit(2, 1e-2)
    st = torch.load(learn.save("ck"), weights_only=True)
    assert {"model", "opt", "position", "rng", "callbacks", "manifest"} <= set(st)
    n_iter = len(learn.dls.train)
    assert st["position"] == {"epoch": 1, "iter": learn.iter, "train_iter": 2 * n_iter, "n_iter": n_iter,
                              "n_epoch": 2, "pct_train": 1.0, "next_epoch": 2, "epoch_boundary": True}
    assert set(st["rng"]) == {"torch", "cuda", "numpy", "random", "loaders"}
    assert st["callbacks"]["counter"] == {"n": 2}
    assert st["callbacks"]["recorder"]["count"] == 2 * n_iter
    assert st["manifest"]["torch"] == torch.__version__.split("+")[0]


def test_failed_write_leaves_the_previous_file_intact_and_no_temporary_file():
    path = atomic_save(with_checksum({"model": {"w": torch.ones(2)}}), "models/a.pth")
    with pytest.raises(Exception, match="pickle|lambda"):
        atomic_save({"model": {"w": torch.zeros(2)}, "bad": lambda x: x}, path)  # fails half-way through
    assert torch.equal(safe_load(path)["model"]["w"], torch.ones(2))
    assert sorted(p.name for p in Path("models").iterdir()) == ["a.pth"]


def test_truncated_checkpoint_is_an_error_naming_it_and_the_previous_one_is_intact():
    learn = make_learner()
    learn.fit(2, 1e-2, cbs=SaveModelCallback(every_epoch=True))
    good = torch.load("models/model_0.pth", weights_only=True)["model"]
    bad = Path("models/model_1.pth")
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with pytest.raises(RuntimeError, match=re.escape(str(bad)) + ".*truncated"):
        learn.load("model_1")
    learn.load("model_0")
    assert same_state(good, state_copy(learn.model))
    with pytest.raises(RuntimeError, match=r"latest checkpoint models/model_1\.pth.*resume from model_0\.pth"):
        learn.fit(2, 1e-2, resume=True)


def test_checkpoint_of_another_model_is_an_error_naming_the_file():
    learn = make_learner()
    learn.save("ck")
    other = make_learner()
    other.model[0] = nn.Linear(8, 4)
    with pytest.raises(ValueError, match=r"checkpoint models/ck\.pth does not fit this model"):
        other.load("ck")


def test_save_model_keeps_the_best_epoch_and_loads_it_at_the_end(capsys):
    learn = make_learner()
    learn.fit(4, 0.3, cbs=SaveModelCallback())  # a high LR so the valid loss moves both ways
    losses = [row[1] for row in learn.recorder.values]
    best = int(np.argmin(losses))
    st = torch.load("models/model.pth", weights_only=True)
    assert st["position"]["epoch"] == best and st["position"]["next_epoch"] == best + 1
    assert st["callbacks"]["save_model"]["best"] == pytest.approx(min(losses))
    assert same_state(st["model"], state_copy(learn.model))
    assert "Better model found at epoch 0 with valid_loss value" in capsys.readouterr().out


def test_save_model_on_a_metric_keeps_the_highest_value():
    learn = make_learner()
    cb = SaveModelCallback(monitor="accuracy")
    learn.fit(3, 1e-2, cbs=cb)
    assert cb.best == max(row[2] for row in learn.recorder.values)


def test_save_model_every_epoch_with_keep_and_at_end():
    learn = make_learner()
    learn.fit(4, 1e-2, cbs=SaveModelCallback(every_epoch=True, keep=2))
    assert sorted(p.name for p in Path("models").glob("*.pth")) == ["model_2.pth", "model_3.pth"]
    assert Path("models/latest_checkpoint.txt").read_text().strip() == "model_3.pth"
    learn.fit(1, 1e-2, cbs=SaveModelCallback(fname="final", at_end=True))
    assert same_state(torch.load("models/final.pth", weights_only=True)["model"], state_copy(learn.model))


def test_save_model_with_an_unknown_monitor_lists_the_choices():
    learn = make_learner()
    with pytest.raises(ValueError, match=r"'valid_acc'.*\['train_loss', 'valid_loss', 'accuracy'\]"):
        learn.fit(1, cbs=SaveModelCallback(monitor="valid_acc"))


def test_callback_state_comes_back_in_the_next_fit():
    learn = make_learner(cbs=Counter())
    learn.fit(2, 1e-2)
    learn.save("ck")
    other = make_learner(cbs=Counter())
    other.load("ck")
    assert other.counter.n == 0  # handed over when the next fit starts, after the callback's own before_fit
    other.fit(1, 1e-2)
    assert other.counter.n == 3
    other.fit(1, 1e-2)
    assert other.counter.n == 4  # only once


def test_callback_state_that_cannot_be_loaded_safely_is_refused_at_save():
    learn = make_learner(cbs=Counter(extra=object()))
    with pytest.raises(TypeError, match=r"Counter\.state_dict\(\)\['extra'\] is a object"):
        learn.save("ck")
    assert not Path("models/ck.pth").exists()


# ---- export --------------------------------------------------------------------------------------
def test_export_of_a_custom_model_loads_with_weights_only_and_the_model_passed_in():
    learn = make_learner()
    learn.fit(1, 1e-2)
    path = learn.export()
    assert path == Path("export.pkl")  # fastai's default name
    st = torch.load(path, weights_only=True)
    assert st["manifest"]["minifastai"] and st["manifest"]["torch"] == torch.__version__.split("+")[0]
    with pytest.raises(ValueError, match=r"custom model: pass it, e\.g\. load_learner\('export\.pkl', model="):
        load_learner(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same versions: no warning
        loaded = load_learner(path, model=three_group_model())
    x = torch.randn(5, 8)
    learn.model.eval()
    assert torch.allclose(loaded.model(x), learn.model(x))
    _, idx, probs = loaded.predict(x[0])
    assert torch.allclose(probs, torch.softmax(learn.model(x[:1]), -1)[0])


def test_manifest_mismatch_warns():
    learn = make_learner()
    path = learn.export("exp.pth")
    st = torch.load(path, weights_only=True)
    st["manifest"]["torch"] = "0.0.1"
    torch.save(with_checksum(st), path)  # an export written by another version, checksum and all
    with pytest.warns(UserWarning, match=r"exp\.pth was written with torch 0\.0\.1 \(now "):
        load_learner(path, model=three_group_model())


def test_export_refuses_what_weights_only_loading_could_not_read():
    learn = make_learner()
    learn.export_info = {"module": "minifastai.vision", "mean": np.zeros(3)}
    with pytest.raises(TypeError, match=r"learn\.export_info\['mean'\] is a ndarray"):
        learn.export()
    assert not Path("export.pkl").exists()
    learn.export_info = {"module": "minifastai.vision", "n": np.int64(3)}  # numpy scalars become numbers
    assert torch.load(learn.export("exp.pkl"), weights_only=True)["builder"]["n"] == 3
    copy.deepcopy(learn.export_info)
