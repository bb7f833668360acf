"""Run under `torchrun --nproc_per_node=2 _ddp_script.py OUT [fail]` by the distributed tests (CPU, gloo).

Each rank trains in `with learn.distrib_ctx():` (its own `path`, so the test can see which rank wrote files)
and writes OUT/rank{r}.pt with its final weights, recorded values and what it saw during the fit.
With `fail`, rank 1 raises in `after_loss` in the middle of the second epoch (the model has BatchNorm buffers,
and SaveModelCallback has a best model to load back) and each rank prints how long it took to leave.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import Callback, CSVLogger, DataLoaders, Learner, ProgressCallback, SaveModelCallback, accuracy

N_TRAIN, N_VALID, BS, VALID_BS = 70, 37, 8, 10
FAIL_TIMEOUT = 30  # seconds: distrib_ctx(timeout=...) in the failure run


def data() -> tuple[torch.Tensor, ...]:
    """Synthetic 3-class data; odd sizes so the shards are uneven."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N_TRAIN + N_VALID, 5, generator=g)
    y = (x[:, 0] > 0.3).long() + (x[:, 1] > 0).long()
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def make_model() -> nn.Module:
    """BatchNorm (buffers to keep in sync) and dropout."""
    return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def make_learner(path: str | Path, cbs: list | None = None) -> Learner:
    """The learner of the test, on CPU."""
    xt, yt, xv, yv = data()
    dls = DataLoaders(DataLoader(TensorDataset(xt, yt), BS, shuffle=True),
                      DataLoader(TensorDataset(xv, yv), VALID_BS), device="cpu")
    return Learner(dls, make_model(), nn.CrossEntropyLoss(), metrics=accuracy, path=path, cbs=cbs)


class Probe(Callback):
    """Notes what each rank sees during a fit."""

    order = 90

    def __init__(self) -> None:
        self.seen: dict = {"train_batches": [], "model": [], "progress": [], "valid_items": 0}

    def before_fit(self) -> None:
        """Model type, loader sizes and whether progress is shown."""
        learn = self.learn
        self.seen["model"].append(type(learn.model).__name__)
        self.seen["train_batches"].append(len(learn.dls.train))
        self.seen["progress"].append(any(isinstance(c, ProgressCallback) for c in learn.cbs))

    def before_validate(self) -> None:
        """Count this rank's validation items."""
        self.seen["valid_items"] = 0

    def after_batch(self) -> None:
        """Count validation items."""
        if not self.learn.training:
            self.seen["valid_items"] += len(self.learn.yb[0])


def _weights(learn: Learner) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in learn.model.state_dict().items()}


def main(out: Path) -> None:
    """lr_find, 2 epochs of one-cycle, validate and export under DDP; then resume the fit from epoch 1."""
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the same seed on every rank, as a script run by torchrun has
    r = int(os.environ.get("RANK", 0))
    probe = Probe()
    learn = make_learner(out / f"rank{r}", cbs=[probe])
    with learn.distrib_ctx():
        sugg = learn.lr_find(num_it=10, show_plot=False)
        learn.fit_one_cycle(2, 2e-2, cbs=[SaveModelCallback(every_epoch=True), CSVLogger()])
        weights, values = _weights(learn), learn.recorder.values
        validated = learn.validate()
        learn.export("export.pkl")
        learn.load(out / "rank0" / "models" / "model_0.pth")  # every rank loads what rank 0 wrote
        learn.fit_one_cycle(2, 2e-2, start_epoch=1)
        resumed = _weights(learn)
    res = {"model": weights, "resumed": resumed,
           "values": [[float(v) for v in row] for row in values],
           "resumed_values": [[float(v) for v in row] for row in learn.recorder.values],
           "validated": [float(v) for v in validated], "lr_find": float(sugg.valley),
           "seen": probe.seen, "after_model": type(learn.model).__name__,
           "after_train_batches": len(learn.dls.train)}
    torch.save(res, out / f"rank{r}.pt")


class FailOnRank1(Callback):
    """Raises on rank 1 only, in the middle of epoch 1, while rank 0 goes on into its backward pass."""

    def after_loss(self) -> None:
        """The injected error."""
        learn = self.learn
        if int(os.environ.get("RANK", 0)) == 1 and learn.training and learn.epoch == 1 and learn.iter == 2:
            raise ValueError("injected failure on rank 1")


def fail(out: Path) -> None:
    """Fit with an error on rank 1; print when each rank leaves `distrib_ctx`."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    r = int(os.environ.get("RANK", 0))
    learn = make_learner(out / "shared", cbs=[FailOnRank1()])  # a folder every rank reads, as on a cluster
    t0 = time.monotonic()
    try:
        with learn.distrib_ctx(timeout=FAIL_TIMEOUT):
            learn.fit(2, 1e-2, cbs=SaveModelCallback())
    finally:
        print(f"rank {r} left distrib_ctx after {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    (fail if sys.argv[2:] == ["fail"] else main)(Path(sys.argv[1]))
