"""The docs show real runs: every snippet's committed output is still what it prints, and its figures exist."""
from pathlib import Path

import pytest
from helpers import load_script

DOCS = Path(__file__).resolve().parent.parent / "docs"
gen = load_script("docs/gen_figures.py")
SNIPPETS = gen.snippet_files()


def test_snippets_exist_and_are_included():
    assert len(SNIPPETS) >= 20
    pages = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    for path in SNIPPETS:
        rel = path.relative_to(gen.SNIPPETS).as_posix()
        assert f'--8<-- "{rel}"' in pages, f"{rel} is not shown on any page"
        assert f'--8<-- "{rel[:-3]}.txt"' in pages, f"the output of {rel} is not shown on any page"


@pytest.mark.parametrize("path", SNIPPETS, ids=[p.stem for p in SNIPPETS])
def test_snippet_output_is_current(path):
    text, figs = gen.run_snippet(path)
    expected = path.with_suffix(".txt").read_text()
    assert gen.same_output(expected, text), (
        f"{path.name} now prints something else; run `.venv/bin/python docs/gen_figures.py {path.stem}`\n"
        f"--- committed:\n{expected}\n--- now:\n{text}")
    for dest in gen.figure_paths(path, len(figs)):
        assert dest.exists(), f"figure {dest.name} is missing; run docs/gen_figures.py"


def test_same_output_tolerates_float_noise_and_times_only():
    a = "epoch 0  0.693147  00:01\nbody 1e-05"
    assert gen.same_output(a, "epoch 0  0.693150  00:07\nbody 1e-05")
    assert not gen.same_output(a, "epoch 0  0.793147  00:01\nbody 1e-05")
    assert not gen.same_output(a, "epoch 0  0.693147  00:01\nhead 1e-05")
    b = "0  0.693147  00:01  25,314/s  2%"
    assert gen.same_output(b, "0  0.693150  00:01  912/s     17%")
    assert not gen.same_output(b, "0  0.793147  00:01  912/s  17%")


def test_api_index_lists_every_module():
    index = (DOCS / "api" / "index.md").read_text()
    modules = sorted(p.stem for p in (DOCS.parent / "minifastai").glob("*.py") if not p.stem.startswith("_"))
    modules += sorted(p.name for p in (DOCS.parent / "minifastai").iterdir() if (p / "__init__.py").exists())
    missing = [m for m in modules if f"[{m}]({m}.md)" not in index]
    assert not missing, f"docs/api/index.md does not list {missing}"
