"""The docs show real runs: every snippet's committed output still matches what it prints in everything that is
the same on every CPU (see `docs/gen_figures.py`: `output_problems`, `Trained`), and its figures exist."""
import re

import pytest
from helpers import ROOT, load_script

DOCS = ROOT / "docs"
gen = load_script("docs/gen_figures.py")
SNIPPETS = gen.snippet_files()


def test_snippets_exist_and_are_included():
    assert len(SNIPPETS) >= 20
    pages = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    for path in SNIPPETS:
        rel = path.relative_to(gen.SNIPPETS).as_posix()
        assert f'--8<-- "{rel}"' in pages, f"{rel} is not shown on any page"
        assert f'--8<-- "{rel[:-3]}.txt"' in pages, f"the output of {rel} is not shown on any page"


@pytest.mark.parametrize("path", SNIPPETS, ids=[gen.snippet_key(p)[:-3] for p in SNIPPETS])
def test_snippet_output_is_current(path):
    text, figs = gen.run_snippet(path)
    expected = path.with_suffix(".txt").read_text()
    problems = gen.output_problems(expected, text, gen.TRAINED.get(gen.snippet_key(path)))
    assert not problems, (
        f"{path.name} now prints something else ({'; '.join(problems[:5])}); if that is intended, run "
        f"`.venv/bin/python docs/gen_figures.py {path.stem}`\n--- committed:\n{expected}\n--- now:\n{text}")
    for dest in gen.figure_paths(path, len(figs)):
        assert dest.exists(), f"figure {dest.name} is missing; run docs/gen_figures.py"


def test_trained_entries_name_real_snippets_and_lines():
    for key, trained in gen.TRAINED.items():
        path = gen.SNIPPETS / key
        assert path in SNIPPETS, f"TRAINED names {key}, which is not a snippet"
        lines = path.with_suffix(".txt").read_text().splitlines()
        for pattern in trained.lines:
            assert any(re.match(pattern, line) for line in lines), f"{key}: no committed line matches {pattern!r}"
        assert set(trained.checks) <= set(trained.lines)


def test_plain_lines_tolerate_float_noise_and_times_only():
    a = "epoch 0  0.693147  00:01\nbody 1e-05"
    assert gen.same_output(a, "epoch 0  0.693150  00:07\nbody 1e-05")
    assert not gen.same_output(a, "epoch 0  0.793147  00:01\nbody 1e-05")
    assert not gen.same_output(a, "epoch 0  0.693147  00:01\nhead 1e-05")
    assert not gen.same_output(a, "epoch 0  0.693147  00:01\nbody 1e-05\nextra line")


# the committed quickstart table, and what an AMD EPYC machine prints for the same commit (both correct)
TABLE = """epoch     train_loss  valid_loss  accuracy  time      throughput  data_wait
0         2.065620    1.179492    0.550000  00:03     66.7/s      5%
1         1.961089    0.862898    0.633333  00:04     61.4/s      5%
done"""
OTHER_CPU = """epoch     train_loss  valid_loss  accuracy  time      throughput  data_wait
0         2.110649    1.271435    0.566667  00:03     83.2/s      5%
1         1.989069    0.811998    0.700000  00:03     86.6/s      5%
done"""


def test_results_tables_are_checked_for_what_holds_on_every_cpu():
    assert gen.output_problems(TABLE, OTHER_CPU) == []
    one_row = "\n".join(OTHER_CPU.splitlines()[:2] + ["done"])
    assert "another layout" in gen.output_problems(TABLE, one_row)[0]
    assert "columns" in gen.output_problems(TABLE, OTHER_CPU.replace("accuracy", "error_rate"))[0]
    assert gen.output_problems(TABLE, OTHER_CPU.replace("1.989069", "nan")) == ["row 1: train_loss is nan"]
    assert gen.output_problems(TABLE, OTHER_CPU.replace("0.700000", "1.700000")) == \
        ["row 1: accuracy is 1.700000, outside [0, 1]"]
    assert gen.output_problems(TABLE, OTHER_CPU.replace("\n1 ", "\n2 ")) == ["row 2: epoch 2 where 1 was"]


def test_trained_lines_and_final_row_invariants():
    trained = gen.Trained(lines=(r"tta: ",), checks={r"tta: ": lambda v: v[0] > 0.2},
                          final={"accuracy": lambda v: v > 0.2})
    assert gen.output_problems(TABLE + "\ntta: 0.717", OTHER_CPU + "\ntta: 0.783", trained) == []
    assert gen.output_problems(TABLE + "\ntta: 0.717", OTHER_CPU + "\ntta: 0.1", trained) == \
        ["'tta: 0.1' fails its invariant"]
    assert gen.output_problems(TABLE + "\ntta: 0.717", OTHER_CPU + "\ntta: nan", trained) == \
        ["'tta: nan' holds a value that is not finite"]
    chance = OTHER_CPU.replace("0.700000", "0.150000")
    assert gen.output_problems(TABLE + "\ntta: 0.717", chance + "\ntta: 0.783", trained) == \
        ["the final accuracy (0.150000) fails its invariant"]
    varying = gen.Trained(rows_vary=True)
    assert gen.output_problems(TABLE, "\n".join(OTHER_CPU.splitlines()[:2] + ["done"]), varying) == []


def test_api_index_lists_every_module():
    index = (DOCS / "api" / "index.md").read_text()
    modules = sorted(p.stem for p in (DOCS.parent / "minifastai").glob("*.py") if not p.stem.startswith("_"))
    modules += sorted(p.name for p in (DOCS.parent / "minifastai").iterdir() if (p / "__init__.py").exists())
    missing = [m for m in modules if f"[{m}]({m}.md)" not in index]
    assert not missing, f"docs/api/index.md does not list {missing}"
