"""fastai's nbs/18_callback.fp16.ipynb test cells (the torch.amp notebook of fastai 2.8.12, with `AMPMode`,
`MixedPrecision`, `to_fp16`, `to_bf16`), as fastai wrote them.

Almost all of them are `#|cuda` cells (or call `.cuda()`): on a machine without a GPU they fail on fastai
itself and are skipped on both. The legacy `NonNativeMixedPrecision` cells (`convert_network`, `get_master`, ...)
are also a deliberate difference (`LEGACY`), for a machine with a GPU; `test_overflow` runs on the CPU. Cells that
read names an earlier cell made repeat that cell's code first (`GET_MASTER`, ...). The CPU versions of the
`MixedPrecision` cells run in tests/callbacks/test_fp16_names.py.
"""
from __future__ import annotations

import pytest
import torch
from fastai_nbs.nbcells import Cell, cases, run_cell

IMPORTS = """\
from fastai.basics import *
from fastai.callback.progress import *
from fastai.callback.fp16 import *
from fastai.test_utils import *
"""

# the notebook's own `#|export` import of the Apex helpers (in its namespace, not in `fastai.callback.fp16.__all__`)
FP16_UTILS = """\
from fastai.fp16_utils import convert_network, model_grads_to_master_grads, master_params_to_model_params
"""

CUDA = "" if torch.cuda.is_available() else "needs CUDA (#|cuda); no GPU here"
CALLS_CUDA = "" if torch.cuda.is_available() else "needs CUDA (its model is moved with `.cuda()`); no GPU here"
# where a GPU runs these cells: the legacy (pre torch.amp) path is not part of minifastai
LEGACY = ("minifastai has only torch.amp mixed precision (`MixedPrecision`, `to_fp16`, `to_bf16`): fastai's legacy "
          "`NonNativeMixedPrecision`, `ModelToHalf` and their helpers (`convert_network`, `get_master`, "
          "`to_master_grads`, `to_model_params`) are not provided")

TEST_CBS = '''
class FP16TestCallback(Callback):
    "Asserts that predictions are `float16` values"
    order = 9

    def after_pred(self):
        assert listify(flatten(self.pred))[0].dtype == torch.float16


class BF16TestCallback(Callback):
    "Asserts that predictions are `bfloat16` values"
    order = 9

    def after_pred(self):
        assert listify(flatten(self.pred))[0].dtype == torch.bfloat16
'''

GET_MASTER = FP16_UTILS + """
learn = synth_learner()
learn.model = convert_network(
    nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)), torch.float16
).cuda()
learn.splitter = lambda m: [list(m[0].parameters()), list(m[1].parameters())]
learn.opt = learn.opt_func(learn.splitter(learn.model), learn.lr)
model_p, master_p = get_master(learn.opt)
test_eq(len(model_p), 2)  # 2 pqrqm groups
test_eq(len(master_p), 2)
for pg1, pg2 in zip(model_p, master_p):
    test_eq([p.float() for p in pg1], pg2)  # Same values but different types
    for p in pg1:
        assert p.dtype == torch.float16
"""

GET_MASTER_FLAT = """
# Flattened version
model_pf, master_pf = get_master(learn.opt, flat_master=True)
test_eq(len(model_pf), 2)  # 2 pqrqm groups
test_eq(len(master_pf), 2)
for pg1, pg2 in zip(model_pf, master_pf):
    test_eq(len(pg2), 1)  # One flattened tensor
    test_eq(
        [p.float().squeeze() for p in pg1], [p for p in pg2[0]]
    )  # Same values but different types
    for p in pg1:
        assert p.dtype == torch.float16
"""

TO_MASTER_GRADS = """
xb, yb = learn.dls.one_batch()
pred = learn.model.cuda()(xb.cuda().half())
loss = F.mse_loss(pred, yb.cuda().half())
loss.backward()
to_master_grads(model_p, master_p)
to_master_grads(model_pf, master_pf, flat_master=True)
test_eq(
    [[p.grad.float() for p in pg] for pg in model_p],
    [[p.grad for p in pg] for pg in master_p],
)
test_eq(
    [[p.grad.float().squeeze() for p in pg] for pg in model_pf],
    [[p for p in pg[0].grad] for pg in master_pf],
)
xb.shape
"""

MASTER_GRADS = GET_MASTER + GET_MASTER_FLAT + TO_MASTER_GRADS

NON_NATIVE_TEST_CBS = '''
class TestBeforeMixedPrecision(Callback):
    order = -55

    def before_fit(self):
        test_eq(first(self.model.parameters()).dtype, torch.float32)

    def before_batch(self):
        test_eq(self.x.dtype, torch.float32)

    def after_pred(self):
        test_eq(self.pred.dtype, torch.float16)

    def after_loss(self):
        self.tst_loss = self.learn.loss_grad.detach().clone()

    def before_step(self):
        self.learn.has_overflown = grad_overflow(
            self.non_native_mixed_precision.model_pgs
        )
        self.grads = [p.grad.data.clone() for p in self.model.parameters()]
        self.old_params = [p.data.clone() for p in self.model.parameters()]

    def after_cancel_step(self):
        assert self.has_overflown


class TestAfterMixedPrecision(Callback):
    order = 65

    def before_fit(self):
        test_eq(first(self.model.parameters()).dtype, torch.float16)

    def after_fit(self):
        test_eq(first(self.model.parameters()).dtype, torch.float32)

    def before_batch(self):
        test_eq(self.x.dtype, torch.float16)

    def after_pred(self):
        test_eq(self.pred.dtype, torch.float32)

    def before_backward(self):
        loss_scale = (
            self.non_native_mixed_precision.loss_scale if self.training else 1.0
        )
        test_eq(self.loss_grad, self.test_before_mixed_precision.tst_loss * loss_scale)

    def before_step(self):
        tbmp = self.test_before_mixed_precision
        test_eq(self.loss_grad, tbmp.loss_grad)
        # Test gradients have been copied and scaled back
        test_close(
            sum(
                [
                    [p.grad.data for p in pg]
                    for pg in self.non_native_mixed_precision.master_pgs
                ],
                [],
            ),
            [
                g.float() / self.non_native_mixed_precision.loss_scale
                for g in tbmp.grads
            ],
        )

    def after_batch(self):
        if self.has_overflown:
            return
        tbmp, mp = self.test_before_mixed_precision, self.non_native_mixed_precision
        # Test master params have been copied to model
        test_close(
            sum([[p.data for p in pg] for pg in mp.master_pgs], []),
            [p.data.float() for p in self.model.parameters()],
            eps=1e-3,
        )
        # Test update has been done properly
        for p, g, op in zip(self.model.parameters(), tbmp.grads, tbmp.old_params):
            test_close(
                p.data.float(),
                op.float()
                - self.lr * g.float() / self.non_native_mixed_precision.loss_scale,
                eps=1e-3,
            )
'''

TO_NON_NATIVE_FP16_FREEZE = """
learn = synth_learner(cuda=True)
learn.model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)).cuda()
learn.opt_func = partial(SGD, mom=0.9)
learn.splitter = lambda m: [list(m[0].parameters()), list(m[1].parameters())]
learn.to_non_native_fp16()
learn.freeze()
learn.create_opt()
init_ps = [p for pg in learn.opt.param_groups for p in pg]
learn.fit(3)
final_ps = [p for pg in learn.opt.param_groups for p in pg]
for p1, p2 in zip(init_ps, final_ps):
    test_is(p1, p2)
# First param groups has no state because not trained
test_eq([learn.opt.state[p] for p in learn.opt.param_lists[0]], [{}, {"do_wd": False}])
# Second param groups has state
for p in learn.opt.param_lists[1]:
    assert "grad_avg" in learn.opt.state[p]
"""

CELLS = [
    Cell("fp16_bf16_test_callbacks", TEST_CBS),
    Cell("mixed_precision_fp16", TEST_CBS + """
set_seed(99, True)
learn = synth_learner(cbs=[MixedPrecision, FP16TestCallback], cuda=True)
learn.model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)).cuda()
learn.opt_func = partial(SGD, mom=0.0)
learn.splitter = lambda m: [list(m[0].parameters()), list(m[1].parameters())]
learn.fit(3)
assert learn.recorder.values[-1][-1] < learn.recorder.values[0][-1]
""", fastai_fails=CUDA),
    Cell("mixed_precision_fp16_multioutput", TEST_CBS + """
# Multioutput version
set_seed(99, True)
learn = synth_learner(cbs=[MixedPrecision, FP16TestCallback], cuda=True)


class MultiOutputModel(Module):
    def __init__(self):
        self.linear1, self.linear2 = nn.Linear(1, 1), nn.Linear(1, 1)

    def forward(self, x):
        return self.linear1(x), self.linear2(x)


def multioutputloss(pred, val):
    return ((val - pred[0]).abs() + 0.5 * (val - pred[1]).abs()).sum()


learn.model = MultiOutputModel()
learn.opt_func = partial(SGD, mom=0.0)
learn.splitter = lambda m: [list(m.linear1.parameters()), list(m.linear2.parameters())]
learn.loss_func = multioutputloss
learn.fit(3)
assert learn.recorder.values[-1][-1] < learn.recorder.values[0][-1]
""", fastai_fails=CUDA),
    Cell("mixed_precision_bf16", TEST_CBS + """
if torch.cuda.is_bf16_supported():
    set_seed(99, True)
    learn = synth_learner(
        cbs=[MixedPrecision(amp_mode=AMPMode.BF16), BF16TestCallback], cuda=True
    )
    learn.model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)).cuda()
    learn.opt_func = partial(SGD, mom=0.0)
    learn.splitter = lambda m: [list(m[0].parameters()), list(m[1].parameters())]
    learn.fit(3)
    assert learn.recorder.values[-1][-1] < learn.recorder.values[0][-1]
"""),
    Cell("convert_network", FP16_UTILS + """
model = nn.Sequential(nn.Linear(10, 30), nn.BatchNorm1d(30), nn.Linear(30, 2)).cuda()
model = convert_network(model, torch.float16)

for i, t in enumerate([torch.float16, torch.float32, torch.float16]):
    test_eq(model[i].weight.dtype, t)
    test_eq(model[i].bias.dtype, t)

model = nn.Sequential(nn.Linear(10, 30), BatchNorm(30, ndim=1), nn.Linear(30, 2)).cuda()
model = convert_network(model, torch.float16)

for i, t in enumerate([torch.float16, torch.float32, torch.float16]):
    test_eq(model[i].weight.dtype, t)
    test_eq(model[i].bias.dtype, t)
""", fastai_fails=CALLS_CUDA, differs=LEGACY),
    Cell("get_master", GET_MASTER, fastai_fails=CUDA, differs=LEGACY),
    Cell("get_master_flat", GET_MASTER + GET_MASTER_FLAT, fastai_fails=CUDA, differs=LEGACY),
    Cell("to_master_grads", MASTER_GRADS, fastai_fails=CUDA, differs=LEGACY),
    Cell("to_model_params", MASTER_GRADS + """
learn.opt.params = master_p
learn.opt.step()
to_model_params(model_p, master_p)
test_close(
    [p.float() for pg in model_p for p in pg],
    [p for pg in master_p for p in pg],
    eps=1e-3,
)
""", fastai_fails=CUDA, differs=LEGACY),
    Cell("to_model_params_flat", MASTER_GRADS + """
learn.opt.params = master_pf
learn.opt.step()
to_model_params(model_pf, master_pf, flat_master=True)
test_close(
    [p.float().squeeze() for pg in model_pf for p in pg],
    [p for pg in master_pf for p in pg[0]],
    eps=1e-3,
)
""", fastai_fails=CUDA, differs=LEGACY),
    Cell("test_overflow", """
x = torch.randn(3, 4)
assert not test_overflow(x)
x[1, 2] = float("inf")
assert test_overflow(x)
"""),
    Cell("grad_overflow", MASTER_GRADS + """
assert not grad_overflow(model_p)
assert not grad_overflow(model_pf)
model_p[1][0].grad.data[0, 0] = float("inf")
model_pf[0][1].grad.data[0] = float("inf")
assert grad_overflow(model_p)
assert grad_overflow(model_pf)
""", fastai_fails=CUDA, differs=LEGACY),
    Cell("non_native_mixed_precision", NON_NATIVE_TEST_CBS + """
learn = synth_learner(cbs=[ModelToHalf(), NonNativeMixedPrecision()], cuda=True)
learn.model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)).cuda()
learn.opt_func = partial(SGD, mom=0.0)
learn.splitter = lambda m: [list(m[0].parameters()), list(m[1].parameters())]
learn.fit(3, cbs=[TestAfterMixedPrecision(), TestBeforeMixedPrecision()])
# Check loss scale did change
assert 1 < learn.non_native_mixed_precision.loss_scale < 2**24
# Check the model did train
for v1, v2 in zip(learn.recorder.values[0], learn.recorder.values[-1]):
    assert v2 < v1
""", fastai_fails=CUDA, differs=LEGACY),
    Cell("non_native_mixed_precision_static_scale", NON_NATIVE_TEST_CBS + """
learn = synth_learner(
    cbs=[ModelToHalf(), NonNativeMixedPrecision(dynamic=False)], cuda=True
)
learn.model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)).cuda()
learn.opt_func = partial(SGD, mom=0.0)
learn.splitter = lambda m: [list(m[0].parameters()), list(m[1].parameters())]
learn.fit(3, cbs=[TestAfterMixedPrecision(), TestBeforeMixedPrecision()])
# Check loss scale did mot change
test_eq(learn.non_native_mixed_precision.loss_scale, 512)
# Check the model did train
for v1, v2 in zip(learn.recorder.values[0], learn.recorder.values[-1]):
    assert v2 < v1
""", fastai_fails=CUDA, differs=LEGACY),
    Cell("to_non_native_fp16", NON_NATIVE_TEST_CBS + """
learn = synth_learner(cuda=True)
learn.model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)).cuda()
learn.opt_func = partial(SGD, mom=0.0)
learn.splitter = lambda m: [list(m[0].parameters()), list(m[1].parameters())]
learn.to_non_native_fp16()
learn.fit(3, cbs=[TestAfterMixedPrecision(), TestBeforeMixedPrecision()])
# Check the model did train
for v1, v2 in zip(learn.recorder.values[0], learn.recorder.values[-1]):
    assert v2 < v1
""", fastai_fails=CUDA, differs=LEGACY),
    Cell("to_non_native_fp16_freeze", TO_NON_NATIVE_FP16_FREEZE, fastai_fails=CUDA, differs=LEGACY),
    Cell("to_non_native_fp32", TO_NON_NATIVE_FP16_FREEZE + """
learn = learn.to_non_native_fp32()
""", fastai_fails=CUDA, differs=LEGACY),
]


@pytest.mark.parametrize("lib, cell", cases(CELLS))
def test_cell(lib, cell):
    code = cell.code if lib == "fastai" else cell.code.replace("from fastai.", "from minifastai.")
    run_cell(lib, IMPORTS, Cell(cell.name, code))

