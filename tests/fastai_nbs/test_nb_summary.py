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


HEADER = ("| notebook | fastai-valid tests | out of scope | in scope | pass on minifastai | deliberate differences "
          "| not built yet |")


def table(group: str = "core") -> str:
    """The docs table of one group: per notebook, the cells valid on fastai, those out of scope (SPEC §14), the
    in-scope rest and how they fare; the last line gives the share of in-scope cells that pass."""
    rows = [HEADER, "|---|---|---|---|---|---|---|"]
    tot = [0] * 6
    for nb, cells in notebooks().items():
        if (nb.split("_")[0] in CORE) != (group == "core"):
            continue
        valid = [c for c in cells if not c.fastai_fails]
        scope = [c for c in valid if not c.out_of_scope]
        n = [len(valid), len(valid) - len(scope), len(scope),
             sum(not c.differs and not c.pending for c in scope), sum(bool(c.differs) for c in scope),
             sum(bool(c.pending) for c in scope)]
        tot = [a + b for a, b in zip(tot, n)]
        rows.append(f"| {nb} | " + " | ".join(map(str, n)) + " |")
    rows.append("| **all** | " + " | ".join(f"**{x}**" for x in tot) + " |")
    rows.append("")
    rows.append(f"**{tot[3]} of the {tot[2]} in-scope tests pass ({100 * tot[3] / tot[2]:.1f}%)**; "
                f"{tot[3]} of all {tot[0]} fastai-valid tests.")
    return "\n".join(rows)


def test_the_doc_lists_every_deliberate_difference_word_for_word():
    doc = DOC.read_text()
    reasons = {r for cells in notebooks().values() for c in cells for r in (c.differs, c.out_of_scope) if r}
    missing = sorted(r for r in reasons if r not in doc)
    assert not missing, f"docs/fastai-differences.md must state these differences word for word: {missing}"


def test_a_cell_has_one_reason_at_most():
    both = [c.name for cells in notebooks().values() for c in cells
            if sum(map(bool, (c.differs, c.out_of_scope, c.pending))) > 1]
    assert not both, both


def test_the_docs_tables_of_pass_counts_are_current():
    for group in ("core", "data"):
        expected = table(group)
        assert expected in DOC.read_text(), f"update the {group} table in docs/fastai-differences.md to:\n{expected}"
