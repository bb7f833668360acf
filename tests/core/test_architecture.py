"""The import rule of docs/architecture.md, enforced on the source: every module belongs to a layer; a module imports
only modules of its own layer or lower ones, even inside functions (imports under `if TYPE_CHECKING:` are for
type hints and do not run); there is no import cycle; and no module is over 600 lines."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "minifastai"
# (layer, name prefixes), lowest first; the first matching prefix of a module decides (the most specific is listed
# first within a layer: `minifastai.callback.core` before `minifastai.callback.`)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("utils", ("minifastai.version", "minifastai.checks", "minifastai.seed", "minifastai.ranks",
               "minifastai.torch_core", "minifastai.external_checks", "minifastai.external")),
    ("core", ("minifastai.callback.core", "minifastai.data", "minifastai.groups", "minifastai.optimizer",
              "minifastai.optim_hypers", "minifastai.losses", "minifastai.metrics", "minifastai.state",
              "minifastai.results", "minifastai.transform", "minifastai.layers")),
    ("persist", ("minifastai.persist",)),
    ("callbacks", ("minifastai.callback",)),
    ("learner", ("minifastai.learner", "minifastai.inference", "minifastai.summary", "minifastai.test_utils",
                 "minifastai.loop_view", "minifastai.interpret")),
    ("apps", ("minifastai.vision", "minifastai.tabular")),
    ("top", ("minifastai",)),
]
# the layer of these modules is not their prefix's: what a package __init__ imports, and the applications' star-import
# modules (`from minifastai.vision.all import *`, as fastai's), which gather the top-level names with their own
PACKAGE_INITS = {"minifastai.callback": "core", "minifastai.persist": "persist", "minifastai.vision.all": "top",
                 "minifastai.tabular.all": "top", "minifastai.callback.all": "top"}
APPS = ("minifastai.vision", "minifastai.tabular")


def modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def layer_of(mod: str) -> int:
    if mod in PACKAGE_INITS:
        return [n for n, _ in LAYERS].index(PACKAGE_INITS[mod])
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(mod == p or mod.startswith(p + ".") or (p.endswith(".") and mod.startswith(p)) for p in prefixes):
            return i
    raise AssertionError(f"{mod} belongs to no layer: add it to LAYERS (and to docs/architecture.md)")


def _resolve(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Every run-time import of each module of the package (top-level and inside functions)."""
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        found: set[str] = set()
        is_pkg = path.name == "__init__.py"

        def visit(node: ast.AST, mod: str = mod, is_pkg: bool = is_pkg, found: set[str] = found) -> None:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for sub in node.orelse:  # only the else branch of `if TYPE_CHECKING:` runs
                    visit(sub)
                return
            if isinstance(node, ast.ImportFrom):
                base = _resolve(mod, node, is_pkg)
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            for ch in ast.iter_child_nodes(node):
                visit(ch)

        visit(ast.parse(path.read_text()))
        graph[mod] = {m for m in found if m in mods and m != mod}
    return graph


def test_every_module_has_a_layer_and_imports_none_above_it():
    mods = modules()
    graph = imports(mods)
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
              for m, targets in sorted(graph.items()) for t in sorted(targets) if layer_of(t) > layer_of(m)]
    assert upward == []


def test_the_applications_do_not_import_each_other():
    graph = imports(modules())
    crossed = [f"{m} imports {t}" for m, ts in graph.items() for t in ts for a in APPS for b in APPS
               if a != b and (m == a or m.startswith(a + ".")) and (t == b or t.startswith(b + "."))]
    assert crossed == []


def test_there_is_no_import_cycle():
    graph = imports(modules())
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def dfs(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                dfs(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m, [m])
    assert cycles == []


def test_the_rule_catches_an_upward_lazy_import(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..inference import x\n"
                    "def f():\n    from ..learner import Learner\n")
    mods = {"minifastai.persist.probe": path, "minifastai.learner": PACKAGE / "learner.py"}
    assert imports(mods) == {"minifastai.persist.probe": {"minifastai.learner"}, "minifastai.learner": set()}
    assert layer_of("minifastai.learner") > layer_of("minifastai.persist.probe")


@pytest.mark.parametrize("mod", sorted(modules()))
def test_no_module_is_over_600_lines(mod):
    n = len(modules()[mod].read_text().splitlines())
    assert n <= 600, f"{mod} has {n} lines: split it by concern"
