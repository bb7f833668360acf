"""Tabular part of `make demo`: penguin species with `tabular_learner`, one layer group, a float LR.

`run_demo(out_dir)` trains for a few seconds on the palmerpenguins data (shipped with the package),
prints the summary (one layer group), the results and a prediction, and writes the recorded schedule
(`tabular_schedule.png`: the LR cycles over time, there is no spread across groups) and the losses
(`tabular_loss.png`) under `out_dir`. It returns the paths written.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from minifastai import accuracy  # noqa: E402
from minifastai.tabular import TabularDataLoaders, tabular_learner  # noqa: E402


def run_demo(out_dir: str | Path = "out/demo", epochs: int = 5, threads: int | None = 1) -> list[Path]:
    """Train on penguin species, print what happened, save the schedule and loss plots; returns their paths.

    `threads`: torch CPU threads while the demo runs (restored afterwards). One is fastest for a model this
    small: with more, every tiny op pays a thread hand-off, which is slow on a busy machine.
    """
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _demo(Path(out_dir), epochs)
    finally:
        torch.set_num_threads(old)


def _demo(out: Path, epochs: int) -> list[Path]:
    import matplotlib.pyplot as plt
    from palmerpenguins import load_penguins

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    df = load_penguins()
    dls = TabularDataLoaders.from_df(
        df, cat_names=["island", "sex"],
        cont_names=["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
        y_names="species", valid_pct=0.2, seed=42, bs=32, device="cpu")
    print(f"== tabular: {dls}")
    print(f"   procs fitted on the {dls.train.n} training rows: {dls.procs}")
    learn = tabular_learner(dls, metrics=accuracy)
    print(learn.summary())
    print(f"\n== fit_one_cycle({epochs}, 1e-2): one group, so one float LR; the schedule shapes it over time")
    learn.fit_one_cycle(epochs, 1e-2)
    lrs = learn.recorder.lrs
    print(f"   recorded lr {lrs.shape} (batches, groups): {lrs[0, 0]:.1e} -> peak {lrs.max():.1e} "
          f"at batch {int(lrs[:, 0].argmax())} -> {lrs[-1, 0]:.1e}")
    row, clas, probs = learn.predict(df.iloc[0])  # as fastai: the decoded row, the class index, probabilities
    print(f"   predict(first row): {dls.vocab[clas]!r} (p={float(probs[clas]):.3f}); actual {df.iloc[0].species!r}")
    written = []
    for name, fig in (("tabular_schedule.png", learn.recorder.plot_sched()),
                      ("tabular_loss.png", learn.recorder.plot_loss(skip_start=0))):
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(out / name)
    return written


if __name__ == "__main__":
    t0 = time.perf_counter()
    paths = run_demo(sys.argv[1] if len(sys.argv) > 1 else "out/demo")
    print(f"\nwrote {', '.join(map(str, paths))} in {time.perf_counter() - t0:.1f}s")
