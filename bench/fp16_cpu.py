"""How much slower float16 autocast is on a CPU, where it is emulated: one epoch of a small CNN with `to_fp32()`,
`to_fp16()` and `to_bf16()`, alternating, on the same data; prints the median time of each and its ratio to float32.

The mixed-precision guide quotes these numbers; `to_fp16()` on a CPU learner warns with them.
"""
from __future__ import annotations

import contextlib
import io
import statistics
import time
import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minifastai import DataLoaders, Learner

N, BS, REPEATS = 1024, 64, 3


def make() -> Learner:
    torch.manual_seed(0)
    x, y = torch.randn(N, 3, 32, 32), torch.randint(0, 10, (N,))
    dls = DataLoaders(DataLoader(TensorDataset(x, y), BS, shuffle=True), None, device="cpu")
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    return Learner(dls, model, nn.CrossEntropyLoss())


def epoch_time(mode: str) -> float:
    learn = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(learn, f"to_{mode}")()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit(1, 1e-3)
    return time.perf_counter() - t0


def main() -> None:
    times: dict[str, list[float]] = {"fp32": [], "fp16": [], "bf16": []}
    for _ in range(REPEATS):
        for mode in times:
            times[mode].append(epoch_time(mode))
    med = {m: statistics.median(t) for m, t in times.items()}
    print(f"one epoch, {N} images 3x32x32, batch {BS}, {torch.get_num_threads()} threads: "
          + ", ".join(f"{m} {med[m]:.2f}s ({med[m] / med['fp32']:.1f}x)" for m in med))


if __name__ == "__main__":
    main()
