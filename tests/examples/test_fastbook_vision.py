"""fastbook's vision chapters ported to examples/ run end to end on minifastai, each in its own process on its offline
synthetic data: chapter 5 (pet breeds: the data block, transfer learning, cross-entropy, the learning rate finder,
discriminative learning rates) and chapter 7 (Imagenette from scratch: normalization, progressive resizing, TTA).
Each test checks a few things the chapter shows: the data, the cross-entropy numbers, the training tables, the
learning rate finder's suggestions, the accuracy of the TTA predictions."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_script(name: str, cwd: Path) -> str:
    """Run examples/<name> with cwd `cwd` (where it writes its data); returns its stdout."""
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}  # one thread: the suite runs 2 workers
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def tables(out: str, metric: str) -> list[list[list[float]]]:
    """Each printed results table (header `epoch train_loss valid_loss <metric> time`): its rows of epoch,
    train_loss, valid_loss and metric."""
    found, rows = [], None
    for line in out.splitlines():
        if re.match(rf"epoch\s+train_loss\s+valid_loss\s+{metric}\s+time", line):
            rows = []
            found.append(rows)
        elif rows is not None and (m := re.match(r"(\d+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+\d\d:\d\d", line)):
            rows.append([float(v) for v in m.groups()])
        else:
            rows = None
    return found


def test_fastbook_05_pet_breeds(tmp_path):
    out = run_script("fastbook_05_pet_breeds.py", tmp_path)
    images = sorted(p.name for p in (tmp_path / "oxford-iiit-pet" / "images").iterdir())
    assert len(images) == 96 and "Abyssinian_1.jpg" in images and "staffordshire_bull_terrier_16.jpg" in images
    # path.ls() (fastcore's, in the file system's order, relative to Path.BASE_PATH) and the label regex on the name
    # of the first file it lists
    ls_top = next(ln for ln in out.splitlines() if "Path('annotations')" in ln)
    assert sorted(re.findall(r"Path\('(\w+)'\)", ls_top)) == ["annotations", "images"]
    ls_images = next(ln for ln in out.splitlines() if ln.startswith("[Path('images/"))
    first = re.match(r"\[Path\('images/(.+?)_\d+\.jpg'\)", ls_images).group(1)
    assert len(re.findall(r"Path\(", ls_images)) == 96 and f"['{first}']" in out.splitlines()
    # pets1.summary: the items, the split, a label the regex took from a file name
    assert "Found 96 items" in out
    assert re.search(r"'(Abyssinian|Bengal|Ragdoll|beagle|great_pyrenees|staffordshire_bull_terrier)'", out)
    assert re.search(r"^\(6, tensor\((1\.|1\.0000|0\.9999)\)\)$", out, re.M)  # 6 probabilities, adding up to 1
    # the cross-entropy section's numbers, as the chapter shows them (torch.random.manual_seed(42))
    assert "tensor([0.6025, 0.4979, 0.1332, 0.0034, 0.4041, 0.3661])" in out  # sm_acts[idx, targ]
    assert "tensor([-0.6025, -0.4979, -0.1332, -0.0034, -0.4041, -0.3661])" in out  # F.nll_loss
    assert out.count("tensor(1.8045)") == 2  # nn.CrossEntropyLoss() and F.cross_entropy
    assert "tensor([0.5067, 0.6973, 2.0160, 5.6958, 0.9062, 1.0048])" in out  # reduction='none'
    assert re.search(r"^Minimum/10: \d\.\d\de-\d\d, steepest point: \d\.\d\de-\d\d$", out, re.M)
    assert "SuggestedLRs(valley=" in out
    assert "def fine_tune(" in out  # `learn.fine_tune??`
    ts = tables(out, "error_rate")
    # fine_tune(2), fine_tune(1, base_lr=0.1), fine_tune(2, base_lr=3e-3), fit_one_cycle(3), fit_one_cycle(6),
    # fit_one_cycle(3) + fit_one_cycle(12), and the to_fp16 fine_tune(1, freeze_epochs=1): a table per phase
    assert [len(t) for t in ts] == [1, 2, 1, 1, 1, 2, 3, 6, 3, 12, 1, 1]
    assert all(0 <= r[3] <= 1 for t in ts for r in t)
    assert min(ts[9][-3:], key=lambda r: r[3])[3] <= 0.3  # discriminative LRs: the pretrained model learns the breeds


def test_fastbook_07_sizing_and_tta(tmp_path):
    out = run_script("fastbook_07_sizing_and_tta.py", tmp_path)
    root = tmp_path / "imagenette2"
    assert sorted(p.name for p in (root / "train").iterdir())[:2] == ["n01440764", "n02102040"]
    assert len(list((root / "val" / "n03028079").iterdir())) == 2
    # one batch's channel means and standard deviations, before and after Normalize.from_stats(*imagenet_stats)
    stats = [[float(v) for v in re.findall(r"-?\d+\.\d+", m)]
             for m in re.findall(r"^\(tensor\(\[.*\]\), tensor\(\[.*\]\)\)$", out, re.M)]
    assert len(stats) == 2 and all(len(s) == 6 for s in stats)
    assert all(0 < v < 1 for v in stats[0])  # raw pixels in [0, 1]
    assert any(v < 0 for v in stats[1][:3]) or max(stats[1][3:]) > 1  # normalized: no longer in [0, 1]'s range
    ts = tables(out, "accuracy")
    # fit_one_cycle(5) twice, fit_one_cycle(4) at the small size, fine_tune(5) (1 epoch, then 5)
    assert [[r[0] for r in t] for t in ts] == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3], [0], [0, 1, 2, 3, 4]]
    assert all(0 <= r[3] <= 1 for t in ts for r in t)
    tta_acc = float(out.strip().splitlines()[-1])  # accuracy(preds, targs).item() of learn.tta()
    assert 0.3 <= tta_acc <= 1  # 10 classes: chance is 0.1
