"""Regenerate every output and figure shown in the docs from real runs.

    .venv/bin/python docs/gen_figures.py            # all snippets
    .venv/bin/python docs/gen_figures.py concepts   # the snippets whose path contains "concepts"

Each `docs/snippets/<page>/<name>.py` runs after its page's `setup.py` (default: `docs/snippets/setup.py`) in a
fresh namespace, with seeds 0 and one torch thread (`DOCS_NUM_THREADS=n` sets another count, to check that
the committed outputs hold with other kernels). What it prints (warnings included) is written to
`<name>.txt` next to it, and every matplotlib figure it leaves open to `docs/img/<page>-<name>.png`
(`-1.png`, `-2.png`, ... when there are several). The pages include both files with `--8<--`, so the code
shown is the code that ran and the output shown is what it printed. `tests/test_docs.py` reruns the
snippets and checks that the committed outputs are still current.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import random
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

DOCS = Path(__file__).resolve().parent
SNIPPETS = DOCS / "snippets"
IMG = DOCS / "img"


def snippet_files() -> list[Path]:
    """Every snippet, in a stable order (setup files are not snippets)."""
    return sorted(p for p in SNIPPETS.rglob("*.py") if p.name != "setup.py")


def run_snippet(path: Path) -> tuple[str, list]:
    """Run one snippet (after its page's setup) in a temporary folder; return its output and open figures."""
    plt.close("all")
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    torch.set_num_threads(int(os.environ.get("DOCS_NUM_THREADS", "1")))
    ns: dict = {"__name__": "__main__"}
    setup = path.parent / "setup.py" if (path.parent / "setup.py").exists() else SNIPPETS / "setup.py"
    out = io.StringIO()

    def show(message, category, filename, lineno, file=None, line=None):  # warnings as the user sees them
        print(f"{category.__name__}: {message}", file=out)

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        os.chdir(tmp)
        try:
            if setup.exists():
                exec(compile(setup.read_text(), str(setup), "exec"), ns)
            with contextlib.redirect_stdout(out):
                exec(compile(path.read_text(), str(path), "exec"), ns)
        finally:
            os.chdir(cwd)
    return out.getvalue(), [plt.figure(n) for n in plt.get_fignums()]


def figure_paths(path: Path, n: int) -> list[Path]:
    """Where the figures of snippet `path` go."""
    stem = f"{path.parent.name}-{path.stem}".replace("_", "-")
    return [IMG / f"{stem}.png"] if n == 1 else [IMG / f"{stem}-{i}.png" for i in range(1, n + 1)]


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|\bnan\b|\binf\b")
TIME = re.compile(r"\b\d\d:\d\d\b")
THROUGHPUT = re.compile(r"(?<![\w.,])\d[\d,]*(?:\.\d+)?/s\b *|(?<![\w.])\d+%")  # items/s (and its padding), data wait
RESULT_COLUMNS_IGNORED = {"time", "throughput", "data_wait"}  # they vary from run to run
BOUNDED = ("accuracy", "error", "recall", "precision", "f1", "balanced", "auc")  # columns that are fractions


@dataclass(frozen=True)
class Trained:
    """What a snippet prints that comes out of training, beyond its results tables.

    A few epochs of float arithmetic differ between CPU models (vectorised kernels sum in other orders), and
    on small data those differences grow: one MobileNetV2 fine-tuning prints accuracy 0.633 on one machine
    and 0.700 on another, both correct. So such output is checked for what holds on every machine:
    - `lines`: patterns (regular expressions matched at the start of a line) of lines that report trained
      values: the same line must be there, and its numbers must be finite (and pass `checks[pattern]`);
    - `final`: invariants on the last row of the last results table, by column (e.g. accuracy above chance);
    - `rows_vary`: the number of epochs is itself a result (early stopping): table rows and trained lines are
      checked one by one, not counted.
    """

    lines: tuple[str, ...] = ()
    checks: dict[str, Callable[[list[float]], bool]] = field(default_factory=dict)
    final: dict[str, Callable[[float], bool]] = field(default_factory=dict)
    rows_vary: bool = False


def _above(chance: float) -> Callable[[float], bool]:
    return lambda v: v > chance


TRAINED: dict[str, Trained] = {
    # MobileNetV2 fine-tuned on 60 images of 5 digits: chance is 0.2
    "vision/quickstart.py": Trained(
        lines=(r"most confused \(actual, predicted, count\): ", r"accuracy with test-time augmentation: "),
        checks={r"accuracy with test-time augmentation: ": lambda v: 0.2 < v[0] <= 1},
        final={"accuracy": _above(0.2)}),
    "guides/training_callbacks.py": Trained(
        lines=(r"No improvement in valid_loss since epoch \d+: early stopping after epoch \d+$",
               r"\d+ of 10 epochs, \d+ training batches, \d+ optimizer steps$", r"\d+,[^,]+,[^,]+,[^,]+,\d\d:\d\d$"),
        rows_vary=True),
    # digits, 10 classes: chance is 0.1
    "guides/recorder_train_metrics.py": Trained(
        lines=(r"\{'train_loss': ",),
        checks={r"\{'train_loss': ": lambda v: len(v) == 4 and all(0 <= x for x in v)},
        final={"train_accuracy": _above(0.1), "valid_accuracy": _above(0.1)}),
    # MobileNetV2 on 5 digits, 7 labels (the digit, odd/even): accuracy_multi counts each of the 7 outputs
    "vision/datablock_multi.py": Trained(lines=(r"predicted: ",), final={"accuracy_multi": _above(0.6)}),
    # a small CNN regressing brightness: it must beat always predicting the mean
    "vision/datablock_regression.py": Trained(
        lines=(r"mean absolute error: ",), checks={r"mean absolute error: ": lambda v: v[0] < v[1]}),
}
"""The snippets whose output reports training results outside their tables (see `Trained`)."""


def _result_header(line: str) -> list[str] | None:
    cols = line.split()
    return cols if len(cols) >= 2 and cols[0] == "epoch" and "train_loss" in cols else None


def _parse(text: str, trained: Trained) -> list[tuple[str, Any]]:
    """The output as items: ("header", columns), ("row", (columns, cells)), ("trained", (pattern, line)),
    ("line", text)."""
    items: list[tuple[str, Any]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        cols = _result_header(line)
        if cols is not None:
            header = cols
            items.append(("header", cols))
            continue
        cells = line.split()
        if header is not None and len(cells) == len(header) and cells[0].isdigit():
            items.append(("row", (header, cells)))
            continue
        header = None
        pattern = next((p for p in trained.lines if re.match(p, line)), None)
        items.append(("trained", (pattern, line)) if pattern is not None else ("line", line))
    return items


def _numbers(text: str) -> list[float]:
    return [float(x) for x in NUMBER.findall(TIME.sub("", THROUGHPUT.sub("", text)))]


def _row_problems(cols: list[str], want: list[str] | None, got: list[str]) -> list[str]:
    """A results row, checked for what holds across machines: epoch, and each value finite and in its range."""
    out = []
    for i, (col, g) in enumerate(zip(cols, got)):
        w = None if want is None else want[i]
        if col in RESULT_COLUMNS_IGNORED:
            continue
        if col == "epoch":
            if w is not None and w != g:
                out.append(f"epoch {g} where {w} was")
            continue
        try:
            v = float(g)
        except ValueError:
            if w is not None and w != g:
                out.append(f"{col} is {g!r} where {w!r} was")
            continue
        if w is not None and w.lower() == "nan":  # no validation ran: that is not a matter of floats
            if not math.isnan(v):
                out.append(f"{col} is {g} where nan was")
        elif not math.isfinite(v):
            out.append(f"{col} is {g}")
        elif "loss" in col and v < 0:
            out.append(f"{col} is negative ({g})")
        elif any(b in col for b in BOUNDED) and not 0 <= v <= 1:
            out.append(f"{col} is {g}, outside [0, 1]")
    return out


def output_problems(expected: str, got: str, trained: Trained | None = None, rtol: float = 2e-2,
                    atol: float = 1e-4) -> list[str]:
    """How `got` differs from the committed `expected` output in what is stable across machines (empty: it
    does not). Plain lines must be equal, with numbers within `rtol`/`atol` (BLAS differs across CPUs), times
    and throughput ignored; results tables must have the same columns, rows and epochs, with finite values in
    range; lines that report trained values (see `Trained`) are checked for invariants only."""
    trained = trained or Trained()
    a, b = _parse(expected, trained), _parse(got, trained)
    problems: list[str] = []
    if trained.rows_vary:
        for kind, item in (x for x in b if x[0] in ("row", "trained")):
            problems += _loose_problems(kind, item, trained)
        a, b = [x for x in a if x[0] not in ("row", "trained")], [x for x in b if x[0] not in ("row", "trained")]
    if [k for k, _ in a] != [k for k, _ in b]:
        return problems + [f"the output has another layout: {len(b)} lines/rows where {len(a)} were "
                           "(a line, table row or table appeared or went missing)"]
    for (kind, want), (_, have) in zip(a, b):
        if kind == "header" and want != have:
            problems.append(f"the results table has columns {have} where {want} were")
        elif kind == "row":
            problems += [f"row {have[1][0]}: {p}" for p in _row_problems(want[0], want[1], have[1])]
        elif kind == "trained":
            if want[0] != have[0]:
                problems.append(f"{have[1]!r} stands where {want[1]!r} was")
            problems += _loose_problems(kind, have, trained)
        elif kind == "line" and not _same_line(want, have, rtol, atol):
            problems.append(f"{have!r} where {want!r} was")
    if trained.final:
        rows = [item for kind, item in b if kind == "row"] or [item for kind, item in _parse(got, trained)
                                                               if kind == "row"]
        if not rows:
            problems.append("no results table to check the final row of")
        else:
            cols, cells = rows[-1]
            for col, ok in trained.final.items():
                if col not in cols or not ok(float(cells[cols.index(col)])):
                    problems.append(f"the final {col} ({cells[cols.index(col)] if col in cols else 'missing'}) "
                                    "fails its invariant")
    return problems


def _loose_problems(kind: str, item: Any, trained: Trained) -> list[str]:
    if kind == "row":
        return [f"row {item[1][0]}: {p}" for p in _row_problems(item[0], None, item[1])]
    pattern, line = item
    nums = _numbers(line[re.match(pattern, line).end():] if pattern else line)  # type: ignore[union-attr]
    if not all(math.isfinite(v) for v in nums):
        return [f"{line!r} holds a value that is not finite"]
    check = trained.checks.get(pattern)
    return [] if check is None or check(nums) else [f"{line!r} fails its invariant"]


def _same_line(expected: str, got: str, rtol: float, atol: float) -> bool:
    expected, got = TIME.sub("mm:ss", expected), TIME.sub("mm:ss", got)
    expected, got = THROUGHPUT.sub("n", expected), THROUGHPUT.sub("n", got)
    if NUMBER.split(expected) != NUMBER.split(got):
        return False
    a, b = NUMBER.findall(expected), NUMBER.findall(got)
    return len(a) == len(b) and all(np.isclose(float(x), float(y), rtol=rtol, atol=atol, equal_nan=True)
                                    for x, y in zip(a, b))


def same_output(expected: str, got: str, trained: Trained | None = None) -> bool:
    """Whether `got` matches the committed `expected` output in everything stable across machines."""
    return not output_problems(expected, got, trained)


def snippet_key(path: Path) -> str:
    """A snippet's name in `TRAINED`: its path under `docs/snippets`."""
    return path.relative_to(SNIPPETS).as_posix()


def main(filters: list[str]) -> None:
    IMG.mkdir(exist_ok=True)
    for path in snippet_files():
        rel = path.relative_to(SNIPPETS)
        if filters and not any(f in str(rel) for f in filters):
            continue
        t0 = time.perf_counter()
        text, figs = run_snippet(path)
        path.with_suffix(".txt").write_text(text)
        for fig, dest in zip(figs, figure_paths(path, len(figs))):
            fig.savefig(dest, dpi=100)
        plt.close("all")
        print(f"{rel}: {len(text.splitlines())} lines, {len(figs)} figure(s), {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
