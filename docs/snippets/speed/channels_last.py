import torch
from torch import nn
from torch.utils.data import TensorDataset

from minifastai import DataLoaders, Learner, accuracy

images = TensorDataset(x.view(-1, 1, 8, 8), y)  # the digits as 8x8 images
cnn_dls = DataLoaders.from_dsets(TensorDataset(*images[:1500]), TensorDataset(*images[1500:]), bs=64,
                                 device="cpu")
cnn = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                    nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
learn = Learner(cnn_dls, cnn, nn.CrossEntropyLoss(), metrics=accuracy).to_channels_last()
learn.fit_one_cycle(2, 1e-2)
w = learn.model[0].weight
print("conv weight channels-last:", w.is_contiguous(memory_format=torch.channels_last), "| stride", w.stride())
