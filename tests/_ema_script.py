"""A small training run with EMA for the resume test; `python _ema_script.py OUT MODE` with MODE `full`, `kill`
(stalls in the middle of epoch KILL_EPOCH after writing OUT/ready, to be killed) or `resume` (a fresh process
continuing with `resume=True`). Writes OUT/result_MODE.pt with the trained and the averaged weights."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from _train_script import StallMidEpoch  # the same kill point as the resume test
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import Callback, DataLoaders, Learner, SaveModelCallback
from minifastai.callback.ema import EMA

N_EPOCH, BS, LR, DECAY = 4, 8, 1e-2, 0.9


def make_learner(path: str | Path, seed: int = 0) -> Learner:
    """Shuffled data (DataLoader drawing from the global torch RNG), BatchNorm (averaged buffers) and dropout."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(84, 6, generator=g)
    y = (x[:, 0] - x[:, 1] + 0.3 * torch.randn(84, generator=g) > 0).long()
    train = DataLoader(TensorDataset(x[:64], y[:64]), BS, shuffle=True)
    valid = DataLoader(TensorDataset(x[64:], y[64:]), 16)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    return Learner(DataLoaders(train, valid, device="cpu"), model, nn.CrossEntropyLoss(), path=path,
                   cbs=EMA(DECAY))


def column(learn: Learner, name: str) -> list[float]:
    """A column of the recorder's table by name (rows are fastai's [train_loss, valid_loss, *metrics])."""
    names = list(learn.recorder.metric_names)[1:-1]
    return [float(r[names.index(name)]) for r in learn.recorder.values]


def run(out: str | Path, mode: str) -> dict:
    out = Path(out)
    torch.set_num_threads(1)
    learn = make_learner(out, seed=123 if mode == "resume" else 0)
    cbs: list[Callback] = [SaveModelCallback(every_epoch=True)]
    if mode == "kill":
        cbs.append(StallMidEpoch(out / "ready"))
    learn.fit_one_cycle(N_EPOCH, LR, cbs=cbs, resume=mode == "resume")
    res = {"model": {k: v.clone() for k, v in learn.model.state_dict().items()},
           "ema": {k: v.clone() for k, v in learn.ema.ema_model.module.state_dict().items()},
           "n_updates": learn.ema.n_updates,
           "valid_loss": column(learn, "valid_loss")}
    torch.save(res, out / f"result_{mode}.pt")
    return res


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
