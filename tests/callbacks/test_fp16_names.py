"""fastai's names in `callback.fp16`: `AMPMode`, `MixedPrecision(amp_mode=...)`, `to_fp16` / `to_bf16` / `to_fp32`
returning the learner, and the overflow checks `test_overflow` / `grad_overflow` (fastai itself is not imported
here: its import patches torch classes for the rest of the process).

The CPU versions of fastai's `#|cuda` notebook cells (tests/fastai_nbs/test_18_callback_fp16.py) run here: the
model's output is float16 / bfloat16 under autocast, float32 once `MixedPrecision` has cast it, and training helps.
"""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from minifastai.callback import fp16
from minifastai.callback.core import Callback
from minifastai.callback.fp16 import AMPMode, MixedPrecision
from minifastai.optimizer import SGD
from minifastai.test_utils import synth_learner

EMULATED = pytest.mark.filterwarnings("ignore:to_fp16\\(\\) on a CPU:RuntimeWarning")


class OutputDtypes(Callback):
    """Records the dtype of the model's (first) output before and after `MixedPrecision.after_pred`."""

    def __init__(self) -> None:
        self.raw: set[torch.dtype] = set()
        self.cast: set[torch.dtype] = set()
        self.weights: set[torch.dtype] = set()

    def after_pred(self) -> None:
        first = self.learn.pred[0] if isinstance(self.learn.pred, tuple) else self.learn.pred
        (self.raw if self.order < MixedPrecision.order else self.cast).add(first.dtype)
        self.weights.update(p.dtype for p in self.learn.model.parameters())


def probes() -> tuple[OutputDtypes, OutputDtypes]:
    before, after = OutputDtypes(), OutputDtypes()
    before.order, after.order = MixedPrecision.order - 1, MixedPrecision.order + 1
    return before, after


def two_linear_learner(cbs: list) -> object:
    """fastai's notebook learner for these cells, on the CPU: two `Linear(1, 1)`, SGD without momentum, 2 groups."""
    torch.manual_seed(99)
    learn = synth_learner(cbs=cbs)
    learn.model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1))
    learn.opt_func = partial(SGD, mom=0.0)
    learn.splitter = lambda m: [list(m[0].parameters()), list(m[1].parameters())]
    return learn


# ---- AMPMode and MixedPrecision(amp_mode=...) ------------------------------------------------------------------
def test_ampmode_has_fastais_members_and_values():
    assert [(m.name, m.value) for m in AMPMode] == [("FP16", "fp16"), ("BF16", "bf16")]
    assert AMPMode("bf16") is AMPMode.BF16 and AMPMode.FP16.dtype == torch.float16


@pytest.mark.parametrize("mode", [AMPMode.BF16, "bf16", torch.bfloat16])
def test_mixed_precision_amp_mode_picks_bfloat16(mode):
    mp = MixedPrecision(amp_mode=mode)
    assert mp.dtype == torch.bfloat16 and mp.amp_mode is AMPMode.BF16 and not mp.use_scaler
    default = MixedPrecision()
    assert default.dtype == torch.float16 and default.amp_mode is AMPMode.FP16 and default.use_scaler


@pytest.mark.parametrize("mode", ["fp8", "BF-16", torch.float32, 16, None])
def test_mixed_precision_rejects_an_unknown_mode(mode):
    with pytest.raises(ValueError, match=r"torch.float16 or torch.bfloat16 .*'fp16'.*'bf16'"):
        MixedPrecision(amp_mode=mode)


@pytest.mark.parametrize("kwargs, match", [
    ({"init_scale": 0}, "init_scale"), ({"init_scale": float("inf")}, "init_scale"),
    ({"growth_factor": 1.0}, "growth_factor"), ({"backoff_factor": 1.5}, "backoff_factor"),
    ({"growth_interval": 0}, "growth_interval"), ({"growth_interval": 2.5}, "growth_interval"),
])
def test_bad_scaler_arguments_fail_at_once_and_leave_the_learner_as_it_was(kwargs, match):
    learn = synth_learner().to_bf16()
    cbs, mp = list(learn.cbs), learn.mixed_precision
    with pytest.raises(ValueError, match=match):
        learn.to_fp16(**kwargs)
    assert learn.cbs == cbs and learn.mixed_precision is mp and mp.amp_mode is AMPMode.BF16
    with pytest.raises(ValueError, match=match):
        MixedPrecision(**kwargs)


def test_to_fp16_to_bf16_to_fp32_return_the_learner():
    learn = synth_learner()
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert learn.to_fp16() is learn
    assert learn.mixed_precision.amp_mode is AMPMode.FP16
    assert learn.to_bf16() is learn and learn.mixed_precision.amp_mode is AMPMode.BF16
    assert sum(isinstance(c, MixedPrecision) for c in learn.cbs) == 1
    assert learn.to_fp32() is learn and not any(isinstance(c, MixedPrecision) for c in learn.cbs)


# ---- fastai's #|cuda cells, on the CPU -------------------------------------------------------------------------
def test_bf16_cell_on_cpu_model_output_is_bfloat16_then_cast_to_float32():
    before, after = probes()
    learn = two_linear_learner([MixedPrecision(amp_mode=AMPMode.BF16), before, after])
    learn.fit(3)
    assert before.raw == {torch.bfloat16} and after.cast == {torch.float32}
    assert before.weights == {torch.float32}  # the weights stay float32 (autocast casts per op)
    assert learn.recorder.values[-1][-1] < learn.recorder.values[0][-1]


@EMULATED
def test_fp16_cell_on_cpu_model_output_is_float16_then_cast_to_float32():
    before, after = probes()
    learn = two_linear_learner([MixedPrecision, before, after])
    learn.fit(3)
    assert before.raw == {torch.float16} and after.cast == {torch.float32}
    assert learn.recorder.values[-1][-1] < learn.recorder.values[0][-1]


@EMULATED
def test_fp16_multioutput_cell_on_cpu():
    class MultiOutputModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear1, self.linear2 = nn.Linear(1, 1), nn.Linear(1, 1)

        def forward(self, x):
            return self.linear1(x), self.linear2(x)

    def multioutputloss(pred, val):
        return ((val - pred[0]).abs() + 0.5 * (val - pred[1]).abs()).sum()

    before, after = probes()
    torch.manual_seed(99)
    learn = synth_learner(cbs=[MixedPrecision, before, after])
    learn.model = MultiOutputModel()
    learn.opt_func = partial(SGD, mom=0.0)
    learn.splitter = lambda m: [list(m.linear1.parameters()), list(m.linear2.parameters())]
    learn.loss_func = multioutputloss
    learn.fit(3)
    assert before.raw == {torch.float16} and after.cast == {torch.float32}
    assert learn.recorder.values[-1][-1] < learn.recorder.values[0][-1]


def test_training_inside_an_enclosing_autocast_uses_the_updated_weights():
    """torch drops its cached low-precision weight copies only when the outermost autocast exits; inside an
    enclosing one (a user's `with torch.autocast(...)`, or one a failed fastai fit left entered) each batch must
    still see the weights of the last step, not the copies cached at the first batch."""
    def losses(enclosing: bool) -> list:
        learn = two_linear_learner([MixedPrecision(amp_mode=AMPMode.BF16)])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enclosing):
            learn.fit(3)
        return [float(v) for row in learn.recorder.values for v in row]

    inside = losses(True)
    assert inside[-1] < inside[1]  # the valid loss of the last epoch is lower than the first's
    assert inside == pytest.approx(losses(False))


# ---- test_overflow / grad_overflow -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [None, float("inf"), float("-inf"), float("nan")])
def test_test_overflow_finds_inf_and_nan(dtype, bad):
    x = torch.randn(3, 4).to(dtype)
    if bad is not None:
        x[1, 2] = bad
    assert fp16.test_overflow(x) is (bad is not None)


def test_test_overflow_rejects_a_non_tensor():
    with pytest.raises(TypeError, match="takes a tensor, got list"):
        fp16.test_overflow([1.0, float("inf")])


def test_grad_overflow_checks_every_group_and_skips_missing_grads():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model(torch.randn(4, 2)).sum().backward()
    pgs = [list(model[0].parameters()), list(model[1].parameters())]
    frozen = nn.Linear(2, 2)  # no gradients at all
    assert not fp16.grad_overflow(pgs + [list(frozen.parameters())])
    assert not fp16.grad_overflow(tuple(p for p in pg) for pg in pgs)  # any iterables of parameters
    model[1].weight.grad[0, 0] = float("nan")
    assert fp16.grad_overflow(pgs) and not fp16.grad_overflow(pgs[:1])


@pytest.mark.parametrize("pgs", [[nn.Parameter(torch.ones(2))], [[1.0, 2.0]], [3]])
def test_grad_overflow_rejects_what_is_not_parameter_groups(pgs):
    with pytest.raises(TypeError, match=r"parameter groups: lists of parameters"):
        fp16.grad_overflow(pgs)
