"""minifastai.vision's modules import one another in one direction only: the import graph (imports inside
functions included, `if TYPE_CHECKING:` blocks left out) has no cycle, and no submodule imports the package."""
import ast

from helpers import ROOT

PKG = ROOT / "minifastai" / "vision"


def _imports(tree: ast.AST, mods: set[str]) -> set[str]:
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for n in node.orelse:
                visit(n)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                out.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
            elif node.level == 0 and (node.module or "").startswith("minifastai.vision"):
                rest = node.module.split(".")[2:]
                out.update(rest[:1] or ["__init__"])
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[:2] == ["minifastai", "vision"]:
                    out.add(parts[2] if len(parts) > 2 else "__init__")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out & mods


def import_graph() -> dict[str, set[str]]:
    """Each module of minifastai/vision -> the modules of minifastai/vision it imports."""
    mods = {p.stem for p in PKG.glob("*.py")}
    return {m: _imports(ast.parse((PKG / f"{m}.py").read_text()), mods) - {m} for m in mods}


def test_vision_import_graph_has_no_cycle():
    graph = import_graph()
    assert not [m for m, deps in graph.items() if m != "__init__" and "__init__" in deps]
    done: set[str] = set()
    while len(done) < len(graph):  # peel off the modules whose imports are all done (Kahn's algorithm)
        ready = {m for m, deps in graph.items() if m not in done and deps <= done}
        assert ready, f"import cycle among {sorted(set(graph) - done)}"
        done |= ready


def test_models_and_timm_models_share_lower_modules():
    graph = import_graph()
    assert "models" not in graph["timm_models"]
    assert {"heads", "weights"} <= graph["models"] and {"heads", "weights"} <= graph["timm_models"]
