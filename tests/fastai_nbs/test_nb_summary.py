"""docs/fastai-differences.md cannot drift from fastai's notebook tests: it lists every deliberate difference
(`differs`) word for word, and its table of pass counts per notebook is the one these tests give."""
from __future__ import annotations

import importlib
from pathlib import Path

from fastai_nbs.nbcells import Cell

HERE = Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "fastai-differences.md"


def notebooks() -> dict[str, list[Cell]]:
    out = {}
    for p in sorted(HERE.glob("test_[0-9]*.py")):
        mod = importlib.import_module(f"fastai_nbs.{p.stem}")
        out[p.stem.removeprefix("test_")] = mod.CELLS
    return out


# the notebooks of the Learner, callbacks, optimizers, schedules, metrics and losses; the others are fastai's data,
# vision and tabular notebooks (each group has its own table in the doc)
CORE = ("01a", "12", "13", "13a", "13b", "14", "16", "17", "18", "18a", "18b", "18c", "20")


def table(group: str = "core") -> str:
    rows = ["| notebook | fastai-valid tests | pass on minifastai | deliberate differences | not built yet |",
            "|---|---|---|---|---|"]
    tot = [0, 0, 0, 0]
    for nb, cells in notebooks().items():
        if (nb.split("_")[0] in CORE) != (group == "core"):
            continue
        valid = [c for c in cells if not c.fastai_fails]
        n = [len(valid), sum(not c.differs and not c.pending for c in valid), sum(bool(c.differs) for c in valid),
             sum(bool(c.pending) for c in valid)]
        tot = [a + b for a, b in zip(tot, n)]
        rows.append(f"| {nb} | " + " | ".join(map(str, n)) + " |")
    rows.append("| **all** | " + " | ".join(f"**{x}**" for x in tot) + " |")
    return "\n".join(rows)


def test_the_doc_lists_every_deliberate_difference_word_for_word():
    doc = DOC.read_text()
    missing = sorted({c.differs for cells in notebooks().values() for c in cells if c.differs} - {
        r for r in {c.differs for cells in notebooks().values() for c in cells} if r and r in doc})
    assert not missing, f"docs/fastai-differences.md must state these differences word for word: {missing}"


def test_the_docs_tables_of_pass_counts_are_current():
    for group in ("core", "data"):
        expected = table(group)
        assert expected in DOC.read_text(), f"update the {group} table in docs/fastai-differences.md to:\n{expected}"
