"""mkdocs hooks: one API reference page per module of the package, and placeholders for guide pages
that other contributors have not written yet (a page that exists on disk is always used as is)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "minifastai"
# the reading order of the API reference; modules not listed here follow in alphabetical order
API_ORDER = ["learner", "state", "results", "data", "groups", "callback", "checks", "summary", "inference", "metrics",
             "losses", "optimizer", "seed", "ranks", "torch_core", "test_utils", "basics", "loop_view", "version",
             "persist", "vision", "tabular"]
PLACEHOLDER = ("# {title}\n\n!!! note\n    This guide is being written; the [API reference](../api/index.md) "
               "documents every function meanwhile.\n")


def api_modules() -> list[str]:
    """Public modules of the package, in reading order."""
    found = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))
    found += sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists() and not p.name.startswith("_"))
    return [m for m in API_ORDER if m in found] + [m for m in found if m not in API_ORDER]


def _guide_pages(nav: list) -> list[tuple[str, str]]:
    """(title, path) of every page under guides/ in the nav."""
    out = []
    for item in nav:
        for title, value in (item.items() if isinstance(item, dict) else [(None, item)]):
            if isinstance(value, list):
                out += _guide_pages(value)
            elif isinstance(value, str) and value.startswith("guides/"):
                out.append((title or value, value))
    return out


def api_page(m: str) -> str:
    """A module's reference; a subpackage's lists its public submodules (re-exports of other libraries, listed
    in SKIP_SUBMODULES, are left out)."""
    folder = PACKAGE / m
    if not (folder / "__init__.py").exists():
        # the Learner's fit methods, inference, persistence and scale methods are functions of their modules bound
        # in the class body (`fit_one_cycle = schedule.fit_one_cycle`): inspection shows their signatures there
        opts = "    options:\n      force_inspection: true\n" if m == "learner" else ""
        return f"# minifastai.{m}\n\n::: minifastai.{m}\n{opts}"
    subs = sorted(p.stem for p in folder.glob("*.py")
                  if not p.stem.startswith("_") and f"{m}.{p.stem}" not in SKIP_SUBMODULES)
    head = f"# minifastai.{m}\n\n::: minifastai.{m}\n    options:\n      members: false\n"
    return head + "".join(f"\n## minifastai.{m}.{s}\n\n::: minifastai.{m}.{s}\n    options:\n      heading_level: 3\n"
                          for s in subs)


SKIP_SUBMODULES = {"vision.tvm"}  # torchvision's builders, re-exported by name


def on_config(config: Any) -> Any:
    """Fill the "API reference" section of the nav with one page per module."""
    for item in config["nav"]:
        if isinstance(item, dict) and "API reference" in item:
            item["API reference"] = ["api/index.md"] + [{f"minifastai.{m}": f"api/{m}.md"} for m in api_modules()]
    return config


def on_files(files: Files, config: Any) -> Files:
    """Generate the API pages, and a placeholder for any guide in the nav that is not on disk yet."""
    for m in api_modules():
        files.append(File.generated(config, f"api/{m}.md", content=api_page(m)))
    docs = Path(config["docs_dir"])
    for title, path in _guide_pages(config["nav"]):
        if not (docs / path).exists() and files.get_file_from_path(path) is None:
            files.append(File.generated(config, path, content=PLACEHOLDER.format(title=title)))
    return files
