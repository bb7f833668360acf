# Setup shared by the snippets of pages without a setup of their own: the digits data set that ships with scikit-learn
# (1,797 8x8 images), and a small network cut into three layer groups.
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

from minifastai import DataLoaders, Learner, accuracy

x, y = load_digits(return_X_y=True)
x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
dls = DataLoaders.from_dsets(TensorDataset(x[:1500], y[:1500]), TensorDataset(x[1500:], y[1500:]),
                             bs=64, device="cpu")


def make_model():
    return nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(),  # [0:3] body
                         nn.Linear(128, 64), nn.ReLU(),                       # [3:5] middle
                         nn.Linear(64, 10))                                   # [5]   head


def splitter(m):  # a splitter returns lists of parameters, the input side first
    return [list(m[0:3].parameters()), list(m[3:5].parameters()), list(m[5].parameters())]


def make_learner(**kwargs):
    return Learner(dls, make_model(), nn.CrossEntropyLoss(), splitter=splitter, metrics=accuracy,
                   group_names=["body", "middle", "head"], **kwargs)
