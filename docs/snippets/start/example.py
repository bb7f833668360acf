import torch
from torch import nn
from torch.utils.data import TensorDataset
from minifastai import DataLoaders, Learner, accuracy

x = torch.randn(1000, 10); y = (x[:, 0] + x[:, 1] > 0).long()  # a toy 2-class problem
dls = DataLoaders.from_dsets(TensorDataset(x[:800], y[:800]), TensorDataset(x[800:], y[800:]), vocab=["no", "yes"])
learn = Learner(dls, nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2)), nn.CrossEntropyLoss(), metrics=accuracy)
learn.fit_one_cycle(3, 1e-2)
print(learn.predict(x[0]), "truth:", dls.vocab[y[0]])
