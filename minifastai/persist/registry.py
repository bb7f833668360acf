"""The rebuilder registry: how `load_learner` rebuilds an exported learner without importing any module above
the persistence layer.

Each application registers, under the name its exports store in `builder["module"]`, a `Rebuilder`: the function
that builds the learner from the file's entries, and the function that checks those entries first. The package's
`__init__` declares the applications it ships lazily (`declare`): their module is imported, from this fixed
table and never from a file, only when an export asks for them. As Keras' `register_keras_serializable`, the
parts register how they are rebuilt; nothing read from a file chooses code to run.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Rebuilder:
    """How one application's exports are rebuilt: `rebuild(state, device=, source=)` returns the learner;
    `check(state, path)` raises a `DamagedFileError` naming the entry when the file's entries are malformed."""

    rebuild: Callable[..., Any]
    check: Callable[[dict, Path], None] | None = None


_REBUILDERS: dict[str, Rebuilder] = {}
_LEARNER: list[Callable[..., Any]] = []
_DECLARED: dict[str, tuple[str, str | None]] = {}


def register_rebuilder(name: str, rebuild: Callable[..., Any], check: Callable[[dict, Path], None] | None = None
                       ) -> None:
    """Register how exports whose `builder["module"]` is `name` are rebuilt (and their entries checked)."""
    if not (isinstance(name, str) and name):
        raise TypeError(f"a rebuilder's name must be a non-empty string, got {name!r}")
    if not callable(rebuild) or (check is not None and not callable(check)):
        raise TypeError(f"the rebuilder for {name!r} needs a callable rebuild (and check, when given)")
    _REBUILDERS[name] = Rebuilder(rebuild, check)


def declare(name: str, module: str, extra: str | None = None) -> None:
    """Declare that importing `module` registers the rebuilder `name` (`extra`: the pip extra it needs)."""
    _DECLARED[name] = (module, extra)


def register_learner_factory(factory: Callable[..., Any]) -> None:
    """Register the class `load_learner(path, model=...)` wraps a user's model in (`Learner`, which registers
    itself: persistence imports nothing above it)."""
    _LEARNER[:] = [factory]


def learner_factory() -> Callable[..., Any]:
    """The registered learner class (`Learner`)."""
    if not _LEARNER:
        raise RuntimeError("no learner class is registered: import minifastai first")
    return _LEARNER[0]


def known_rebuilders() -> list[str]:
    """The names `load_learner` can rebuild: declared or registered, in that order."""
    return list(dict.fromkeys([*_DECLARED, *_REBUILDERS]))


def find_rebuilder(name: Any, path: Path) -> Rebuilder:
    """The rebuilder registered under `name`, importing its declared module on first use; a clear error for a
    name nobody registered, or a declared module that cannot be imported (naming the extra to install)."""
    if isinstance(name, str) and name not in _REBUILDERS and name in _DECLARED:
        module, extra = _DECLARED[name]
        try:
            importlib.import_module(module)
        except ImportError as e:
            hint = f": pip install 'minifastai[{extra}]'" if extra else ""
            raise ImportError(f"{path} was exported by {name}, which cannot be imported here ({e}){hint}") from e
    if not (isinstance(name, str) and name in _REBUILDERS):
        raise ValueError(f"{path}: entry builder['module'] = {name!r} is not one of minifastai's exporters "
                         f"({', '.join(known_rebuilders())}); load_learner runs no other code. For another model, "
                         f"pass it: load_learner({str(path)!r}, model=MyNet())")
    return _REBUILDERS[name]
