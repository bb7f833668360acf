"""fastai's Learner idioms beyond the main path (13a_learner): `TfmdDL`, a model replaced after creation,
`one_batch`, `learn.logger`, `get_preds` on tuples and shuffled loaders, the activation following the loss,
`load` leaving an optimizer, fastai's `test_eq` on tensors, and the model's attributes read through the learner."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from minifastai import SGD, DataLoaders, Learner, OptimWrapper, ProgressCallback
from minifastai.basics import TfmdDL, equals, test_eq, test_ne, to_cpu, to_np, trainable_params
from minifastai.inference import in_order
from minifastai.losses import BCEWithLogitsLossFlat, MSELossFlat
from minifastai.test_utils import RegModel, synth_learner


def regression_data(n: int = 32, bs: int = 8, shuffle: bool = False) -> tuple[torch.Tensor, torch.Tensor, TfmdDL]:
    x = torch.randn(n)
    y = 2 * x + 3
    return x, y, TfmdDL(TensorDataset(x, y), bs=bs, shuffle=shuffle)


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(1, 4), nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def two_layer_splitter(m: nn.Module) -> list[list[nn.Parameter]]:
    return [list(m.body.parameters()), list(m.head.parameters())]


def test_tfmddl_takes_fastai_keywords_and_rebuilds_with_changes():
    x, y, dl = regression_data(n=20, bs=8)
    assert dl.bs == 8 and len(dl) == 3  # 8 + 8 + 4
    xb, yb = dl.one_batch()
    assert torch.equal(xb, x[:8]) and torch.equal(yb, y[:8])
    dropped = dl.new(drop_last=True, bs=5)
    assert isinstance(dropped, TfmdDL) and dropped.dataset is dl.dataset and len(dropped) == 4
    with pytest.raises(ValueError, match="bs must be a positive integer"):
        TfmdDL(dl.dataset, bs=0)
    with pytest.raises(ValueError, match="yielded no batch"):
        TfmdDL(TensorDataset(x[:3], y[:3]), bs=4, drop_last=True).one_batch()


def test_a_replaced_model_is_split_again_when_the_optimizer_is_made():
    learn = synth_learner(splitter=two_layer_splitter)  # the RegModel has no .body: the split waits for the optimizer
    assert learn.n_groups == 1
    learn.model = TwoLayers()
    learn.freeze()  # fastai splits when it makes the optimizer
    assert learn.n_groups == 2 and learn.group_names == ["group 0", "group 1 (head)"]
    assert [p.requires_grad for p in learn.model.parameters()] == [False, False, True, True]
    body = learn.model.body.weight.clone()
    learn.fit(1, lr=0.1)
    assert torch.equal(learn.model.body.weight, body)
    assert [pg["lr"] for pg in learn.opt.param_groups] == pytest.approx([0.1] * len(learn.opt.param_groups))


def test_a_splitter_that_fails_on_the_new_model_is_a_clear_error_and_changes_nothing():
    learn = Learner(synth_learner().dls, TwoLayers(), MSELossFlat(), splitter=two_layer_splitter)
    learn.create_opt()
    groups, opt = learn.layer_groups, learn.opt
    learn.model = RegModel()
    with pytest.raises(AttributeError, match="the splitter fails on learn.model, a RegModel"):
        learn.fit(1)
    assert learn.layer_groups is groups and learn.opt is opt and learn.n_groups == 2


def test_layer_groups_set_by_hand_for_the_new_model_are_kept():
    learn = synth_learner()
    learn.model = TwoLayers()
    learn.layer_groups = two_layer_splitter(learn.model)  # hand-set, for the model of the moment
    learn.splitter = two_layer_splitter
    learn.create_opt()
    assert learn.n_groups == 2
    learn.model, keep = TwoLayers(), learn.layer_groups
    learn.layer_groups = two_layer_splitter(learn.model)
    learn.create_opt()
    assert learn.layer_groups is not keep and all(p in set(learn.model.parameters()) for g in learn.layer_groups
                                                  for p in g)


def test_one_batch_is_one_sgd_step_with_fastai_numbers():
    learn = Learner(synth_learner().dls, RegModel(), MSELossFlat(), opt_func=SGD, lr=0.1)
    learn.create_opt()
    learn.model.train()
    learn.training = True
    xb, yb = learn.dls.train.dataset[:8]
    a, b = learn.model.a.detach().clone(), learn.model.b.detach().clone()
    learn.one_batch(0, (xb, yb))
    pred = xb * a + b
    grad_a = (2 * xb * (pred - yb)).mean()
    grad_b = (2 * (pred - yb)).mean()
    torch.testing.assert_close(learn.model.a.detach(), a - 0.1 * grad_a)
    torch.testing.assert_close(learn.model.b.detach(), b - 0.1 * grad_b)
    torch.testing.assert_close(learn.loss.detach(), ((pred - yb) ** 2).mean())
    assert learn.iter == 0 and torch.equal(learn.x, xb)


def test_one_batch_training_without_an_optimizer_is_an_error_before_anything_changes():
    learn = synth_learner()
    learn.training = True
    a = learn.model.a.detach().clone()
    with pytest.raises(ValueError, match=r"call learn.create_opt\(\) first"):
        learn.one_batch(0, learn.dls.train.dataset[:8])
    assert torch.equal(learn.model.a.detach(), a) and learn.opt is None


def test_learn_logger_gets_each_epochs_row_as_fastai_and_no_logging_silences_it():
    learn = synth_learner(n_trn=2)
    learn.remove_cb(ProgressCallback)
    rows: list = []
    learn.logger = rows.append
    learn.fit(2, lr=1e-2)
    assert [r[0] for r in rows] == [0, 1] and all(len(r) == 4 and isinstance(r[-1], str) for r in rows)
    assert rows[-1][1:3] == pytest.approx(list(learn.recorder.values[-1][:2]))
    with learn.no_logging():
        learn.fit(1)
    assert len(rows) == 2 and learn.logger == rows.append
    learn.add_cb(ProgressCallback(mode="plain"))
    learn.fit(1)  # the table takes the rows during the fit and gives the logger back
    assert len(rows) == 2 and learn.logger == rows.append


def test_get_preds_keeps_every_target_and_input_and_reads_shuffled_loaders_in_order():
    learn = synth_learner()
    x, y, _ = regression_data()
    learn.loss_func = lambda p, t1, t2: nn.functional.mse_loss(p, t1)
    learn.dls.n_inp = 1  # as fastai: the first tensor is the input, the others targets
    preds, targs = learn.get_preds(dl=TfmdDL(TensorDataset(x, y, 2 * y), bs=8, shuffle=True))
    assert isinstance(targs, list) and torch.equal(targs[0], y) and torch.equal(targs[1], 2 * y)
    torch.testing.assert_close(preds, learn.model(x).detach())
    raw = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True, drop_last=True)
    learn.loss_func = MSELossFlat()
    learn.dls.n_inp = None
    _, targs = learn.get_preds(dl=raw)
    assert torch.equal(targs, y)  # all 32 items, in order, though the loader shuffles and drops the last batch


def test_in_order_keeps_a_users_sampler():
    ds = TensorDataset(torch.arange(10.0))
    sharded = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False),
                         drop_last=True)
    assert in_order(sharded) is sharded
    plain = DataLoader(ds, batch_size=3)
    assert in_order(plain) is plain


def test_the_activation_follows_the_current_loss_function():
    learn = synth_learner()
    x, y, dl = regression_data()
    assert learn.activation_name is None
    learn.loss_func = BCEWithLogitsLossFlat()
    preds, _ = learn.get_preds(dl=dl)
    torch.testing.assert_close(preds, torch.sigmoid(learn.model(x).detach()))
    learn.activation = None
    preds, _ = learn.get_preds(dl=dl)
    torch.testing.assert_close(preds, learn.model(x).detach())


def test_load_without_the_optimizer_leaves_a_fresh_one(tmp_path):
    learn = synth_learner(path=tmp_path)
    learn.fit(1, lr=1e-2)
    learn.save("m", with_opt=False)
    other = synth_learner(path=tmp_path)
    assert other.load("m", with_opt=False) is other
    assert other.opt is not None and other.opt.state_dict()["state"] == {}
    assert torch.equal(other.model.a, learn.model.a)


def test_optim_wrapper_partial_with_lr_sets_the_learners_lr():
    learn = Learner(synth_learner().dls, RegModel(), MSELossFlat(),
                    opt_func=partial(OptimWrapper, opt=torch.optim.SGD, lr=0.25))
    opt = learn.create_opt()
    assert learn.lr == 0.25 and [pg["lr"] for pg in opt.param_groups] == [0.25] * len(opt.param_groups)
    assert opt.hypers[0]["lr"] == 0.25
    opt.hypers[0]["lr"] = 0.5
    assert opt.param_groups[0]["lr"] == 0.5


def test_the_learner_reads_the_models_attributes_but_not_private_ones():
    learn = synth_learner()
    assert learn.a is learn.model.a and len(list(learn.parameters())) == 2
    with pytest.raises(AttributeError, match=r"neither the Learner nor its model \(RegModel\) has an attribute 'c'"):
        _ = learn.c
    with pytest.raises(AttributeError, match="'Learner' object has no attribute '_hidden'"):
        _ = learn._hidden


def test_fastai_test_eq_compares_tensors_that_require_grad():
    w = nn.Parameter(torch.ones(3))
    test_eq(w * 2, torch.full((3,), 2.0))
    test_eq([w, torch.tensor(1.0)], [torch.ones(3), 1.0])
    test_ne(w, torch.zeros(3))
    assert not equals(w, torch.ones(4)) and equals((1, "a"), [1, "a"])
    with pytest.raises(AssertionError, match="=="):
        test_eq(w, torch.zeros(3))


def test_to_cpu_keeps_the_structure_and_the_graph():
    w = nn.Parameter(torch.ones(2))
    out = to_cpu({"a": [w * 2, 3], "b": (torch.zeros(1),)})
    assert out["a"][1] == 3 and isinstance(out["b"], tuple) and out["a"][0].requires_grad
    assert out["a"][0].device.type == "cpu"
    arrays = to_np({"w": [w * 2], "n": 1})
    assert arrays["n"] == 1 and arrays["w"][0].tolist() == [2.0, 2.0] and arrays["w"][0].dtype.name == "float32"
    m = nn.Linear(2, 1)
    m.bias.requires_grad_(False)
    assert trainable_params(m) == [m.weight]


def test_tfmddl_dataloaders_train_a_learner():
    x, y, dl = regression_data(n=64, shuffle=True)
    learn = Learner(DataLoaders(dl, dl.new(shuffle=False)), RegModel(), MSELossFlat(), lr=0.1)
    before = learn.validate()[0]
    learn.fit(5)
    assert learn.validate()[0] < before / 4


def test_get_preds_reorder_false_reads_the_loader_as_it_is():
    learn = synth_learner()
    x, y = torch.arange(32.0), torch.arange(32.0) * 2
    dl = TfmdDL(TensorDataset(x, y), bs=8, shuffle=True)
    torch.manual_seed(3)
    _, targs = learn.get_preds(dl=dl, reorder=False)
    torch.manual_seed(3)
    drawn = torch.cat([b[1] for b in dl])
    assert torch.equal(targs, drawn) and not torch.equal(targs, y)
    assert torch.equal(learn.get_preds(dl=dl)[1], y)


def test_fastais_splitter_idiom_with_params():
    from fastcore.foundation import L

    from minifastai.basics import params

    learn = Learner(synth_learner().dls, TwoLayers(), MSELossFlat(), splitter=lambda m: L(m.body, m.head).map(params))
    assert learn.n_groups == 2 and params(learn.model.head) == [learn.model.head.weight, learn.model.head.bias]
    learn.freeze()
    assert [p.requires_grad for p in learn.model.parameters()] == [False, False, True, True]
