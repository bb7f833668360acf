"""`make demo`: what slice(a, b) does to each layer group, shown on models trained end to end.

1. Core: a 3-group model (two body groups and a head) on synthetic data it makes itself: summary, the
   plan (`dry_run`) before training, `freeze` + `fit_one_cycle(slice)`, `unfreeze` + another cycle with
   discriminative LRs.
2. Vision: torchvision's ImageNet MobileNetV2 (the offline file, placed in torch hub's cache) fine-tuned
   on digits 5-9 read from PNG files (`vision_learner`, `fine_tune`), against the same recipe from random
   init, exported and reloaded (short version of examples/finetune_cnn.ipynb). Without the weights file it
   says how to get it and uses a small ResNet pretrained here on digits 0-4 instead.
3. Tabular: penguin species with one layer group and a float LR: the schedule cycles, it does not spread
   (short version of examples/tabular_penguins.ipynb).
Per-group schedule and loss plots are written as PNG files under out/demo/.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from minifastai import DataLoaders, Learner, accuracy  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "out" / "demo"


def make_dls(n: int = 4096, n_feat: int = 20, seed: int = 0) -> DataLoaders:
    """A 4-class problem whose classes depend non-linearly on the features."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_feat, generator=g)
    w = torch.randn(n_feat, 2, generator=g)
    z = x @ w
    y = (z[:, 0] > 0).long() * 2 + (z[:, 1] * z[:, 0] > 0).long()
    cut = int(0.8 * n)
    return DataLoaders.from_dsets(TensorDataset(x[:cut], y[:cut]), TensorDataset(x[cut:], y[cut:]), bs=64,
                                  device="cpu")


class Net(nn.Module):
    """body1 -> body2 -> head: three layer groups."""

    def __init__(self, n_feat: int = 20, n_out: int = 4) -> None:
        super().__init__()
        self.body1 = nn.Sequential(nn.Linear(n_feat, 64), nn.BatchNorm1d(64), nn.ReLU())
        self.body2 = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU())
        self.head = nn.Linear(64, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body2(self.body1(x)))


def splitter(m: Net) -> list[list[nn.Parameter]]:
    return [list(m.body1.parameters()), list(m.body2.parameters()), list(m.head.parameters())]


def save(fig, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    fig.savefig(path, dpi=110)
    return path


def core_demo() -> list[Path]:
    torch.manual_seed(0)
    learn = Learner(make_dls(), Net(), nn.CrossEntropyLoss(), splitter=splitter, metrics=accuracy,
                    group_names=["body1", "body2", "head"])
    written = []
    # Pretend body1/body2 were pretrained: a short warm-up of the whole model stands in for that.
    learn.fit_one_cycle(1, 1e-2)
    print("\n== the learner: 3 layer groups (first = input side, last = head)")
    print(learn.summary())

    learn.freeze()
    print("\n== the plan, before training (dry_run: no batch loaded, nothing changes)")
    with learn.dry_run() as runs:
        learn.fit_one_cycle(2, slice(1e-3))
        learn.unfreeze()
        learn.fit_one_cycle(3, slice(1e-5, 1e-3))
    learn.freeze()  # dry_run restored requires_grad anyway; say it explicitly for the reader
    for i, r in enumerate(runs):
        print(f"fit {i}: {r}")
    written.append(save(runs.plot_sched(), "plan.png"))  # both planned fits, one after the other

    print("\n== frozen: only the head (and BatchNorm layers) train; slice(1e-3) -> peaks [1e-4, 1e-4, 1e-3]")
    learn.fit_one_cycle(2, slice(1e-3))
    written.append(save(learn.recorder.plot_sched(), "schedule_frozen.png"))

    print("\n== unfrozen: slice(1e-5, 1e-3) spreads PEAK LRs over groups; every group has the same one-cycle shape")
    learn.unfreeze()
    learn.fit_one_cycle(3, slice(1e-5, 1e-3))
    peaks = learn.recorder.lrs.max(0)
    for name, p in zip(learn.group_names, peaks):
        print(f"  {name:6s} peak lr {p:.1e}")
    written.append(save(learn.recorder.plot_sched(fits=2), "schedule_both_fits.png"))  # frozen, then unfrozen
    written.append(save(learn.recorder.plot_loss(), "loss.png"))
    return written


def vision_demo() -> list[Path]:
    from pretrain_digits import run_demo

    res = run_demo(OUT / "vision")
    return [Path(p) for p in res["plots"]]


def tabular_demo() -> list[Path]:
    from tabular_demo import run_demo

    return list(run_demo(OUT / "tabular"))


def main() -> int:
    t0 = time.perf_counter()
    torch.set_num_threads(1)  # small models: one thread is fastest, and steady on a busy 2-core machine
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    written = core_demo()
    print("\n\n######## vision: fine-tune an ImageNet CNN (layer groups: body, head), offline")
    written += vision_demo()
    print("\n\n######## tabular: one layer group, a float LR")
    written += tabular_demo()
    print(f"\nWrote {len(written)} plots in {time.perf_counter() - t0:.0f}s:")
    for p in written:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
