"""Small synthetic data and a 3-group model with BatchNorm, shared by the core tests."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import DataLoaders, Learner, accuracy


def synth_dls(n_train: int = 256, n_valid: int = 64, bs: int = 32, n_feat: int = 8, shuffle: bool = True,
              seed: int = 0) -> DataLoaders:
    """A linearly separable 2-class problem."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, n_feat, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:n_train], y[:n_train]), bs, shuffle=shuffle)
    valid = DataLoader(TensorDataset(x[n_train:], y[n_train:]), bs)
    return DataLoaders(train, valid, device="cpu")


def three_group_model(n_feat: int = 8) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_feat, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def three_group_splitter(m: nn.Sequential) -> list[list[nn.Parameter]]:
    return [[*m[0].parameters(), *m[1].parameters()], list(m[3].parameters()), list(m[5].parameters())]


def make_learner(**kwargs) -> Learner:
    kwargs.setdefault("metrics", accuracy)
    dls = kwargs.pop("dls", None) or synth_dls()
    return Learner(dls, three_group_model(), nn.CrossEntropyLoss(), splitter=three_group_splitter, **kwargs)


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
