"""Regenerate every output and figure shown in the docs from real runs.

    .venv/bin/python docs/gen_figures.py            # all snippets
    .venv/bin/python docs/gen_figures.py concepts   # the snippets whose path contains "concepts"

Each `docs/snippets/<page>/<name>.py` runs after its page's `setup.py` (default: `docs/snippets/setup.py`) in a
fresh namespace, with seeds 0 and one torch thread. What it prints (warnings included) is written to
`<name>.txt` next to it, and every matplotlib figure it leaves open to `docs/img/<page>-<name>.png`
(`-1.png`, `-2.png`, ... when there are several). The pages include both files with `--8<--`, so the code
shown is the code that ran and the output shown is what it printed. `tests/test_docs.py` reruns the
snippets and checks that the committed outputs are still current.
"""
from __future__ import annotations

import contextlib
import io
import os
import random
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

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
    torch.set_num_threads(1)
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


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
TIME = re.compile(r"\b\d\d:\d\d\b")
THROUGHPUT = re.compile(r"(?<![\w.,])\d[\d,]*(?:\.\d+)?/s\b *|(?<![\w.])\d+%")  # items/s (and its padding), data wait


def same_output(expected: str, got: str, rtol: float = 2e-2, atol: float = 1e-4) -> bool:
    """Equal text, with numbers equal within a tolerance (BLAS differs across CPUs); times and throughput
    figures are ignored."""
    expected, got = TIME.sub("mm:ss", expected), TIME.sub("mm:ss", got)
    expected, got = THROUGHPUT.sub("n", expected), THROUGHPUT.sub("n", got)  # they vary from run to run
    if NUMBER.split(expected) != NUMBER.split(got):
        return False
    a, b = NUMBER.findall(expected), NUMBER.findall(got)
    return len(a) == len(b) and all(np.isclose(float(x), float(y), rtol=rtol, atol=atol) for x, y in zip(a, b))


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
