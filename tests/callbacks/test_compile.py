"""learn.compile() and learn.to_channels_last(): freezing, lr_find, dry_run, checkpoints and exports keep working.

Compiling is slow: one test uses the real inductor backend (C++ on CPU), the others torch's `aot_eager`
backend, which traces forward and backward graphs the same way (AOTAutograd) without generating code.
"""
from __future__ import annotations

import os
import shutil
import warnings

import pytest
import torch
from helpers import make_learner, same_state, state_copy, synth_dls, three_group_model
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import EMA, DataLoaders, Learner, load_learner
from minifastai.callback.acceleration import CompiledModel, is_compiled

HAS_CXX = any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++", "clang++"))


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch.compiler.reset()
    yield
    torch.compiler.reset()


def twin_learners(**kwargs) -> tuple[Learner, Learner]:
    """Two learners with the same initial weights and data, no validation set (one compiled graph less)."""
    out = []
    for _ in range(2):
        torch.manual_seed(0)
        learn = make_learner(dls=synth_dls(n_train=128, bs=32), **kwargs)
        learn.dls.valid = None
        out.append(learn)
    return out[0], out[1]


def fit_both(learners, n: int = 1) -> None:
    for learn in learners:
        torch.manual_seed(1)  # the same shuffling for both
        learn.fit(n, 1e-2)


def _close(a: dict, b: dict, atol: float = 1e-5) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol) for k in a)


@pytest.mark.skipif(not HAS_CXX, reason="the inductor backend compiles C++ on CPU and no C++ compiler was found")
def test_inductor_a_group_unfrozen_after_compiling_trains_like_eager():
    eager, comp = twin_learners()
    start = state_copy(comp.model)
    for learn in (eager, comp):
        learn.freeze()
    comp.compile(backend="inductor")
    fit_both((eager, comp))
    assert torch.equal(comp.model[0].weight, start["0.weight"])  # frozen body: untouched
    assert not torch.equal(comp.model[5].weight, start["5.weight"])
    for learn in (eager, comp):
        learn.unfreeze()
    fit_both((eager, comp))
    assert not torch.equal(comp.model[0].weight, start["0.weight"])  # the unfrozen body trains
    assert _close(state_copy(comp.model), state_copy(eager.model), atol=1e-4)
    assert comp.compiled_model.resets == 1 and is_compiled(comp.model)


def test_freeze_unfreeze_lr_find_and_dry_run_on_a_compiled_learner():
    eager, comp = twin_learners()
    comp.compile(backend="aot_eager")
    for learn in (eager, comp):
        learn.freeze()
    fit_both((eager, comp))
    for learn in (eager, comp):
        learn.unfreeze()
    weights = state_copy(comp.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 10-batch sweep is too short for good suggestions: not the point here
        sugg = comp.lr_find(num_it=10, show_plot=False)
    assert sugg.valley > 0 and same_state(weights, state_copy(comp.model))
    with comp.dry_run() as runs:
        comp.fine_tune(1)
    assert [r.lrs.shape for r in runs] == [(4, 3), (4, 3)] and same_state(weights, state_copy(comp.model))
    fit_both((eager, comp))
    assert _close(state_copy(comp.model), state_copy(eager.model))
    assert comp.compiled_model.resets == 1  # freeze -> unfreeze; the sweep and the plan left the flags alone


def test_checkpoints_and_exports_hold_plain_names_and_load_uncompiled(tmp_path):
    learn = make_learner(path=tmp_path)
    learn.compile(backend="aot_eager")
    learn.fit(1, 1e-2)
    path = learn.save("compiled")
    saved = torch.load(path, weights_only=True)["model"]
    assert list(saved) == list(three_group_model().state_dict())  # no '_orig_mod.'
    plain = make_learner(path=tmp_path)
    plain.load("compiled")
    assert not is_compiled(plain.model) and same_state(state_copy(plain.model), state_copy(learn.model))
    x = learn.dls.valid.dataset.tensors[0]
    exported = load_learner(learn.export(), model=three_group_model())
    with torch.no_grad():
        assert torch.allclose(exported.model(x), learn.model.eval()(x), atol=1e-6)


def test_ema_of_a_compiled_model_computes_with_the_averaged_weights():
    learn = make_learner(cbs=EMA(decay=0.9))
    learn.compile(backend="aot_eager")
    learn.fit(1, 1e-2)
    x = learn.dls.valid.dataset.tensors[0]
    ema = learn.ema.ema_model.eval()
    with torch.no_grad():
        expected = torch.func.functional_call(three_group_model().eval(), ema.module.state_dict(), (x,))
        assert torch.allclose(ema(x), expected, atol=1e-6)
        assert not torch.allclose(ema(x), learn.model.eval()(x), atol=1e-4)


def test_bad_compile_arguments_and_wrapped_models_are_errors_that_change_nothing():
    learn = make_learner()
    cbs = list(learn.cbs)
    with pytest.raises(RuntimeError, match="Unrecognized mode=fastest"):
        learn.compile(mode="fastest")
    with pytest.raises(TypeError, match="unexpected keyword argument 'backnd'"):
        learn.compile(backnd="inductor")
    assert not is_compiled(learn.model) and learn.cbs == cbs
    wrapped = make_learner()
    wrapped.model = torch.compile(wrapped.model, backend="aot_eager")
    with pytest.raises(ValueError, match=r"already wrapped by torch.compile\(model\).*learn.compile\(\) instead"):
        wrapped.compile()
    assert not any(isinstance(c, CompiledModel) for c in wrapped.cbs)


def conv_learner(**kwargs) -> Learner:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    dls = DataLoaders(DataLoader(TensorDataset(x[:64], y[:64]), 16, shuffle=True),
                      DataLoader(TensorDataset(x[64:], y[64:]), 32), device="cpu")
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    return Learner(dls, model, nn.CrossEntropyLoss(), **kwargs)


def test_channels_last_converts_weights_and_inputs_and_trains_like_contiguous(tmp_path):
    from minifastai import Callback

    class Layout(Callback):
        order = 50

        def before_fit(self):
            self.seen = []

        def before_batch(self):
            self.seen.append(self.learn.xb[0].is_contiguous(memory_format=torch.channels_last))

    plain, fast = conv_learner(path=tmp_path), conv_learner(path=tmp_path)
    assert fast.to_channels_last() is fast
    assert fast.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    layout = Layout()
    for learn, cbs in ((plain, None), (fast, layout)):
        torch.manual_seed(1)
        learn.fit(2, 1e-2, cbs=cbs)
    assert layout.seen == [True] * 10  # 4 training batches and 1 validation batch per epoch
    assert _close(state_copy(fast.model), state_copy(plain.model), atol=1e-5)
    exported = load_learner(fast.export(), model=conv_learner().model)  # loads into a contiguous model
    assert not exported.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert _close(state_copy(exported.model), state_copy(fast.model), atol=0)


def test_channels_last_with_compile_and_a_warning_for_models_without_convolutions():
    learn = conv_learner().to_channels_last().compile(backend="aot_eager")
    learn.fit(1, 1e-2)
    assert learn.model[0].weight.is_contiguous(memory_format=torch.channels_last) and is_compiled(learn.model)
    with pytest.warns(UserWarning, match="no 4-D \\(convolution\\) weights"):
        make_learner().to_channels_last()
