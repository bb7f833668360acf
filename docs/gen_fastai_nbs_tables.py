"""Rewrite the two tables of fastai notebook-test pass counts in docs/fastai-differences.md (core, then data) from
tests/fastai_nbs (`test_nb_summary.table`); tests/fastai_nbs/test_nb_summary.py checks them."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fastai_nbs.test_nb_summary import DOC, table  # noqa: E402

HEADERS = ("| notebook | fastai-valid tests | pass on minifastai | deliberate differences | not built yet |",
           "| notebook | fastai-valid tests | out of scope | in scope | pass on minifastai | deliberate differences "
           "| not built yet |")


def main() -> None:
    """Replace each table (its header line, its rows and the line of totals under it) with the current counts."""
    lines = DOC.read_text().split("\n")
    out, groups = [], iter(("core", "data"))
    i = 0
    while i < len(lines):
        if lines[i] in HEADERS:
            out.extend(table(next(groups)).split("\n"))
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            if i + 1 < len(lines) and lines[i] == "" and lines[i + 1].startswith("**") and "in-scope" in lines[i + 1]:
                i += 2  # the totals line of a table written before
            continue
        out.append(lines[i])
        i += 1
    DOC.write_text("\n".join(out))
    print(table("core").split("\n")[-1], table("data").split("\n")[-1], sep="\n")


if __name__ == "__main__":
    main()
